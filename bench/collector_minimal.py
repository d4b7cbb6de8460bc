"""The collector benchmark's baseline: a WSGI app that only stores the raw body.

Served by the same gunicorn command as the Django project (``bench.collector_minimal:
application`` instead of ``config.wsgi``), it does the least a durable collector can do:
read the request body, ``INSERT`` it as one row of ``bench_collector_raw`` (created by the
bench in its own database), answer ``202``. No Django, no key check, no parsing.

Like Django with ``CONN_MAX_AGE``, each worker thread keeps one PostgreSQL connection
open across requests (autocommit, so each ``INSERT`` is its own transaction, as the
collector view's is). ``DATABASE_URL`` says where; the bench sets it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

import psycopg

TABLE = "bench_collector_raw"
CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "id bigserial PRIMARY KEY, received_at timestamptz NOT NULL DEFAULT now(), "
    "body bytea NOT NULL)"
)
INSERT = f"INSERT INTO {TABLE} (body) VALUES (%s)"

_local = threading.local()

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def _connection() -> psycopg.Connection[Any]:
    conn: psycopg.Connection[Any] | None = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
        _local.conn = conn
    return conn


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    if environ.get("REQUEST_METHOD") != "POST":
        start_response("405 Method Not Allowed", [("Content-Length", "0")])
        return [b""]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    _connection().execute(INSERT, [body])
    answer = b'{"accepted":true}'
    start_response(
        "202 Accepted",
        [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))],
    )
    return [answer]
