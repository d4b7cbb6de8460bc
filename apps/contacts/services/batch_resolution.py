"""Identity resolution for many rows at once: the set-based twin of
``resolution.contact_resolve``, for imports and other bulk producers.

Same rules, same locks, a fixed number of statements per batch whatever its size:

1. one advisory lock per key, all in one statement, sorted (``resolution.lock_keys``, so
   a form submitted meanwhile for the same phone waits for us, and we for it);
2. one query for erased people's tombstones: their rows are refused, not taken back;
3. one query for the contacts that already own any of the keys;
4. rows that share a key (within the batch) are one person;
5. new people: ids from the sequence in one query, then one ``INSERT … SELECT``; known
   people: one ``SELECT … FOR UPDATE``, the newest-non-empty-wins rule applied in Python
   (``resolution.apply_attributes``, the very same function), then one ``UPDATE … FROM``;
6. one ``INSERT … ON CONFLICT DO NOTHING`` for the new identities and one for the units
   that now know the people.

A person whose keys already belong to two different contacts needs a merge; that is rare
and goes through ``contact_resolve`` (which merges, audited and undoable), one at a time.

The caller keeps batches small enough for PostgreSQL's lock table: every key is one
advisory lock held to the end of the transaction, and the shared table has
``max_locks_per_transaction × max_connections`` slots (6 400 by default).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from django.db import connection, transaction
from django.utils import timezone

from apps.contacts.identity_keys import Key
from apps.contacts.models import Contact, ContactStatus, ContactUnit, ErasedIdentity, Identity
from apps.contacts.services.resolution import (
    Outcome,
    apply_attributes,
    contact_resolve,
    lock_keys,
    value_hash,
)
from apps.core.models import BusinessUnit
from apps.core.services import Actor

_TEXT_FIELDS = ("name", "title", "department", "company_name", "province", "city", "industry")


def _json(values: Sequence[Any]) -> str:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def _rows_from(columns: dict[str, str], alias: str = "v", *, ordinality: bool = False) -> str:
    """A ``ROWS FROM`` clause zipping JSON arrays into columns ``<alias>.<name>``.

    Big arrays travel as one JSON document per column rather than as SQL arrays: the
    driver quotes every element of a SQL array in Python (about 1 µs each, 10 µs a row),
    while ``json.dumps`` is C and PostgreSQL unpacks JSON fast. A column's kind is
    ``text`` (elements as text, null as NULL) or ``json`` (elements as JSON values).
    ``ordinality`` adds ``position``, counting from 1.
    """
    calls = ", ".join(
        "json_array_elements(%s::json)" if kind == "json" else "json_array_elements_text(%s::json)"
        for kind in columns.values()
    )
    names = ", ".join([*columns, "position"] if ordinality else columns)
    return f"ROWS FROM ({calls}){' WITH ORDINALITY' if ordinality else ''} AS {alias}({names})"


class _NewContact:
    """What ``apply_attributes`` reads and writes on a contact, without the cost of a model
    instance (tens of µs each, which a million-row import feels)."""

    def __init__(self, seen: datetime) -> None:
        for name in _TEXT_FIELDS:
            setattr(self, name, "")
        self.custom: dict[str, Any] = {}
        self.field_sources: dict[str, Any] = {}
        self.source_channel_id: int | None = None
        self.last_seen_at = seen


@dataclass(slots=True)  # not frozen: a frozen dataclass costs ~8 µs to build, per row
class BatchRow:
    keys: Sequence[Key]
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchResult:
    # Per input row: the contact it landed on, and how; None where the row was refused.
    contact_ids: list[int | None]
    outcomes: list[Outcome | None]
    # Indexes of rows refused because a key belongs to someone who asked to be erased.
    erased_rows: list[int] = field(default_factory=list)
    created: int = 0
    matched: int = 0
    merged: int = 0


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _people(rows: Sequence[BatchRow], live: list[int]) -> list[list[int]]:
    """Live row indexes grouped into people: rows sharing a key are one person."""
    parent = list(range(len(rows)))
    first_row: dict[Key, int] = {}
    for i in live:
        for key in rows[i].keys:
            j = first_row.setdefault(key, i)
            if j != i:
                parent[_find(parent, i)] = _find(parent, j)
    groups: dict[int, list[int]] = {}
    for i in live:
        groups.setdefault(_find(parent, i), []).append(i)
    return list(groups.values())


def _lookup(group_id: int, keys: Sequence[Key]) -> tuple[set[Key], dict[Key, int]]:
    """In one query: which keys belong to erased people (their tombstones), and which
    contact already holds each of the others (an indexed join on the identity key)."""
    by_hash = {value_hash(k): k for k in keys}
    identities, tombstones = Identity._meta.db_table, ErasedIdentity._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT i.kind, i.scope, i.value, i.contact_id
            FROM {identities} AS i
            JOIN {_rows_from({"kind": "text", "scope": "text", "value": "text"})}
              ON i.kind = v.kind AND i.scope = v.scope AND i.value = v.value
            WHERE i.group_id = %s
            UNION ALL
            SELECT NULL, NULL, e.value_hash, NULL
            FROM {tombstones} AS e
            WHERE e.group_id = %s
              AND e.value_hash IN (SELECT json_array_elements_text(%s::json))
            """,  # noqa: S608 - table names from model metadata
            [
                _json([k.kind for k in keys]),
                _json([k.scope for k in keys]),
                _json([k.value for k in keys]),
                group_id,
                group_id,
                _json(list(by_hash)),
            ],
        )
        erased: set[Key] = set()
        owners: dict[Key, int] = {}
        for kind, scope, value, contact_id in cursor.fetchall():
            if kind is None:
                erased.add(by_hash[value])
            else:
                owners[Key(kind, scope, value)] = contact_id
    return erased, {k: cid for k, cid in owners.items() if k not in erased}


