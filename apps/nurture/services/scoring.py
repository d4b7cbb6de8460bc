"""The scoring engine: set-based recompute, incremental recompute, decay, and explanations.

One SQL statement scores a batch of contacts for one model:

- **fit**: the contacts known to the model's unit (active ones), each with
  ``Σ CASE WHEN <rule condition> THEN points ELSE 0 END`` over the fit rules. Conditions
  are compiled by ``apps.contacts.services.tag_rules.rule_condition`` (allowlisted fields,
  values as parameters), so the sum is one ORM annotation;
- **engagement**: the activities each engagement rule matches (the rules as a VALUES list
  joined to the activities, ``occurred_at <= now``); the hits of capped rules are numbered
  per (contact, rule, cap window) to apply the cap; times the decay factor
  ``0.5 ^ (age_days / half_life_days)``, each line rounded to 2 decimals *before* summing
  (so an explanation's lines add up to the stored total), one GROUP BY per contact;
- each contact's result is compared with its stored score (looked up by the unique
  index) and only new or changed ones are written: an UPDATE (by ctid) or an INSERT, rows
  of contacts no longer scored are deleted, and a ``ScoreChange`` row is written for every
  changed total or temperature, all in the same statement.

Full recomputes walk the contacts in id ranges of ``BATCH_SIZE`` (one statement each), so
progress can be reported and a recompute of an older model version stops between batches.
When there is more than one batch, the engagement of the whole model is summed first in
one pass over the activities into a temporary table, which the batches read by contact
(one pass instead of one activity lookup per batch). Incremental recomputes (a list of
contact ids) compute their engagement inline. The statements run with ``WORK_MEM``.
Caps count in fixed windows of ``cap_days`` days from the Unix epoch (UTC), so whether an
activity was capped never changes as time passes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, connection, models, transaction
from django.db.models import Case, Exists, OuterRef, Q, Value, When
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.contacts.models import Activity, Contact, ContactStatus, ContactUnit
from apps.contacts.services.tag_rules import (
    RuleContext,
    RuleLine,
    rule_check,
    rule_condition,
    rule_context,
    rule_describe,
)
from apps.nurture.hooks import Transition, score_band_hooks
from apps.nurture.models import (
    ChangeReason,
    ContactScore,
    RecomputeStatus,
    RuleKind,
    ScoreChange,
    ScoringModel,
    ScoringRule,
)

# Contact ids per statement. One batch is one transaction holding row locks on the
# batch's scores; with the engagement summed beforehand (one pass for the whole model), a
# batch of 50 k takes about a second on the 1 M bench and a progress bar still moves.
BATCH_SIZE = 50_000
# Progress (%) shown once the engagement pass of a full recompute is done.
ENGAGEMENT_PROGRESS = 30
# Memory per sort / hash for the scoring statements (SET LOCAL, their transaction only):
# the engagement pass sorts the capped rules' hits and groups every contact's lines.
WORK_MEM = "256MB"
# Contact ids per incremental statement (an ``= ANY(%s)`` array parameter).
INCREMENTAL_BATCH = 10_000
ZERO = Decimal("0.00")


@dataclass
class Restriction:
    """Which contacts a statement scores: an id range (full recompute) or a list."""

    low: int | None = None  # exclusive
    high: int | None = None  # inclusive
    ids: list[int] | None = None

    def sql(self, column: str) -> tuple[str, list[Any]]:
        if self.ids is not None:
            return f"{column} = ANY(%s)", [self.ids]
        return f"{column} > %s AND {column} <= %s", [self.low, self.high]

    def q(self, field: str = "pk") -> Q:
        if self.ids is not None:
            return Q(**{f"{field}__in": RawSQL("SELECT unnest(%s::bigint[])", [self.ids])})
        return Q(**{f"{field}__gt": self.low, f"{field}__lte": self.high})


@dataclass
class BatchResult:
    changed: int = 0
    removed: int = 0
    transitions: list[Transition] = field(default_factory=list)


# --- SQL building ----------------------------------------------------------------------------


def _rules(model: ScoringModel, context: RuleContext | None = None) -> list[ScoringRule]:
    """Active rules; with ``context``, fit rules whose condition no longer validates (a
    custom field or tag it names was removed) are left out rather than failing the run,
    the same way in a recompute and in an explanation."""
    rules = list(
        ScoringRule.objects.dangerously_unscoped()
        .filter(model=model, is_active=True)
        .order_by("position", "id")
    )
    if context is None:
        return rules
    return [
        r for r in rules if r.kind != RuleKind.FIT or not rule_check(r.condition, context=context)
    ]


def _fit_sql(
    model: ScoringModel,
    rules: list[ScoringRule],
    context: RuleContext,
    now: dt.datetime,
    restriction: Restriction,
) -> tuple[str, tuple[Any, ...]]:
    """``SELECT id, fit`` for the contacts this statement scores."""
    # The range is repeated on ContactUnit so the planner reads only this batch's rows of
    # the unit (index contactunit_unit_contact), not all of them once per batch.
    known = ContactUnit.objects.dangerously_unscoped().filter(
        restriction.q("contact_id"), contact_id=OuterRef("pk"), unit_id=model.unit_id
    )
    points: Any = Value(ZERO, output_field=models.DecimalField(max_digits=10, decimal_places=2))
    for rule in rules:
        if rule.kind != RuleKind.FIT:
            continue
        points = points + Case(
            When(rule_condition(rule.condition, context=context, now=now), then=Value(rule.points)),
            default=Value(ZERO),
            output_field=models.DecimalField(max_digits=10, decimal_places=2),
        )
    qs = (
        Contact.objects.dangerously_unscoped()
        .filter(status=ContactStatus.ACTIVE)
        .filter(Exists(known))
        .filter(restriction.q())
        .annotate(fit_points=points)
        .values_list("pk", "fit_points")
    )
    sql, params = qs.query.sql_with_params()
    return sql, tuple(params)


def _lines_sql(
    model: ScoringModel, rules: list[ScoringRule], now: dt.datetime, restriction: Restriction
) -> tuple[str, list[Any]] | None:
    """CTEs ending in ``lines``: one row per (activity, engagement rule it matches) with its
    raw points (after the cap), decay factor and rounded points. None without such rules.

    The rules are a VALUES list joined to the activities, so the activities are read once
    per group (measured: half the time of one UNION ALL branch per rule at 5 rules). Rules
    without a cap and rules with one are two groups: only the capped rules' hits are
    numbered per (contact, rule, cap window), so the sort that numbering needs stays as
    small as the capped rules' share of the activities."""
    engagement = [r for r in rules if r.kind == RuleKind.ENGAGEMENT]
    if not engagement:
        return None
    restrict_sql, restrict_params = restriction.sql("a.contact_id")
    row = (
        "(%s::bigint, %s::text, %s::text, %s::text, %s::bigint, %s::bigint, %s::jsonb, "
        "%s::numeric, %s::numeric, %s::int)"
    )

    def hits(group: list[ScoringRule]) -> tuple[str, list[Any]]:
        values_params: list[Any] = []
        for r in group:
            match = r.match or {}
            props = match.get("properties")
            values_params += [
                r.pk,
                match["type"],
                match.get("object_type"),
                match.get("object_id"),
                match.get("channel"),
                match.get("campaign"),
                json.dumps(props, ensure_ascii=False) if props else None,
                r.points,
                r.cap,
                r.cap_days,
            ]
        types = sorted({str((r.match or {})["type"]) for r in group})
        sql = f"""
            SELECT a.id, a.contact_id, r.rule_id, a.occurred_at, r.points, r.cap, r.cap_days
            FROM {Activity._meta.db_table} a
            JOIN (VALUES {", ".join([row] * len(group))}) AS r
                (rule_id, type, object_type, object_id, channel_id, campaign_id, props,
                 points, cap, cap_days)
              ON a.type = r.type
             AND (r.object_type IS NULL OR a.object_type = r.object_type)
             AND (r.object_id IS NULL OR a.object_id = r.object_id)
             AND (r.channel_id IS NULL OR a.channel_id = r.channel_id)
             AND (r.campaign_id IS NULL OR a.campaign_id = r.campaign_id)
             AND (r.props IS NULL OR a.properties @> r.props)
            WHERE a.unit_id = %s AND a.type = ANY(%s) AND a.contact_id IS NOT NULL
              AND a.occurred_at <= %s AND {restrict_sql}
        """  # noqa: S608 - table name from model metadata; values are parameters
        return sql, [*values_params, model.unit_id, types, now, *restrict_params]

    branches: list[str] = []
    params: list[Any] = []
    uncapped = [r for r in engagement if r.cap is None]
    capped = [r for r in engagement if r.cap is not None]
    if uncapped:
        sql, branch_params = hits(uncapped)
        branches.append(f"SELECT h.*, 0::bigint AS k FROM ({sql}) h")  # noqa: S608
        params += branch_params
    if capped:
        sql, branch_params = hits(capped)
        branches.append(
            f"""
            SELECT h.*,
                   row_number() OVER (
                       PARTITION BY h.contact_id, h.rule_id,
                           CASE WHEN h.cap_days IS NULL THEN 0
                                ELSE floor(extract(epoch FROM h.occurred_at)
                                           / (h.cap_days * 86400)) END
                       ORDER BY h.occurred_at, h.id
                   ) - 1 AS k
            FROM ({sql}) h
            """  # noqa: S608 - compiled above, values are parameters
        )
        params += branch_params
    if model.half_life_days:
        factor = (
            "power(0.5::float8, greatest(0, extract(epoch FROM (%s::timestamptz - occurred_at)))"
            "::float8 / 86400.0 / %s)::numeric"
        )
        factor_params: list[Any] = [now, model.half_life_days]
    else:
        factor, factor_params = "1::numeric", []
    sql = f"""
        ranked AS ({" UNION ALL ".join(branches)}),
        capped AS (
            SELECT id, contact_id, rule_id, occurred_at, points,
                   CASE WHEN cap IS NULL THEN points
                        ELSE sign(points) * greatest(0, least(abs(points), cap - k * abs(points)))
                   END AS raw,
                   {factor} AS factor
            FROM ranked
        ),
        lines AS (
            SELECT id, contact_id, rule_id, occurred_at, points, raw, factor,
                   round(raw * factor, 2) AS scored
            FROM capped
        )
    """  # noqa: S608 - compiled above, values are parameters
    return sql, [*params, *factor_params]


