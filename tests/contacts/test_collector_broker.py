"""The collector against the real broker and a real Celery worker: a broker outage loses
nothing, and the backlog drains exactly once when the broker and the worker return."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from apps.contacts.collector.intake import dispatch_drain, dispatch_resume
from apps.contacts.models import Activity, RawBatch, Site
from apps.contacts.tasks.collector import collector_sweep
from apps.core.health import worker_status
from config.celery import app
from tests.support import database_url

# Transactional: the worker is another process and must see committed rows.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.broker]

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15"


@contextmanager
def worker_running() -> Iterator[None]:
    """A real `celery worker` process on the real broker, consuming this run's queue."""
    env = {
        **os.environ,
        "LEADLOOP_TESTING": "1",
        "LEADLOOP_TEST_RUN": settings.TEST_RUN,
        "REDIS_URL": settings.REDIS_URL,
        "DATABASE_URL": database_url(),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "WARNING",
            "--hostname",
            f"test-{settings.TEST_RUN}@%h",
            "-Q",
            app.conf.task_default_queue,
        ],
        env=env,
        cwd=settings.BASE_DIR,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if worker_status(timeout=0.5)["status"] == "up":
                break
            assert process.poll() is None, "the worker exited during start-up"
        else:
            pytest.fail("the worker did not come up in 30 s")
        yield
    finally:
        process.terminate()
        process.wait(timeout=20)


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
