"""Sales reports (issue 7 point 11): the funnel with conversion between stages, SLA
compliance per person, SDR metrics and lead velocity, for a set of units and a period.

Each report is one grouped SQL query whatever the number of leads; the caller passes the
unit ids it already scoped to the user (``visible_unit_ids(user, "sales.reports")``,
narrowed by the unit switcher), so nothing here can widen what a person sees.

A period is ``[start, end)`` in aware datetimes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core.models import BusinessUnit, Membership, User
from apps.sales.models import (
    FUNNEL,
    FollowUp,
    FollowUpKind,
    HistoryKind,
    Lead,
    LeadHistory,
    SlaClock,
    SlaMiss,
    Stage,
)

PERMISSION = "sales.reports"
# A custom period longer than this is refused: the reports read history row by row.
MAX_DAYS = 366


def _pct(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(100 * part) / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def _rows(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


# --- The period -----------------------------------------------------------------------------


PERIODS = ("this_month", "last_month", "90d", "custom")


@dataclass(frozen=True)
class Period:
    key: str
    first_day: dt.date
    last_day: dt.date  # inclusive
    start: dt.datetime
    end: dt.datetime  # exclusive


def _midnight(day: dt.date, tz: Any) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=tz)


def period_make(key: str, first: dt.date, last: dt.date, tz: Any) -> Period:
    return Period(key, first, last, _midnight(first, tz), _midnight(last + dt.timedelta(1), tz))


def period_parse(
    *, key: str, date_from: str = "", date_to: str = "", today: dt.date | None = None
) -> Period:
    """The period a report covers, in the current time zone. Raises ``ValidationError``
    (fields ``period``, ``from``, ``to``) on bad input."""
    tz = timezone.get_current_timezone()
    today = today or timezone.localdate()
    key = key or "this_month"
    if key == "this_month":
        first = today.replace(day=1)
        following = (first + dt.timedelta(days=32)).replace(day=1)
        return period_make(key, first, following - dt.timedelta(1), tz)
    if key == "last_month":
        last = today.replace(day=1) - dt.timedelta(1)
        return period_make(key, last.replace(day=1), last, tz)
    if key == "90d":
        return period_make(key, today - dt.timedelta(days=89), today, tz)
    if key != "custom":
        raise ValidationError(
            {"period": _("Pick this month, last month, the last 90 days or a custom period.")}
        )
    errors: dict[str, str] = {}
    days: dict[str, dt.date] = {}
    for name, raw in (("from", date_from), ("to", date_to)):
        if not raw.strip():
            errors[name] = _("Enter the date as YYYY-MM-DD.")
            continue
        try:
            days[name] = dt.date.fromisoformat(raw.strip())
        except ValueError:
            errors[name] = _("“%(value)s” is not a date: enter it as YYYY-MM-DD.") % {
                "value": raw.strip()[:20]
            }
    if not errors:
        if days["from"] > days["to"]:
            errors["to"] = _("The end date is before the start date.")
        elif (days["to"] - days["from"]).days + 1 > MAX_DAYS:
            errors["to"] = _("A report covers at most %(n)d days.") % {"n": MAX_DAYS}
    if errors:
        raise ValidationError(errors)
    return period_make(key, days["from"], days["to"], tz)


# --- (a) Funnel -----------------------------------------------------------------------------


@dataclass
class FunnelStep:
    stage: str
    label: str
    count: int
    # Of the leads that reached the previous step in the period, the share that reached
    # this one in the period too (None for the first step or when the previous had none).
    conversion: Decimal | None = None
    converted: int = 0
    # Geometry of the bar in the SVG (server-rendered chart).
    y: int = 0
    width: int = 0


@dataclass
class Funnel:
    steps: list[FunnelStep]
    total: int
    chart_height: int = 0
    bar_max: int = 360
    row: int = 30


_TQL = str(Stage.TQL)


def sales_funnel(*, unit_ids: Iterable[int], period: Period) -> Funnel:
    """Leads that reached each funnel stage in the period (stage history, one count per
    lead), and the conversion between consecutive stages as a cohort: of those that
    reached stage A, how many also reached the next stage B in the period (SAL converts
    from MQL even where TQL is shown)."""
    stages = [str(s) for s in FUNNEL]
    pairs = [(a, b) for i, a in enumerate(stages) for b in stages[i + 1 :]]
    columns = [f"count(*) FILTER (WHERE %(s{i})s = ANY(stages))" for i in range(len(stages))]
    columns += [
        f"count(*) FILTER (WHERE %(s{stages.index(a)})s = ANY(stages) "
        f"AND %(s{stages.index(b)})s = ANY(stages))"
        for a, b in pairs
    ]
    sql = f"""
        WITH reached AS (
            SELECT lead_id, array_agg(DISTINCT to_value) AS stages
            FROM {LeadHistory._meta.db_table}
            WHERE unit_id = ANY(%(units)s) AND kind = %(kind)s
              AND at >= %(start)s AND at < %(end)s AND to_value = ANY(%(funnel)s)
            GROUP BY lead_id
        )
        SELECT count(*), {", ".join(columns)} FROM reached
    """  # noqa: S608 - table name from model metadata, values are parameters
    params: dict[str, Any] = {
        "units": sorted(unit_ids),
        "kind": HistoryKind.STAGE,
        "start": period.start,
        "end": period.end,
        "funnel": stages,
        **{f"s{i}": s for i, s in enumerate(stages)},
    }
    row = _rows(sql, params)[0]
    total, counts = int(row[0]), dict(zip(stages, (int(v) for v in row[1:]), strict=False))
    both = dict(zip(pairs, (int(v) for v in row[1 + len(stages) :]), strict=True))
    # TQL shows only where some unit uses it (a lead reached it in the period).
    shown = [s for s in stages if s != _TQL or counts[s]]
    steps: list[FunnelStep] = []
    for i, stage in enumerate(shown):
        step = FunnelStep(stage, str(Stage(stage).label), counts[stage])
        # TQL is a side step only some units take: the stage after it converts from MQL,
        # so a report over units with and without TQL stays comparable.
        before = [s for s in shown[:i] if s != _TQL or stage == _TQL]
        if before:
            previous = before[-1]
            step.converted = both[(previous, stage)]
            step.conversion = _pct(step.converted, counts[previous])
        steps.append(step)
    funnel = Funnel(steps=steps, total=total)
    widest = max((s.count for s in steps), default=0)
    for i, step in enumerate(steps):
        step.y = i * funnel.row
        step.width = round(funnel.bar_max * step.count / widest) if widest else 0
        if step.count and step.width < 2:
            step.width = 2  # a lead or two must still show
    funnel.chart_height = len(steps) * funnel.row
    return funnel


# --- (b) SLA compliance ---------------------------------------------------------------------


@dataclass
class SlaRow:
    user_id: int
    name: str
    clock: str
    clock_label: str
    kept: int
    missed: int

    @property
    def total(self) -> int:
        return self.kept + self.missed

    @property
    def rate(self) -> Decimal | None:
        return _pct(self.kept, self.total)


def _user_name(display_name: str, username: str) -> str:
    return display_name or username


def sla_compliance(*, unit_ids: Iterable[int], period: Period) -> list[SlaRow]:
    """Per person and clock: runs that ended on time and runs that were missed.

    A miss is a ``SlaMiss`` due in the period. A run ended on time when the step it waits
    for happened in the period before the sweep recorded a miss (the sweep acts within a
    minute of the due time and ends the run: it returns or recycles the lead, or stops the
    first-touch clock), so a step that happened at all was on time, except a first touch
    after a recorded first-touch miss:

    - first touch: the lead's first call/visit/chat/meeting/email, by whoever logged it,
      unless a first-touch miss of that lead was due before it;
    - accept: the salesperson the lead was handed to accepted it (SAL) or sent it back;
    - SQL decision: a person moved the lead on from SAL (SQL, back, disqualified…);
    - follow-up: each follow-up (not a note) a salesperson logged on a lead they accepted.
    """
    history, followups = LeadHistory._meta.db_table, FollowUp._meta.db_table
    leads, misses, users = Lead._meta.db_table, SlaMiss._meta.db_table, User._meta.db_table
    sql = f"""
        WITH facts AS (
            SELECT DISTINCT ON (f.lead_id) f.user_id, %(first_touch)s AS clock,
                   1 AS kept, 0 AS missed
            FROM {leads} l
            JOIN {followups} f ON f.lead_id = l.id AND f.occurred_at = l.first_touched_at
                 AND f.kind <> %(note)s
            WHERE f.unit_id = ANY(%(units)s)
              AND l.first_touched_at >= %(start)s AND l.first_touched_at < %(end)s
              AND NOT EXISTS (
                  SELECT 1 FROM {misses} m WHERE m.lead_id = l.id
                  AND m.clock = %(first_touch)s AND m.due_at <= l.first_touched_at)
          UNION ALL
            SELECT h.actor_id, CASE WHEN h.from_value = %(sal)s THEN %(sql_decision)s
                                    ELSE %(accept)s END, 1, 0
            FROM {history} h
            WHERE h.unit_id = ANY(%(units)s) AND h.kind = %(stage)s
              AND h.at >= %(start)s AND h.at < %(end)s AND h.actor_id IS NOT NULL
              AND (h.from_value = %(sal)s
                   OR (h.from_value IN (%(mql)s, %(tql)s) AND h.to_value IN (%(sal)s, %(mil)s)
                       AND EXISTS (
                           SELECT 1 FROM {history} o WHERE o.lead_id = h.lead_id
                           AND o.kind = %(owner)s AND o.to_value = h.actor_id::text
                           AND o.at <= h.at)))
          UNION ALL
            SELECT f.user_id, %(follow_up)s, 1, 0
            FROM {followups} f
            WHERE f.unit_id = ANY(%(units)s) AND f.kind <> %(note)s
              AND f.occurred_at >= %(start)s AND f.occurred_at < %(end)s
              AND EXISTS (
                  SELECT 1 FROM {history} a WHERE a.lead_id = f.lead_id AND a.kind = %(stage)s
                  AND a.to_value = %(sal)s AND a.actor_id = f.user_id AND a.at <= f.occurred_at)
          UNION ALL
            SELECT m.user_id, m.clock, 0, 1
            FROM {misses} m
            WHERE m.unit_id = ANY(%(units)s) AND m.user_id IS NOT NULL
              AND m.due_at >= %(start)s AND m.due_at < %(end)s
        )
        SELECT u.id, u.display_name, u.username, facts.clock, sum(kept), sum(missed)
        FROM facts JOIN {users} u ON u.id = facts.user_id
        GROUP BY u.id, u.display_name, u.username, facts.clock
    """  # noqa: S608 - table names from model metadata, values are parameters
    params = {
        "units": sorted(unit_ids),
        "start": period.start,
        "end": period.end,
        "note": FollowUpKind.NOTE,
        "stage": HistoryKind.STAGE,
        "owner": HistoryKind.OWNER,
        "first_touch": SlaClock.FIRST_TOUCH,
        "accept": SlaClock.ACCEPT,
        "sql_decision": SlaClock.SQL_DECISION,
        "follow_up": SlaClock.FOLLOW_UP,
        "mql": Stage.MQL,
        "tql": Stage.TQL,
        "sal": Stage.SAL,
        "mil": Stage.MIL,
    }
    order = {c: i for i, c in enumerate(SlaClock.values)}
    rows = [
        SlaRow(
            user_id=r[0],
            name=_user_name(r[1], r[2]),
            clock=r[3],
            clock_label=str(SlaClock(r[3]).label) if r[3] in SlaClock.values else r[3],
            kept=int(r[4]),
            missed=int(r[5]),
        )
        for r in _rows(sql, params)
    ]
    rows.sort(key=lambda r: (r.name, r.user_id, order.get(r.clock, 99)))
    return rows


CLOCKS = [c for c in SlaClock.values if c]


@dataclass
class SlaPerson:
    """One person's line of the compliance table: a cell per clock (None: no run ended)."""

    user_id: int
    name: str
    cells: list[SlaRow | None]
    kept: int
    missed: int

    @property
    def rate(self) -> Decimal | None:
        return _pct(self.kept, self.kept + self.missed)


