"""Recording activities: batched, idempotent, and keeping contacts' last-seen current."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from apps.contacts.models import Activity, Contact

# Rows per INSERT: large enough to amortise round trips, small enough for memory.
BATCH_SIZE = 5_000


@dataclass(frozen=True)
class ActivityIn:
    unit_id: int
    type: str
    occurred_at: datetime
    contact_id: int | None = None
    anonymous_id: str = ""
    channel_id: int | None = None
    campaign_id: int | None = None
    object_type: str = ""
    object_id: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    dedupe_key: str | None = None


_COLUMNS = (
    ("unit_id", "bigint"),
    ("contact_id", "bigint"),
    ("anonymous_id", "text"),
    ("type", "text"),
    ("occurred_at", "timestamptz"),
    ("channel_id", "bigint"),
    ("campaign_id", "bigint"),
    ("object_type", "text"),
    ("object_id", "text"),
    ("properties", "jsonb"),
    ("dedupe_key", "text"),
)


def _row(r: ActivityIn) -> dict[str, Any]:
    return {
        "unit_id": r.unit_id,
        "contact_id": r.contact_id,
        "anonymous_id": r.anonymous_id,
        "type": r.type,
        "occurred_at": r.occurred_at.isoformat(),
        "channel_id": r.channel_id,
        "campaign_id": r.campaign_id,
        "object_type": r.object_type,
        "object_id": r.object_id,
        "properties": r.properties,
        "dedupe_key": r.dedupe_key,
    }


@transaction.atomic
def activities_record(rows: Sequence[ActivityIn]) -> int:
    """Append activities; rows whose ``dedupe_key`` was seen before are skipped.

    One INSERT … SELECT FROM jsonb_to_recordset(…) ON CONFLICT DO NOTHING per batch of
    BATCH_SIZE: the whole batch travels as one JSON parameter, which PostgreSQL unpacks
    far faster than the driver can quote eleven text arrays. Returns how many rows were
    new. Contacts' ``last_seen_at`` moves forward in one UPDATE per batch.
    """
    table = Activity._meta.db_table
    names = ", ".join(name for name, _type in _COLUMNS)
    shape = ", ".join(f"{name} {kind}" for name, kind in _COLUMNS)
    sql = f"""
        INSERT INTO {table} ({names}, recorded_at)
        SELECT {names}, now() FROM jsonb_to_recordset(%s::jsonb) AS u({shape})
        ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
    """  # noqa: S608 - table and column names are ours
    created = 0
    with connection.cursor() as cursor:
        for start in range(0, len(rows), BATCH_SIZE):
            batch = rows[start : start + BATCH_SIZE]
            payload = json.dumps([_row(r) for r in batch], ensure_ascii=False)
            cursor.execute(sql, [payload])
            created += cursor.rowcount
            _touch_last_seen(batch)
    return created


def _touch_last_seen(batch: Sequence[ActivityIn]) -> None:
    latest: dict[int, datetime] = {}
    for r in batch:
        if r.contact_id is not None and (
            r.contact_id not in latest or r.occurred_at > latest[r.contact_id]
        ):
            latest[r.contact_id] = r.occurred_at
    if not latest:
        return
    table = Contact._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} AS c SET last_seen_at = v.seen
            FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, seen)
            WHERE c.id = v.id AND c.last_seen_at < v.seen
            """,  # noqa: S608 - table name from model metadata
            [list(latest), list(latest.values())],
        )
