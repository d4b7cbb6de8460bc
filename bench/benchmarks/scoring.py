"""Lead scoring: the engine's full and incremental recompute against hand-written SQL.

Issue 6's target: a full recompute of one model at 1 M contacts within 1.5× of a single
hand-written ``UPDATE … FROM (SELECT … GROUP BY)`` doing the same arithmetic, an
incremental recompute of 10 k changed contacts within 2× of the same query restricted to
them, and no per-row ORM saves.

The data (own unit ``bench-scoring-<contacts>`` in the bench group, so several sizes live
side by side in ``leadloop_bench_scoring`` and re-runs reuse them): ``--contacts`` active
contacts known to that unit, with an industry, a job title, a "customer tier" choice custom
field and, for every ninth, the tag "展会-2026"; ``--activities`` activities of that unit
spread over the 90 days before the bench's fixed "now" (half of them over every contact,
half over the most engaged tenth, as engagement is skewed). Default 10 per contact: 10 M
at 1 M contacts, about what a B2B marketing team's tracked site, emails and forms leave in
a quarter (mostly page and content views).

The model: 4 fit rules (industry in a list, title contains, custom field equals, carries a
tag) and 5 engagement rules (downloads, form submits, content views of one topic through a
``properties`` match, page views capped per 7-day window, unsubscribes negative), half-life
30 days, bands warm ≥ 20 and hot ≥ 50.

The baseline is one statement written by hand for this model, with the same arithmetic
(each activity's points × ``0.5 ^ (age / half-life)`` rounded to cents before summing, the
cap by ``row_number()`` per 7-day epoch window) into a copy of the scores table with the
same indexes (``bench_scoring_hand``). Before any timing the (contact, total) sets of both
are compared and must be equal. For the first fill the baseline is an ``INSERT … SELECT …
ON CONFLICT DO UPDATE`` (an UPDATE of an empty table writes nothing); afterwards an
``UPDATE … FROM (SELECT … GROUP BY) WHERE <something changed>``. The baseline writes no
history and removes no scores; the engine does both (a ``ScoreChange`` per changed score),
so the comparison is strict. Both run with the same ``work_mem`` (the engine's own
``SET LOCAL``) so neither gains from a setting the other lacks.

"Everything changes" moves "now" by a day between runs (the nightly decay job): every
contact with engagement decays. "Nothing changes" runs again at the same "now".
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bench.report import Result, Row, human, log

if TYPE_CHECKING:
    from apps.core.models import BusinessUnit
    from apps.nurture.models import ScoringModel

NAME = "scoring"
DESCRIPTION = "lead scoring: full and incremental recompute vs one hand-written UPDATE … FROM"

FULL_RATIO_MAX = 1.5
INCREMENTAL_RATIO_MAX = 2.0
# Statements one incremental run may send, whatever its size: set-based, not per row.
MAX_STATEMENTS = 20
ACTIVITY_BATCH = 1_000_000  # activities per INSERT … SELECT generate_series
DAYS = 90
HAND_TABLE = "bench_scoring_hand"
TAG_NAME = "展会-2026"
FIELD_KEY = "bench_tier"
TOPIC = "单细胞"
# The bench's "now": fixed, so every run scores the same data the same way.
NOW_ISO = "2026-11-30T00:00:00+00:00"
HALF_LIFE_DAYS = 30

TITLES = ("研发总监", "工程师", "采购经理", "销售总监", "实验员", "首席科学家", "应届生 求职")
INDUSTRIES = ("生物医药", "制药", "化工", "医疗器械", "高校科研", "其他")
TIERS = ("ka", "mid", "small")
TOPICS = (TOPIC, "质谱", "基因测序", "蛋白组学")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--contacts", type=int, default=1_000_000, help="contacts (1M)")
    parser.add_argument(
        "--activities",
        type=int,
        default=None,
        help="activities over the last 90 days (default 10 per contact: 10M at 1M)",
    )
    parser.add_argument(
        "--incremental", type=int, default=10_000, help="contacts of the incremental run (10k)"
    )
    parser.add_argument(
        "--explain", action="store_true", help="print EXPLAIN ANALYZE of the hand-written query"
    )
    parser.add_argument(
        "--refill", action="store_true", help="delete this size's activities and load them again"
    )
    parser.add_argument(
        "--load-only", action="store_true", help="load the data (or check it is there) and stop"
    )


# --- Data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoringWorld:
    unit: BusinessUnit
    model: ScoringModel
    field_id: int
    tag_id: int
    first_id: int  # contacts are first_id … first_id + contacts - 1
    contacts: int


def ensure_scoring_world(contacts: int) -> ScoringWorld:
    """Unit, custom field, tag, contacts (one INSERT), their unit rows and tags, the model."""
    from django.db import connection, transaction

    from apps.contacts.models import Contact, ContactTag, ContactUnit, CustomField, Tag
    from apps.core import services
    from apps.nurture.models import ScoringModel, ScoringRule
    from bench import generate
    from bench.environment import assert_bench_database

    assert_bench_database()
    world = generate.ensure_world()
    unit = services.business_unit_ensure(
        code=f"bench-scoring-{human(contacts).lower()}",
        name=f"Bench Scoring {human(contacts)}",
        parent=world.group,
        acting_user=generate.SYSTEM,
    )
    marker = f"bench-scoring-{unit.pk}"
    with transaction.atomic():
        field, _created = CustomField.objects.dangerously_unscoped().get_or_create(
            unit=unit,
            key=FIELD_KEY,
            defaults={
                "label": "客户类型",
                "type": "choice",
                "options": [{"value": t, "label": t} for t in TIERS],
            },
        )
        tag, _created = Tag.objects.dangerously_unscoped().get_or_create(unit=unit, name=TAG_NAME)
        mine = Contact.objects.dangerously_unscoped().filter(company_name=marker)
        existing = mine.count()
        if existing not in (0, contacts):
            raise SystemExit(f"{existing:,} contacts of {marker} exist, want {contacts:,}")
        if existing == 0:
            log(f"creating {contacts:,} contacts")
            with connection.cursor() as cursor:
                cursor.execute(
                    f"""
                    INSERT INTO {Contact._meta.db_table} (
                        group_id, status, name, title, department, company_name, province,
                        city, industry, custom, field_sources, first_seen_at, last_seen_at,
                        created_at, updated_at
                    )
                    SELECT %(group)s, 'active', 'Scoring ' || g,
                           (%(titles)s::text[])[1 + g %% cardinality(%(titles)s::text[])],
                           '', %(marker)s, '', '',
                           (%(industries)s::text[])[
                               1 + (g * 31) %% cardinality(%(industries)s::text[])
                           ],
                           jsonb_build_object(
                               %(field)s::text,
                               (%(tiers)s::text[])[1 + (g * 17) %% cardinality(%(tiers)s::text[])]
                           ),
                           '{{}}'::jsonb, now(), now(), now(), now()
                    FROM generate_series(1, %(n)s) AS g
                    ORDER BY g
                    """,
                    {
                        "group": world.group.pk,
                        "titles": list(TITLES),
                        "marker": marker,
                        "industries": list(INDUSTRIES),
                        "field": field.pk,
                        "tiers": list(TIERS),
                        "n": contacts,
                    },
                )
                cursor.execute(
                    f"""
                    INSERT INTO {ContactUnit._meta.db_table}
                        (contact_id, unit_id, first_seen_at, source)
                    SELECT id, %s, now(), 'bench' FROM {Contact._meta.db_table}
                    WHERE company_name = %s ORDER BY id
                    """,
                    [unit.pk, marker],
                )
                cursor.execute(
                    f"""
                    INSERT INTO {ContactTag._meta.db_table}
                        (contact_id, tag_id, source, added_by, added_at)
                    SELECT id, %s, 'manual', 'bench', now() FROM {Contact._meta.db_table}
                    WHERE company_name = %s AND id %% 9 = 0 ORDER BY id
                    """,
                    [tag.pk, marker],
                )
        low, high = (
            mine.order_by("pk").values_list("pk", flat=True).first(),
            mine.order_by("-pk").values_list("pk", flat=True).first(),
        )
        if low is None or high is None or high - low + 1 != contacts:
            raise SystemExit(f"the contacts of {marker} are not one id range; drop the database")
        model, _created = ScoringModel.objects.dangerously_unscoped().get_or_create(
            unit=unit,
            name="Bench scoring",
            defaults={
                "half_life_days": HALF_LIFE_DAYS,
                "bands": [{"min": 20, "temperature": "warm"}, {"min": 50, "temperature": "hot"}],
            },
        )
        # The rules are (re)written every run: exactly the ones the hand query mirrors.
        ScoringRule.objects.dangerously_unscoped().filter(model=model).delete()
        fit = [
            (
                "生物医药/制药",
                {"field": "industry", "op": "in", "value": ["生物医药", "制药"]},
                "15",
            ),
            ("总监", {"field": "title", "op": "contains", "value": "总监"}, "10"),
            ("大客户", {"custom": field.pk, "op": "eq", "value": "ka"}, "20"),
            ("展会", {"tag": tag.pk}, "5"),
        ]
        for i, (name, condition, points) in enumerate(fit):
            ScoringRule.objects.dangerously_unscoped().create(
                model=model,
                kind="fit",
                name=name,
                condition=condition,
                points=Decimal(points),
                position=i,
            )
        engagement: list[tuple[str, dict[str, Any], str, str | None, int | None]] = [
            ("下载", {"type": "download"}, "8", None, None),
            ("表单", {"type": "form_submit"}, "20", None, None),
            (
                "单细胞内容",
                {"type": "content_view", "properties": {"topic": TOPIC}},
                "4",
                None,
                None,
            ),
            ("浏览", {"type": "page_view"}, "2", "5", 7),
            ("退订", {"type": "unsubscribe"}, "-10", None, None),
        ]
        for i, (name, match, points, cap, cap_days) in enumerate(engagement):
            ScoringRule.objects.dangerously_unscoped().create(
                model=model,
                kind="engagement",
                name=name,
                match=match,
                points=Decimal(points),
                cap=Decimal(cap) if cap else None,
                cap_days=cap_days,
                position=10 + i,
            )
    return ScoringWorld(unit, model, field.pk, tag.pk, int(low), contacts)


def fill_activities(sw: ScoringWorld, rows: int) -> int:
    """Top the unit's activities up to ``rows`` (one INSERT per million); return how many."""
    from django.db import connection, transaction

    from apps.contacts.models import Activity
    from bench.environment import assert_bench_database

    assert_bench_database()
    table = Activity._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE unit_id = %s", [sw.unit.pk])
        existing = int(cursor.fetchone()[0])
    inserted = 0
    for start in range(existing + 1, rows + 1, ACTIVITY_BATCH):
        stop = min(rows, start + ACTIVITY_BATCH - 1)
        with transaction.atomic(), connection.cursor() as cursor:
            # Row g, by three hashes of g: half the rows spread over every contact, half
            # over the first tenth (the engaged ones); 45% page views, 15% content views,
            # 10% downloads, 15%
            # email opens, 5% form submits, 5% clicks, 5% unsubscribes; within 90 days.
            cursor.execute(
                f"""
                INSERT INTO {table} (
                    unit_id, contact_id, anonymous_id, type, occurred_at, channel_id,
                    campaign_id, object_type, object_id, properties, dedupe_key, recorded_at
                )
                SELECT %(unit)s, k.contact_id, '', k.type, k.at, NULL, NULL,
                       CASE WHEN k.type = 'form_submit' THEN 'form' ELSE '' END,
                       CASE WHEN k.type = 'form_submit' THEN 'f' || (g %% 5) ELSE '' END,
                       CASE WHEN k.type = 'content_view'
                            THEN jsonb_build_object(
                                'topic',
                                (%(topics)s::text[])[1 + g %% cardinality(%(topics)s::text[])])
                            WHEN k.type = 'page_view'
                            THEN jsonb_build_object('url', '/p/' || (g %% 200))
                            ELSE '{{}}'::jsonb END,
                       NULL, k.at
                FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g,
                     LATERAL (
                         SELECT (hashint8extended(g, 1) & 9223372036854775807) AS h1,
                                (hashint8extended(g, 2) & 9223372036854775807) AS h2,
                                (hashint8extended(g, 3) & 9223372036854775807) AS h3
                     ) AS r,
                     LATERAL (
                         SELECT %(first)s
                                    + CASE WHEN r.h1 %% 2 = 0 THEN r.h2 %% %(n)s
                                           ELSE r.h2 %% greatest(1, %(n)s / 10)
                                      END AS contact_id,
                                CASE WHEN r.h3 %% 20 < 9 THEN 'page_view'
                                     WHEN r.h3 %% 20 < 12 THEN 'content_view'
                                     WHEN r.h3 %% 20 < 14 THEN 'download'
                                     WHEN r.h3 %% 20 < 17 THEN 'email_open'
                                     WHEN r.h3 %% 20 = 17 THEN 'form_submit'
                                     WHEN r.h3 %% 20 = 18 THEN 'email_click'
                                     ELSE 'unsubscribe' END AS type,
                                %(now)s::timestamptz
                                    - (r.h1 / 2 %% (%(days)s * 86400)) * INTERVAL '1 second'
                                    - INTERVAL '1 second' AS at
                     ) AS k
                """,
                {
                    "unit": sw.unit.pk,
                    "topics": list(TOPICS),
                    "start": start,
                    "stop": stop,
                    "first": sw.first_id,
                    "n": sw.contacts,
                    "now": NOW_ISO,
                    "days": DAYS,
                },
            )
            inserted += cursor.rowcount
        log(f"  activities {stop:,} / {rows:,}")
    return inserted


