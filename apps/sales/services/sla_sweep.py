"""The SLA sweep as one SQL statement per batch.

After a clock runs out nothing else is due for the lead (a first touch missed stays
missed; an accept missed sends the MQL back to the SDR without an owner; a follow-up or
SQL decision missed recycles the lead), so the whole reaction is set-based:

1. claim up to ``batch`` due leads ``FOR UPDATE SKIP LOCKED`` (a second worker skips them),
2. update them (stage, owners, clock cleared, SDR credit settled),
3. record one ``SlaMiss`` each (unique per lead, clock and due time: a replay adds none),
4. write the history rows (the miss, or the recycle naming the missed clock; the owner
   change; the credit),
5. alert the people concerned per their alert settings (in-app notices; email and WeCom
   deliveries for the sender task): the late person about the miss, or, when the miss
   recycles the lead, its owner and SDR about the recycle (one notice each, not two);
   and queue signed webhooks for stage changes,

all in one statement, so a batch costs one round trip whatever its size. Texts (titles,
reasons) are translated in Python once per batch and passed as parameters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils.translation import gettext as _

from apps.contacts.models import Contact
from apps.core.models import Notification
from apps.sales.models import (
    AlertDelivery,
    AlertSettings,
    Lead,
    LeadHistory,
    SlaClock,
    SlaMiss,
    SlaPolicy,
    WebhookDelivery,
    WebhookEndpoint,
)
from apps.sales.services.alerts import lead_url

NAME = "⟪name⟫"
ID = "987654321"


@dataclass
class BatchResult:
    claimed: int = 0
    recycled: int = 0
    returned: int = 0
    deliveries: int = 0
    webhooks: int = 0


def _texts() -> dict[str, str]:
    labels = {clock: str(SlaClock(clock).label) for clock in SlaClock.values if clock}
    return {
        "t_missed": _("SLA missed: %(name)s") % {"name": NAME},
        "t_recycled": _("Lead recycled: %(name)s") % {"name": NAME},
        "r_recycled": _("Recycled: no follow-up in time"),
        "r_returned": _("Not accepted in time"),
        "r_credit_revoked": _("Returned by sales within the credit window"),
        "r_credit_kept": _("Returned after the credit window: the credit stands"),
        "r_due": _("was due"),
        "l_first_touch": labels[SlaClock.FIRST_TOUCH],
        "l_accept": labels[SlaClock.ACCEPT],
        "l_sql_decision": labels[SlaClock.SQL_DECISION],
        "l_follow_up": labels[SlaClock.FOLLOW_UP],
        # Built once per batch with a stand-in id, which SQL replaces with each lead's.
        "u_sdr": lead_url(int(ID)),
        "u_m": lead_url(int(ID), mobile=True),
        "name": NAME,
        "id": ID,
    }


LEAD = Lead._meta.db_table
POLICY = SlaPolicy._meta.db_table
CONTACT = Contact._meta.db_table
MISS = SlaMiss._meta.db_table
HISTORY = LeadHistory._meta.db_table
NOTICE = Notification._meta.db_table
SETTINGS = AlertSettings._meta.db_table
DELIVERY = AlertDelivery._meta.db_table
ENDPOINT = WebhookEndpoint._meta.db_table
HOOK = WebhookDelivery._meta.db_table

# %% is a literal percent for the driver; every value is a named parameter.
_SWEEP = f"""
WITH due AS (
    SELECT l.id, l.unit_id, l.contact_id, l.stage, l.sla_clock, l.sla_due_at, l.owner_id,
           l.sdr_id, l.credit_status, l.credit_due_at, l.external_id, l.temperature, l.score,
           l.opportunity_id, COALESCE(p.recycle_to_sdr, false) AS to_sdr
    FROM {LEAD} l
    LEFT JOIN {POLICY} p ON p.unit_id = l.unit_id
    WHERE l.sla_due_at <= %(now)s
    ORDER BY l.sla_due_at
    LIMIT %(limit)s
    FOR UPDATE OF l SKIP LOCKED
), acted AS (
    SELECT due.*,
        due.sla_clock IN ('follow_up', 'sql_decision') AS recycles,
        CASE WHEN due.sla_clock IN ('follow_up', 'sql_decision') THEN
            CASE WHEN due.to_sdr AND due.sdr_id IS NOT NULL THEN 'mil' ELSE 'recycled' END
        ELSE due.stage END AS new_stage,
        CASE WHEN due.sla_clock = 'first_touch' THEN due.sdr_id ELSE due.owner_id END
            AS late_user,
        CASE WHEN due.credit_status = 'pending'
                  AND due.sla_clock IN ('follow_up', 'sql_decision') THEN
            CASE WHEN %(now)s < due.credit_due_at THEN 'revoked' ELSE 'credited' END
        ELSE due.credit_status END AS new_credit,
        CASE due.sla_clock WHEN 'first_touch' THEN %(l_first_touch)s
            WHEN 'accept' THEN %(l_accept)s WHEN 'sql_decision' THEN %(l_sql_decision)s
            ELSE %(l_follow_up)s END AS clock_label,
        COALESCE(NULLIF(c.name, ''), '#' || c.id) AS contact_name
    FROM due JOIN {CONTACT} c ON c.id = due.contact_id
), upd AS (
    UPDATE {LEAD} l SET
        stage = a.new_stage,
        owner_id = CASE WHEN a.sla_clock = 'first_touch' THEN l.owner_id ELSE NULL END,
        sdr_id = CASE WHEN a.new_stage = 'recycled' THEN NULL ELSE l.sdr_id END,
        handed_at = CASE WHEN a.sla_clock = 'first_touch' OR a.new_stage = 'recycled'
                         THEN l.handed_at ELSE NULL END,
        accepted_at = CASE WHEN a.recycles AND a.new_stage = 'mil' THEN NULL
                           ELSE l.accepted_at END,
        reason = CASE WHEN a.recycles THEN %(r_recycled)s ELSE l.reason END,
        stage_changed_at = CASE WHEN a.recycles THEN %(now)s ELSE l.stage_changed_at END,
        credit_status = a.new_credit,
        sla_clock = '', sla_due_at = NULL, sla_warn_at = NULL,
        updated_at = %(now)s
    FROM acted a
    WHERE l.id = a.id
    RETURNING l.id
), misses AS (
    INSERT INTO {MISS} (lead_id, unit_id, user_id, clock, due_at, missed_at)
    SELECT id, unit_id, late_user, sla_clock, sla_due_at, %(now)s FROM acted
    ON CONFLICT (lead_id, clock, due_at) DO NOTHING
    RETURNING 1
), history AS (
    INSERT INTO {HISTORY} (lead_id, unit_id, kind, from_value, to_value, actor_id,
                           actor_label, reason, at)
    SELECT id, unit_id, CASE WHEN recycles THEN 'stage' ELSE 'sla' END,
           CASE WHEN recycles THEN stage ELSE sla_clock END,
           CASE WHEN recycles THEN new_stage ELSE 'missed' END, NULL::bigint, 'SLA',
           CASE WHEN recycles THEN %(r_recycled)s || ' · ' ELSE '' END
               || clock_label || ' ' || %(r_due)s || ' '
               || to_char(sla_due_at AT TIME ZONE %(tz)s, 'YYYY-MM-DD HH24:MI'), %(now)s
    FROM acted
    UNION ALL
    SELECT id, unit_id, 'owner', COALESCE(owner_id::text, ''), '', NULL, 'SLA',
           %(r_returned)s, %(now)s
    FROM acted WHERE sla_clock = 'accept'
    UNION ALL
    SELECT id, unit_id, 'credit', 'pending', new_credit, NULL, 'SLA',
           CASE new_credit WHEN 'revoked' THEN %(r_credit_revoked)s
                ELSE %(r_credit_kept)s END, %(now)s
    FROM acted WHERE new_credit IS DISTINCT FROM credit_status
    RETURNING 1
), alerts AS (
    SELECT late_user AS user_id, unit_id, 'sla_breached' AS kind,
           replace(%(t_missed)s, %(name)s, contact_name) AS title, clock_label AS body,
           replace(CASE WHEN sla_clock = 'first_touch' THEN %(u_sdr)s ELSE %(u_m)s END,
                   %(id)s, id::text) AS url,
           'sla-miss:' || id || ':' || sla_clock || ':'
               || round(extract(epoch FROM sla_due_at)) AS dedupe_key
    FROM acted WHERE late_user IS NOT NULL AND NOT recycles
    UNION ALL
    SELECT owner_id, unit_id, 'lead_recycled',
           replace(%(t_recycled)s, %(name)s, contact_name), %(r_recycled)s,
           replace(%(u_m)s, %(id)s, id::text),
           'recycled:' || id || ':' || round(extract(epoch FROM sla_due_at)) || ':' || owner_id
    FROM acted WHERE recycles AND owner_id IS NOT NULL
    UNION ALL
    SELECT sdr_id, unit_id, 'lead_recycled',
           replace(%(t_recycled)s, %(name)s, contact_name), %(r_recycled)s,
           replace(%(u_sdr)s, %(id)s, id::text),
           'recycled:' || id || ':' || round(extract(epoch FROM sla_due_at)) || ':' || sdr_id
    FROM acted WHERE recycles AND sdr_id IS NOT NULL AND sdr_id IS DISTINCT FROM owner_id
), notices AS (
    INSERT INTO {NOTICE} (user_id, unit_id, kind, title, body, url, dedupe_key, created_at)
    SELECT a.user_id, a.unit_id, a.kind, left(a.title, 200), a.body, a.url, a.dedupe_key,
           %(now)s
    FROM alerts a LEFT JOIN {SETTINGS} s ON s.user_id = a.user_id
    WHERE COALESCE(s.channels -> a.kind, '["in_app"]'::jsonb) ? 'in_app'
    ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
    RETURNING 1
), deliveries AS (
    INSERT INTO {DELIVERY} (user_id, channel, kind, title, body, url, status, attempts,
                            last_error, next_attempt_at, created_at)
    SELECT a.user_id, ch.channel, a.kind, left(a.title, 200), a.body, a.url, 'pending', 0,
           '', %(now)s, %(now)s
    FROM alerts a
    JOIN {SETTINGS} s ON s.user_id = a.user_id
    CROSS JOIN (VALUES ('email'), ('wecom')) AS ch(channel)
    WHERE s.channels -> a.kind ? ch.channel
      AND (ch.channel <> 'wecom' OR s.wecom_webhook_url <> '')
    RETURNING 1
), hooks AS (
    INSERT INTO {HOOK} (endpoint_id, unit_id, event_id, event, payload, status, attempts,
                        next_attempt_at, last_error, created_at)
    SELECT e.id, a.unit_id, x.event_id, 'lead.stage_changed',
           jsonb_build_object(
               'id', x.event_id::text, 'event', 'lead.stage_changed',
               'created_at', to_char(%(now)s::timestamptz AT TIME ZONE 'UTC',
                                     'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
               'data', jsonb_build_object(
                   'lead', jsonb_build_object(
                       'id', a.id, 'external_id', a.external_id, 'unit', a.unit_id,
                       'contact', a.contact_id, 'stage', a.new_stage,
                       'temperature', a.temperature, 'score', a.score::text,
                       'sdr', CASE WHEN a.new_stage = 'recycled' THEN NULL ELSE a.sdr_id END,
                       'owner', NULL, 'opportunity', a.opportunity_id),
                   'from', a.stage, 'to', a.new_stage, 'reason', %(r_recycled)s)),
           'pending', 0, %(now)s, '', %(now)s
    FROM acted a
    JOIN {ENDPOINT} e ON e.unit_id = a.unit_id AND e.is_active
         AND (e.events = '[]'::jsonb OR e.events ? 'lead.stage_changed')
    CROSS JOIN LATERAL (SELECT gen_random_uuid() AS event_id) AS x
    WHERE a.recycles
    RETURNING 1
)
SELECT (SELECT count(*) FROM upd),
       (SELECT count(*) FROM acted WHERE recycles),
       (SELECT count(*) FROM acted WHERE sla_clock = 'accept'),
       (SELECT count(*) FROM deliveries),
       (SELECT count(*) FROM hooks),
       (SELECT count(*) FROM misses) + (SELECT count(*) FROM history)
           + (SELECT count(*) FROM notices)
"""  # noqa: S608 - table names come from model metadata; values are parameters


@transaction.atomic
def sweep_batch(now: dt.datetime, batch: int, time_zone: str) -> BatchResult:
    """Act on up to ``batch`` due leads; see the module docstring."""
    from apps.core.tasks import enqueue_on_commit

    params: dict[str, Any] = {**_texts(), "now": now, "limit": batch, "tz": time_zone}
    with connection.cursor() as cursor:
        cursor.execute(_SWEEP, params)
        row = cursor.fetchone()
    assert row is not None
    result = BatchResult(*(int(v) for v in row[:5]))
    if result.deliveries:
        from apps.sales.tasks import alert_deliveries_send

        enqueue_on_commit(alert_deliveries_send)
    if result.webhooks:
        from apps.sales.tasks import webhook_deliveries_send

        enqueue_on_commit(webhook_deliveries_send)
    return result
