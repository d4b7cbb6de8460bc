"""Contact writes made through the API (and any other caller that has attributes, custom
values, tags and consent for one person): create, upsert, update, tags, consent.

Each is keyword-only, transactional and audited. Input is validated by the caller (the API
serializers) before any of these run, so a rejected request stores nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy

from apps.contacts.identity_keys import Key
from apps.contacts.models import (
    STANDARD_FIELDS,
    ConsentEvent,
    Contact,
    Tag,
)
from apps.contacts.services.consent import consent_record
from apps.contacts.services.resolution import (
    ResolveResult,
    apply_attributes,
    contact_resolve,
    identity_owners,
    lock_keys,
)
from apps.contacts.services.tags import tags_add, tags_remove
from apps.core.audit_actions import register_action
from apps.core.models import BusinessUnit, User
from apps.core.services import Actor, audit_record

SOURCE = "api"

register_action("contact.create", gettext_lazy("Contact created"))
register_action("contact.upsert", gettext_lazy("Contact upserted"))
register_action("contact.update", gettext_lazy("Contact changed"))
register_action("contact.tags", gettext_lazy("Contact tags changed"))
register_action("contact.consent", gettext_lazy("Contact consent recorded"))


class ContactExists(Exception):
    def __init__(self, contact_id: int) -> None:
        super().__init__(contact_id)
        self.contact_id = contact_id


def _group_id(unit: BusinessUnit) -> int:
    return unit.parent_id or unit.pk


def _resolve_attributes(attributes: dict[str, Any], custom: dict[str, Any]) -> dict[str, Any]:
    """Serializer output -> what ``apply_attributes`` reads."""
    out = {name: attributes[name] for name in STANDARD_FIELDS if name in attributes}
    channel = attributes.get("source_channel")
    if channel is not None:
        out["source_channel_id"] = channel.pk
    if custom:
        out["custom"] = custom
    return out


@transaction.atomic
def contact_create(
    *,
    unit: BusinessUnit,
    keys: list[Key],
    attributes: dict[str, Any],
    custom: dict[str, Any],
    acting_user: Actor,
) -> Contact:
    """A new contact for ``keys``; ContactExists (and nothing written) when one is known."""
    group_id = _group_id(unit)
    # Held to the end of the transaction, so a concurrent create of the same key waits
    # and then finds this contact (contact_resolve takes the same locks again: re-entrant).
    lock_keys(group_id, keys)
    owners = identity_owners(group_id, keys)
    if owners:
        raise ContactExists(min(owners.values()))
    result = contact_resolve(
        unit=unit,
        keys=keys,
        attributes=_resolve_attributes(attributes, custom),
        source=SOURCE,
        acting_user=acting_user,
    )
    audit_record(
        actor=acting_user,
        action="contact.create",
        obj=result.contact,
        unit=unit,
        after={"identities": sorted({k.kind for k in keys}), "fields": sorted(attributes)},
    )
    return result.contact


@transaction.atomic
def contact_upsert(
    *,
    unit: BusinessUnit,
    keys: list[Key],
    attributes: dict[str, Any],
    custom: dict[str, Any],
    tags: list[Tag],
    consents: list[dict[str, Any]],
    observed_at: datetime | None,
    acting_user: Actor,
) -> ResolveResult:
    """Identity resolution plus tags and consent, all or nothing."""
    result = contact_resolve(
        unit=unit,
        keys=keys,
        attributes=_resolve_attributes(attributes, custom),
        source=SOURCE,
        observed_at=observed_at,
        acting_user=acting_user,
    )
    contact = result.contact
    if tags:
        tags_add(
            contact_ids=[contact.pk], tags=tags, source=SOURCE, actor_label=_label(acting_user)
        )
    for consent in consents:
        consent_record(contact=contact, unit=unit, source=SOURCE, **consent)
    audit_record(
        actor=acting_user,
        action="contact.upsert",
        obj=contact,
        unit=unit,
        after={
            "outcome": result.outcome,
            "merged_ids": result.merged_ids,
            "identities": sorted({k.kind for k in keys}),
            "fields": sorted(attributes),
            "tags": [t.pk for t in tags],
            "consent": [f"{c['channel']}:{'+' if c['granted'] else '-'}" for c in consents],
        },
    )
    return result


@transaction.atomic
def contact_update(
    *,
    contact: Contact,
    attributes: dict[str, Any],
    custom: dict[str, Any],
    custom_cleared: list[str],
    unit_id: int,
    acting_user: Actor,
) -> Contact:
    """Change what a person typed in: sent values win; an empty string clears a field.

    Identity resolution's rule (the newest non-empty value wins) is kept by stamping each
    field with now, so a later import with older data does not undo the edit.
    """
    contact = Contact.objects.dangerously_unscoped().select_for_update().get(pk=contact.pk)
    now = timezone.now()
    stamp = now.isoformat()
    incoming = _resolve_attributes(attributes, custom)
    incoming.pop("source_channel_id", None)  # set below: an edit may change or clear it
    changed = apply_attributes(contact, incoming, source=SOURCE, observed_at=now)
    sources = dict(contact.field_sources)
    for name in STANDARD_FIELDS:
        if name in attributes and not attributes[name].strip() and getattr(contact, name):
            setattr(contact, name, "")
            sources[name] = {"source": SOURCE, "at": stamp}
            changed.append(name)
    if custom_cleared:
        values = dict(contact.custom or {})
        for key in custom_cleared:
            if values.pop(key, None) is not None:
                sources[f"custom:{key}"] = {"source": SOURCE, "at": stamp}
                changed.append(f"custom:{key}")
        contact.custom = values
    if "source_channel" in attributes:
        channel = attributes["source_channel"]
        new_id = channel.pk if channel is not None else None
        if contact.source_channel_id != new_id:
            contact.source_channel_id = new_id
            changed.append("source_channel")
    contact.field_sources = sources
    if changed:
        fields = {"field_sources", "updated_at"}
        for name in changed:
            fields.add("custom" if name.startswith("custom:") else name)
        contact.save(update_fields=sorted(fields))
        # Names only: values are personal data, and the audit trail outlives a PII purge.
        audit_record(
            actor=acting_user,
            action="contact.update",
            obj=contact,
            unit=unit_id,
            after={"fields": sorted(set(changed))},
        )
    return contact


@transaction.atomic
def contact_tags_change(
    *, contact: Contact, add: list[Tag], remove: list[Tag], acting_user: Actor
) -> tuple[int, int]:
    """Put tags on and take tags off; returns how many were really added and removed."""
    label = _label(acting_user)
    added = tags_add(contact_ids=[contact.pk], tags=add, source=SOURCE, actor_label=label)
    removed = tags_remove(contact_ids=[contact.pk], tags=remove, source=SOURCE, actor_label=label)
    if added or removed:
        audit_record(
            actor=acting_user,
            action="contact.tags",
            obj=contact,
            unit=(add or remove)[0].unit_id,
            after={"added": [t.pk for t in add], "removed": [t.pk for t in remove]},
        )
    return added, removed


@transaction.atomic
def contact_consent_add(
    *, contact: Contact, unit: BusinessUnit, consent: dict[str, Any], acting_user: Actor
) -> ConsentEvent:
    event = consent_record(contact=contact, unit=unit, source=SOURCE, **consent)
    audit_record(
        actor=acting_user,
        action="contact.consent",
        obj=contact,
        unit=unit,
        after={
            "channel": event.channel,
            "purpose": event.purpose,
            "granted": event.granted,
            "basis": event.basis,
        },
    )
    return event


def _label(actor: Actor) -> str:
    return actor.get_username() if isinstance(actor, User) else str(actor)


# --- Errors -------------------------------------------------------------------------------------
