"""/healthz and Celery over the real broker (the embedded Redis, or REDIS_URL)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.db import transaction

from apps.core.tasks import HEARTBEAT_KEY, enqueue_on_commit, heartbeat
from config.celery import app
from tests.support import worker_running

pytestmark = [pytest.mark.django_db, pytest.mark.broker]


@pytest.fixture
def worker() -> Iterator[None]:
    """A real `celery worker` process on the real broker, consuming this run's queue."""
    with worker_running(purge=True):
        yield


def test_healthz_reports_everything_up_with_a_worker(worker, client):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["database"] == {"status": "up"}
    assert body["broker"] == {"status": "up"}
    assert body["worker"]["status"] == "up"


def test_healthz_is_503_when_no_worker_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["worker"] == {
        "status": "down",
        "error": f"no worker consumes the queue {app.conf.task_default_queue!r}",
    }
    assert body["database"] == {"status": "up"}


def test_healthz_is_503_when_the_broker_is_down(client, monkeypatch):
    # Write URL first: it falls back to broker_url, so patching that first would make
    # monkeypatch remember (and "restore") the dead address.
    monkeypatch.setattr(app.conf, "broker_write_url", None)
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:9/0")
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert body["broker"]["status"] == "down"
    assert body["worker"] == {"status": "down", "error": "broker is down"}


def test_a_task_round_trips_through_the_broker(worker):
    cache.delete(HEARTBEAT_KEY)
    heartbeat.delay()  # ignore_result: nothing to wait on but its effect
    deadline = time.monotonic() + 15
    while cache.get(HEARTBEAT_KEY) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cache.get(HEARTBEAT_KEY) is not None


def test_on_commit_dispatch_waits_for_the_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        enqueue_on_commit(heartbeat)
        assert callbacks == []
    assert len(callbacks) == 1


def test_a_rolled_back_transaction_dispatches_nothing(django_capture_on_commit_callbacks):
    def dispatch_then_fail() -> None:
        with transaction.atomic():
            enqueue_on_commit(heartbeat)
            raise RuntimeError("boom")

    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        pytest.raises(RuntimeError),
    ):
        dispatch_then_fail()
    assert callbacks == []


@pytest.mark.django_db(transaction=True)
def test_beat_schedules_live_in_the_database():
    # The scheduler closes "old" connections as it starts, which a test transaction can't
    # survive; hence a transactional test.
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    DatabaseScheduler(app=app)  # what `celery beat` does at start: syncs the schedule
    task = PeriodicTask.objects.get(name="core-heartbeat")
    assert (task.task, task.interval.every, task.interval.period) == (
        "core.heartbeat",
        60,
        "seconds",
    )