# --- The hand-written query ------------------------------------------------------------------


def ensure_hand_table() -> None:
    """A copy of the scores table for the hand-written query: same columns, indexes and
    foreign keys (``LIKE`` copies no foreign keys; they are added as Django declares
    them, deferrable), so writing a row costs both the same."""
    from django.db import connection

    from apps.contacts.models import Contact
    from apps.nurture.models import ContactScore, ScoringModel

    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {HAND_TABLE} "
            f"(LIKE {ContactScore._meta.db_table} INCLUDING ALL)"
        )
        for column, target in (
            ("contact_id", Contact._meta.db_table),
            ("model_id", ScoringModel._meta.db_table),
        ):
            name = f"{HAND_TABLE}_{column}_fk"
            cursor.execute("SELECT 1 FROM pg_constraint WHERE conname = %s", [name])
            if cursor.fetchone() is None:
                cursor.execute(
                    f"ALTER TABLE {HAND_TABLE} ADD CONSTRAINT {name} FOREIGN KEY ({column}) "
                    f"REFERENCES {target} (id) DEFERRABLE INITIALLY DEFERRED"
                )


def hand_select(sw: ScoringWorld, *, restricted: bool) -> str:
    """``SELECT contact_id, fit, engagement, total, temperature`` for the model, written
    out by hand: fit as four CASE terms, engagement as one GROUP BY over the matching
    activities (page views numbered per 7-day window for the cap). Parameters: %(now)s,
    %(ids)s when ``restricted``."""
    from apps.contacts.models import Activity, Contact, ContactTag, ContactUnit

    contacts, units = Contact._meta.db_table, ContactUnit._meta.db_table
    acts, tags = Activity._meta.db_table, ContactTag._meta.db_table
    only_c = "AND c.id = ANY(%(ids)s)" if restricted else ""
    only_a = "AND a.contact_id = ANY(%(ids)s)" if restricted else ""
    decay = (
        "power(0.5::float8, greatest(0, extract(epoch FROM (%(now)s::timestamptz - a.occurred_at)))"
        f"::float8 / 86400.0 / {HALF_LIFE_DAYS})::numeric"
    )
    topic = json.dumps({"topic": TOPIC}, ensure_ascii=False)
    return f"""
        SELECT c.id AS contact_id, f.fit, coalesce(e.engagement, 0) AS engagement,
               f.fit + coalesce(e.engagement, 0) AS total,
               CASE WHEN f.fit + coalesce(e.engagement, 0) >= 50 THEN 'hot'
                    WHEN f.fit + coalesce(e.engagement, 0) >= 20 THEN 'warm'
                    ELSE 'cold' END AS temperature
        FROM {contacts} c
        JOIN {units} cu ON cu.contact_id = c.id AND cu.unit_id = {sw.unit.pk}
        CROSS JOIN LATERAL (
            SELECT (CASE WHEN c.industry IN ('生物医药', '制药') THEN 15 ELSE 0 END
                    + CASE WHEN c.title ILIKE '%%总监%%' THEN 10 ELSE 0 END
                    + CASE WHEN c.custom @> '{{"{sw.field_id}": "ka"}}' THEN 20 ELSE 0 END
                    + CASE WHEN EXISTS (SELECT 1 FROM {tags} t
                                        WHERE t.contact_id = c.id AND t.tag_id = {sw.tag_id})
                           THEN 5 ELSE 0 END)::numeric(10, 2) AS fit
        ) f
        LEFT JOIN (
            SELECT contact_id, sum(scored) AS engagement FROM (
                SELECT a.contact_id,
                       round(CASE a.type WHEN 'download' THEN 8 WHEN 'form_submit' THEN 20
                                         WHEN 'unsubscribe' THEN -10 ELSE 4 END
                             * {decay}, 2) AS scored
                FROM {acts} a
                WHERE a.unit_id = {sw.unit.pk} AND a.occurred_at <= %(now)s {only_a}
                  AND (a.type IN ('download', 'form_submit', 'unsubscribe')
                       OR a.type = 'content_view' AND a.properties @> '{topic}')
                UNION ALL
                SELECT a.contact_id,
                       round(greatest(0, least(2, 5 - 2 * (a.n - 1))) * {decay}, 2)
                FROM (
                    SELECT a.contact_id, a.occurred_at,
                           row_number() OVER (
                               PARTITION BY a.contact_id,
                                   floor(extract(epoch FROM a.occurred_at) / (7 * 86400))
                               ORDER BY a.occurred_at, a.id) AS n
                    FROM {acts} a
                    WHERE a.unit_id = {sw.unit.pk} AND a.type = 'page_view'
                      AND a.occurred_at <= %(now)s {only_a}
                ) a
            ) lines
            GROUP BY contact_id
        ) e ON e.contact_id = c.id
        WHERE c.status = 'active' {only_c}
    """


