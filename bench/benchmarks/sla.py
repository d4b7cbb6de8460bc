"""SLA sweep: ``services.sla.sla_sweep`` over 1 M open leads with 1 % due, against one
hand-written ``UPDATE … WHERE sla_due_at < now()`` on the same data.

Issue 7's target: the sweep within 2× of the hand-written statement.

The data (own unit ``bench-sla-<leads>`` in the bench group, so several sizes live side
by side in ``leadloop_bench_sla`` and re-runs reuse them): ``--leads`` contacts and one
open lead each, all accepted by sales (stage SAL) and owned by one of 20 salespeople, with
the follow-up clock running (``sla_clock = 'follow_up'``). ``--due`` percent of them (1 %
by default, spread over the table) were due an hour before the bench's fixed "now"; the
rest are due over the next 30 days.

What each side does with a due lead:

* the sweep (``services.sla.sla_sweep``, the periodic task's code): claims due leads
  ``FOR UPDATE SKIP LOCKED`` in batches of ``sla.BATCH``, recycles each (stage, owners,
  clock, SDR credit), records one ``SlaMiss``, the history rows (the miss and the stage
  move), notifies the people concerned and queues CRM webhook events; then the warning and
  credit sweeps run (nothing is due for them);
* the baseline: ``UPDATE sales_lead SET stage='recycled', owner_id=NULL, sla_clock='',
  sla_due_at=NULL WHERE sla_due_at < now`` and nothing else.

So the sweep writes about five rows per due lead where the baseline writes one: the ratio
measures what the bookkeeping the issue asks for costs, not a like-for-like query.
``--explain`` prints the plan of one sweep batch and of the baseline; ``--profile`` a
cProfile of one sweep (where Python time goes).

Every run happens in a transaction that is rolled back afterwards, so each run starts from
the same data (runs alternate, so a dead-tuple build-up slows both alike). Before timing,
one run of each is checked: the sweep must recycle exactly the due leads, the baseline
must update exactly as many rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.report import Result, Row, human, log

if TYPE_CHECKING:
    from apps.core.models import BusinessUnit

NAME = "sla"
DESCRIPTION = "SLA sweep over 1M open leads (1% due) vs one hand-written UPDATE … WHERE due"

RATIO_MAX = 2.0
OWNERS = 20
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--leads", type=int, default=1_000_000, help="open leads (1M)")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply --leads by this (e.g. 0.01 for a quick 10k run)",
    )
    parser.add_argument("--due", type=float, default=1.0, help="percent of leads due (1)")
    parser.add_argument(
        "--explain", action="store_true", help="print EXPLAIN ANALYZE of the claim and the UPDATE"
    )
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of one sweep (top 25)"
    )
    parser.add_argument(
        "--load-only", action="store_true", help="load the data (or check it is there) and stop"
    )


@dataclass(frozen=True)
class SlaWorld:
    unit: BusinessUnit
    leads: int
    due: int


def ensure_sla_world(leads: int, due_percent: float) -> SlaWorld:
    """Unit, 20 salespeople, ``leads`` contacts with one open SAL lead each (set-based)."""
    from django.db import connection, transaction

    from apps.contacts.models import Contact
    from apps.core import services
    from apps.core.models import User
    from apps.sales.models import Lead
    from apps.sales.services.stages import policy_for
    from bench import generate
    from bench.environment import assert_bench_database

    assert_bench_database()
    world = generate.ensure_world()
    unit = services.business_unit_ensure(
        code=f"bench-sla-{human(leads).lower()}",
        name=f"Bench SLA {human(leads)}",
        parent=world.group,
        acting_user=generate.SYSTEM,
    )
    policy = policy_for(unit.pk)
    if policy.recycle_to_sdr:
        policy.recycle_to_sdr = False
        policy.save()
    # One lead in every ``step`` is due: spread over the table, not one block.
    step = max(1, round(100 / due_percent)) if due_percent > 0 else 0
    due = leads // step if step else 0
    marker = f"bench-sla-{unit.pk}"
    with transaction.atomic():
        owners = []
        for i in range(OWNERS):
            user, created = User.objects.get_or_create(
                username=f"bench-sla-sales-{i}", defaults={"display_name": f"销售 {i}"}
            )
            if created:
                user.set_unusable_password()
                user.save()
            owners.append(user.pk)
        mine = Lead.objects.dangerously_unscoped().filter(unit=unit)
        existing = mine.count()
        if existing not in (0, leads):
            raise SystemExit(f"{existing:,} leads of {marker} exist, want {leads:,}")
        if existing == 0:
            log(f"creating {leads:,} contacts")
            started = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(
                    f"""
                    INSERT INTO {Contact._meta.db_table} (
                        group_id, status, name, title, department, company_name, province,
                        city, industry, custom, field_sources, first_seen_at, last_seen_at,
                        created_at, updated_at
                    )
                    SELECT %(group)s, 'active', '线索 ' || g, '', '', %(marker)s, '', '', '',
                           '{{}}'::jsonb, '{{}}'::jsonb, now(), now(), now(), now()
                    FROM generate_series(1, %(n)s) AS g
                    ORDER BY g
                    """,
                    {"group": world.group.pk, "marker": marker, "n": leads},
                )
                log(f"creating {leads:,} leads ({due:,} due)")
                cursor.execute(
                    f"""
                    INSERT INTO {Lead._meta.db_table} (
                        unit_id, contact_id, stage, is_open, temperature, score, source,
                        tier, product_interest, authority, need, timeline, owner_id,
                        needs_review, review_reason, reason, sla_clock, sla_due_at,
                        accepted_at, handed_at, credit_status, stage_changed_at,
                        created_at, updated_at
                    )
                    SELECT %(unit)s, c.id, 'sal', true, 'warm', 0, 'manual',
                           '', '', '', '', '', (%(owners)s::int[])[1 + n %% %(n_owners)s],
                           false, '', '', 'follow_up',
                           CASE WHEN %(step)s > 0 AND n %% %(step)s = 0
                                THEN %(now)s - INTERVAL '1 hour'
                                ELSE %(now)s + (1 + n %% 43200) * INTERVAL '1 minute' END,
                           %(now)s - INTERVAL '3 days', %(now)s - INTERVAL '3 days', '',
                           %(now)s - INTERVAL '3 days', %(now)s - INTERVAL '3 days', now()
                    FROM (
                        SELECT id, row_number() OVER (ORDER BY id) AS n
                        FROM {Contact._meta.db_table} WHERE company_name = %(marker)s
                    ) AS c
                    ORDER BY c.id
                    """,
                    {
                        "unit": unit.pk,
                        "owners": owners,
                        "n_owners": len(owners),
                        "step": step,
                        "now": NOW,
                        "marker": marker,
                    },
                )
            log(f"loaded in {time.perf_counter() - started:.1f} s")
    if existing == 0:
        generate.analyze(Contact._meta.db_table, Lead._meta.db_table)
    found_due = mine.filter(sla_due_at__lt=NOW).count()
    if found_due != due:
        raise SystemExit(f"{found_due:,} leads of {marker} are due, want {due:,}: drop the db")
    return SlaWorld(unit=unit, leads=leads, due=due)


class _Rollback(Exception):
    pass


def rolled_back(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` inside a transaction that is always rolled back (the data stays as loaded)."""
    from django.db import transaction

    def run() -> Any:
        box: list[Any] = []
        try:
            with transaction.atomic():
                box.append(fn())
                raise _Rollback
        except _Rollback:
            pass
        return box[0]

    return run


