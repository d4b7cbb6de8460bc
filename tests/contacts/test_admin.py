"""Admin for the contacts models: everything registered, scoped to the admin's units."""

from __future__ import annotations

import html
import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.utils import timezone

from apps.contacts.identity_keys import make_key
from apps.contacts.models import (
    Activity,
    ConsentState,
    Contact,
    ContactMerge,
    ContactTag,
    Tag,
    TagHistory,
)
from apps.contacts.services.consent import consent_record
from apps.contacts.services.merge import contact_merge
from apps.contacts.services.resolution import contact_resolve
from apps.contacts.services.tags import tags_add
from apps.core.models import AuditLog
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")
CONTACTS = "/admin/contacts/contact/"


@pytest.fixture
def client() -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="en")


def person(unit, phone, **attributes):
    return contact_resolve(
        unit=unit,
        keys=[make_key("phone", phone)],
        attributes=attributes,
        source="import",
        acting_user=SYSTEM,
    ).contact


def messages_in(text):
    return [html.unescape(m) for m in re.findall(r'<li class="[^"]*">([^<]+)</li>', text)]


def test_every_contacts_model_is_registered_with_list_display_and_search():
    models = apps.get_app_config("contacts").get_models()
    for model in models:
        assert model in admin.site._registry, f"{model.__name__} is not in the admin"
        model_admin = admin.site._registry[model]
        assert model_admin.list_display != ("__str__",), model.__name__
        assert model_admin.search_fields, model.__name__


def test_every_contacts_list_opens_for_a_unit_admin(world, client):
    p = person(world.a, "13800138000", name="张伟")
    consent_record(contact=p, unit=world.a, channel="email", granted=True, source="form")
    client.force_login(world.admin)

    for model in apps.get_app_config("contacts").get_models():
        url = f"/admin/contacts/{model._meta.model_name}/"
        assert client.get(url).status_code == 200, url
        assert client.get(url, {"q": "13800138000"}).status_code == 200, url


def test_a_unit_admin_sees_only_their_units_contacts(world, client):
    mine = person(world.a, "13800000001", name="A-person")
    theirs = person(world.b, "13800000002", name="B-person")
    client.force_login(world.admin)

    listing = client.get(CONTACTS)

    assert "A-person" in listing.text
    assert "B-person" not in listing.text
    assert client.get(f"{CONTACTS}{mine.pk}/change/").status_code == 200
    assert client.get(f"{CONTACTS}{theirs.pk}/change/").status_code == 404


def test_contacts_are_found_by_phone_in_any_spelling_and_by_id(world, client):
    zhang = person(world.a, "13800138000", name="张伟")
    person(world.a, "13800138001", name="李娜")
    client.force_login(world.admin)

    by_phone = client.get(CONTACTS, {"q": "+86 138-0013-8000"})
    by_id = client.get(CONTACTS, {"q": f"#{zhang.pk}"})
    by_name = client.get(CONTACTS, {"q": "李"})

    assert ("张伟" in by_phone.text, "李娜" in by_phone.text) == (True, False)
    assert ("张伟" in by_id.text, "李娜" in by_id.text) == (True, False)
    assert ("张伟" in by_name.text, "李娜" in by_name.text) == (False, True)


def test_editing_a_contact_is_audited_and_wins_over_older_imports(world, client):
    zhang = person(world.a, "13800138000", name="张伟", city="上海")
    client.force_login(world.admin)
    form = client.get(f"{CONTACTS}{zhang.pk}/change/")
    data = dict(re.findall(r'<input type="\w+" name="([\w-]+)" value="([^"]*)"', form.text))
    data.update({"name": "张伟", "city": "北京", "title": "", "department": ""})
    data.update({"company_name": "", "province": "", "industry": "", "source_channel": ""})

    response = client.post(f"{CONTACTS}{zhang.pk}/change/", data)

    assert response.status_code == 302, response.text[:2000]
    zhang.refresh_from_db()
    assert zhang.city == "北京"
    assert zhang.field_sources["city"]["source"] == "admin"
    entry = AuditLog.objects.get(action="contact.change")
    assert (entry.before, entry.after) == ({"city": "上海"}, {"city": "北京"})


def test_history_tables_are_read_only(world, client):
    p = person(world.a, "13800138000")
    activity = Activity.objects.create(
        unit=world.a, contact=p, type="page_view", occurred_at=timezone.now()
    )
    client.force_login(world.admin)

    page = client.get(f"/admin/contacts/activity/{activity.pk}/change/")
    posted = client.post(f"/admin/contacts/activity/{activity.pk}/change/", {"type": "forged"})

    assert page.status_code == 200
    assert 'name="type"' not in page.text
    assert posted.status_code == 403
    assert Activity.objects.get(pk=activity.pk).type == "page_view"
    assert client.get("/admin/contacts/activity/add/").status_code == 403
    assert client.get(f"/admin/contacts/activity/{activity.pk}/delete/").status_code == 403


