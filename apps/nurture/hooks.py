"""Where higher apps react to scores without nurture importing them.

``sales`` registers a band hook from its ``AppConfig.ready()`` (become an MQL candidate,
route to an SDR). The scoring engine calls every hook explicitly after each recompute
batch, inside the batch's transaction, with the contacts whose temperature changed:
``(model, [(contact_id, old_temperature or None when first scored, new_temperature)])``.
A hook that queues work should use ``enqueue_on_commit``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apps.nurture.models import ScoringModel

Transition = tuple[int, str | None, str]
BandHook = Callable[["ScoringModel", list[Transition]], None]

_BAND_HOOKS: dict[str, BandHook] = {}


def register_score_band_hook(name: str, fn: BandHook) -> None:
    _BAND_HOOKS[name] = fn


def unregister_score_band_hook(name: str) -> None:
    _BAND_HOOKS.pop(name, None)


def score_band_hooks() -> list[BandHook]:
    return list(_BAND_HOOKS.values())
