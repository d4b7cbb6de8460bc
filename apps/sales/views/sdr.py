"""The lead queue (``/sdr/…``): my hot-first queue, a lead's page with every SDR action,
and the group pool.

Every lead is read through ``selectors.queue`` (``sales.work`` on its unit): another
unit's lead is a 404. Every action calls one service; a refusal re-renders the page with
the service's message and changes nothing (the services are transactional).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.core.models import User
from apps.core.pagination import InvalidCursor
from apps.core.roles import Surface
from apps.core.web import page_units, surface_context, surface_required, user_of
from apps.sales.models import (
    Authority,
    FollowUpKind,
    Lead,
    LeadTemperature,
    Stage,
    Timeline,
)
from apps.sales.selectors import queue as selectors
from apps.sales.services import leads as services

PAGE_SIZE = 50


def _bant_label(name: str) -> str:
    labels = {
        "budget": _("Budget"),
        "authority": _("Authority"),
        "need": _("Need"),
        "timeline": _("Timing"),
    }
    return labels.get(name, name)


def _errors(exc: ValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {k: [str(m) for m in v] for k, v in exc.message_dict.items()}
    return {"__all__": [str(m) for m in exc.messages]}


# --- The queue --------------------------------------------------------------------------------


def _filters(request: HttpRequest, may_take: bool) -> selectors.QueueFilters:
    get = request.GET
    stage = get.get("stage", "")
    temperature = get.get("temperature", "")
    return selectors.QueueFilters(
        stage=stage if stage in Stage.values else "",
        temperature=temperature if temperature in LeadTemperature.values else "",
        due_soon=get.get("due") == "24h",
        needs_review=get.get("review") == "1",
        unassigned=may_take and get.get("view") == "unassigned",
    )


@surface_required(Surface.SDR)
def queue(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    may_take = bool(selectors.take_unit_ids(user=user))
    filters = _filters(request, may_take)
    now = timezone.now()
    qs = selectors.lead_queue(
        user=user, filters=filters, unit_ids=page_units(request, selectors.WORK), now=now
    )
    try:
        page = selectors.queue_page(qs, cursor=request.GET.get("cursor"), size=PAGE_SIZE)
    except InvalidCursor:
        messages.warning(request, _("That page link is no longer valid; showing the first page."))
        page = selectors.queue_page(qs, size=PAGE_SIZE)
    context = surface_context(
        request,
        Surface.SDR,
        page=page,
        rows=selectors.queue_rows(page.items, now),
        filters=filters,
        filter_query=filters.query(),
        filtered=any((filters.stage, filters.temperature, filters.due_soon, filters.needs_review)),
        may_take=may_take,
        stages=Stage.choices,
        temperatures=LeadTemperature.choices,
    )
    return render(request, "sales/sdr/queue.html", context)


@surface_required(Surface.SDR)
@require_POST
def take(request: HttpRequest, pk: int) -> HttpResponse:
    """A manager takes an unassigned lead of their unit: they become its SDR."""
    user = user_of(request)
    lead = selectors.lead_for_work(user=user, pk=pk)
    if lead is None or lead.unit_id not in selectors.take_unit_ids(user=user):
        raise Http404
    back = f"{reverse('sales:sdr-queue')}?view=unassigned"
    if lead.sdr_id is not None:
        messages.error(request, _("Someone else took this lead already."))
        return redirect(back)
    try:
        services.lead_assign_sdr(lead=lead, sdr=user, actor=user, only_if_unassigned=True)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(back)
    messages.success(request, _("The lead is yours now: it is in your queue."))
    return redirect("sales:sdr-lead", lead.pk)


# --- One lead ---------------------------------------------------------------------------------


def _lead_or_404(request: HttpRequest, pk: int) -> Lead:
    lead = selectors.lead_for_work(user=user_of(request), pk=pk)
    if lead is None:
        raise Http404
    return lead


def _render_lead(
    request: HttpRequest,
    lead: Lead,
    *,
    failed: str = "",
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> HttpResponse:
    user = user_of(request)
    page = selectors.lead_page(user=user, lead=lead)
    posted = request.POST if failed else {}
    context = surface_context(
        request,
        Surface.SDR,
        lead=lead,
        p=page,
        contact=lead.contact,
        profile=page.profile,
        explanation=page.explanation,
        timeline=page.timeline,
        failed=failed,
        errors=errors or {},
        posted=posted,
        bant_required=[(f, _bant_label(f), f in page.bant_missing) for f in page.bant_required],
        bant_missing_labels=[_bant_label(f) for f in page.bant_missing],
        may_qualify=Stage.MQL in page.moves,
        may_disqualify=Stage.DISQUALIFIED in page.moves,
        may_recycle=Stage.RECYCLED in page.moves,
        may_handoff=(
            lead.is_open
            and not lead.unit.is_group
            and lead.stage == (Stage.TQL if page.policy.use_tql else Stage.MQL)
        ),
        may_hand_to_unit=lead.is_open and lead.unit.is_group and lead.stage == Stage.MQL,
        may_decline=lead.is_open and page.from_pool,
        kinds=FollowUpKind.choices,
        authorities=Authority.choices,
        timelines=Timeline.choices,
        temperatures=LeadTemperature.choices,
    )
    return render(request, "sales/sdr/lead.html", context, status=status)


@surface_required(Surface.SDR)
def lead_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_lead(request, _lead_or_404(request, pk))


def _when(raw: str) -> dt.datetime | None:
    """A ``datetime-local`` value in the user's time zone (None when empty)."""
    raw = raw.strip()
    if not raw:
        return None
    value = parse_datetime(raw)
    if value is None:
        raise ValidationError({"next_step_at": _("Enter the date and time as YYYY-MM-DD HH:MM.")})
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