def _engagement_sql(
    model: ScoringModel, rules: list[ScoringRule], now: dt.datetime, restriction: Restriction
) -> tuple[str, list[Any]] | None:
    """``WITH … SELECT contact_id, engagement`` (one GROUP BY over the lines)."""
    lines = _lines_sql(model, rules, now, restriction)
    if lines is None:
        return None
    sql = f"WITH {lines[0]} SELECT contact_id, sum(scored) AS engagement FROM lines GROUP BY 1"  # noqa: S608
    return sql, lines[1]


def _temperature_sql(model: ScoringModel, column: str) -> tuple[str, list[Any]]:
    bands = sorted(model.bands or [], key=lambda b: Decimal(str(b["min"])), reverse=True)
    if not bands:
        return "'cold'", []
    whens = " ".join(f"WHEN {column} >= %s THEN %s" for _b in bands)
    params: list[Any] = []
    for band in bands:
        params += [Decimal(str(band["min"])), band["temperature"]]
    return f"CASE {whens} ELSE 'cold' END", params


def _batch_sql(
    model: ScoringModel,
    rules: list[ScoringRule],
    context: RuleContext,
    now: dt.datetime,
    restriction: Restriction,
    reason: str,
    engagement_table: str | None = None,
) -> tuple[str, list[Any]]:
    """The one statement that scores the restricted contacts (see the module docstring).

    With ``engagement_table`` (a full recompute) the engagement totals were computed
    beforehand for the whole model, one pass over the activities, and are read from there.
    """
    fit_sql, fit_params = _fit_sql(model, rules, context, now, restriction)
    engagement_params: list[Any]
    if engagement_table is not None:
        restrict, restrict_params = restriction.sql("e.contact_id")
        eng = f"SELECT e.contact_id, e.engagement FROM {engagement_table} e WHERE {restrict}"  # noqa: S608
        engagement_params = list(restrict_params)
    else:
        found = _engagement_sql(model, rules, now, restriction)
        if found is None:
            eng = "SELECT NULL::bigint AS contact_id, 0::numeric AS engagement WHERE false"
            engagement_params = []
        else:
            eng, engagement_params = found
    temperature, temperature_params = _temperature_sql(model, "s.total")
    score_restrict, score_params = restriction.sql("cs.contact_id")
    scores, changes = ContactScore._meta.db_table, ScoreChange._meta.db_table
    # The band transitions, for the hooks; nobody listening, nobody to tell.
    transitions = (
        """(SELECT coalesce(json_agg(json_build_array(
                       contact_id, nullif(temperature_before, ''), temperature_after)
                       ORDER BY contact_id), '[]')
            FROM logged
            WHERE coalesce(nullif(temperature_before, ''), 'cold') <> temperature_after)"""
        if score_band_hooks()
        else "'[]'::json"
    )
    # Unchanged contacts drop out in ``diff`` (each contact's stored score looked up by the
    # unique index: a plan that cannot turn quadratic when the table's statistics lag
    # behind a first fill), so nothing is written for them; ``diff`` keeps the old total
    # for the history and the row's ctid for the UPDATE.
    sql = f"""
        WITH fit (contact_id, fit) AS MATERIALIZED ({fit_sql}),
        eng AS ({eng}),
        scored AS (
            SELECT f.contact_id, f.fit, coalesce(e.engagement, 0) AS engagement,
                   f.fit + coalesce(e.engagement, 0) AS total
            FROM fit f LEFT JOIN eng e USING (contact_id)
        ),
        graded AS (SELECT s.*, {temperature} AS temperature FROM scored s),
        diff AS MATERIALIZED (
            SELECT g.contact_id, g.fit, g.engagement, g.total, g.temperature,
                   o.row_id, o.total AS total_before, o.temperature AS temperature_before
            FROM graded g
            LEFT JOIN LATERAL (
                SELECT cs.ctid AS row_id, cs.fit, cs.engagement, cs.total, cs.temperature
                FROM {scores} cs
                WHERE cs.model_id = %s AND cs.contact_id = g.contact_id
                LIMIT 1
            ) o ON true
            WHERE o.row_id IS NULL
               OR (o.fit, o.engagement, o.total, o.temperature)
                  IS DISTINCT FROM (g.fit, g.engagement, g.total, g.temperature)
        ),
        removed AS (
            DELETE FROM {scores} cs
            WHERE cs.model_id = %s AND {score_restrict}
              AND NOT EXISTS (SELECT 1 FROM fit f WHERE f.contact_id = cs.contact_id)
            RETURNING cs.contact_id
        ),
        updated AS (
            UPDATE {scores} cs SET
                fit = d.fit, engagement = d.engagement, total = d.total,
                temperature = d.temperature, computed_at = %s
            FROM diff d
            WHERE cs.ctid = d.row_id
        ),
        inserted AS (
            INSERT INTO {scores}
                (model_id, contact_id, fit, engagement, total, temperature, computed_at)
            SELECT %s, contact_id, fit, engagement, total, temperature, %s
            FROM diff WHERE row_id IS NULL
            ON CONFLICT (model_id, contact_id) DO NOTHING
        ),
        logged AS (
            INSERT INTO {changes}
                (model_id, contact_id, before, after, temperature_before, temperature_after,
                 reason, at)
            SELECT %s, d.contact_id, d.total_before, d.total,
                   coalesce(d.temperature_before, ''), d.temperature, %s, %s
            FROM diff d
            WHERE d.total_before IS DISTINCT FROM d.total
               OR d.temperature_before IS DISTINCT FROM d.temperature
            RETURNING contact_id, temperature_before, temperature_after
        )
        SELECT (SELECT count(*) FROM logged), (SELECT count(*) FROM removed), {transitions}
    """  # noqa: S608 - table names from model metadata; rule SQL compiled by the ORM
    params = [
        *fit_params,
        *engagement_params,
        *temperature_params,
        model.pk,
        model.pk,
        *score_params,
        now,
        model.pk,
        now,
        model.pk,
        reason,
        now,
    ]
    return sql, params


