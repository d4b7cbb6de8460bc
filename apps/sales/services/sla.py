"""SLA clocks: which one runs for a lead now, when it is due, and the sweep that enforces
them.

A lead carries one running clock (``sla_clock``, ``sla_due_at``): the earliest of the
clocks its stage has. Durations come from the unit's ``SlaPolicy`` and count working
time from the holiday calendar (``apps.core.workcalendar``) unless the policy says
"hours (round the clock)".

The sweep (``sla_sweep``, every minute from beat) claims due leads with ``FOR UPDATE SKIP
LOCKED`` in batches, records each miss once (``SlaMiss`` is unique per lead, clock and due
time), acts on the lead and clears or moves its clock in the same transaction: two beats
and two workers at once cannot act twice on one lead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core.workcalendar import WorkingHours, add_working_days, add_working_hours
from apps.sales.models import (
    CreditStatus,
    DurationUnit,
    HistoryKind,
    Lead,
    LeadHistory,
    SlaClock,
    SlaMiss,
    SlaPolicy,
    Stage,
)

BATCH = 5000


def working_hours(policy: SlaPolicy) -> WorkingHours:
    tz = getattr(policy.unit, "time_zone", None) or "Asia/Shanghai"
    return WorkingHours(policy.work_start, policy.work_end, tz)


def due_after(start: dt.datetime, value: int, unit: str, policy: SlaPolicy) -> dt.datetime:
    """``value`` ``unit``s after ``start`` under ``policy``'s calendar and hours."""
    if unit == DurationUnit.HOURS:
        return start + dt.timedelta(hours=value)
    if unit == DurationUnit.WORKING_DAYS:
        return add_working_days(start, value, working_hours(policy))
    return add_working_hours(start, value, working_hours(policy))


def clocks_for(lead: Lead, policy: SlaPolicy, now: dt.datetime) -> dict[str, dt.datetime]:
    """Every clock that runs for ``lead`` in its stage, with its due time."""
    clocks: dict[str, dt.datetime] = {}
    if not lead.is_open:
        return clocks
    if lead.stage in (Stage.MAL, Stage.MIL) and lead.sdr_id and lead.first_touched_at is None:
        start = lead.stage_changed_at or now
        clocks[SlaClock.FIRST_TOUCH] = due_after(
            start, policy.first_touch_value, policy.first_touch_unit, policy
        )
    if lead.stage in (Stage.MQL, Stage.TQL) and lead.owner_id and lead.handed_at:
        clocks[SlaClock.ACCEPT] = due_after(
            lead.handed_at, policy.accept_value, policy.accept_unit, policy
        )
    if lead.stage == Stage.SAL and lead.accepted_at:
        clocks[SlaClock.SQL_DECISION] = due_after(
            lead.accepted_at, policy.sql_value, policy.sql_unit, policy
        )
    if lead.stage in (Stage.SAL, Stage.SQL) and lead.owner_id:
        last = max(
            filter(None, [lead.last_follow_up_at, lead.accepted_at, lead.sql_at]), default=now
        )
        clocks[SlaClock.FOLLOW_UP] = due_after(
            last, policy.follow_up_value, policy.follow_up_unit, policy
        )
    return clocks


def clock_restart(lead: Lead, *, policy: SlaPolicy, now: dt.datetime, missed: str = "") -> None:
    """Set the lead's running clock to the earliest of its clocks (does not save).

    ``missed``: the clock that just ran out stays off (a missed first touch is recorded
    once, not every minute until the SDR calls)."""
    clocks = clocks_for(lead, policy, now)
    clocks.pop(missed, None)
    if not clocks:
        lead.sla_clock, lead.sla_due_at, lead.sla_warn_at = "", None, None
        return
    clock, due = min(clocks.items(), key=lambda item: item[1])
    if clock != lead.sla_clock or due != lead.sla_due_at:
        lead.sla_clock, lead.sla_due_at = clock, due
        warn = due - dt.timedelta(minutes=policy.warn_before_minutes)
        lead.sla_warn_at = warn if policy.warn_before_minutes and warn > now else None


# --- The sweep ----------------------------------------------------------------------------


@dataclass
class SweepResult:
    missed: int = 0
    recycled: int = 0
    returned: int = 0
    warned: int = 0
    credited: int = 0


