"""Reads for the lead queue (``/sdr/…``): the hot-first queue, one lead's page, the group
pool. Every read starts from ``leads_visible`` with ``sales.work``, so another unit's lead
is simply not there."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.contacts.selectors.contacts import ContactProfile, contact_profile
from apps.contacts.selectors.timeline import TimelineEntry, contact_timeline, timeline_entries
from apps.core.models import BusinessUnit, User
from apps.core.pagination import KeysetPage, keyset_page
from apps.core.roles import Role, roles_with
from apps.core.scoping import unit_roles, visible_unit_ids
from apps.sales.models import (
    TEMPERATURE_RANK,
    FollowUp,
    HistoryKind,
    Lead,
    LeadHistory,
    SlaPolicy,
    Stage,
)
from apps.sales.selectors.leads import lead_get, leads_visible
from apps.sales.services.leads import bant_missing
from apps.sales.services.stages import allowed_moves, policy_for

WORK = "sales.work"
# Who may list a unit's unassigned leads and take one (SDRs work the leads they are given).
TAKE_ROLES = frozenset({Role.ADMIN, Role.SALES_MANAGER})
# Hand-off choices: the people of the unit who accept MQLs.
SELLER_ROLES = (Role.SALES, Role.SALES_MANAGER)
# Hot first, then the clock that runs out first (no clock last), then the oldest lead.
QUEUE_ORDERING = ("temp_rank", "due_key", "id")
# Stands in for "no SLA clock" so the ordering (and the keyset cursor) never holds NULL.
NO_DUE = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
DUE_SOON = dt.timedelta(hours=24)
TIMELINE_SHOWN = 20
HISTORY_SHOWN = 50
FOLLOW_UPS_SHOWN = 20
DECLINED_SHOWN = 50


@dataclass(frozen=True)
class QueueFilters:
    stage: str = ""
    temperature: str = ""
    due_soon: bool = False
    needs_review: bool = False
    unassigned: bool = False

    def query(self) -> str:
        """The filters as a query string prefix for pager links (``a=b&``)."""
        parts = []
        if self.unassigned:
            parts.append("view=unassigned")
        if self.stage:
            parts.append(f"stage={self.stage}")
        if self.temperature:
            parts.append(f"temperature={self.temperature}")
        if self.due_soon:
            parts.append("due=24h")
        if self.needs_review:
            parts.append("review=1")
        return "".join(f"{p}&" for p in parts)


def take_unit_ids(*, user: User) -> frozenset[int]:
    """Units whose unassigned leads ``user`` may list and take (sales.work as manager/admin)."""
    if user.is_superuser:
        return visible_unit_ids(user, WORK)
    allowed = roles_with(WORK) & TAKE_ROLES
    return frozenset(unit for unit, role, _direct in unit_roles(user) if role in allowed)


def _ranked(qs: QuerySet[Lead]) -> QuerySet[Lead]:
    return qs.annotate(
        temp_rank=Case(
            *(When(temperature=t, then=Value(rank)) for t, rank in TEMPERATURE_RANK.items()),
            default=Value(len(TEMPERATURE_RANK)),
            output_field=IntegerField(),
        ),
        due_key=Coalesce("sla_due_at", Value(NO_DUE)),
    ).select_related("contact", "unit", "source_channel")


def lead_queue(
    *,
    user: User,
    filters: QueueFilters,
    unit_ids: set[int] | None = None,
    now: dt.datetime | None = None,
) -> QuerySet[Lead]:
    """My open leads (or, for managers, the unassigned ones of their units), ranked."""
    qs = leads_visible(user=user, permission=WORK).filter(is_open=True)
    if filters.unassigned:
        qs = qs.filter(sdr__isnull=True, unit_id__in=sorted(take_unit_ids(user=user)))
    else:
        qs = qs.filter(sdr_id=user.pk)
    if unit_ids is not None:
        qs = qs.filter(unit_id__in=sorted(unit_ids))
    if filters.stage:
        qs = qs.filter(stage=filters.stage)
    if filters.temperature:
        qs = qs.filter(temperature=filters.temperature)
    if filters.due_soon:
        qs = qs.filter(sla_due_at__lte=(now or timezone.now()) + DUE_SOON)
    if filters.needs_review:
        qs = qs.filter(needs_review=True)
    return _ranked(qs)


def queue_page(
    qs: QuerySet[Lead], *, cursor: str | None = None, size: int = 50
) -> KeysetPage[Lead]:
    """One page of the ranked queue (keys: the temperature rank and due-time annotations,
    then id)."""
    return keyset_page(qs, ordering=QUEUE_ORDERING, cursor=cursor, size=size)


# --- SLA countdown ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Countdown:
    text: str
    state: str  # "overdue", "soon" (within a day), "ok", "none"
    due_at: dt.datetime | None


def _span(seconds: int) -> str:
    minutes = max(seconds, 0) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return _("%(d)d d %(h)d h") % {"d": days, "h": hours}
    if hours:
        if mins:
            return _("%(h)d h %(m)d min") % {"h": hours, "m": mins}
        return _("%(h)d h") % {"h": hours}
    return _("%(m)d min") % {"m": mins}


def sla_countdown(due_at: dt.datetime | None, now: dt.datetime | None = None) -> Countdown:
    """ "due in 3 h 20 min" / "overdue 2 h", worked out on the server (a script keeps it
    ticking on the page)."""
    if due_at is None or due_at >= NO_DUE:
        return Countdown(_("no SLA clock"), "none", None)
    left = int((due_at - (now or timezone.now())).total_seconds())
    if left < 0:
        return Countdown(_("overdue %(t)s") % {"t": _span(-left)}, "overdue", due_at)
    state = "soon" if left <= DUE_SOON.total_seconds() else "ok"
    return Countdown(_("due in %(t)s") % {"t": _span(left)}, state, due_at)


@dataclass
class QueueRow:
    lead: Lead
    countdown: Countdown


def queue_rows(leads: list[Lead], now: dt.datetime | None = None) -> list[QueueRow]:
    now = now or timezone.now()
    return [QueueRow(lead, sla_countdown(lead.sla_due_at, now)) for lead in leads]


# --- One lead ---------------------------------------------------------------------------------


def lead_for_work(*, user: User, pk: Any) -> Lead | None:
    """The lead if ``user`` may work it (sales.work on its unit); None → 404."""
    return lead_get(user=user, pk=pk, permission=WORK)


@dataclass
class HistoryRow:
    entry: LeadHistory
    from_label: str
    to_label: str


@dataclass
class LeadPage:
    lead: Lead
    profile: ContactProfile
    policy: SlaPolicy
    bant_required: list[str]
    bant_missing: list[str]
    moves: list[str]
    countdown: Countdown
    timeline: list[TimelineEntry]
    history: list[HistoryRow]
    follow_ups: list[FollowUp]
    sellers: list[User]
    group_units: list[BusinessUnit]
    from_pool: bool
    explanation: Any = None
    score_model: Any = None
    flags: dict[str, bool] = field(default_factory=dict)


def _labels(rows: list[LeadHistory]) -> list[HistoryRow]:
    """Readable from/to values: stage names, people's names, unit names (two queries)."""
    people: set[int] = set()
    units: set[int] = set()
    for h in rows:
        ids = {int(v) for v in (h.from_value, h.to_value) if v.isdigit()}
        if h.kind in (HistoryKind.SDR, HistoryKind.OWNER):
            people |= ids
        elif h.kind == HistoryKind.UNIT:
            units |= ids
    names: dict[tuple[str, str], str] = {}
    if people:
        for u in User.objects.dangerously_unscoped().filter(pk__in=people):
            names[("person", str(u.pk))] = str(u)
    if units:
        for b in BusinessUnit.objects.dangerously_unscoped().filter(pk__in=units):
            names[("unit", str(b.pk))] = b.name
    stages = dict(Stage.choices)

    def label(kind: str, value: str) -> str:
        if not value:
            return "—"
        if kind == HistoryKind.STAGE:
            return str(stages.get(value, value))
        if kind in (HistoryKind.SDR, HistoryKind.OWNER):
            return names.get(("person", value), f"#{value}")
        if kind == HistoryKind.UNIT:
            return names.get(("unit", value), f"#{value}")
        return value

    return [HistoryRow(h, label(h.kind, h.from_value), label(h.kind, h.to_value)) for h in rows]


