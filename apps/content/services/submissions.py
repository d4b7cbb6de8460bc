"""Form submissions: stored as they arrive, then turned into a contact, an activity and
consent by a worker, idempotently.

The public endpoint only checks the answers and INSERTs (``submission_store``); the unique
(form, token) constraint makes a second submit of the same page return the first
submission and store nothing. Processing (``submissions_process`` for given ids, on commit;
``submissions_sweep`` from beat for whatever a broker outage left behind) claims pending
rows with ``SELECT … FOR UPDATE SKIP LOCKED``, so two workers never process one
submission and a processed one is never processed again. Per submission, in a savepoint:

1. identity resolution on the email/phone answers (or, for a recognised visitor who was
   asked neither, the contact their anonymous id already belongs to), with the standard
   and custom answers as attributes;
2. ``anonymous_link``: the visitor's earlier anonymous activity joins the contact;
3. consent given with the form's wording version and proof (ip, user agent, form, page),
   when the box was ticked: email for an email address, sms and phone for a phone;
4. one ``form_submit`` activity (dedupe key ``form:<submission id>``) and the contact's
   first/latest touch.

Channel and campaign of the activity and touch: UTM first (``utm_source`` → channel,
``utm_campaign`` → campaign), then the share link's campaign, the landing page's and then
the form's own channel and campaign; without any of these, what the referrer says (search,
WeChat…). A person who asked to be erased is not taken back in: their submission is
rejected with that reason. A submission that fails for another reason stays pending for
the next sweep, and is set aside as rejected after ``MAX_ATTEMPTS``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.contacts.collector.parse import token_or_none
from apps.contacts.collector.services import TouchIds, anonymous_link, touches_resolve
from apps.contacts.collector.utm import Touch, touch_of
from apps.contacts.identity_keys import InvalidKey, Key, make_key
from apps.contacts.models import ConsentEvent, Contact, IdentityKind
from apps.contacts.services.activities import ActivityIn, activities_record
from apps.contacts.services.consent import consent_record
from apps.contacts.services.fields import FieldValueError, clean_value
from apps.contacts.services.resolution import (
    ErasedPerson,
    contact_resolve,
    identity_owners,
)
from apps.contacts.services.touches import TouchIn, contact_touches_apply
from apps.content.form_fields import (
    ATTRIBUTE_FIELDS,
    CUSTOM_PREFIX,
    CatalogueField,
    field_catalogue,
)
from apps.content.hooks import LeadRequest, submission_hooks
from apps.content.models import Form, FormSubmission, LandingPage, ShareLink, SubmissionStatus
from apps.core.services import SystemActor

logger = logging.getLogger(__name__)

FORMS = SystemActor("forms")
SOURCE = "form"
ACTIVITY_TYPE = "form_submit"
# Submissions claimed per transaction: the row locks are held for one chunk only.
CHUNK = 200
# Chunks per sweep task; when more are pending the task queues its successor.
SWEEP_MAX_CHUNKS = 10
# Failures (not rejections) after which a submission is set aside instead of retried.
MAX_ATTEMPTS = 5
# Consent given on a form covers the channels of the keys the person left.
CONSENT_CHANNELS: dict[str, tuple[str, ...]] = {
    IdentityKind.EMAIL: ("email",),
    IdentityKind.PHONE: ("sms", "phone"),
}
TEXT_LIMIT = 2000

# --- Storing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmissionIn:
    """What the public endpoint hands over, already checked."""

    token: str
    data: dict[str, Any]
    consent: bool = False
    anonymous_id: str = ""
    page_url: str = ""
    referrer: str = ""
    utm: dict[str, str] = field(default_factory=dict)
    ip: str | None = None
    user_agent: str = ""
    landing_page_id: int | None = None
    share_link_id: int | None = None
    spam: bool = False


@dataclass(frozen=True)
class Stored:
    submission: FormSubmission
    created: bool  # False: the same page was submitted before; nothing was stored


def submission_store(*, form: Form, submission: SubmissionIn) -> Stored:
    """One INSERT. A second submit of the same page (same token) stores nothing and
    returns the first submission. Spam (the honeypot was filled) is stored as such, done."""
    now = timezone.now()
    row = FormSubmission(
        form=form,
        unit_id=form.unit_id,
        landing_page_id=submission.landing_page_id,
        share_link_id=submission.share_link_id,
        received_at=now,
        data=submission.data,
        consent=submission.consent,
        consent_version=form.consent_version if submission.consent else "",
        anonymous_id=submission.anonymous_id[:64],
        token=submission.token[:64],
        page_url=submission.page_url[:TEXT_LIMIT],
        referrer=submission.referrer[:TEXT_LIMIT],
        utm=submission.utm,
        ip=submission.ip,
        user_agent=submission.user_agent[:400],
        status=SubmissionStatus.SPAM if submission.spam else SubmissionStatus.PENDING,
        reason="honeypot" if submission.spam else "",
        processed_at=now if submission.spam else None,
    )
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:
        # The unique (form, token) constraint, not a check-then-insert: two racing submits
        # of one page cannot both get in.
        first = (
            FormSubmission.objects.dangerously_unscoped()
            .filter(form=form, token=submission.token[:64])
            .first()
        )
        if first is None:
            raise
        return Stored(first, created=False)
    return Stored(row, created=True)


# --- Processing -------------------------------------------------------------------------------


@dataclass
class _Context:
    """What a chunk of submissions needs, loaded once for the chunk."""

    forms: dict[int, Form]
    catalogues: dict[int, dict[str, CatalogueField]]
    pages: Mapping[int, Mapping[str, Any]]
    links: Mapping[int, int | None]
    touches: dict[int, TouchIds]  # submission id → resolved UTM/referrer touch


@dataclass(frozen=True)
class ProcessResult:
    processed: list[int]
    rejected: list[int]
    failed: list[int]  # stay pending (or were set aside after MAX_ATTEMPTS)
    claimed: list[int]


def _touch(submission: FormSubmission) -> Touch:
    utm = {k: str(v) for k, v in (submission.utm or {}).items() if isinstance(v, str)}
    return touch_of(url=submission.page_url, referrer=submission.referrer, utm=utm)


def _context(submissions: Sequence[FormSubmission]) -> _Context:
    forms = {
        f.pk: f
        for f in Form.objects.dangerously_unscoped()
        .select_related("unit")
        .filter(pk__in={s.form_id for s in submissions})
    }
    catalogues = {unit_id: field_catalogue(unit_id) for unit_id in {s.unit_id for s in submissions}}
    page_ids = {s.landing_page_id for s in submissions if s.landing_page_id}
    pages = {
        row["id"]: row
        for row in LandingPage.objects.dangerously_unscoped()
        .filter(pk__in=page_ids)
        .values("id", "channel_id", "campaign_id")
    }
    link_ids = {s.share_link_id for s in submissions if s.share_link_id}
    links = dict(
        ShareLink.objects.dangerously_unscoped()
        .filter(pk__in=link_ids)
        .values_list("id", "campaign_id")
    )
    touches: dict[int, TouchIds] = {}
    by_unit: dict[int, list[FormSubmission]] = {}
    for s in submissions:
        by_unit.setdefault(s.unit_id, []).append(s)
    for unit_id, rows in by_unit.items():
        wanted = {s.pk: _touch(s) for s in rows}
        resolved = touches_resolve(unit_id, list(set(wanted.values())))
        touches.update({pk: resolved[touch] for pk, touch in wanted.items()})
    return _Context(forms, catalogues, pages, links, touches)


def _channel_and_campaign(
    submission: FormSubmission, ctx: _Context
) -> tuple[int | None, int | None]:
    form = ctx.forms[submission.form_id]
    resolved = ctx.touches.get(submission.pk, TouchIds(None, None))
    utm = submission.utm or {}
    page = ctx.pages.get(submission.landing_page_id or 0, {})
    link_campaign = ctx.links.get(submission.share_link_id or 0)
    tagged_channel = resolved.channel_id if utm.get("source") else None
    inferred_channel = None if tagged_channel else resolved.channel_id
    channel = tagged_channel or page.get("channel_id") or form.channel_id or inferred_channel
    campaign = resolved.campaign_id or link_campaign or page.get("campaign_id") or form.campaign_id
    return channel, campaign


def _keys(data: dict[str, Any]) -> list[Key]:
    keys: list[Key] = []
    for kind in (IdentityKind.EMAIL, IdentityKind.PHONE):
        value = data.get(kind)
        if isinstance(value, str) and value:
            try:
                keys.append(make_key(kind, value))
            except InvalidKey:
                continue  # checked when submitted; a later rule change must not block it
    return keys


def _attributes(
    data: dict[str, Any], catalogue: dict[str, CatalogueField], channel_id: int | None
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        name: data[name] for name in ATTRIBUTE_FIELDS if isinstance(data.get(name), str)
    }
    custom: dict[str, Any] = {}
    for key, value in data.items():
        if not key.startswith(CUSTOM_PREFIX):
            continue
        spec = catalogue.get(key)
        if spec is None or spec.custom is None:
            continue  # the field was switched off since: the answer stays on the submission
        try:
            stored = clean_value(spec.custom, value)
        except FieldValueError:
            continue  # its options changed since; the answer stays on the submission
        if stored is not None:
            custom[spec.custom.storage_key] = stored
    if custom:
        attributes["custom"] = custom
    if channel_id:
        attributes["source_channel_id"] = channel_id
    return attributes


class _Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _contact(submission: FormSubmission, form: Form, attributes: dict[str, Any]) -> Contact:
    keys = _keys(submission.data or {})
    anonymous = token_or_none(submission.anonymous_id) or ""
    if anonymous and (form.progressive or not keys):
        # Progressive profiling: the browser's known contact is who answers (the page said
        # "welcome back — not you?"), so new keys join them; with no email or phone asked,
        # the anonymous id is the only key. A key that already belongs to somebody wins
        # and nothing is merged: a shared browser is weak evidence.
        group_id = form.unit.parent_id or form.unit.pk
        key = Key(IdentityKind.ANONYMOUS, "", anonymous)
        owners = identity_owners(group_id, [*keys, key])
        if key in owners and not any(k in owners for k in keys):
            keys = [*keys, key]
    if not keys:
        raise _Rejected(_("no email or phone to tell who this is"))
    try:
        result = contact_resolve(
            unit=form.unit,
            keys=keys,
            attributes=attributes,
            source=SOURCE,
            observed_at=submission.received_at,
            acting_user=FORMS,
        )
    except ErasedPerson:
        raise _Rejected(
            _("this person asked to be erased; their details are not taken in again")
        ) from None
    contact = result.contact
    if anonymous:
        anonymous_link(contact=contact, anonymous_id=anonymous, acting_user=FORMS)
    if submission.consent:
        _consent(submission, form, contact, keys)
    return contact


def _consent(submission: FormSubmission, form: Form, contact: Contact, keys: list[Key]) -> None:
    channels = [c for k in keys for c in CONSENT_CHANNELS.get(k.kind, ())]
    if not channels:
        return
    # A submission gives its consent once, even if it were processed again by hand.
    given = set(
        ConsentEvent.objects.dangerously_unscoped()
        .filter(contact=contact, source=SOURCE, proof__submission=submission.pk)
        .values_list("channel", flat=True)
    )
    proof = {
        "submission": submission.pk,
        "form": form.pk,
        "form_name": form.name,
        "ip": submission.ip,
        "user_agent": submission.user_agent,
        "page_url": submission.page_url[:500],
    }
    for channel in channels:
        if channel in given:
            continue
        consent_record(
            contact=contact,
            unit=form.unit,
            channel=channel,
            granted=True,
            source=SOURCE,
            wording_version=submission.consent_version,
            proof=proof,
            occurred_at=submission.received_at,
        )


def _activity(
    submission: FormSubmission,
    form: Form,
    contact_id: int,
    channel_id: int | None,
    campaign_id: int | None,
) -> ActivityIn:
    properties: dict[str, Any] = {
        "form": form.name,
        "submission": submission.pk,
        "fields": sorted(submission.data or {}),
    }
    if submission.page_url:
        properties["url"] = submission.page_url[:500]
    if submission.referrer:
        properties["referrer"] = submission.referrer[:500]
    if submission.utm:
        properties["utm"] = submission.utm
    if submission.landing_page_id:
        properties["landing_page"] = submission.landing_page_id
    if submission.share_link_id:
        properties["share_link"] = submission.share_link_id
    if submission.consent:
        properties["consent_version"] = submission.consent_version
    return ActivityIn(
        unit_id=submission.unit_id,
        type=ACTIVITY_TYPE,
        occurred_at=submission.received_at,
        contact_id=contact_id,
        anonymous_id=token_or_none(submission.anonymous_id) or "",
        channel_id=channel_id,
        campaign_id=campaign_id,
        object_type="form",
        object_id=str(submission.form_id),
        properties=properties,
        dedupe_key=f"form:{submission.pk}",
    )


def _process_claimed(submissions: list[FormSubmission]) -> ProcessResult:
    """Inside the caller's transaction: each submission in a savepoint of its own, then one
    activities INSERT, one touches UPDATE and one status UPDATE for the chunk."""
    ctx = _context(submissions)
    now = timezone.now()
    activities: list[ActivityIn] = []
    touches: list[TouchIn] = []
    lead_requests: list[LeadRequest] = []
    processed: list[int] = []
    rejected: list[int] = []
    failed: list[int] = []
    for submission in submissions:
        form = ctx.forms[submission.form_id]
        channel_id, campaign_id = _channel_and_campaign(submission, ctx)
        attributes = _attributes(
            submission.data or {}, ctx.catalogues[submission.unit_id], channel_id
        )
        try:
            with transaction.atomic():
                contact = _contact(submission, form, attributes)
        except _Rejected as exc:
            submission.status = SubmissionStatus.REJECTED
            submission.reason = exc.reason[:300]
            submission.processed_at = now
            rejected.append(submission.pk)
            continue
        except Exception as exc:  # one bad submission must not stop the chunk
            logger.exception("form submission %s failed; left for the next sweep", submission.pk)
            submission.attempts += 1
            failed.append(submission.pk)
            if submission.attempts >= MAX_ATTEMPTS:
                submission.status = SubmissionStatus.REJECTED
                submission.reason = (_("could not be processed: %(error)s") % {"error": exc})[:300]
                submission.processed_at = now
            continue
        submission.status = SubmissionStatus.PROCESSED
        submission.reason = ""
        submission.contact_id = contact.pk
        submission.processed_at = now
        processed.append(submission.pk)
        activities.append(_activity(submission, form, contact.pk, channel_id, campaign_id))
        touches.append(TouchIn(contact.pk, submission.received_at, channel_id, campaign_id))
        if form.opens_lead:
            lead_requests.append(
                LeadRequest(
                    unit_id=submission.unit_id,
                    contact_id=contact.pk,
                    temperature=form.opens_lead,
                    form_id=form.pk,
                    form_name=form.name,
                    submission_id=submission.pk,
                    channel_id=channel_id,
                    campaign_id=campaign_id,
                )
            )
    if activities:
        activities_record(activities)
        contact_touches_apply(touches)
    if lead_requests:
        for hook in submission_hooks():
            hook(lead_requests)
    FormSubmission.objects.dangerously_unscoped().bulk_update(
        submissions, ["status", "reason", "contact", "processed_at", "attempts"]
    )
    return ProcessResult(
        processed=processed,
        rejected=rejected,
        failed=failed,
        claimed=[s.pk for s in submissions],
    )


def _claim(
    *, ids: Sequence[int] | None = None, after_id: int = 0, limit: int = 0
) -> list[FormSubmission]:
    """Lock pending submissions no other worker holds (``FOR UPDATE SKIP LOCKED``)."""
    query = (
        FormSubmission.objects.dangerously_unscoped()
        .select_for_update(skip_locked=True, of=("self",))
        .filter(status=SubmissionStatus.PENDING)
        .order_by("id")
    )
    if ids is not None:
        query = query.filter(pk__in=list(ids))
    if after_id:
        query = query.filter(id__gt=after_id)
    return list(query[:limit] if limit else query)


def _chunk(*, ids: Sequence[int] | None = None, after_id: int = 0, limit: int = 0) -> ProcessResult:
    with transaction.atomic():
        return _process_claimed(_claim(ids=ids, after_id=after_id, limit=limit))


def submissions_process(ids: Sequence[int]) -> ProcessResult:
    """Process these submissions, those still pending and not held by another worker."""
    wanted = sorted(set(ids))
    results = [_chunk(ids=wanted[i : i + CHUNK]) for i in range(0, len(wanted), CHUNK)]
    return ProcessResult(
        processed=[pk for r in results for pk in r.processed],
        rejected=[pk for r in results for pk in r.rejected],
        failed=[pk for r in results for pk in r.failed],
        claimed=[pk for r in results for pk in r.claimed],
    )


@dataclass(frozen=True)
class SweepResult:
    processed: int
    rejected: int
    failed: int
    more: bool  # a full chunk was left when the sweep stopped


def submissions_sweep(*, chunk: int = CHUNK, max_chunks: int = SWEEP_MAX_CHUNKS) -> SweepResult:
    """Process pending submissions oldest first, chunk by chunk: beat's safety net for
    dispatches lost while the broker was down. A submission that fails is not retried
    within the same sweep."""
    processed = rejected = failed = 0
    after_id = 0
    for _round in range(max_chunks):
        result = _chunk(after_id=after_id, limit=chunk)
        if result.claimed:
            after_id = result.claimed[-1]
        processed += len(result.processed)
        rejected += len(result.rejected)
        failed += len(result.failed)
        if len(result.claimed) < chunk:
            return SweepResult(processed, rejected, failed, more=False)
    return SweepResult(processed, rejected, failed, more=True)