def test_derived_rows_follow_their_contact(world, client):
    mine = person(world.a, "13800000001")
    theirs = person(world.b, "13800000002")
    consent_record(contact=mine, unit=world.a, channel="email", granted=True, source="form")
    consent_record(contact=theirs, unit=world.b, channel="sms", granted=True, source="form")
    client.force_login(world.admin)

    listing = client.get("/admin/contacts/consentstate/")
    theirs_state = ConsentState.objects.get(contact=theirs)

    shown = {
        int(pk) for pk in re.findall(r"/admin/contacts/consentstate/(\d+)/change/", listing.text)
    }
    assert shown == {ConsentState.objects.get(contact=mine).pk}
    assert client.get(f"/admin/contacts/consentstate/{theirs_state.pk}/change/").status_code == 404


def test_merges_are_undone_with_the_admin_action_newest_first(world, client):
    kept = person(world.a, "13800000001")
    first_drop = person(world.a, "13800000002")
    second_drop = person(world.a, "13800000003")
    first = contact_merge(kept=kept, dropped=first_drop, acting_user=SYSTEM)
    second = contact_merge(kept=kept, dropped=second_drop, acting_user=SYSTEM)
    client.force_login(world.admin)

    response = client.post(
        "/admin/contacts/contactmerge/",
        {"action": "undo_merges", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )

    assert "2 merges undone." in messages_in(response.text)
    assert set(Contact.objects.values_list("status", flat=True)) == {"active"}
    assert ContactMerge.objects.filter(undone_by="a-admin").count() == 2


def test_the_undo_action_reports_why_a_merge_stays(world, client):
    kept = person(world.a, "13800000001")
    first_drop = person(world.a, "13800000002")
    second_drop = person(world.a, "13800000003")
    first = contact_merge(kept=kept, dropped=first_drop, acting_user=SYSTEM)
    second = contact_merge(kept=kept, dropped=second_drop, acting_user=SYSTEM)
    client.force_login(world.admin)

    response = client.post(
        "/admin/contacts/contactmerge/",
        {"action": "undo_merges", "_selected_action": [first.pk]},
        follow=True,
    )

    assert messages_in(response.text) == [
        f"Merge #{first.pk} was not undone: Contact #{kept.pk} took part in a later merge "
        f"(#{second.pk}); undo that first."
    ]
    assert ContactMerge.objects.filter(undone_at__isnull=True).count() == 2


def test_a_unit_admin_cannot_undo_another_units_merge(world, client):
    kept = person(world.b, "13800000001")
    dropped = person(world.b, "13800000002")
    merge = contact_merge(kept=kept, dropped=dropped, acting_user=SYSTEM)
    client.force_login(world.admin)

    client.post(
        "/admin/contacts/contactmerge/",
        {"action": "undo_merges", "_selected_action": [merge.pk]},
    )

    assert ContactMerge.objects.get().undone_at is None


def test_removing_tags_in_the_admin_keeps_their_history(world, client):
    vip = Tag.objects.create(unit=world.a, name="VIP")
    one, two = person(world.a, "13800000001"), person(world.a, "13800000002")
    tags_add(contact_ids=[one.pk, two.pk], tags=[vip], source="manual", actor_label="t")
    row = ContactTag.objects.get(contact=one)
    client.force_login(world.admin)

    client.post(
        "/admin/contacts/contacttag/",
        {"action": "remove_tags", "_selected_action": [row.pk]},
    )

    assert list(ContactTag.objects.values_list("contact_id", flat=True)) == [two.pk]
    assert TagHistory.objects.filter(action="removed").values_list(
        "contact_id", "source", "actor_label"
    ).get() == (one.pk, "admin", "a-admin")


def test_configuration_changes_are_audited(world, client):
    client.force_login(world.admin)

    response = client.post(
        "/admin/contacts/channel/add/",
        {"unit": world.a.pk, "code": "baidu", "name": "百度", "kind": "sem", "is_active": "on"},
    )

    assert response.status_code == 302
    entry = AuditLog.objects.get(action="channel.create")
    assert (entry.unit_id, (entry.after or {})["name"]) == (world.a.pk, "百度")


def test_the_unit_filter_lists_only_the_admins_units(world, client):
    from apps.core.models import BusinessUnit
    from tests.factories import member

    c = BusinessUnit.objects.create(code="acme-c", name="C 事业部", parent=world.group)
    member(world.admin, c, "admin")
    client.force_login(world.admin)

    text = client.get("/admin/contacts/channel/").text

    assert ("A 事业部" in text, "C 事业部" in text, "B 事业部" in text) == (True, True, False)
