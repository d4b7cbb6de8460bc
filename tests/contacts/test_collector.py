"""The collector: POST /api/v1/collect stores raw batches and answers 202; a worker turns
them into activities once, links them to contacts, and refuses bad input with a reason."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.contacts.collector import intake, services
from apps.contacts.collector.intake import (
    DRAIN_FLAG,
    DRAIN_WINDOW_SECONDS,
    dispatch_drain,
    dispatch_resume,
    site_forget,
)
from apps.contacts.collector.services import (
    COLLECTOR,
    anonymous_link,
    collector_batch_process,
    collector_batches_process,
    collector_batches_sweep,
)
from apps.contacts.collector.signing import identifiers_sign
from apps.contacts.identity_keys import make_key
from apps.contacts.models import (
    Activity,
    Campaign,
    Channel,
    Contact,
    ContactUnit,
    Identity,
    RawBatch,
    Site,
)
from apps.contacts.selectors.timeline import contact_timeline
from apps.contacts.services.resolution import contact_resolve
from apps.contacts.tasks.collector import collector_sweep
from apps.core.services import SystemActor
from config.celery import app

pytestmark = pytest.mark.django_db

BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
)
SECRET = "s3cret-signing-key"


@pytest.fixture(autouse=True)
def _dispatch_fresh() -> Iterator[None]:
    dispatch_resume()
    yield
    dispatch_resume()


@pytest.fixture
def client() -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="en", HTTP_USER_AGENT=BROWSER)


@pytest.fixture
def site(world) -> Site:
    return Site.objects.create(
        unit=world.a, name="官网", public_key="pk_live_a", signing_secret=SECRET
    )


@pytest.fixture
def broker_down(monkeypatch) -> None:
    """The Celery app's broker points at a closed port; cached pools are dropped."""
    # write URL first: read after broker_url changed, it would "restore" the bad URL
    monkeypatch.setattr(app.conf, "broker_write_url", None)
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:9/0")
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)


def now_iso(delta: timedelta = timedelta()) -> str:
    return (timezone.now() + delta).isoformat()


def page_view(url: str = "https://www.acme.cn/pricing", **extra: Any) -> dict[str, Any]:
    return {
        "type": "page_view",
        "id": str(uuid.uuid4()),
        "occurred_at": now_iso(),
        "url": url,
        **extra,
    }


def post(client: Client, body: Any, *, key: str | None = "pk_live_a", **headers: Any):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    if key is not None:
        headers["HTTP_X_LEADLOOP_KEY"] = key
    return client.post("/api/v1/collect", data=raw, content_type="application/json", **headers)


def signed(identifiers: dict[str, Any], secret: str = SECRET) -> dict[str, Any]:
    return {
        "type": "identify",
        "occurred_at": now_iso(),
        "identifiers": identifiers,
        "signature": identifiers_sign(secret, identifiers),
    }


def batch() -> RawBatch:
    return RawBatch.objects.dangerously_unscoped().get()


# --- The endpoint ---------------------------------------------------------------------------


def test_a_valid_batch_is_stored_as_received_and_answered_202(client, site):
    body = {"anonymous_id": "v-1", "events": [page_view()]}
    raw = json.dumps(body).encode()

    response = post(client, raw, HTTP_ORIGIN="https://www.acme.cn")

    stored = batch()
    assert response.status_code == 202
    assert response.json() == {"accepted": True, "batch": stored.pk}
    assert response["Access-Control-Allow-Origin"] == "*"
    assert bytes(stored.body) == raw
    assert (stored.site_id, stored.public_key, stored.status) == (site.pk, "pk_live_a", "pending")
    assert (stored.event_count, stored.is_bot, stored.ip) == (1, False, "127.0.0.1")
    assert (stored.user_agent, stored.origin) == (BROWSER, "https://www.acme.cn")
    assert Activity.objects.dangerously_unscoped().count() == 0  # nothing processed inline