def _log(request: HttpRequest, lead: Lead, user: User) -> str:
    post = request.POST
    services.follow_up_log(
        lead=lead,
        actor=user,
        kind=post.get("kind", ""),
        note=post.get("note", ""),
        next_step=post.get("next_step", ""),
        next_step_at=_when(post.get("next_step_at", "")),
    )
    return _("Logged.")


def _bant(request: HttpRequest, lead: Lead, user: User) -> str:
    fields = ("budget", "authority", "need", "timeline", "temperature")
    data = {f: request.POST.get(f, "") for f in fields if f in request.POST}
    services.lead_update(lead=lead, data=data, actor=user)
    return _("BANT saved.")


def _qualify(request: HttpRequest, lead: Lead, user: User) -> str:
    services.lead_qualify(lead=lead, actor=user, reason=request.POST.get("reason", ""))
    return _("Qualified: the lead is an MQL now.")


def _disqualify(request: HttpRequest, lead: Lead, user: User) -> str:
    services.lead_move(
        lead=lead,
        to_stage=Stage.DISQUALIFIED,
        actor=user,
        reason=request.POST.get("reason", ""),
    )
    return _("Disqualified.")


def _recycle(request: HttpRequest, lead: Lead, user: User) -> str:
    services.lead_move(
        lead=lead, to_stage=Stage.RECYCLED, actor=user, reason=request.POST.get("reason", "")
    )
    return _("Recycled to the pool for nurturing.")


def _handoff(request: HttpRequest, lead: Lead, user: User) -> str:
    raw = request.POST.get("owner", "")
    owner = None
    if raw:
        owner = next((u for u in selectors.unit_sellers(lead=lead) if str(u.pk) == raw), None)
        if owner is None:
            raise ValidationError({"owner": _("Pick a salesperson of this unit from the list.")})
    lead = services.lead_handoff(
        lead=lead, actor=user, owner=owner, note=request.POST.get("note", "")
    )
    return _("Handed to %(name)s.") % {"name": str(lead.owner) if lead.owner else "—"}


