"""The collector under load, served as production serves it, and its processing rate.

Part 1, intake. Two gunicorn servers on loopback, started by the bench with the same
command line: the Django project (``config.wsgi``, ``POST /api/v1/collect``) and a minimal
WSGI app that only stores the raw body (``bench.collector_minimal``). A load generator in
a process of its own (``bench.collector_loadgen``) sends batches of page views at
increasing concurrency, taking turns between the servers step by step. The figure: the
highest accepted events/s among the steps whose p99 latency stays within 50 ms, and its
ratio to the minimal handler's (target ≥ 0.5).

Part 2, processing. With the servers stopped, the worker's processing function runs
in-process over the raw batches the load stored, turning them into Activities; the
baseline writes the very same Activity rows with ``COPY`` into a staging table and one
``INSERT … SELECT`` (target: processing ≥ 0.5 × the baseline's events/s).

Profiling: with ``BENCH_COLLECTOR_PROFILE=<folder>`` every gunicorn worker (both servers,
through the same config hooks) and each processing run write a cProfile file there. The
figures of such a run are slowed by the profiler; use it to find costs, not to report.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.report import Result, Row, log

NAME = "collector"
DESCRIPTION = (
    "collector intake under gunicorn (events/s at p99 ≤ 50 ms) vs a store-the-body WSGI "
    "app; raw → Activities vs COPY"
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent
P99_MAX_MS = 50.0
RATIO_INTAKE_MIN = 0.5
RATIO_PROCESSING_MIN = 0.5
SITE_KEY = "bench-collector-site"
# Celery queue the servers' on-commit dispatches land in (no worker consumes it here).
TASK_RUN = "bench-collector"
RUDDERSTACK_NOTE = "for scale: RudderStack reports about 1.7 k events/s on 2 cores"
# Set to a folder to profile the run with cProfile (for finding costs, not for figures:
# profiling slows everything): every gunicorn worker of both servers writes
# ``gunicorn-<label>-<pid>.prof`` when it exits, the processing writes
# ``processing-<task|sweep>.prof``. Read them with ``python -m pstats``.
PROFILE_ENV = "BENCH_COLLECTOR_PROFILE"
# A gunicorn config file, written only when profiling: the same for both servers.
GUNICORN_PROFILE_HOOKS = """
import cProfile, os

def post_fork(server, worker):
    worker.profile = cProfile.Profile()
    worker.profile.enable()

def worker_exit(server, worker):
    worker.profile.disable()
    worker.profile.dump_stats(os.path.join({folder!r}, f"gunicorn-{label}-{{os.getpid()}}.prof"))
