"""Start-up with bad service settings stops with one clear line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    environ.update({"LEADLOOP_TESTING": "1", **env})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://root@localhost/leadloop", "DATABASE_URL must be a PostgreSQL URL"),
        ("postgresql://user@localhost:5432", "DATABASE_URL names no database"),
        ("postgresql://user@localhost:notaport/db", "DATABASE_URL is not a valid database URL"),
    ],
)
def test_a_malformed_database_url_stops_with_one_line(url, expected):
    result = _manage("check", DATABASE_URL=url)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert expected in result.stderr
    assert result.stderr.startswith("LeadLoop cannot start: DATABASE_URL")


def test_an_unreachable_database_stops_with_one_line():
    result = _manage(
        "runstack",
        "--check-only",
        DATABASE_URL="postgresql://leadloop@127.0.0.1:9/leadloop",
        REDIS_URL="redis://127.0.0.1:9/0",
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith(
        "LeadLoop cannot start: DATABASE_URL: cannot connect to the database:"
    )


def test_an_unreachable_redis_stops_with_one_line():
    from tests.support import database_url

    url = database_url("postgres")
    result = _manage(
        "runstack", "--check-only", DATABASE_URL=url, REDIS_URL="redis://127.0.0.1:9/0"
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("LeadLoop cannot start: REDIS_URL: cannot connect to Redis:")


def test_production_settings_need_a_secret_key():
    result = _manage("check", LEADLOOP_TESTING="0", DEBUG="0", SECRET_KEY="")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "LeadLoop cannot start: SECRET_KEY is unset; set it to a long random string"
    )


def test_several_processes_can_start_the_embedded_postgres_on_an_empty_folder(tmp_path):
    # Four processes racing to initialise the same empty data folder: all must succeed.
    script = (
        "from config import services;"
        "url = services.embedded_postgres_url('race');"
        "import psycopg;"
        "psycopg.connect(url).execute('SELECT 1');"
        "print('ok')"
    )
    env = {**os.environ, "LEADLOOP_DATA_DIR": str(tmp_path / "data")}
    env.pop("DATABASE_URL", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err for _, err in results]
    assert [out.strip() for out, _ in results] == ["ok"] * 4
