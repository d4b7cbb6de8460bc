"""Timing and query counting shared by benchmarks."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext


@dataclass(frozen=True)
class Timing:
    """Wall times of repeated runs, in milliseconds."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)


def time_ms(fn: Callable[[], Any], *, repeat: int = 15, warmup: int = 2) -> Timing:
    """Wall time of ``fn()`` (``time.perf_counter``), ``repeat`` runs after ``warmup``."""
    for _ in range(warmup):
        fn()
    gc.collect()
    samples = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return Timing(tuple(samples))


@dataclass
class Captured:
    """The SQL one call ran."""

    sql: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.sql)

    def containing(self, needle: str) -> list[str]:
        """Statements that contain ``needle`` (case-insensitive, spaces ignored)."""
        want = needle.replace(" ", "").upper()
        return [q for q in self.sql if want in q.replace(" ", "").upper()]


def capture_queries(fn: Callable[[], Any]) -> Captured:
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return Captured([q["sql"] for q in ctx.captured_queries])


def explain_analyze(sql: str, params: Any = None) -> str:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of one statement, as text."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())
