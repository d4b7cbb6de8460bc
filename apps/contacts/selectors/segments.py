"""Reads for the segment pages and API, and the editor's live preview.

Everything starts from ``Model.objects.visible_to(user, permission)``. ``segment_preview``
counts and samples the contacts a definition (not yet saved) matches, with the planner's
cost, under a statement timeout; a newer preview from the same editor cancels the older
one still running (stale previews cancel).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import RowNumber

from apps.contacts.models import (
    Contact,
    Segment,
    SegmentEvent,
    SegmentMember,
    SegmentSize,
)
from apps.contacts.services import tag_rules
from apps.contacts.services.segments import segment_rule_context
from apps.core.models import BusinessUnit, User

SEGMENTS = "contacts.segments"
EDIT = "contacts.segments.edit"
SAMPLE_SIZE = 20
# Points in a list row's trend sparkline.
TREND_POINTS = 30
# A preview answers within this, or says it took too long (the editor retries on change).
PREVIEW_TIMEOUT_MS = 10_000
# How long the cache remembers which backend runs an editor's preview.
PREVIEW_PID_TTL = 60


def segment_units(
    *, user: User, permission: str = SEGMENTS, narrowed: set[int] | None = None
) -> list[BusinessUnit]:
    """Units whose segments ``user`` may open (narrowed by the unit switcher when given);
    a group with units of its own works per unit."""
    qs = (
        BusinessUnit.objects.visible_to(user, permission)
        .filter(is_active=True)
        .filter(Q(parent__isnull=False) | Q(units__isnull=True))
        .distinct()
        .order_by("parent_id", "code", "id")
    )
    units = list(qs)
    if narrowed is not None:
        units = [u for u in units if u.pk in narrowed]
    return units


def segments_of(
    *, user: User, unit_id: int, archived: bool = False, permission: str = SEGMENTS
) -> QuerySet[Segment]:
    return Segment.objects.visible_to(user, permission).filter(
        unit_id=unit_id, is_active=not archived
    )


def segment_get(*, user: User, pk: int, permission: str = SEGMENTS) -> Segment | None:
    return Segment.objects.visible_to(user, permission).select_related("unit").filter(pk=pk).first()


def segment_members(*, user: User, segment: Segment) -> QuerySet[SegmentMember]:
    """A segment's members with their contact, for keyset pages on ``-id``."""
    return (
        SegmentMember.objects.visible_to(user, SEGMENTS)
        .filter(segment_id=segment.pk)
        .select_related("contact")
    )


def segment_events(*, user: User, segment: Segment) -> QuerySet[SegmentEvent]:
    return SegmentEvent.objects.visible_to(user, SEGMENTS).filter(segment_id=segment.pk)


def segment_sizes(*, user: User, segment: Segment) -> QuerySet[SegmentSize]:
    return SegmentSize.objects.visible_to(user, SEGMENTS).filter(segment_id=segment.pk)


def segment_trends(*, user: User, segment_ids: list[int]) -> dict[int, list[int]]:
    """The last TREND_POINTS sizes of each segment, oldest first: one query for a page."""
    if not segment_ids:
        return {}
    rows = (
        SegmentSize.objects.visible_to(user, SEGMENTS)
        .filter(segment_id__in=segment_ids)
        .annotate(rank=Window(RowNumber(), partition_by=[F("segment_id")], order_by=F("at").desc()))
        .filter(rank__lte=TREND_POINTS)
        .order_by("segment_id", "at", "id")
        .values_list("segment_id", "size")
    )
    trends: dict[int, list[int]] = {}
    for segment_id, size in rows:
        trends.setdefault(segment_id, []).append(size)
    return trends


def sparkline_points(sizes: list[int], *, width: int = 120, height: int = 24) -> str:
    """An SVG polyline's ``points`` for ``sizes`` (empty below two points)."""
    if len(sizes) < 2:
        return ""
    low, high = min(sizes), max(sizes)
    span = (high - low) or 1
    step = width / (len(sizes) - 1)
    points = []
    for i, size in enumerate(sizes):
        y = height - 2 - (size - low) * (height - 4) / span
        points.append(f"{i * step:.1f},{y:.1f}")
    return " ".join(points)