def hand_insert_sql(sw: ScoringWorld) -> str:
    return f"""
        INSERT INTO {HAND_TABLE} AS h
            (model_id, contact_id, fit, engagement, total, temperature, computed_at)
        SELECT {sw.model.pk}, s.contact_id, s.fit, s.engagement, s.total, s.temperature,
               %(now)s
        FROM ({hand_select(sw, restricted=False)}) s
        ON CONFLICT (model_id, contact_id) DO UPDATE SET
            fit = EXCLUDED.fit, engagement = EXCLUDED.engagement, total = EXCLUDED.total,
            temperature = EXCLUDED.temperature, computed_at = EXCLUDED.computed_at
    """


def hand_update_sql(sw: ScoringWorld, *, restricted: bool) -> str:
    return f"""
        UPDATE {HAND_TABLE} h SET
            fit = s.fit, engagement = s.engagement, total = s.total,
            temperature = s.temperature, computed_at = %(now)s
        FROM ({hand_select(sw, restricted=restricted)}) s
        WHERE h.model_id = {sw.model.pk} AND h.contact_id = s.contact_id
          AND (h.fit, h.engagement, h.total, h.temperature)
              IS DISTINCT FROM (s.fit, s.engagement, s.total, s.temperature)
    """


# --- Measuring -------------------------------------------------------------------------------


