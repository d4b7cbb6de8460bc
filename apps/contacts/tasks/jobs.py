"""Beat's check on import and export jobs (see ``services.jobs``)."""

from __future__ import annotations

from celery import shared_task

from apps.contacts.services.jobs import jobs_sweep


@shared_task(name="contacts.jobs_sweep", ignore_result=True)
def sweep_jobs() -> None:
    jobs_sweep()
