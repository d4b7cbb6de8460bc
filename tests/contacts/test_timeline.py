"""A contact's timeline: newest first, keyset pages, filters, scope and labels."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.contacts.identity_keys import make_key
from apps.contacts.models import Activity, Channel
from apps.contacts.selectors.timeline import (
    activity_label,
    contact_timeline,
    key_properties,
    timeline_entries,
)
from apps.contacts.services.resolution import contact_resolve, contact_unit_ensure
from apps.core.pagination import InvalidCursor
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db


def found_in(pattern, text):
    """The regex match, failing the test when there is none."""
    match = re.search(pattern, text)
    assert match is not None, pattern
    return match


SYSTEM = SystemActor("tests")


@pytest.fixture
def client() -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def contact(world):
    return contact_resolve(
        unit=world.a,
        keys=[make_key("phone", "13800138000")],
        attributes={"name": "张伟"},
        source="import",
        acting_user=SYSTEM,
    ).contact


@pytest.fixture
def history(world, contact):
    """35 activities, one a minute; every 5th an email open from the email channel; two
    share the newest timestamp (ties are broken by id)."""
    email = Channel.objects.create(unit=world.a, code="edm", name="EDM", kind="email")
    now = timezone.now().replace(microsecond=0)
    rows = []
    for i in range(35):
        is_email = i % 5 == 0
        rows.append(
            Activity(
                unit=world.a,
                contact=contact,
                type="email_open" if is_email else "page_view",
                channel=email if is_email else None,
                occurred_at=now - timedelta(minutes=max(i - 1, 0)),
                object_id=f"n{i:02d}",
            )
        )
    Activity.objects.bulk_create(rows)
    # object_id n00 and n01 share a timestamp; n01 has the higher id, so it comes first
    return email


def ids(page):
    return [a.object_id for a in page.items]


def test_the_timeline_is_newest_first_in_keyset_pages(world, contact, history):
    first = contact_timeline(user=world.marketer, contact=contact)
    second = contact_timeline(user=world.marketer, contact=contact, cursor=first.next_cursor)

    assert ids(first) == ["n01", "n00", *[f"n{i:02d}" for i in range(2, 30)]]
    assert ids(second) == [f"n{i:02d}" for i in range(30, 35)]
    assert second.next_cursor is None


def test_the_timeline_filters_by_type_and_channel(world, contact, history):
    by_type = contact_timeline(user=world.marketer, contact=contact, types=["email_open"])
    by_channel = contact_timeline(user=world.marketer, contact=contact, channel_id=history.pk)
    both = contact_timeline(
        user=world.marketer, contact=contact, types=["page_view"], channel_id=history.pk
    )
    several = contact_timeline(
        user=world.marketer, contact=contact, types=["email_open", "page_view"], size=100
    )

    assert ids(by_type) == ["n00", "n05", "n10", "n15", "n20", "n25", "n30"]
    assert ids(by_channel) == ids(by_type)
    assert ids(both) == []
    assert len(several.items) == 35


def test_filtered_pages_follow_on_exactly(world, contact, history):
    first = contact_timeline(user=world.marketer, contact=contact, types=["email_open"], size=3)
    second = contact_timeline(
        user=world.marketer,
        contact=contact,
        types=["email_open"],
        size=3,
        cursor=first.next_cursor,
    )

    assert (ids(first), ids(second)) == (["n00", "n05", "n10"], ["n15", "n20", "n25"])


def test_a_bad_cursor_is_refused(world, contact):
    with pytest.raises(InvalidCursor):
        contact_timeline(user=world.marketer, contact=contact, cursor="garbage")


def test_activities_of_units_the_user_cannot_see_are_left_out(world, contact):
    contact_unit_ensure([contact.pk], world.b.pk, "event")
    now = timezone.now()
    Activity.objects.create(
        unit=world.a, contact=contact, type="page_view", occurred_at=now, object_id="a"
    )
    Activity.objects.create(
        unit=world.b, contact=contact, type="event_attend", occurred_at=now, object_id="b"
    )

    assert ids(contact_timeline(user=world.marketer, contact=contact)) == ["a"]
    assert ids(contact_timeline(user=world.b_marketer, contact=contact)) == ["b"]
    assert ids(contact_timeline(user=world.group_admin, contact=contact)) == ["b", "a"]


def test_labels_for_known_types_and_the_raw_type_otherwise(world, contact):
    from django.utils import translation

    with translation.override("en"):
        assert activity_label("form_submit") == "Submitted a form"
        assert activity_label("crm_stage_change") == "crm_stage_change"
        assert key_properties(
            {"url": "/pricing", "seconds": 125, "utm": "x", "title": "", "note": "回电"}
        ) == [("Page", "/pricing"), ("Time spent", "2′05″"), ("Note", "回电")]
        assert key_properties({"seconds": "n/a"}) == [("Time spent", "n/a")]
        assert key_properties(None) == []


def test_entries_carry_label_and_properties(world, contact):
    Activity.objects.create(
        unit=world.a,
        contact=contact,
        type="download",
        occurred_at=timezone.now(),
        properties={"title": "选型指南.pdf"},
    )

    [entry] = timeline_entries(contact_timeline(user=world.marketer, contact=contact))

    assert (entry.activity.type, entry.properties[0][1]) == ("download", "选型指南.pdf")


# --- The partial on the 360 page -----------------------------------------------------------


def what(text):
    return re.findall(r'<span class="what" title="[^"]+">([^<]+)</span>', text)


def test_load_more_returns_the_next_items_and_a_new_button(world, client, contact, history):
    client.force_login(world.marketer)
    page = client.get(f"/console/contacts/{contact.pk}/")
    more = found_in(r'hx-get="([^"]+cursor=[^"]+)"', page.text).group(1).replace("&amp;", "&")

    response = client.get(more, HTTP_HX_REQUEST="true")

    assert len(what(page.text)) == 30
    assert len(what(response.text)) == 5
    assert "<ol" not in response.text
    assert "<html" not in response.text
    assert "Load older activity" not in response.text


def test_the_filter_rerenders_the_list(world, client, contact, history):
    client.force_login(world.marketer)

    response = client.get(
        f"/console/contacts/{contact.pk}/timeline/",
        {"type": "email_open", "channel": history.pk},
        HTTP_HX_REQUEST="true",
    )

    assert what(response.text) == ["Opened an email"] * 7
    assert '<ol class="timeline">' in response.text


def test_the_partial_without_htmx_sends_you_to_the_page(world, client, contact):
    client.force_login(world.marketer)

    response = client.get(f"/console/contacts/{contact.pk}/timeline/?type=call")

    assert response.status_code == 302
    assert response["Location"] == f"/console/contacts/{contact.pk}/?type=call#timeline"


def test_the_timeline_partial_is_404_for_another_unit(world, client, contact):
    client.force_login(world.b_marketer)

    response = client.get(f"/console/contacts/{contact.pk}/timeline/", HTTP_HX_REQUEST="true")

    assert response.status_code == 404


def test_an_empty_filtered_timeline_says_how_to_get_everything_back(world, client, contact):
    client.force_login(world.marketer)

    response = client.get(
        f"/console/contacts/{contact.pk}/timeline/", {"type": "call"}, HTTP_HX_REQUEST="true"
    )

    assert "Nothing of this type or channel." in response.text
