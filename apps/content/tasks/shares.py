"""Share-link tasks: process opened views (activities, touches, the sharer's notification).

The public page queues ``content.share_views_process`` for its view once the row is
committed; beat runs the same task every minute without ids as the safety net for
dispatches lost while the broker was down, and for anonymous views whose grace period
has passed.
"""

from __future__ import annotations

from celery import shared_task

from apps.content.services.shares import share_views_process as process
from apps.core.tasks import enqueue_on_commit


@shared_task(name="content.share_views_process", ignore_result=True)
def share_views_process(view_ids: list[int] | None = None) -> None:
    """Process these views (a no-op for those already done), or a batch of the oldest
    waiting ones; a full batch queues its successor."""
    result = process(ids=view_ids)
    if view_ids is None and result.more:
        enqueue_on_commit(share_views_process)
