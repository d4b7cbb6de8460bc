"""Data-subject rights: give a person everything we hold on them, or erase them.

Export (``contact_subject_export``) is complete: every unit's data on the person, not only
the requesting user's units, because the request is the person's and the group is one
controller. Who pulled an export is audited (``contact.subject_export``).

Erasure (``contact_erase``) is irreversible and decided as follows:

* every identity key gets a tombstone (``ErasedIdentity``: a hash of kind, scope and value,
  never the value), then the identities are deleted, so a later import, form or API call
  with the same phone or email raises ``ErasedPerson`` instead of bringing them back;
* name, job, company, region, custom fields and field history are blanked, on the contact
  and on every contact merged into it (those rows keep their fields for undo);
* tags and tag history are deleted; activities are deleted, including anonymous ones
  recorded under the person's visitor ids: erasure means erasure, and behaviour tied to an
  erased person is still about that person;
* consent events stay, with their proof (IP address, user agent, form id) removed: they
  show that a withdrawal was honoured without identifying anyone;
* merge records lose their field snapshots (they could restore the data), and the
  contact's audit rows lose the name and other personal values they quote;
* the contact row stays, blank, with status ``erased``, so counts and references hold.

What higher apps store about a contact (leads, notes) and files already produced
(exports) are outside this service.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.contacts.hooks import subject_erasers, subject_exporters
from apps.contacts.identity_keys import Key
from apps.contacts.models import (
    STANDARD_FIELDS,
    Activity,
    ConsentEvent,
    ConsentState,
    Contact,
    ContactMerge,
    ContactStatus,
    ContactTag,
    ContactUnit,
    CustomField,
    ErasedIdentity,
    Identity,
    IdentityKind,
    MergeMovedActivities,
    TagHistory,
)
from apps.contacts.services.resolution import contact_of, lock_keys, value_hash
from apps.core.audit_actions import register_action
from apps.core.models import AuditLog, BusinessUnit
from apps.core.services import Actor, audit_record

register_action("contact.subject_export", gettext_lazy("Personal data exported for the person"))
register_action("contact.erase", gettext_lazy("Contact erased at the person's request"))

# Activities fetched per round trip while streaming a subject export.
CHUNK_SIZE = 2000
ERASED = "[erased]"
# Keys whose values an audit row may quote about a person.
REDACTED_AUDIT_KEYS = frozenset(
    {*STANDARD_FIELDS, "custom", "email", "phone", "value", "values", "identities", "keys"}
)


class ErasureError(ValueError):
    pass


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# --- Export --------------------------------------------------------------------------------


def _custom(contact: Contact) -> list[dict[str, Any]]:
    values = contact.custom or {}
    ids = [int(k) for k in values if str(k).isdigit()]
    fields = {
        f.storage_key: f
        for f in CustomField.objects.dangerously_unscoped()
        .filter(pk__in=ids)
        .select_related("unit")
    }
    out = []
    for key, value in sorted(values.items()):
        field = fields.get(str(key))
        out.append(
            {
                "field_id": key,
                "key": field.key if field else None,
                "label": field.label if field else None,
                "unit": field.unit.name if field else None,
                "value": value,
            }
        )
    return out


def _anonymous_ids(contact_ids: list[int]) -> list[str]:
    return list(
        Identity.objects.dangerously_unscoped()
        .filter(contact_id__in=contact_ids, kind=IdentityKind.ANONYMOUS)
        .values_list("value", flat=True)
    )


def _group_unit_ids(group_id: int) -> list[int]:
    return list(
        BusinessUnit.objects.dangerously_unscoped()
        .filter(Q(pk=group_id) | Q(parent_id=group_id))
        .values_list("pk", flat=True)
    )


def _activities_q(contact_ids: list[int], group_id: int) -> Q:
    """The person's activities: theirs, and those recorded under their visitor ids before
    they were known (``contact`` empty)."""
    condition = Q(contact_id__in=contact_ids)
    anonymous = _anonymous_ids(contact_ids)
    if anonymous:
        condition |= Q(
            contact__isnull=True,
            anonymous_id__in=anonymous,
            unit_id__in=_group_unit_ids(group_id),
        )
    return condition


def _activities(contact: Contact) -> Iterator[dict[str, Any]]:
    rows = (
        Activity.objects.dangerously_unscoped()
        .filter(_activities_q([contact.pk], contact.group_id))
        .select_related("unit", "channel", "campaign")
        .order_by("occurred_at", "id")
    )
    for a in rows.iterator(chunk_size=CHUNK_SIZE):
        yield {
            "id": a.pk,
            "unit": a.unit.name,
            "type": a.type,
            "occurred_at": _iso(a.occurred_at),
            "channel": a.channel.name if a.channel else None,
            "campaign": a.campaign.name if a.campaign else None,
            "object_type": a.object_type,
            "object_id": a.object_id,
            "properties": a.properties,
            "anonymous_id": a.anonymous_id,
        }


def _merge_fields(fields: dict[str, Any] | None) -> dict[str, Any] | None:
    if not fields:
        return None
    return {k: fields.get(k) for k in (*STANDARD_FIELDS, "custom") if k in fields}


def _head(contact: Contact) -> dict[str, Any]:
    identities = Identity.objects.dangerously_unscoped().filter(contact=contact).order_by("id")
    units = (
        ContactUnit.objects.dangerously_unscoped()
        .filter(contact=contact)
        .select_related("unit")
        .order_by("id")
    )
    tags = (
        ContactTag.objects.dangerously_unscoped()
        .filter(contact=contact)
        .select_related("tag__unit")
        .order_by("id")
    )
    history = (
        TagHistory.objects.dangerously_unscoped()
        .filter(contact=contact)
        .select_related("tag__unit")
        .order_by("at", "id")
    )
    states = ConsentState.objects.filter(contact=contact).order_by("channel", "purpose")
    events = (
        ConsentEvent.objects.dangerously_unscoped()
        .filter(contact=contact)
        .select_related("unit")
        .order_by("occurred_at", "id")
    )
    merges = (
        ContactMerge.objects.dangerously_unscoped()
        .filter(Q(kept=contact) | Q(dropped=contact))
        .order_by("id")
    )
    return {
        "generated_at": _iso(timezone.now()),
        "contact": {
            "id": contact.pk,
            "status": contact.status,
            **{name: getattr(contact, name) for name in STANDARD_FIELDS},
            "source_channel": contact.source_channel.name if contact.source_channel else None,
            "first_seen_at": _iso(contact.first_seen_at),
            "last_seen_at": _iso(contact.last_seen_at),
            "created_at": _iso(contact.created_at),
            "pii_purged_at": _iso(contact.pii_purged_at),
        },
        "custom_fields": _custom(contact),
        "identities": [
            {
                "kind": i.kind,
                "scope": i.scope,
                "value": i.value,
                "source": i.source,
                "created_at": _iso(i.created_at),
            }
            for i in identities
        ],
        "units": [
            {"unit": u.unit.name, "first_seen_at": _iso(u.first_seen_at), "source": u.source}
            for u in units
        ],
        "tags": [
            {
                "tag": t.tag.name,
                "unit": t.tag.unit.name,
                "source": t.source,
                "added_by": t.added_by,
                "added_at": _iso(t.added_at),
            }
            for t in tags
        ],
        "tag_history": [
            {
                "tag": h.tag.name,
                "unit": h.tag.unit.name,
                "action": h.action,
                "source": h.source,
                "by": h.actor_label,
                "at": _iso(h.at),
            }
            for h in history
        ],
        "consent": [
            {
                "channel": s.channel,
                "purpose": s.purpose,
                "granted": s.granted,
                "since": _iso(s.since),
            }
            for s in states
        ],
        "consent_events": [
            {
                "unit": e.unit.name,
                "channel": e.channel,
                "purpose": e.purpose,
                "granted": e.granted,
                "basis": e.basis,
                "source": e.source,
                "wording_version": e.wording_version,
                "proof": e.proof,
                "occurred_at": _iso(e.occurred_at),
            }
            for e in events
        ],
        "merges": [
            {
                "kept": m.kept_id,
                "dropped": m.dropped_id,
                "reason": m.reason,
                "merged_at": _iso(m.created_at),
                "undone_at": _iso(m.undone_at),
                # The merged-away record's own details, kept so the merge can be undone.
                "dropped_fields": _merge_fields((m.snapshot or {}).get("dropped_fields")),
            }
            for m in merges
        ],
    }


def _holder(contact: Contact) -> Contact:
    """A merged-away contact's data lives on the contact it was merged into."""
    return contact_of(contact.pk) if contact.status == ContactStatus.MERGED else contact