def test_the_key_may_come_from_the_query_or_the_body_and_text_plain_is_accepted(client, site):
    body = json.dumps({"anonymous_id": "v-1", "events": [page_view()]})
    by_query = client.post("/api/v1/collect?key=pk_live_a", data=body, content_type="text/plain")
    in_body = json.dumps({"key": "pk_live_a", "events": [page_view()]})
    by_body = client.post("/api/v1/collect", data=in_body, content_type="text/plain")

    assert (by_query.status_code, by_body.status_code) == (202, 202)
    assert RawBatch.objects.dangerously_unscoped().filter(site=site).count() == 2


def test_the_endpoint_costs_one_query_once_the_site_is_cached(
    client, site, django_assert_num_queries
):
    post(client, {"events": [page_view()]})  # warms the site cache

    with django_assert_num_queries(1):
        response = post(client, {"anonymous_id": "v-2", "events": [page_view()]})

    assert response.status_code == 202


def test_a_thousand_requests_without_a_worker_all_land_exactly_once(
    client, site, broker_down, django_capture_on_commit_callbacks
):
    # Given the broker is down (dispatch fails in on_commit, as in production)
    with django_capture_on_commit_callbacks(execute=True):
        statuses = [
            post(
                client,
                {
                    "anonymous_id": f"v-{i % 50}",
                    "events": [
                        page_view(f"https://www.acme.cn/p/{i}"),
                        {**page_view(), "type": "click"},
                    ],
                },
            ).status_code
            for i in range(1000)
        ]
    # Then every request was accepted and stored, nothing processed yet
    assert dispatch_drain()
    assert statuses == [202] * 1000
    assert RawBatch.objects.dangerously_unscoped().filter(status="pending").count() == 1000
    assert Activity.objects.dangerously_unscoped().count() == 0

    # When the broker is back and the sweeper runs (beat's task, run here in-process)
    collector_sweep.apply()

    # Then every event is exactly one activity
    assert RawBatch.objects.dangerously_unscoped().filter(status="processed").count() == 1000
    assert Activity.objects.dangerously_unscoped().count() == 2000
    assert Activity.objects.dangerously_unscoped().filter(type="click").count() == 1000
    assert collector_batches_sweep().processed == 0  # nothing left, nothing twice


def test_with_the_broker_down_requests_still_succeed_and_rows_are_kept(
    client, site, broker_down, django_capture_on_commit_callbacks, caplog
):
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        responses = [post(client, {"events": [page_view()]}) for _ in range(3)]
    took = time.monotonic() - started

    # the requests did not wait for redis-py's connection retries (about 6 s)
    assert took < 2
    assert dispatch_drain()
    assert [r.status_code for r in responses] == [202, 202, 202]
    assert len(callbacks) == 3
    assert RawBatch.objects.dangerously_unscoped().filter(status="pending").count() == 3
    assert "the sweeper will" in caplog.text


def test_a_processed_batch_is_claimed_once(client, site):
    post(client, {"anonymous_id": "v-1", "events": [page_view()]})
    first = collector_batch_process(batch_id=batch().pk)

    again = collector_batch_process(batch_id=batch().pk)

    assert first is not None
    assert first.status == "processed"
    assert again is None
    assert Activity.objects.dangerously_unscoped().count() == 1


def test_the_same_batch_sent_twice_yields_its_activities_once(client, site):
    events = [page_view(), {"type": "content_view", "occurred_at": now_iso(), "seconds": 42}]
    body = {"anonymous_id": "v-1", "events": events}

    post(client, body)
    post(client, body)
    collector_batches_sweep()

    rows = Activity.objects.dangerously_unscoped().order_by("type")
    assert [(a.type, a.anonymous_id) for a in rows] == [
        ("content_view", "v-1"),
        ("page_view", "v-1"),
    ]
    assert rows[0].properties == {"seconds": 42}
    assert list(
        RawBatch.objects.dangerously_unscoped().values_list("status", "accepted_count")
    ) == [("processed", 2), ("processed", 2)]