HAND_SQL = """
    UPDATE sales_lead SET stage = 'recycled', owner_id = NULL, sla_clock = '', sla_due_at = NULL
    WHERE sla_due_at < %s
"""


def run(args: argparse.Namespace) -> Result:
    from django.db import connection

    from apps.sales.services import sla
    from bench.measure import explain_analyze, time_interleaved

    leads = max(100, int(args.leads * args.scale))
    ensure_sla_world(leads, args.due)
    if args.load_only:
        log("data loaded")
        raise SystemExit(0)

    def sweep() -> int:
        return sla.sla_sweep(now=NOW).recycled

    def hand() -> int:
        with connection.cursor() as cursor:
            cursor.execute(HAND_SQL, [NOW])
            return int(cursor.rowcount)

    # Same data, same outcome count, before any timing.
    # Both act on the whole table: other sizes loaded earlier count too.
    from apps.sales.models import Lead

    due_total = Lead.objects.dangerously_unscoped().filter(sla_due_at__lt=NOW).count()
    open_total = Lead.objects.dangerously_unscoped().filter(is_open=True).count()
    swept = rolled_back(sweep)()
    updated = rolled_back(hand)()
    if swept != due_total or updated != due_total:
        raise SystemExit(f"sweep recycled {swept:,}, UPDATE hit {updated:,}, want {due_total:,}")

    if args.explain:

        def explain_batch() -> str:
            # One batch of the sweep as the service runs it (set-based statement).
            from django.utils import timezone

            from apps.sales.services import sla_sweep

            params = {
                **sla_sweep._texts(),
                "now": NOW,
                "limit": sla.BATCH,
                "tz": timezone.get_current_timezone_name(),
            }
            return explain_analyze(sla_sweep._SWEEP, params)

        log("EXPLAIN ANALYZE one sweep batch:\n" + rolled_back(explain_batch)())
        log(
            "EXPLAIN ANALYZE hand UPDATE:\n"
            + rolled_back(lambda: explain_analyze(HAND_SQL, [NOW]))()
        )
    if args.profile:
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        rolled_back(lambda: profiler.runcall(sweep))()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        log(out.getvalue())

    timings = time_interleaved(
        {"sweep": rolled_back(sweep), "hand": rolled_back(hand)},
        repeat=args.repeat,
        warmup=args.warmup,
    )
    sweep_ms, hand_ms = timings["sweep"].median, timings["hand"].median
    ratio = sweep_ms / hand_ms if hand_ms else float("inf")
    label = f"{open_total:,} open leads, {due_total:,} due"
    per_lead_us = sweep_ms * 1000 / due_total if due_total else 0.0
    return Result(
        name=NAME,
        title=f"SLA sweep vs hand-written UPDATE ({label})",
        figures={
            "leads": open_total,
            "due": due_total,
            "sweep_ms": sweep_ms,
            "hand_ms": hand_ms,
            "ratio": ratio,
            "sweep_samples_ms": list(timings["sweep"].samples),
            "hand_samples_ms": list(timings["hand"].samples),
        },
        target={"ratio_max": RATIO_MAX},
        columns=["median ms", "min ms", "max ms", "ratio"],
        rows=[
            Row(
                "hand UPDATE … WHERE due", [hand_ms, timings["hand"].min, timings["hand"].max, 1.0]
            ),
            Row("sla_sweep", [sweep_ms, timings["sweep"].min, timings["sweep"].max, ratio]),
        ],
        checks=[(f"sweep / UPDATE = {ratio:.2f} ≤ {RATIO_MAX}", ratio <= RATIO_MAX)],
        notes=[
            f"{per_lead_us:,.0f} µs of sweep per due lead; median of {args.repeat} runs, "
            "each rolled back",
        ],
    )
