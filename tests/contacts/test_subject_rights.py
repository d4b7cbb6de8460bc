"""Data-subject rights: everything we hold on a person, and erasure that sticks."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from apps.contacts.identity_keys import make_key
from apps.contacts.models import (
    Activity,
    ConsentEvent,
    Contact,
    ContactMerge,
    ContactTag,
    CustomField,
    ErasedIdentity,
    Identity,
    Tag,
    TagHistory,
)
from apps.contacts.services.consent import consent_record
from apps.contacts.services.merge import contact_merge
from apps.contacts.services.resolution import ErasedPerson, contact_resolve, value_hash
from apps.contacts.services.subject import (
    ErasureError,
    contact_erase,
    contact_subject_export,
    contact_subject_export_stream,
)
from apps.contacts.services.tags import tags_add
from apps.core.models import AuditLog
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")
AT = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def _resolve(unit, *pairs, **attributes):
    keys = [make_key(kind, raw, *scope) for kind, raw, *scope in pairs]
    return contact_resolve(
        unit=unit, keys=keys, attributes=attributes, source="form", acting_user=SYSTEM
    )


@pytest.fixture
def person(world):
    """张伟, known to units A and B, with every kind of data we hold."""
    size = CustomField.objects.create(unit=world.a, key="size", label="人数", type="number")
    contact = _resolve(
        world.a,
        ("phone", "13800138000"),
        ("email", "Zhang.Wei@Example.cn"),
        ("wechat_openid", "oZW", "wxAPP"),
        ("anonymous", "anon-1"),
        name="张伟",
        company_name="华澜",
        custom={size.storage_key: 250},
    ).contact
    _resolve(world.b, ("phone", "13800138000"))
    vip = Tag.objects.create(unit=world.a, name="VIP")
    tags_add(contact_ids=[contact.pk], tags=[vip], source="manual", actor_label="a-marketer")
    consent_record(
        contact=contact,
        unit=world.a,
        channel="email",
        granted=True,
        source="form",
        wording_version="v3",
        proof={"ip": "203.0.113.9", "user_agent": "Mozilla/5.0", "form_id": 7},
        occurred_at=AT,
    )
    Activity.objects.create(
        unit=world.a, contact=contact, type="page_view", occurred_at=AT, properties={"url": "/p"}
    )
    # Seen under their visitor id before we knew them.
    Activity.objects.create(unit=world.b, anonymous_id="anon-1", type="page_view", occurred_at=AT)
    # Someone else's anonymous behaviour is not theirs.
    Activity.objects.create(unit=world.a, anonymous_id="anon-2", type="page_view", occurred_at=AT)
    contact.refresh_from_db()
    return contact


# --- Export --------------------------------------------------------------------------------


def test_the_subject_export_holds_exactly_what_we_know(world, person):
    data = contact_subject_export(person)

    assert data["contact"]["name"] == "张伟"
    assert data["contact"]["company_name"] == "华澜"
    assert sorted((i["kind"], i["scope"], i["value"]) for i in data["identities"]) == [
        ("anonymous", "", "anon-1"),
        ("email", "", "zhang.wei@example.cn"),
        ("phone", "", "+8613800138000"),
        ("wechat_openid", "wxAPP", "oZW"),
    ]
    assert [(f["key"], f["label"], f["value"]) for f in data["custom_fields"]] == [
        ("size", "人数", 250)
    ]
    assert sorted(u["unit"] for u in data["units"]) == sorted([world.a.name, world.b.name])
    assert [(t["tag"], t["added_by"]) for t in data["tags"]] == [("VIP", "a-marketer")]
    assert [(h["tag"], h["action"]) for h in data["tag_history"]] == [("VIP", "added")]
    assert [(c["channel"], c["granted"]) for c in data["consent"]] == [("email", True)]
    assert data["consent_events"][0]["proof"] == {
        "ip": "203.0.113.9",
        "user_agent": "Mozilla/5.0",
        "form_id": 7,
    }
    assert data["consent_events"][0]["wording_version"] == "v3"
    assert sorted((a["unit"], a["anonymous_id"]) for a in data["activities"]) == sorted(
        [(world.a.name, ""), (world.b.name, "anon-1")]
    )
    assert data["merges"] == []
    json.dumps(data)  # serialisable as it is


def test_the_streamed_document_is_the_same_document(world, person):
    streamed = json.loads("".join(contact_subject_export_stream(person)))
    built = json.loads(json.dumps(contact_subject_export(person)))

    streamed.pop("generated_at")
    built.pop("generated_at")
    assert streamed == built


def test_a_merged_away_contact_exports_the_contact_holding_the_data(world, person):
    other = _resolve(world.a, ("email", "zw@home.cn"), name="张 伟").contact
    contact_merge(kept=person, dropped=other, acting_user=SYSTEM)
    other.refresh_from_db()

    data = contact_subject_export(other)

    assert data["contact"]["id"] == person.pk
    assert data["merges"][0]["dropped"] == other.pk
    assert data["merges"][0]["dropped_fields"]["name"] == "张 伟"


# --- Erasure -------------------------------------------------------------------------------


def test_erasure_removes_the_person_and_resolving_them_again_is_refused(world, person):
    other = Contact.objects.exclude(pk=person.pk).count()

    result = contact_erase(contact=person, acting_user=world.admin)

    person.refresh_from_db()
    assert person.status == "erased"
    assert (person.name, person.company_name, person.custom) == ("", "", {})
    assert (result.identities, result.activities) == (4, 2)
    assert Identity.objects.filter(contact=person).count() == 0
    assert ContactTag.objects.filter(contact=person).count() == 0
    assert TagHistory.objects.filter(contact=person).count() == 0
    assert Activity.objects.filter(anonymous_id="anon-2").count() == 1  # not theirs
    assert Activity.objects.count() == 1
    # The withdrawal proof stays, without what identifies the person.
    event = ConsentEvent.objects.get(contact=person)
    assert (event.granted, event.wording_version, event.proof) == (True, "v3", {})
    assert ErasedIdentity.objects.filter(group=world.group).count() == 4
    assert ErasedIdentity.objects.filter(
        value_hash=value_hash(make_key("phone", "13800138000"))
    ).exists()

    # An import with the same phone, in any spelling, is refused and adds nothing.
    identities = Identity.objects.count()
    with pytest.raises(ErasedPerson):
        _resolve(world.b, ("phone", "+86 138-0013-8000"), name="张伟")
    with pytest.raises(ErasedPerson):
        _resolve(world.a, ("email", "zhang.wei@example.cn"), ("phone", "13900139000"))
    assert Contact.objects.exclude(pk=person.pk).count() == other
    assert Identity.objects.count() == identities


def test_erasure_is_audited_and_earlier_audit_rows_stop_naming_the_person(world, person):
    other = _resolve(world.a, ("email", "zw@home.cn"), name="张 伟").contact
    contact_merge(kept=person, dropped=other, acting_user=SYSTEM)
    assert "张" in AuditLog.objects.get(action="contact.merge").object_repr

    contact_erase(contact=person, acting_user=world.admin)

    entry = AuditLog.objects.get(action="contact.erase")
    assert entry.actor == world.admin
    assert entry.object_id == str(person.pk)
    assert entry.after == {"identities": 5, "activities": 2, "merged_contacts": 1}
    assert AuditLog.objects.get(action="contact.merge").object_repr == f"#{person.pk}"
    assert not AuditLog.objects.filter(
        object_type="contacts.contact", object_repr__contains="张"
    ).exists()


def test_erasure_reaches_contacts_merged_into_the_person(world, person):
    other = _resolve(world.a, ("email", "zw@home.cn"), name="张 伟", city="上海").contact
    merge = contact_merge(kept=person, dropped=other, acting_user=SYSTEM)

    contact_erase(contact=person, acting_user=world.admin)

    other.refresh_from_db()
    assert (other.status, other.name, other.city) == ("merged", "", "")
    # The merge record no longer holds the fields that could restore the data.
    assert set(ContactMerge.objects.get(pk=merge.pk).snapshot) == {"erased_at"}
    with pytest.raises(ErasedPerson):
        _resolve(world.a, ("email", "zw@home.cn"))


def test_erasing_twice_changes_nothing(world, person):
    contact_erase(contact=person, acting_user=world.admin)

    again = contact_erase(contact=person, acting_user=world.admin)

    assert again.already_erased is True
    assert AuditLog.objects.filter(action="contact.erase").count() == 1


def test_a_merged_away_contact_cannot_be_erased_directly(world, person):
    other = _resolve(world.a, ("email", "zw@home.cn")).contact
    contact_merge(kept=person, dropped=other, acting_user=SYSTEM)

    with pytest.raises(ErasureError, match=f"merged into #{person.pk}"):
        contact_erase(contact=other, acting_user=world.admin)
    assert Contact.objects.get(pk=person.pk).name == "张伟"


# --- Console -------------------------------------------------------------------------------


def test_the_console_downloads_the_json_and_audits_it(world, person, client):
    client.force_login(world.marketer)

    response = client.get(f"/console/contacts/{person.pk}/subject-export/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(b"".join(response.streaming_content))
    assert "+8613800138000" in [i["value"] for i in data["identities"]]
    entry = AuditLog.objects.get(action="contact.subject_export")
    assert (entry.actor, entry.object_id) == (world.marketer, str(person.pk))


def test_the_console_subject_export_is_scoped(world, client):
    b_only = _resolve(world.b, ("phone", "13900139000"), name="李娜").contact
    client.force_login(world.marketer)
    assert client.get(f"/console/contacts/{b_only.pk}/subject-export/").status_code == 404
    client.force_login(world.viewer)  # console, but no export role
    assert client.get(f"/console/contacts/{b_only.pk}/subject-export/").status_code == 404
    assert not AuditLog.objects.filter(action="contact.subject_export").exists()


def test_the_console_erases_after_confirmation_by_an_administrator(world, person, client):
    url = f"/console/contacts/{person.pk}/erase/"

    client.force_login(world.marketer)  # may see the person, may not erase them
    assert client.post(url, {"confirm": "on"}).status_code == 403
    client.force_login(world.b_marketer)
    b_only = _resolve(world.b, ("phone", "13900139000")).contact
    client.force_login(world.admin)
    assert client.get(f"/console/contacts/{b_only.pk}/erase/").status_code == 404

    assert client.get(url, HTTP_ACCEPT_LANGUAGE="en").status_code == 200
    unconfirmed = client.post(url, {})
    assert unconfirmed.status_code == 400
    assert Contact.objects.get(pk=person.pk).status == "active"

    response = client.post(url, {"confirm": "on"})
    assert response.status_code == 302
    assert Contact.objects.get(pk=person.pk).status == "erased"


# --- API -----------------------------------------------------------------------------------


def test_the_api_exports_and_erases(world, person, api):
    api.force_authenticate(world.marketer)
    exported = api.get(f"/api/v1/contacts/{person.pk}/subject-export/")
    assert exported.status_code == 200
    data = json.loads(b"".join(exported.streaming_content))
    assert data["contact"]["id"] == person.pk
    assert api.post(f"/api/v1/contacts/{person.pk}/erase/", {"confirm": True}).status_code == 403

    api.force_authenticate(world.admin)
    refused = api.post(f"/api/v1/contacts/{person.pk}/erase/", {"confirm": False})
    assert refused.status_code == 400
    assert "confirm" in refused.json()["error"]["fields"]
    assert Contact.objects.get(pk=person.pk).status == "active"

    erased = api.post(f"/api/v1/contacts/{person.pk}/erase/", {"confirm": True})
    assert erased.status_code == 200
    assert erased.json() == {
        "id": person.pk,
        "status": "erased",
        "identities": 4,
        "activities": 2,
        "merged_contacts": 0,
        "already_erased": False,
    }


def test_the_api_hides_contacts_of_other_units(world, api):
    b_only = _resolve(world.b, ("phone", "13900139000")).contact
    api.force_authenticate(world.marketer)

    assert api.get(f"/api/v1/contacts/{b_only.pk}/subject-export/").status_code == 404
    assert api.post(f"/api/v1/contacts/{b_only.pk}/erase/", {"confirm": True}).status_code == 404
    assert Contact.objects.get(pk=b_only.pk).status == "active"
