"""Helpers for tests that start other processes against this run's services."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from django.db import connection


def database_url(name: str | None = None) -> str:
    """A URL for the database this test run uses (the test database by default)."""
    db = connection.settings_dict
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host", "")
    user = quote(db.get("USER") or "")
    password = quote(db.get("PASSWORD") or "")
    dbname = name or db["NAME"]
    if not host or host.startswith("/"):
        return f"postgresql://{user}:{password}@/{dbname}?host={host}"
    return f"postgresql://{user}:{password}@{host}:{db.get('PORT') or 5432}/{dbname}"


def start_worker(hostname: str) -> subprocess.Popen[bytes]:
    """A real ``celery worker`` process (solo pool: one task at a time) on the real broker,
    consuming this run's queue, as ``hostname``."""
    from django.conf import settings

    from config.celery import app

    env = {
        **os.environ,
        "LEADLOOP_TESTING": "1",
        "LEADLOOP_TEST_RUN": settings.TEST_RUN,
        "REDIS_URL": settings.REDIS_URL,
        "DATABASE_URL": database_url(),
    }
    return subprocess.Popen(
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
            hostname,
            "-Q",
            app.conf.task_default_queue,
        ],
        env=env,
        cwd=settings.BASE_DIR,
    )


def purge_queue() -> None:
    """Drop tasks earlier tests left in this run's queue."""
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(app.conf.task_default_queue)


@contextmanager
def worker_running(*, purge: bool = False) -> Iterator[None]:
    """A real `celery worker` process on the real broker, consuming this run's queue.

    ``purge`` first drops tasks earlier tests left in the queue, so they cannot run ahead
    of the test's own.
    """
    from django.conf import settings

    from apps.core.health import worker_status

    if purge:
        purge_queue()
    process = start_worker(f"test-{settings.TEST_RUN}@%h")
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