"""
ACTIVITY_COLUMNS = (
    "unit_id",
    "contact_id",
    "anonymous_id",
    "type",
    "occurred_at",
    "channel_id",
    "campaign_id",
    "object_type",
    "object_id",
    "properties",
    "dedupe_key",
    "recorded_at",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--concurrency",
        default="1,2,4,8,16",
        help="comma-separated concurrency steps (default 1,2,4,8,16)",
    )
    parser.add_argument(
        "--requests", type=int, default=8000, help="at most this many requests per step"
    )
    parser.add_argument(
        "--duration", type=float, default=12.0, help="at most this many seconds per step"
    )
    parser.add_argument(
        "--events-per-batch", type=int, default=10, help="page views per request (default 10)"
    )
    parser.add_argument(
        "--worker-class", default="sync", choices=("sync", "gthread"), help="gunicorn -k"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn -w (default 2)")
    parser.add_argument(
        "--threads", type=int, default=1, help="gunicorn --threads (gthread only; default 1)"
    )
    parser.add_argument(
        "--process-batches",
        type=int,
        default=2000,
        help="raw batches to process in part 2 (default 2000; fewer if the load stored fewer)",
    )
    parser.add_argument("--path", default="/api/v1/collect", help="the collector's path")
    parser.add_argument("--skip-processing", action="store_true", help="measure the intake only")


# --- Servers ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def server_environment() -> dict[str, str]:
    """What a production worker would see, pointed at the bench database and Redis."""
    from django.conf import settings

    from bench.environment import BENCH_DB_NAME
    from config import services

    env = dict(os.environ)
    env["DATABASE_URL"] = os.environ.get("DATABASE_URL") or services.embedded_postgres_url(
        BENCH_DB_NAME
    )
    env["REDIS_URL"] = settings.REDIS_URL
    env["LEADLOOP_TESTING"] = "1"  # no SECRET_KEY needed, no HTTPS redirect
    env["LEADLOOP_TEST_RUN"] = TASK_RUN  # one known Celery queue, emptied afterwards
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env["LOG_LEVEL"] = "WARNING"
    env.pop("DEBUG", None)
    env["PYTHONPATH"] = str(BASE_DIR)
    return env


@dataclass
class Server:
    label: str
    app: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-30:])
        except OSError:
            return ""


def gunicorn_command(
    app: str, port: int, args: argparse.Namespace, log_path: Path, config: Path | None = None
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--chdir",
        str(BASE_DIR),
        "-b",
        f"127.0.0.1:{port}",
        "-k",
        args.worker_class,
        "-w",
        str(args.workers),
        "--error-logfile",
        str(log_path),
        "--log-level",
        "warning",
        "--graceful-timeout",
        "5",
    ]
    if args.worker_class == "gthread":
        command += ["--threads", str(args.threads)]
    if config is not None:
        command += ["--config", str(config)]
    return command


def describe_stack(args: argparse.Namespace) -> str:
    threads = f", {args.threads} threads each" if args.worker_class == "gthread" else ""
    return f"gunicorn -k {args.worker_class}, {args.workers} workers{threads}"


@contextlib.contextmanager
def gunicorn(
    label: str, app: str, args: argparse.Namespace, env: dict[str, str], folder: Path
) -> Iterator[Server]:
    port = free_port()
    log_path = folder / f"gunicorn-{label}.log"
    config = None
    profile_folder = os.environ.get(PROFILE_ENV)
    if profile_folder:
        config = folder / f"gunicorn-{label}.conf.py"
        hooks = GUNICORN_PROFILE_HOOKS.format(folder=os.path.abspath(profile_folder), label=label)
        config.write_text(hooks)
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        gunicorn_command(app, port, args, log_path, config),
        env=env,
        cwd=BASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=log_path.with_suffix(".out").open("wb"),
    )
    server = Server(label, app, port, process, log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn for {label} exited:\n{server.tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn for {label} did not listen within 60 s")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def load(
    server: Server, args: argparse.Namespace, concurrency: int, requests: int, duration: float
) -> dict[str, Any]:
    """One step of the load generator against ``server``; its JSON result."""
    command = [
        sys.executable,
        "-m",
        "bench.collector_loadgen",
        "--port",
        str(server.port),
        "--path",
        args.path,
        "--key",
        SITE_KEY,
        "--events",
        str(args.events_per_batch),
        "--concurrency",
        str(concurrency),
        "--requests",
        str(requests),
        "--duration",
        str(duration),
        "--seed",
        str(concurrency),
    ]
    done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        command, cwd=BASE_DIR, capture_output=True, timeout=duration + 300, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{done.stderr.decode()}")
    result: dict[str, Any] = json.loads(done.stdout)
    if result["accepted"] == 0:
        raise AssertionError(
            f"{server.label}: no request accepted ({result['statuses']}, "
            f"{result['answer_sample'] or result['error_sample']})\n{server.tail()}"
        )
    return result


def best(steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The step with the most accepted events/s among those within the p99 bound."""
    within = [s for s in steps if s["p99_ms"] <= P99_MAX_MS and s["accepted"] == s["requests"]]
    return max(within, key=lambda s: s["accepted_events_per_s"], default=None)


# --- Database -----------------------------------------------------------------------------