def sla_by_person(rows: list[SlaRow]) -> list[SlaPerson]:
    """``sla_compliance`` rows pivoted to one line per person, clocks in ``CLOCKS`` order."""
    people: dict[int, SlaPerson] = {}
    for row in rows:
        person = people.get(row.user_id)
        if person is None:
            person = people[row.user_id] = SlaPerson(
                row.user_id, row.name, [None] * len(CLOCKS), 0, 0
            )
        if row.clock in CLOCKS:
            person.cells[CLOCKS.index(row.clock)] = row
        person.kept += row.kept
        person.missed += row.missed
    return sorted(people.values(), key=lambda p: (-p.missed, p.name, p.user_id))


# --- (c) SDR metrics ------------------------------------------------------------------------


@dataclass
class SdrRow:
    user_id: int
    name: str
    touches: int
    mqls: int
    credited: int
    pending: int
    returned: int

    @property
    def sqls(self) -> int:
        return self.credited + self.pending + self.returned


def sdr_metrics(*, unit_ids: Iterable[int], period: Period) -> list[SdrRow]:
    """Per SDR of the units (a group SDR counts for its units): touches (follow-ups other
    than notes) they logged, leads they qualified to MQL, and the SQLs reached in the period
    that credit them, by credit status (credited, pending, returned by sales)."""
    history, followups, leads = (
        LeadHistory._meta.db_table,
        FollowUp._meta.db_table,
        Lead._meta.db_table,
    )
    members, units, users = (
        Membership._meta.db_table,
        BusinessUnit._meta.db_table,
        User._meta.db_table,
    )
    sql = f"""
        WITH sdrs AS (
            SELECT DISTINCT m.user_id FROM {members} m
            WHERE m.role = %(role)s AND (m.unit_id = ANY(%(units)s) OR m.unit_id IN (
                SELECT parent_id FROM {units} WHERE id = ANY(%(units)s)
                AND parent_id IS NOT NULL))
        ), facts AS (
            SELECT f.user_id, 1 AS touches, 0 AS mqls, 0 AS credited, 0 AS pending,
                   0 AS returned
            FROM {followups} f
            WHERE f.unit_id = ANY(%(units)s) AND f.kind <> %(note)s
              AND f.occurred_at >= %(start)s AND f.occurred_at < %(end)s
          UNION ALL
            SELECT h.actor_id, 0, 1, 0, 0, 0 FROM {history} h
            WHERE h.unit_id = ANY(%(units)s) AND h.kind = %(stage)s AND h.to_value = %(mql)s
              AND h.actor_id IS NOT NULL AND h.at >= %(start)s AND h.at < %(end)s
          UNION ALL
            SELECT l.credit_sdr_id, 0, 0, (l.credit_status = %(credited)s)::int,
                   (l.credit_status = %(pending)s)::int, (l.credit_status = %(revoked)s)::int
            FROM {leads} l
            WHERE l.unit_id = ANY(%(units)s) AND l.credit_sdr_id IS NOT NULL
              AND l.sql_at >= %(start)s AND l.sql_at < %(end)s
        )
        SELECT u.id, u.display_name, u.username, coalesce(sum(touches), 0),
               coalesce(sum(mqls), 0), coalesce(sum(credited), 0), coalesce(sum(pending), 0),
               coalesce(sum(returned), 0)
        FROM sdrs JOIN {users} u ON u.id = sdrs.user_id
        LEFT JOIN facts ON facts.user_id = sdrs.user_id
        GROUP BY u.id, u.display_name, u.username
    """  # noqa: S608 - table names from model metadata, values are parameters
    params = {
        "units": sorted(unit_ids),
        "start": period.start,
        "end": period.end,
        "role": "sdr",
        "note": FollowUpKind.NOTE,
        "stage": HistoryKind.STAGE,
        "mql": Stage.MQL,
        "credited": "credited",
        "pending": "pending",
        "revoked": "revoked",
    }
    rows = [
        SdrRow(r[0], _user_name(r[1], r[2]), *(int(v) for v in r[3:])) for r in _rows(sql, params)
    ]
    rows.sort(key=lambda r: (-r.mqls, -r.touches, r.name, r.user_id))
    return rows


