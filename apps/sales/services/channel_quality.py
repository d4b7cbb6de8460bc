"""Source quality (线索来源渠道质量评分, seed 003): how each channel's past leads converted.

Per unit, over leads opened in the last ``WINDOW_DAYS``: a lead counts 0.3 if it ever
reached MQL, 0.6 if SQL (or SAL → SQL), 1.0 if it became a customer (the furthest stage
it reached, from its history). A channel's rate is the mean of those values; it is
smoothed towards the unit's rate with ``PRIOR_LEADS`` imaginary leads, so a channel with
three lucky leads does not top the list, and scaled to 0–100. One grouped query per run,
one UPDATE for every channel.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.contacts.models import Channel
from apps.sales.models import Lead, LeadHistory

WINDOW_DAYS = 365
PRIOR_LEADS = 10
VALUES = {"mql": 0.3, "tql": 0.3, "sal": 0.3, "sql": 0.6, "opportunity": 0.6, "customer": 1.0}

_RATES = f"""
    WITH reached AS (
        SELECT l.id, l.unit_id, l.source_channel_id AS channel_id,
               GREATEST(
                   CASE l.stage {{cases_stage}} ELSE 0 END,
                   COALESCE(MAX(CASE h.to_value {{cases_history}} ELSE 0 END), 0)
               ) AS value
        FROM {Lead._meta.db_table} l
        LEFT JOIN {LeadHistory._meta.db_table} h ON h.lead_id = l.id AND h.kind = 'stage'
        WHERE l.created_at >= %s
        GROUP BY l.id
    )
    SELECT unit_id, channel_id, GROUPING(channel_id) = 1, COUNT(*), SUM(value),
           COUNT(*) FILTER (WHERE value >= 0.3),
           COUNT(*) FILTER (WHERE value >= 0.6), COUNT(*) FILTER (WHERE value >= 1.0)
    FROM reached
    GROUP BY GROUPING SETS ((unit_id, channel_id), (unit_id))
"""  # noqa: S608 - our table names; the stage values are constants below


def _cases() -> tuple[str, str, list[Any]]:
    stage = " ".join("WHEN %s THEN %s" for _ in VALUES)
    params: list[Any] = []
    for key, value in VALUES.items():
        params += [key, value]
    return stage, stage, params


@transaction.atomic
def channel_quality_compute(*, now: dt.datetime | None = None) -> int:
    """Recompute every channel's quality. Returns how many channels got a figure."""
    now = now or timezone.now()
    stage_cases, history_cases, params = _cases()
    sql = _RATES.format(cases_stage=stage_cases, cases_history=history_cases)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *params, now - dt.timedelta(days=WINDOW_DAYS)])
        rows = cursor.fetchall()
    unit_rate: dict[int, float] = {}
    per_channel: dict[int, tuple[int, float, int, int, int]] = {}
    for unit_id, channel_id, is_total, n, total, mql, sql_n, won in rows:
        if is_total:
            unit_rate[unit_id] = float(total) / n if n else 0.0
        elif channel_id is not None:
            per_channel[channel_id] = (n, float(total), mql, sql_n, won)
    channels = list(Channel.objects.dangerously_unscoped().only("id", "unit_id"))
    changed = []
    for channel in channels:
        stats = per_channel.get(channel.pk)
        if stats is None:
            channel.quality, channel.quality_leads, channel.quality_detail = None, 0, {}
        else:
            n, total, mql, sql_n, won = stats
            prior = unit_rate.get(channel.unit_id, 0.0)
            rate = (total + prior * PRIOR_LEADS) / (n + PRIOR_LEADS)
            channel.quality = Decimal(str(rate * 100)).quantize(Decimal("0.01"), ROUND_HALF_UP)
            channel.quality_leads = n
            channel.quality_detail = {
                "leads": n,
                "mql": mql,
                "sql": sql_n,
                "customers": won,
                "unit_rate": round(prior * 100, 2),
            }
        channel.quality_computed_at = now
        changed.append(channel)
    Channel.objects.bulk_update(
        changed,
        ["quality", "quality_leads", "quality_detail", "quality_computed_at"],
        batch_size=1000,
    )
    return sum(1 for c in changed if c.quality is not None)
