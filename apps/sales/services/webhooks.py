"""Signed outgoing webhooks: lead events become ``WebhookDelivery`` rows (one per
subscribed endpoint, in the caller's transaction) that a task posts with retries.

Each POST carries ``X-LeadLoop-Event``, ``X-LeadLoop-Delivery`` (the event id, stable
across retries so the receiver can drop replays) and ``X-LeadLoop-Signature:
t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the endpoint's secret>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

from django.utils import timezone

from apps.core.tasks import enqueue_on_commit
from apps.sales.models import Lead, WebhookDelivery, WebhookEndpoint

EVENTS = ("lead.created", "lead.stage_changed", "lead.assigned", "opportunity.changed")


def lead_payload(lead: Lead) -> dict[str, Any]:
    return {
        "id": lead.pk,
        "external_id": lead.external_id,
        "unit": lead.unit_id,
        "contact": lead.contact_id,
        "stage": lead.stage,
        "temperature": lead.temperature,
        "score": str(lead.score),
        "sdr": lead.sdr_id,
        "owner": lead.owner_id,
        "opportunity": lead.opportunity_id,
        "updated_at": timezone.now().isoformat(),
    }


def emit(unit_id: int, event: str, data: dict[str, Any]) -> int:
    """Queue ``event`` for every active endpoint of the unit that subscribes to it."""
    endpoints = [
        e
        for e in WebhookEndpoint.objects.dangerously_unscoped().filter(
            unit_id=unit_id, is_active=True
        )
        if not e.events or event in e.events
    ]
    if not endpoints:
        return 0
    now = timezone.now()
    rows = []
    for endpoint in endpoints:
        event_id = uuid.uuid4()
        body = {"id": str(event_id), "event": event, "created_at": now.isoformat(), "data": data}
        rows.append(
            WebhookDelivery(
                endpoint=endpoint, unit_id=unit_id, event_id=event_id, event=event, payload=body
            )
        )
    WebhookDelivery.objects.bulk_create(rows)
    from apps.sales.tasks import webhook_deliveries_send

    enqueue_on_commit(webhook_deliveries_send)
    return len(rows)


def emit_lead_event(lead: Lead, event: str, extra: dict[str, Any] | None = None) -> int:
    return emit(lead.unit_id, event, {"lead": lead_payload(lead), **(extra or {})})


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
