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

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.contacts.collector.parse import (
    BodyError,
    EventIn,
    body_parse,
    events_validate,
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
    whatever the number of activities. An anonymous id that already belongs to somebody
    else is left alone: a shared browser is weak evidence and must not merge two people.
    Returns the number of activities attached.
    """
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
    group_units = BusinessUnit.objects.filter(Q(pk=group_id) | Q(parent_id=group_id))
    attached = (
        Activity.objects.dangerously_unscoped()
        .filter(anonymous_id=anonymous_id, contact__isnull=True, unit__in=group_units)
        .update(contact_id=contact.pk)
    )
    if owner is None or attached:
        audit_record(
            actor=acting_user,
            action="contact.anonymous_link",
            obj=contact,
            after={"anonymous_id": anonymous_id, "activities": attached},
        )
    return attached


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
    try:
        payload = body_parse(bytes(batch.body))
    except BodyError as exc:
        return _Prepared(batch, site, _Outcome(RawBatchStatus.REJECTED, reason=str(exc)))
    checked = events_validate(
        payload, received_at=batch.received_at, max_events=site.max_events_per_batch
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


def _resolve_signed(prepared: _Prepared, resolved: dict[Touch, TouchIds]) -> int | None:
    """The contact of a batch that carries signed identifiers (rare: batch by batch)."""
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
            anonymous_link(contact=contact, anonymous_id=prepared.anonymous_id)
    return contact.pk if contact is not None else None


def _anonymous_owners(segment: list[_Prepared]) -> dict[tuple[int, str], int]:
    """(group id, anonymous id) → contact id: one query per group for the whole segment."""
    wanted: dict[int, set[str]] = {}
    for p in segment:
        if p.anonymous_id and p.site is not None:
            wanted.setdefault(_group_id(p.site), set()).add(p.anonymous_id)
    owners: dict[tuple[int, str], int] = {}
    for group_id, values in wanted.items():
        rows = (
            Identity.objects.dangerously_unscoped()
            .filter(group_id=group_id, kind=IdentityKind.ANONYMOUS, scope="", value__in=values)
            .values_list("value", "contact_id")
        )
        for value, contact_id in rows:
            owners[(group_id, value)] = contact_id
    return owners


def _rows(
    prepared: _Prepared, contact_id: int | None, resolved: dict[Touch, TouchIds]
) -> list[ActivityIn]:
    site = prepared.site
    assert site is not None
    return [
        ActivityIn(
            unit_id=site.unit_id,
            type=e.type,
            occurred_at=e.occurred_at,
            contact_id=contact_id,
            anonymous_id=prepared.anonymous_id,
            channel_id=resolved[touch].channel_id,
            campaign_id=resolved[touch].campaign_id,
            object_type=e.object_type,
            object_id=e.object_id,
            properties=e.properties,
            dedupe_key=e.dedupe_key(site.pk, prepared.anonymous_id),
        )
        for e, touch in zip(prepared.events, prepared.touches, strict=True)
    ]


def _record_segment(
    segment: list[_Prepared], resolved_by_unit: dict[int, dict[Touch, TouchIds]]
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


def _finish_all(batches: list[RawBatch], outcomes: list[_Outcome]) -> None:
    """Every batch's status, counts and rejections: one UPDATE … FROM unnest."""
    if not batches:
        return
    now = timezone.now()
    for batch, outcome in zip(batches, outcomes, strict=True):
        batch.status = outcome.status
        batch.reason = outcome.reason[:300]
        batch.event_count = outcome.event_count
        batch.accepted_count = outcome.accepted
        batch.rejections = outcome.rejections
        batch.processed_at = now
    table = RawBatch._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} AS b
            SET status = v.status, reason = v.reason, event_count = v.event_count,
                accepted_count = v.accepted_count, rejections = v.rejections,
                processed_at = %s
            FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::integer[], %s::integer[],
                        %s::jsonb[]) AS v(id, status, reason, event_count, accepted_count,
                                          rejections)
            WHERE b.id = v.id
            """,  # noqa: S608 - table name from model metadata
            [
                now,
                [b.pk for b in batches],
                [b.status for b in batches],
                [b.reason for b in batches],
                [b.event_count for b in batches],
                [b.accepted_count for b in batches],
                [json.dumps(b.rejections, ensure_ascii=False) for b in batches],
            ],
        )


def _process_claimed(batches: list[RawBatch], sites: dict[int, Site]) -> None:
    """Turn claimed batches into activities as a set, inside the caller's transaction.

    Parsing and checks batch by batch (pure Python); then one channel/campaign lookup per
    unit, one anonymous-id lookup per group, one ``activities_record`` for all the rows and
    one status UPDATE. Batches with signed identifiers are resolved one by one, in id order
    with the others, so the result is the same as processing the batches one after another.
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
    for p in prepared:
        if p.outcome is not None or p.site is None:
            continue
        if not p.signed:
            segment.append(p)
            continue
        _record_segment(segment, resolved_by_unit)  # what came before sees no later identify
        segment = []
        resolved = resolved_by_unit[p.site.unit_id]
        contact_id = _resolve_signed(p, resolved)
        if contact_id is None and p.anonymous_id:
            key = Key(IdentityKind.ANONYMOUS, "", p.anonymous_id)
            contact_id = identity_owners(_group_id(p.site), [key]).get(key)
        if contact_id is not None and p.events:
            contact_unit_ensure([contact_id], p.site.unit_id, SOURCE)
        rows = _rows(p, contact_id, resolved)
        if rows:
            activities_record(rows)
    _record_segment(segment, resolved_by_unit)
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


def _claim(
    *, ids: Sequence[int] | None = None, after_id: int = 0, limit: int = 0
) -> list[RawBatch]:
    """Lock pending batches that no other worker holds (``FOR UPDATE SKIP LOCKED``)."""
    query = (
        RawBatch.objects.dangerously_unscoped()
        .select_for_update(skip_locked=True)
        .filter(status=RawBatchStatus.PENDING)
        .order_by("id")
    )
    if ids is not None:
        query = query.filter(pk__in=list(ids))
    if after_id:
        query = query.filter(id__gt=after_id)
    return list(query[:limit] if limit else query)


@dataclass(frozen=True)
class ProcessResult:
    batches: list[RawBatch]  # the batches processed, with their new status
    failed: list[int]  # ids that failed on their own and stay pending
    claimed: list[int]  # every id claimed, processed or failed


def _process_chunk(
    *, ids: Sequence[int] | None = None, after_id: int = 0, limit: int = 0
) -> ProcessResult:
    """Claim pending batches and process them as a set in one transaction. If the set
    fails, each batch is processed again in a savepoint of its own, so one poison batch
    leaves only itself pending."""
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
