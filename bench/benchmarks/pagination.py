"""Keyset pagination of the audit log: does page 1,000 cost what page 1 does?

Two surfaces list the audit log newest first, 50 rows a page, with a cursor instead of an
OFFSET: the API (``/api/v1/audit-log/``) and the console page (``/console/audit/``). The
baseline is the first page over a small log (10 k rows); against it we time the first page
and a page 50 k rows deep over a large log (1 M rows). Keyset pagination should make all
three cost the same, with the same number of queries and never a ``COUNT(*)``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.report import Result, Row, human, log, scaling_checks

if TYPE_CHECKING:
    from django.test import Client
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

    from apps.core.models import AuditLog
    from bench.measure import Captured, Timing

NAME = "pagination"
DESCRIPTION = "audit-log list (API and console): first page at 10k/1M rows, 50k rows deep"

RATIO_MAX = 1.5
PAGE_SIZE = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--small", type=int, default=10_000, help="rows for the baseline")
    parser.add_argument("--large", type=int, default=1_000_000, help="rows for the large log")
    parser.add_argument("--depth", type=int, default=50_000, help="rows before the deep page")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print EXPLAIN ANALYZE of each list query (always done when the target is missed)",
    )


@dataclass(frozen=True)
class Surface:
    name: str
    path: str
    # Checks one response and raises when it is not the page we asked for.
    check: Callable[[TestResponse, AuditLog], None]


def _check_api(response: TestResponse, first: AuditLog) -> None:
    data: dict[str, Any] = response.json()
    results = data["results"]
    if len(results) != PAGE_SIZE or results[0]["id"] != first.pk:
        raise AssertionError(f"API returned the wrong page (first id {results[0]['id']})")


def _check_console(response: TestResponse, first: AuditLog) -> None:
    body = response.content.decode()
    if body.count("<tr>") != PAGE_SIZE + 1 or f">{first.object_repr}<" not in body:
        raise AssertionError(f"console page does not start at {first.object_repr}")


SURFACES = (
    Surface("api", "/api/v1/audit-log/", _check_api),
    Surface("console", "/console/audit/", _check_console),
)


@dataclass
class Measured:
    timing: Timing
    queries: Captured

    @property
    def ms(self) -> float:
        return self.timing.median


@dataclass(frozen=True)
class Series:
    """One figure: a surface's page that starts at ``first`` (after ``cursor``)."""

    surface: Surface
    first: AuditLog
    cursor: str | None = None


Key = tuple[str, str]  # (surface, figure)


def measure(
    client: Client, series: dict[Key, Series], args: argparse.Namespace
) -> dict[Key, Measured]:
    """Time every series, taking turns, then capture one request's SQL for each."""
    from bench.measure import capture_queries, time_interleaved

    def requester(s: Series) -> Callable[[], TestResponse]:
        params = {"cursor": s.cursor} if s.cursor else {}
        accept = "application/json" if s.surface.name == "api" else "text/html"

        def request() -> TestResponse:
            response = client.get(s.surface.path, params, HTTP_ACCEPT=accept)
            if response.status_code != 200:
                raise AssertionError(f"{s.surface.path} answered {response.status_code}")
            return response

        return request

    requests = {key: requester(s) for key, s in series.items()}
    # Checked once, outside the timing: each page must be the one the cursor points at.
    for key, s in series.items():
        s.surface.check(requests[key](), s.first)
    timings = time_interleaved(requests, repeat=args.repeat, warmup=args.warmup)
    return {key: Measured(timings[key], capture_queries(requests[key])) for key in series}


def list_query(captured: Captured) -> str | None:
    """The statement that read the audit-log page."""
    from apps.core.models import AuditLog

    table = f'FROM "{AuditLog._meta.db_table}"'
    return next((q for q in captured.sql if table in q), None)


