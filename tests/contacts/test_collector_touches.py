"""First and latest touch from the collector: the channel and campaign of every activity
that belongs to a contact compete for the contact's first touch (the earliest
``occurred_at`` wins) and latest touch (the latest wins), whatever order the batches
arrive in. Anonymous activity touches nobody until the visitor identifies; then what is
attached counts."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from apps.contacts.collector import services
from apps.contacts.collector.intake import dispatch_resume
from apps.contacts.collector.services import (
    COLLECTOR,
    anonymous_link,
    collector_batches_process,
    collector_batches_sweep,
)
from apps.contacts.collector.signing import identifiers_sign
from apps.contacts.identity_keys import make_key
from apps.contacts.models import Activity, Campaign, Channel, Contact, RawBatch, Site
from apps.contacts.services.resolution import contact_resolve

pytestmark = pytest.mark.django_db

BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
)
SECRET = "touch-signing-key"
NOW = timezone.now().replace(microsecond=0)


@pytest.fixture(autouse=True)
def _dispatch_fresh() -> Any:
    dispatch_resume()
    yield
    dispatch_resume()


@pytest.fixture
def client() -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="en", HTTP_USER_AGENT=BROWSER)


@pytest.fixture
def site(world) -> Site:
    return Site.objects.create(
        unit=world.a, name="官网", public_key="pk_touch", signing_secret=SECRET
    )


@pytest.fixture
def channels(world) -> dict[str, Any]:
    baidu = Channel.objects.create(unit=world.a, code="baidu", name="百度推广", kind="sem")
    return {
        "baidu": baidu,
        "wechat": Channel.objects.create(unit=world.a, code="wx", name="公众号", kind="wechat"),
        "seo": Channel.objects.create(unit=world.a, code="seo", name="自然搜索", kind="seo"),
        "expo": Campaign.objects.create(unit=world.a, code="expo", name="展会", channel=baidu),
    }


def at(hours_ago: float) -> datetime:
    return NOW - timedelta(hours=hours_ago)


def view(when: datetime, url: str = "https://www.acme.cn/", **extra: Any) -> dict[str, Any]:
    return {
        "type": "page_view",
        "id": str(uuid.uuid4()),
        "occurred_at": when.isoformat(),
        "url": url,
        **extra,
    }


def from_baidu(when: datetime) -> dict[str, Any]:
    return view(when, "https://www.acme.cn/?utm_source=baidu&utm_campaign=expo")


def from_wechat(when: datetime) -> dict[str, Any]:
    return view(when, "https://www.acme.cn/a", referrer="https://mp.weixin.qq.com/s/x")


def from_search(when: datetime) -> dict[str, Any]:
    return view(when, "https://www.acme.cn/b", referrer="https://www.baidu.com/s?wd=crm")


def signed(identifiers: dict[str, Any], when: datetime) -> dict[str, Any]:
    return {
        "type": "identify",
        "occurred_at": when.isoformat(),
        "identifiers": identifiers,
        "signature": identifiers_sign(SECRET, identifiers),
    }


def send(client: Client, visitor: str, *events: dict[str, Any]) -> None:
    response = client.post(
        "/api/v1/collect",
        data=json.dumps({"anonymous_id": visitor, "events": list(events)}),
        content_type="application/json",
        HTTP_X_LEADLOOP_KEY="pk_touch",
    )
    assert response.status_code == 202


def known_visitor(world, visitor: str = "v-known", email: str = "li@x.cn") -> Contact:
    contact = contact_resolve(
        unit=world.a, keys=[make_key("email", email)], source="t", acting_user=COLLECTOR
    ).contact
    anonymous_link(contact=contact, anonymous_id=visitor)
    return contact


def touches(contact: Contact) -> tuple[Any, ...]:
    contact.refresh_from_db()
    return (
        contact.first_touch_at,
        contact.first_touch_channel_id,
        contact.first_touch_campaign_id,
        contact.latest_touch_at,
        contact.latest_touch_channel_id,
        contact.latest_touch_campaign_id,
    )


def test_a_known_visitors_batch_sets_first_and_latest_touch(client, site, channels, world):
    # Given a visitor whose anonymous id belongs to a contact with no touch yet
    contact = known_visitor(world)
    assert touches(contact) == (None,) * 6

    # When a batch arrives with a search visit, a campaign click and a WeChat visit
    send(client, "v-known", from_search(at(5)), from_baidu(at(3)), from_wechat(at(1)))
    collector_batches_sweep()

    # Then the earliest is the first touch and the latest the latest touch
    assert touches(contact) == (
        at(5),
        channels["seo"].pk,
        None,
        at(1),
        channels["wechat"].pk,
        None,
    )


def test_an_older_event_delivered_later_takes_the_first_touch_only(client, site, channels, world):
    contact = known_visitor(world)
    send(client, "v-known", from_wechat(at(2)))
    collector_batches_sweep()
    assert touches(contact) == (at(2), channels["wechat"].pk, None) * 2

    # When a batch delivered later carries an older visit (an offline tracker catching up)
    send(client, "v-known", from_baidu(at(30)))
    collector_batches_sweep()

    # Then it becomes the first touch, and the latest touch stays the newer visit
    assert touches(contact) == (
        at(30),
        channels["baidu"].pk,
        channels["expo"].pk,
        at(2),
        channels["wechat"].pk,
        None,
    )

    # and a newer visit moves the latest touch, not the first
    send(client, "v-known", from_search(at(0.5)))
    collector_batches_sweep()
    assert touches(contact) == (
        at(30),
        channels["baidu"].pk,
        channels["expo"].pk,
        at(0.5),
        channels["seo"].pk,
        None,
    )


def test_navigation_inside_the_site_and_a_replayed_batch_move_nothing(
    client, site, channels, world
):
    contact = known_visitor(world)
    send(client, "v-known", from_wechat(at(3)))
    collector_batches_sweep()
    before = touches(contact)

    # When the visitor clicks around the site (no channel) and the old batch comes again
    send(
        client,
        "v-known",
        view(at(1), "https://www.acme.cn/c", referrer="https://www.acme.cn/a"),
        view(at(0.5), "https://www.acme.cn/d", referrer="https://www.acme.cn/c"),
    )
    send(client, "v-known", from_wechat(at(3)))
    collector_batches_sweep()

    # Then the touches did not change
    assert touches(contact) == before == (at(3), channels["wechat"].pk, None) * 2


def test_anonymous_activity_touches_nobody(client, site, channels, world):
    contact = known_visitor(world)

    send(client, "v-stranger", from_baidu(at(2)))
    collector_batches_sweep()

    assert Activity.objects.dangerously_unscoped().get(anonymous_id="v-stranger").contact is None
    assert touches(contact) == (None,) * 6


def test_a_signed_identify_counts_the_attached_anonymous_visits(client, site, channels, world):
    # Given an anonymous visitor who came from a Baidu campaign, then from WeChat
    send(client, "v-new", from_baidu(at(48)))
    send(client, "v-new", from_wechat(at(24)))
    collector_batches_sweep()

    # When they identify (signed, from the site's server) with a search visit
    send(client, "v-new", signed({"email": "new@x.cn"}, at(1)), from_search(at(1)))
    collector_batches_sweep()

    # Then the new contact's source channel is its batch's, as ever, and its touches span
    # the anonymous history it was given
    contact = Contact.objects.dangerously_unscoped().get()
    assert contact.source_channel_id == channels["seo"].pk
    assert touches(contact) == (
        at(48),
        channels["baidu"].pk,
        channels["expo"].pk,
        at(1),
        channels["seo"].pk,
        None,
    )
    assert Activity.objects.dangerously_unscoped().filter(contact=contact).count() == 3


def test_identify_and_later_visits_in_one_chunk_apply_touches_once(
    client, site, channels, world, monkeypatch
):
    # Given in one chunk: an anonymous visit, a signed identify by that visitor, and a
    # known visitor's visit
    known = known_visitor(world)
    send(client, "v-1", from_baidu(at(10)))
    send(client, "v-1", signed({"email": "a@x.cn"}, at(5)))
    send(client, "v-1", from_wechat(at(4)))
    send(client, "v-known", from_search(at(3)))
    calls: list[int] = []
    apply = services.contact_touches_apply
    monkeypatch.setattr(
        services, "contact_touches_apply", lambda rows: calls.append(len(rows)) or apply(rows)
    )

    # When the chunk is processed as a set
    ids = list(RawBatch.objects.dangerously_unscoped().values_list("id", flat=True))
    collector_batches_process(ids)

    # Then one call carried every linked event: the attached visit, the later visit of the
    # identified visitor and the known visitor's
    assert calls == [3]
    identified = Contact.objects.dangerously_unscoped().exclude(pk=known.pk).get()
    assert touches(identified) == (
        at(10),
        channels["baidu"].pk,
        channels["expo"].pk,
        at(4),
        channels["wechat"].pk,
        None,
    )
    assert touches(known) == (at(3), channels["seo"].pk, None) * 2


def test_anonymous_link_from_a_form_gives_the_attached_touches(client, site, channels, world):
    # Given anonymous visits (what a form page's visitor did before submitting)
    send(client, "v-form", from_wechat(at(6)), from_baidu(at(8)))
    collector_batches_sweep()
    contact = contact_resolve(
        unit=world.a, keys=[make_key("email", "form@x.cn")], source="t", acting_user=COLLECTOR
    ).contact

    # When the form's service links the visitor
    attached = anonymous_link(contact=contact, anonymous_id="v-form")

    # Then the visits are the contact's, and so are their touches
    assert attached == 2
    assert touches(contact) == (
        at(8),
        channels["baidu"].pk,
        channels["expo"].pk,
        at(6),
        channels["wechat"].pk,
        None,
    )


def test_anonymous_link_of_someone_elses_id_moves_no_touch(client, site, channels, world):
    owner = known_visitor(world, "v-shared", "owner@x.cn")
    send(client, "v-shared", from_baidu(at(2)))
    collector_batches_sweep()
    other = contact_resolve(
        unit=world.a, keys=[make_key("email", "other@x.cn")], source="t", acting_user=COLLECTOR
    ).contact

    attached = anonymous_link(contact=other, anonymous_id="v-shared")

    assert attached == 0
    assert touches(other) == (None,) * 6
    assert touches(owner) == (at(2), channels["baidu"].pk, channels["expo"].pk) * 2
