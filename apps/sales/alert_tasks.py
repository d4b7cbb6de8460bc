"""Celery tasks of the alerts area (imported by ``apps.sales.tasks``).

``sales.alert_deliveries_send`` itself lives in ``apps.sales.tasks`` (``alerts_send``
imports it from there); this module adds the "contact active now" sweep beat runs every
minute."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="sales.contact_activity_sweep", ignore_result=True)
def contact_activity_sweep() -> dict[str, int]:
    from apps.sales.services import activity_alerts

    result = activity_alerts.contact_activity_sweep()
    return {"found": result.found, "sent": result.sent}
