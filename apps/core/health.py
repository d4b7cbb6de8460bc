"""Liveness of the database, the broker and the workers, for /healthz."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from apps.core.tasks import HEARTBEAT_KEY

UP, DOWN = "up", "down"


def database_status() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"status": UP}
    except Exception as exc:  # noqa: BLE001 - report any failure, don't raise
        return {"status": DOWN, "error": str(exc).splitlines()[0][:200]}


def broker_status() -> dict[str, Any]:
    from config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"status": UP}
    except Exception as exc:  # noqa: BLE001
        return {"status": DOWN, "error": str(exc).splitlines()[0][:200]}


def worker_status(timeout: float = 1.5) -> dict[str, Any]:
    """Up when some worker consumes our task queue (a worker of another app on the same
    broker does not count)."""
    from config.celery import app

    queue = app.conf.task_default_queue
    try:
        replies = app.control.inspect(timeout=timeout).active_queues() or {}
    except Exception as exc:  # noqa: BLE001
        return {"status": DOWN, "error": str(exc).splitlines()[0][:200]}
    workers = sorted(
        name for name, queues in replies.items() if any(q.get("name") == queue for q in queues)
    )
    if not workers:
        return {"status": DOWN, "error": f"no worker consumes the queue {queue!r}"}
    return {"status": UP, "workers": workers}


def beat_status() -> dict[str, Any]:
    """Informational: beat's heartbeat task runs every minute."""
    try:
        raw = cache.get(HEARTBEAT_KEY)
    except Exception:  # noqa: BLE001
        return {"status": "unknown"}
    if not raw:
        return {"status": "unknown"}
    last = datetime.fromisoformat(raw)
    age = (timezone.now() - last).total_seconds()
    return {"status": UP if age < 180 else "stale", "last_run": raw}


def health_report() -> tuple[dict[str, Any], bool]:
    report = {
        "database": database_status(),
        "broker": broker_status(),
    }
    # Without a broker a ping cannot reach any worker; don't wait for it to time out.
    if report["broker"]["status"] == UP:
        report["worker"] = worker_status()
    else:
        report["worker"] = {"status": DOWN, "error": "broker is down"}
    report["beat"] = beat_status()
    healthy = all(report[k]["status"] == UP for k in ("database", "broker", "worker"))
    return {"status": "ok" if healthy else "unhealthy", **report}, healthy