# --- Anonymous → known ----------------------------------------------------------------------


def test_three_anonymous_page_views_then_a_form_end_on_one_contacts_timeline(client, site, world):
    for path in ("/", "/product", "/pricing"):
        post(client, {"anonymous_id": "v-77", "events": [page_view("https://www.acme.cn" + path)]})
    collector_batches_sweep()
    assert Activity.objects.dangerously_unscoped().filter(contact__isnull=True).count() == 3

    post(
        client,
        {
            "anonymous_id": "v-77",
            "events": [
                signed({"email": "Li.Lei@Example.cn", "phone": "138 0013 8000"}),
                {"type": "form_submit", "occurred_at": now_iso(), "properties": {"form": "demo"}},
            ],
        },
    )
    collector_batches_sweep()

    contact = Contact.objects.dangerously_unscoped().get()
    page = contact_timeline(contact=contact, user=world.marketer)
    assert sorted(a.type for a in page.items) == [
        "form_submit",
        "page_view",
        "page_view",
        "page_view",
    ]
    assert set(
        Identity.objects.dangerously_unscoped().filter(contact=contact).values_list("kind", "value")
    ) == {("email", "li.lei@example.cn"), ("phone", "+8613800138000"), ("anonymous", "v-77")}
    assert list(ContactUnit.objects.filter(contact=contact).values_list("unit_id", flat=True)) == [
        world.a.pk
    ]
    # the identify event itself is not an activity
    assert Activity.objects.dangerously_unscoped().count() == 4

    # and later anonymous visits with the same id land on the contact directly
    post(client, {"anonymous_id": "v-77", "events": [page_view("https://www.acme.cn/blog")]})
    collector_batches_sweep()
    assert Activity.objects.dangerously_unscoped().filter(contact=contact).count() == 5


def test_unsigned_or_badly_signed_identifiers_are_ignored(client, site):
    unsigned = {"type": "identify", "occurred_at": now_iso(), "identifiers": {"email": "ceo@x.cn"}}
    forged = signed({"email": "ceo@x.cn"}, secret="guessed")
    post(client, {"anonymous_id": "v-1", "events": [unsigned, forged, page_view()]})

    collector_batches_sweep()

    stored = batch()
    assert Contact.objects.dangerously_unscoped().count() == 0
    assert Identity.objects.dangerously_unscoped().count() == 0
    assert stored.status == "partial"
    assert stored.rejections == [
        {"index": 0, "reason": "identifiers are not signed"},
        {"index": 1, "reason": "the identifiers' signature is not valid"},
    ]
    assert Activity.objects.dangerously_unscoped().get().contact_id is None


def test_anonymous_link_does_not_take_an_id_that_belongs_to_someone_else(world):
    system = SystemActor("tests")
    first = contact_resolve(
        unit=world.a, keys=[make_key("email", "a@x.cn")], source="t", acting_user=system
    ).contact
    second = contact_resolve(
        unit=world.a, keys=[make_key("email", "b@x.cn")], source="t", acting_user=system
    ).contact
    anonymous_link(contact=first, anonymous_id="shared-pc")

    attached = anonymous_link(contact=second, anonymous_id="shared-pc")

    assert attached == 0
    owner = Identity.objects.dangerously_unscoped().get(kind="anonymous").contact_id
    assert owner == first.pk


# --- Channels and campaigns -----------------------------------------------------------------