def contact_subject_export(contact: Contact) -> dict[str, Any]:
    """Everything we hold on the person, as a JSON-serialisable dict."""
    contact = _holder(contact)
    data = _head_with_hooks(contact)
    data["activities"] = list(_activities(contact))
    return data


def _head_with_hooks(contact: Contact) -> dict[str, Any]:
    data = _head(contact)
    # What higher apps (leads, opportunities…) hold on the person.
    for name, exporter in subject_exporters().items():
        data[name] = exporter(contact.pk)
    return data


def contact_subject_export_stream(contact: Contact) -> Iterator[str]:
    """The same document as ``contact_subject_export``, as JSON text in pieces: the
    activities (which can be many) are read in chunks and never held all at once."""
    contact = _holder(contact)
    head = json.dumps(_head_with_hooks(contact), ensure_ascii=False, cls=DjangoJSONEncoder)
    yield head[:-1] + ', "activities": ['
    for n, activity in enumerate(_activities(contact)):
        yield ("," if n else "") + json.dumps(activity, ensure_ascii=False, cls=DjangoJSONEncoder)
    yield "]}"


@transaction.atomic
def contact_subject_export_record(*, contact: Contact, acting_user: Actor) -> None:
    """Audit that ``acting_user`` pulled the person's data (call before handing it out)."""
    audit_record(
        actor=acting_user,
        action="contact.subject_export",
        obj=contact,
        unit=contact.group_id,
        after={"contact": contact.pk},
    )


