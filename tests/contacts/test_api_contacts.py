"""The contacts REST API: upsert, create, read, change, timeline, tags and consent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.contacts.identity_keys import make_key
from apps.contacts.models import (
    Activity,
    Channel,
    ConsentEvent,
    ConsentState,
    Contact,
    ContactTag,
    ContactUnit,
    CustomField,
    ErasedIdentity,
    Identity,
    Tag,
    TagHistory,
)
from apps.contacts.services.activities import ActivityIn, activities_record
from apps.contacts.services.resolution import contact_resolve, value_hash
from apps.core import services
from apps.core.models import AuditLog
from apps.core.scoping import forget_visible_units

pytestmark = pytest.mark.django_db

SYSTEM = services.SystemActor("tests")
UPSERT = "/api/v1/contacts/upsert/"


def _stored() -> dict[str, int]:
    """Row counts of everything an API write could touch."""
    return {
        "contacts": Contact.objects.count(),
        "identities": Identity.objects.count(),
        "units": ContactUnit.objects.count(),
        "tags": ContactTag.objects.count(),
        "consent": ConsentEvent.objects.count(),
        "audit": AuditLog.objects.count(),
    }


def _contact(unit, kind="phone", raw="13800138000", scope="", **attributes) -> Contact:
    return contact_resolve(
        unit=unit,
        keys=[make_key(kind, raw, scope)],
        attributes=attributes,
        source="tests",
        acting_user=SYSTEM,
    ).contact


def _upsert(api, unit, *identities, **body):
    payload = {
        "unit": unit.pk,
        "identities": [
            {"kind": k, "value": v, **({"scope": sc} if sc else {})} for k, v, sc in identities
        ],
        **body,
    }
    return api.post(UPSERT, payload, format="json")


def ph(raw: str) -> tuple[str, str, str]:
    return ("phone", raw, "")


@pytest.fixture
def customer_type(world):
    return CustomField.objects.create(
        unit=world.a,
        key="customer_type",
        label="客户类型",
        type="choice",
        options=[{"value": "ka", "label": "大客户"}, {"value": "smb", "label": "中小客户"}],
    )


# --- Upsert ---------------------------------------------------------------------------------


def test_the_three_spellings_of_one_phone_upsert_to_one_contact(world, api):
    api.force_authenticate(world.marketer)

    by_form = _upsert(api, world.a, ph("138 0013 8000"), attributes={"name": "李娜"})
    by_import = _upsert(api, world.a, ph("+86 13800138000"), attributes={"title": "经理"})
    by_api = _upsert(api, world.a, ph("008613800138000"))

    assert [by_form.status_code, by_import.status_code, by_api.status_code] == [201, 200, 200]
    assert [r.json()["outcome"] for r in (by_form, by_import, by_api)] == [
        "created",
        "matched",
        "matched",
    ]
    contact = Contact.objects.get()
    assert {r.json()["contact"]["id"] for r in (by_form, by_import, by_api)} == {contact.pk}
    body = by_api.json()["contact"]
    assert body["identities"] == [{"kind": "phone", "scope": "", "value": "+8613800138000"}]
    assert (body["name"], body["title"], body["units"]) == ("李娜", "经理", [world.a.pk])
    assert by_api.json()["merged_ids"] == []
    audit = AuditLog.objects.filter(action="contact.upsert").order_by("id")
    assert [(row.after or {})["outcome"] for row in audit] == ["created", "matched", "matched"]


def test_an_upsert_joining_two_contacts_by_unionid_merges_them(world, api):
    older = _contact(world.a, "wechat_unionid", "union-1", name="李娜")
    newer = _contact(world.a, "phone", "13800138000", title="经理")
    api.force_authenticate(world.marketer)

    response = _upsert(
        api, world.a, ("wechat_unionid", "union-1", ""), ph("13800138000"), attributes={}
    )

    assert response.status_code == 200
    data = response.json()
    assert (data["outcome"], data["merged_ids"], data["contact"]["id"]) == (
        "merged",
        [newer.pk],
        older.pk,
    )
    assert data["contact"]["identities"] == [
        {"kind": "phone", "scope": "", "value": "+8613800138000"},
        {"kind": "wechat_unionid", "scope": "", "value": "union-1"},
    ]
    assert (data["contact"]["name"], data["contact"]["title"]) == ("李娜", "经理")
    newer.refresh_from_db()
    assert (newer.status, newer.merged_into_id) == ("merged", older.pk)


def test_an_upsert_sets_custom_fields_tags_and_consent_in_one_go(world, api, customer_type):
    vip = Tag.objects.create(unit=world.a, name="VIP")
    api.force_authenticate(world.marketer)

    response = _upsert(
        api,
        world.a,
        ("email", " Li.Na@Example.CN ", ""),
        ("wechat_openid", "oABC", "wx-app-1"),
        attributes={"name": "李娜", "company_name": "华东制造"},
        custom={"customer_type": "大客户"},
        tags=[vip.pk],
        consent=[
            {
                "channel": "email",
                "granted": True,
                "basis": "consent",
                "wording_version": "v3",
                "proof": {"form": "whitepaper"},
            }
        ],
    )

    assert response.status_code == 201
    contact = response.json()["contact"]
    assert contact["identities"] == [
        {"kind": "email", "scope": "", "value": "li.na@example.cn"},
        {"kind": "wechat_openid", "scope": "wx-app-1", "value": "oABC"},
    ]
    assert contact["custom_fields"] == [
        {
            "unit": world.a.pk,
            "key": "customer_type",
            "label": "客户类型",
            "type": "choice",
            "value": "ka",
        }
    ]
    assert [(t["id"], t["name"], t["source"]) for t in contact["tags"]] == [(vip.pk, "VIP", "api")]
    stored = Contact.objects.get()
    assert stored.custom == {str(customer_type.pk): "ka"}
    assert list(ConsentState.objects.values_list("channel", "granted")) == [("email", True)]
    event = ConsentEvent.objects.get()
    assert (event.unit_id, event.source, event.wording_version, event.proof) == (
        world.a.pk,
        "api",
        "v3",
        {"form": "whitepaper"},
    )


@pytest.mark.parametrize(
    ("identities", "fields"),
    [
        (
            [ph("13800138000"), ph("12345")],
            {"identities": {"1": ["“12345” is not a valid phone number."]}},
        ),
        (
            [("email", "li.na@example", "")],
            {"identities": {"0": ["“li.na@example” is not a valid email address."]}},
        ),
        (
            [("wechat_openid", "oABC", "")],
            {"identities": {"0": ["A WeChat openid needs its official-account app id in scope."]}},
        ),
        (
            [("fax", "010-1234", "")],
            {"identities": {"0": {"kind": ['"fax" is not a valid choice.']}}},
        ),
        ([], {"identities": ["Ensure this field has at least 1 elements."]}),
    ],
)
def test_a_malformed_identity_is_refused_with_its_position_and_nothing_is_stored(
    world, api, identities, fields
):
    api.force_authenticate(world.marketer)
    before = _stored()

    response = _upsert(api, world.a, *identities, attributes={"name": "李娜"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert response.json()["error"]["fields"] == fields
    assert _stored() == before


def test_an_unknown_custom_option_is_refused_naming_the_field(world, api, customer_type):
    api.force_authenticate(world.marketer)
    before = _stored()

    response = _upsert(api, world.a, ph("13800138000"), custom={"customer_type": "giant"})

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "custom": {
            "customer_type": ["“giant” is not an option of 客户类型 (options: 大客户、中小客户)"]
        }
    }
    assert _stored() == before


def test_custom_fields_are_those_of_the_unit_named(world, api, customer_type):
    # B has no customer_type field: A's field is not B's to fill.
    api.force_authenticate(world.group_admin)

    response = _upsert(api, world.b, ph("13800138000"), custom={"customer_type": "ka"})

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "custom": {"customer_type": ["unknown custom field “customer_type”"]}
    }
    assert Contact.objects.count() == 0


def test_an_invalid_consent_basis_is_refused_and_no_contact_is_created(world, api):
    api.force_authenticate(world.marketer)
    before = _stored()

    response = _upsert(
        api,
        world.a,
        ph("13800138000"),
        consent=[{"channel": "email", "granted": True, "basis": "hearsay"}],
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "consent": {"0": {"basis": ['"hearsay" is not a valid choice.']}}
    }
    assert _stored() == before


def test_a_tag_of_another_unit_is_unknown_to_an_upsert(world, api):
    b_tag = Tag.objects.create(unit=world.b, name="B only")
    api.force_authenticate(world.marketer)
    before = _stored()

    response = _upsert(api, world.a, ph("13800138000"), tags=[b_tag.pk, 999999])

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"tags": [f"Unknown tag: {b_tag.pk}, 999999."]}
    assert _stored() == before


def test_an_erased_person_cannot_be_brought_back(world, api):
    ErasedIdentity.objects.create(
        group=world.group,
        kind="phone",
        value_hash=value_hash(make_key("phone", "13800138000")),
    )
    api.force_authenticate(world.marketer)
    before = _stored()

    response = _upsert(api, world.a, ph("138 0013 8000"), attributes={"name": "李娜"})

    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "status": 409,
            "code": "erased",
            "message": "This person asked to be erased; their details cannot be added again.",
        }
    }
    assert _stored() == before


def test_an_upsert_into_a_unit_the_caller_cannot_write_to_is_refused(world, api):
    api.force_authenticate(world.viewer)  # viewers read contacts, never write them

    response = _upsert(api, world.a, ph("13800138000"))

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "unit": [f'Invalid pk "{world.a.pk}" - object does not exist.']
    }
    assert Contact.objects.count() == 0


def test_an_observation_from_the_future_is_refused(world, api):
    api.force_authenticate(world.marketer)
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()

    response = _upsert(api, world.a, ph("13800138000"), observed_at=later)

    assert response.json()["error"]["fields"] == {"observed_at": ["This time is in the future."]}
    assert Contact.objects.count() == 0


# --- Create ---------------------------------------------------------------------------------


def test_create_makes_a_contact_and_refuses_a_known_identity(world, api, customer_type):
    api.force_authenticate(world.marketer)
    body = {
        "unit": world.a.pk,
        "identities": [{"kind": "phone", "value": "138 0013 8000"}],
        "name": "李娜",
        "city": "上海",
        "custom": {"customer_type": "smb"},
    }

    created = api.post("/api/v1/contacts/", body, format="json")
    before = _stored()
    again = api.post(
        "/api/v1/contacts/",
        {**body, "identities": [{"kind": "phone", "value": "+86 13800138000"}], "name": "王"},
        format="json",
    )

    assert created.status_code == 201
    data = created.json()
    contact = Contact.objects.get()
    assert (data["id"], data["name"], data["city"], data["status"]) == (
        contact.pk,
        "李娜",
        "上海",
        "active",
    )
    assert data["custom_fields"][0]["value"] == "smb"
    assert again.status_code == 409
    assert again.json() == {
        "error": {
            "status": 409,
            "code": "exists",
            "message": "A contact with these details already exists; "
            "use /api/v1/contacts/upsert/ to update it.",
            "contact": contact.pk,
        }
    }
    assert _stored() == before
    assert Contact.objects.get().name == "李娜"


def test_create_does_not_say_which_contact_exists_when_the_caller_cannot_see_it(world, api):
    _contact(world.b, "email", "li.na@example.cn")
    api.force_authenticate(world.marketer)

    response = api.post(
        "/api/v1/contacts/",
        {"unit": world.a.pk, "identities": [{"kind": "email", "value": "Li.Na@example.cn"}]},
        format="json",
    )

    assert response.status_code == 409
    assert "contact" not in response.json()["error"]
    assert ContactUnit.objects.filter(unit=world.a).count() == 0


# --- Read and scoping -----------------------------------------------------------------------


def test_a_contact_of_another_unit_is_404_and_not_listed(world, api):
    mine = _contact(world.a, "phone", "13800138000", name="甲")
    theirs = _contact(world.b, "phone", "13900139000", name="乙")
    api.force_authenticate(world.marketer)

    listed = api.get("/api/v1/contacts/")

    assert [row["id"] for row in listed.json()["results"]] == [mine.pk]
    assert api.get(f"/api/v1/contacts/{mine.pk}/").json()["name"] == "甲"
    for url in ("", "timeline/", "tags/", "consent/"):
        response = api.get(f"/api/v1/contacts/{theirs.pk}/{url}")
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"


def test_a_token_of_unit_a_can_neither_read_nor_write_unit_bs_contacts(world, api):
    theirs = _contact(world.b, "phone", "13900139000", name="乙")
    b_tag = Tag.objects.create(unit=world.b, name="B")
    _token, raw = services.api_token_create(user=world.marketer, name="crm", acting_user=SYSTEM)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    before = _stored()

    reads = [
        api.get(f"/api/v1/contacts/{theirs.pk}/").status_code,
        api.get(f"/api/v1/contacts/{theirs.pk}/timeline/").status_code,
        len(api.get("/api/v1/contacts/").json()["results"]),
    ]
    writes = [
        api.patch(f"/api/v1/contacts/{theirs.pk}/", {"name": "改"}, format="json").status_code,
        api.post(
            f"/api/v1/contacts/{theirs.pk}/tags/", {"add": [b_tag.pk]}, format="json"
        ).status_code,
        api.post(
            f"/api/v1/contacts/{theirs.pk}/consent/",
            {"unit": world.a.pk, "channel": "sms", "granted": False},
            format="json",
        ).status_code,
        _upsert(api, world.b, ph("13900139000"), attributes={"name": "改"}).status_code,
    ]

    assert reads == [404, 404, 0]
    assert writes == [404, 404, 404, 400]
    assert _stored() == before
    theirs.refresh_from_db()
    assert theirs.name == "乙"


def test_the_group_admin_sees_both_units_contacts_with_both_units_tags(world, api):
    contact = _contact(world.a, "phone", "13800138000")
    _contact(world.b, "phone", "13800138000")  # the same person, known to B too
    a_tag = Tag.objects.create(unit=world.a, name="A 标签")
    b_tag = Tag.objects.create(unit=world.b, name="B 标签")
    ContactTag.objects.create(contact=contact, tag=a_tag)
    ContactTag.objects.create(contact=contact, tag=b_tag)

    api.force_authenticate(world.group_admin)
    admin_view = api.get(f"/api/v1/contacts/{contact.pk}/").json()
    api.force_authenticate(world.marketer)
    a_view = api.get(f"/api/v1/contacts/{contact.pk}/").json()

    assert (admin_view["units"], [t["name"] for t in admin_view["tags"]]) == (
        [world.a.pk, world.b.pk],
        ["A 标签", "B 标签"],
    )
    assert (a_view["units"], [t["name"] for t in a_view["tags"]]) == ([world.a.pk], ["A 标签"])


def test_the_list_filters_by_phone_in_any_spelling_and_hides_merged_contacts(world, api):
    kept = _contact(world.a, "phone", "13800138000")
    other = _contact(world.a, "email", "x@example.cn")
    dropped = _contact(world.a, "email", "y@example.cn")
    Contact.objects.filter(pk=dropped.pk).update(status="merged", merged_into=kept)
    api.force_authenticate(world.marketer)

    def ids(query: str) -> list[int]:
        return [row["id"] for row in api.get(f"/api/v1/contacts/{query}").json()["results"]]

    assert ids("") == [other.pk, kept.pk]
    assert ids("?status=merged") == [dropped.pk]
    assert ids("?phone=%2B86%20138-0013-8000") == [kept.pk]
    assert ids("?email=X@Example.cn") == [other.pk]
    assert ids(f"?unit={world.b.pk}") == []
    bad = api.get("/api/v1/contacts/?phone=12345")
    assert bad.status_code == 400
    assert bad.json()["error"]["fields"] == {"phone": ["“12345” is not a valid phone number."]}


def _seed_contacts(world, first: int, count: int, customer_type: CustomField) -> None:
    tag = Tag.objects.get_or_create(unit=world.a, name="VIP")[0]
    for n in range(first, first + count):
        contact = _contact(world.a, "phone", f"1380013{n:04d}", name=f"联系人{n}")
        Identity.objects.create(
            group=world.group, contact=contact, kind="email", value=f"p{n}@example.cn"
        )
        ContactTag.objects.create(contact=contact, tag=tag)
        Contact.objects.filter(pk=contact.pk).update(custom={str(customer_type.pk): "ka"})


def test_the_list_costs_the_same_queries_for_3_and_40_contacts(world, api, customer_type):
    api.force_authenticate(world.marketer)

    def list_queries() -> tuple[int, int]:
        forget_visible_units(world.marketer)  # each request looks the roles up afresh
        with CaptureQueriesContext(connection) as ctx:
            response = api.get("/api/v1/contacts/")
        assert response.status_code == 200
        return len(ctx.captured_queries), len(response.json()["results"])

    _seed_contacts(world, 0, 3, customer_type)
    at_3 = list_queries()
    _seed_contacts(world, 3, 37, customer_type)
    at_40 = list_queries()

    # roles, contacts page, identities, units, tags, custom fields
    assert at_3 == (6, 3)
    assert at_40 == (6, 40)


# --- Change -----------------------------------------------------------------------------------


def test_patch_changes_clears_and_audits_fields(world, api, customer_type):
    contact = _contact(world.a, "phone", "13800138000", name="李娜", city="上海")
    channel = Channel.objects.create(unit=world.a, code="baidu", name="百度", kind="sem")
    api.force_authenticate(world.marketer)

    response = api.patch(
        f"/api/v1/contacts/{contact.pk}/",
        {
            "title": "采购经理",
            "city": "",
            "source_channel": channel.pk,
            "unit": world.a.pk,
            "custom": {"customer_type": "ka"},
        },
        format="json",
    )

    assert response.status_code == 200
    data = response.json()
    assert (data["name"], data["title"], data["city"], data["source_channel"]) == (
        "李娜",
        "采购经理",
        "",
        channel.pk,
    )
    assert data["custom_fields"][0]["value"] == "ka"
    audit = AuditLog.objects.get(action="contact.update")
    assert (audit.unit_id, audit.actor_id, audit.after) == (
        world.a.pk,
        world.marketer.pk,
        {"fields": ["city", f"custom:{customer_type.pk}", "source_channel", "title"]},
    )

    cleared = api.patch(
        f"/api/v1/contacts/{contact.pk}/",
        {"unit": world.a.pk, "custom": {"customer_type": None}},
        format="json",
    )
    assert cleared.json()["custom_fields"] == []
    contact.refresh_from_db()
    assert contact.custom == {}


def test_a_viewer_may_read_a_contact_but_not_change_it(world, api):
    contact = _contact(world.a, "phone", "13800138000", name="李娜")
    api.force_authenticate(world.viewer)

    read = api.get(f"/api/v1/contacts/{contact.pk}/")
    write = api.patch(f"/api/v1/contacts/{contact.pk}/", {"name": "改"}, format="json")

    assert read.status_code == 200
    assert write.status_code == 403
    assert write.json()["error"] == {
        "status": 403,
        "code": "permission_denied",
        "message": "You may read this contact but not change it.",
    }
    contact.refresh_from_db()
    assert contact.name == "李娜"


def test_a_merged_contact_cannot_be_changed(world, api):
    kept = _contact(world.a, "phone", "13800138000")
    dropped = _contact(world.a, "email", "y@example.cn", name="旧")
    Contact.objects.filter(pk=dropped.pk).update(status="merged", merged_into=kept)
    api.force_authenticate(world.marketer)

    response = api.patch(f"/api/v1/contacts/{dropped.pk}/", {"name": "新"}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "merged"
    assert Contact.objects.get(pk=dropped.pk).name == "旧"


def test_put_and_delete_are_not_offered(world, api):
    contact = _contact(world.a)
    api.force_authenticate(world.admin)
    assert api.put(f"/api/v1/contacts/{contact.pk}/", {}, format="json").status_code == 405
    assert api.delete(f"/api/v1/contacts/{contact.pk}/").status_code == 405
    assert Contact.objects.count() == 1


# --- Timeline -------------------------------------------------------------------------------


def test_the_timeline_pages_newest_first_and_filters(world, api):
    contact = _contact(world.a)
    other = _contact(world.a, "phone", "13900139000")
    wechat = Channel.objects.create(unit=world.a, code="wx", name="微信", kind="wechat")
    base = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    rows = [
        ActivityIn(world.a.pk, "page_view", base, contact.pk),
        ActivityIn(world.a.pk, "form_submit", base + timedelta(hours=1), contact.pk),
        ActivityIn(world.a.pk, "email_open", base + timedelta(hours=2), contact.pk),
        ActivityIn(
            world.a.pk, "page_view", base + timedelta(hours=3), contact.pk, channel_id=wechat.pk
        ),
        ActivityIn(world.a.pk, "page_view", base + timedelta(hours=3), contact.pk),
        ActivityIn(world.b.pk, "page_view", base + timedelta(hours=4), contact.pk),  # B's
        ActivityIn(world.a.pk, "page_view", base + timedelta(hours=5), other.pk),
    ]
    activities_record(rows)
    ids = {
        (a.type, a.occurred_at, a.channel_id, a.unit_id): a.pk
        for a in Activity.objects.filter(contact=contact)
    }
    view1 = ids["page_view", base, None, world.a.pk]
    submit = ids["form_submit", base + timedelta(hours=1), None, world.a.pk]
    email_open = ids["email_open", base + timedelta(hours=2), None, world.a.pk]
    wx_view = ids["page_view", base + timedelta(hours=3), wechat.pk, world.a.pk]
    plain_view = ids["page_view", base + timedelta(hours=3), None, world.a.pk]
    # Same time: the higher id first.
    tie = sorted([wx_view, plain_view], reverse=True)
    api.force_authenticate(world.marketer)
    url = f"/api/v1/contacts/{contact.pk}/timeline/"

    first = api.get(url, {"page_size": 2}).json()
    second = api.get(first["next"]).json()
    third = api.get(second["next"]).json()

    assert [a["id"] for a in first["results"]] == tie
    assert [a["id"] for a in second["results"]] == [email_open, submit]
    assert [a["id"] for a in third["results"]] == [view1]
    assert third["next"] is None
    assert first["results"][0]["unit"] == world.a.pk
    assert [
        a["id"] for a in api.get(url, {"type": "form_submit,email_open"}).json()["results"]
    ] == [
        email_open,
        submit,
    ]
    assert [a["id"] for a in api.get(url, {"channel": wechat.pk}).json()["results"]] == [wx_view]
    api.force_authenticate(world.group_admin)
    assert len(api.get(url).json()["results"]) == 6  # B's activity too


def test_the_timeline_costs_the_same_queries_for_a_short_and_a_long_history(world, api):
    contact = _contact(world.a)
    base = datetime(2026, 3, 1, tzinfo=UTC)
    api.force_authenticate(world.marketer)
    url = f"/api/v1/contacts/{contact.pk}/timeline/"

    def timeline_queries() -> int:
        forget_visible_units(world.marketer)
        with CaptureQueriesContext(connection) as ctx:
            assert api.get(url).status_code == 200
        return len(ctx.captured_queries)

    activities_record([ActivityIn(world.a.pk, "page_view", base, contact.pk)])
    short = timeline_queries()
    activities_record(
        [
            ActivityIn(world.a.pk, "page_view", base + timedelta(minutes=i), contact.pk)
            for i in range(300)
        ]
    )

    # roles, access check, the page
    assert (short, timeline_queries()) == (3, 3)


# --- Tags -------------------------------------------------------------------------------------


def test_tags_are_added_and_removed_exactly(world, api):
    contact = _contact(world.a)
    vip = Tag.objects.create(unit=world.a, name="VIP")
    hot = Tag.objects.create(unit=world.a, name="高意向")
    b_tag = Tag.objects.create(unit=world.b, name="B")
    api.force_authenticate(world.marketer)
    url = f"/api/v1/contacts/{contact.pk}/tags/"

    added = api.post(url, {"add": [vip.pk, hot.pk]}, format="json")
    removed = api.post(url, {"remove": [vip.pk]}, format="json")
    unknown = api.post(url, {"add": [b_tag.pk], "remove": [hot.pk]}, format="json")

    assert added.status_code == 200
    assert [(t["id"], t["name"]) for t in added.json()] == [(vip.pk, "VIP"), (hot.pk, "高意向")]
    assert [t["id"] for t in removed.json()] == [hot.pk]
    assert unknown.status_code == 400
    assert unknown.json()["error"]["fields"] == {"add": [f"Unknown tag: {b_tag.pk}."]}
    assert list(ContactTag.objects.values_list("tag_id", flat=True)) == [hot.pk]
    assert list(
        TagHistory.objects.order_by("id").values_list("tag_id", "action", "source", "actor_label")
    ) == [
        (vip.pk, "added", "api", "a-marketer"),
        (hot.pk, "added", "api", "a-marketer"),
        (vip.pk, "removed", "api", "a-marketer"),
    ]
    assert [t["name"] for t in api.get(url).json()] == ["高意向"]


# --- Consent ----------------------------------------------------------------------------------


def test_consent_given_then_withdrawn_leaves_the_state_false(world, api):
    contact = _contact(world.a)
    api.force_authenticate(world.marketer)
    url = f"/api/v1/contacts/{contact.pk}/consent/"
    t0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

    given = api.post(
        url,
        {
            "unit": world.a.pk,
            "channel": "email",
            "granted": True,
            "basis": "consent",
            "wording_version": "v3",
            "occurred_at": t0.isoformat(),
        },
        format="json",
    )
    withdrawn = api.post(
        url,
        {
            "unit": world.a.pk,
            "channel": "email",
            "granted": False,
            "occurred_at": (t0 + timedelta(days=1)).isoformat(),
        },
        format="json",
    )
    bad = api.post(
        url, {"unit": world.a.pk, "channel": "email", "granted": True, "basis": "x"}, format="json"
    )

    assert given.status_code == 201
    assert given.json()["states"] == [
        {
            "channel": "email",
            "purpose": "marketing",
            "granted": True,
            "since": "2026-03-01T16:00:00+08:00",
        }
    ]
    assert withdrawn.json()["states"] == [
        {
            "channel": "email",
            "purpose": "marketing",
            "granted": False,
            "since": "2026-03-02T16:00:00+08:00",
        }
    ]
    assert [(e["granted"], e["basis"], e["source"]) for e in withdrawn.json()["history"]] == [
        (False, "", "api"),
        (True, "consent", "api"),
    ]
    assert bad.status_code == 400
    assert bad.json()["error"]["fields"] == {"basis": ['"x" is not a valid choice.']}
    assert ConsentEvent.objects.count() == 2
    assert ConsentState.objects.get().granted is False
    assert api.get(url).json()["states"][0]["granted"] is False