def _score(user: User, lead: Lead) -> tuple[Any, Any]:
    """The lead unit's scoring model for the contact and why the contact scores what it
    does (nurture's explanation), or (None, None) when no model scores them."""
    from apps.nurture.selectors import contact_scores
    from apps.nurture.services.scoring import score_explain

    rows = list(contact_scores(user=user, contact=lead.contact))
    mine = [r for r in rows if r.score.model.unit_id == lead.unit_id] or [
        r for r in rows if r.score.model.unit_id == lead.unit.parent_id
    ]
    if not mine:
        return None, None
    model = mine[0].score.model
    return model, score_explain(model=model, contact=lead.contact)


def lead_page(*, user: User, lead: Lead, now: dt.datetime | None = None) -> LeadPage:
    """Everything the lead page shows, in a fixed number of queries."""
    policy = policy_for(lead.unit_id)
    history = list(
        LeadHistory.objects.dangerously_unscoped()
        .filter(lead=lead)
        .select_related("actor")
        .order_by("-at", "-id")[:HISTORY_SHOWN]
    )
    timeline = contact_timeline(user=user, contact=lead.contact, size=TIMELINE_SHOWN)
    parent_id = lead.unit.parent_id
    from_pool = parent_id is not None and (
        LeadHistory.objects.dangerously_unscoped()
        .filter(lead=lead, kind=HistoryKind.UNIT, from_value=str(parent_id))
        .exists()
    )
    sellers = unit_sellers(lead=lead)
    group_units = (
        list(
            BusinessUnit.objects.dangerously_unscoped()
            .filter(parent_id=lead.unit_id, is_active=True)
            .order_by("name")
        )
        if lead.unit.is_group
        else []
    )
    model, explanation = _score(user, lead)
    return LeadPage(
        lead=lead,
        profile=contact_profile(user=user, contact=lead.contact),
        policy=policy,
        bant_required=list(policy.bant_required),
        bant_missing=bant_missing(lead, policy),
        moves=allowed_moves(lead, policy) if lead.is_open else [],
        countdown=sla_countdown(lead.sla_due_at, now),
        timeline=timeline_entries(timeline),
        history=_labels(history),
        follow_ups=list(
            FollowUp.objects.dangerously_unscoped()
            .filter(lead=lead)
            .select_related("user")
            .order_by("-occurred_at", "-id")[:FOLLOW_UPS_SHOWN]
        ),
        sellers=sellers,
        group_units=group_units,
        from_pool=from_pool,
        explanation=explanation,
        score_model=model,
    )


