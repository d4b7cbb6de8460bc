"""Identity resolution: one person, one contact, however their keys arrive."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from apps.contacts.identity_keys import InvalidKey, make_key
from apps.contacts.models import Contact, ContactStatus, ContactUnit, Identity
from apps.contacts.services.resolution import ErasedPerson, contact_resolve
from apps.core.services import SystemActor

SYSTEM = SystemActor("tests")


def _resolve(unit, *pairs, source="api", **attributes):
    keys = [make_key(kind, raw, *scope) for kind, raw, *scope in pairs]
    return contact_resolve(
        unit=unit, keys=keys, attributes=attributes, source=source, acting_user=SYSTEM
    )


@pytest.mark.parametrize(
    "raw",
    [
        "138 0013 8000",
        "+86 13800138000",
        "008613800138000",
        "13800138000",
        "138-0013-8000",
        "１３８００１３８０００",
        "+86 (138) 0013-8000",
        "86 138 0013 8000",
    ],
)
def test_every_spelling_of_a_mainland_mobile_gives_one_key(raw):
    assert make_key("phone", raw).value == "+8613800138000"


@pytest.mark.parametrize("raw", ["12345", "phone", "", "138001380001"])
def test_a_bad_phone_is_refused_with_a_reason(raw):
    with pytest.raises(InvalidKey):
        make_key("phone", raw)


def test_landlines_and_foreign_numbers_normalise_through_phonenumbers():
    assert make_key("phone", "010-8888 6666").value == "+861088886666"
    assert make_key("phone", "+1 650 253 0000").value == "+16502530000"


def test_emails_are_lower_cased_and_checked():
    assert make_key("email", "  Li.Na@Example.CN ").value == "li.na@example.cn"
    with pytest.raises(InvalidKey):
        make_key("email", "li.na@example")


def test_an_openid_needs_its_official_account():
    with pytest.raises(InvalidKey, match="app id"):
        make_key("wechat_openid", "oABC123")
    assert make_key("wechat_openid", "oABC123", "wx123").scope == "wx123"


@pytest.mark.django_db
def test_the_same_person_by_form_import_and_api_is_one_contact(world):
    by_form = _resolve(world.a, ("phone", "138 0013 8000"), source="form", name="李娜")
    by_import = _resolve(world.a, ("phone", "+86 13800138000"), source="import", title="经理")
    by_api = _resolve(world.b, ("phone", "008613800138000"), source="api")

    assert [by_form.outcome, by_import.outcome, by_api.outcome] == [
        "created",
        "matched",
        "matched",
    ]
    assert by_form.contact.pk == by_import.contact.pk == by_api.contact.pk
    assert list(Identity.objects.values_list("kind", "value")) == [("phone", "+8613800138000")]
    contact = Contact.objects.get()
    assert (contact.name, contact.title) == ("李娜", "经理")
    assert set(ContactUnit.objects.values_list("unit_id", flat=True)) == {world.a.id, world.b.id}


@pytest.mark.django_db
def test_newest_non_empty_value_wins_and_empty_never_erases(world):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    key = [make_key("email", "wang@example.cn")]
    contact_resolve(
        unit=world.a,
        keys=key,
        attributes={"company_name": "新公司"},
        source="form",
        observed_at=now,
        acting_user=SYSTEM,
    )
    contact_resolve(
        unit=world.a,
        keys=key,
        attributes={"company_name": "旧公司"},
        source="import",
        observed_at=now - timedelta(days=30),
        acting_user=SYSTEM,
    )
    contact_resolve(
        unit=world.a,
        keys=key,
        attributes={"company_name": ""},
        source="api",
        observed_at=now + timedelta(days=1),
        acting_user=SYSTEM,
    )
    contact = Contact.objects.get()
    assert contact.company_name == "新公司"
    assert contact.field_sources["company_name"]["source"] == "form"


@pytest.mark.django_db
def test_a_unionid_joining_two_contacts_merges_them(world):
    first = _resolve(world.a, ("phone", "13800138000"), name="张伟").contact
    second = _resolve(world.a, ("wechat_openid", "oOPENID", "wxAPP"), city="上海").contact

    result = _resolve(
        world.a,
        ("phone", "13800138000"),
        ("wechat_openid", "oOPENID", "wxAPP"),
        ("wechat_unionid", "uUNION"),
        source="wechat",
    )

    assert result.outcome == "merged"
    assert result.contact.pk == first.pk
    assert result.merged_ids == [second.pk]
    second.refresh_from_db()
    assert (second.status, second.merged_into_id) == (ContactStatus.MERGED, first.pk)
    assert set(Identity.objects.filter(contact_id=first.pk).values_list("kind", flat=True)) == {
        "phone",
        "wechat_openid",
        "wechat_unionid",
    }
    kept = Contact.objects.get(pk=first.pk)
    assert (kept.name, kept.city) == ("张伟", "上海")


@pytest.mark.django_db
def test_an_erased_person_is_not_taken_back(world):
    from apps.contacts.models import ErasedIdentity
    from apps.contacts.services.resolution import value_hash

    key = make_key("phone", "13900139000")
    ErasedIdentity.objects.create(
        group=world.group, kind=key.kind, scope=key.scope, value_hash=value_hash(key)
    )
    with pytest.raises(ErasedPerson):
        _resolve(world.a, ("phone", "13900139000"), name="不该回来")
    assert Contact.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_upserts_of_one_new_phone_create_one_contact(transactional_db):
    from tests.conftest import build_world

    world = build_world()
    barrier = threading.Barrier(20)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def upsert(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            result = _resolve(world.a, ("phone", f"+86 139 0000 {1000:04d}"), name=f"并发{i}")
            outcomes.append(result.outcome)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=upsert, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert errors == []
    assert sorted(outcomes) == ["created"] + ["matched"] * 19
    assert Contact.objects.count() == 1
    assert Identity.objects.filter(kind="phone").count() == 1
