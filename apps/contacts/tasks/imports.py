"""The contact-import job: load by id, call the service. No retries: the service records
its own failure on the import, and a second delivery of the message finds the import
already claimed and does nothing."""

from __future__ import annotations

from celery import shared_task

from apps.contacts.services import imports


@shared_task(name="contacts.import_run", ignore_result=True)
def import_run(import_id: int) -> None:
    imports.contact_import_run(import_id=import_id)
