"""Segments: compiled definitions against hand-written SQL, at 1 M contacts / 20 M activities.

Three realistic nested definitions (seed 003 "smart groups") run through the code the
product runs: the editor's preview count (``SELECT count(*)`` over
``tag_rules.rule_matches``, as ``segment_preview`` does), the full membership rebuild
(``segment_rebuild``, from an empty membership and again with nothing changed) and the
incremental re-check after 1 k contacts changed (``segments_rebuild_for``). Each is timed
against what a good engineer would write by hand for the same set on the same database:
a hand-written ``COUNT``, and a hand-written rebuild (one ``INSERT … SELECT`` of the new
members and one ``DELETE`` of those who left, both logging entered/left events, into
scratch tables shaped like SegmentMember / SegmentEvent, foreign keys included). Before
any timing, both queries must return the same contacts (count and a hash of the ids).

Data (``leadloop_bench_segments``): contacts known to one unit with industry (生物医药
about 12 %), title, province, a choice custom field "tier" (ka / mid / smb), tags
展会-2026 and 竞品, phone and email identities, email consent (some withdrawn), and
activities over the last 90 days (page_view / content_view / download / form_submit;
asset activities carry ``properties.topic``), a few contacts very active, most quiet in
the last 30 days. Everything is written server-side with ``INSERT … SELECT
generate_series`` (nothing travels through Python); the activity indexes are dropped
during the load and rebuilt after it, which is what makes 20 M rows take minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.report import Result, Row, log

if TYPE_CHECKING:
    from apps.core.models import BusinessUnit

NAME = "segments"
DESCRIPTION = "segment preview count and rebuilds of 3 nested definitions vs hand-written SQL"

PREVIEW_MAX = 1.3
REBUILD_MAX = 1.5
INCREMENTAL_MAX = 0.05
DAYS = 90
BATCH = 2_000_000  # activities per INSERT statement (progress, no huge transaction)
CHANGED = 1_000
# The data is regenerated when its newest activity is older than this: the definitions'
# windows ("in 7 days") move with the clock.
STALE_AFTER = dt.timedelta(hours=12)

INDUSTRIES = [
    *["生物医药"] * 3,
    *["制药"] * 2,
    *["医疗器械"] * 2,
    *["科研院所"] * 3,
    *["高校"] * 4,
    "体外诊断",
    "CRO",
    "化工",
    "IT",
    "制造",
    "金融",
    "食品",
    "农业",
    "环境",
    "能源",
    "其他",
]  # 25 entries: 生物医药 is 12 %
PROVINCES = ["广东", "上海", "江苏", "浙江", "北京", "山东", "湖北", "四川", "福建", "天津"]
TITLES = ["研究员", "PI", "实验室主任", "采购经理", "博士后", "研究生", "工程师", "总监"]
TOPICS = ["单细胞", "基因编辑", "蛋白组学", "细胞培养", "测序", "质谱", "免疫", "显微成像"]
FOCUS_PROVINCES = ["广东", "上海", "江苏", "浙江"]
EXPO_TAG = "展会-2026"
COMPETITOR_TAG = "竞品"
FIRST_SEEN_BEFORE = "2026-06-01"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--contacts", type=int, default=1_000_000, help="contacts (default 1M, the issue's)"
    )
    parser.add_argument(
        "--activities",
        type=int,
        default=20_000_000,
        help="activities over the last 90 days (default 20M, the issue's)",
    )
    parser.add_argument(
        "--max-repeat",
        type=int,
        default=5,
        help="cap on --repeat for this bench (a full rebuild at 1M takes seconds; default 5)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print EXPLAIN ANALYZE of both queries of each definition (always on a miss)",
    )
    parser.add_argument(
        "--regenerate", action="store_true", help="drop the generated data and load it again"
    )
    parser.add_argument(
        "--load-only", action="store_true", help="load (or check) the data, then stop"
    )


# --- Data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegWorld:
    unit: BusinessUnit
    group_id: int
    tier_field: int
    expo_tag: int
    competitor_tag: int


def _execute(sql: str, params: Any = None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def _scalar(sql: str, params: Any = None) -> Any:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def ensure_seg_world() -> SegWorld:
    from apps.contacts.models import CustomField, CustomFieldType, Tag
    from bench import generate

    world = generate.ensure_world()
    tier, _ = CustomField.objects.dangerously_unscoped().get_or_create(
        unit=world.unit,
        key="tier",
        defaults={
            "label": "客户类型",
            "type": CustomFieldType.CHOICE,
            "options": [
                {"value": "ka", "label": "大客户"},
                {"value": "mid", "label": "中型"},
                {"value": "smb", "label": "小型"},
            ],
        },
    )
    expo, _ = Tag.objects.dangerously_unscoped().get_or_create(unit=world.unit, name=EXPO_TAG)
    rival, _ = Tag.objects.dangerously_unscoped().get_or_create(
        unit=world.unit, name=COMPETITOR_TAG
    )
    return SegWorld(world.unit, world.group.pk, tier.pk, expo.pk, rival.pk)


# abs(hashint8(x)) as a deterministic pseudo-random number per row and purpose.
def _h(expr: str, salt: int) -> str:
    return f"abs(hashint8(({expr})::bigint * 7919 + {salt}))"


def fill_contacts(sw: SegWorld, contacts: int) -> None:
    """Contacts with ids 1…N, all known to the unit, with tags, identities and consent."""
    from django.db import transaction

    p = {
        "group": sw.group_id,
        "unit": sw.unit.pk,
        "n": contacts,
        "industries": INDUSTRIES,
        "provinces": PROVINCES,
        "titles": TITLES,
        "tier": str(sw.tier_field),
        "expo": sw.expo_tag,
        "rival": sw.competitor_tag,
    }
    with transaction.atomic():
        _execute(
            f"""
            INSERT INTO contacts_contact (
                id, group_id, status, name, title, department, company_name, province, city,
                industry, custom, field_sources, first_seen_at, last_seen_at,
                created_at, updated_at
            )
            SELECT g, %(group)s,
                   CASE WHEN {_h("g", 1)} %% 100 = 99 THEN 'erased' ELSE 'active' END,
                   '联系人 ' || g,
                   (%(titles)s::text[])[1 + {_h("g", 2)} %% cardinality(%(titles)s::text[])],
                   '', '公司 ' || (g %% 50000), p.province, '',
                   (%(industries)s::text[])[1 + {_h("g", 4)} %% 25],
                   jsonb_build_object(%(tier)s::text,
                       CASE WHEN {_h("g", 5)} %% 10 = 0 THEN 'ka'
                            WHEN {_h("g", 5)} %% 10 < 4 THEN 'mid' ELSE 'smb' END),
                   '{{}}'::jsonb,
                   now() - ({_h("g", 6)} %% 730) * INTERVAL '1 day', now(), now(), now()
            FROM generate_series(1, %(n)s) AS g,
                 LATERAL (SELECT (%(provinces)s::text[])[
                     1 + {_h("g", 3)} %% cardinality(%(provinces)s::text[])] AS province) p
            """,
            p,
        )
        _execute("SELECT setval(pg_get_serial_sequence('contacts_contact', 'id'), %(n)s)", p)
        _execute(
            """
            INSERT INTO contacts_contactunit (contact_id, unit_id, first_seen_at, source)
            SELECT g, %(unit)s, now(), 'bench' FROM generate_series(1, %(n)s) AS g
            """,
            p,
        )
        _execute(
            f"""
            INSERT INTO contacts_contacttag (contact_id, tag_id, source, added_by, added_at)
            SELECT g, CASE WHEN {_h("g", 7)} %% 100 < 5 THEN %(expo)s ELSE %(rival)s END,
                   'manual', 'bench', now()
            FROM generate_series(1, %(n)s) AS g
            WHERE {_h("g", 7)} %% 100 < 8
            """,
            p,
        )
        _execute(
            f"""
            INSERT INTO contacts_identity (group_id, contact_id, kind, scope, value, source,
                                           created_at)
            SELECT %(group)s, g, 'phone', '', '+86138' || lpad(g::text, 8, '0'), 'bench', now()
            FROM generate_series(1, %(n)s) AS g WHERE {_h("g", 8)} %% 100 < 60
            UNION ALL
            SELECT %(group)s, g, 'email', '', 'c' || g || '@example.cn', 'bench', now()
            FROM generate_series(1, %(n)s) AS g WHERE {_h("g", 9)} %% 100 < 85
            """,
            p,
        )
        _execute(
            f"""
            INSERT INTO contacts_consentstate (contact_id, channel, purpose, granted, since)
            SELECT g, 'email', 'marketing', {_h("g", 10)} %% 100 < 70, now() - INTERVAL '40 days'
            FROM generate_series(1, %(n)s) AS g WHERE {_h("g", 10)} %% 100 < 78
            """,
            p,
        )


def _activity_indexes() -> list[tuple[str, str]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.tablename = 'contacts_activity'
              AND i.indexname NOT IN (
                  SELECT conname FROM pg_constraint WHERE conrelid = 'contacts_activity'::regclass
              )
            """
        )
        return [(str(n), str(d)) for n, d in cursor.fetchall()]


