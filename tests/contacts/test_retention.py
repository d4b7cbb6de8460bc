"""PII retention: name, phone and email go on schedule; openid, tags and behaviour stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.contacts import hooks
from apps.contacts.identity_keys import make_key
from apps.contacts.models import (
    Activity,
    Contact,
    ContactMerge,
    ContactTag,
    Identity,
    RetentionPolicy,
    Tag,
)
from apps.contacts.services import retention
from apps.contacts.services.consent import consent_record
from apps.contacts.services.merge import contact_merge
from apps.contacts.services.resolution import contact_resolve
from apps.contacts.services.retention import contacts_pii_purge, retention_policy_set
from apps.contacts.tasks import retention as retention_tasks
from apps.core.models import AuditLog
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def policies(world):
    retention_policy_set(unit=world.a, days=30, acting_user=SYSTEM)
    retention_policy_set(unit=world.b, days=30, acting_user=SYSTEM)


def _person(unit, phone, *, days_ago, now, openid=None, name="张伟"):
    keys = [make_key("phone", phone), make_key("email", f"{phone}@example.cn")]
    if openid:
        keys.append(make_key("wechat_openid", openid, "wxAPP"))
    contact = contact_resolve(
        unit=unit,
        keys=keys,
        attributes={"name": name, "company_name": "华澜", "title": "采购经理"},
        source="form",
        observed_at=now - timedelta(days=days_ago),
        acting_user=SYSTEM,
    ).contact
    return contact


def _know(contact, unit, now):
    """Unit ``unit`` meets the person too (without making them any more recent)."""
    seen = Contact.objects.get(pk=contact.pk).last_seen_at
    contact_resolve(
        unit=unit,
        keys=[make_key("phone", Identity.objects.get(contact=contact, kind="phone").value)],
        source="import",
        observed_at=seen,
        acting_user=SYSTEM,
    )


def _kinds(contact):
    return sorted(Identity.objects.filter(contact=contact).values_list("kind", flat=True))


def test_old_contacts_lose_name_phone_and_email_but_keep_openid_tags_and_behaviour(
    world, policies, now
):
    # Given a contact last seen 40 days ago with a phone, an email, an openid, a tag and
    # some behaviour, and a contact seen 10 days ago …
    old = _person(world.a, "13800138001", days_ago=40, now=now, openid="oOLD")
    recent = _person(world.a, "13800138002", days_ago=10, now=now)
    vip = Tag.objects.create(unit=world.a, name="VIP")
    ContactTag.objects.create(contact=old, tag=vip)
    Activity.objects.create(
        unit=world.a, contact=old, type="page_view", occurred_at=now - timedelta(days=40)
    )

    # … the nightly purge takes the PII of the old one only.
    result = contacts_pii_purge(now=now)

    assert result.purged == 1
    old.refresh_from_db()
    assert old.name == ""
    assert (old.title, old.company_name) == ("采购经理", "华澜")  # business data stays
    assert old.pii_purged_at == now
    assert old.status == "active"
    assert _kinds(old) == ["wechat_openid"]
    assert list(ContactTag.objects.filter(contact=old).values_list("tag__name", flat=True)) == [
        "VIP"
    ]
    assert Activity.objects.filter(contact=old).count() == 1
    # The recent contact is untouched.
    recent.refresh_from_db()
    assert recent.name == "张伟"
    assert recent.pii_purged_at is None
    assert _kinds(recent) == ["email", "phone"]


def test_a_retention_guard_protects_a_contact(world, policies, now, monkeypatch):
    # Given two equally old contacts, one with an open lead (a higher app's guard says so)
    with_lead = _person(world.a, "13800138001", days_ago=90, now=now)
    without = _person(world.a, "13800138002", days_ago=90, now=now)
    asked: list[list[int]] = []

    def open_leads(ids):
        asked.append(sorted(ids))
        return {with_lead.pk}

    monkeypatch.setitem(hooks._RETENTION_GUARDS, "test-open-leads", open_leads)

    result = contacts_pii_purge(now=now)

    assert asked == [sorted([with_lead.pk, without.pk])]
    assert (result.purged, result.guarded) == (1, 1)
    assert Contact.objects.get(pk=with_lead.pk).name == "张伟"
    assert _kinds(with_lead) == ["email", "phone"]
    assert Contact.objects.get(pk=without.pk).name == ""


@pytest.mark.parametrize(
    ("granted", "basis", "kept"),
    [
        (True, "consent", True),
        (True, "contract", True),
        (True, "legitimate", False),
        (False, "", False),
    ],
)
def test_consent_to_keep_is_explicit_consent_or_a_contract(
    world, policies, now, granted, basis, kept
):
    person = _person(world.a, "13800138001", days_ago=60, now=now)
    consent_record(
        contact=person,
        unit=world.a,
        channel="email",
        granted=granted,
        basis=basis,
        source="form",
        occurred_at=now - timedelta(days=60),
    )

    contacts_pii_purge(now=now)

    person.refresh_from_db()
    assert (person.name == "张伟") is kept
    assert _kinds(person) == (["email", "phone"] if kept else [])


def test_a_withdrawal_after_consent_lets_the_purge_run(world, policies, now):
    person = _person(world.a, "13800138001", days_ago=60, now=now)
    consent_record(
        contact=person,
        unit=world.a,
        channel="email",
        granted=True,
        basis="consent",
        source="form",
        occurred_at=now - timedelta(days=60),
    )
    consent_record(
        contact=person,
        unit=world.a,
        channel="email",
        granted=False,
        source="unsubscribe",
        occurred_at=now - timedelta(days=50),
    )

    assert contacts_pii_purge(now=now).purged == 1


def test_a_unit_without_a_policy_keeps_what_it_knows(world, now):
    retention_policy_set(unit=world.a, days=30, acting_user=SYSTEM)
    only_a = _person(world.a, "13800138001", days_ago=60, now=now)
    also_b = _person(world.a, "13800138002", days_ago=60, now=now)
    _know(also_b, world.b, now)  # B has no policy

    contacts_pii_purge(now=now)

    assert Contact.objects.get(pk=only_a.pk).name == ""
    assert Contact.objects.get(pk=also_b.pk).name == "张伟"


def test_the_longest_policy_of_the_units_that_know_the_person_applies(world, now):
    retention_policy_set(unit=world.a, days=30, acting_user=SYSTEM)
    retention_policy_set(unit=world.b, days=90, acting_user=SYSTEM)
    sixty = _person(world.a, "13800138001", days_ago=60, now=now)
    hundred = _person(world.a, "13800138002", days_ago=100, now=now)
    only_a = _person(world.a, "13800138003", days_ago=60, now=now)
    _know(sixty, world.b, now)
    _know(hundred, world.b, now)

    result = contacts_pii_purge(now=now)

    assert result.purged == 2
    assert Contact.objects.get(pk=sixty.pk).name == "张伟"  # B keeps them for 90 days
    assert Contact.objects.get(pk=hundred.pk).name == ""
    assert Contact.objects.get(pk=only_a.pk).name == ""


def test_the_purge_is_audited_per_unit_with_counts(world, policies, now):
    for n in range(3):
        _person(world.a, f"1380013800{n}", days_ago=40, now=now)
    in_both = _person(world.b, "13900139000", days_ago=40, now=now)
    _know(in_both, world.a, now)

    contacts_pii_purge(now=now)

    rows = AuditLog.objects.filter(action="contact.pii_purge").order_by("unit_id")
    assert [(r.unit_id, r.after) for r in rows] == [
        (world.a.pk, {"contacts": 4, "purge_pii_after_days": 30, "run_at": now.isoformat()}),
        (world.b.pk, {"contacts": 1, "purge_pii_after_days": 30, "run_at": now.isoformat()}),
    ]
    assert {r.actor_label for r in rows} == {"system: pii-retention"}


def test_a_second_run_changes_nothing(world, policies, now):
    _person(world.a, "13800138001", days_ago=40, now=now)
    contacts_pii_purge(now=now)
    audits = AuditLog.objects.filter(action="contact.pii_purge").count()

    result = contacts_pii_purge(now=now + timedelta(hours=1))

    assert result.purged == 0
    assert AuditLog.objects.filter(action="contact.pii_purge").count() == audits


def test_names_in_merged_away_records_and_merge_snapshots_go_too(world, policies, now):
    kept = _person(world.a, "13800138001", days_ago=40, now=now, name="张伟")
    dropped = _person(world.a, "13800138002", days_ago=45, now=now, name="张 伟")
    merge = contact_merge(kept=kept, dropped=dropped, acting_user=SYSTEM)

    contacts_pii_purge(now=now)

    assert Contact.objects.get(pk=dropped.pk).name == ""
    snapshot = ContactMerge.objects.get(pk=merge.pk).snapshot
    assert snapshot["kept_fields"]["name"] == ""
    assert snapshot["dropped_fields"]["name"] == ""
    assert snapshot["merged_fields"]["name"] == ""


def test_work_goes_in_batches_and_the_task_chains_itself(
    world, policies, now, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(retention, "BATCH_SIZE", 2)
    monkeypatch.setattr(retention_tasks, "MAX_BATCHES_PER_TASK", 2)
    people = [_person(world.a, f"1380013800{n}", days_ago=40, now=now) for n in range(5)]
    sizes: list[int] = []

    def spy(ids):
        sizes.append(len(ids))
        return set()

    monkeypatch.setitem(hooks._RETENTION_GUARDS, "spy", spy)

    with django_capture_on_commit_callbacks() as queued:
        retention_tasks.purge_pii.run(now=now.isoformat())

    # Two batches of two, then the next slice is queued to continue after the fourth.
    assert sizes == [2, 2]
    assert Contact.objects.filter(name="").count() == 4
    assert len(queued) == 1

    sizes.clear()
    retention_tasks.purge_pii.run(after_id=people[3].pk, now=now.isoformat())
    assert sizes == [1]
    assert Contact.objects.filter(pk__in=[p.pk for p in people], name="").count() == 5


def test_no_policy_means_nothing_is_purged(world, now):
    person = _person(world.a, "13800138001", days_ago=4000, now=now)
    RetentionPolicy.objects.create(unit=world.a, purge_pii_after_days=None)

    assert contacts_pii_purge(now=now).purged == 0
    assert Contact.objects.get(pk=person.pk).name == "张伟"


def test_setting_a_policy_is_audited(world):
    retention_policy_set(unit=world.a, days=30, acting_user=world.admin)
    retention_policy_set(unit=world.a, days=60, acting_user=world.admin)

    rows = AuditLog.objects.filter(action="retention_policy.set").order_by("id")
    assert [(r.before, r.after) for r in rows] == [
        (None, {"purge_pii_after_days": 30}),
        ({"purge_pii_after_days": 30}, {"purge_pii_after_days": 60}),
    ]
    assert RetentionPolicy.objects.get(unit=world.a).purge_pii_after_days == 60