def _score_batch(
    model: ScoringModel,
    rules: list[ScoringRule],
    context: RuleContext,
    now: dt.datetime,
    restriction: Restriction,
    reason: str,
    engagement_table: str | None = None,
) -> BatchResult:
    """Score the restricted contacts in one statement and run the band hooks."""
    sql, params = _batch_sql(model, rules, context, now, restriction, reason, engagement_table)
    with connection.cursor() as cursor:
        _set_work_mem(cursor)
        cursor.execute(sql, params)
        changed, removed, transitions = cursor.fetchone()
    if isinstance(transitions, str):
        transitions = json.loads(transitions)
    result = BatchResult(
        int(changed), int(removed), [(int(c), old, new) for c, old, new in transitions]
    )
    if result.transitions:
        for hook in score_band_hooks():
            hook(model, list(result.transitions))
    return result


def _set_work_mem(cursor: Any) -> None:
    """Sort and hash in memory for this transaction only (``SET LOCAL``)."""
    cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")


def _engagement_table_create(
    model: ScoringModel, rules: list[ScoringRule], now: dt.datetime, restriction: Restriction
) -> str | None:
    """Sum every contact's engagement for the whole model into a temporary table (one pass
    over the activities, one GROUP BY), indexed by contact; None without engagement rules.

    Batches then read their contacts' totals from it instead of each looking their own
    activities up: at 1 M contacts those lookups touch most of the activity table once
    per batch."""
    found = _engagement_sql(model, rules, now, restriction)
    if found is None:
        return None
    table = f"nurture_scoring_engagement_{model.pk}"
    with transaction.atomic(), connection.cursor() as cursor:
        _set_work_mem(cursor)
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
        cursor.execute(f"CREATE TEMPORARY TABLE {table} AS {found[0]}", found[1])
        cursor.execute(f"CREATE UNIQUE INDEX ON {table} (contact_id)")
        cursor.execute(f"ANALYZE {table}")
    return table


