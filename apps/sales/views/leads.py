"""The console's lead list (``/console/leads/``) and read-only lead page.

Everyone with ``sales.view`` and the console sees the leads ``Lead.objects.visible_to``
gives them: marketers, viewers and administrators every lead of their units, a
salesperson only their own. Filters, keyset pages (newest first), a fixed number of
queries however many leads there are. Another unit's lead is a 404.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from apps.core.models import BusinessUnit, Membership, User
from apps.core.pagination import InvalidCursor, KeysetPage, keyset_page
from apps.core.roles import Surface
from apps.core.scoping import visible_unit_ids
from apps.core.web import page_units, surface_context, surface_required, user_of
from apps.sales.forms import LeadFilterForm
from apps.sales.models import (
    CreditStatus,
    FollowUp,
    HistoryKind,
    Lead,
    LeadHistory,
    SlaClock,
    SlaMiss,
    Stage,
)
from apps.sales.selectors.leads import lead_get, leads_visible

VIEW = "sales.view"
PAGE_SIZE = 50
HISTORY_LIMIT = 100
FOLLOW_UP_LIMIT = 50
PEOPLE_ROLES = ("sdr", "sales", "sales_manager")


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "core/forbidden.html", {"surface": _("Leads")}, status=403)


def _page(request: HttpRequest, qs: Any) -> KeysetPage[Lead]:
    try:
        return keyset_page(qs, ordering=("-id",), cursor=request.GET.get("cursor"), size=PAGE_SIZE)
    except InvalidCursor:
        messages.warning(request, _("That page link is no longer valid; showing the first page."))
        return keyset_page(qs, ordering=("-id",), size=PAGE_SIZE)


def _choices(user: User, unit_ids: set[int] | None) -> tuple[list[BusinessUnit], list[User]]:
    """Units and people for the filter boxes (two queries, bounded by the organisation)."""
    units = BusinessUnit.objects.visible_to(user, VIEW).filter(is_active=True)
    if unit_ids is not None:
        units = units.filter(pk__in=unit_ids)
    unit_list = list(units.order_by("parent_id", "name"))
    ids = [u.pk for u in unit_list]
    people_ids = (
        Membership.objects.dangerously_unscoped()
        .filter(unit_id__in=ids, role__in=PEOPLE_ROLES)
        .values("user_id")
    )
    people = list(
        User.objects.dangerously_unscoped()
        .filter(pk__in=people_ids, is_active=True)
        .order_by("username")
    )
    return unit_list, people


def _filtered(qs: Any, data: dict[str, Any]) -> Any:
    if data.get("unit"):
        qs = qs.filter(unit_id=data["unit"])
    for key in ("stage", "temperature", "source"):
        if data.get(key):
            qs = qs.filter(**{key: data[key]})
    if data.get("owner"):
        qs = qs.filter(owner_id=data["owner"])
    if data.get("sdr"):
        qs = qs.filter(sdr_id=data["sdr"])
    if data.get("review"):
        qs = qs.filter(needs_review=True)
    if data.get("open") in ("0", "1"):
        qs = qs.filter(is_open=data["open"] == "1")
    return qs


@surface_required(Surface.CONSOLE)
@require_GET
def lead_list(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    if not (user.is_superuser or visible_unit_ids(user, VIEW)):
        return _forbidden(request)
    unit_ids = page_units(request, VIEW)
    units, people = _choices(user, unit_ids)
    form = LeadFilterForm(request.GET or None, units=units, people=people)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    qs = leads_visible(user=user)
    if unit_ids is not None:
        qs = qs.filter(unit_id__in=unit_ids)
    qs = _filtered(qs, data).select_related("contact", "unit", "owner", "sdr")
    page = _page(request, qs)
    kept = {k: v for k, v in request.GET.items() if k != "cursor" and v}
    context = surface_context(
        request,
        Surface.CONSOLE,
        form=form,
        page=page,
        leads=page.items,
        filter_query=f"{urlencode(kept)}&" if kept else "",
        filtered=bool(kept),
        show_unit=len(units) > 1,
        now=timezone.now(),
    )
    return render(request, "sales/leads/list.html", context)


def _history_rows(history: list[LeadHistory]) -> list[dict[str, Any]]:
    """Each change with readable values: stage and credit names, people's names (one
    query for every person the page names)."""
    people_kinds = {HistoryKind.SDR, HistoryKind.OWNER}
    ids = {
        int(v)
        for h in history
        if h.kind in people_kinds
        for v in (h.from_value, h.to_value)
        if v.isdigit()
    }
    names = (
        {u.pk: str(u) for u in User.objects.dangerously_unscoped().filter(pk__in=ids)}
        if ids
        else {}
    )
    labels: dict[str, dict[str, str]] = {
        HistoryKind.STAGE: {k: str(v) for k, v in Stage.choices},
        HistoryKind.CREDIT: {k: str(v) for k, v in CreditStatus.choices},
        HistoryKind.SLA: {k: str(v) for k, v in SlaClock.choices},
    }

    def shown(kind: str, value: str) -> str:
        if not value:
            return ""
        if kind in people_kinds and value.isdigit():
            return names.get(int(value), f"#{value}")
        return labels.get(kind, {}).get(value, value)

    return [
        {"h": h, "from": shown(h.kind, h.from_value), "to": shown(h.kind, h.to_value)}
        for h in history
    ]


@surface_required(Surface.CONSOLE)
@require_GET
def lead_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = user_of(request)
    lead = lead_get(user=user, pk=pk)
    if lead is None:
        raise Http404
    history = list(
        LeadHistory.objects.dangerously_unscoped()
        .filter(lead=lead)
        .select_related("actor")
        .order_by("-at", "-id")[:HISTORY_LIMIT]
    )
    follow_ups = list(
        FollowUp.objects.dangerously_unscoped()
        .filter(lead=lead)
        .select_related("user")
        .order_by("-occurred_at", "-id")[:FOLLOW_UP_LIMIT]
    )
    history_rows = _history_rows(history)
    misses = list(
        SlaMiss.objects.dangerously_unscoped()
        .filter(lead=lead)
        .select_related("user")
        .order_by("-due_at")[:20]
    )
    context = surface_context(
        request,
        Surface.CONSOLE,
        lead=lead,
        history=history,
        history_rows=history_rows,
        follow_ups=follow_ups,
        misses=misses,
        bant=[
            (_("Budget"), lead.budget),
            (_("Authority"), lead.get_authority_display() if lead.authority else ""),
            (_("Need"), lead.need),
            (_("Timing"), lead.get_timeline_display() if lead.timeline else ""),
        ],
    )
    return render(request, "sales/leads/detail.html", context)


urlpatterns = [
    path("console/leads/", lead_list, name="leads"),
    path("console/leads/<int:pk>/", lead_detail, name="console-lead"),
]
