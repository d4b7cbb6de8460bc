"""Segments ("smart groups"): definitions, static lists, and set-based membership rebuilds.

A dynamic segment's ``definition`` is the rule language of ``services.tag_rules`` (plus
``{"segment": id}``, which only segments may use). It is checked with node paths before
it is stored; an edit bumps ``version`` and queues a rebuild.

``segment_rebuild`` brings SegmentMember in line with the definition in ONE diff statement:
the matching contacts are computed once (into a temporary table for a full rebuild, a
MATERIALIZED CTE for a re-check of some contacts), new members inserted with
ON CONFLICT DO NOTHING, members that stopped matching deleted, and an entered/left
SegmentEvent written for each, all carrying the version. A rebuild started for a version
that is no longer current stops (before it starts, and again before it commits), so an
edit made mid-rebuild wins. ``segments_rebuild_for`` re-checks only some contacts (after
an import batch or new activities), like ``tag_rules_apply_for``.

Rebuilds of segments that refer to other segments read those segments' materialised
membership as it stands; the periodic run and ``segments_rebuild_for`` rebuild referred
segments first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, models, transaction
from django.db.models import F, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.contacts.models import (
    Contact,
    ContactStatus,
    ContactUnit,
    Segment,
    SegmentEvent,
    SegmentKind,
    SegmentMember,
    SegmentSize,
    SegmentStatus,
)
from apps.contacts.services import tag_rules
from apps.core.audit_actions import register_action
from apps.core.models import BusinessUnit, User
from apps.core.services import Actor, audit_record

for _action, _label in (
    ("segment.create", gettext_lazy("Segment created")),
    ("segment.update", gettext_lazy("Segment changed")),
    ("segment.archive", gettext_lazy("Segment archived")),
    ("segment.rebuild", gettext_lazy("Segment rebuild requested")),
    ("segment.members_add", gettext_lazy("Contacts added to a static segment")),
    ("segment.members_remove", gettext_lazy("Contacts removed from a static segment")),
):
    register_action(_action, _label)

# Contacts per restricted rebuild statement (segments_rebuild_for) and per static-list
# add/remove call: keeps the id array a query parameter of reasonable size.
BATCH_SIZE = 10_000
MIN_EVERY_MINUTES = 5
MAX_EVERY_MINUTES = 7 * 24 * 60
# A "running" rebuild whose worker died is picked up again after this long.
STALE_RUNNING = timedelta(minutes=30)
# The temporary table a full rebuild computes the matching contacts into.
MATCHING_TABLE = "segment_rebuild_matching"
VIEW = "contacts.view"


@dataclass(frozen=True)
class RebuildResult:
    status: str = "done"  # done / superseded / skipped / failed
    entered: int = 0
    left: int = 0
    size: int = 0

    def __add__(self, other: RebuildResult) -> RebuildResult:
        return RebuildResult(
            self.status, self.entered + other.entered, self.left + other.left, self.size
        )


class _Superseded(Exception):
    pass


# --- Context and checks --------------------------------------------------------------------


def segment_rule_context(*, unit_id: int, segment: Segment | None = None) -> tag_rules.RuleContext:
    """What a definition of ``unit_id`` may refer to, segments included."""
    context = tag_rules.rule_context(unit_id=unit_id)
    context.segments = {
        s.pk: s
        for s in Segment.objects.dangerously_unscoped().filter(
            unit_id=unit_id, is_active=True, kind__in=SegmentKind.values
        )
    }
    context.segment_id = segment.pk if segment is not None and segment.pk else None
    return context


def definition_problems(
    definition: Any, *, unit_id: int, segment: Segment | None = None
) -> list[str]:
    """Problems with ``definition`` as "path: message" strings; empty when it can be used."""
    if definition in (None, {}, [], ""):
        return [_("rule: a dynamic segment needs conditions")]
    context = segment_rule_context(unit_id=unit_id, segment=segment)
    return tag_rules.rule_check(definition, context=context)


def _check_definition(kind: str, definition: Any, unit_id: int, segment: Segment | None) -> Any:
    if kind == SegmentKind.STATIC:
        if definition not in (None, {}, ""):
            raise ValidationError({"definition": [_("A static list has no conditions.")]})
        return None
    problems = definition_problems(definition, unit_id=unit_id, segment=segment)
    if problems:
        raise ValidationError({"definition": problems})
    # Stored exactly as checked (a JSON round trip drops anything that is not JSON).
    return json.loads(json.dumps(definition))


def _text(value: str, field: str, max_length: int, *, required: bool = True) -> str:
    text = (value or "").strip()
    if required and not text:
        raise ValidationError({field: [_("This field is required.")]})
    if len(text) > max_length:
        raise ValidationError({field: [_("At most %(n)d characters, please.") % {"n": max_length}]})
    return text


def _every(minutes: Any) -> int:
    if (
        not isinstance(minutes, int)
        or isinstance(minutes, bool)
        or not MIN_EVERY_MINUTES <= minutes <= MAX_EVERY_MINUTES
    ):
        raise ValidationError(
            {
                "rebuild_every_minutes": [
                    _("Choose a whole number of minutes from %(min)d to %(max)d.")
                    % {"min": MIN_EVERY_MINUTES, "max": MAX_EVERY_MINUTES}
                ]
            }
        )
    return minutes


def _audit(segment: Segment) -> dict[str, Any]:
    return {
        "name": segment.name,
        "kind": segment.kind,
        "definition": segment.definition,
        "version": segment.version,
        "rebuild_every_minutes": segment.rebuild_every_minutes,
        "is_active": segment.is_active,
    }


def _queue_rebuild(segment_id: int, version: int) -> None:
    # Imported here: the tasks module imports this one.
    from apps.contacts.tasks.segments import rebuild_segment
    from apps.core.tasks import enqueue_on_commit

    enqueue_on_commit(rebuild_segment, segment_id, version)


# --- Writes --------------------------------------------------------------------------------


@transaction.atomic
def segment_create(
    *,
    unit: BusinessUnit,
    name: str,
    kind: str = SegmentKind.DYNAMIC,
    definition: Any = None,
    description: str = "",
    rebuild_every_minutes: int = 60,
    acting_user: Actor,
) -> Segment:
    """A new segment. A dynamic one starts empty and queued; its first rebuild fills it."""
    if kind not in SegmentKind.values:
        raise ValidationError({"kind": [_("Choose dynamic or static.")]})
    segment = Segment(
        unit=unit,
        kind=kind,
        name=_text(name, "name", 150),
        description=_text(description, "description", 2000, required=False),
        rebuild_every_minutes=_every(rebuild_every_minutes),
        status=SegmentStatus.QUEUED if kind == SegmentKind.DYNAMIC else SegmentStatus.IDLE,
        created_by=acting_user if isinstance(acting_user, User) else None,
    )
    segment.definition = _check_definition(kind, definition, unit.pk, None)
    segment.save()
    audit_record(
        actor=acting_user, action="segment.create", obj=segment, unit=unit, after=_audit(segment)
    )
    if kind == SegmentKind.DYNAMIC:
        _queue_rebuild(segment.pk, segment.version)
    return segment


@transaction.atomic
def segment_update(
    *,
    segment: Segment,
    name: str,
    definition: Any = None,
    description: str = "",
    rebuild_every_minutes: int | None = None,
    acting_user: Actor,
) -> Segment:
    """Change a segment. A changed definition bumps ``version`` and queues a rebuild; a
    rebuild still running for the old version stops without writing."""
    # The row lock orders this edit against a rebuild's final version check.
    locked = Segment.objects.dangerously_unscoped().select_for_update().get(pk=segment.pk)
    if not locked.is_active:
        raise ValidationError({"name": [_("An archived segment cannot be changed.")]})
    before = _audit(locked)
    locked.name = _text(name, "name", 150)
    locked.description = _text(description, "description", 2000, required=False)
    if rebuild_every_minutes is not None:
        locked.rebuild_every_minutes = _every(rebuild_every_minutes)
    fields = ["name", "description", "rebuild_every_minutes", "updated_at"]
    new_definition = _check_definition(locked.kind, definition, locked.unit_id, locked)
    if locked.kind == SegmentKind.DYNAMIC and new_definition != locked.definition:
        locked.definition = new_definition
        locked.version += 1
        locked.status = SegmentStatus.QUEUED
        fields += ["definition", "version", "status"]
        _queue_rebuild(locked.pk, locked.version)
    locked.save(update_fields=fields)
    audit_record(
        actor=acting_user,
        action="segment.update",
        obj=locked,
        unit=locked.unit_id,
        before=before,
        after=_audit(locked),
    )
    return locked


@transaction.atomic
def segment_archive(*, segment: Segment, acting_user: Actor) -> Segment:
    """Archive a segment: it stops rebuilding and leaves lists. Refused while another
    active segment's conditions refer to it."""
    users = [
        s.name
        for s in Segment.objects.dangerously_unscoped().filter(
            unit_id=segment.unit_id, is_active=True, kind=SegmentKind.DYNAMIC
        )
        if s.pk != segment.pk and segment.pk in tag_rules.rule_segment_refs(s.definition)
    ]
    if users:
        raise ValidationError(
            {
                "segment": [
                    _("Still used in the conditions of: %(names)s.") % {"names": "、".join(users)}
                ]
            }
        )
    before = _audit(segment)
    segment.is_active = False
    segment.status = SegmentStatus.IDLE
    segment.save(update_fields=["is_active", "status", "updated_at"])
    audit_record(
        actor=acting_user,
        action="segment.archive",
        obj=segment,
        unit=segment.unit_id,
        before=before,
        after=_audit(segment),
    )
    return segment


