"""Background jobs for contact exports."""

from __future__ import annotations

from celery import shared_task

from apps.contacts.services.exports import contact_export_run


@shared_task(name="contacts.export_run", ignore_result=True)
def contacts_export_run(export_id: int) -> None:
    """Write one export's file. A second delivery finds the job claimed and does nothing."""
    contact_export_run(export_id=export_id)
