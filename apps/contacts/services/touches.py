"""First and latest touch on contacts: where a person first came from, and what brought
them back most recently. Attribution reads these; the collector, forms, share links and
the WeChat callback feed them, many contacts at a time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from apps.contacts.models import Contact


@dataclass(frozen=True)
class TouchIn:
    contact_id: int
    at: datetime
    channel_id: int | None = None
    campaign_id: int | None = None

    @property
    def counts(self) -> bool:
        # A visit with neither channel nor campaign (typed the address) moves nothing.
        return self.channel_id is not None or self.campaign_id is not None


def contact_touches_apply(touches: Sequence[TouchIn]) -> int:
    """Record touches, set-based: one UPDATE however many contacts.

    Per contact the earliest touch of this call competes with the stored first touch
    (earlier wins) and the latest with the stored latest touch (later wins), so replays
    and out-of-order deliveries converge on the same answer. Returns contacts updated.
    """
    first: dict[int, TouchIn] = {}
    latest: dict[int, TouchIn] = {}
    for touch in touches:
        if not touch.counts:
            continue
        if touch.contact_id not in first or touch.at < first[touch.contact_id].at:
            first[touch.contact_id] = touch
        if touch.contact_id not in latest or touch.at > latest[touch.contact_id].at:
            latest[touch.contact_id] = touch
    if not first:
        return 0
    rows = [
        {
            "id": cid,
            "f_at": first[cid].at.isoformat(),
            "f_ch": first[cid].channel_id,
            "f_ca": first[cid].campaign_id,
            "l_at": latest[cid].at.isoformat(),
            "l_ch": latest[cid].channel_id,
            "l_ca": latest[cid].campaign_id,
        }
        for cid in sorted(first)
    ]
    table = Contact._meta.db_table
    sql = f"""
        UPDATE {table} c SET
            first_touch_at = CASE WHEN c.first_touch_at IS NULL OR u.f_at < c.first_touch_at
                THEN u.f_at ELSE c.first_touch_at END,
            first_touch_channel_id = CASE
                WHEN c.first_touch_at IS NULL OR u.f_at < c.first_touch_at
                THEN u.f_ch ELSE c.first_touch_channel_id END,
            first_touch_campaign_id = CASE
                WHEN c.first_touch_at IS NULL OR u.f_at < c.first_touch_at
                THEN u.f_ca ELSE c.first_touch_campaign_id END,
            latest_touch_at = CASE WHEN c.latest_touch_at IS NULL OR u.l_at > c.latest_touch_at
                THEN u.l_at ELSE c.latest_touch_at END,
            latest_touch_channel_id = CASE
                WHEN c.latest_touch_at IS NULL OR u.l_at > c.latest_touch_at
                THEN u.l_ch ELSE c.latest_touch_channel_id END,
            latest_touch_campaign_id = CASE
                WHEN c.latest_touch_at IS NULL OR u.l_at > c.latest_touch_at
                THEN u.l_ca ELSE c.latest_touch_campaign_id END
        FROM jsonb_to_recordset(%s::jsonb) AS u(
            id bigint, f_at timestamptz, f_ch bigint, f_ca bigint,
            l_at timestamptz, l_ch bigint, l_ca bigint)
        WHERE c.id = u.id
          AND (c.first_touch_at IS NULL OR u.f_at < c.first_touch_at
               OR c.latest_touch_at IS NULL OR u.l_at > c.latest_touch_at)
    """  # noqa: S608 - the table name comes from model metadata; values are a parameter
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(rows)])
        return cursor.rowcount