@transaction.atomic
def segment_rebuild_request(*, segment: Segment, acting_user: Actor) -> Segment:
    """ "Rebuild now": queue a rebuild of the current version (after commit)."""
    if segment.kind != SegmentKind.DYNAMIC or not segment.is_active:
        raise ValidationError({"segment": [_("Only an active dynamic segment can be rebuilt.")]})
    Segment.objects.dangerously_unscoped().filter(pk=segment.pk).exclude(
        status=SegmentStatus.RUNNING
    ).update(status=SegmentStatus.QUEUED)
    segment.refresh_from_db(fields=["status", "version"])
    audit_record(
        actor=acting_user,
        action="segment.rebuild",
        obj=segment,
        unit=segment.unit_id,
        after={"version": segment.version},
    )
    _queue_rebuild(segment.pk, segment.version)
    return segment


# --- Static lists --------------------------------------------------------------------------


def _static(segment: Segment) -> None:
    if segment.kind != SegmentKind.STATIC or not segment.is_active:
        raise ValidationError(
            {"contacts": [_("Contacts can be added and removed by hand on static lists only.")]}
        )


def _contact_ids(raw: Iterable[Any]) -> list[int]:
    ids: set[int] = set()
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValidationError({"contacts": [_("Expected a list of contact ids.")]})
        ids.add(value)
    if not ids:
        raise ValidationError({"contacts": [_("Expected a list of contact ids.")]})
    if len(ids) > BATCH_SIZE:
        raise ValidationError(
            {"contacts": [_("At most %(n)d contacts per call, please.") % {"n": BATCH_SIZE}]}
        )
    return sorted(ids)