_CONTACT_COLUMNS = {
    **dict.fromkeys(_TEXT_FIELDS, "text"),
    "source_channel_id": "text",
    "custom": "json",
    "field_sources": "json",
    "seen": "text",
}


_KEY_COLUMNS = {
    "ord": "text",
    "contact_id": "text",
    "kind": "text",
    "scope": "text",
    "value": "text",
}


def _contact_params(contacts: Sequence[Any]) -> list[str]:
    return [
        *(_json([getattr(c, name) for c in contacts]) for name in _TEXT_FIELDS),
        _json([c.source_channel_id for c in contacts]),
        _json([c.custom or {} for c in contacts]),
        _json([c.field_sources or {} for c in contacts]),
        _json([c.last_seen_at.isoformat() for c in contacts]),
    ]


def _write(
    *,
    group_id: int,
    unit_id: int,
    source: str,
    now: datetime,
    new: Sequence[_NewContact],
    new_keys: Sequence[tuple[int, Key]],
    known_keys: Sequence[tuple[int, Key]],
    known_ids: Sequence[int],
) -> list[int]:
    """One statement: insert the new contacts (ids from the sequence, returned in order),
    every new key (for a new contact by its position in ``new``, for a known one by id),
    and the unit's link to all of them. Returns the new contacts' ids."""
    contacts = Contact._meta.db_table
    identities = Identity._meta.db_table
    units = ContactUnit._meta.db_table
    names = ", ".join(_TEXT_FIELDS)
    values = ", ".join(f"n.{name}" for name in _TEXT_FIELDS)
    keys = [*((i, None, k) for i, k in new_keys), *((None, cid, k) for cid, k in known_keys)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH new AS MATERIALIZED (
                SELECT (v.position - 1)::integer AS ord,
                       nextval(pg_get_serial_sequence(%s, 'id')) AS id, v.*
                FROM {_rows_from(_CONTACT_COLUMNS, ordinality=True)}
            ), contacts AS (
                INSERT INTO {contacts} (id, group_id, status, {names}, source_channel_id,
                    custom, field_sources, first_seen_at, last_seen_at, created_at, updated_at)
                SELECT n.id, %s, %s, {values}, n.source_channel_id::bigint, n.custom::jsonb,
                       n.field_sources::jsonb, n.seen::timestamptz, n.seen::timestamptz, %s, %s
                FROM new AS n
            ), identities AS (
                INSERT INTO {identities} (group_id, contact_id, kind, scope, value, source,
                                          created_at)
                SELECT %s, COALESCE(k.contact_id::bigint, n.id), k.kind, k.scope, k.value, %s, %s
                FROM {_rows_from(_KEY_COLUMNS, "k")}
                LEFT JOIN new AS n ON n.ord = k.ord::integer
                ON CONFLICT (group_id, kind, scope, value) DO NOTHING
            ), units AS (
                INSERT INTO {units} (contact_id, unit_id, first_seen_at, source)
                SELECT c, %s, %s, %s
                FROM (SELECT id FROM new UNION ALL SELECT unnest(%s::bigint[])) AS x(c)
                ON CONFLICT (contact_id, unit_id) DO NOTHING
            )
            SELECT id FROM new ORDER BY ord
            """,  # noqa: S608 - table and column names are ours
            [
                contacts,
                *_contact_params(new),
                group_id,
                ContactStatus.ACTIVE,
                now,
                now,
                group_id,
                source,
                now,
                _json([ord_ for ord_, _cid, _k in keys]),
                _json([cid for _ord, cid, _k in keys]),
                _json([k.kind for _ord, _cid, k in keys]),
                _json([k.scope for _ord, _cid, k in keys]),
                _json([k.value for _ord, _cid, k in keys]),
                unit_id,
                now,
                source,
                list(known_ids),
            ],
        )
        return [row[0] for row in cursor.fetchall()]


def _update_contacts(contacts: Sequence[Contact], now: datetime) -> None:
    table = Contact._meta.db_table
    sets = ", ".join(f"{n} = v.{n}" for n in _TEXT_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} AS c
            SET {sets}, source_channel_id = v.source_channel_id::bigint,
                custom = v.custom::jsonb, field_sources = v.field_sources::jsonb,
                last_seen_at = GREATEST(c.last_seen_at, v.seen::timestamptz), updated_at = %s
            FROM {_rows_from({"id": "text", **_CONTACT_COLUMNS})}
            WHERE c.id = v.id::bigint
            """,  # noqa: S608 - table and column names are ours
            [now, _json([c.pk for c in contacts]), *_contact_params(contacts)],
        )