def fill_activities(sw: SegWorld, contacts: int, activities: int) -> None:
    """``activities`` rows over the last 90 days, oldest first (ids and times agree).

    Who: 20 % go to the very active 2 % (every 50th contact); in the last 30 days the rest
    go to every 5th contact, before that to two contacts in five, so most contacts have
    been quiet for a month. What: 60 % page views, 22 % content views, 14 % downloads, 4 %
    form submits; an asset activity's topic is the contact's own interest seven times in
    ten.
    """
    from django.db import connection, transaction

    indexes = _activity_indexes()
    with connection.cursor() as cursor:
        for name, _definition in indexes:
            cursor.execute(f"DROP INDEX IF EXISTS {connection.ops.quote_name(name)}")
    hot, recent, older = max(1, contacts // 50), max(1, contacts // 5), max(1, 2 * contacts // 5)
    for start in range(1, activities + 1, BATCH):
        stop = min(activities, start + BATCH - 1)
        with transaction.atomic():
            _execute(
                f"""
                INSERT INTO contacts_activity (
                    id, unit_id, contact_id, anonymous_id, type, occurred_at, channel_id,
                    campaign_id, object_type, object_id, properties, dedupe_key, recorded_at
                )
                SELECT g, %(unit)s, k.contact, '', k.type, k.at, NULL, NULL,
                       CASE k.type WHEN 'page_view' THEN ''
                                   WHEN 'form_submit' THEN 'form' ELSE 'asset' END,
                       CASE k.type WHEN 'page_view' THEN ''
                                   WHEN 'form_submit' THEN (k.r %% 20)::text
                                   ELSE (k.topic * 100 + k.r %% 100)::text END,
                       CASE k.type WHEN 'page_view'
                                   THEN jsonb_build_object('url', '/p/' || (k.r %% 500))
                                   WHEN 'form_submit' THEN '{{}}'::jsonb
                                   ELSE jsonb_build_object(
                                       'topic', (%(topics)s::text[])[1 + k.topic])
                       END,
                       NULL, k.at
                FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g,
                LATERAL (
                    SELECT now() - %(days)s * INTERVAL '1 day'
                           + (g::float8 / %(total)s) * %(days)s * INTERVAL '1 day' AS at,
                           {_h("g", 11)} AS r, {_h("g", 12)} %% 100 AS who,
                           {_h("g", 13)} AS pick, {_h("g", 14)} %% 100 AS kind
                ) AS b,
                LATERAL (
                    SELECT CASE
                        WHEN b.who < 20 THEN (b.pick %% %(hot)s) * 50 + 1
                        WHEN b.at >= now() - INTERVAL '30 days' THEN (b.pick %% %(recent)s) * 5 + 1
                        ELSE (b.pick %% %(older)s) / 2 * 5 + (b.pick %% 2) + 1
                    END AS contact
                ) AS c,
                LATERAL (
                    SELECT b.at, b.r, c.contact,
                           CASE WHEN b.kind < 60 THEN 'page_view'
                                WHEN b.kind < 82 THEN 'content_view'
                                WHEN b.kind < 96 THEN 'download'
                                ELSE 'form_submit' END AS type,
                           CASE WHEN b.r %% 10 < 7 THEN abs(hashint8(c.contact)) %% 8
                                ELSE b.r %% 8 END AS topic
                ) AS k
                WHERE k.contact <= %(n)s
                """,
                {
                    "unit": sw.unit.pk,
                    "topics": TOPICS,
                    "start": start,
                    "stop": stop,
                    "days": DAYS,
                    "total": activities,
                    "hot": hot,
                    "recent": recent,
                    "older": older,
                    "n": contacts,
                },
            )
        log(f"  activities {stop:,} / {activities:,}")
    _execute("SELECT setval(pg_get_serial_sequence('contacts_activity', 'id'), %s)", [activities])
    log("  rebuilding the activity indexes")
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        for _name, definition in indexes:
            cursor.execute(definition)
        cursor.execute("RESET maintenance_work_mem")
    # last_seen_at as activities_record keeps it: the newest activity, else first seen.
    _execute(
        """
        UPDATE contacts_contact c SET last_seen_at = GREATEST(c.first_seen_at, a.at)
        FROM (SELECT contact_id, max(occurred_at) AS at FROM contacts_activity
              GROUP BY contact_id) a
        WHERE a.contact_id = c.id
        """
    )
    _execute(
        """
        UPDATE contacts_contact SET last_seen_at = first_seen_at
        WHERE last_seen_at > first_seen_at
          AND NOT EXISTS (SELECT 1 FROM contacts_activity a
                          WHERE a.contact_id = contacts_contact.id)
        """
    )


TABLES = (
    "contacts_segmentevent",
    "contacts_segmentmember",
    "contacts_segmentsize",
    "contacts_segment",
    "contacts_activity",
    "contacts_consentstate",
    "contacts_identity",
    "contacts_contacttag",
    "contacts_contactunit",
    "contacts_contact",
)


def ensure_data(sw: SegWorld, contacts: int, activities: int, regenerate: bool) -> float | None:
    """Load the data unless what is there has the asked sizes and is fresh; seconds taken."""
    from django.db import DatabaseError, transaction

    from bench import generate
    from bench.environment import assert_bench_database

    have_contacts = _scalar("SELECT count(*) FROM contacts_contact")
    have_activities = _scalar("SELECT COALESCE(max(id), 0) FROM contacts_activity")
    newest = _scalar("SELECT max(occurred_at) FROM contacts_activity")
    fresh = newest is not None and newest > dt.datetime.now(dt.UTC) - STALE_AFTER
    if (
        not regenerate
        and fresh
        and have_contacts == contacts
        and have_activities == activities
        and _scalar("SELECT count(*) FROM contacts_activity") == activities
    ):
        log(f"reusing {contacts:,} contacts and {activities:,} activities")
        return None
    started = time.perf_counter()
    log(f"loading {contacts:,} contacts and {activities:,} activities")
    # The generated rows refer only to rows generated before them, so the deferred
    # foreign-key checks (one lookup per row and key at commit: most of the load time)
    # are skipped when the role may (as pg_restore --disable-triggers does).
    try:
        with transaction.atomic():
            _execute("SET session_replication_role = replica")
    except DatabaseError:
        log("  (not a superuser: foreign keys are checked, the load takes longer)")
    assert_bench_database()
    # CASCADE: everything else that refers to contacts (consent events, leads…) goes too.
    _execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    fill_contacts(sw, contacts)
    log(f"  contacts done in {time.perf_counter() - started:.0f} s")
    fill_activities(sw, contacts, activities)
    log(f"  activities done in {time.perf_counter() - started:.0f} s; vacuum analyze")
    _execute("RESET session_replication_role")
    generate.analyze(*TABLES)
    seconds = time.perf_counter() - started
    log(f"loaded in {seconds:.0f} s")
    return seconds


# --- Definitions and their hand-written SQL ---------------------------------------------------


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    definition: dict[str, Any]
    # Hand-written SELECT of the matching contact ids; %(since7)s and %(since30)s are the
    # clock minus 7 and 30 days (see hand_params).
    sql: str
    params: dict[str, Any]


def cases(sw: SegWorld) -> list[Case]:
    from django.utils import timezone

    unit = sw.unit.pk
    cutoff = timezone.make_aware(
        dt.datetime.combine(dt.date.fromisoformat(FIRST_SEEN_BEFORE), dt.time.min)
    )
    return [
        Case(
            "a",
            "(industry=生物医药 AND (单细胞 ≥3×/7d OR tag 展会-2026)) AND NOT email withdrawn",
            {
                "all": [
                    {"field": "industry", "op": "eq", "value": "生物医药"},
                    {
                        "any": [
                            {
                                "activity": {
                                    "type": "*",
                                    "days": 7,
                                    "min_count": 3,
                                    "properties": {"topic": "单细胞"},
                                }
                            },
                            {"tag": sw.expo_tag},
                        ]
                    },
                    {"not": {"consent": {"channel": "email", "state": "withdrawn"}}},
                ]
            },
            """
            SELECT c.id FROM contacts_contact c
            JOIN contacts_contactunit cu ON cu.contact_id = c.id AND cu.unit_id = %(unit)s
            WHERE c.status = 'active' AND c.industry = '生物医药'
              AND (c.id IN (SELECT a.contact_id FROM contacts_activity a
                            WHERE a.unit_id = %(unit)s
                              AND a.occurred_at >= %(since7)s
                              AND a.properties @> '{"topic": "单细胞"}'
                            GROUP BY a.contact_id HAVING count(*) >= 3)
                   OR EXISTS (SELECT 1 FROM contacts_contacttag t
                              WHERE t.contact_id = c.id AND t.tag_id = %(expo)s))
              AND NOT EXISTS (SELECT 1 FROM contacts_consentstate s
                              WHERE s.contact_id = c.id AND s.channel = 'email'
                                AND s.purpose = 'marketing' AND NOT s.granted)
            """,
            {"unit": unit, "expo": sw.expo_tag},
        ),
        Case(
            "b",
            "province in 4 AND has phone AND (form_submit in 30d OR tier = ka)",
            {
                "all": [
                    {"field": "province", "op": "in", "value": FOCUS_PROVINCES},
                    {"has_identity": "phone"},
                    {
                        "any": [
                            {"activity": {"type": "form_submit", "days": 30}},
                            {"custom": sw.tier_field, "op": "eq", "value": "ka"},
                        ]
                    },
                ]
            },
            """
            SELECT c.id FROM contacts_contact c
            JOIN contacts_contactunit cu ON cu.contact_id = c.id AND cu.unit_id = %(unit)s
            WHERE c.status = 'active' AND c.province = ANY(%(provinces)s)
              AND EXISTS (SELECT 1 FROM contacts_identity i
                          WHERE i.contact_id = c.id AND i.kind = 'phone')
              AND (c.custom @> %(ka)s::jsonb
                   OR EXISTS (SELECT 1 FROM contacts_activity a
                              WHERE a.contact_id = c.id AND a.unit_id = %(unit)s
                                AND a.type = 'form_submit'
                                AND a.occurred_at >= %(since30)s))
            """,
            {
                "unit": unit,
                "provinces": FOCUS_PROVINCES,
                "ka": f'{{"{sw.tier_field}": "ka"}}',
            },
        ),
        Case(
            "c",
            f"no activity in 30d AND NOT tag 竞品 AND first seen before {FIRST_SEEN_BEFORE}",
            {
                "all": [
                    {"not": {"activity": {"type": "*", "days": 30}}},
                    {"not": {"tag": sw.competitor_tag}},
                    {"field": "first_seen_at", "op": "before", "value": FIRST_SEEN_BEFORE},
                ]
            },
            # "No activity in 30 days" is last_seen_at, which activities_record keeps.
            """
            SELECT c.id FROM contacts_contact c
            JOIN contacts_contactunit cu ON cu.contact_id = c.id AND cu.unit_id = %(unit)s
            WHERE c.status = 'active'
              AND c.last_seen_at < %(since30)s
              AND c.first_seen_at < %(cutoff)s
              AND NOT EXISTS (SELECT 1 FROM contacts_contacttag t
                              WHERE t.contact_id = c.id AND t.tag_id = %(rival)s)
            """,
            {"unit": unit, "cutoff": cutoff, "rival": sw.competitor_tag},
        ),
    ]


def hand_params(case: Case, now: dt.datetime | None = None) -> dict[str, Any]:
    """The hand-written query's parameters, its windows computed once (as a careful
    engineer would: ``now() - INTERVAL`` in the WHERE clause is evaluated row by row)."""
    now = now or dt.datetime.now(dt.UTC)
    return {
        **case.params,
        "since7": now - dt.timedelta(days=7),
        "since30": now - dt.timedelta(days=30),
    }


def ids_digest(sql: str, params: Any) -> tuple[int, str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), COALESCE(md5(string_agg(id::text, ',' ORDER BY id)), '') "
            f"FROM ({sql}) matching (id)",
            params,
        )
        count, digest = cursor.fetchone()
    return int(count), str(digest)


