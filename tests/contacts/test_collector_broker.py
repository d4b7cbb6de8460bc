"""The collector against the real broker and a real Celery worker: a broker outage loses
nothing, and the backlog drains exactly once when the broker and the worker return."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from django.test import Client
from django.utils import timezone

from apps.contacts.collector.intake import dispatch_drain, dispatch_resume
from apps.contacts.models import Activity, RawBatch, Site
from apps.contacts.tasks.collector import collector_sweep
from config.celery import app
from tests.support import worker_running

# Transactional: the worker is another process and must see committed rows.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.broker]

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15"


def wait_until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def pending() -> int:
    return RawBatch.objects.dangerously_unscoped().filter(status="pending").count()


def send(client: Client, visitor: str) -> int:
    body = {
        "anonymous_id": visitor,
        "events": [
            {
                "type": "page_view",
                "id": str(uuid.uuid4()),
                "occurred_at": timezone.now().isoformat(),
            },
            {"type": "click", "id": str(uuid.uuid4()), "occurred_at": timezone.now().isoformat()},
        ],
    }
    response = client.post(
        "/api/v1/collect",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_X_LEADLOOP_KEY="pk_broker",
    )
    return response.status_code


def test_an_outage_loses_nothing_and_the_backlog_drains_once(world, monkeypatch):
    dispatch_resume()
    Site.objects.create(unit=world.a, name="官网", public_key="pk_broker", signing_secret="x")
    client = Client(HTTP_USER_AGENT=BROWSER)

    # Given the broker is down: every request is still accepted and stored
    with monkeypatch.context() as outage:
        # write URL first: read after broker_url changed, it would "restore" the bad URL
        outage.setattr(app.conf, "broker_write_url", None)
        outage.setattr(app.conf, "broker_url", "redis://127.0.0.1:9/0")
        outage.setattr(app, "_pool", None)
        outage.setattr(app.amqp, "_producer_pool", None)
        codes = [send(client, f"v-{i}") for i in range(200)]
        assert dispatch_drain(timeout=30)
    assert codes == [202] * 200
    assert pending() == 200
    assert Activity.objects.dangerously_unscoped().count() == 0

    # When the broker is back and beat's sweep runs on a real worker
    dispatch_resume()
    with worker_running():
        collector_sweep.delay()
        wait_until(lambda: pending() == 0)
        # and new requests are dispatched on commit and processed straight away
        assert [send(client, f"w-{i}") for i in range(5)] == [202] * 5
        wait_until(lambda: pending() == 0)

    # Then every event is exactly one activity
    assert RawBatch.objects.dangerously_unscoped().filter(status="processed").count() == 205
    assert Activity.objects.dangerously_unscoped().count() == 410
    assert Activity.objects.dangerously_unscoped().filter(type="click").count() == 205
