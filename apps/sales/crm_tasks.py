"""Celery tasks for the CRM link (inbound updates). Celery autodiscovers only ``tasks``
modules, so ``apps/sales/tasks.py`` imports these to register them."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="sales.crm_inbound_process", ignore_result=True)
def crm_inbound_process(inbound_id: int) -> str:
    from apps.sales.services import crm

    return crm.crm_inbound_process(inbound_id)


@shared_task(name="sales.crm_inbound_sweep", ignore_result=True)
def crm_inbound_sweep() -> int:
    from apps.sales.services import crm

    return crm.crm_inbound_sweep()
