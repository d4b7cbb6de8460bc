"""Posting webhooks: the ``WebhookDelivery`` rows ``services.webhooks.emit`` queued.

Three steps, so no row lock is held while a receiver is slow:

1. claim: in a short transaction, due pending rows are locked with ``FOR UPDATE SKIP
   LOCKED`` (another worker takes other rows) and leased by pushing ``next_attempt_at``
   ahead by ``LEASE``;
2. send: the POST, outside any transaction (urllib, ``TIMEOUT`` seconds, no redirects);
3. record: the row is updated only if it still carries our lease (a worker that took
   longer than the lease loses the row to the next sweep instead of overwriting it).

2xx → delivered. Anything else → one more attempt after 1, 5, 30 min, 2 h, 12 h; after
``MAX_ATTEMPTS`` attempts the row is failed. The event id (``X-LeadLoop-Delivery``) stays
the same across retries, so a receiver drops replays by it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.sales.models import WebhookDelivery
from apps.sales.services import webhooks

TIMEOUT = 5.0
MAX_ATTEMPTS = 6
BACKOFF = (
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=12),
)
BATCH = 50
# How long a claimed row is ours: well over one POST with its timeout.
LEASE = dt.timedelta(minutes=2)
USER_AGENT = "LeadLoop-Webhooks/1"


@dataclass
class Outcome:
    status_code: int | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is an answer like any other non-2xx: retried later


_opener = urllib.request.build_opener(_NoRedirect)


def post(url: str, secret: str, event: str, event_id: str, payload: dict[str, Any]) -> Outcome:
    body = webhooks.encode(payload)
    request = urllib.request.Request(  # noqa: S310 - http(s) URLs only (URLField)
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "X-LeadLoop-Event": event,
            "X-LeadLoop-Delivery": event_id,
            "X-LeadLoop-Signature": webhooks.sign(secret, int(time.time()), body),
        },
    )
    try:
        with _opener.open(request, timeout=TIMEOUT) as response:
            response.read(1024)
            return Outcome(response.status)
    except urllib.error.HTTPError as exc:
        snippet = ""
        with contextlib.suppress(OSError):
            snippet = exc.read(200).decode("utf-8", "replace")
        return Outcome(exc.code, f"HTTP {exc.code} {snippet}".strip()[:500])
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Outcome(None, str(reason)[:500] or exc.__class__.__name__)


def _claim(now: dt.datetime, batch: int) -> list[WebhookDelivery]:
    lease_until = now + LEASE
    with transaction.atomic():
        rows = list(
            WebhookDelivery.objects.dangerously_unscoped()
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")[:batch]
        )
        if rows:
            WebhookDelivery.objects.dangerously_unscoped().filter(
                pk__in=[r.pk for r in rows]
            ).update(next_attempt_at=lease_until)
    for row in rows:
        row.next_attempt_at = lease_until
    return rows


def _record(row: WebhookDelivery, outcome: Outcome, now: dt.datetime) -> bool:
    """Write what happened, if the row is still ours. True when delivered."""
    attempts = row.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "last_status_code": outcome.status_code}
    if outcome.ok:
        values |= {
            "status": WebhookDelivery.Status.DELIVERED,
            "delivered_at": now,
            "last_error": "",
        }
    elif attempts >= MAX_ATTEMPTS:
        values |= {"status": WebhookDelivery.Status.FAILED, "last_error": outcome.error}
    else:
        values |= {
            "next_attempt_at": now + BACKOFF[min(attempts, len(BACKOFF)) - 1],
            "last_error": outcome.error,
        }
    updated = (
        WebhookDelivery.objects.dangerously_unscoped()
        .filter(
            pk=row.pk,
            status=WebhookDelivery.Status.PENDING,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
        )
        .update(**values)
    )
    return bool(updated) and outcome.ok


def _give_up(row: WebhookDelivery, message: str) -> None:
    WebhookDelivery.objects.dangerously_unscoped().filter(
        pk=row.pk, status=WebhookDelivery.Status.PENDING, next_attempt_at=row.next_attempt_at
    ).update(status=WebhookDelivery.Status.FAILED, last_error=message[:500])


def webhook_deliveries_send(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Post the due deliveries (up to ``limit``); returns how many were delivered.

    ``now`` (tests) fixes the clock for claiming and for the next attempt times."""
    delivered = 0
    handled = 0
    while handled < limit:
        moment = now or timezone.now()
        rows = _claim(moment, min(BATCH, limit - handled))
        if not rows:
            break
        for row in rows:
            handled += 1
            endpoint = row.endpoint
            if not endpoint.is_active:
                _give_up(row, _("The webhook was switched off before this was sent."))
                continue
            outcome = post(endpoint.url, endpoint.secret, row.event, str(row.event_id), row.payload)
            if _record(row, outcome, now or timezone.now()):
                delivered += 1
    return delivered