def run(args: argparse.Namespace) -> Result:
    from django.test import Client

    from apps.core.models import AuditLog
    from apps.core.pagination import cursor_for
    from bench import generate
    from bench.measure import explain_analyze

    small, large, depth = args.small, args.large, args.depth
    if not 0 < small <= large or not PAGE_SIZE < depth < large - PAGE_SIZE:
        raise SystemExit("need 0 < --small <= --large and 50 < --depth < --large - 50")
    sm, lg, dp = human(small), human(large), human(depth)
    table = AuditLog._meta.db_table

    world = generate.ensure_world()
    client = Client(HTTP_HOST="localhost")
    client.force_login(world.admin)
    visible = AuditLog.objects.visible_to(world.admin, "core.view_audit").order_by("-id")

    def fill(rows: int) -> float:
        start = time.perf_counter()
        generate.fill_audit_log(world.unit, rows, actor=world.admin)
        generate.analyze(table)
        seconds = time.perf_counter() - start
        log(f"audit log filled to {rows:,} rows in {seconds:.1f} s (and settled)")
        return seconds

    log(f"bench database ready; emptying {table}")
    generate.truncate(table)
    fill_small_s = fill(small)
    # Pay the process's one-off costs (imports, template and URL caches, the connection)
    # before the baseline, so they don't land in it.
    for surface in SURFACES:
        for _ in range(5):
            client.get(surface.path)
    results = measure(
        client, {(sf.name, "first_small"): Series(sf, visible[0]) for sf in SURFACES}, args
    )
    log(f"measured the first page at {sm}")

    fill_large_s = fill(large)
    # The page `depth` rows deep starts after the row the previous page ended on.
    ended_on = visible[depth - 1]
    cursor = cursor_for(ended_on, ordering=("-id",))
    large_series: dict[Key, Series] = {}
    for sf in SURFACES:
        large_series[sf.name, "first_large"] = Series(sf, visible[0])
        large_series[sf.name, "deep_large"] = Series(sf, visible[depth], cursor)
    results.update(measure(client, large_series, args))
    log(f"measured the first page at {lg} and the page {dp} rows deep")

    figures: dict[str, Any] = {
        "rows_small": small,
        "rows_large": large,
        "depth": depth,
        "page_size": PAGE_SIZE,
        "repeat": args.repeat,
        "warmup": args.warmup,
        "fill_small_s": round(fill_small_s, 2),
        "fill_large_s": round(fill_large_s, 2),
    }
    checks: list[tuple[str, bool]] = []
    for surface in SURFACES:
        first_small = results[surface.name, "first_small"]
        first_large = results[surface.name, "first_large"]
        deep_large = results[surface.name, "deep_large"]
        captured = (first_small.queries, first_large.queries, deep_large.queries)
        counts = sum(len(c.containing("COUNT(")) for c in captured)
        ratio = deep_large.ms / first_small.ms
        figures[surface.name] = {
            "path": surface.path,
            "first_small_ms": round(first_small.ms, 3),
            "first_large_ms": round(first_large.ms, 3),
            "deep_large_ms": round(deep_large.ms, 3),
            # The fastest run of each series: less sensitive to a busy machine.
            "first_small_min_ms": round(first_small.timing.min, 3),
            "first_large_min_ms": round(first_large.timing.min, 3),
            "deep_large_min_ms": round(deep_large.timing.min, 3),
            "queries_small": first_small.queries.count,
            "queries_large": first_large.queries.count,
            "queries_deep": deep_large.queries.count,
            "count_queries": counts,
            "ratio_first_large": round(first_large.ms / first_small.ms, 3),
            "ratio_deep_large": round(ratio, 3),
        }
        checks += scaling_checks(
            surface=surface.name,
            ratio_label=f"deep{dp}@{lg} ÷ first@{sm}",
            ratio=ratio,
            ratio_max=RATIO_MAX,
            small=sm,
            large=lg,
            queries_small=first_small.queries.count,
            queries_large=first_large.queries.count,
            count_queries=counts,
        )

    def cells(key: str) -> list[Any]:
        return [figures[surface.name][key] for surface in SURFACES]

    rows = [
        Row(f"first@{sm} ms (baseline)", cells("first_small_ms")),
        Row(f"first@{lg} ms", cells("first_large_ms")),
        Row(f"deep{dp}@{lg} ms", cells("deep_large_ms")),
        Row(f"queries@{sm}", cells("queries_small")),
        Row(f"queries@{lg}", cells("queries_large")),
        Row(f"queries deep{dp}@{lg}", cells("queries_deep")),
        Row("count_queries", cells("count_queries")),
        Row(f"ratio first@{lg} ÷ first@{sm}", cells("ratio_first_large")),
        Row(f"ratio deep{dp}@{lg} ÷ first@{sm}", cells("ratio_deep_large")),
    ]
    result = Result(
        name=NAME,
        title=f"pagination: audit log, {PAGE_SIZE} rows a page, median of {args.repeat} "
        f"after {args.warmup} warm-ups",
        figures=figures,
        target={
            "ratio_deep_large_max": RATIO_MAX,
            "queries_small_equals_queries_large": True,
            "count_queries": 0,
        },
        columns=[surface.name for surface in SURFACES],
        rows=rows,
        checks=checks,
    )

    if args.explain or not result.met:
        for surface in SURFACES:
            for key in ("first_large", "deep_large"):
                sql = list_query(results[surface.name, key].queries)
                if sql is not None:
                    print(f"\n-- {surface.name} {key}: {sql}\n{explain_analyze(sql)}")
        print()
    return result
