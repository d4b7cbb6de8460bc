"""Identity resolution: find or create the one contact behind a set of keys.

Every entry point (API, forms, imports, the collector) calls ``contact_resolve`` (one
person) or ``contacts_resolve_batch`` (many, set-based). Keys are normalised first
(``identity_keys``). When the keys point at two or more contacts, they are merged into the
oldest one (``merge.contact_merge``).

Concurrency: before looking keys up, the transaction takes a PostgreSQL advisory lock per
key, in sorted order (no deadlocks). Two requests with the same new phone therefore run one
after the other, and the second finds the contact the first created.

Field conflicts: the newest non-empty value wins, per field. Each field remembers when and
from which source it was last set (``Contact.field_sources``); an incoming value replaces it
when the field is empty or the incoming observation is at least as new. Empty incoming
values never erase anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.contacts.identity_keys import Key
from apps.contacts.models import (
    STANDARD_FIELDS,
    Contact,
    ContactUnit,
    ErasedIdentity,
    Identity,
    IdentityKind,
)
from apps.core.models import BusinessUnit
from apps.core.services import Actor

Outcome = Literal["created", "matched", "merged"]


class ErasedPerson(ValueError):
    """A key belongs to someone who asked to be erased; we must not take them back in."""


@dataclass
class ResolveResult:
    contact: Contact
    outcome: Outcome
    merged_ids: list[int] = field(default_factory=list)


def value_hash(key: Key) -> str:
    return hashlib.sha256(key.lock_name.encode()).hexdigest()


def lock_keys(group_id: int, keys: Iterable[Key]) -> None:
    """Serialise work on these keys until the transaction ends (sorted: no deadlocks)."""
    names = sorted({f"{group_id}|{k.lock_name}" for k in keys})
    if not names:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(n, 0)) "
            "FROM unnest(%s::text[]) AS n ORDER BY n",
            [names],
        )


def erased_keys(group_id: int, keys: Sequence[Key]) -> set[Key]:
    if not keys:
        return set()
    by_hash = {value_hash(k): k for k in keys}
    found = ErasedIdentity.objects.dangerously_unscoped().filter(
        group_id=group_id, value_hash__in=list(by_hash)
    )
    return {by_hash[h] for h in found.values_list("value_hash", flat=True)}


def _key_filter(keys: Sequence[Key]) -> Q:
    condition = Q(pk__in=[])
    for k in keys:
        condition |= Q(kind=k.kind, scope=k.scope, value=k.value)
    return condition


def identity_owners(group_id: int, keys: Sequence[Key]) -> dict[Key, int]:
    """key -> contact id, for the keys that already belong to someone."""
    if not keys:
        return {}
    rows = (
        Identity.objects.dangerously_unscoped()
        .filter(group_id=group_id)
        .filter(_key_filter(keys))
        .values_list("kind", "scope", "value", "contact_id")
    )
    return {Key(kind, scope, value): contact_id for kind, scope, value, contact_id in rows}


def anonymous_owner(group_id: int, anonymous_id: str) -> int | None:
    """The contact a visitor's anonymous id belongs to in the group, if anyone."""
    if not anonymous_id:
        return None
    key = Key(IdentityKind.ANONYMOUS, "", anonymous_id)
    return identity_owners(group_id, [key]).get(key)