# --- Erasure -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasureResult:
    contact: Contact
    identities: int = 0
    activities: int = 0
    merged_contacts: int = 0
    already_erased: bool = False


def _keys_of(contact_id: int) -> set[Key]:
    return {
        Key(kind, scope, value)
        for kind, scope, value in Identity.objects.dangerously_unscoped()
        .filter(contact_id=contact_id)
        .values_list("kind", "scope", "value")
    }


def _lock_all_keys(contact: Contact) -> set[Key]:
    """Take the resolution lock on every key of the contact, until no new key appears.

    Identity resolution holds these locks while it adds keys and fields, so once we hold
    them no import or form is half-way through this person, and any that starts now waits
    and then meets the tombstones.
    """
    locked: set[Key] = set()
    while True:
        new = _keys_of(contact.pk) - locked
        if not new:
            return locked
        lock_keys(contact.group_id, new)
        locked |= new


def _merged_into(contact_id: int) -> list[int]:
    """Every contact merged (directly or through others) into ``contact_id``."""
    family: list[int] = []
    frontier = [contact_id]
    while frontier:
        frontier = list(
            Contact.objects.dangerously_unscoped()
            .filter(merged_into_id__in=frontier)
            .values_list("pk", flat=True)
        )
        family += frontier
    return family


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (ERASED if k in REDACTED_AUDIT_KEYS and v not in (None, "") else _redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def _scrub_audit(contact_ids: list[int]) -> None:
    rows = AuditLog.objects.dangerously_unscoped().filter(
        object_type=Contact._meta.label_lower, object_id__in=[str(i) for i in contact_ids]
    )
    for row in rows:
        row.object_repr = f"#{row.object_id}"
        row.before = _redact(row.before)
        row.after = _redact(row.after)
        row.save(update_fields=["object_repr", "before", "after"])


@transaction.atomic
def contact_erase(*, contact: Contact, acting_user: Actor) -> ErasureResult:
    """Erase the person behind ``contact`` (see the module docstring). Irreversible.

    Erasing an erased contact changes nothing; a merged-away contact is refused (erase the
    contact it was merged into, which holds the data).
    """
    keys = _lock_all_keys(contact)
    # Row lock after the key locks: the order identity resolution takes them in.
    contact = Contact.objects.dangerously_unscoped().select_for_update().get(pk=contact.pk)
    if contact.status == ContactStatus.ERASED:
        return ErasureResult(contact=contact, already_erased=True)
    if contact.status == ContactStatus.MERGED:
        raise ErasureError(
            _("This contact was merged into #%(id)s; erase that contact instead.")
            % {"id": contact.merged_into_id}
        )
    now = timezone.now()
    family = _merged_into(contact.pk)
    everyone = [contact.pk, *family]
    for eraser in subject_erasers().values():
        for pk in everyone:
            eraser(pk)

    ErasedIdentity.objects.bulk_create(
        [
            ErasedIdentity(
                group_id=contact.group_id,
                kind=k.kind,
                scope=k.scope,
                value_hash=value_hash(k),
                erased_at=now,
            )
            for k in sorted(keys)
        ],
        ignore_conflicts=True,
    )
    activities_q = _activities_q(everyone, contact.group_id)  # reads visitor ids: before delete
    _total, deleted = Activity.objects.dangerously_unscoped().filter(activities_q).delete()
    activities = deleted.get(Activity._meta.label, 0)
    _total, deleted = (
        Identity.objects.dangerously_unscoped().filter(contact_id__in=everyone).delete()
    )
    identities = deleted.get(Identity._meta.label, 0)
    ContactTag.objects.dangerously_unscoped().filter(contact_id__in=everyone).delete()
    TagHistory.objects.dangerously_unscoped().filter(contact_id__in=everyone).delete()
    ConsentEvent.objects.dangerously_unscoped().filter(contact_id__in=everyone).update(proof={})
    merges = ContactMerge.objects.dangerously_unscoped().filter(
        Q(kept_id__in=everyone) | Q(dropped_id__in=everyone)
    )
    MergeMovedActivities.objects.filter(merge__in=merges).delete()
    merges.update(snapshot={"erased_at": now.isoformat()})

    blank: dict[str, Any] = dict.fromkeys(STANDARD_FIELDS, "")
    Contact.objects.dangerously_unscoped().filter(pk__in=family).update(
        **blank, custom={}, field_sources={}, pii_purged_at=now, updated_at=now
    )
    for name in STANDARD_FIELDS:
        setattr(contact, name, "")
    contact.custom = {}
    contact.field_sources = {}
    contact.status = ContactStatus.ERASED
    contact.pii_purged_at = now
    contact.save()

    _scrub_audit(everyone)
    audit_record(
        actor=acting_user,
        action="contact.erase",
        obj=contact,
        unit=contact.group_id,
        after={
            "identities": identities,
            "activities": activities,
            "merged_contacts": len(family),
        },
    )
    return ErasureResult(
        contact=contact,
        identities=identities,
        activities=activities,
        merged_contacts=len(family),
    )
