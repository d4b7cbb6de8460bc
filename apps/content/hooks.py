"""Where higher apps react to content without content importing them.

``sales`` registers a submission hook from its ``AppConfig.ready()``: submissions of a form
that opens leads become leads. The form-processing service calls every hook explicitly
after a chunk of submissions is stored, inside its transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LeadRequest:
    """A processed submission of a form that opens leads."""

    unit_id: int
    contact_id: int
    temperature: str
    form_id: int
    form_name: str
    submission_id: int
    channel_id: int | None
    campaign_id: int | None


SubmissionHook = Callable[[Sequence[LeadRequest]], object]
_SUBMISSION_HOOKS: dict[str, SubmissionHook] = {}


def register_submission_hook(name: str, fn: SubmissionHook) -> None:
    _SUBMISSION_HOOKS[name] = fn


def submission_hooks() -> list[SubmissionHook]:
    return list(_SUBMISSION_HOOKS.values())