def compiled_sql(case: Case, sw: SegWorld, now: dt.datetime | None = None) -> tuple[str, Any]:
    """The SELECT of ids the product runs for ``case`` (as segment_preview compiles it)."""
    from apps.contacts.services import tag_rules
    from apps.contacts.services.segments import segment_rule_context

    context = segment_rule_context(unit_id=sw.unit.pk)
    matches = tag_rules.rule_matches(case.definition, context=context, now=now)
    sql, params = matches.values("pk").query.sql_with_params()
    return sql, params


# --- Rebuild baselines ------------------------------------------------------------------------

SCRATCH_MEMBER = "bench_segment_member"
SCRATCH_EVENT = "bench_segment_event"


def ensure_scratch() -> None:
    """Tables shaped like SegmentMember and SegmentEvent (indexes and foreign keys too)."""
    for scratch, model_table in (
        (SCRATCH_MEMBER, "contacts_segmentmember"),
        (SCRATCH_EVENT, "contacts_segmentevent"),
    ):
        if _scalar("SELECT to_regclass(%s)", [scratch]) is None:
            _execute(f"CREATE TABLE {scratch} (LIKE {model_table} INCLUDING ALL)")
            for column, target in (
                ("segment_id", "contacts_segment"),
                ("contact_id", "contacts_contact"),
            ):
                _execute(
                    f"ALTER TABLE {scratch} ADD FOREIGN KEY ({column}) REFERENCES {target} (id) "
                    "DEFERRABLE INITIALLY DEFERRED"
                )


