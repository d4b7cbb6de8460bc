"""Timing and query counting shared by benchmarks."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db import connection
from django.test.utils import CaptureQueriesContext

K = TypeVar("K", bound=Hashable)


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
    return time_interleaved({"": fn}, repeat=repeat, warmup=warmup)[""]


def time_interleaved(
    fns: Mapping[K, Callable[[], Any]], *, repeat: int = 15, warmup: int = 2
) -> dict[K, Timing]:
    """:func:`time_ms` for several calls at once, taking turns run by run.

    A burst of load from elsewhere on the machine then slows every series alike instead
    of landing on one of them, so the ratios between them stay fair.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    gc.collect()
    samples: dict[K, list[float]] = {key: [] for key in fns}
    for _ in range(max(1, repeat)):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[key].append((time.perf_counter() - start) * 1000)
    return {key: Timing(tuple(values)) for key, values in samples.items()}


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
