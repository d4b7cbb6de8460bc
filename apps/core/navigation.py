"""What each surface shows: its navigation and its home-page cards.

Core owns the registries; every app adds its own entries from ``AppConfig.ready()`` so
core never imports the apps above it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise

from apps.core.scoping import visible_unit_ids

Label = str | Promise


@dataclass(frozen=True)
class NavItem:
    surface: str
    label: Label
    url_name: str
    permission: str = "core.view_unit"
    order: int = 100
    icon: str = ""


@dataclass
class Card:
    title: Label
    value: int | str
    hint: Label = ""
    url: str = ""
    # Shown instead of the hint when the value is 0: what to do next.
    empty: Label = ""
    action_label: Label = ""
    action_url: str = ""
    breakdown: list[tuple[Label, int]] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return self.value in (0, "0")


CardFactory = Callable[[HttpRequest, set[int] | None], "Card | None"]

_NAV: list[NavItem] = []
_CARDS: dict[str, list[tuple[int, CardFactory]]] = {}


def register_nav(item: NavItem) -> None:
    if item not in _NAV:
        _NAV.append(item)


def nav_for(request: HttpRequest, surface: str) -> list[dict[str, Any]]:
    user = request.user
    items = []
    current = request.path
    for item in sorted((i for i in _NAV if i.surface == surface), key=lambda i: i.order):
        if not (user.is_superuser or visible_unit_ids(user, item.permission)):
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:  # an app registered an entry for a page it does not serve
            continue
        home = url.rstrip("/").count("/") <= 1
        active = current == url if home else current.startswith(url)
        items.append({"label": item.label, "url": url, "active": active, "icon": item.icon})
    return items


def register_card(surface: str, order: int = 100) -> Callable[[CardFactory], CardFactory]:
    def decorator(factory: CardFactory) -> CardFactory:
        entries = _CARDS.setdefault(surface, [])
        if all(f is not factory for _, f in entries):
            entries.append((order, factory))
        return factory

    return decorator


def cards_for(surface: str, request: HttpRequest, unit_ids: set[int] | None) -> list[Card]:
    cards = []
    for _order, factory in sorted(_CARDS.get(surface, []), key=lambda e: e[0]):
        card = factory(request, unit_ids)
        if card is not None:
            cards.append(card)
    return cards
