"""Turning stored collector batches into Activities, and linking them to contacts.

Processing is idempotent twice over: a batch is claimed with ``SELECT … FOR UPDATE SKIP
LOCKED`` and only while it is pending (so two workers never process one batch, and a
processed one is skipped), and every activity carries a dedupe key (the client's event id,
else a hash of the event) that the activity table's unique index enforces, so the same
events sent in a second batch add nothing.

Who did it: signed identifiers (see ``signing``) resolve or create the contact and attach
the visitor's earlier anonymous activity (``anonymous_link``); otherwise an anonymous id
that already belongs to a contact says who it is; otherwise the activities stay anonymous
until the visitor identifies.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.contacts.collector.driver import server_cursor
from apps.contacts.collector.parse import (
    BodyError,
    EventIn,
    body_parse,
    events_validate,
    text_is_clean,
    token_or_none,
)
from apps.contacts.collector.signing import identifiers_verify
from apps.contacts.collector.utm import Touch, touch_of
from apps.contacts.identity_keys import InvalidKey, Key, make_key
from apps.contacts.models import (
    Activity,
    Campaign,
    Channel,
    Contact,
    Identity,
    IdentityKind,
    RawBatch,
    RawBatchStatus,
    Site,
)
from apps.contacts.services.activities import ActivityIn, activities_record
from apps.contacts.services.resolution import (
    ErasedPerson,
    contact_resolve,
    contact_unit_ensure,
    identity_owners,
    lock_keys,
)
from apps.contacts.services.touches import TouchIn, contact_touches_apply
from apps.core.models import BusinessUnit
from apps.core.services import Actor, SystemActor, audit_record

logger = logging.getLogger(__name__)

COLLECTOR = SystemActor("collector")
SOURCE = "collector"
# Batches claimed per sweep transaction: the locks are held for one chunk only.
SWEEP_CHUNK = 500
# Chunks per sweep task; when more are pending the task queues its successor.
SWEEP_MAX_CHUNKS = 20


# --- Anonymous → known ---------------------------------------------------------------------


@transaction.atomic
def anonymous_link(*, contact: Contact, anonymous_id: str, acting_user: Actor = COLLECTOR) -> int:
    """The visitor ``anonymous_id`` turned out to be ``contact``: record the anonymous id
    as one of their identities and attach the activity recorded under it so far.

    Forms, share-link logins and the WeChat OAuth callback call this too. One UPDATE
    whatever the number of activities; the channels and campaigns of the attached
    activities count as the contact's touches (first and latest touch). An anonymous id
    that already belongs to somebody else is left alone: a shared browser is weak evidence
    and must not merge two people. Returns the number of activities attached.
    """
    touches: list[TouchIn] = []
    attached = _anonymous_attach(
        contact=contact, anonymous_id=anonymous_id, acting_user=acting_user, touches=touches
    )
    contact_touches_apply(touches)
    return attached


_ATTACH = f"""
    UPDATE {Activity._meta.db_table} SET contact_id = %s
    WHERE anonymous_id = %s AND contact_id IS NULL
      AND unit_id IN (SELECT id FROM {BusinessUnit._meta.db_table} WHERE id = %s OR parent_id = %s)
    RETURNING occurred_at, channel_id, campaign_id