@dataclass
class Pair:
    engine: list[float]
    hand: list[float]
    engine_changed: list[int]
    hand_changed: list[int]

    @staticmethod
    def median(values: list[float]) -> float:
        ordered = sorted(values)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def run(args: argparse.Namespace) -> Result:
    import datetime as dt

    from django.db import connection, transaction

    from apps.contacts.models import Activity
    from apps.nurture.models import ContactScore, ScoreChange
    from apps.nurture.services import scoring
    from bench import generate
    from bench.measure import capture_queries, explain_analyze

    contacts = args.contacts
    activities = args.activities if args.activities is not None else 10 * contacts
    now = dt.datetime.fromisoformat(NOW_ISO)
    later = now + dt.timedelta(days=1)
    work_mem = getattr(scoring, "WORK_MEM", None)

    log(f"bench database ready; scoring world of {contacts:,} contacts")
    start = time.perf_counter()
    sw = ensure_scoring_world(contacts)
    if args.refill:
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {Activity._meta.db_table} WHERE unit_id = %s",
                [sw.unit.pk],
            )
    inserted = fill_activities(sw, activities)
    ensure_hand_table()
    generate.analyze(
        "contacts_contact",
        "contacts_contactunit",
        "contacts_contacttag",
        Activity._meta.db_table,
    )
    fill_s = time.perf_counter() - start
    log(f"data ready in {fill_s:.0f} s ({inserted:,} activities inserted)")
    if args.load_only:
        return Result(
            name=NAME,
            title=f"scoring: data only ({human(contacts)} contacts, {human(activities)} "
            "activities), nothing measured",
            figures={"contacts": contacts, "activities": activities, "fill_s": round(fill_s, 1)},
            target={},
            columns=["value"],
            rows=[Row("fill s", [round(fill_s, 1)])],
        )
    model = sw.model
    scores, changes = ContactScore._meta.db_table, ScoreChange._meta.db_table

    def execute(sql: str, params: Any = None) -> int:
        with transaction.atomic(), connection.cursor() as cursor:
            if work_mem:
                cursor.execute(f"SET LOCAL work_mem = '{work_mem}'")
            cursor.execute(sql, params)
            return int(cursor.rowcount)

    def settle() -> None:
        generate.analyze(scores, changes, HAND_TABLE)

    def empty_engine() -> None:
        # History only grows here (a million rows per "everything changes" run): start
        # every empty run from an empty history too.
        generate.truncate(changes)
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {scores} WHERE model_id = %s", [model.pk])
        settle()

    def empty_hand() -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {HAND_TABLE} WHERE model_id = %s", [model.pk])
        settle()

    def engine_full(at: dt.datetime) -> int:
        return scoring.scoring_model_recompute(model=model, now=at, track=False).changed

    def hand_full_insert(at: dt.datetime) -> int:
        return execute(hand_insert_sql(sw), {"now": at})

    def hand_full_update(at: dt.datetime) -> int:
        return execute(hand_update_sql(sw, restricted=False), {"now": at})

    step = max(1, contacts // max(1, args.incremental))
    ids = list(range(sw.first_id, sw.first_id + contacts, step))[: args.incremental]

    def engine_incremental(at: dt.datetime) -> int:
        return scoring.scores_recompute_for(contact_ids=ids, models_=[model], now=at).changed

    def hand_incremental(at: dt.datetime) -> int:
        return execute(hand_update_sql(sw, restricted=True), {"now": at, "ids": ids})

    def differences(restrict_ids: list[int] | None = None) -> int:
        where = "AND contact_id = ANY(%(ids)s)" if restrict_ids is not None else ""
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT count(*) FROM (
                    (SELECT contact_id, total FROM {scores} WHERE model_id = %(m)s {where}
                     EXCEPT SELECT contact_id, total FROM {HAND_TABLE}
                            WHERE model_id = %(m)s {where})
                    UNION ALL
                    (SELECT contact_id, total FROM {HAND_TABLE} WHERE model_id = %(m)s {where}
                     EXCEPT SELECT contact_id, total FROM {scores}
                            WHERE model_id = %(m)s {where})
                ) d
                """,
                {"m": model.pk, "ids": restrict_ids},
            )
            return int(cursor.fetchone()[0])

    def timed(
        engine: Callable[[], int],
        hand: Callable[[], int],
        *,
        before: tuple[Callable[[], None], Callable[[], None]] | None = None,
        repeat: int,
        warmup: int,
    ) -> Pair:
        pair = Pair([], [], [], [])
        for i in range(warmup + repeat):
            for n, (which, fn) in enumerate((("engine", engine), ("hand", hand))):
                if before is not None:
                    before[n]()
                t0 = time.perf_counter()
                changed = fn()
                elapsed = time.perf_counter() - t0
                log(f"    {which}: {elapsed:.2f} s, {changed:,} changed")
                if i >= warmup:
                    getattr(pair, which).append(elapsed)
                    getattr(pair, f"{which}_changed").append(changed)
        return pair

    # 1. From empty, and the equality check on the result.
    log("full recompute from empty")
    state = {"at": now}

    def engine_from_empty() -> int:
        return engine_full(now)

    def hand_from_empty() -> int:
        return hand_full_insert(now)

    empty = timed(
        engine_from_empty,
        hand_from_empty,
        before=(empty_engine, empty_hand),
        repeat=args.repeat,
        warmup=0,
    )
    diff = differences()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {scores} WHERE model_id = %s", [model.pk])
        scored = int(cursor.fetchone()[0])
        cursor.execute(
            f"SELECT count(*), sum(total) FROM {HAND_TABLE} WHERE model_id = %s",
            [model.pk],
        )
        hand_rows, hand_sum = cursor.fetchone()
    log(f"equality: {scored:,} engine rows, {hand_rows:,} hand rows, {diff} differences")
    if diff or scored != hand_rows:
        raise AssertionError(
            f"the engine and the hand-written query disagree on {diff} (contact, total) pairs"
        )
    settle()

    # 2. Everything changes: "now" moves a day back and forth.
    log("full recompute, everything changes")
    flip = {"engine": now, "hand": now}

    def flipped(which: str) -> dt.datetime:
        flip[which] = later if flip[which] == now else now
        return flip[which]

    allc = timed(
        lambda: engine_full(flipped("engine")),
        lambda: hand_full_update(flipped("hand")),
        before=(settle, settle),
        repeat=args.repeat,
        warmup=args.warmup,
    )
    if flip["engine"] != flip["hand"] or differences():
        raise AssertionError("after 'everything changes' the engine and the hand query differ")
    state["at"] = flip["engine"]

    # 3. Nothing changes.
    log("full recompute, nothing changes")
    none = timed(
        lambda: engine_full(state["at"]),
        lambda: hand_full_update(state["at"]),
        before=(settle, settle),
        repeat=args.repeat,
        warmup=args.warmup,
    )

    # 4. Incremental: the same contacts, "now" moving a day back and forth.
    log(f"incremental recompute of {len(ids):,} contacts")
    inc = timed(
        lambda: engine_incremental(flipped("engine")),
        lambda: hand_incremental(flipped("hand")),
        repeat=args.repeat,
        warmup=args.warmup,
    )
    if differences(ids):
        raise AssertionError("after the incremental runs the engine and the hand query differ")

    # No per-row ORM saves: the statements one incremental run sends.
    captured = capture_queries(lambda: engine_incremental(flipped("engine")))
    engine_incremental(flipped("engine"))
    writes = [q for q in captured.sql if scores in q]
    statements = captured.count

    m = Pair.median
    figures: dict[str, Any] = {
        "contacts": contacts,
        "activities": activities,
        "incremental_contacts": len(ids),
        "scored_contacts": scored,
        "sum_of_totals": str(hand_sum),
        "repeat": args.repeat,
        "warmup": args.warmup,
        "work_mem": work_mem,
        "batch_size": scoring.BATCH_SIZE,
        "fill_s": round(fill_s, 1),
        "incremental_statements": statements,
        "incremental_row_writes": len(writes),
    }
    rows: list[Row] = []
    checks: list[tuple[str, bool]] = []
    for key, label, pair, limit in (
        ("full_empty", "full, from empty", empty, FULL_RATIO_MAX),
        ("full_all_change", "full, everything changes", allc, FULL_RATIO_MAX),
        ("full_none_change", "full, nothing changes", none, FULL_RATIO_MAX),
        ("incremental", f"incremental, {human(len(ids))} contacts", inc, INCREMENTAL_RATIO_MAX),
    ):
        engine_s, hand_s = m(pair.engine), m(pair.hand)
        ratio = engine_s / hand_s
        figures[key] = {
            "engine_s": round(engine_s, 3),
            "hand_s": round(hand_s, 3),
            "engine_min_s": round(min(pair.engine), 3),
            "hand_min_s": round(min(pair.hand), 3),
            "ratio": round(ratio, 3),
            "engine_changed": pair.engine_changed,
            "hand_changed": pair.hand_changed,
        }
        rows.append(
            Row(label, [engine_s, hand_s, ratio, pair.engine_changed[-1], pair.hand_changed[-1]])
        )
        checks.append((f"{label}: engine ÷ hand-written = {ratio:.2f} ≤ {limit}", ratio <= limit))
    checks.append(
        (
            f"no per-row ORM saves: one incremental run of {len(ids):,} contacts sent "
            f"{statements} statements, {len(writes)} of them on the scores table",
            statements <= MAX_STATEMENTS,
        )
    )
    notes = [
        f"{contacts:,} contacts, {activities:,} activities over {DAYS} days; equality of "
        f"(contact, total) checked before timing ({scored:,} scores, sum {hand_sum})",
        "baseline: INSERT … ON CONFLICT for the first fill, UPDATE … FROM (SELECT … GROUP BY) "
        "after, into a copy of the scores table (same indexes and foreign keys); it writes no "
        "history, the engine writes one ScoreChange per changed score",
    ]
    result = Result(
        name=NAME,
        title=f"scoring: one model, {human(contacts)} contacts, {human(activities)} activities, "
        f"median of {args.repeat} (seconds)",
        figures=figures,
        target={
            "full_ratio_max": FULL_RATIO_MAX,
            "incremental_ratio_max": INCREMENTAL_RATIO_MAX,
            "no_per_row_saves": True,
        },
        columns=["engine s", "hand s", "ratio", "engine changed", "hand changed"],
        rows=rows,
        checks=checks,
        notes=notes,
    )
    if args.explain:
        sql = hand_update_sql(sw, restricted=False)
        print(explain_analyze(sql.replace("%(now)s", "%s"), [state["at"]] * sql.count("%(now)s")))
    return result
