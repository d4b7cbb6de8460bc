"""PII retention (seed 004): purge name, phone and email some days after a person was last
seen, while pseudonymous ids and behaviour stay so nurturing by WeChat continues.

Which contacts are purged. A contact is group-level and may be known to several units,
each with its own policy (``RetentionPolicy.purge_pii_after_days``; empty = keep). A
contact is purged when

* it is active and still holds PII (a name, a phone or an email);
* every unit that knows it has a policy, and it was last seen longer ago than the
  *longest* of those periods: no unit loses data earlier than its own policy allows, and
  a unit without a policy keeps what it knows;
* it has no consent to keep: a current *granted* consent (any channel) whose basis is
  explicit consent or a customer contract. A business contact held on legitimate
  interest alone, e.g. a trade-show badge scan, is exactly what the policy purges;
* no retention guard protects it (``hooks.register_retention_guard``; sales protects
  contacts with an open lead).

What a purge removes: the name (on the contact and on contacts merged into it, and in the
merge records that could restore it) and the phone and email identities. Title, company,
department and region are business data about the role, not the person, and stay, as do
openid, unionid, WeCom, Douyin, CRM and anonymous ids, tags, custom fields, consent and
activities. ``pii_purged_at`` records when. It is audited per unit and reversible only
from a backup.

Set-based: each batch of BATCH_SIZE contacts is one SELECT … FOR UPDATE SKIP LOCKED (a
contact being updated right now is simply skipped until the next run, since it is being
seen anyway), the guards, one UPDATE and one DELETE, in one transaction.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.contacts.hooks import retention_guards
from apps.contacts.models import (
    ConsentBasis,
    ConsentEvent,
    ConsentState,
    Contact,
    ContactMerge,
    ContactStatus,
    ContactUnit,
    Identity,
    IdentityKind,
    RetentionPolicy,
)
from apps.core.audit_actions import register_action
from apps.core.models import BusinessUnit
from apps.core.services import Actor, SystemActor, audit_record

register_action("contact.pii_purge", gettext_lazy("Personal data purged (retention)"))
register_action("retention_policy.set", gettext_lazy("PII retention policy changed"))

# Contacts per transaction: bounds the guards' input, the row locks held and the UPDATE
# and DELETE statements' id arrays, while a million contacts is still only 1000 batches.
BATCH_SIZE = 1000
PURGED_KINDS = (IdentityKind.PHONE, IdentityKind.EMAIL)
# Consent that is a reason to keep the person's details.
KEEPING_BASES = (ConsentBasis.CONSENT, ConsentBasis.CONTRACT)
SYSTEM = SystemActor("pii-retention")


@dataclass
class PurgeResult:
    purged: int = 0
    guarded: int = 0
    by_unit: Counter[int] = field(default_factory=Counter)
    # Where the next run continues (None: done).
    next_after_id: int | None = None


def _candidates_sql() -> str:
    contacts = Contact._meta.db_table
    units = ContactUnit._meta.db_table
    policies = RetentionPolicy._meta.db_table
    identities = Identity._meta.db_table
    states = ConsentState._meta.db_table
    events = ConsentEvent._meta.db_table
    return f"""
        SELECT c.id FROM {contacts} c
        WHERE c.id > %(after)s
          AND c.status = %(active)s
          AND (c.name <> '' OR EXISTS (
                SELECT 1 FROM {identities} i
                WHERE i.contact_id = c.id AND i.kind = ANY(%(kinds)s)))
          -- known to at least one unit, and every unit that knows them has a policy …
          AND EXISTS (SELECT 1 FROM {units} cu WHERE cu.contact_id = c.id)
          AND NOT EXISTS (
                SELECT 1 FROM {units} cu
                LEFT JOIN {policies} p ON p.unit_id = cu.unit_id
                WHERE cu.contact_id = c.id AND p.purge_pii_after_days IS NULL)
          -- … and they were last seen before the longest of those periods ended
          AND c.last_seen_at < %(now)s - make_interval(days => (
                SELECT max(p.purge_pii_after_days)::int FROM {units} cu
                JOIN {policies} p ON p.unit_id = cu.unit_id
                WHERE cu.contact_id = c.id))
          -- no consent to keep: granted now, given explicitly or under a contract
          AND NOT EXISTS (
                SELECT 1 FROM {states} s
                JOIN {events} e ON e.contact_id = s.contact_id AND e.channel = s.channel
                  AND e.purpose = s.purpose AND e.occurred_at = s.since AND e.granted
                WHERE s.contact_id = c.id AND s.granted AND e.basis = ANY(%(bases)s))
        ORDER BY c.id
        LIMIT %(limit)s
        FOR UPDATE OF c SKIP LOCKED
    """  # noqa: S608 - table names come from model metadata, values are parameters


def _purge(ids: list[int], now: datetime) -> None:
    contacts = Contact._meta.db_table
    identities = Identity._meta.db_table
    merges = ContactMerge._meta.db_table
    with connection.cursor() as cursor:
        # The contacts, and whoever was merged into them (their rows keep the old name).
        cursor.execute(
            f"""
            WITH RECURSIVE family(id) AS (
                SELECT unnest(%s::bigint[])
                UNION SELECT c.id FROM {contacts} c JOIN family f ON c.merged_into_id = f.id
            )
            UPDATE {contacts} SET name = '', pii_purged_at = %s, updated_at = %s
            WHERE id IN (SELECT id FROM family)
            RETURNING id
            """,  # noqa: S608
            [ids, now, now],
        )
        family = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"DELETE FROM {identities} WHERE contact_id = ANY(%s) AND kind = ANY(%s)",  # noqa: S608
            [ids, list(PURGED_KINDS)],
        )
        # A merge record holds both contacts' fields so it can be undone; blank the names
        # there too, or an undo would bring them back.
        cursor.execute(
            f"""
            UPDATE {merges} SET snapshot = jsonb_set(jsonb_set(jsonb_set(snapshot,
                '{{kept_fields,name}}', '""', false),
                '{{dropped_fields,name}}', '""', false),
                '{{merged_fields,name}}', '""', false)
            WHERE kept_id = ANY(%s) OR dropped_id = ANY(%s)
            """,  # noqa: S608
            [family, family],
        )


def _units_of(ids: list[int]) -> Counter[int]:
    rows = (
        ContactUnit.objects.dangerously_unscoped()
        .filter(contact_id__in=ids)
        .values_list("unit_id", flat=True)
    )
    return Counter(rows)


def _audit(by_unit: Counter[int], now: datetime, acting_user: Actor) -> None:
    days = dict(
        RetentionPolicy.objects.dangerously_unscoped()
        .filter(unit_id__in=list(by_unit))
        .values_list("unit_id", "purge_pii_after_days")
    )
    for unit_id, count in sorted(by_unit.items()):
        audit_record(
            actor=acting_user,
            action="contact.pii_purge",
            unit=unit_id,
            after={
                "contacts": count,
                "purge_pii_after_days": days.get(unit_id),
                "run_at": now.isoformat(),
            },
        )


@transaction.atomic
def _batch(after_id: int, now: datetime, result: PurgeResult, acting_user: Actor) -> int | None:
    """Purge one batch after ``after_id``; the last id looked at, or None when done.

    The audit rows go in the batch's own transaction, so every committed purge is
    audited (a nightly run is normally a single batch, so a single row per unit).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _candidates_sql(),
            {
                "after": after_id,
                "active": ContactStatus.ACTIVE,
                "now": now,
                "kinds": list(PURGED_KINDS),
                "bases": list(KEEPING_BASES),
                "limit": BATCH_SIZE,
            },
        )
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return None
    protected: set[int] = set()
    for guard in retention_guards():
        protected |= set(guard(list(ids))) & set(ids)
    purge = [i for i in ids if i not in protected]
    if purge:
        _purge(purge, now)
        by_unit = _units_of(purge)
        _audit(by_unit, now, acting_user)
        result.by_unit.update(by_unit)
    result.purged += len(purge)
    result.guarded += len(protected)
    # A short batch was the last one (rows locked elsewhere wait for the next run).
    return ids[-1] if len(ids) == BATCH_SIZE else None