def test_utm_and_referrer_resolve_channel_and_campaign(client, site, world):
    baidu = Channel.objects.create(unit=world.a, code="baidu", name="百度推广", kind="sem")
    seo = Channel.objects.create(unit=world.a, code="seo", name="自然搜索", kind="seo")
    wechat = Channel.objects.create(unit=world.a, code="wx", name="公众号", kind="wechat")
    direct = Channel.objects.create(unit=world.a, code="direct", name="直接访问", kind="direct")
    spring = Campaign.objects.create(unit=world.a, code="spring-2026", name="春季", channel=baidu)
    events = [
        page_view("https://www.acme.cn/?utm_source=baidu&utm_medium=cpc&utm_campaign=spring-2026"),
        page_view("https://www.acme.cn/a", referrer="https://www.baidu.com/s?wd=crm"),
        page_view("https://www.acme.cn/b", referrer="https://mp.weixin.qq.com/s/abc"),
        page_view("https://www.acme.cn/c"),
        page_view("https://www.acme.cn/d", referrer="https://www.acme.cn/c"),
        page_view("https://www.acme.cn/e", utm={"source": "unknown-source"}),
    ]

    post(client, {"anonymous_id": "v-1", "events": events})
    collector_batches_sweep()

    rows = Activity.objects.dangerously_unscoped().order_by("id")
    assert [(a.channel_id, a.campaign_id) for a in rows] == [
        (baidu.pk, spring.pk),
        (seo.pk, None),
        (wechat.pk, None),
        (direct.pk, None),
        (None, None),
        (None, None),
    ]
    assert rows[0].properties["utm"] == {
        "source": "baidu",
        "medium": "cpc",
        "campaign": "spring-2026",
    }
    assert rows[5].properties["utm"] == {"source": "unknown-source"}


def test_a_new_contact_gets_the_source_channel_of_its_batch(client, site, world):
    baidu = Channel.objects.create(unit=world.a, code="baidu", name="百度推广", kind="sem")
    post(
        client,
        {
            "anonymous_id": "v-9",
            "events": [
                page_view("https://www.acme.cn/?utm_source=baidu"),
                signed({"email": "new@x.cn"}),
            ],
        },
    )

    collector_batches_sweep()

    assert Contact.objects.dangerously_unscoped().get().source_channel_id == baidu.pk


# --- Bots -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "headers"),
    [
        ("Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)", {}),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", {}),
        ("curl/8.5.0", {}),
        ("python-requests/2.32.3", {}),
        ("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/130.0.0.0 Safari/537.36", {}),
        (BROWSER, {"HTTP_SEC_PURPOSE": "prefetch;prerender"}),
        (BROWSER, {"HTTP_PURPOSE": "prefetch"}),
    ],
)
def test_bots_and_prefetches_are_stored_marked_and_not_counted(
    client, site, user_agent, headers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, {"events": [page_view()]}, HTTP_USER_AGENT=user_agent, **headers)
    collector_batches_sweep()

    stored = batch()
    assert response.status_code == 202
    assert (stored.is_bot, stored.status, stored.reason) == (True, "processed", "bot")
    assert callbacks == []  # nothing to dispatch
    assert Activity.objects.dangerously_unscoped().count() == 0


def test_head_is_answered_without_storing(client, site):
    response = client.head("/api/v1/collect?key=pk_live_a")

    assert response.status_code == 204
    assert RawBatch.objects.dangerously_unscoped().count() == 0


def test_cors_preflight_names_the_allowed_origin(client, site):
    site.allowed_origins = ["https://www.acme.cn"]
    site.save()

    allowed = client.options("/api/v1/collect?key=pk_live_a", HTTP_ORIGIN="https://www.acme.cn")
    other = client.options("/api/v1/collect?key=pk_live_a", HTTP_ORIGIN="https://evil.example")
    posted = post(client, {"events": [page_view()]}, HTTP_ORIGIN="https://evil.example")

    assert allowed.status_code == 204
    assert allowed["Access-Control-Allow-Origin"] == "https://www.acme.cn"
    assert allowed["Access-Control-Allow-Headers"] == "Content-Type, X-LeadLoop-Key"
    assert "Access-Control-Allow-Origin" not in other
    assert posted.status_code == 403
    assert posted.json()["error"]["code"] == "origin_not_allowed"
    assert RawBatch.objects.dangerously_unscoped().count() == 0


