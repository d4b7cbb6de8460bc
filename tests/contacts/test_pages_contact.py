"""The contact 360 page: what it shows, who may see it, tags, merge and undo."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.contacts.identity_keys import make_key
from apps.contacts.models import (
    Activity,
    Channel,
    Contact,
    ContactMerge,
    ContactTag,
    CustomField,
    Identity,
    Tag,
    TagHistory,
)
from apps.contacts.services.consent import consent_record
from apps.contacts.services.merge import contact_merge
from apps.contacts.services.resolution import contact_resolve, contact_unit_ensure
from apps.contacts.services.tags import tags_add
from apps.core.models import AuditLog
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")


@pytest.fixture
def client() -> Client:
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


def page(contact):
    return f"/console/contacts/{contact.pk}/"


def messages_in(text):
    return [html.unescape(m) for m in re.findall(r'<p class="msg [^"]*">([^<]+)</p>', text)]


def timeline_in(text):
    return re.findall(r'<span class="what" title="([^"]+)">', text)


@pytest.fixture
def zhang(world):
    """A contact with a bit of everything, known to unit A."""
    p = person(
        world.a,
        phone="13800138000",
        email="zhang.wei@hualan.cn",
        name="张伟",
        title="采购经理",
        company_name="华澜科技",
        city="上海",
    )
    tier = CustomField.objects.create(
        unit=world.a,
        key="tier",
        label="客户类型",
        type="choice",
        options=[{"value": "ka", "label": "大客户"}],
    )
    Contact.objects.filter(pk=p.pk).update(custom={str(tier.pk): "ka"})
    vip = Tag.objects.create(unit=world.a, name="VIP")
    Tag.objects.create(unit=world.a, name="展会-2026")
    tags_add(contact_ids=[p.pk], tags=[vip], source="manual", actor_label="t")
    consent_record(contact=p, unit=world.a, channel="email", granted=True, source="form")
    p.refresh_from_db()
    return p


def test_the_360_page_shows_identities_attributes_tags_consent_and_timeline(world, client, zhang):
    baidu = Channel.objects.create(unit=world.a, code="baidu", name="百度", kind="sem")
    Activity.objects.create(
        unit=world.a,
        contact=zhang,
        type="content_view",
        channel=baidu,
        occurred_at=timezone.now(),
        properties={"title": "LIMS 白皮书", "seconds": 95},
    )
    client.force_login(world.marketer)

    text = client.get(page(zhang)).text

    for shown in (
        "<h1>张伟</h1>",
        "采购经理",
        "华澜科技",
        "Mobile phone",
        "138 0013 8000",
        "zhang.wei@hualan.cn",
        "客户类型</dt><dd>大客户",
        ">VIP<",
        "may contact",
        "Viewed content",
        "百度",
        "LIMS 白皮书",
        "1′35″",
        "A 事业部",
        "This contact has not been merged with anyone.",
    ):
        assert shown in text, shown
    # the tag it carries is not offered again; the one it lacks is
    assert '<option value="' in text
    assert "展会-2026</option>" in text
    assert "VIP</option>" not in text


def test_a_viewer_sees_keys_masked_and_no_edit_controls(world, client, zhang):
    client.force_login(world.viewer)

    text = client.get(page(zhang)).text

    assert "138****8000" in text
    assert "z***@hualan.cn" in text
    assert "13800138000" not in text
    assert "zhang.wei@" not in text
    assert "Add tag" not in text
    assert "Compare…" not in text


@pytest.mark.parametrize("rows", [3, 60])
def test_the_360_page_query_count_does_not_grow_with_rows(
    world, client, rows, django_assert_num_queries
):
    p = person(world.a, phone="13800138000", name="张伟")
    other = person(world.a, phone="13800138001")
    contact_merge(kept=p, dropped=other, acting_user=SYSTEM)
    tags = [Tag.objects.create(unit=world.a, name=f"T{i}") for i in range(rows)]
    tags_add(contact_ids=[p.pk], tags=tags[: rows // 2], source="manual", actor_label="t")
    fields = [
        CustomField.objects.create(unit=world.a, key=f"f{i}", label=f"F{i}", type="text")
        for i in range(rows)
    ]
    Contact.objects.filter(pk=p.pk).update(custom={str(f.pk): "x" for f in fields})
    Identity.objects.bulk_create(
        [
            Identity(group=world.group, contact=p, kind="anonymous", value=f"anon-{i}")
            for i in range(rows)
        ]
    )
    channel = Channel.objects.create(unit=world.a, code="c", name="C", kind="sem")
    now = timezone.now()
    Activity.objects.bulk_create(
        [
            Activity(
                unit=world.a,
                contact=p,
                type="page_view",
                channel=channel,
                occurred_at=now - timedelta(minutes=i),
            )
            for i in range(rows)
        ]
    )
    for i in range(rows):
        consent_record(contact=p, unit=world.a, channel="email", granted=i % 2 == 0, source="form")
    client.force_login(world.marketer)
    # session, user, units and roles; contact; units; identities; custom fields; tags;
    # tags to add; consent; consent history; merges; later merges; timeline channels;
    # the timeline page; the unit switcher; the bell's unread count; panels registered by
    # higher apps (nurture's scores: 1 query, 2 once the contact has scores)
    # (+1: the leads panel sales adds to the page)
    with django_assert_num_queries(19):
        response = client.get(page(p))
    assert response.status_code == 200


def test_a_contact_of_another_unit_is_404_on_every_url(world, client, zhang):
    vip = Tag.objects.get(name="VIP")
    client.force_login(world.b_marketer)

    assert client.get(page(zhang)).status_code == 404
    assert client.get(page(zhang) + "timeline/", HTTP_HX_REQUEST="true").status_code == 404
    assert client.post(page(zhang) + "tags/", {"tag": vip.pk}).status_code == 404
    assert client.post(page(zhang) + f"tags/{vip.pk}/remove/").status_code == 404
    assert client.get(page(zhang) + "merge/").status_code == 404
    assert client.get("/console/contacts/999999/").status_code == 404
    assert list(ContactTag.objects.filter(contact=zhang).values_list("tag__name", flat=True)) == [
        "VIP"
    ]


def test_activities_of_other_units_are_not_on_the_timeline(world, client, zhang):
    contact_unit_ensure([zhang.pk], world.b.pk, "event")
    now = timezone.now()
    Activity.objects.create(unit=world.a, contact=zhang, type="page_view", occurred_at=now)
    Activity.objects.create(unit=world.b, contact=zhang, type="event_attend", occurred_at=now)
    client.force_login(world.marketer)

    text = client.get(page(zhang)).text

    assert timeline_in(text) == ["page_view"]


# --- Tags on the 360 page ------------------------------------------------------------------


def test_adding_and_removing_a_tag_rerenders_the_tags(world, client, zhang):
    expo = Tag.objects.get(name="展会-2026")
    vip = Tag.objects.get(name="VIP")
    client.force_login(world.marketer)

    added = client.post(page(zhang) + "tags/", {"tag": expo.pk}, HTTP_HX_REQUEST="true")
    removed = client.post(page(zhang) + f"tags/{vip.pk}/remove/", HTTP_HX_REQUEST="true")

    assert added.status_code == 200
    assert 'id="contact-tags"' in added.text
    assert "展会-2026" in added.text
    assert "<html" not in added.text
    assert list(ContactTag.objects.filter(contact=zhang).values_list("tag__name", flat=True)) == [
        "展会-2026"
    ]
    assert "VIP</option>" in removed.text  # offered again
    assert list(
        TagHistory.objects.filter(contact=zhang).order_by("id").values_list("action", "source")
    ) == [("added", "manual"), ("added", "manual"), ("removed", "manual")]


def test_a_viewer_cannot_change_tags(world, client, zhang):
    expo = Tag.objects.get(name="展会-2026")
    client.force_login(world.viewer)

    assert client.post(page(zhang) + "tags/", {"tag": expo.pk}).status_code == 404
    assert ContactTag.objects.filter(contact=zhang, tag=expo).count() == 0


def test_another_units_tag_cannot_be_added(world, client, zhang):
    theirs = Tag.objects.create(unit=world.b, name="B-tag")
    client.force_login(world.marketer)

    response = client.post(page(zhang) + "tags/", {"tag": theirs.pk}, follow=True)

    assert "Choose one of your units' tags to add." in messages_in(response.text)
    assert ContactTag.objects.filter(contact=zhang, tag=theirs).count() == 0


# --- Merges --------------------------------------------------------------------------------


def test_a_merged_contacts_url_redirects_to_the_survivor(world, client):
    kept = person(world.a, phone="13800000001", name="留")
    dropped = person(world.a, phone="13800000002", name="并")
    contact_merge(kept=kept, dropped=dropped, acting_user=SYSTEM)
    client.force_login(world.marketer)

    response = client.get(page(dropped))
    followed = client.get(page(dropped), follow=True)

    assert response.status_code == 302
    assert response["Location"] == page(kept)
    assert f"Contact #{dropped.pk} was merged into this contact" in followed.text


def test_a_merged_contacts_url_is_404_when_the_survivor_is_not_visible(world, client):
    kept = person(world.b, phone="13800000001")
    dropped = person(world.b, phone="13800000002")
    contact_merge(kept=kept, dropped=dropped, acting_user=SYSTEM)
    client.force_login(world.marketer)

    assert client.get(page(dropped)).status_code == 404


def test_undo_from_the_page_restores_the_dropped_contact(world, client):
    kept = person(world.a, phone="13800000001", name="留")
    dropped = person(world.a, email="drop@example.cn", name="并")
    merge = contact_merge(kept=kept, dropped=dropped, acting_user=SYSTEM)
    client.force_login(world.marketer)
    assert f"/console/contacts/merges/{merge.pk}/undo/" in client.get(page(kept)).text

    response = client.post(f"/console/contacts/merges/{merge.pk}/undo/", follow=True)

    dropped.refresh_from_db()
    assert (dropped.status, dropped.merged_into_id) == ("active", None)
    assert list(Identity.objects.filter(contact=dropped).values_list("value", flat=True)) == [
        "drop@example.cn"
    ]
    assert f"Merge undone: contact #{dropped.pk} is a separate contact again." in messages_in(
        response.text
    )
    assert ContactMerge.objects.get().undone_by == "a-marketer"
    assert AuditLog.objects.filter(action="contact.merge_undo").count() == 1


def test_undo_out_of_order_is_refused_with_the_reason(world, client):
    kept = person(world.a, phone="13800000001")
    first_drop = person(world.a, phone="13800000002")
    second_drop = person(world.a, phone="13800000003")
    first = contact_merge(kept=kept, dropped=first_drop, acting_user=SYSTEM)
    second = contact_merge(kept=kept, dropped=second_drop, acting_user=SYSTEM)
    client.force_login(world.marketer)
    reason = f"Contact #{kept.pk} took part in a later merge (#{second.pk}); undo that first."

    shown = client.get(page(kept)).text
    response = client.post(f"/console/contacts/merges/{first.pk}/undo/", follow=True)

    # the page offers undo for the newer merge only, and says why not for the older one
    assert f"merges/{second.pk}/undo/" in shown
    assert f"merges/{first.pk}/undo/" not in shown
    assert reason in shown
    assert reason in messages_in(response.text)
    first_drop.refresh_from_db()
    assert first_drop.status == "merged"
    assert ContactMerge.objects.filter(undone_at__isnull=True).count() == 2


def test_undo_needs_the_merge_permission_and_a_visible_merge(world, client):
    kept = person(world.a, phone="13800000001")
    dropped = person(world.a, phone="13800000002")
    merge = contact_merge(kept=kept, dropped=dropped, acting_user=SYSTEM)

    client.force_login(world.viewer)  # sees contacts, does not merge them
    assert client.post(f"/console/contacts/merges/{merge.pk}/undo/").status_code == 404
    client.force_login(world.b_marketer)
    assert client.post(f"/console/contacts/merges/{merge.pk}/undo/").status_code == 404
    assert ContactMerge.objects.get().undone_at is None


def test_merge_by_hand_finds_compares_and_merges(world, client):
    this = person(world.a, phone="13800000001", name="甲")
    other = person(world.a, email="yi@example.cn", name="乙", city="北京")
    client.force_login(world.marketer)

    compare = client.get(page(this) + "merge/", {"other": "YI@example.cn"})
    not_found = client.get(page(this) + "merge/", {"other": "nobody@example.cn"})
    merged = client.post(
        page(this) + "merge/",
        {"other": other.pk, "keep": "this", "reason": "同一个人"},
        follow=True,
    )

    assert compare.status_code == 200
    assert "乙" in compare.text
    assert "北京" in compare.text
    assert "Which contact survives?" in compare.text
    assert not_found.status_code == 400
    assert "No other active contact you may merge matches" in not_found.text
    other.refresh_from_db()
    assert (other.status, other.merged_into_id) == ("merged", this.pk)
    assert ContactMerge.objects.get().reason == "同一个人"
    assert merged.redirect_chain[-1][0] == page(this)
    assert "yi@example.cn" in merged.text


def test_merge_by_hand_can_keep_the_other_contact(world, client):
    this = person(world.a, phone="13800000001")
    other = person(world.a, phone="13800000002")
    client.force_login(world.marketer)

    response = client.post(page(this) + "merge/", {"other": other.pk, "keep": "other"})

    this.refresh_from_db()
    assert (this.status, this.merged_into_id) == ("merged", other.pk)
    assert response["Location"] == page(other)


def test_merge_by_hand_refuses_a_contact_of_another_unit(world, client):
    this = person(world.a, phone="13800000001")
    theirs = person(world.b, phone="13800000002")
    client.force_login(world.marketer)

    compare = client.get(page(this) + "merge/", {"other": str(theirs.pk)})
    forced = client.post(page(this) + "merge/", {"other": theirs.pk, "keep": "this"})

    assert compare.status_code == 400
    assert forced.status_code == 404
    assert ContactMerge.objects.count() == 0


def test_merge_by_hand_is_403_without_the_merge_permission(world, client):
    this = person(world.a, phone="13800000001")
    client.force_login(world.viewer)

    assert client.get(page(this) + "merge/").status_code == 403


def test_a_merge_whose_person_was_erased_offers_no_undo(world, client):
    kept = person(world.a, phone="13800000001")
    dropped = person(world.a, phone="13800000002")
    merge = contact_merge(kept=kept, dropped=dropped, acting_user=SYSTEM)
    ContactMerge.objects.filter(pk=merge.pk).update(snapshot={"erased_at": "2026-11-30"})
    client.force_login(world.marketer)

    text = client.get(page(kept)).text

    assert "The person was erased; this merge can no longer be undone." in text
    assert f"merges/{merge.pk}/undo/" not in text
