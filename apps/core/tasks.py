"""Thin Celery wrappers for core, and the on-commit dispatch helper every app uses."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

HEARTBEAT_KEY = "core:beat-heartbeat"


def enqueue_on_commit(task: Any, *args: Any, **kwargs: Any) -> None:
    """Queue ``task`` once the current transaction commits (never from inside it)."""
    transaction.on_commit(lambda: task.delay(*args, **kwargs))


@shared_task(name="core.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """Beat schedules this every minute; /healthz reads when it last ran."""
    cache.set(HEARTBEAT_KEY, timezone.now().isoformat(), timeout=24 * 3600)