def unit_sellers(*, lead: Lead) -> list[User]:
    """Who the lead may be handed to: the unit's (or its group's) sales and managers."""
    return list(
        User.objects.dangerously_unscoped()
        .filter(
            is_active=True,
            memberships__unit_id__in=[u for u in (lead.unit_id, lead.unit.parent_id) if u],
            memberships__role__in=SELLER_ROLES,
        )
        .distinct()
        .order_by("display_name", "username")
    )


# --- The group pool ---------------------------------------------------------------------------


def pool_group_ids(*, user: User) -> list[int]:
    """Groups (units without a parent) where ``user`` may work leads."""
    ids = visible_unit_ids(user, WORK)
    if not ids:
        return []
    return list(
        BusinessUnit.objects.dangerously_unscoped()
        .filter(pk__in=sorted(ids), parent__isnull=True, is_active=True)
        .order_by("id")
        .values_list("id", flat=True)
    )


def pool_leads(*, user: User, group_ids: list[int]) -> QuerySet[Lead]:
    return _ranked(
        leads_visible(user=user, permission=WORK).filter(is_open=True, unit_id__in=group_ids)
    )


def pool_units(*, group_ids: list[int]) -> dict[int, list[BusinessUnit]]:
    found: dict[int, list[BusinessUnit]] = {g: [] for g in group_ids}
    for unit in (
        BusinessUnit.objects.dangerously_unscoped()
        .filter(parent_id__in=group_ids, is_active=True)
        .order_by("name", "id")
    ):
        found[unit.parent_id or 0].append(unit)
    return found


@dataclass
class DeclinedRow:
    entry: LeadHistory
    from_unit: str


def pool_declined(*, user: User, group_ids: list[int]) -> list[DeclinedRow]:
    """Leads units sent back to the pool, newest first, with their reasons."""
    if not group_ids:
        return []
    rows = list(
        LeadHistory.objects.visible_to(user, WORK)
        .filter(
            kind=HistoryKind.UNIT, unit_id__in=group_ids, to_value__in=[str(g) for g in group_ids]
        )
        .select_related("lead", "lead__contact")
        .order_by("-at", "-id")[:DECLINED_SHOWN]
    )
    ids = {int(r.from_value) for r in rows if r.from_value.isdigit()}
    names = (
        dict(
            BusinessUnit.objects.dangerously_unscoped().filter(pk__in=ids).values_list("id", "name")
        )
        if ids
        else {}
    )
    return [DeclinedRow(r, names.get(int(r.from_value), r.from_value)) for r in rows]


def pool_lead(*, user: User, pk: Any) -> Lead | None:
    """A lead in a group pool the user works; None → 404."""
    lead = lead_for_work(user=user, pk=pk)
    if lead is None or not lead.unit.is_group:
        return None
    return lead