"""  # noqa: S608 - table names from model metadata


def _anonymous_attach(
    *, contact: Contact, anonymous_id: str, acting_user: Actor, touches: list[TouchIn]
) -> int:
    """``anonymous_link`` without applying the touches: they are appended to ``touches``
    (the collector applies a whole chunk's at once)."""
    if token_or_none(anonymous_id) is None:
        raise ValueError("not an anonymous id")
    key = Key(IdentityKind.ANONYMOUS, "", anonymous_id)
    group_id = contact.group_id
    lock_keys(group_id, [key])
    owner = identity_owners(group_id, [key]).get(key)
    if owner is not None and owner != contact.pk:
        return 0
    if owner is None:
        Identity.objects.bulk_create(
            [
                Identity(
                    group_id=group_id,
                    contact=contact,
                    kind=key.kind,
                    scope="",
                    value=anonymous_id,
                    source=SOURCE,
                )
            ],
            ignore_conflicts=True,
        )
    with connection.cursor() as cursor:
        cursor.execute(_ATTACH, [contact.pk, anonymous_id, group_id, group_id])
        rows = cursor.fetchall()
    touches.extend(TouchIn(contact.pk, at, channel, campaign) for at, channel, campaign in rows)
    if owner is None or rows:
        audit_record(
            actor=acting_user,
            action="contact.anonymous_link",
            obj=contact,
            after={"anonymous_id": anonymous_id, "activities": len(rows)},
        )
    return len(rows)


# --- Channels and campaigns ----------------------------------------------------------------


@dataclass(frozen=True)
class TouchIds:
    channel_id: int | None
    campaign_id: int | None


def touches_resolve(unit_id: int, touches: list[Touch]) -> dict[Touch, TouchIds]:
    """Match touches to the unit's channels and campaigns: at most two queries."""
    codes = {t.channel_code for t in touches if t.channel_code}
    kinds = {t.kind for t in touches if not t.channel_code and t.kind}
    campaign_codes = {t.campaign_code for t in touches if t.campaign_code}
    by_code: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    if codes or kinds:
        rows = (
            Channel.objects.dangerously_unscoped()
            .filter(unit_id=unit_id, is_active=True)
            .filter(Q(code__in=codes) | Q(kind__in=kinds))
            .order_by("id")
            .values_list("id", "code", "kind")
        )
        for row_id, code, kind in rows:
            by_code[code] = row_id
            # The channel coded like its kind ("seo") wins, else the oldest of the kind.
            if kind not in by_kind or code == kind:
                by_kind[kind] = row_id
    campaigns: dict[str, tuple[int, int | None]] = {}
    if campaign_codes:
        campaigns = {
            code: (pk, channel_id)
            for pk, code, channel_id in Campaign.objects.dangerously_unscoped()
            .filter(unit_id=unit_id, code__in=campaign_codes)
            .values_list("id", "code", "channel_id")
        }
    resolved: dict[Touch, TouchIds] = {}
    for touch in touches:
        channel_id = by_code.get(touch.channel_code) if touch.channel_code else None
        if channel_id is None and not touch.channel_code and touch.kind:
            channel_id = by_kind.get(touch.kind)
        campaign_id, campaign_channel = campaigns.get(touch.campaign_code, (None, None))
        resolved[touch] = TouchIds(channel_id or campaign_channel, campaign_id)
    return resolved


# --- Processing ----------------------------------------------------------------------------


def _identify_keys(
    identify: dict[str, Any], site: Site, index: int | None, rejections: list[dict[str, Any]]
) -> list[Key]:
    """The keys of signed identifiers; unsigned or badly signed ones are never trusted."""
    identifiers = identify.get("identifiers")
    if not isinstance(identifiers, dict) or not identifiers:
        rejections.append({"index": index, "reason": _("identify needs identifiers")})
        return []
    if not identify.get("signature"):
        rejections.append({"index": index, "reason": _("identifiers are not signed")})
        return []
    if not identifiers_verify(site.signing_secret, identifiers, identify.get("signature")):
        rejections.append({"index": index, "reason": _("the identifiers' signature is not valid")})
        return []
    keys: list[Key] = []
    for kind, raw in identifiers.items():
        value, scope = (
            (raw.get("value"), raw.get("scope", "")) if isinstance(raw, dict) else (raw, "")
        )
        try:
            if kind == IdentityKind.ANONYMOUS:
                raise InvalidKey("the anonymous id goes in anonymous_id")
            if not isinstance(value, str) or not isinstance(scope, str):
                raise InvalidKey("an identifier must be a string")
            keys.append(make_key(kind, value, scope))
        except InvalidKey as exc:
            rejections.append(
                {
                    "index": index,
                    "reason": _("identifier %(kind)s: %(error)s")
                    % {"kind": str(kind)[:30], "error": exc},
                }
            )
    return keys


@dataclass
class _Outcome:
    """What processing decided for one batch, written with the others in one UPDATE."""

    status: str
    reason: str = ""
    event_count: int = 0
    accepted: int = 0
    rejections: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Prepared:
    """One claimed batch, parsed and checked (no query yet)."""

    batch: RawBatch
    site: Site | None
    outcome: _Outcome | None = None  # set when the batch ends before any activity
    anonymous_id: str = ""
    events: list[EventIn] = field(default_factory=list)
    identifies: list[tuple[int | None, dict[str, Any]]] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    valid_count: int = 0  # valid events, identify events included
    event_count: int = 0
    touches: list[Touch] = field(default_factory=list)
    signed: bool = False  # carries at least one signed identifier: resolved batch by batch


def _prepare(batch: RawBatch, site: Site | None) -> _Prepared:
    if batch.is_bot:
        return _Prepared(batch, site, _Outcome(RawBatchStatus.PROCESSED, reason="bot"))
    if site is None:
        return _Prepared(
            batch,
            site,
            _Outcome(RawBatchStatus.REJECTED, reason=_("the site is unknown or inactive")),
        )
    body = bytes(batch.body)
    try:
        payload = body_parse(body)
    except BodyError as exc:
        return _Prepared(batch, site, _Outcome(RawBatchStatus.REJECTED, reason=str(exc)))
    checked = events_validate(
        payload,
        received_at=batch.received_at,
        max_events=site.max_events_per_batch,
        text_clean=text_is_clean(body),
    )
    prepared = _Prepared(
        batch,
        site,
        rejections=checked.rejections,
        valid_count=len(checked.events),
        event_count=len(payload["events"]),
    )
    if payload.get("anonymous_id") is not None:
        prepared.anonymous_id = token_or_none(payload["anonymous_id"]) or ""
        if not prepared.anonymous_id:
            prepared.rejections.append(
                {"index": None, "reason": _("anonymous_id must be 1–64 letters, digits or ._:-")}
            )
    prepared.events = [e for e in checked.events if e.type != "identify"]
    prepared.identifies = [(e.index, e.identify) for e in checked.events if e.identify is not None]
    if isinstance(payload.get("identify"), dict):
        prepared.identifies.insert(0, (None, payload["identify"]))
    # Only whether a signed key is there; the rejections are recorded when it is resolved.
    prepared.signed = any(
        _identify_keys(identify, site, index, []) for index, identify in prepared.identifies
    )
    if not prepared.signed:
        for index, identify in prepared.identifies:
            _identify_keys(identify, site, index, prepared.rejections)
    prepared.touches = [
        touch_of(url=e.url, referrer=e.referrer, utm=e.utm) for e in prepared.events
    ]
    return prepared


def _group_id(site: Site) -> int:
    return site.unit.parent_id or site.unit.pk


def _first_channel(prepared: _Prepared, resolved: dict[Touch, TouchIds]) -> int | None:
    return next((resolved[t].channel_id for t in prepared.touches if resolved[t].channel_id), None)


def _resolve_signed(
    prepared: _Prepared, resolved: dict[Touch, TouchIds], touches: list[TouchIn]
) -> int | None:
    """The contact of a batch that carries signed identifiers (rare: batch by batch). The
    touches of the anonymous activity it attaches are appended to ``touches``."""
    site = prepared.site
    assert site is not None
    first_channel = _first_channel(prepared, resolved)
    contact: Contact | None = None
    for index, identify in prepared.identifies:
        keys = _identify_keys(identify, site, index, prepared.rejections)
        if not keys:
            continue
        try:
            contact = contact_resolve(
                unit=site.unit,
                keys=keys,
                attributes={"source_channel_id": first_channel},
                source=SOURCE,
                observed_at=prepared.batch.received_at,
                acting_user=COLLECTOR,
            ).contact
        except ErasedPerson:
            prepared.rejections.append(
                {"index": index, "reason": _("this person asked to be erased")}
            )
            continue
        if prepared.anonymous_id:
            _anonymous_attach(
                contact=contact,
                anonymous_id=prepared.anonymous_id,
                acting_user=COLLECTOR,
                touches=touches,
            )
    return contact.pk if contact is not None else None


_OWNERS = f"""
    SELECT value, contact_id FROM {Identity._meta.db_table}
    WHERE group_id = %s AND kind = %s AND scope = '' AND value = ANY(%s)
"""  # noqa: S608 - the table name comes from model metadata; values are parameters


def _anonymous_owners(segment: list[_Prepared]) -> dict[tuple[int, str], int]:
    """(group id, anonymous id) → contact id: one query per group for the whole segment."""
    wanted: dict[int, set[str]] = {}
    for p in segment:
        if p.anonymous_id and p.site is not None:
            wanted.setdefault(_group_id(p.site), set()).add(p.anonymous_id)
    owners: dict[tuple[int, str], int] = {}
    # A chunk asks about hundreds of ids: bound on the server (``driver``), the array
    # costs the driver no quoting per element.
    with server_cursor() as cursor:
        for group_id, values in wanted.items():
            cursor.execute(_OWNERS, [group_id, IdentityKind.ANONYMOUS, list(values)])
            for value, contact_id in cursor.fetchall():
                owners[(group_id, value)] = contact_id
    return owners


def _rows(
    prepared: _Prepared, contact_id: int | None, resolved: dict[Touch, TouchIds]
) -> list[ActivityIn]:
    site = prepared.site
    assert site is not None
    unit_id, site_id, anonymous_id = site.unit_id, site.pk, prepared.anonymous_id
    rows = []
    for e, touch in zip(prepared.events, prepared.touches, strict=True):
        ids = resolved[touch]
        rows.append(
            ActivityIn(
                unit_id=unit_id,
                type=e.type,
                occurred_at=e.occurred_at,
                contact_id=contact_id,
                anonymous_id=anonymous_id,
                channel_id=ids.channel_id,
                campaign_id=ids.campaign_id,
                object_type=e.object_type,
                object_id=e.object_id,
                properties=e.properties,
                dedupe_key=e.dedupe_key(site_id, anonymous_id),
            )
        )
    return rows


def _linked_touches(rows: list[ActivityIn]) -> list[TouchIn]:
    """The touches of the activities that belong to a contact."""
    return [
        TouchIn(r.contact_id, r.occurred_at, r.channel_id, r.campaign_id)
        for r in rows
        if r.contact_id is not None
    ]


def _record_segment(
    segment: list[_Prepared],
    resolved_by_unit: dict[int, dict[Touch, TouchIds]],
    touches: list[TouchIn],
) -> None:
    """Batches without signed identifiers: who they are comes from their anonymous id."""
    if not segment:
        return
    owners = _anonymous_owners(segment)
    known: dict[int, list[int]] = {}  # unit id → contacts seen there
    rows: list[ActivityIn] = []
    for p in segment:
        assert p.site is not None
        contact_id = owners.get((_group_id(p.site), p.anonymous_id)) if p.anonymous_id else None
        if contact_id is not None and p.events:
            known.setdefault(p.site.unit_id, []).append(contact_id)
        rows.extend(_rows(p, contact_id, resolved_by_unit[p.site.unit_id]))
    for unit_id, contact_ids in known.items():
        contact_unit_ensure(contact_ids, unit_id, SOURCE)
    if rows:
        activities_record(rows)
        if known:
            touches.extend(_linked_touches(rows))


def _outcome(prepared: _Prepared) -> _Outcome:
    if prepared.outcome is not None:
        return prepared.outcome
    rejections = prepared.rejections
    if not rejections:
        status = RawBatchStatus.PROCESSED
    elif prepared.valid_count:
        status = RawBatchStatus.PARTIAL
    else:
        status = RawBatchStatus.REJECTED
    reason = ""
    if status == RawBatchStatus.REJECTED:
        reason = _("no event in the batch was valid")
    elif status == RawBatchStatus.PARTIAL:
        reason = ngettext(
            "%(count)d problem in the batch", "%(count)d problems in the batch", len(rejections)
        ) % {"count": len(rejections)}
    return _Outcome(
        status,
        reason=reason,
        event_count=prepared.event_count,
        accepted=len(prepared.events),
        rejections=rejections,
    )


_FINISH = f"""
    UPDATE {RawBatch._meta.db_table} AS b
    SET status = v.status, reason = v.reason, event_count = v.event_count,
        accepted_count = v.accepted_count, rejections = v.rejections, processed_at = %s
    FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, status text, reason text,
        event_count integer, accepted_count integer, rejections jsonb)
    WHERE b.id = v.id
"""  # noqa: S608 - the table name comes from model metadata; values are parameters


def _finish_all(batches: list[RawBatch], outcomes: list[_Outcome]) -> None:
    """Every batch's status, counts and rejections: one UPDATE, its values one JSON
    parameter (six arrays cost the driver a regex search and quoting per element)."""
    if not batches:
        return
    now = timezone.now()
    values = []
    for batch, outcome in zip(batches, outcomes, strict=True):
        batch.status = outcome.status
        batch.reason = outcome.reason[:300]
        batch.event_count = outcome.event_count
        batch.accepted_count = outcome.accepted
        batch.rejections = outcome.rejections
        batch.processed_at = now
        values.append(
            {
                "id": batch.pk,
                "status": batch.status,
                "reason": batch.reason,
                "event_count": batch.event_count,
                "accepted_count": batch.accepted_count,
                "rejections": batch.rejections,
            }
        )
    with connection.cursor() as cursor:
        cursor.execute(_FINISH, [now, json.dumps(values, ensure_ascii=False)])


def _process_claimed(batches: list[RawBatch], sites: dict[int, Site]) -> None:
    """Turn claimed batches into activities as a set, inside the caller's transaction.

    Parsing and checks batch by batch (pure Python); then one channel/campaign lookup per
    unit, one anonymous-id lookup per group, one ``activities_record`` for all the rows and
    one status UPDATE. Batches with signed identifiers are resolved one by one, in id order
    with the others, so the result is the same as processing the batches one after another.
    Last, the first/latest touch of every contact the activities belong to (those of
    known visitors, of signed identifies and the anonymous activity they attached): one
    ``contact_touches_apply`` for the lot.
    """
    prepared = [_prepare(b, sites.get(b.site_id or 0)) for b in batches]
    touches_by_unit: dict[int, set[Touch]] = {}
    for p in prepared:
        if p.outcome is None and p.site is not None:
            touches_by_unit.setdefault(p.site.unit_id, set()).update(p.touches)
    resolved_by_unit = {
        unit_id: touches_resolve(unit_id, list(touches))
        for unit_id, touches in touches_by_unit.items()
    }
    segment: list[_Prepared] = []
    linked: list[TouchIn] = []
    for p in prepared:
        if p.outcome is not None or p.site is None:
            continue
        if not p.signed:
            segment.append(p)
            continue
        # what came before sees no later identify
        _record_segment(segment, resolved_by_unit, linked)
        segment = []
        resolved = resolved_by_unit[p.site.unit_id]
        contact_id = _resolve_signed(p, resolved, linked)
        if contact_id is None and p.anonymous_id:
            key = Key(IdentityKind.ANONYMOUS, "", p.anonymous_id)
            contact_id = identity_owners(_group_id(p.site), [key]).get(key)
        if contact_id is not None and p.events:
            contact_unit_ensure([contact_id], p.site.unit_id, SOURCE)
        rows = _rows(p, contact_id, resolved)
        if rows:
            activities_record(rows)
            linked.extend(_linked_touches(rows))
    _record_segment(segment, resolved_by_unit, linked)
    contact_touches_apply(linked)
    _finish_all(batches, [_outcome(p) for p in prepared])


def _sites(site_ids: set[int]) -> dict[int, Site]:
    if not site_ids:
        return {}
    return {
        site.pk: site
        for site in Site.objects.dangerously_unscoped()
        .select_related("unit")
        .filter(pk__in=site_ids, is_active=True)
    }


# What processing reads of a claimed batch; the rest of the row stays deferred.
_CLAIMED_FIELDS = ("id", "site_id", "received_at", "body", "is_bot", "status")
_CLAIM = f"""
    SELECT {", ".join(_CLAIMED_FIELDS)} FROM {RawBatch._meta.db_table}
    WHERE status = 'pending' AND {{which}}
    ORDER BY id {{limit}}
    FOR UPDATE SKIP LOCKED
"""  # noqa: S608 - the table name comes from model metadata; values are parameters
_CLAIM_IDS = _CLAIM.format(which="id = ANY(%s)", limit="")
_CLAIM_NEXT = _CLAIM.format(which="id > %s", limit="LIMIT %s")


def _claim(
    *, ids: Sequence[int] | None = None, after_id: int = 0, limit: int = 0
) -> list[RawBatch]:
    """Lock pending batches that no other worker holds (``FOR UPDATE SKIP LOCKED``): these
    ids, or the first ``limit`` after ``after_id``.

    In SQL with binary results rather than through the ORM: the bodies are most of what
    the worker reads, and as text they travel hex-encoded (see ``driver``).
    """
    if ids is not None and not ids:
        return []
    with server_cursor(binary_results=True) as cursor:
        if ids is not None:
            cursor.execute(_CLAIM_IDS, [sorted(set(ids))])
        else:
            cursor.execute(_CLAIM_NEXT, [after_id, limit or None])
        rows = cursor.fetchall()
    return [RawBatch.from_db("default", _CLAIMED_FIELDS, row) for row in rows]


@dataclass(frozen=True)
class ProcessResult:
    batches: list[RawBatch]  # the batches processed, with their new status
    failed: list[int]  # ids that failed on their own and stay pending
    claimed: list[int]  # every id claimed, processed or failed


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a chunk is processed.

    A chunk allocates some thirty container objects an event (parsed JSON, checked events,
    rows), all alive until the chunk ends, so a collection cannot free any of them; yet
    every few thousand allocations one walks them all, and the older generations walk the
    whole of Django too. Measured: building a chunk's rows took 10 µs an event with the
    collector running and 3.4 µs without it. A chunk's memory is bounded by SWEEP_CHUNK, and
    whatever cycles it leaves are collected once the collector runs again.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _process_chunk(
    *, ids: Sequence[int] | None = None, after_id: int = 0, limit: int = 0
) -> ProcessResult:
    """Claim pending batches and process them as a set in one transaction. If the set
    fails, each batch is processed again in a savepoint of its own, so one poison batch
    leaves only itself pending."""
    with _gc_paused():
        return _process_chunk_now(ids=ids, after_id=after_id, limit=limit)


def _process_chunk_now(*, ids: Sequence[int] | None, after_id: int, limit: int) -> ProcessResult:
    claimed: list[int] = []
    try:
        with transaction.atomic():
            batches = _claim(ids=ids, after_id=after_id, limit=limit)
            claimed = [b.pk for b in batches]
            _process_claimed(batches, _sites({b.site_id for b in batches if b.site_id}))
            return ProcessResult(batches=batches, failed=[], claimed=claimed)
    except Exception:
        if not claimed:
            raise
        logger.warning("collector: a chunk failed as a set; batch by batch", exc_info=True)
    done: list[RawBatch] = []
    failed: list[int] = []
    with transaction.atomic():
        batches = _claim(ids=claimed)
        sites = _sites({b.site_id for b in batches if b.site_id})
        for batch in batches:
            try:
                with transaction.atomic():
                    _process_claimed([batch], sites)
                done.append(batch)
            except Exception:
                failed.append(batch.pk)
                logger.exception("collector batch %s failed; left pending", batch.pk)
    return ProcessResult(batches=done, failed=failed, claimed=claimed)


def collector_batches_process(batch_ids: Sequence[int]) -> ProcessResult:
    """Process these batches, those still pending and not held by another worker, as a set
    (one transaction per ``SWEEP_CHUNK``): what ``contacts.collector_process`` runs."""
    ids = sorted(set(batch_ids))
    done: list[RawBatch] = []
    failed: list[int] = []
    claimed: list[int] = []
    for start in range(0, len(ids), SWEEP_CHUNK):
        result = _process_chunk(ids=ids[start : start + SWEEP_CHUNK])
        done.extend(result.batches)
        failed.extend(result.failed)
        claimed.extend(result.claimed)
    return ProcessResult(batches=done, failed=failed, claimed=claimed)


def collector_batch_process(*, batch_id: int) -> RawBatch | None:
    """Process one batch if it is still pending and nobody else holds it; None otherwise."""
    result = collector_batches_process([batch_id])
    return result.batches[0] if result.batches else None


@dataclass(frozen=True)
class SweepResult:
    processed: int
    failed: int
    more: bool  # a full chunk was left pending when the sweep stopped


def collector_batches_sweep(
    *, chunk: int = SWEEP_CHUNK, max_chunks: int = SWEEP_MAX_CHUNKS
) -> SweepResult:
    """Process pending batches oldest first, as sets of ``chunk``: what the endpoint's
    drain and beat's sweep run. Each chunk is claimed with FOR UPDATE SKIP LOCKED in one
    transaction, so several workers share a backlog; a batch that fails on its own stays
    pending, logged, and is retried by the next sweep, not this one."""
    processed = failed = 0
    after_id = 0  # a batch that failed is not retried within the same sweep
    for _round in range(max_chunks):
        result = _process_chunk(after_id=after_id, limit=chunk)
        if result.claimed:
            after_id = result.claimed[-1]
        processed += len(result.batches)
        failed += len(result.failed)
        if len(result.claimed) < chunk:
            return SweepResult(processed=processed, failed=failed, more=False)
    return SweepResult(processed=processed, failed=failed, more=True)
