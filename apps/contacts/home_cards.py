"""Contacts' cards on the surfaces' home pages (registered from AppConfig.ready).

The three console cards share one query (``contact_counts``), counted no further than
COUNT_LIMIT so a large pool costs what a small one does ("10000+").
"""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from apps.contacts.selectors.contacts import COUNT_LIMIT, VIEW, ContactCounts, contact_counts
from apps.core.navigation import Card, register_card
from apps.core.roles import Surface
from apps.core.scoping import visible_unit_ids
from apps.core.web import user_of


def _url(name: str, query: str = "") -> str:
    try:
        url = reverse(name)
    except NoReverseMatch:  # that page is not built yet
        return ""
    return f"{url}?{query}" if query else url


def _shown(n: int) -> int | str:
    return f"{COUNT_LIMIT}+" if n > COUNT_LIMIT else n


def _counts(request: HttpRequest, unit_ids: set[int] | None) -> ContactCounts | None:
    """The counts for this request, computed once for the three cards."""
    user = user_of(request)
    if not (user.is_superuser or visible_unit_ids(user, VIEW)):
        return None
    key = ("contacts_home_counts", tuple(sorted(unit_ids)) if unit_ids is not None else None)
    cache = request.__dict__.setdefault("_contacts_home_counts", {})
    if key not in cache:
        cache[key] = contact_counts(user=user, unit_ids=unit_ids)
    counts: ContactCounts = cache[key]
    return counts


@register_card(Surface.CONSOLE, order=100)
def contacts_card(request: HttpRequest, unit_ids: set[int] | None) -> Card | None:
    counts = _counts(request, unit_ids)
    if counts is None:
        return None
    return Card(
        title=_("Contacts in your units"),
        value=_shown(counts.total),
        hint=_("People your business units know, one profile each"),
        url=_url("contacts:list"),
        empty=_(
            "No contacts yet. Import a spreadsheet of people you already know, "
            "or put a form on your website to start collecting them."
        ),
        action_label=_("Import contacts"),
        action_url=_url("contacts:imports"),
    )


@register_card(Surface.CONSOLE, order=110)
def new_contacts_card(request: HttpRequest, unit_ids: set[int] | None) -> Card | None:
    counts = _counts(request, unit_ids)
    if counts is None or counts.total == 0:
        return None  # the card above already says how to start
    return Card(
        title=_("New contacts this week"),
        value=_shown(counts.new_this_week),
        hint=_("First seen in the last 7 days"),
        url=_url("contacts:list"),
        empty=_("Nobody new in the last 7 days. Forms, events and imports bring new people in."),
    )


@register_card(Surface.CONSOLE, order=120)
def reachable_contacts_card(request: HttpRequest, unit_ids: set[int] | None) -> Card | None:
    counts = _counts(request, unit_ids)
    if counts is None or counts.total == 0:
        return None
    return Card(
        title=_("Reachable by phone or WeChat"),
        value=_shown(counts.reachable),
        hint=_("Contacts with a mobile number, WeChat or WeCom id"),
        url=_url("contacts:list"),
        empty=_(
            "No contact has a phone number or WeChat id yet. Ask for a mobile number on "
            "your forms, or connect your WeChat official account."
        ),
    )
