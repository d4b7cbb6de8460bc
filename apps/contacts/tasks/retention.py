"""The nightly PII purge (seed 004), chained in slices so no single task runs for hours."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task
from django.utils import timezone

from apps.contacts.services.exports import contact_export_files_expire
from apps.contacts.services.retention import contacts_pii_purge
from apps.core.tasks import enqueue_on_commit

# Batches (of retention.BATCH_SIZE contacts) per task before it hands on to the next one.
MAX_BATCHES_PER_TASK = 50


@shared_task(name="contacts.purge_pii", ignore_result=True)
def purge_pii(after_id: int = 0, now: str | None = None) -> None:
    """Purge what the retention policies say is due, and delete old export files. Beat
    starts it nightly; each slice queues the next with the same cut-off time, so a long
    run judges everyone alike."""
    moment = datetime.fromisoformat(now) if now else timezone.now()
    if after_id == 0:
        contact_export_files_expire(now=moment)
    result = contacts_pii_purge(now=moment, after_id=after_id, max_batches=MAX_BATCHES_PER_TASK)
    if result.next_after_id is not None:
        enqueue_on_commit(purge_pii, after_id=result.next_after_id, now=moment.isoformat())