def _engagement_table_drop(table: str | None) -> None:
    if table is None or connection.needs_rollback:
        return
    with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")


def _lock_model(model_id: int) -> None:
    # One batch of one model at a time: a full recompute, the incremental sweep and the
    # nightly decay would otherwise upsert the same rows and log the same change twice.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"scoring|{model_id}"]
        )


def _version_current(model_id: int, version: int) -> bool:
    return ScoringModel.objects.dangerously_unscoped().filter(pk=model_id, version=version).exists()


def _id_bounds(model: ScoringModel) -> tuple[int, int] | None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT least((SELECT min(contact_id) FROM {ContactUnit._meta.db_table}
                          WHERE unit_id = %s),
                         (SELECT min(contact_id) FROM {ContactScore._meta.db_table}
                          WHERE model_id = %s)),
                   greatest((SELECT max(contact_id) FROM {ContactUnit._meta.db_table}
                             WHERE unit_id = %s),
                            (SELECT max(contact_id) FROM {ContactScore._meta.db_table}
                             WHERE model_id = %s))
            """,  # noqa: S608 - table names from model metadata
            [model.unit_id, model.pk, model.unit_id, model.pk],
        )
        low, high = cursor.fetchone()
    return None if low is None else (int(low), int(high))


# --- Recompute -------------------------------------------------------------------------------


@dataclass
class RecomputeResult:
    changed: int = 0
    removed: int = 0
    batches: int = 0
    superseded: bool = False
    transitions: list[Transition] = field(default_factory=list)


def scoring_model_recompute(
    *,
    model: ScoringModel,
    version: int | None = None,
    reason: str = ChangeReason.RECOMPUTE,
    now: dt.datetime | None = None,
    batch_size: int = BATCH_SIZE,
    track: bool = True,
) -> RecomputeResult:
    """Recompute every contact of ``model`` (as of ``version``), batch by batch.

    With ``track`` the model's status and progress follow along (the console's progress
    bar). Stops, leaving the status to the newer job, as soon as the model's version is no
    longer ``version`` (it was edited meanwhile).
    """
    now = now or timezone.now()
    version = model.version if version is None else version
    result = RecomputeResult()
    model_qs = ScoringModel.objects.dangerously_unscoped().filter(pk=model.pk, version=version)
    if track and not model_qs.update(
        recompute_status=RecomputeStatus.RUNNING, recompute_version=version, recompute_progress=0
    ):
        result.superseded = True
        return result
    fresh = model_qs.first()
    if fresh is None:
        result.superseded = True
        return result
    context = rule_context(unit_id=fresh.unit_id)
    rules = _rules(fresh, context)
    bounds = _id_bounds(fresh)
    if bounds is not None:
        low, high = bounds[0] - 1, bounds[1]
        # One batch computes its engagement inline; several read it from one pass.
        engagement_table = (
            _engagement_table_create(fresh, rules, now, Restriction(low=low, high=high))
            if high - low > batch_size
            else None
        )
        first = ENGAGEMENT_PROGRESS if engagement_table is not None else 0
        if track and first:
            model_qs.update(recompute_progress=first)
        try:
            start = low
            while start < high:
                end = min(start + batch_size, high)
                with transaction.atomic():
                    _lock_model(fresh.pk)
                    if not _version_current(fresh.pk, version):
                        result.superseded = True
                        return result
                    batch = _score_batch(
                        fresh,
                        rules,
                        context,
                        now,
                        Restriction(low=start, high=end),
                        reason,
                        engagement_table,
                    )
                    if track:
                        done = (end - low) / max(high - low, 1)
                        progress = first + int((100 - first) * done)
                        model_qs.update(recompute_progress=min(progress, 99))
                result.changed += batch.changed
                result.removed += batch.removed
                result.transitions += batch.transitions
                result.batches += 1
                start = end
        finally:
            _engagement_table_drop(engagement_table)
    if track:
        model_qs.update(
            recompute_status=RecomputeStatus.DONE, recompute_progress=100, recomputed_at=now
        )
    return result


def scores_recompute_for(
    *,
    contact_ids: Sequence[int],
    models_: Sequence[ScoringModel] | None = None,
    reason: str = ChangeReason.ACTIVITY,
    now: dt.datetime | None = None,
) -> RecomputeResult:
    """Recompute the scores of just these contacts, for every active model of the units
    that know them (or for ``models_``). One statement per model per INCREMENTAL_BATCH."""
    now = now or timezone.now()
    ids = sorted(set(contact_ids))
    result = RecomputeResult()
    if not ids:
        return result
    if models_ is None:
        units = (
            ContactUnit.objects.dangerously_unscoped()
            .filter(contact_id__in=ids)
            .values_list("unit_id", flat=True)
            .distinct()
        )
        models_ = list(
            ScoringModel.objects.dangerously_unscoped()
            .filter(unit_id__in=list(units), is_active=True)
            .order_by("id")
        )
    for model in models_:
        context = rule_context(unit_id=model.unit_id)
        rules = _rules(model, context)
        for start in range(0, len(ids), INCREMENTAL_BATCH):
            chunk = ids[start : start + INCREMENTAL_BATCH]
            with transaction.atomic():
                _lock_model(model.pk)
                batch = _score_batch(model, rules, context, now, Restriction(ids=chunk), reason)
            result.changed += batch.changed
            result.removed += batch.removed
            result.transitions += batch.transitions
            result.batches += 1
    return result


def scores_decay_all(*, now: dt.datetime | None = None) -> RecomputeResult:
    """The nightly job: every active model with a half-life, set-based per batch."""
    now = now or timezone.now()
    total = RecomputeResult()
    for model in (
        ScoringModel.objects.dangerously_unscoped()
        .filter(is_active=True, half_life_days__isnull=False)
        .order_by("id")
    ):
        result = scoring_model_recompute(
            model=model, reason=ChangeReason.DECAY, now=now, track=False
        )
        total.changed += result.changed
        total.removed += result.removed
        total.batches += result.batches
    return total


# Activities may arrive late (collector batches, offline imports); the sweep looks this
# far back in occurred_at for rows recorded since its last run, which lets it use the
# (type, occurred_at) index instead of scanning every activity recorded lately.
SWEEP_SLACK = dt.timedelta(days=3)


def scores_activity_sweep(*, now: dt.datetime | None = None) -> RecomputeResult:
    """Fold newly recorded activities into the scores: per active model, the contacts with
    activities of the model's engagement types recorded since the last sweep are
    recomputed (incrementally, in batches)."""
    now = now or timezone.now()
    total = RecomputeResult()
    for model in ScoringModel.objects.dangerously_unscoped().filter(is_active=True).order_by("id"):
        since = model.activities_seen_at or (now - dt.timedelta(days=1))
        types = sorted(
            {
                str(r.match["type"])
                for r in _rules(model)
                if r.kind == RuleKind.ENGAGEMENT and r.match and r.match.get("type")
            }
        )
        if types:
            ids = list(
                Activity.objects.dangerously_unscoped()
                .filter(
                    unit_id=model.unit_id,
                    type__in=types,
                    occurred_at__gte=since - SWEEP_SLACK,
                    recorded_at__gt=since,
                    recorded_at__lte=now,
                    contact_id__isnull=False,
                )
                .values_list("contact_id", flat=True)
                .distinct()
            )
            result = scores_recompute_for(contact_ids=ids, models_=[model], now=now)
            total.changed += result.changed
            total.batches += result.batches
        ScoringModel.objects.dangerously_unscoped().filter(pk=model.pk).update(
            activities_seen_at=now
        )
    return total


# --- Explanations ----------------------------------------------------------------------------


@dataclass
class FitLine:
    rule_id: int
    rule: str
    points: Decimal
    description: str
    evidence: list[str]


@dataclass
class ActivityLine:
    rule_id: int
    rule: str
    activity_id: int
    type: str
    occurred_at: dt.datetime
    object_type: str
    object_id: str
    title: str
    points: Decimal  # per occurrence, as the rule says
    raw: Decimal  # after the cap
    factor: Decimal
    scored: Decimal  # raw × factor, rounded to 2 decimals
    capped: bool


@dataclass
class Explanation:
    model: ScoringModel
    now: dt.datetime
    fit_lines: list[FitLine]
    activity_lines: list[ActivityLine]
    fit: Decimal
    engagement: Decimal
    total: Decimal
    temperature: str
    known: bool  # the contact is an active contact of the model's unit
    stored: ContactScore | None = None


def _flatten(line: RuleLine, depth: int = 0) -> str:
    if not line.children:
        return line.text
    inner = "; ".join(_flatten(c, depth + 1) for c in line.children)
    return f"{line.text}: {inner}" if depth == 0 else f"{line.text} ({inner})"


def _evidence(rule: Any, contact: Contact, context: RuleContext, tag_ids: set[int]) -> list[str]:
    """The contact's values behind the fields, custom fields and tags a condition names."""
    found: list[str] = []
    stack = [rule]
    while stack:
        node = stack.pop(0)
        if not isinstance(node, dict):
            continue
        for key in ("all", "any"):
            if isinstance(node.get(key), list):
                stack.extend(node[key])
        if "not" in node:
            stack.append(node["not"])
        if "field" in node:
            label = str(getattr(Contact._meta.get_field(node["field"]), "verbose_name", ""))
            value = getattr(contact, node["field"], "") or "—"
            found.append(f"{label}: {value}")
        elif "custom" in node and node["custom"] in context.fields:
            custom = context.fields[node["custom"]]
            value = (contact.custom or {}).get(custom.storage_key)
            options = {str(o.get("value")): str(o.get("label")) for o in custom.options}
            values = value if isinstance(value, list) else [value]
            shown = "、".join(options.get(str(v), str(v)) for v in values if v is not None)
            found.append(f"{custom.label}: {shown or '—'}")
        elif "tag" in node and node["tag"] in context.tags:
            have = _("has") if node["tag"] in tag_ids else _("does not have")
            found.append(
                _("%(have)s tag “%(tag)s”") % {"have": have, "tag": context.tags[node["tag"]].name}
            )
    return list(dict.fromkeys(found))  # once each, in the condition's order