def sql(statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return list(cursor.fetchall()) if cursor.description else []


def scalar(statement: str) -> int:
    rows = sql(statement)
    return int(rows[0][0]) if rows else 0


def settle(*tables: str) -> None:
    from bench import generate

    generate.analyze(*tables)


def prepare(args: argparse.Namespace) -> tuple[Any, Any]:
    """Empty the tables this bench fills; make sure the tracked site exists."""
    from apps.contacts.models import Site
    from bench import generate
    from bench.collector_minimal import CREATE_TABLE, TABLE

    world = generate.ensure_world()
    sql(CREATE_TABLE)
    generate.truncate(TABLE, "contacts_rawbatch", "contacts_activity")
    site, _ = Site.objects.update_or_create(
        public_key=SITE_KEY,
        defaults={
            "unit": world.unit,
            "name": "bench site",
            "signing_secret": "bench-" + "0" * 58,
            "allowed_origins": [],
            "max_events_per_batch": max(100, args.events_per_batch),
            # Every request comes from one address; the bench measures throughput, not the
            # per-visitor limit.
            "max_requests_per_minute": 1_000_000,
            "is_active": True,
        },
    )
    return world, site


def queue_length_and_drop(name: str) -> int:
    """How many task messages wait in Celery queue ``name``; then delete them."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    length = int(client.llen(name))
    client.delete(name)
    return length


# --- Part 1: intake -----------------------------------------------------------------------


def collector_available(path: str) -> str | None:
    """None when ``path`` resolves to a view; otherwise why not."""
    from django.urls import Resolver404, resolve

    try:
        resolve(path)
    except Resolver404:
        return f"{path} does not resolve (apps/contacts/api/collector.py not built yet?)"
    return None


def intake(args: argparse.Namespace, steps: list[int], folder: Path) -> dict[str, Any]:
    env = server_environment()
    servers = [("minimal", "bench.collector_minimal:application")]
    missing = collector_available(args.path)
    if missing is None:
        servers.append(("collector", "config.wsgi:application"))
    else:
        log(f"collector: {missing}; measuring the minimal handler only")
    results: dict[str, Any] = {label: [] for label, _ in servers}
    warmups: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        running = [stack.enter_context(gunicorn(lb, app, args, env, folder)) for lb, app in servers]
        # Untimed: every worker imports its app, opens its connections, fills its caches.
        for server in running:
            warm = load(server, args, concurrency=4 * args.workers, requests=400, duration=30)
            warmups[server.label] = warm["accepted"]
            log(f"{server.label}: warmed up on port {server.port} ({warm['statuses']})")
        # Taking turns step by step, so a burst of load elsewhere hits both alike.
        for concurrency in steps:
            for server in running:
                step = load(server, args, concurrency, args.requests, args.duration)
                results[server.label].append(step)
                log(
                    f"{server.label} c={concurrency}: {step['accepted_events_per_s']:,.0f} "
                    f"events/s, p50 {step['p50_ms']} ms, p99 {step['p99_ms']} ms, "
                    f"{step['requests']} requests, {step['statuses']}"
                )
    stored = {"minimal": scalar("SELECT count(*) FROM bench_collector_raw")}
    if "collector" in results:
        stored["collector"] = scalar("SELECT count(*) FROM contacts_rawbatch")
    accepted = {
        label: warmups[label] + sum(s["accepted"] for s in steps_)
        for label, steps_ in results.items()
    }
    return {
        "steps": results,
        "accepted_requests": accepted,
        "stored_rows": stored,
        "missing": missing,
        "dispatched_tasks": queue_length_and_drop(f"test-{TASK_RUN}")
        if "collector" in results
        else 0,
        "body_bytes_mean": results["minimal"][0]["body_bytes_mean"] if steps else 0,
    }


# --- Part 2: processing -------------------------------------------------------------------


def processors() -> dict[str, Callable[[list[int]], Any]] | None:
    """The worker-side ways raw batches become Activities, called in-process.

    ``task``: what ``contacts.collector_process`` runs: ``collector_batches_process(ids)``
    over the given ids, set-based in chunks of ``SWEEP_CHUNK`` (a transaction each); where
    only ``collector_batch_process`` exists, one batch per call, batch after batch.
    ``sweep``: what ``contacts.collector_sweep`` runs over a backlog, claiming pending
    batches in chunks. None when not built yet.
    """
    try:
        services = importlib.import_module("apps.contacts.collector.services")
    except ModuleNotFoundError as exc:
        if exc.name in {"apps.contacts.collector", "apps.contacts.collector.services"}:
            return None
        raise
    one = getattr(services, "collector_batch_process", None)
    many = getattr(services, "collector_batches_process", None)
    sweep = getattr(services, "collector_batches_sweep", None)
    if not callable(one) or not callable(sweep):
        return None

    def by_task(ids: list[int]) -> None:
        if callable(many):
            done = many(ids)
            if done.failed:
                raise AssertionError(f"batches failed: {done.failed}")
            return
        for batch_id in ids:
            one(batch_id=batch_id)

    def by_sweep(ids: list[int]) -> None:
        chunk = getattr(services, "SWEEP_CHUNK", 100)
        done = sweep(chunk=chunk, max_chunks=len(ids) // chunk + 2)
        if done.failed or done.more:
            raise AssertionError(f"the sweep left batches behind: {done}")

    return {"task": by_task, "sweep": by_sweep}


@contextlib.contextmanager
def profiled(name: str) -> Iterator[None]:
    """cProfile the block into ``$BENCH_COLLECTOR_PROFILE/NAME.prof`` when that is set."""
    folder = os.environ.get(PROFILE_ENV)
    if not folder:
        yield
        return
    import cProfile

    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        profile.dump_stats(os.path.join(folder, f"{name}.prof"))


def copy_out_activities(min_id: int) -> bytes:
    """The Activity rows (all but ``id``) from ``min_id`` on, in COPY text format."""
    from django.db import connection

    columns = ", ".join(ACTIVITY_COLUMNS)
    buffer = bytearray()
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            f"COPY (SELECT {columns} FROM contacts_activity WHERE id >= {int(min_id)} "
            "ORDER BY id) TO STDOUT"
        ) as copy,
    ):
        for chunk in copy:
            buffer += chunk
    return bytes(buffer)


def copy_baseline(rows: bytes) -> float:
    """COPY the rows into a staging table, then one INSERT … SELECT into the activities."""
    from django.db import connection, transaction

    columns = ", ".join(ACTIVITY_COLUMNS)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE activity_staging ON COMMIT DROP AS "
            f"SELECT {columns} FROM contacts_activity WITH NO DATA"
        )
        with cursor.cursor.copy(f"COPY activity_staging ({columns}) FROM STDIN") as copy:
            view = memoryview(rows)
            for offset in range(0, len(view), 1 << 20):
                copy.write(view[offset : offset + (1 << 20)])
        cursor.execute(
            f"INSERT INTO contacts_activity ({columns}) SELECT {columns} "
            "FROM activity_staging ON CONFLICT DO NOTHING"
        )
    return time.perf_counter() - started


def processing(args: argparse.Namespace) -> dict[str, Any]:
    """Each way of processing over its share of the stored batches, then its COPY baseline."""
    from bench import generate
    from bench.environment import assert_bench_database

    found = processors()
    if found is None:
        return {"skipped": "apps.contacts.collector.services is not built yet"}
    assert_bench_database()
    pending = [
        int(r[0])
        for r in sql(
            "SELECT id FROM contacts_rawbatch WHERE status = 'pending' ORDER BY id LIMIT %s",
            [args.process_batches + 10],
        )
    ]
    if len(pending) < 30:
        return {"skipped": f"only {len(pending)} pending raw batches"}
    # Only these batches: drop the rest of the load's rows so nothing else is pending.
    sql("DELETE FROM contacts_rawbatch WHERE id > %s", [pending[-1]])
    warm, timed = pending[:10], pending[10:]
    found["task"](warm)  # untimed: imports, caches, the site lookup
    half = len(timed) // 2
    shares = {"task": timed[:half], "sweep": timed[half:]}
    figures: dict[str, Any] = {}
    for name, ids in shares.items():
        generate.truncate("contacts_activity")
        settle("contacts_rawbatch", "contacts_activity")
        started = time.perf_counter()
        with profiled(f"processing-{name}"):
            found[name](ids)
        process_s = time.perf_counter() - started
        activities = scalar("SELECT count(*) FROM contacts_activity")
        statuses = dict(
            sql(
                "SELECT status, count(*) FROM contacts_rawbatch WHERE id BETWEEN %s AND %s "
                "GROUP BY status",
                [ids[0], ids[-1]],
            )
        )
        log(
            f"processing by {name}: {len(ids)} batches, "
            f"{activities:,} activities in {process_s:.2f} s"
        )

        rows = copy_out_activities(1)
        generate.truncate("contacts_activity")
        settle("contacts_activity")
        copy_s = copy_baseline(rows)
        copied = scalar("SELECT count(*) FROM contacts_activity")
        log(f"baseline (COPY + INSERT … SELECT): {copied:,} rows in {copy_s:.2f} s")
        figures[name] = {
            "batches": len(ids),
            "events_sent": len(ids) * args.events_per_batch,
            "activities": activities,
            "batch_statuses": statuses,
            "process_s": round(process_s, 3),
            "copy_s": round(copy_s, 3),
            "copied_rows": copied,
            "events_per_s_process": round(activities / process_s, 1),
            "events_per_s_copy": round(copied / copy_s, 1),
            "ratio": round((activities / process_s) / (copied / copy_s), 3) if copied else None,
        }
    figures["tasks_dispatched_in_process"] = queue_length_and_drop(_own_queue())
    return figures


def _own_queue() -> str:
    from django.conf import settings

    return str(getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery"))


# --- The run ----------------------------------------------------------------------------


def parse_steps(text: str) -> list[int]:
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit("--concurrency takes comma-separated integers, e.g. 1,2,4,8") from None
    if not steps or any(not 1 <= s <= 256 for s in steps):
        raise SystemExit("--concurrency steps must be between 1 and 256")
    return steps


def run(args: argparse.Namespace) -> Result:
    import tempfile

    steps = parse_steps(args.concurrency)
    if args.requests < 1 or args.events_per_batch < 1 or args.duration <= 0:
        raise SystemExit("need --requests ≥ 1, --events-per-batch ≥ 1, --duration > 0")
    prepare(args)
    with tempfile.TemporaryDirectory(prefix="bench-collector-") as folder:
        taken = intake(args, steps, Path(folder))
    processed = processing(args) if not args.skip_processing else {"skipped": "--skip-processing"}

    minimal_steps = taken["steps"]["minimal"]
    collector_steps = taken["steps"].get("collector", [])
    best_minimal, best_collector = best(minimal_steps), best(collector_steps)
    eps_minimal = round(best_minimal["accepted_events_per_s"]) if best_minimal else None
    eps_collector = round(best_collector["accepted_events_per_s"]) if best_collector else None
    intake_ratio = eps_collector / eps_minimal if eps_minimal and eps_collector else None

    figures: dict[str, Any] = {
        "stack": describe_stack(args),
        "path": args.path,
        "events_per_batch": args.events_per_batch,
        "body_bytes_mean": taken["body_bytes_mean"],
        "p99_max_ms": P99_MAX_MS,
        "steps": taken["steps"],
        "best_events_per_s": {"minimal": eps_minimal, "collector": eps_collector},
        "best_at_concurrency": {
            "minimal": best_minimal["concurrency"] if best_minimal else None,
            "collector": best_collector["concurrency"] if best_collector else None,
        },
        "ratio_intake": round(intake_ratio, 3) if intake_ratio is not None else None,
        "accepted_requests": taken["accepted_requests"],
        "stored_rows": taken["stored_rows"],
        "dispatched_tasks": taken["dispatched_tasks"],
        "processing": processed,
        "collector_missing": taken["missing"],
    }

    def p(step: dict[str, Any] | None) -> str | None:
        return f"{step['p50_ms']:.1f} / {step['p99_ms']:.1f}" if step else None

    rows: list[Row] = []
    for i, concurrency in enumerate(steps):
        m = minimal_steps[i]
        c = collector_steps[i] if i < len(collector_steps) else None
        rows.append(
            Row(
                f"c={concurrency} events/s",
                [
                    round(m["accepted_events_per_s"]),
                    round(c["accepted_events_per_s"]) if c else None,
                ],
            )
        )
        rows.append(Row(f"c={concurrency} p50 / p99 ms", [p(m), p(c)]))
        if m["accepted"] != m["requests"] or (c and c["accepted"] != c["requests"]):
            rows.append(
                Row(
                    f"c={concurrency} answers",
                    [str(m["statuses"]), str(c["statuses"]) if c else None],
                )
            )
    rows += [
        Row(f"best events/s, p99 ≤ {P99_MAX_MS:.0f} ms", [eps_minimal, eps_collector]),
        Row(
            "  at concurrency",
            [
                best_minimal["concurrency"] if best_minimal else None,
                best_collector["concurrency"] if best_collector else None,
            ],
        ),
        Row("intake ratio to minimal", [1.0 if eps_minimal else None, intake_ratio]),
        Row(
            "rows stored / 202 answers",
            [
                f"{taken['stored_rows']['minimal']:,} / {taken['accepted_requests']['minimal']:,}",
                f"{taken['stored_rows']['collector']:,} / "
                f"{taken['accepted_requests']['collector']:,}"
                if "collector" in taken["stored_rows"]
                else None,
            ],
        ),
    ]
    paths = [name for name in ("task", "sweep") if name in processed]
    for name in paths:
        share = processed[name]
        rows += [
            Row(
                f"processing by {name}, events/s",
                [round(share["events_per_s_copy"]), round(share["events_per_s_process"])],
            ),
            Row("  ratio to COPY", [1.0, share["ratio"]]),
        ]

    checks: list[tuple[str, bool]] = []
    if collector_steps:
        checks.append(
            (
                f"collector events/s at p99 ≤ {P99_MAX_MS:.0f} ms ÷ minimal handler's = "
                + (f"{intake_ratio:.2f}" if intake_ratio is not None else "n/a")
                + f" ≥ {RATIO_INTAKE_MIN}",
                intake_ratio is not None and intake_ratio >= RATIO_INTAKE_MIN,
            )
        )
        checks.append(
            (
                "every 202 stored one raw batch "
                f"({taken['stored_rows']['collector']:,} rows, "
                f"{taken['accepted_requests']['collector']:,} answers)",
                taken["stored_rows"]["collector"] == taken["accepted_requests"]["collector"],
            )
        )
    else:
        checks.append((f"collector measured ({taken['missing']})", False))
    if "skipped" in processed:
        checks.append((f"processing measured ({processed['skipped']})", False))
    else:
        for name in paths:
            share = processed[name]
            checks.append(
                (
                    f"processing by {name} ÷ COPY = {share['ratio']:.2f} ≥ {RATIO_PROCESSING_MIN}",
                    share["ratio"] is not None and share["ratio"] >= RATIO_PROCESSING_MIN,
                )
            )
            checks.append(
                (
                    f"processing by {name}: every event became one activity "
                    f"({share['activities']:,} of {share['events_sent']:,})",
                    share["activities"] == share["events_sent"],
                )
            )

    notes = [
        f"server: {describe_stack(args)}, loopback; load generator: closed loop, one process "
        f"(asyncio), {args.events_per_batch} page views per request "
        f"(~{taken['body_bytes_mean']:,} bytes), at most {args.requests:,} requests or "
        f"{args.duration:g} s per step",
        f"{os.cpu_count()} CPUs shared by the servers, PostgreSQL, Redis and the load "
        "generator: the figures are a floor for a machine where the database has its own cores",
        "processing: the worker's functions called in-process over the batches the load "
        "stored (anonymous visitors, no identify); baseline: the same Activity rows COPY'd "
        "into a temporary staging table, then one INSERT … "
        "SELECT … ON CONFLICT DO NOTHING into contacts_activity (same indexes)",
        "processing by task: collector_batches_process(ids), what contacts.collector_process "
        "runs (set-based, chunks of SWEEP_CHUNK batches a transaction); by sweep: "
        "collector_batches_sweep, what the endpoint's drain and beat run (same chunks); "
        "half the batches each",
        RUDDERSTACK_NOTE,
    ]
    return Result(
        name=NAME,
        title=f"collector: {describe_stack(args)}, {args.events_per_batch} events a request",
        figures=figures,
        target={
            "p99_max_ms": P99_MAX_MS,
            "ratio_intake_min": RATIO_INTAKE_MIN,
            "ratio_processing_min": RATIO_PROCESSING_MIN,
        },
        columns=["minimal / COPY", "collector"],
        rows=rows,
        checks=checks,
        notes=notes,
    )
