"""Contact import at scale: what does going through the import path cost over a raw load?

The import path (``services.imports``: upload, mapping, then the job that streams the
file, checks every row, finds duplicates within the file, resolves identities set-based
in batches with advisory locks, and records progress) against the floor PostgreSQL offers
for the same rows: ``COPY`` into a staging table, then one ``INSERT … ON CONFLICT``
statement that writes the contacts, their identities and their unit links.

1. Writes two CSV files of ``--rows`` generated people each (different people), in the
   shape Chinese marketers export: 姓名, 手机, 邮箱, 公司, 职位, 城市.
2. Empties the contact tables; times the baseline on file one; empties them again.
3. Times importing file one through the import path into the empty tables.
4. Times importing file two into the tables that now hold file one's people.

Targets: import ÷ baseline ≤ 3 (identity resolution on), and importing into a full table
÷ into an empty one ≤ 1.3. Each figure is one run (a million rows take minutes); the
tables are vacuumed, analysed and checkpointed before each timing.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import Result, Row, human, log

NAME = "contacts_import"
DESCRIPTION = (
    "contact import (CSV, identity resolution on) vs COPY + one INSERT … ON CONFLICT; "
    "into an empty vs a full table"
)

RATIO_BASELINE_MAX = 3.0
RATIO_FULL_MAX = 1.3
HEADER = ["姓名", "手机", "邮箱", "公司", "职位", "城市"]
MAPPING = {
    "columns": {
        "姓名": "name",
        "手机": "phone",
        "邮箱": "email",
        "公司": "company_name",
        "职位": "title",
        "城市": "city",
    },
    "required": [],
    "wechat_app_id": "",
}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = ("伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "杰", "娟", "涛", "明", "超")
TITLES = ("采购经理", "IT 总监", "研发工程师", "市场经理", "总经理", "实验室主任", "运营专员")
CITIES = ("上海", "北京", "深圳", "杭州", "苏州", "成都", "武汉", "南京", "广州", "西安")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per file")
    parser.add_argument(
        "--batch-size", type=int, default=0, help="rows per import batch (default: the service's)"
    )


def write_file(path: Path, first: int, rows: int) -> None:
    """People ``first`` … ``first + rows - 1``: unique phones and emails, UTF-8 with BOM."""
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for n in range(first, first + rows):
            writer.writerow(
                [
                    SURNAMES[n % len(SURNAMES)] + GIVEN[n // 7 % len(GIVEN)],
                    f"1{3 + n // 100_000_000 % 7}{n % 100_000_000:09d}"[:11],
                    f"p{n}@example{n % 97}.cn",
                    f"华澜客户{n % 5000}有限公司",
                    TITLES[n % len(TITLES)],
                    CITIES[n % len(CITIES)],
                ]
            )


CONTACT_TABLES = (
    "contacts_contact",
    "contacts_identity",
    "contacts_contactunit",
    "contacts_contacttag",
    "contacts_taghistory",
    "contacts_consentevent",
    "contacts_consentstate",
    "contacts_contactmerge",
    "contacts_importmapping",
)


def empty_contacts() -> None:
    from django.db import connection

    from bench.environment import assert_bench_database

    assert_bench_database()
    from apps.contacts.models import ContactImport

    for contact_import in ContactImport.objects.dangerously_unscoped().all():
        contact_import.file.delete(save=False)
        contact_import.error_file.delete(save=False)
    tables = ", ".join(
        connection.ops.quote_name(t) for t in (*CONTACT_TABLES, "contacts_contactimport")
    )
    with connection.cursor() as cursor:
        # CASCADE: higher apps' rows pointing at contacts (leads…) go too, bench data only.
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


def settle() -> None:
    from bench import generate

    generate.analyze(*CONTACT_TABLES[:3])


def baseline(path: Path, group_id: int, unit_id: int) -> float:
    """COPY into a staging table, then one statement: contacts, identities, unit links."""
    from django.db import connection, transaction

    start = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE import_staging (name text, phone text, email text, "
            "company text, title text, city text) ON COMMIT DROP"
        )
        with (
            path.open("rb") as f,
            cursor.cursor.copy(
                "COPY import_staging FROM STDIN WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')"
            ) as copy,
        ):
            f.read(3)  # the BOM
            while chunk := f.read(1 << 20):
                copy.write(chunk)
        cursor.execute(
            """
            WITH rows AS (
                SELECT nextval(pg_get_serial_sequence('contacts_contact', 'id')) AS id, s.*
                FROM import_staging s
            ), contacts AS (
                INSERT INTO contacts_contact (id, group_id, status, name, title, department,
                    company_name, province, city, industry, custom, field_sources,
                    first_seen_at, last_seen_at, created_at, updated_at)
                SELECT id, %(group)s, 'active', name, title, '', company, '', city, '',
                       '{}'::jsonb, '{}'::jsonb, now(), now(), now(), now()
                FROM rows
            ), units AS (
                INSERT INTO contacts_contactunit (contact_id, unit_id, first_seen_at, source)
                SELECT id, %(unit)s, now(), 'import' FROM rows
            )
            INSERT INTO contacts_identity (group_id, contact_id, kind, scope, value, source,
                                           created_at)
            SELECT %(group)s, id, k.kind, '', k.value, 'import', now()
            FROM rows, LATERAL (VALUES ('phone', '+86' || phone), ('email', lower(email)))
                 AS k(kind, value)
            ON CONFLICT (group_id, kind, scope, value) DO NOTHING
            """,
            {"group": group_id, "unit": unit_id},
        )
    return time.perf_counter() - start


def import_path(path: Path, unit: Any, user: Any, batch_size: int) -> tuple[float, Any]:
    from django.core.files import File

    from apps.contacts.services import imports

    start = time.perf_counter()
    with path.open("rb") as f:
        contact_import = imports.contact_import_create(
            unit=unit, upload=File(f, name=path.name), acting_user=user
        )
    imports.contact_import_start(contact_import=contact_import, mapping=MAPPING, acting_user=user)
    done = imports.contact_import_run(
        import_id=contact_import.pk, batch_size=batch_size or imports.BATCH_SIZE
    )
    seconds = time.perf_counter() - start
    if done is None or done.status != "done" or done.imported_rows != done.total_rows:
        raise AssertionError(
            f"import did not finish cleanly: {getattr(done, 'status', None)} "
            f"{getattr(done, 'imported_rows', None)}/{getattr(done, 'total_rows', None)} "
            f"{getattr(done, 'failure', '')}"
        )
    return seconds, done


def count(table: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def run(args: argparse.Namespace) -> Result:
    from django.conf import settings

    from apps.contacts.services import imports
    from bench import generate

    rows = args.rows
    if rows < 1:
        raise SystemExit("need --rows >= 1")
    label = human(rows)
    world = generate.ensure_world()
    # The import service refuses bigger files; the bench measures throughput, not the cap.
    settings.CONTACT_IMPORT_MAX_BYTES = 1 << 40
    batch_size = args.batch_size or imports.BATCH_SIZE

    with tempfile.TemporaryDirectory(prefix="bench-import-") as folder:
        first, second = Path(folder) / "people-1.csv", Path(folder) / "people-2.csv"
        started = time.perf_counter()
        write_file(first, 0, rows)
        write_file(second, rows, rows)
        log(
            f"wrote two files of {rows:,} rows ({os.path.getsize(first) / 1e6:.1f} MB each) "
            f"in {time.perf_counter() - started:.1f} s"
        )

        empty_contacts()
        settle()
        baseline_s = baseline(first, world.group.pk, world.unit.pk)
        baseline_counts = (count("contacts_contact"), count("contacts_identity"))
        log(f"baseline (COPY + INSERT … ON CONFLICT): {baseline_s:.1f} s")

        empty_contacts()
        settle()
        empty_s, done_empty = import_path(first, world.unit, world.admin, batch_size)
        log(f"import into empty tables: {empty_s:.1f} s")
        empty_counts = (count("contacts_contact"), count("contacts_identity"))

        settle()
        full_s, done_full = import_path(second, world.unit, world.admin, batch_size)
        log(f"import into tables holding {label} contacts: {full_s:.1f} s")
        empty_contacts()

    ratio_baseline = empty_s / baseline_s
    ratio_full = full_s / empty_s
    figures: dict[str, Any] = {
        "rows": rows,
        "batch_size": batch_size,
        "baseline_s": round(baseline_s, 2),
        "import_empty_s": round(empty_s, 2),
        "import_full_s": round(full_s, 2),
        "rows_per_s_baseline": round(rows / baseline_s),
        "rows_per_s_empty": round(rows / empty_s),
        "rows_per_s_full": round(rows / full_s),
        "ratio_import_vs_baseline": round(ratio_baseline, 3),
        "ratio_full_vs_empty": round(ratio_full, 3),
        "contacts_identities_baseline": baseline_counts,
        "contacts_identities_import": empty_counts,
        "created_empty": done_empty.created_contacts,
        "created_full": done_full.created_contacts,
    }
    table = [
        Row("seconds", [baseline_s, empty_s, full_s]),
        Row("rows / s", [round(rows / baseline_s), round(rows / empty_s), round(rows / full_s)]),
        Row(
            "contacts created",
            [baseline_counts[0], done_empty.created_contacts, done_full.created_contacts],
        ),
        Row("ratio to baseline", [1.0, ratio_baseline, full_s / baseline_s]),
    ]
    checks = [
        (
            f"import ÷ COPY+INSERT at {label} = {ratio_baseline:.2f} ≤ {RATIO_BASELINE_MAX}",
            ratio_baseline <= RATIO_BASELINE_MAX,
        ),
        (
            f"import into {label} held ÷ into empty = {ratio_full:.2f} ≤ {RATIO_FULL_MAX}",
            ratio_full <= RATIO_FULL_MAX,
        ),
        (
            f"same contacts and identities as the baseline ({empty_counts[0]:,}, "
            f"{empty_counts[1]:,})",
            empty_counts == baseline_counts,
        ),
    ]
    return Result(
        name=NAME,
        title=f"contacts_import: {label} rows, batches of {batch_size}, one run each",
        figures=figures,
        target={
            "ratio_import_vs_baseline_max": RATIO_BASELINE_MAX,
            "ratio_full_vs_empty_max": RATIO_FULL_MAX,
        },
        columns=["COPY+INSERT", "import (empty)", f"import ({label} held)"],
        rows=table,
        checks=checks,
    )
