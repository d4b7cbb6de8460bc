"""Collector tasks: drain what the endpoint stored; process given batches.

The endpoint no longer queues one task per batch: the first request of a short window
queues one ``contacts.collector_sweep`` (a drain, see ``collector.intake``), which processes
every pending batch set-based, chunk by chunk. Beat runs the same task every 30 s as the
safety net for dispatches lost while the broker was down.
"""

from __future__ import annotations

from celery import shared_task

from apps.contacts.collector.services import collector_batches_process, collector_batches_sweep
from apps.core.tasks import enqueue_on_commit


@shared_task(name="contacts.collector_process", ignore_result=True)
def collector_process(batch_id: int | list[int]) -> None:
    """Process these batches as a set (a no-op for those already processed). Messages
    queued with one id by an earlier version still work."""
    ids = batch_id if isinstance(batch_id, list) else [batch_id]
    collector_batches_process(ids)


@shared_task(name="contacts.collector_sweep", ignore_result=True)
def collector_sweep() -> None:
    """The drain the endpoint queues, and beat's sweep. After an outage the backlog can be
    large: a sweep does a bounded amount of work and queues its successor while batches
    remain pending."""
    result = collector_batches_sweep()
    if result.more:
        enqueue_on_commit(collector_sweep)