def apply_attributes(
    contact: Contact, attributes: dict[str, Any], *, source: str, observed_at: datetime
) -> list[str]:
    """Newest non-empty value wins, per field. Returns the names of fields changed."""
    changed: list[str] = []
    stamp = observed_at.isoformat()
    sources = dict(contact.field_sources or {})
    for name in STANDARD_FIELDS:
        value = attributes.get(name)
        if value is None or str(value).strip() == "":
            continue
        value = str(value).strip()
        known = sources.get(name)
        if getattr(contact, name) and known and known.get("at", "") > stamp:
            continue  # what we hold is newer
        if getattr(contact, name) != value:
            setattr(contact, name, value)
            changed.append(name)
        sources[name] = {"source": source, "at": stamp}
    custom = dict(contact.custom or {})
    for key, value in (attributes.get("custom") or {}).items():
        if value in (None, "", []):
            continue
        marker = f"custom:{key}"
        known = sources.get(marker)
        if key in custom and known and known.get("at", "") > stamp:
            continue
        if custom.get(key) != value:
            custom[key] = value
            changed.append(marker)
        sources[marker] = {"source": source, "at": stamp}
    if custom != (contact.custom or {}):
        contact.custom = custom
    if attributes.get("source_channel_id") and not contact.source_channel_id:
        contact.source_channel_id = attributes["source_channel_id"]
        changed.append("source_channel")
    contact.field_sources = sources
    return changed


def _add_identities(contact: Contact, keys: Sequence[Key], source: str) -> None:
    Identity.objects.bulk_create(
        [
            Identity(
                group_id=contact.group_id,
                contact=contact,
                kind=k.kind,
                scope=k.scope,
                value=k.value,
                source=source,
            )
            for k in keys
        ],
        ignore_conflicts=True,
    )


def contact_unit_ensure(contact_ids: Iterable[int], unit_id: int, source: str) -> None:
    ContactUnit.objects.bulk_create(
        [ContactUnit(contact_id=c, unit_id=unit_id, source=source) for c in set(contact_ids)],
        ignore_conflicts=True,
    )


@transaction.atomic
def contact_resolve(
    *,
    unit: BusinessUnit,
    keys: Sequence[Key],
    attributes: dict[str, Any] | None = None,
    source: str,
    observed_at: datetime | None = None,
    acting_user: Actor,
) -> ResolveResult:
    """Find or create the contact these keys belong to, merging when they disagree."""
    from apps.contacts.services.merge import contact_merge

    if not keys:
        raise ValueError("identity resolution needs at least one key")
    group_id = unit.parent_id or unit.pk
    observed_at = observed_at or timezone.now()
    lock_keys(group_id, keys)
    if erased_keys(group_id, keys):
        raise ErasedPerson("this person asked to be erased; their details cannot be added again")
    owners = identity_owners(group_id, keys)
    contact_ids = sorted(set(owners.values()))
    merged: list[int] = []
    if not contact_ids:
        contact = Contact(group_id=group_id, first_seen_at=observed_at, last_seen_at=observed_at)
        apply_attributes(contact, attributes or {}, source=source, observed_at=observed_at)
        contact.save()
        outcome: Outcome = "created"
    else:
        kept_id = contact_ids[0]  # the oldest contact survives
        for dropped_id in contact_ids[1:]:
            contact_merge(
                kept=Contact.objects.dangerously_unscoped().get(pk=kept_id),
                dropped=Contact.objects.dangerously_unscoped().get(pk=dropped_id),
                reason=f"{source}: shared identifiers",
                acting_user=acting_user,
            )
            merged.append(dropped_id)
        contact = Contact.objects.dangerously_unscoped().select_for_update().get(pk=kept_id)
        apply_attributes(contact, attributes or {}, source=source, observed_at=observed_at)
        contact.last_seen_at = max(contact.last_seen_at, observed_at)
        contact.save()
        outcome = "merged" if merged else "matched"
    new_keys = [k for k in keys if k not in owners]
    _add_identities(contact, new_keys, source)
    contact_unit_ensure([contact.pk], unit.pk, source)
    return ResolveResult(contact=contact, outcome=outcome, merged_ids=merged)


def contact_of(pk: int) -> Contact:
    """Follow merges to the contact that holds ``pk`` now."""
    contact = Contact.objects.dangerously_unscoped().get(pk=pk)
    seen = {contact.pk}
    while contact.merged_into_id is not None and contact.merged_into_id not in seen:
        contact = Contact.objects.dangerously_unscoped().get(pk=contact.merged_into_id)
        seen.add(contact.pk)
    return contact
