"""What every benchmark returns, the table it prints and the JSON it leaves behind."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"

Cell = float | int | str | None


@dataclass
class Row:
    label: str
    cells: Sequence[Cell]


@dataclass
class Result:
    """One benchmark run.

    ``figures`` and ``target`` go to the JSON file as they are; ``columns`` and ``rows``
    are the printed table; ``checks`` are the target's conditions, each with its outcome.
    """

    name: str
    title: str
    figures: dict[str, Any]
    target: dict[str, Any]
    columns: list[str]
    rows: list[Row]
    checks: list[tuple[str, bool]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def met(self) -> bool:
        return all(ok for _, ok in self.checks)


def machine_details() -> dict[str, Any]:
    """Where the figures were taken: they mean little without it."""
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        row = cursor.fetchone()
    return {
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "postgres": row[0] if row else "unknown",
        "debug": settings.DEBUG,
    }


def machine() -> str:
    """:func:`machine_details` on one line."""
    d = machine_details()
    return (
        f"{d['platform']} ({d['processor']}), {d['cpu_count']} CPUs, Python {d['python']}, "
        f"PostgreSQL {d['postgres']}{', DEBUG on' if d['debug'] else ''}"
    )


def _format(cell: Cell) -> str:
    if cell is None:
        return "—"
    if isinstance(cell, bool):
        return "yes" if cell else "no"
    if isinstance(cell, float):
        return f"{cell:,.2f}"
    if isinstance(cell, int):
        return f"{cell:,}"
    return cell


def render_table(result: Result) -> str:
    header = ["", *result.columns]
    body = [[row.label, *(_format(c) for c in row.cells)] for row in result.rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    out = [result.title, rule, line(header), rule, *(line(r) for r in body), rule]
    for text, ok in result.checks:
        out.append(f"[{'ok' if ok else 'MISSED'}] {text}")
    out.append(f"target {'met' if result.met else 'NOT met'}")
    out.extend(f"note: {n}" for n in result.notes)
    return "\n".join(out)


def write_json(result: Result, directory: Path = RESULTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.name}.json"
    payload = {
        "figures": result.figures,
        "target": result.target,
        "met": result.met,
        "checks": dict(result.checks),
        "machine": machine(),
        "machine_details": machine_details(),
    }
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")
    return path


def report(result: Result) -> Path:
    """Print the table and write ``results/NAME.json``; return the file's path."""
    print(render_table(result))
    path = write_json(result)
    print(f"wrote {path}")
    return path


def scaling_checks(
    *,
    surface: str,
    ratio_label: str,
    ratio: float,
    ratio_max: float,
    small: str,
    large: str,
    queries_small: int,
    queries_large: int,
    count_queries: int,
) -> list[tuple[str, bool]]:
    """The conditions a list must meet as its table grows: time ratio, equal query count,
    no COUNT(*)."""
    return [
        (f"{surface}: {ratio_label} = {ratio:.2f} ≤ {ratio_max}", ratio <= ratio_max),
        (
            f"{surface}: same query count at {small} and {large} "
            f"({queries_small} vs {queries_large})",
            queries_small == queries_large,
        ),
        (f"{surface}: no COUNT( queries ({count_queries} found)", count_queries == 0),
    ]


def log(message: str) -> None:
    """Progress for the person running the bench (stderr, so the table stays clean)."""
    print(message, file=sys.stderr, flush=True)


def human(n: int) -> str:
    """10000 -> "10k", 1000000 -> "1M", anything else with thousands separators."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= size and n % size == 0:
            return f"{n // size}{suffix}"
    return f"{n:,}"
