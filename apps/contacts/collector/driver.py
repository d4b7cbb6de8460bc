"""A Django cursor over psycopg's own cursor, for the collector's two hottest statements.

Django's PostgreSQL backend gives out psycopg ``ClientCursor`` objects: parameters are
quoted into the SQL text in Python and results come back as text. For the endpoint's
INSERT of a raw body and the worker's claim of a chunk of bodies that is the most
expensive part of the statement: a 2.7 KB body travels as 5.4 KB of hex each way,
escaped and unescaped. psycopg's plain ``Cursor`` sends parameters separately, in binary
where it can, and can read results in binary (measured: the claim of 500 batches went
from 10 ms to 4 ms). The cursor is still wrapped by Django, so queries are logged when
Django logs them and errors are Django's.

psycopg prepares a statement on a connection after it has run five times there (its
``prepare_threshold``): behind a connection pooler in transaction mode that needs
PgBouncer 1.21 or later, as Django's own ``server_side_binding`` option does.
"""

from __future__ import annotations

import psycopg
from django.db import connection
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


def server_cursor(*, binary_results: bool = False) -> CursorWrapper:
    """A cursor (use it as a context manager) on the default connection that binds
    parameters on the server; with ``binary_results``, rows come back in binary."""
    connection.ensure_connection()
    connection.validate_thread_sharing()
    raw = psycopg.Cursor(connection.connection)
    if binary_results:
        raw.format = psycopg.pq.Format.BINARY
    # What ``connection.make_debug_cursor`` / ``make_cursor`` return (their stubs want a
    # wrapper where Django passes the driver's cursor).
    if connection.queries_logged:
        return CursorDebugWrapper(raw, connection)
    return CursorWrapper(raw, connection)
