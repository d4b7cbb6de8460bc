"""The salesperson's phone home (``/m/``): MQLs waiting for me, clocks due today, my open
leads. One query for the three (``my_lead_counts``), cached per request."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from apps.core.navigation import Card, register_card
from apps.core.roles import Surface
from apps.core.scoping import visible_unit_ids
from apps.core.web import user_of
from apps.sales.selectors import mobile as selectors


def _counts(request: HttpRequest) -> selectors.LeadCounts | None:
    user = user_of(request)
    if not (user.is_superuser or visible_unit_ids(user, selectors.SELL)):
        return None
    cached = getattr(request, "_sales_mobile_counts", None)
    if cached is None:
        cached = selectors.my_lead_counts(user=user)
        request._sales_mobile_counts = cached  # type: ignore[attr-defined]
    return cached


@register_card(Surface.MOBILE, order=10)
def mqls_to_accept_card(request: HttpRequest, unit_ids: set[int] | None) -> Card | None:
    counts = _counts(request)
    if counts is None:
        return None
    url = reverse("sales:m-inbox")
    return Card(
        title=_("MQLs to accept"),
        value=counts.to_accept,
        hint=_("Accept or reject each before its clock runs out."),
        url=url,
        empty=_("Nothing waiting: new leads from the SDR show up here."),
    )


@register_card(Surface.MOBILE, order=20)
def sla_due_today_card(request: HttpRequest, unit_ids: set[int] | None) -> Card | None:
    counts = _counts(request)
    if counts is None:
        return None
    return Card(
        title=_("SLA due today"),
        value=counts.due_today,
        hint=_("Leads whose clock runs out by tonight (or already has)."),
        url=reverse("sales:m-leads"),
        empty=_("No clock runs out today."),
    )


@register_card(Surface.MOBILE, order=30)
def my_open_leads_card(request: HttpRequest, unit_ids: set[int] | None) -> Card | None:
    counts = _counts(request)
    if counts is None:
        return None
    url = reverse("sales:m-leads")
    return Card(
        title=_("My open leads"),
        value=counts.open,
        hint=_("Sorted by what is due first."),
        url=url,
        empty=_("No open leads yet."),
        action_label=_("To accept"),
        action_url=reverse("sales:m-inbox"),
    )
