"""Sales in the background. Beat (settings.CELERY_BEAT_SCHEDULE) runs the SLA sweep every
minute and the delivery sweeps for alerts and webhooks; each task loads by id and calls a
service, and every one of them is safe to run twice at once."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from apps.sales.services import sla


@shared_task(name="sales.sla_sweep", ignore_result=True)
def sla_sweep() -> dict[str, int]:
    result = sla.sla_sweep()
    return {
        "missed": result.missed,
        "recycled": result.recycled,
        "returned": result.returned,
        "warned": result.warned,
        "credited": result.credited,
    }


@shared_task(name="sales.leads_from_scores", ignore_result=True)
def leads_from_scores(unit_id: int, model_id: int, changes: list[list[Any]]) -> int:
    from apps.sales.services import scores

    return scores.leads_from_scores(unit_id=unit_id, model_id=model_id, changes=changes)


@shared_task(name="sales.alert_deliveries_send", ignore_result=True)
def alert_deliveries_send() -> int:
    from apps.sales.services import alert_delivery

    return alert_delivery.alert_deliveries_send()


@shared_task(name="sales.webhook_deliveries_send", ignore_result=True)
def webhook_deliveries_send() -> int:
    from apps.sales.services import delivery

    return delivery.webhook_deliveries_send()


@shared_task(name="sales.channel_quality", ignore_result=True)
def channel_quality() -> int:
    from apps.sales.services import channel_quality

    return channel_quality.channel_quality_compute()


@shared_task(name="sales.leads_from_import", ignore_result=True)
def leads_from_import(
    unit_id: int, contact_ids: list[int], temperature: str, import_id: int
) -> int:
    from apps.sales.services import intake

    return intake.leads_from_import(
        unit_id=unit_id, contact_ids=contact_ids, temperature=temperature, import_id=import_id
    )


# Tasks defined next to their areas; imported here so the worker registers them.
from apps.sales.alert_tasks import contact_activity_sweep  # noqa: E402, F401
from apps.sales.crm_tasks import crm_inbound_process, crm_inbound_sweep  # noqa: E402, F401
