"""Segment rebuilds in the background.

Beat runs ``contacts.queue_segment_rebuilds`` (settings.CELERY_BEAT_SCHEDULE), which
queues one ``contacts.rebuild_segment`` per dynamic segment that is waiting or due.
Editing a definition or pressing "rebuild now" queues ``rebuild_segment`` on commit with
the segment's new version; a task for an older version stops without writing.
"""

from __future__ import annotations

from celery import shared_task

from apps.contacts.services import segments


@shared_task(name="contacts.rebuild_segment", ignore_result=True)
def rebuild_segment(segment_id: int, version: int | None = None, force: bool = True) -> dict:
    result = segments.segment_rebuild(segment_id=segment_id, version=version, force=force)
    return {"status": result.status, "entered": result.entered, "left": result.left}


@shared_task(name="contacts.queue_segment_rebuilds", ignore_result=True)
def queue_segment_rebuilds() -> int:
    """Queue the rebuilds that are due (each skips itself if it finds nothing to do)."""
    due = segments.segments_due()
    for segment_id, version in due:
        rebuild_segment.delay(segment_id, version, False)
    return len(due)


@shared_task(name="contacts.rebuild_segments_for", ignore_result=True)
def rebuild_segments_for_contacts(contact_ids: list[int]) -> dict:
    """Re-check the dynamic segments of these contacts only (after an import batch…)."""
    result = segments.segments_rebuild_for(contact_ids=contact_ids)
    return {"entered": result.entered, "left": result.left}