# No savepoint of its own: callers run a batch in their transaction, all or nothing.
@transaction.atomic(savepoint=False)
def contacts_resolve_batch(
    *,
    unit: BusinessUnit,
    rows: Sequence[BatchRow],
    source: str,
    observed_at: datetime | None = None,
    acting_user: Actor,
) -> BatchResult:
    """Find or create the contact behind each row, set-based (see the module docstring).

    Rows are applied in order, so where two rows describe one person the later row's
    non-empty values win. Every row needs at least one key.
    """
    if any(not r.keys for r in rows):
        raise ValueError("identity resolution needs at least one key per row")
    result = BatchResult(contact_ids=[None] * len(rows), outcomes=[None] * len(rows))
    if not rows:
        return result
    group_id = unit.parent_id or unit.pk
    observed_at = observed_at or timezone.now()
    now = timezone.now()
    all_keys = list({k for r in rows for k in r.keys})
    lock_keys(group_id, all_keys)
    erased, owners = _lookup(group_id, all_keys)
    live = [i for i, r in enumerate(rows) if not erased.intersection(r.keys)]
    result.erased_rows = [i for i, r in enumerate(rows) if erased.intersection(r.keys)]

    new: list[list[int]] = []
    known: dict[int, list[int]] = {}
    to_merge: list[list[int]] = []
    for person in _people(rows, live):
        held = {owners[k] for i in person for k in rows[i].keys if k in owners}
        if not held:
            new.append(person)
        elif len(held) == 1:
            known.setdefault(held.pop(), []).extend(person)
        else:
            to_merge.append(person)

    known_keys: dict[Key, int] = {}
    if known:
        locked = (
            Contact.objects.dangerously_unscoped()
            .select_for_update()
            .filter(pk__in=sorted(known))
            .order_by("pk")
        )
        contacts = list(locked)
        for held_contact in contacts:
            for i in sorted(known[held_contact.pk]):
                apply_attributes(
                    held_contact, rows[i].attributes, source=source, observed_at=observed_at
                )
                result.contact_ids[i], result.outcomes[i] = held_contact.pk, "matched"
                for k in rows[i].keys:
                    if k not in owners:
                        known_keys.setdefault(k, held_contact.pk)
            held_contact.last_seen_at = max(held_contact.last_seen_at, observed_at)
        _update_contacts(contacts, now)
        result.matched = len(contacts)

    created: list[_NewContact] = []
    new_keys: dict[Key, int] = {}
    for position, person in enumerate(new):
        contact = _NewContact(observed_at)
        for i in person:
            apply_attributes(
                cast(Contact, contact), rows[i].attributes, source=source, observed_at=observed_at
            )
            for k in rows[i].keys:
                new_keys.setdefault(k, position)
        created.append(contact)
    if created or known_keys or known:
        ids = _write(
            group_id=group_id,
            unit_id=unit.pk,
            source=source,
            now=now,
            new=created,
            new_keys=[(position, k) for k, position in new_keys.items()],
            known_keys=[(cid, k) for k, cid in known_keys.items()],
            known_ids=sorted(known),
        )
        for person, pk in zip(new, ids, strict=True):
            for i in person:
                result.contact_ids[i], result.outcomes[i] = pk, "created"
        result.created = len(new)

    for person in to_merge:  # rare: the keys already belong to two or more contacts
        keys = list(dict.fromkeys(k for i in person for k in rows[i].keys))
        attributes: dict[str, Any] = {}
        for i in person:
            attributes.update(
                {
                    k: v
                    for k, v in rows[i].attributes.items()
                    if k != "custom" and v not in ("", None)
                }
            )
            attributes.setdefault("custom", {}).update(rows[i].attributes.get("custom") or {})
        resolved = contact_resolve(
            unit=unit,
            keys=keys,
            attributes=attributes,
            source=source,
            observed_at=observed_at,
            acting_user=acting_user,
        )
        for i in person:
            result.contact_ids[i], result.outcomes[i] = resolved.contact.pk, resolved.outcome
        result.merged += 1
    return result
