"""Outgoing webhooks against a real local HTTP server that checks the signature, their
retries and give-up, the endpoints API and the console page."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone

from apps.core.models import AuditLog
from apps.sales.models import WebhookDelivery, WebhookEndpoint
from apps.sales.services import delivery, webhooks
from tests.sales.test_api import make_lead

pytestmark = pytest.mark.django_db
HOOKS = "/api/v1/webhooks/"
SECRET = "whsec_test"


class Receiver:
    """A CRM stand-in: checks the signature, answers from ``codes`` (then 200), and drops
    a delivery id it has already processed (answering 200)."""

    def __init__(self) -> None:
        self.codes: list[int] = []
        self.requests: list[dict[str, Any]] = []
        self.processed: list[str] = []
        self.secret = SECRET
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                delivery_id = self.headers["X-LeadLoop-Delivery"]
                parts = dict(
                    p.split("=", 1) for p in self.headers["X-LeadLoop-Signature"].split(",")
                )
                expected = hmac.new(
                    receiver.secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256
                ).hexdigest()
                valid = hmac.compare_digest(expected, parts["v1"])
                receiver.requests.append(
                    {
                        "event": self.headers["X-LeadLoop-Event"],
                        "delivery": delivery_id,
                        "valid": valid,
                        "body": json.loads(body),
                    }
                )
                if not valid:
                    code = 401
                elif delivery_id in receiver.processed:
                    code = 200  # a replay: acknowledged, not processed again
                else:
                    receiver.processed.append(delivery_id)
                    code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/leadloop"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def endpoint(world, url, **kwargs):
    return WebhookEndpoint.objects.create(
        unit=world.a, name="Salesforce", url=url, secret=SECRET, **kwargs
    )


def test_a_stage_change_is_posted_signed_and_marked_delivered(world, receiver):
    # Given an endpoint for stage changes and a lead that moves
    endpoint(world, receiver.url, events=["lead.stage_changed"])
    lead = make_lead(world)
    lead.external_id = "SF-1"
    lead.save()
    from apps.sales.services import leads as services

    services.lead_move(lead=lead, to_stage="disqualified", actor=world.sdr, reason="重复")
    row = WebhookDelivery.objects.get()  # lead.created is not subscribed

    # When the deliveries are sent
    assert delivery.webhook_deliveries_send() == 1

    # Then the CRM got one valid, signed POST with the event and its id
    [got] = receiver.requests
    assert got["valid"] is True
    assert (got["event"], got["delivery"]) == ("lead.stage_changed", str(row.event_id))
    assert got["body"]["data"]["lead"]["external_id"] == "SF-1"
    assert (got["body"]["data"]["from"], got["body"]["data"]["to"]) == ("mil", "disqualified")
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 1, 200)
    assert delivery.webhook_deliveries_send() == 0
    assert len(receiver.requests) == 1


def test_failures_back_off_1_5_30_min_2_h_12_h_then_give_up(world, receiver):
    endpoint(world, receiver.url)
    webhooks.emit(world.a.pk, "lead.created", {"lead": {"id": 1}})
    receiver.codes = [500] * 10
    receiver.processed = []
    t = timezone.now()
    waits = []
    row = WebhookDelivery.objects.get()
    for _ in range(6):
        # not due a moment before its time
        assert delivery.webhook_deliveries_send(now=t - dt.timedelta(seconds=1)) == 0
        receiver.processed.clear()  # the receiver failed: it did not keep it
        assert delivery.webhook_deliveries_send(now=t) == 0
        row.refresh_from_db()
        if row.status == "pending":
            waits.append(row.next_attempt_at - t)
            t = row.next_attempt_at

    assert waits == [
        dt.timedelta(minutes=1),
        dt.timedelta(minutes=5),
        dt.timedelta(minutes=30),
        dt.timedelta(hours=2),
        dt.timedelta(hours=12),
    ]
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 6, 500)
    assert row.last_error.startswith("HTTP 500")
    assert len(receiver.requests) == 6
    assert delivery.webhook_deliveries_send(now=t + dt.timedelta(days=1)) == 0


def test_a_retry_after_a_failure_succeeds_and_keeps_the_delivery_id(world, receiver):
    endpoint(world, receiver.url)
    webhooks.emit(world.a.pk, "lead.created", {"lead": {"id": 1}})
    receiver.codes = [503]
    t = timezone.now()

    delivery.webhook_deliveries_send(now=t)
    receiver.processed.clear()
    delivered = delivery.webhook_deliveries_send(now=t + dt.timedelta(minutes=1))

    row = WebhookDelivery.objects.get()
    assert delivered == 1
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == (
        "delivered",
        2,
        200,
        "",
    )
    assert [r["delivery"] for r in receiver.requests] == [str(row.event_id)] * 2


def test_the_receiver_drops_a_replay_by_delivery_id(world, receiver):
    # Given a receiver that processed the event but answered 500 (its answer was lost)
    endpoint(world, receiver.url)
    webhooks.emit(world.a.pk, "lead.created", {"lead": {"id": 7}})
    receiver.codes = [500]
    t = timezone.now()
    delivery.webhook_deliveries_send(now=t)

    # When LeadLoop retries
    delivery.webhook_deliveries_send(now=t + dt.timedelta(minutes=1))

    # Then the retry carries the same delivery id and the receiver processed it once
    ids = [r["delivery"] for r in receiver.requests]
    assert len(ids) == 2
    assert ids[0] == ids[1]
    assert receiver.processed == [ids[0]]
    assert WebhookDelivery.objects.get().status == "delivered"


def test_a_wrong_secret_fails_the_receivers_check(world, receiver):
    endpoint(world, receiver.url)
    webhooks.emit(world.a.pk, "lead.created", {"lead": {"id": 1}})
    receiver.secret = "another"

    delivery.webhook_deliveries_send()

    row = WebhookDelivery.objects.get()
    assert receiver.requests[0]["valid"] is False
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 401)


def test_an_unreachable_endpoint_is_retried_with_the_error(world):
    endpoint(world, "http://127.0.0.1:9/nothing-listens")
    webhooks.emit(world.a.pk, "lead.created", {"lead": {"id": 1}})

    assert delivery.webhook_deliveries_send() == 0

    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, None)
    assert row.last_error != ""


def test_a_switched_off_endpoint_gets_nothing(world, receiver):
    hook = endpoint(world, receiver.url)
    webhooks.emit(world.a.pk, "lead.created", {"lead": {"id": 1}})
    hook.is_active = False
    hook.save()

    delivery.webhook_deliveries_send()

    row = WebhookDelivery.objects.get()
    assert row.status == "failed"
    assert row.last_error == "The webhook was switched off before this was sent."
    assert receiver.requests == []


def test_a_claimed_delivery_is_not_claimed_again_while_in_flight(world, receiver):
    endpoint(world, receiver.url)
    webhooks.emit(world.a.pk, "lead.created", {"lead": {"id": 1}})
    now = timezone.now()

    first = delivery._claim(now, 10)
    second = delivery._claim(now + dt.timedelta(seconds=30), 10)
    after_lease = delivery._claim(now + delivery.LEASE, 10)

    assert len(first) == 1
    assert second == []
    assert [r.pk for r in after_lease] == [first[0].pk]
    # the first worker's late answer no longer counts: the row is someone else's now
    assert delivery._record(first[0], delivery.Outcome(200), now) is False


# --- The endpoints API ----------------------------------------------------------------------


def test_creating_a_webhook_shows_its_secret_once(world, api):
    api.force_authenticate(world.sales_manager)

    made = api.post(
        HOOKS,
        {
            "unit": world.a.pk,
            "name": "CRM",
            "url": "https://crm.example.cn/hook",
            "events": ["lead.stage_changed"],
        },
        format="json",
    )
    shown = api.get(f"{HOOKS}{made.json()['id']}/")

    assert made.status_code == 201
    secret = made.json()["secret"]
    assert secret.startswith("whsec_")
    assert len(secret) > 30
    assert WebhookEndpoint.objects.get().secret == secret
    assert "secret" not in shown.json()
    assert shown.json()["events"] == ["lead.stage_changed"]
    assert AuditLog.objects.filter(action="webhook.create").count() == 1


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"url": "ftp://crm.example.cn/"}, "url"),
        ({"events": ["lead.deleted"]}, "events"),
        ({"unit": "B"}, "unit"),
    ],
)
def test_a_webhook_that_may_not_be_made_is_a_clear_400(world, api, data, field):
    api.force_authenticate(world.sales_manager)
    body = {"unit": world.a.pk, "name": "CRM", "url": "https://crm.example.cn/hook", **data}
    if body["unit"] == "B":
        body["unit"] = world.b.pk

    response = api.post(HOOKS, body, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert WebhookEndpoint.objects.count() == 0


def test_webhooks_are_for_sales_ops_of_the_unit(world, api):
    ours = endpoint(world, "https://crm.example.cn/a")
    theirs = WebhookEndpoint.objects.create(
        unit=world.b, name="B", url="https://crm.example.cn/b", secret="x"
    )
    api.force_authenticate(world.sdr)
    assert api.get(HOOKS).json()["results"] == []
    assert api.get(f"{HOOKS}{ours.pk}/").status_code == 404
    api.force_authenticate(world.sales_manager)

    listed = [r["id"] for r in api.get(HOOKS).json()["results"]]
    off = api.patch(f"{HOOKS}{theirs.pk}/", {"is_active": False}, format="json")
    gone = api.delete(f"{HOOKS}{theirs.pk}/")

    assert listed == [ours.pk]
    assert (off.status_code, gone.status_code) == (404, 404)
    theirs.refresh_from_db()
    assert theirs.is_active is True


def test_switching_off_and_reading_the_delivery_log(world, api, receiver):
    hook = endpoint(world, receiver.url)
    webhooks.emit(world.a.pk, "lead.created", {"lead": {"id": 1}})
    delivery.webhook_deliveries_send()
    api.force_authenticate(world.sales_manager)

    off = api.patch(f"{HOOKS}{hook.pk}/", {"is_active": False}, format="json")
    log = api.get(f"{HOOKS}{hook.pk}/deliveries/").json()["results"]

    assert off.status_code == 200
    assert off.json()["is_active"] is False
    assert [(d["event"], d["status"], d["attempts"], d["last_status_code"]) for d in log] == [
        ("lead.created", "delivered", 1, 200)
    ]
    assert webhooks.emit(world.a.pk, "lead.created", {"lead": {"id": 2}}) == 0


# --- The console page -----------------------------------------------------------------------


def test_the_console_page_lists_adds_and_switches_off(world, client, receiver):
    hook = endpoint(world, receiver.url)
    webhooks.emit(world.a.pk, "lead.created", {"lead": {"id": 1}})
    receiver.codes = [502]
    delivery.webhook_deliveries_send()
    client.force_login(world.sales_manager)
    url = "/console/sales/webhooks/"

    page = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    added = client.post(
        url,
        {
            "name": "金蝶 CRM",
            "url": "https://crm.example.cn/k",
            "unit": world.a.pk,
            "events": ["lead.created"],
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    after = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    again = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    client.post(f"{url}{hook.pk}/active/", {"active": "0"}, HTTP_ACCEPT_LANGUAGE="en")

    text = page.content.decode()
    assert page.status_code == 200
    assert "Salesforce" in text
    assert "lead.created" in text
    assert "502" in text
    assert added.status_code == 302
    made = WebhookEndpoint.objects.get(name="金蝶 CRM")
    assert made.secret in after.content.decode()
    assert made.secret not in again.content.decode()
    hook.refresh_from_db()
    assert hook.is_active is False


def test_the_console_page_in_chinese(world, client):
    endpoint(world, "https://crm.example.cn/a")
    client.force_login(world.sales_manager)

    page = client.get("/console/sales/webhooks/", HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert page.status_code == 200


def test_a_bad_url_on_the_console_page_is_400_and_nothing_is_stored(world, client):
    client.force_login(world.sales_manager)

    response = client.post(
        "/console/sales/webhooks/",
        {"name": "x", "url": "not a url", "unit": world.a.pk},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 400
    assert "Enter a valid URL." in response.content.decode()
    assert WebhookEndpoint.objects.count() == 0


def test_the_console_page_is_for_sales_ops(world, client):
    theirs = WebhookEndpoint.objects.create(
        unit=world.b, name="B", url="https://crm.example.cn/b", secret="x"
    )
    client.force_login(world.marketer)
    assert client.get("/console/sales/webhooks/").status_code == 403
    client.force_login(world.sales_manager)

    response = client.post(f"/console/sales/webhooks/{theirs.pk}/active/", {"active": "0"})

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.is_active is True