# --- Limits and bad input -------------------------------------------------------------------


def test_requests_over_the_rate_limit_get_429(client, site):
    site.max_requests_per_minute = 3
    site.save()
    body = {"anonymous_id": "v-fast", "events": [page_view()]}

    codes = [post(client, body).status_code for _ in range(4)]
    other_visitor = post(client, {"anonymous_id": "v-slow", "events": [page_view()]})

    assert codes == [202, 202, 202, 429]
    assert other_visitor.status_code == 202
    assert RawBatch.objects.dangerously_unscoped().count() == 4


@pytest.mark.parametrize(
    ("body", "key", "status", "code", "message"),
    [
        (b'{"events": [', "pk_live_a", 400, "invalid_body", "The body is not valid JSON"),
        (
            b'{"events": ["\xff\xfe"]}',
            "pk_live_a",
            400,
            "invalid_body",
            "not valid UTF-8 (byte 13)",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "pk_live_a", 400, "invalid_body", "nested too deeply"),
        (
            b'{"events": [{"type": "page_view", "seconds": NaN}]}',
            "pk_live_a",
            400,
            "invalid_body",
            "NaN",
        ),
        (b"[]", "pk_live_a", 400, "invalid_body", 'with an "events" list'),
        (b'{"events": []}', "pk_live_a", 400, "invalid_body", "is empty"),
        (b"", "pk_live_a", 400, "invalid_body", "The body is empty."),
        (b'{"events": [{}]}', None, 400, "missing_key", "X-LeadLoop-Key"),
        (b'{"events": [{}]}', "pk_nobody", 404, "unknown_key", "No site has this key."),
        (b'{"events": [{}]}', "bad key with spaces", 404, "unknown_key", "No site has this key."),
    ],
)
def test_bad_bodies_get_a_clear_4xx_and_nothing_is_stored(
    client, site, body, key, status, code, message
):
    response = post(client, body, key=key)

    assert response.status_code == status
    error = response.json()["error"]
    assert (error["status"], error["code"]) == (status, code)
    assert message in error["message"]
    assert RawBatch.objects.dangerously_unscoped().count() == 0


def test_an_oversized_body_gets_413(client, site):
    big = json.dumps({"events": [page_view(title="x" * 300_000)]})

    response = post(client, big.encode())

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert RawBatch.objects.dangerously_unscoped().count() == 0


def test_too_many_events_get_413_and_an_inactive_site_403(client, site):
    site.max_events_per_batch = 2
    site.save()
    too_many = post(client, {"events": [page_view(), page_view(), page_view()]})
    site.is_active = False
    site.save()
    client2 = Client(HTTP_USER_AGENT=BROWSER, HTTP_ACCEPT_LANGUAGE="en")
    site_forget("pk_live_a")
    inactive = post(client2, {"events": [page_view()]})

    assert (too_many.status_code, too_many.json()["error"]["code"]) == (413, "too_many_events")
    assert too_many.json()["error"]["message"] == "At most 2 events per batch; this one has 3."
    assert (inactive.status_code, inactive.json()["error"]["code"]) == (403, "site_inactive")
    assert RawBatch.objects.dangerously_unscoped().count() == 0


def test_other_methods_and_media_types_are_refused(client, site):
    get = client.get("/api/v1/collect")
    form = client.post("/api/v1/collect?key=pk_live_a", data={"a": "b"})

    assert (get.status_code, get.json()["error"]["code"]) == (405, "method_not_allowed")
    assert (form.status_code, form.json()["error"]["code"]) == (415, "unsupported_media_type")


