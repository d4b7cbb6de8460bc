"""The console contact list: scope, search, filters, paging, masking and bulk tagging."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.contacts.identity_keys import make_key
from apps.contacts.models import (
    Channel,
    Contact,
    ContactTag,
    CustomField,
    Identity,
    Tag,
    TagHistory,
)
from apps.contacts.services.resolution import contact_resolve, contact_unit_ensure
from apps.contacts.services.tags import tags_add
from apps.core.models import AuditLog
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db


def found_in(pattern, text):
    """The regex match, failing the test when there is none."""
    match = re.search(pattern, text)
    assert match is not None, pattern
    return match


SYSTEM = SystemActor("tests")
LIST = "/console/contacts/"


@pytest.fixture
def client() -> Client:
    # English, so assertions read as the source strings.
    return Client(HTTP_ACCEPT_LANGUAGE="en")


def person(unit, *, phone=None, email=None, **attributes):
    keys = []
    if phone:
        keys.append(make_key("phone", phone))
    if email:
        keys.append(make_key("email", email))
    return contact_resolve(
        unit=unit, keys=keys, attributes=attributes, source="import", acting_user=SYSTEM
    ).contact


def crowd(unit, n, *, tags=()):
    """n contacts named P-000…, each with a phone and an email, carrying ``tags``."""
    people = [
        person(
            unit,
            phone=f"1390000{i:04d}",
            email=f"p{i}@example.cn",
            name=f"P-{i:03d}",
            company_name="华澜",
        )
        for i in range(n)
    ]
    if tags:
        tags_add(contact_ids=[p.pk for p in people], tags=tags, source="manual", actor_label="t")
    return people


def names_in(html):
    return re.findall(r'href="/console/contacts/\d+/">([^<]+)</a>', html)


# --- Scope, paging, query count ------------------------------------------------------------


def test_the_list_shows_only_contacts_of_the_users_units_newest_first(world, client):
    crowd(world.a, 3)
    person(world.b, phone="13700137000", name="B-only")
    client.force_login(world.marketer)

    response = client.get(LIST)

    assert response.status_code == 200
    assert names_in(response.text) == ["P-002", "P-001", "P-000"]


def test_the_list_pages_by_cursor_without_counting(world, client):
    crowd(world.a, 60)
    client.force_login(world.marketer)

    first = client.get(LIST)
    next_link = found_in(r'href="\?(cursor=[^"]+)" rel="next"', first.text).group(1)
    second = client.get(f"{LIST}?{next_link}")

    assert names_in(first.text) == [f"P-{i:03d}" for i in range(59, 9, -1)]
    assert names_in(second.text) == [f"P-{i:03d}" for i in range(9, -1, -1)]
    assert 'rel="next"' not in second.text
    assert 'rel="prev"' in second.text


def test_a_forged_cursor_shows_the_first_page_with_a_warning(world, client):
    crowd(world.a, 2)
    client.force_login(world.marketer)

    response = client.get(f"{LIST}?cursor=not-a-cursor")

    assert names_in(response.text) == ["P-001", "P-000"]
    assert "That page link is no longer valid" in response.text


@pytest.mark.parametrize("rows", [3, 60])
def test_the_list_query_count_does_not_grow_with_rows(
    world, client, rows, django_assert_num_queries
):
    vip = Tag.objects.create(unit=world.a, name="VIP")
    expo = Tag.objects.create(unit=world.a, name="展会")
    crowd(world.a, rows, tags=[vip, expo])
    Channel.objects.create(unit=world.a, code="baidu", name="百度", kind="sem")
    CustomField.objects.create(unit=world.a, key="tier", label="客户类型", type="text")
    client.force_login(world.marketer)
    # session, user, the user's units and roles; tags, channels, units and custom fields
    # for the filters; the page; its identities, tags and units; the unit switcher; the bell
    with django_assert_num_queries(13):
        response = client.get(LIST)
    assert len(names_in(response.text)) == min(rows, 50)


def test_the_htmx_request_returns_just_the_rows(world, client):
    crowd(world.a, 2)
    client.force_login(world.marketer)

    response = client.get(LIST, {"q": "P-001"}, HTTP_HX_REQUEST="true")

    assert names_in(response.text) == ["P-001"]
    assert "<html" not in response.text


# --- Search --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "13800138000",
        "+86 138 0013 8000",
        "0086-138-0013-8000",
        "(+86)138.0013.8000",
        "１３８００１３８０００",
    ],
)
def test_search_finds_a_phone_however_it_is_written(world, client, spelling):
    person(world.a, phone="138 0013 8000", name="张伟")
    person(world.a, phone="13800138001", name="李娜")
    client.force_login(world.marketer)

    response = client.get(LIST, {"q": spelling})

    assert names_in(response.text) == ["张伟"]


def test_search_by_email_name_and_company_prefix(world, client):
    person(world.a, email="Zhang.Wei@HuaLan.cn", name="张伟", company_name="华澜科技")
    person(world.a, email="li@other.cn", name="李娜", company_name="澜华")
    client.force_login(world.marketer)

    def found(q):
        return names_in(client.get(LIST, {"q": q}).text)

    assert found(" zhang.wei@hualan.CN ") == ["张伟"]
    assert found("张") == ["张伟"]
    assert found("华澜") == ["张伟"]
    assert found("澜") == ["李娜"]  # a prefix, not "contains"
    assert found("nobody@hualan.cn") == []


def test_search_does_not_find_a_phone_known_only_to_another_unit(world, client):
    person(world.b, phone="13800138000", name="B 的人")
    client.force_login(world.marketer)

    assert names_in(client.get(LIST, {"q": "13800138000"}).text) == []


# --- Filters -------------------------------------------------------------------------------


def test_filters_by_tag_source_unit_and_custom_field(world, client):
    baidu = Channel.objects.create(unit=world.a, code="baidu", name="百度", kind="sem")
    vip = Tag.objects.create(unit=world.a, name="VIP")
    tier = CustomField.objects.create(
        unit=world.a,
        key="tier",
        label="客户类型",
        type="choice",
        options=[{"value": "ka", "label": "大客户"}, {"value": "smb", "label": "中小"}],
    )
    needs = CustomField.objects.create(
        unit=world.a,
        key="needs",
        label="需求",
        type="multi_choice",
        options=[{"value": "lims", "label": "LIMS"}, {"value": "eln", "label": "ELN"}],
    )
    one = person(world.a, phone="13800000001", name="一")
    two = person(world.a, phone="13800000002", name="二")
    three = person(world.a, phone="13800000003", name="三")
    contact_unit_ensure([three.pk], world.b.pk, "import")
    Contact.objects.filter(pk=one.pk).update(
        source_channel=baidu, custom={str(tier.pk): "ka", str(needs.pk): ["eln", "lims"]}
    )
    Contact.objects.filter(pk=two.pk).update(custom={str(tier.pk): "smb", str(needs.pk): ["lims"]})
    tags_add(contact_ids=[two.pk, three.pk], tags=[vip], source="manual", actor_label="t")
    client.force_login(world.group_admin)

    def found(**params):
        return names_in(client.get(LIST, params).text)

    assert found(tag=vip.pk) == ["三", "二"]
    assert found(source=baidu.pk) == ["一"]
    assert found(unit=world.b.pk) == ["三"]
    assert found(field=tier.pk, value="ka") == ["一"]
    assert found(field=tier.pk, value="大客户") == ["一"]  # by the option's label too
    assert found(field=needs.pk, value="LIMS") == ["二", "一"]
    assert found(field=needs.pk, value="eln") == ["一"]
    assert found(tag=vip.pk, field=needs.pk, value="lims") == ["二"]


def test_a_bad_custom_field_value_says_why_and_filters_nothing(world, client):
    tier = CustomField.objects.create(
        unit=world.a, key="tier", label="客户类型", type="choice", options=[{"value": "ka"}]
    )
    person(world.a, phone="13800000001", name="一")
    client.force_login(world.marketer)

    response = client.get(LIST, {"field": tier.pk, "value": "nope"})

    assert "“nope” is not an option of 客户类型" in response.text
    assert names_in(response.text) == ["一"]


def test_filters_offer_and_accept_only_the_users_own_units_tags_and_units(world, client):
    theirs = Tag.objects.create(unit=world.b, name="B-tag")
    b_person = person(world.b, phone="13800000009", name="B 的人")
    tags_add(contact_ids=[b_person.pk], tags=[theirs], source="manual", actor_label="t")
    person(world.a, phone="13800000001", name="一")
    client.force_login(world.marketer)

    page = client.get(LIST)
    by_b_tag = client.get(LIST, {"tag": theirs.pk})
    by_b_unit = client.get(LIST, {"unit": world.b.pk})

    assert "B-tag" not in page.text
    assert "Select a valid choice" in by_b_tag.text
    assert "B 的人" not in by_b_tag.text + by_b_unit.text


# --- What a row shows ----------------------------------------------------------------------


def test_editors_see_phone_and_email_in_full_viewers_masked(world, client):
    vip = Tag.objects.create(unit=world.a, name="VIP")
    p = person(world.a, phone="13800138000", email="zhang.wei@hualan.cn", name="张伟")
    tags_add(contact_ids=[p.pk], tags=[vip], source="manual", actor_label="t")

    client.force_login(world.marketer)
    full = client.get(LIST).text
    client.force_login(world.viewer)
    masked = client.get(LIST).text

    assert ("138 0013 8000" in full, "zhang.wei@hualan.cn" in full) == (True, True)
    assert ("138****8000" in masked, "z***@hualan.cn" in masked) == (True, True)
    assert "13800138000" not in masked
    assert "zhang.wei" not in masked
    assert ">VIP<" in full
    assert ">VIP<" in masked


def test_tags_of_another_unit_are_not_shown_on_a_shared_contact(world, client):
    theirs = Tag.objects.create(unit=world.b, name="B-secret-tag")
    p = person(world.a, phone="13800138000", name="共享")
    contact_unit_ensure([p.pk], world.b.pk, "import")
    tags_add(contact_ids=[p.pk], tags=[theirs], source="manual", actor_label="t")
    client.force_login(world.marketer)

    response = client.get(LIST)

    assert names_in(response.text) == ["共享"]
    assert "B-secret-tag" not in response.text
    assert "B 事业部" not in response.text  # nor the other unit's name


def test_the_empty_list_says_how_contacts_arrive(world, client):
    client.force_login(world.marketer)

    response = client.get(LIST)

    assert "No contacts yet" in response.text
    assert "Import a spreadsheet" in response.text


# --- Bulk tag ------------------------------------------------------------------------------


def _tagged(tag):
    return set(ContactTag.objects.filter(tag=tag).values_list("contact_id", flat=True))


def test_bulk_tag_adds_the_tag_to_exactly_the_ticked_contacts(world, client):
    vip = Tag.objects.create(unit=world.a, name="VIP")
    one, _two, three = crowd(world.a, 3)
    client.force_login(world.marketer)

    response = client.post(
        "/console/contacts/bulk-tag/",
        {"add_tag": vip.pk, "scope": "selected", "ids": [one.pk, three.pk], "q": "P-"},
    )

    assert response.status_code == 302
    assert response["Location"] == "/console/contacts/?q=P-"
    assert _tagged(vip) == {one.pk, three.pk}
    assert list(TagHistory.objects.filter(tag=vip).values_list("source", "actor_label")) == [
        ("manual", "a-marketer"),
        ("manual", "a-marketer"),
    ]
    assert AuditLog.objects.get(action="contact.tags_bulk_add").after == {
        "tag": "VIP",
        "added": 2,
        "scope": "selected",
    }


def test_bulk_tag_ignores_an_id_of_another_units_contact(world, client):
    vip = Tag.objects.create(unit=world.a, name="VIP")
    mine = person(world.a, phone="13800000001")
    theirs = person(world.b, phone="13800000002")
    client.force_login(world.marketer)

    client.post(
        "/console/contacts/bulk-tag/",
        {"add_tag": vip.pk, "scope": "selected", "ids": [mine.pk, theirs.pk, 999_999]},
    )

    assert _tagged(vip) == {mine.pk}


def test_bulk_tag_with_another_units_tag_changes_nothing(world, client):
    theirs = Tag.objects.create(unit=world.b, name="B-tag")
    mine = person(world.a, phone="13800000001")
    client.force_login(world.marketer)

    response = client.post(
        "/console/contacts/bulk-tag/",
        {"add_tag": theirs.pk, "scope": "selected", "ids": [mine.pk]},
        follow=True,
    )

    assert _tagged(theirs) == set()
    assert "Select a valid choice" in response.text


def test_viewers_cannot_bulk_tag(world, client):
    vip = Tag.objects.create(unit=world.a, name="VIP")
    mine = person(world.a, phone="13800000001")
    client.force_login(world.viewer)

    response = client.post(
        "/console/contacts/bulk-tag/", {"add_tag": vip.pk, "scope": "selected", "ids": [mine.pk]}
    )

    assert response.status_code == 403
    assert _tagged(vip) == set()
    assert 'name="ids"' not in client.get(LIST).text  # no checkboxes either


def test_tag_all_matching_asks_first_then_tags_exactly_the_filtered_contacts(world, client):
    vip = Tag.objects.create(unit=world.a, name="VIP")
    hualan = crowd(world.a, 3)
    other = person(world.a, phone="13800000001", name="别家", company_name="别家公司")
    b_hualan = person(world.b, phone="13800000002", name="华澜-B", company_name="华澜")
    client.force_login(world.marketer)
    form = {"add_tag": vip.pk, "scope": "matching", "q": "华澜"}

    asked = client.post("/console/contacts/bulk-tag/", form)

    assert asked.status_code == 200
    assert "to the 3 contacts that match the filter" in asked.text
    assert _tagged(vip) == set()

    done = client.post("/console/contacts/bulk-tag/", {**form, "confirmed": "on"}, follow=True)

    assert _tagged(vip) == {p.pk for p in hualan}
    assert other.pk not in _tagged(vip)
    assert b_hualan.pk not in _tagged(vip)
    assert "Tag “VIP” added to 3 contacts." in done.text


def test_bulk_tag_walks_large_selections_in_chunks(world, client, monkeypatch):
    from apps.contacts.views import contacts as views

    monkeypatch.setattr(views, "BULK_CHUNK", 2)
    vip = Tag.objects.create(unit=world.a, name="VIP")
    people = crowd(world.a, 5)
    client.force_login(world.marketer)

    client.post(
        "/console/contacts/bulk-tag/", {"add_tag": vip.pk, "scope": "matching", "confirmed": "on"}
    )

    assert _tagged(vip) == {p.pk for p in people}


def test_selecting_nothing_says_so(world, client):
    vip = Tag.objects.create(unit=world.a, name="VIP")
    crowd(world.a, 1)
    client.force_login(world.marketer)

    response = client.post(
        "/console/contacts/bulk-tag/", {"add_tag": vip.pk, "scope": "selected"}, follow=True
    )

    assert "Tick the contacts to tag first." in response.text
    assert _tagged(vip) == set()


# --- Home cards ----------------------------------------------------------------------------


def test_home_cards_count_contacts_new_ones_and_reachable_ones(world, client):
    crowd(world.a, 2)
    old = person(world.a, email="old@example.cn", name="老朋友")
    Contact.objects.filter(pk=old.pk).update(first_seen_at=timezone.now() - timedelta(days=30))
    person(world.b, phone="13700137000")
    client.force_login(world.marketer)

    text = client.get("/console/").text

    def card(title):
        block = text.split(title, 1)[1]
        return found_in(r'<p class="value">([^<]+)</p>', block).group(1)

    assert card("Contacts in your units") == "3"
    assert card("New contacts this week") == "2"
    assert card("Reachable by phone or WeChat") == "2"


def test_the_home_card_tells_a_new_unit_how_to_get_contacts(world, client):
    client.force_login(world.marketer)

    text = client.get("/console/").text

    assert "Contacts in your units" in text
    assert "No contacts yet. Import a spreadsheet" in text
    assert "New contacts this week" not in text


def test_identity_rows_of_other_kinds_are_not_in_the_list(world, client):
    p = person(world.a, phone="13800138000", name="张伟")
    Identity.objects.create(
        group=world.group, contact=p, kind="wechat_openid", scope="wxAPP", value="oSECRET"
    )
    client.force_login(world.marketer)

    assert "oSECRET" not in client.get(LIST).text


def test_tag_all_matching_a_tag_filter_adds_another_tag(world, client):
    vip, expo = (
        Tag.objects.create(unit=world.a, name="VIP"),
        Tag.objects.create(unit=world.a, name="展会"),
    )
    one, two, _three = crowd(world.a, 3)
    tags_add(contact_ids=[one.pk, two.pk], tags=[vip], source="manual", actor_label="t")
    client.force_login(world.marketer)

    response = client.post(
        "/console/contacts/bulk-tag/",
        {"add_tag": expo.pk, "scope": "matching", "tag": vip.pk, "confirmed": "on"},
    )

    assert response["Location"] == f"/console/contacts/?tag={vip.pk}"
    assert _tagged(expo) == {one.pk, two.pk}


def test_the_unit_switcher_narrows_the_list(world, client):
    person(world.a, phone="13800000001", name="A 的人")
    person(world.b, phone="13800000002", name="B 的人")
    client.force_login(world.group_admin)
    everyone = names_in(client.get(LIST).text)

    client.post("/unit/", {"unit": world.b.pk, "next": LIST})

    assert everyone == ["B 的人", "A 的人"]
    assert names_in(client.get(LIST).text) == ["B 的人"]