def _hand_to_unit(request: HttpRequest, lead: Lead, user: User) -> str:
    raw = request.POST.get("unit", "")
    unit = next(
        (
            u
            for u in selectors.pool_units(group_ids=[lead.unit_id])[lead.unit_id]
            if str(u.pk) == raw
        ),
        None,
    )
    if unit is None:
        raise ValidationError({"unit": _("Pick a business unit of this group from the list.")})
    services.lead_hand_to_unit(
        lead=lead, unit=unit, actor=user, reason=request.POST.get("reason", "")
    )
    return _("Handed to %(unit)s.") % {"unit": unit.name}


def _decline(request: HttpRequest, lead: Lead, user: User) -> str:
    services.lead_decline_to_pool(lead=lead, actor=user, reason=request.POST.get("reason", ""))
    return _("Sent back to the group pool.")


ACTIONS: dict[str, Callable[[HttpRequest, Lead, User], str]] = {
    "log": _log,
    "bant": _bant,
    "qualify": _qualify,
    "disqualify": _disqualify,
    "recycle": _recycle,
    "handoff": _handoff,
    "hand-to-unit": _hand_to_unit,
    "decline": _decline,
}
# After these the lead usually leaves the SDR's reach (another unit, the pool, sales).
BACK_TO_LIST = {"hand-to-unit": "sales:sdr-pool", "decline": "sales:sdr-queue"}


@surface_required(Surface.SDR)
@require_POST
def lead_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    handler = ACTIONS.get(action)
    if handler is None:
        raise Http404
    lead = _lead_or_404(request, pk)
    user = user_of(request)
    try:
        message = handler(request, lead, user)
    except ValidationError as exc:
        errors = _errors(exc)
        messages.error(request, " ".join(m for ms in errors.values() for m in ms))
        if request.POST.get("from") == "pool":
            return _render_pool(request, status=400)
        # The services locked and refused: reload what is stored, not the half-set object.
        lead = _lead_or_404(request, pk)
        return _render_lead(request, lead, failed=action, errors=errors, status=400)
    messages.success(request, message)
    if request.POST.get("from") == "pool":
        return redirect("sales:sdr-pool")
    if action in BACK_TO_LIST and selectors.lead_for_work(user=user, pk=pk) is None:
        return redirect(BACK_TO_LIST[action])
    return redirect("sales:sdr-lead", pk)


# --- The group pool ---------------------------------------------------------------------------


@surface_required(Surface.SDR)
def pool(request: HttpRequest) -> HttpResponse:
    return _render_pool(request)


def _render_pool(request: HttpRequest, status: int = 200) -> HttpResponse:
    user = user_of(request)
    group_ids = selectors.pool_group_ids(user=user)
    qs = selectors.pool_leads(user=user, group_ids=group_ids)
    try:
        page = selectors.queue_page(qs, cursor=request.GET.get("cursor"), size=PAGE_SIZE)
    except InvalidCursor:
        messages.warning(request, _("That page link is no longer valid; showing the first page."))
        page = selectors.queue_page(qs, size=PAGE_SIZE)
    units = selectors.pool_units(group_ids=group_ids) if group_ids else {}
    rows = [
        {"row": row, "units": units.get(row.lead.unit_id, [])}
        for row in selectors.queue_rows(page.items)
    ]
    context = surface_context(
        request,
        Surface.SDR,
        has_pool=bool(group_ids),
        page=page,
        rows=rows,
        declined=selectors.pool_declined(user=user, group_ids=group_ids),
        filter_query="",
    )
    return render(request, "sales/sdr/pool.html", context, status=status)


urlpatterns = [
    path("sdr/", queue, name="sdr-queue"),
    path("sdr/pool/", pool, name="sdr-pool"),
    path("sdr/leads/<int:pk>/", lead_detail, name="sdr-lead"),
    path("sdr/leads/<int:pk>/take/", take, name="sdr-lead-take"),
    path("sdr/leads/<int:pk>/<slug:action>/", lead_action, name="sdr-lead-action"),
]