def test_bad_events_are_rejected_with_reasons_and_the_valid_ones_still_land(client, site):
    events = [
        page_view("https://www.acme.cn/ok"),
        {**page_view(), "occurred_at": now_iso(timedelta(hours=1))},
        {**page_view(), "occurred_at": now_iso(-timedelta(days=8))},
        {**page_view(), "occurred_at": "2026-11-01T08:00:00"},
        {**page_view(), "properties": {"blob": "x" * 9000}},
        {**page_view(), "type": "teleport"},
        {**page_view(), "url": "https://www.acme.cn/" + "a" * 2000},
        {**page_view(), "title": "bad\u0000title"},
        {**page_view(), "properties": {"s": "\ud800"}},
        {**page_view(), "seconds": -1},
        {**page_view(), "id": "not a valid id!"},
        "not an object",
        {"type": "content_view", "occurred_at": now_iso(), "seconds": 30, "title": "白皮书"},
    ]

    response = post(client, {"anonymous_id": "v-1", "events": events})
    collector_batches_sweep()

    stored = batch()
    assert response.status_code == 202
    assert (stored.status, stored.event_count, stored.accepted_count) == ("partial", 13, 2)
    assert stored.rejections == [
        {"index": 1, "reason": "occurred_at is in the future"},
        {"index": 2, "reason": "occurred_at is more than 7 days old"},
        {"index": 3, "reason": "occurred_at needs a time zone (e.g. 2026-11-01T08:00:00Z)"},
        {"index": 4, "reason": "properties take 9012 bytes, at most 8192 are allowed"},
        {"index": 5, "reason": "unknown event type “teleport”"},
        {"index": 6, "reason": "url is longer than 2000 characters"},
        {"index": 7, "reason": "the event contains NUL characters or invalid Unicode"},
        {"index": 8, "reason": "the event contains NUL characters or invalid Unicode"},
        {"index": 9, "reason": "seconds must be between 0 and 86400"},
        {"index": 10, "reason": "id must be 1–64 letters, digits or ._:-"},
        {"index": 11, "reason": "an event must be a JSON object"},
    ]
    rows = Activity.objects.dangerously_unscoped().order_by("id")
    assert [(a.type, a.properties.get("url"), a.properties.get("seconds")) for a in rows] == [
        ("page_view", "https://www.acme.cn/ok", None),
        ("content_view", None, 30),
    ]


def test_a_stored_body_that_cannot_be_read_ends_rejected_with_the_reason(site):
    # What the endpoint refuses can still reach the table another way (an older endpoint,
    # a replay by hand): the worker says why, and does not crash.
    for body in (b'{"events": ["\xff"]}', b"not json", b'{"events": [{"type": "page_view"'):
        RawBatch.objects.create(site=site, public_key=site.public_key, body=body)

    result = collector_batches_sweep()

    assert (result.processed, result.failed) == (3, 0)
    reasons = list(
        RawBatch.objects.dangerously_unscoped().order_by("id").values_list("status", "reason")
    )
    assert [status for status, _ in reasons] == ["rejected"] * 3
    assert reasons[0][1] == "The body is not valid UTF-8 (byte 13)."
    assert reasons[1][1].startswith("The body is not valid JSON: Expecting value")
    assert Activity.objects.dangerously_unscoped().count() == 0


def test_a_deleted_site_rejects_its_pending_batches(site):
    RawBatch.objects.create(site=None, public_key="pk_gone", body=b'{"events": [{}]}')

    collector_batches_sweep()

    assert batch().status == "rejected"
    assert batch().reason == "the site is unknown or inactive"


# --- Set-based processing and the throttled drain -------------------------------------------