def hand_rebuild(case: Case, segment_id: int) -> tuple[int, int]:
    """The hand-written rebuild: one INSERT … SELECT of who entered, one DELETE of who
    left, each logging events, in one transaction; (entered, left)."""
    from django.db import connection, transaction

    params = {**case.params, "seg": segment_id}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE TEMP TABLE bench_matching ON COMMIT DROP AS
            SELECT id FROM ({case.sql}) h;
            """,
            hand_params(case),
        )
        cursor.execute(
            f"""
            WITH entered AS (
                INSERT INTO {SCRATCH_MEMBER} (segment_id, contact_id, since)
                SELECT %(seg)s, m.id, now() FROM bench_matching m
                ON CONFLICT (segment_id, contact_id) DO NOTHING
                RETURNING contact_id
            )
            INSERT INTO {SCRATCH_EVENT} (segment_id, contact_id, kind, at, version)
            SELECT %(seg)s, contact_id, 'entered', now(), 1 FROM entered
            """,
            params,
        )
        entered = cursor.rowcount
        cursor.execute(
            f"""
            WITH gone AS (
                DELETE FROM {SCRATCH_MEMBER} s
                WHERE s.segment_id = %(seg)s
                  AND NOT EXISTS (SELECT 1 FROM bench_matching m WHERE m.id = s.contact_id)
                RETURNING contact_id
            )
            INSERT INTO {SCRATCH_EVENT} (segment_id, contact_id, kind, at, version)
            SELECT %(seg)s, contact_id, 'left', now(), 1 FROM gone
            """,
            params,
        )
        left = cursor.rowcount
    return entered, left


# --- Measuring -------------------------------------------------------------------------------


def _median_ms(fn: Callable[[], Any], before: Callable[[], Any] | None, runs: int) -> float:
    samples = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def _alternate(
    pairs: dict[str, tuple[Callable[[], Any], Callable[[], Any] | None]], runs: int, warmup: int
) -> dict[str, float]:
    """Median ms of each function, taking turns run by run (``before`` untimed)."""
    for _ in range(warmup):
        for fn, before in pairs.values():
            if before is not None:
                before()
            fn()
    samples: dict[str, list[float]] = {k: [] for k in pairs}
    for _ in range(runs):
        for key, (fn, before) in pairs.items():
            if before is not None:
                before()
            start = time.perf_counter()
            fn()
            samples[key].append((time.perf_counter() - start) * 1000)
    return {k: statistics.median(v) for k, v in samples.items()}


def run(args: argparse.Namespace) -> Result:
    from django.db import connection
    from django.utils import timezone

    from apps.contacts.models import Segment, SegmentKind
    from apps.contacts.services import segments as seg_services
    from bench import generate
    from bench.measure import explain_analyze

    runs = max(1, min(args.repeat, args.max_repeat))
    warmup = max(0, min(args.warmup, 1))
    sw = ensure_seg_world()
    load_s = ensure_data(sw, args.contacts, args.activities, args.regenerate)
    if args.load_only:
        raise SystemExit(0)
    ensure_scratch()
    all_cases = cases(sw)

    # One dynamic segment per definition (created directly: the bench times rebuilds, not
    # the audit trail of creating them).
    segment_ids: dict[str, int] = {}
    for case in all_cases:
        name = f"bench {case.key}"
        segment = Segment.objects.dangerously_unscoped().filter(unit=sw.unit, name=name).first()
        if segment is None:
            segment = Segment.objects.dangerously_unscoped().create(
                unit=sw.unit, name=name, kind=SegmentKind.DYNAMIC, definition=case.definition
            )
        elif segment.definition != case.definition:
            segment.definition = case.definition
            segment.version += 1
            segment.save(update_fields=["definition", "version"])
        segment_ids[case.key] = segment.pk
    _execute(
        "DELETE FROM contacts_segment WHERE unit_id = %s AND NOT (id = ANY(%s))",
        [sw.unit.pk, list(segment_ids.values())],
    )

    figures: dict[str, Any] = {
        "contacts": args.contacts,
        "activities": args.activities,
        "runs": runs,
        "warmup": warmup,
        "load_s": round(load_s, 1) if load_s is not None else None,
    }
    rows: list[Row] = []
    checks: list[tuple[str, bool]] = []
    explain: list[str] = []
    full_nochange_total = 0.0

    for case in all_cases:
        seg_id = segment_ids[case.key]
        now = timezone.now()
        sql, params = compiled_sql(case, sw, now)
        fixed = hand_params(case, now)
        mine = ids_digest(sql, params)
        theirs = ids_digest(case.sql, fixed)
        if mine != theirs:
            raise AssertionError(
                f"definition {case.key}: compiled query returns {mine}, hand-written {theirs}"
            )
        log(f"[{case.key}] same {mine[0]:,} contacts ({mine[1][:8]}); timing the preview count")

        def preview(case: Case = case) -> int:
            count_sql, count_params = compiled_sql(case, sw)
            return int(_scalar(f"SELECT count(*) FROM ({count_sql}) matching", count_params))

        def hand_count(case: Case = case) -> int:
            return int(_scalar(f"SELECT count(*) FROM ({case.sql}) h", hand_params(case)))

        counts = _alternate({"code": (preview, None), "hand": (hand_count, None)}, runs, warmup)

        def empty_members(seg_id: int = seg_id) -> None:
            _execute("DELETE FROM contacts_segmentmember WHERE segment_id = %s", [seg_id])

        def empty_scratch(seg_id: int = seg_id) -> None:
            _execute(f"DELETE FROM {SCRATCH_MEMBER} WHERE segment_id = %s", [seg_id])

        def rebuild(seg_id: int = seg_id) -> None:
            result = seg_services.segment_rebuild(segment_id=seg_id)
            if result.status != "done":
                raise AssertionError(f"segment_rebuild of {seg_id}: {result}")

        def hand(case: Case = case, seg_id: int = seg_id) -> None:
            hand_rebuild(case, seg_id)

        log(f"[{case.key}] timing full rebuilds from empty")
        from_empty = _alternate(
            {"code": (rebuild, empty_members), "hand": (hand, empty_scratch)}, runs, 0
        )
        log(f"[{case.key}] timing full rebuilds with nothing changed")
        no_change = _alternate({"code": (rebuild, None), "hand": (hand, None)}, runs, warmup)
        size = Segment.objects.dangerously_unscoped().get(pk=seg_id).size
        full_nochange_total += no_change["code"]
        r_count = counts["code"] / counts["hand"]
        r_empty = from_empty["code"] / from_empty["hand"]
        r_same = no_change["code"] / no_change["hand"]
        figures[case.key] = {
            "definition": case.label,
            "matching": mine[0],
            "size_after_rebuild": size,
            "preview_count_ms": round(counts["code"], 1),
            "hand_count_ms": round(counts["hand"], 1),
            "rebuild_from_empty_ms": round(from_empty["code"], 1),
            "hand_rebuild_from_empty_ms": round(from_empty["hand"], 1),
            "rebuild_no_change_ms": round(no_change["code"], 1),
            "hand_rebuild_no_change_ms": round(no_change["hand"], 1),
            "ratio_count": round(r_count, 3),
            "ratio_rebuild_from_empty": round(r_empty, 3),
            "ratio_rebuild_no_change": round(r_same, 3),
        }
        rows += [
            Row(f"{case.key}: matching contacts", [mine[0], mine[0], None]),
            Row(f"{case.key}: count ms", [counts["code"], counts["hand"], r_count]),
            Row(
                f"{case.key}: rebuild from empty ms",
                [from_empty["code"], from_empty["hand"], r_empty],
            ),
            Row(
                f"{case.key}: rebuild, no change ms",
                [no_change["code"], no_change["hand"], r_same],
            ),
        ]
        checks += [
            (
                f"{case.key}: preview count ÷ hand COUNT = {r_count:.2f} ≤ {PREVIEW_MAX}",
                r_count <= PREVIEW_MAX,
            ),
            (
                f"{case.key}: rebuild from empty ÷ hand = {r_empty:.2f} ≤ {REBUILD_MAX}",
                r_empty <= REBUILD_MAX,
            ),
            (
                f"{case.key}: rebuild no change ÷ hand = {r_same:.2f} ≤ {REBUILD_MAX}",
                r_same <= REBUILD_MAX,
            ),
        ]
        if args.explain or r_count > PREVIEW_MAX:
            explain.append(
                f"\n-- [{case.key}] compiled:\n{explain_analyze(sql, params)}"
                f"\n-- [{case.key}] hand-written:\n{explain_analyze(case.sql, fixed)}"
            )

    # Incremental: 1 k contacts spread over the table change (industry, province, tag
    # 展会-2026 toggled), then segments_rebuild_for re-checks every segment of the unit.
    changed = sorted(random.Random(6).sample(range(1, args.contacts + 1), CHANGED))

    def change() -> None:
        _execute(
            """
            UPDATE contacts_contact SET
                industry = CASE WHEN industry = '生物医药' THEN '制药' ELSE '生物医药' END,
                province = CASE WHEN province = '广东' THEN '湖北' ELSE '广东' END,
                updated_at = now()
            WHERE id = ANY(%s)
            """,
            [changed],
        )
        removed = _execute(
            "DELETE FROM contacts_contacttag WHERE tag_id = %s AND contact_id = ANY(%s)",
            [sw.expo_tag, changed[::2]],
        )
        if not removed:
            _execute(
                """
                INSERT INTO contacts_contacttag (contact_id, tag_id, source, added_by, added_at)
                SELECT c, %s, 'manual', 'bench', now() FROM unnest(%s::bigint[]) AS c
                ON CONFLICT DO NOTHING
                """,
                [sw.expo_tag, changed[::2]],
            )

    outcomes: list[Any] = []

    def incremental() -> None:
        outcomes.append(seg_services.segments_rebuild_for(contact_ids=changed))

    log("timing segments_rebuild_for after 1k contacts changed")
    incremental_ms = _median_ms(incremental, change, runs)
    if runs % 2:
        change()  # back to the generated data (changes toggle)
        seg_services.segments_rebuild_for(contact_ids=changed)
    r_incr = incremental_ms / full_nochange_total
    figures["incremental"] = {
        "changed_contacts": len(changed),
        "segments": len(all_cases),
        "rebuild_for_ms": round(incremental_ms, 1),
        "full_rebuilds_no_change_ms": round(full_nochange_total, 1),
        "ratio": round(r_incr, 4),
        "entered_left_last_run": [outcomes[-1].entered, outcomes[-1].left] if outcomes else None,
    }
    rows.append(
        Row(
            "1k changed: rebuild_for ms vs Σ full (3 segs)",
            [incremental_ms, full_nochange_total, r_incr],
        )
    )
    checks.append(
        (
            f"rebuild after 1k changed ÷ full rebuild = {r_incr:.3f} ≤ {INCREMENTAL_MAX}",
            r_incr <= INCREMENTAL_MAX,
        )
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size('contacts_activity')")
        activity_bytes = int(cursor.fetchone()[0])
    figures["activity_table_bytes"] = activity_bytes
    notes = [
        f"{args.contacts:,} contacts, {args.activities:,} activities "
        f"({activity_bytes / 2**30:.1f} GiB with indexes)"
        + (f", loaded in {load_s:.0f} s" if load_s is not None else ", reused"),
        "hand rebuild = temp table of the hand-written SELECT, one INSERT … SELECT (ON "
        "CONFLICT) and one DELETE, each logging events, into scratch tables like "
        "SegmentMember/SegmentEvent; code = segment_rebuild (checks, estimate, lock, "
        "diff statement, size history)",
    ]
    generate.analyze("contacts_segmentmember", "contacts_segmentevent")
    result = Result(
        name=NAME,
        title=f"segments: median of {runs} runs, {args.contacts:,} contacts / "
        f"{args.activities:,} activities",
        figures=figures,
        target={
            "preview_count_ratio_max": PREVIEW_MAX,
            "rebuild_ratio_max": REBUILD_MAX,
            "incremental_ratio_max": INCREMENTAL_MAX,
            "issue_contacts": 1_000_000,
            "issue_activities": 20_000_000,
        },
        columns=["code", "hand-written", "ratio"],
        rows=rows,
        checks=checks,
        notes=notes,
    )
    if explain or not result.met:
        print("\n".join(explain))
    return result