def _claim(sql: str, now: dt.datetime, limit: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, limit])
        return [row[0] for row in cursor.fetchall()]


def sla_sweep(*, now: dt.datetime | None = None, batch: int = BATCH) -> SweepResult:
    """Act on every lead whose clock ran out, batch by batch, until none is due
    (``services/sla_sweep.py``: one statement per batch), then send due warnings and
    settle SDR credits."""
    from apps.sales.services.sla_sweep import sweep_batch

    total = SweepResult()
    tz = timezone.get_current_timezone_name()
    while True:
        result = sweep_batch(now or timezone.now(), batch, tz)
        total.missed += result.claimed
        total.recycled += result.recycled
        total.returned += result.returned
        if result.claimed < batch:
            break
    total.warned = sla_warn_sweep(now=now)
    total.credited = credit_sweep(now=now)
    return total


_CLAIM_WARN = f"""
    SELECT id FROM {Lead._meta.db_table}
    WHERE sla_warn_at <= %s
    ORDER BY sla_warn_at
    LIMIT %s
    FOR UPDATE SKIP LOCKED
"""  # noqa: S608 - our table name


@transaction.atomic
def sla_warn_sweep(*, now: dt.datetime | None = None, batch: int = 5000) -> int:
    """Tell the person on the clock that it is about to run out (once per clock run)."""
    from apps.sales.services import alerts

    now = now or timezone.now()
    ids = _claim(_CLAIM_WARN, now, batch)
    if not ids:
        return 0
    out = []
    for lead in Lead.objects.dangerously_unscoped().select_related("contact").filter(pk__in=ids):
        user_id = lead.sdr_id if lead.sla_clock == SlaClock.FIRST_TOUCH else lead.owner_id
        if user_id and lead.sla_due_at:
            out.append(
                alerts.AlertIn(
                    user_id=user_id,
                    kind="sla_warning",
                    unit_id=lead.unit_id,
                    lead_id=lead.pk,
                    title=_("SLA about to run out: %(name)s") % {"name": str(lead.contact)},
                    body=_("%(clock)s due %(due)s")
                    % {
                        "clock": SlaClock(lead.sla_clock).label if lead.sla_clock else "",
                        "due": timezone.localtime(lead.sla_due_at).strftime("%m-%d %H:%M"),
                    },
                    dedupe_key=f"sla-warn:{lead.pk}:{lead.sla_due_at.timestamp():.0f}",
                )
            )
    Lead.objects.dangerously_unscoped().filter(pk__in=ids).update(sla_warn_at=None)
    alerts.alerts_send(out)
    return len(ids)


@transaction.atomic
def credit_sweep(*, now: dt.datetime | None = None) -> int:
    """SQLs that sales kept past the credit window become the SDR's credit."""
    now = now or timezone.now()
    due = (
        Lead.objects.dangerously_unscoped()
        .filter(credit_status=CreditStatus.PENDING, credit_due_at__lte=now)
        .select_for_update(skip_locked=True)
    )
    ids = list(due.values_list("id", "unit_id")[:5000])
    if not ids:
        return 0
    LeadHistory.objects.bulk_create(
        LeadHistory(
            lead_id=pk,
            unit_id=unit_id,
            kind=HistoryKind.CREDIT,
            from_value="pending",
            to_value="credited",
            actor_label="SLA",
            at=now,
        )
        for pk, unit_id in ids
    )
    Lead.objects.dangerously_unscoped().filter(pk__in=[pk for pk, _u in ids]).update(
        credit_status=CreditStatus.CREDITED
    )
    return len(ids)


def misses_in_month(user_ids: Any, month_start: dt.date) -> dict[int, int]:
    """How many SLA misses each user had in the calendar month starting ``month_start``."""
    from django.db.models import Count

    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(month_start, dt.time(0), tzinfo=tz)
    end_month = (month_start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    end = dt.datetime.combine(end_month, dt.time(0), tzinfo=tz)
    rows = (
        SlaMiss.objects.dangerously_unscoped()
        .filter(user_id__in=list(user_ids), due_at__gte=start, due_at__lt=end)
        .values("user_id")
        .annotate(n=Count("id"))
    )
    return {r["user_id"]: r["n"] for r in rows}