def rule_summaries(*, model: ScoringModel, rules: Sequence[ScoringRule]) -> dict[int, str]:
    """A readable line per rule for the editor: the condition read back, or the match."""
    context = rule_context(unit_id=model.unit_id)
    found: dict[int, str] = {}
    for rule in rules:
        if rule.kind == RuleKind.FIT:
            try:
                found[rule.pk] = _flatten(rule_describe(rule.condition, context=context))
            except (KeyError, TypeError, ValueError):
                # A custom field or tag it names was removed since: show the raw rule.
                found[rule.pk] = json.dumps(rule.condition, ensure_ascii=False)
            continue
        match = rule.match or {}
        parts = [str(match.get("type", ""))]
        parts += [
            f"{k}={match[k]}"
            for k in ("object_type", "object_id", "channel", "campaign")
            if k in match
        ]
        parts += [f"{k}={v}" for k, v in (match.get("properties") or {}).items()]
        text = " · ".join(parts)
        if rule.cap is not None:
            if rule.cap_days:
                text += " · " + _("at most %(cap)s points per %(days)d days") % {
                    "cap": rule.cap,
                    "days": rule.cap_days,
                }
            else:
                text += " · " + _("at most %(cap)s points in all") % {"cap": rule.cap}
        found[rule.pk] = text
    return found


