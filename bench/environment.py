"""Point Django at the benchmark database, set it up, and migrate.

The bench never touches development data: each benchmark uses a database of its own
(``leadloop_bench_<name>``) on the same server the app would use, created when missing, so
two benchmarks can run at once without truncating each other's tables.
Everything here must run before ``django.setup()``; nothing imports Django models.
"""

from __future__ import annotations

import os
import re
import sys
from urllib.parse import urlsplit, urlunsplit

BENCH_DB_PREFIX = "leadloop_bench"
BENCH_DB_NAME = BENCH_DB_PREFIX  # replaced by configure() with the benchmark's own name


def database_name_for(benchmark: str) -> str:
    return f"{BENCH_DB_PREFIX}_{re.sub(r'[^a-z0-9_]', '_', benchmark.lower())}"[:63]


def bench_database_url(url: str, name: str = BENCH_DB_NAME) -> str:
    """``url`` with its database name replaced by ``name`` (query string kept)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def ensure_database(url: str, name: str = BENCH_DB_NAME) -> str:
    """Create database ``name`` on the server ``url`` points at, if missing; return its URL."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if found is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return bench_database_url(url, name)


def configure(benchmark: str = "") -> None:
    """Environment for a bench run. Call before anything imports ``config.settings``."""
    global BENCH_DB_NAME
    BENCH_DB_NAME = database_name_for(benchmark) if benchmark else BENCH_DB_PREFIX
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # TESTING turns off the HTTPS redirect and secure cookies (the test client speaks
    # plain HTTP) and needs no SECRET_KEY, without DEBUG's per-query bookkeeping.
    os.environ.setdefault("LEADLOOP_TESTING", "1")
    # Keep throttle counters and cached values apart from the development server's.
    os.environ.setdefault("CACHE_KEY_PREFIX", "leadloop-bench")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["LEADLOOP_DB_NAME"] = BENCH_DB_NAME  # the embedded server creates it
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        os.environ["DATABASE_URL"] = ensure_database(url, BENCH_DB_NAME)


def setup(benchmark: str = "") -> None:
    """Configure, start Django, check the database is the bench one, migrate quietly."""
    configure(benchmark)
    import django

    django.setup()

    from django.conf import settings
    from django.core.management import call_command

    name = settings.DATABASES["default"]["NAME"]
    if name != BENCH_DB_NAME:  # pragma: no cover - a guard, not a path
        sys.exit(f"bench: refusing to run against database {name!r} (want {BENCH_DB_NAME!r})")
    if settings.SECURE_SSL_REDIRECT:
        sys.exit(
            "bench: SECURE_SSL_REDIRECT is on, so every test-client request would be "
            "redirected; run with LEADLOOP_TESTING=1 (the default here) or DEBUG=1"
        )
    call_command("migrate", verbosity=0, interactive=False)


def assert_bench_database() -> None:
    """Raise unless the default connection is the bench database (before destructive SQL)."""
    from django.db import connection

    name = connection.settings_dict["NAME"]
    if name != BENCH_DB_NAME:
        raise RuntimeError(
            f"refusing to modify database {name!r}; the bench owns only {BENCH_DB_NAME!r}"
        )
