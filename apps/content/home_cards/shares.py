"""Share links' card on the lead queue and the phone: how often my links were opened this
week, and by how many known contacts (seed 003: who read what, for follow-up)."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.content.selectors import shares as selectors
from apps.core.navigation import Card, register_card
from apps.core.roles import Surface
from apps.core.scoping import visible_unit_ids
from apps.core.web import user_of

DAYS = 7


def _card(request: HttpRequest, list_url: str) -> Card | None:
    user = user_of(request)
    if not (user.is_superuser or visible_unit_ids(user, selectors.SHARE)):
        return None
    totals = selectors.my_recent_opens(user=user, days=DAYS)
    return Card(
        title=_("Opens of my links, last 7 days"),
        value=totals.opens,
        hint=ngettext(
            "%(n)d known contact among them", "%(n)d known contacts among them", totals.contacts
        )
        % {"n": totals.contacts},
        url=list_url,
        empty=_("Share content with your customers: you will see here who opens it."),
        action_label=_("Share content"),
        action_url=list_url,
    )


@register_card(Surface.MOBILE, order=200)
def mobile_shares_card(request: HttpRequest, unit_ids: set[int] | None) -> Card | None:
    return _card(request, reverse("content:m-shares") + "?tab=links")


@register_card(Surface.SDR, order=200)
def sdr_shares_card(request: HttpRequest, unit_ids: set[int] | None) -> Card | None:
    return _card(request, reverse("content:sdr-shares"))