def _mixed_batches(client: Client, world: Any) -> None:
    """Batches of every kind, in an order where an identify comes between anonymous ones."""
    Channel.objects.create(unit=world.a, code="baidu", name="百度推广", kind="sem")
    Channel.objects.create(unit=world.a, code="seo", name="自然搜索", kind="seo")
    known = contact_resolve(
        unit=world.a, keys=[make_key("email", "known@x.cn")], source="t", acting_user=COLLECTOR
    ).contact
    anonymous_link(contact=known, anonymous_id="v-known")
    repeated = page_view("https://www.acme.cn/again")
    bodies: list[Any] = [
        {"anonymous_id": "v-1", "events": [page_view("https://www.acme.cn/?utm_source=baidu")]},
        {"anonymous_id": "v-2", "events": [page_view(referrer="https://www.baidu.com/s?wd=x")]},
        {"anonymous_id": "v-known", "events": [page_view(), {**page_view(), "type": "click"}]},
        {"anonymous_id": "v-1", "events": [repeated, {"type": "nope"}]},
        {"anonymous_id": "v-1", "events": [repeated]},  # the same event again: stored once
        {
            "anonymous_id": "v-1",
            "events": [signed({"email": "li@x.cn"}), page_view("https://www.acme.cn/after")],
        },
        {"anonymous_id": "v-1", "events": [page_view("https://www.acme.cn/later")]},
        {"anonymous_id": "v-3", "events": [{"type": "identify", "identifiers": {"email": "a"}}]},
        {"events": [page_view(), {**page_view(), "occurred_at": "yesterday"}]},
    ]
    for body in bodies:
        assert post(client, body).status_code == 202
    assert post(client, {"events": [page_view()]}, HTTP_USER_AGENT="curl/8.5.0").status_code == 202
    RawBatch.objects.dangerously_unscoped().create(
        site=None, public_key="pk_gone", body=b'{"events": [{}]}', event_count=1
    )