def contacts_pii_purge(
    *,
    now: datetime | None = None,
    after_id: int = 0,
    max_batches: int | None = None,
    acting_user: Actor = SYSTEM,
) -> PurgeResult:
    """Purge PII of every contact the policies say is due (see the module docstring).

    Runs ``max_batches`` batches at most (None: until done) and reports where to go on in
    ``next_after_id``, so a task can chain itself rather than run for hours. Each batch
    writes one ``contact.pii_purge`` audit row per unit that had contacts purged.
    """
    now = now or timezone.now()
    result = PurgeResult()
    cursor_id: int | None = after_id
    batches = 0
    while cursor_id is not None and (max_batches is None or batches < max_batches):
        cursor_id = _batch(cursor_id, now, result, acting_user)
        batches += 1
    result.next_after_id = cursor_id
    return result


@transaction.atomic
def retention_policy_set(
    *, unit: BusinessUnit, days: int | None, acting_user: Actor
) -> RetentionPolicy:
    """Purge PII ``days`` after contacts were last seen in ``unit`` (None: keep)."""
    from django.core.exceptions import ValidationError

    if days is not None and days < 1:
        raise ValidationError({"purge_pii_after_days": _("Enter at least one day.")})
    existing = RetentionPolicy.objects.dangerously_unscoped().filter(unit=unit).first()
    before = {"purge_pii_after_days": existing.purge_pii_after_days} if existing else None
    policy, _created = RetentionPolicy.objects.update_or_create(
        unit=unit, defaults={"purge_pii_after_days": days}
    )
    audit_record(
        actor=acting_user,
        action="retention_policy.set",
        obj=policy,
        unit=unit,
        before=before,
        after={"purge_pii_after_days": days},
    )
    return policy