def score_explain(
    *, model: ScoringModel, contact: Contact, now: dt.datetime | None = None
) -> Explanation:
    """Why ``contact`` has its score under ``model``: the fit rules that hold (with the
    values behind them) and every activity that counted, decay and cap included.

    Computed with the same SQL as the recompute. Without ``now`` it explains the stored
    score as of when it was computed (or, if none is stored, as of now); the lines always
    sum to ``total`` exactly.
    """
    stored = (
        ContactScore.objects.dangerously_unscoped().filter(model=model, contact=contact).first()
    )
    now = now or (stored.computed_at if stored is not None else timezone.now())
    context = rule_context(unit_id=model.unit_id)
    rules = _rules(model, context)
    known = (
        contact.status == ContactStatus.ACTIVE
        and ContactUnit.objects.dangerously_unscoped()
        .filter(contact=contact, unit_id=model.unit_id)
        .exists()
    )
    fit_rules = [r for r in rules if r.kind == RuleKind.FIT]
    fit_lines: list[FitLine] = []
    if fit_rules:
        flags = {
            f"r{r.pk}": Case(
                When(rule_condition(r.condition, context=context, now=now), then=Value(True)),
                default=Value(False),
                output_field=models.BooleanField(),
            )
            for r in fit_rules
        }
        row = (
            Contact.objects.dangerously_unscoped()
            .filter(pk=contact.pk)
            .annotate(**flags)
            .values(*flags)
            .first()
            or {}
        )
        tag_ids = set(
            contact.tags.values_list("tag_id", flat=True) if hasattr(contact, "tags") else []
        )
        for r in fit_rules:
            if row.get(f"r{r.pk}"):
                fit_lines.append(
                    FitLine(
                        rule_id=r.pk,
                        rule=r.name,
                        points=r.points,
                        description=_flatten(rule_describe(r.condition, context=context)),
                        evidence=_evidence(r.condition, contact, context, tag_ids),
                    )
                )
    activity_lines: list[ActivityLine] = []
    lines = _lines_sql(model, rules, now, Restriction(ids=[contact.pk]))
    if lines is not None:
        names = {r.pk: r.name for r in rules}
        sql = f"""
            WITH {lines[0]}
            SELECT l.rule_id, l.id, a.type, l.occurred_at, a.object_type, a.object_id,
                   coalesce(a.properties ->> 'title', ''), l.points, l.raw, l.factor, l.scored
            FROM lines l JOIN {Activity._meta.db_table} a ON a.id = l.id
            ORDER BY l.occurred_at DESC, l.id DESC
        """  # noqa: S608 - table name from model metadata
        with connection.cursor() as cursor:
            cursor.execute(sql, lines[1])
            for rule_id, aid, typ, at, ot, oid, title, pts, raw, factor, scored in cursor:
                activity_lines.append(
                    ActivityLine(
                        rule_id=rule_id,
                        rule=names.get(rule_id, str(rule_id)),
                        activity_id=aid,
                        type=typ,
                        occurred_at=at,
                        object_type=ot,
                        object_id=oid,
                        title=title,
                        points=pts,
                        raw=raw,
                        factor=factor,
                        scored=scored,
                        capped=raw != pts,
                    )
                )
    fit = sum((line.points for line in fit_lines), ZERO)
    engagement = sum((line.scored for line in activity_lines), ZERO)
    if not known:
        fit_lines, activity_lines, fit, engagement = [], [], ZERO, ZERO
    total = fit + engagement
    return Explanation(
        model=model,
        now=now,
        fit_lines=fit_lines,
        activity_lines=activity_lines,
        fit=fit,
        engagement=engagement,
        total=total,
        temperature=model.temperature_of(total),
        known=known,
        stored=stored,
    )