# --- Preview -------------------------------------------------------------------------------


@dataclass
class Preview:
    problems: list[str] = field(default_factory=list)
    count: int | None = None
    sample: list[dict[str, Any]] = field(default_factory=list)
    cost: float | None = None
    timed_out: bool = False
    cancelled: bool = False


def _preview_key(user: User, editor: str) -> str:
    return f"segment-preview:{user.pk}:{editor[:64]}"


def _backend_pid() -> int:
    connection.ensure_connection()
    return int(connection.connection.info.backend_pid)


def _cancel_previous(key: str) -> None:
    """Cancel the still-running preview this editor started before, if any.

    Only a backend whose current query still carries that preview's marker is cancelled:
    a pooled connection may have moved on to someone else's work since.
    """
    previous = cache.get(key)
    if not previous:
        return
    pid, marker = previous
    if pid == _backend_pid():  # our own connection: that preview has finished
        return
    with connection.cursor() as cursor:
        # pg_stat_activity is read once per transaction; look at it as it is now.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
            "WHERE pid = %s AND state = 'active' AND query LIKE %s",
            [pid, f"/* {marker} */%"],
        )


def segment_preview(
    *, user: User, unit: BusinessUnit, definition: Any, editor: str = ""
) -> Preview:
    """Count, sample and planner cost of the active contacts of ``unit`` that
    ``definition`` matches; or its problems by node path. ``editor`` identifies one open
    editor so that its newer preview cancels its older one."""
    context = segment_rule_context(unit_id=unit.pk)
    if definition in (None, {}, [], ""):
        return Preview(problems=["rule: a dynamic segment needs conditions"])
    problems = tag_rules.rule_check(definition, context=context)
    if problems:
        return Preview(problems=problems)
    matches = tag_rules.rule_matches(definition, context=context)
    count_sql, count_params = matches.values("pk").query.sql_with_params()
    sample_sql, sample_params = (
        matches.order_by("-pk").values("pk", "name", "company_name")[:SAMPLE_SIZE]
    ).query.sql_with_params()
    marker = f"segment-preview {secrets.token_hex(8)}"
    key = _preview_key(user, editor) if editor else ""
    preview = Preview()
    try:
        with transaction.atomic():
            if key:
                _cancel_previous(key)
                cache.set(key, (_backend_pid(), marker), PREVIEW_PID_TTL)
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {int(PREVIEW_TIMEOUT_MS)}")
                cursor.execute(
                    f"EXPLAIN (FORMAT JSON) SELECT count(*) FROM ({count_sql}) matching",  # noqa: S608 - ORM SQL
                    count_params,
                )
                plan = cursor.fetchone()[0]
                plan = json.loads(plan) if isinstance(plan, str) else plan
                preview.cost = float(plan[0]["Plan"]["Total Cost"])
                cursor.execute(
                    f"/* {marker} */ SELECT count(*) FROM ({count_sql}) matching",  # noqa: S608 - ORM SQL
                    count_params,
                )
                preview.count = int(cursor.fetchone()[0])
                cursor.execute(f"/* {marker} */ {sample_sql}", sample_params)
                preview.sample = [
                    {"id": pk, "name": name, "company": company}
                    for pk, name, company in cursor.fetchall()
                ]
                # SET LOCAL would otherwise outlast this block in a longer transaction.
                cursor.execute("SET LOCAL statement_timeout TO DEFAULT")
    except DatabaseError as exc:
        cause = exc.__cause__
        sqlstate = getattr(cause, "sqlstate", None) or getattr(
            getattr(cause, "diag", None), "sqlstate", None
        )
        if sqlstate != "57014":  # query_canceled: our timeout or a newer preview
            raise
        preview.count, preview.sample = None, []
        cancelled = bool(key) and (cache.get(key) or (None, None))[1] != marker
        preview.cancelled, preview.timed_out = cancelled, not cancelled
    finally:
        if key and (cache.get(key) or (None, None))[1] == marker:
            cache.delete(key)
    return preview


def contact_visible(*, user: User, pk: int) -> bool:
    return Contact.objects.visible_to(user, "contacts.view").filter(pk=pk).exists()
