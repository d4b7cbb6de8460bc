"""Alerts to salespeople and SDRs: in the app (the bell), by email, by WeCom robot.

Each person chooses per kind where alerts go (``AlertSettings``; no row means "in the app
only"). ``alerts_send`` takes a batch: in-app notices are one bulk insert (repeats of a
``dedupe_key`` are skipped), email and WeCom messages become ``AlertDelivery`` rows that a
task sends with retries after the transaction commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.urls import reverse

from apps.core.models import Notification
from apps.core.tasks import enqueue_on_commit
from apps.sales.models import AlertChannel, AlertDelivery, AlertSettings, default_alert_channels


@dataclass(frozen=True)
class AlertIn:
    user_id: int
    kind: str
    title: str
    body: str = ""
    unit_id: int | None = None
    lead_id: int | None = None
    url: str = ""
    dedupe_key: str | None = None
    # Channels this alert may use at most (None: any the person chose). A share-link open
    # is already in the bell (content notifies the sharer), so it goes by email/WeCom only.
    only: tuple[str, ...] | None = None


def channels_of(user_ids: set[int]) -> dict[int, tuple[dict[str, list[str]], str]]:
    """Per user: ({kind: [channels]}, WeCom webhook URL)."""
    rows = AlertSettings.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "channels", "wecom_webhook_url"
    )
    found = {uid: (channels or {}, url) for uid, channels, url in rows}
    default = (default_alert_channels(), "")
    return {uid: found.get(uid, default) for uid in user_ids}


def lead_url(lead_id: int, *, mobile: bool = False) -> str:
    """The lead's page on the phone (salespeople) or in the lead queue (SDRs)."""
    return reverse("sales:m-lead" if mobile else "sales:sdr-lead", args=[lead_id])


def alerts_send(alerts: Sequence[AlertIn]) -> int:
    """Deliver ``alerts`` per each person's choices. Returns in-app notices created."""
    if not alerts:
        return 0
    prefs = channels_of({a.user_id for a in alerts})
    notices, deliveries = [], []
    for alert in alerts:
        kinds, wecom_url = prefs[alert.user_id]
        chosen = kinds.get(alert.kind, [AlertChannel.IN_APP])
        if alert.only is not None:
            chosen = [c for c in chosen if c in alert.only]
        url = alert.url or (lead_url(alert.lead_id) if alert.lead_id else "")
        if AlertChannel.IN_APP in chosen:
            notices.append(
                Notification(
                    user_id=alert.user_id,
                    unit_id=alert.unit_id,
                    kind=alert.kind,
                    title=alert.title[:200],
                    body=alert.body,
                    url=url,
                    dedupe_key=alert.dedupe_key,
                )
            )
        for channel in (AlertChannel.EMAIL, AlertChannel.WECOM):
            if channel in chosen and (channel != AlertChannel.WECOM or wecom_url):
                deliveries.append(
                    AlertDelivery(
                        user_id=alert.user_id,
                        channel=channel,
                        kind=alert.kind,
                        title=alert.title[:200],
                        body=alert.body,
                        url=url,
                    )
                )
    created = Notification.objects.bulk_create(notices, ignore_conflicts=True)
    if deliveries:
        AlertDelivery.objects.bulk_create(deliveries)
        from apps.sales.tasks import alert_deliveries_send

        enqueue_on_commit(alert_deliveries_send)
    return len(created)


def alert(alert_in: AlertIn) -> None:
    alerts_send([alert_in])