# --- (d) Velocity ---------------------------------------------------------------------------


@dataclass
class VelocityRow:
    stage: str
    label: str
    stays: int
    median_days: Decimal
    width: int = 0
    y: int = 0


@dataclass
class Velocity:
    rows: list[VelocityRow]
    chart_height: int = 0
    bar_max: int = 360
    row: int = 30


def lead_velocity(*, unit_ids: Iterable[int], period: Period) -> Velocity:
    """Median days a lead spent in each stage: the time between a stage history row and
    the lead's next one, for stays that ended in the period (PostgreSQL
    ``percentile_cont(0.5)``). Stays still running are not counted."""
    stages = [str(s) for s in FUNNEL if s != Stage.CUSTOMER]
    sql = f"""
        WITH stays AS (
            SELECT to_value AS stage, at,
                   lead(at) OVER (PARTITION BY lead_id ORDER BY at, id) AS left_at
            FROM {LeadHistory._meta.db_table}
            WHERE unit_id = ANY(%(units)s) AND kind = %(kind)s AND at < %(end)s
        )
        SELECT stage, count(*),
               percentile_cont(0.5) WITHIN GROUP (
                   ORDER BY extract(epoch FROM left_at - at) / 86400.0)
        FROM stays
        WHERE left_at >= %(start)s AND left_at < %(end)s AND stage = ANY(%(stages)s)
        GROUP BY stage
    """  # noqa: S608 - table name from model metadata, values are parameters
    params = {
        "units": sorted(unit_ids),
        "kind": HistoryKind.STAGE,
        "start": period.start,
        "end": period.end,
        "stages": stages,
    }
    found = {r[0]: (int(r[1]), Decimal(str(r[2]))) for r in _rows(sql, params)}
    rows = [
        VelocityRow(
            stage=s,
            label=str(Stage(s).label),
            stays=found[s][0],
            median_days=found[s][1].quantize(Decimal("0.1"), ROUND_HALF_UP),
        )
        for s in stages
        if s in found
    ]
    velocity = Velocity(rows=rows)
    longest = max((r.median_days for r in rows), default=Decimal(0))
    for i, r in enumerate(rows):
        r.y = i * velocity.row
        r.width = int(velocity.bar_max * r.median_days / longest) if longest else 0
        if r.width < 2:
            r.width = 2
    velocity.chart_height = len(rows) * velocity.row
    return velocity