@transaction.atomic
def segment_members_add(*, segment: Segment, contact_ids: Iterable[Any], acting_user: User) -> int:
    """Add contacts the user can see (and the segment's unit knows) to a static list.

    Others are ignored, exactly as unknown ids. Returns how many were new. One statement.
    """
    _static(segment)
    ids = _contact_ids(contact_ids)
    allowed = list(
        Contact.objects.visible_to(acting_user, VIEW)
        .filter(pk__in=ids, status=ContactStatus.ACTIVE)
        .filter(
            pk__in=ContactUnit.objects.dangerously_unscoped()
            .filter(unit_id=segment.unit_id, contact_id__in=ids)
            .values("contact_id")
        )
        .values_list("pk", flat=True)
    )
    members, events = SegmentMember._meta.db_table, SegmentEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH new AS (
                INSERT INTO {members} (segment_id, contact_id, since)
                SELECT %s, c, now() FROM unnest(%s::bigint[]) AS c
                ON CONFLICT (segment_id, contact_id) DO NOTHING
                RETURNING contact_id
            )
            INSERT INTO {events} (segment_id, contact_id, kind, at, version)
            SELECT %s, contact_id, 'entered', now(), %s FROM new
            """,  # noqa: S608 - table names from model metadata
            [segment.pk, allowed, segment.pk, segment.version],
        )
        added = cursor.rowcount
    _static_size(segment, added, 0)
    audit_record(
        actor=acting_user,
        action="segment.members_add",
        obj=segment,
        unit=segment.unit_id,
        after={"asked": len(ids), "added": added},
    )
    return added


@transaction.atomic
def segment_members_remove(
    *, segment: Segment, contact_ids: Iterable[Any], acting_user: User
) -> int:
    """Take contacts off a static list. Returns how many were members. One statement."""
    _static(segment)
    ids = _contact_ids(contact_ids)
    members, events = SegmentMember._meta.db_table, SegmentEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH gone AS (
                DELETE FROM {members} WHERE segment_id = %s AND contact_id = ANY(%s)
                RETURNING contact_id
            )
            INSERT INTO {events} (segment_id, contact_id, kind, at, version)
            SELECT %s, contact_id, 'left', now(), %s FROM gone
            """,  # noqa: S608 - table names from model metadata
            [segment.pk, ids, segment.pk, segment.version],
        )
        removed = cursor.rowcount
    _static_size(segment, 0, removed)
    audit_record(
        actor=acting_user,
        action="segment.members_remove",
        obj=segment,
        unit=segment.unit_id,
        after={"asked": len(ids), "removed": removed},
    )
    return removed