def _outcome_snapshot() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Activities and batch results, with contacts named by their identities (their ids
    differ between two runs)."""
    people: dict[int, frozenset[tuple[str, str]]] = {}
    for contact_id, kind, value in Identity.objects.dangerously_unscoped().values_list(
        "contact_id", "kind", "value"
    ):
        people[contact_id] = people.get(contact_id, frozenset()) | {(kind, value)}
    activities = [
        (
            a.unit_id,
            a.type,
            a.occurred_at,
            a.anonymous_id,
            people.get(a.contact_id) if a.contact_id else None,
            a.channel_id,
            a.campaign_id,
            a.properties,
            a.dedupe_key,
        )
        for a in Activity.objects.dangerously_unscoped().order_by("dedupe_key", "occurred_at")
    ]
    batches = list(
        RawBatch.objects.dangerously_unscoped()
        .order_by("id")
        .values_list("id", "status", "reason", "event_count", "accepted_count", "rejections")
    )
    return activities, [tuple(b) for b in batches]


def test_batches_processed_as_a_set_give_the_same_result_as_one_by_one(client, site, world):
    # Given batches of every kind (anonymous, known visitor, duplicate, signed identify,
    # unsigned identify, bad events, bot, deleted site)
    _mixed_batches(client, world)
    ids = list(RawBatch.objects.dangerously_unscoped().order_by("id").values_list("id", flat=True))
    before = transaction.savepoint()

    # When they are processed one by one
    one_by_one = [collector_batch_process(batch_id=batch_id) for batch_id in ids]
    expected = _outcome_snapshot()
    transaction.savepoint_rollback(before)

    # and, from the same start, as one set
    result = collector_batches_process(ids)

    # Then the activities, contacts and batch results are the same
    bot = ids[9]  # stored already processed: nothing to claim
    assert [b.pk if b else None for b in one_by_one] == [i if i != bot else None for i in ids]
    assert [b.pk for b in result.batches] == [i for i in ids if i != bot]
    assert result.failed == []
    assert _outcome_snapshot() == expected
    activities, batches = expected
    assert len(activities) == 8  # the repeated event once; identify events are no activity
    assert [b[1] for b in batches] == [
        "processed",
        "processed",
        "processed",
        "partial",
        "processed",
        "processed",
        "processed",
        "partial",
        "partial",
        "processed",
        "rejected",
    ]
    li = frozenset({("email", "li@x.cn"), ("anonymous", "v-1")})
    assert sorted(a[3] for a in activities if a[4] == li) == ["v-1"] * 4


def test_set_processing_costs_the_same_queries_for_2_or_40_anonymous_batches(client, site):
    def queries_for(count: int) -> int:
        for i in range(count):
            post(client, {"anonymous_id": f"v-{count}-{i}", "events": [page_view(), page_view()]})
        ids = list(
            RawBatch.objects.dangerously_unscoped()
            .filter(status="pending")
            .values_list("id", flat=True)
        )
        with CaptureQueriesContext(connection) as captured:
            result = collector_batches_process(ids)
        assert len(result.batches) == count
        return len(captured)

    assert queries_for(2) == queries_for(40)
    assert Activity.objects.dangerously_unscoped().count() == 84


def test_a_poison_batch_fails_alone_when_the_set_fails(client, site, monkeypatch):
    for visitor in ("v-1", "v-poison", "v-3"):
        post(client, {"anonymous_id": visitor, "events": [page_view()]})
    record = services.activities_record

    def failing(rows):
        if any(r.anonymous_id == "v-poison" for r in rows):
            raise RuntimeError("poison")
        return record(rows)

    monkeypatch.setattr(services, "activities_record", failing)

    result = collector_batches_sweep()

    assert (result.processed, result.failed, result.more) == (2, 1, False)
    statuses = dict(
        RawBatch.objects.dangerously_unscoped().values_list("body", "status").order_by("id")
    )
    assert sorted(statuses.values()) == ["pending", "processed", "processed"]
    assert sorted(
        Activity.objects.dangerously_unscoped().values_list("anonymous_id", flat=True)
    ) == [
        "v-1",
        "v-3",
    ]


def test_the_drain_is_published_at_most_once_per_window(
    client, site, monkeypatch, django_capture_on_commit_callbacks
):
    published: list[dict[str, Any]] = []
    monkeypatch.setattr(
        collector_sweep, "apply_async", lambda *args, **kwargs: published.append(kwargs)
    )
    dispatch_resume()  # also forgets the drain flag of an earlier test

    # When fifty batches are stored within one window
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        codes = [
            post(client, {"anonymous_id": f"v-{i}", "events": [page_view()]}) for i in range(50)
        ]
    assert dispatch_drain()

    # Then one drain was published, to start once the window is over
    assert [c.status_code for c in codes] == [202] * 50
    assert len(callbacks) == 50
    assert published == [{"countdown": DRAIN_WINDOW_SECONDS, "retry": False}]

    # and when the window is over (the flag has expired, and this process's memory of
    # the drain it covers with it), the next batch publishes the next drain
    cache.delete(DRAIN_FLAG)
    monkeypatch.setattr(intake, "_drain_covered_until", 0.0)
    with django_capture_on_commit_callbacks(execute=True):
        post(client, {"events": [page_view()]})
    assert dispatch_drain()
    assert len(published) == 2


def test_the_drain_processes_everything_pending(client, site):
    for i in range(7):
        post(client, {"anonymous_id": f"v-{i}", "events": [page_view(), page_view()]})

    collector_sweep.apply()

    assert RawBatch.objects.dangerously_unscoped().filter(status="processed").count() == 7
    assert Activity.objects.dangerously_unscoped().count() == 14


def test_the_collector_answers_before_sessions_and_csrf(client, site):
    # Given a browser with a session cookie and no CSRF token, the endpoint still answers
    # (the shortcut middleware hands it the request before sessions and CSRF run).
    client.cookies["sessionid"] = "not-a-session"
    response = post(client, {"anonymous_id": "v-1", "events": [page_view()]})
    assert response.status_code == 202
    assert "Set-Cookie" not in response.headers or "sessionid" not in response.headers.get(
        "Set-Cookie", ""
    )