def _static_size(segment: Segment, entered: int, left: int) -> None:
    if not entered and not left:
        return
    now = timezone.now()
    Segment.objects.dangerously_unscoped().filter(pk=segment.pk).update(
        size=F("size") + entered - left, rebuilt_at=now
    )
    segment.refresh_from_db(fields=["size", "rebuilt_at"])
    SegmentSize.objects.create(
        segment=segment, at=now, size=segment.size, entered=entered, left=left
    )


# --- Rebuilds ------------------------------------------------------------------------------


def _lock_segment(segment_id: int) -> None:
    # One rebuild of a segment at a time: the periodic run, "rebuild now" and an
    # incremental re-check would otherwise diff against each other's half-done work.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"segment|{segment_id}"]
        )


def _estimate(queryset: models.QuerySet[Any]) -> int:
    """The planner's row estimate for ``queryset`` (no rows are read)."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return max(0, min(int(plan[0]["Plan"].get("Plan Rows", 0)), 2**31 - 1))


def _diff(
    segment_id: int,
    version: int,
    matches: models.QuerySet[Contact],
    contact_ids: Sequence[int] | None,
) -> tuple[int, int, int]:
    """The one diff statement: (entered, left, matching count).

    A full rebuild first writes the matching ids to a temporary table: a plain
    ``CREATE TABLE … AS SELECT`` may use parallel workers, which a SELECT inside a
    data-modifying statement never does (on a million contacts that is most of the
    time). A re-check of some contacts keeps the matching set in a MATERIALIZED CTE.
    """
    restrict_sql, restrict_params = "", []
    if contact_ids is not None:
        matches = matches.filter(tag_rules.IdIn("id", contact_ids))
        restrict_sql, restrict_params = "AND sm.contact_id = ANY(%s)", [list(contact_ids)]
    select_sql, select_params = matches.values("pk").query.sql_with_params()
    members, events = SegmentMember._meta.db_table, SegmentEvent._meta.db_table
    temporary = contact_ids is None
    if temporary:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {MATCHING_TABLE}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {MATCHING_TABLE} ON COMMIT DROP AS {select_sql}",
                select_params,
            )
        matching_sql, matching_params = f"SELECT pk FROM {MATCHING_TABLE}", []  # noqa: S608
    else:
        matching_sql, matching_params = select_sql, list(select_params)
    sql = f"""
        WITH matching (id) AS MATERIALIZED ({matching_sql}),
        entered AS (
            INSERT INTO {members} (segment_id, contact_id, since)
            SELECT %s, m.id, now() FROM matching m
            ON CONFLICT (segment_id, contact_id) DO NOTHING
            RETURNING contact_id
        ),
        left_ AS (
            DELETE FROM {members} sm
            WHERE sm.segment_id = %s {restrict_sql}
              AND NOT EXISTS (SELECT 1 FROM matching m WHERE m.id = sm.contact_id)
            RETURNING sm.contact_id
        ),
        logged AS (
            INSERT INTO {events} (segment_id, contact_id, kind, at, version)
            SELECT %s, contact_id, 'entered', now(), %s FROM entered
            UNION ALL
            SELECT %s, contact_id, 'left', now(), %s FROM left_
        )
        SELECT (SELECT count(*) FROM entered), (SELECT count(*) FROM left_),
               (SELECT count(*) FROM matching)
    """  # noqa: S608 - table names from model metadata; the definition's SQL is the ORM's
    params = [
        *matching_params,
        segment_id,
        segment_id,
        *restrict_params,
        segment_id,
        version,
        segment_id,
        version,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        entered, left, matching = cursor.fetchone()
        if temporary:
            cursor.execute(f"DROP TABLE {MATCHING_TABLE}")
    return int(entered), int(left), int(matching)


def _fail(segment_id: int, version: int, message: str) -> None:
    Segment.objects.dangerously_unscoped().filter(pk=segment_id, version=version).update(
        status=SegmentStatus.FAILED, last_error=message[:500]
    )


def segment_rebuild(
    *, segment_id: int, version: int | None = None, force: bool = True
) -> RebuildResult:
    """Rebuild one dynamic segment's membership for ``version`` (the current one if None).

    Stops (``superseded``) when ``version`` is no longer current, before and after the
    diff statement. With ``force=False`` (the periodic run) an up-to-date segment whose
    last rebuild is recent enough is skipped.
    """
    segment = Segment.objects.dangerously_unscoped().filter(pk=segment_id).first()
    if segment is None or not segment.is_active or segment.kind != SegmentKind.DYNAMIC:
        return RebuildResult("skipped")
    version = segment.version if version is None else version
    if segment.version != version:
        return RebuildResult("superseded")
    if not force and segment.status == SegmentStatus.IDLE and segment.rebuilt_at is not None:
        fresh_until = segment.rebuilt_at + timedelta(minutes=segment.rebuild_every_minutes)
        if segment.built_version == version and fresh_until > timezone.now():
            return RebuildResult("skipped", size=segment.size)
    context = segment_rule_context(unit_id=segment.unit_id, segment=segment)
    problems = tag_rules.rule_check(segment.definition, context=context)
    if problems:
        # A custom field, tag or segment it names is gone: nothing is half-applied.
        _fail(segment.pk, version, "; ".join(problems))
        return RebuildResult("failed")
    matches = tag_rules.rule_matches(segment.definition, context=context)
    estimate = _estimate(matches.values("pk"))
    claimed = (
        Segment.objects.dangerously_unscoped()
        .filter(pk=segment.pk, version=version)
        .update(
            status=SegmentStatus.RUNNING,
            rebuild_started_at=timezone.now(),
            progress_total=estimate,
            progress_done=0,
            last_error="",
        )
    )
    if not claimed:
        return RebuildResult("superseded")
    try:
        with transaction.atomic():
            _lock_segment(segment.pk)
            entered, left, size = _diff(segment.pk, version, matches, None)
            # An edit committed while the statement ran wins: everything rolls back.
            current = (
                Segment.objects.dangerously_unscoped()
                .select_for_update()
                .filter(pk=segment.pk)
                .values_list("version", flat=True)
                .first()
            )
            if current != version:
                raise _Superseded
            now = timezone.now()
            Segment.objects.dangerously_unscoped().filter(pk=segment.pk).update(
                size=size,
                built_version=version,
                status=SegmentStatus.IDLE,
                rebuilt_at=now,
                progress_done=size,
                progress_total=size,
            )
            SegmentSize.objects.create(
                segment_id=segment.pk, at=now, size=size, entered=entered, left=left
            )
    except _Superseded:
        return RebuildResult("superseded")
    except DatabaseError as exc:
        _fail(segment.pk, version, str(exc).strip() or exc.__class__.__name__)
        return RebuildResult("failed")
    return RebuildResult("done", entered, left, size)


def segments_in_order(segments: Iterable[Segment]) -> list[Segment]:
    """Segments ordered so that one another refers to is rebuilt before it."""
    by_id = {s.pk: s for s in segments}
    ordered: list[Segment] = []
    done: set[int] = set()
    visiting: set[int] = set()

    def visit(segment: Segment) -> None:
        if segment.pk in done or segment.pk in visiting:  # cycles cannot be saved
            return
        visiting.add(segment.pk)
        for ref in sorted(tag_rules.rule_segment_refs(segment.definition)):
            if ref in by_id:
                visit(by_id[ref])
        visiting.discard(segment.pk)
        done.add(segment.pk)
        ordered.append(segment)

    for segment in sorted(by_id.values(), key=lambda s: s.pk):
        visit(segment)
    return ordered


def _dynamic_segments(unit_ids: Iterable[int]) -> dict[int, list[Segment]]:
    per_unit: dict[int, list[Segment]] = {}
    for segment in (
        Segment.objects.dangerously_unscoped()
        .filter(unit_id__in=list(unit_ids), is_active=True, kind=SegmentKind.DYNAMIC)
        .order_by("unit_id", "id")
    ):
        per_unit.setdefault(segment.unit_id, []).append(segment)
    return per_unit


@transaction.atomic
def _rebuild_some(
    segment: Segment, context: tag_rules.RuleContext, ids: list[int]
) -> RebuildResult:
    _lock_segment(segment.pk)
    current = (
        Segment.objects.dangerously_unscoped()
        .filter(pk=segment.pk, is_active=True)
        .values_list("version", flat=True)
        .first()
    )
    if current is None:
        return RebuildResult("skipped")
    context.segment_id = segment.pk
    matches = tag_rules.rule_matches(segment.definition, context=context, contact_ids=ids)
    entered, left, _matching = _diff(segment.pk, current, matches, ids)
    if entered or left:
        Segment.objects.dangerously_unscoped().filter(pk=segment.pk).update(
            size=F("size") + entered - left
        )
    return RebuildResult("done", entered, left)


def segments_rebuild_for(*, contact_ids: Iterable[int]) -> RebuildResult:
    """Re-check the dynamic segments of the units that know these contacts, for them only.

    Set-based: one statement per segment per BATCH_SIZE contacts. Entered/left events
    carry the segment's current version.
    """
    ids = sorted(set(contact_ids))
    total = RebuildResult()
    for start in range(0, len(ids), BATCH_SIZE):
        batch = ids[start : start + BATCH_SIZE]
        units = set(
            ContactUnit.objects.dangerously_unscoped()
            .filter(contact_id__in=batch)
            .values_list("unit_id", flat=True)
            .distinct()
        )
        for unit_id, segments in _dynamic_segments(units).items():
            context = segment_rule_context(unit_id=unit_id)
            for segment in segments_in_order(segments):
                context.segment_id = segment.pk
                try:
                    tag_rules.rule_validate(segment.definition, context=context)
                except tag_rules.RuleError:
                    continue  # shown as failed by its next full rebuild
                total += _rebuild_some(segment, context, batch)
    return total


def segments_due(*, now: Any = None) -> list[tuple[int, int]]:
    """(id, version) of dynamic segments the periodic run should rebuild: queued ones,
    ones whose last rebuild is older than their interval, and stuck "running" ones."""
    now = now or timezone.now()
    overdue = Q(rebuilt_at__isnull=True) | Q(
        rebuilt_at__lt=RawSQL(
            "%s - make_interval(mins => rebuild_every_minutes)",
            [now],
            output_field=models.DateTimeField(),
        )
    )
    stuck = Q(status=SegmentStatus.RUNNING, rebuild_started_at__lt=now - STALE_RUNNING)
    return list(
        Segment.objects.dangerously_unscoped()
        .filter(is_active=True, kind=SegmentKind.DYNAMIC)
        .filter(
            Q(status=SegmentStatus.QUEUED) | stuck | (overdue & ~Q(status=SegmentStatus.RUNNING))
        )
        .order_by("id")
        .values_list("id", "version")
    )


def segments_mark_stale(*, unit_ids: Iterable[int]) -> int:
    """Many contacts of these units changed at once (an import): their dynamic segments
    are queued for the next periodic run, one full rebuild each, instead of re-checking
    contacts one batch at a time. Returns how many segments were queued."""
    return (
        Segment.objects.dangerously_unscoped()
        .filter(unit_id__in=list(unit_ids), kind=SegmentKind.DYNAMIC, is_active=True)
        .exclude(status__in=[SegmentStatus.RUNNING, SegmentStatus.QUEUED])
        .update(status=SegmentStatus.QUEUED)
    )
