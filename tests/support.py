"""Helpers for tests that start other processes against this run's services."""

from __future__ import annotations

from urllib.parse import quote

from django.db import connection


def database_url(name: str | None = None) -> str:
    """A URL for the database this test run uses (the test database by default)."""
    db = connection.settings_dict
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host", "")
    user = quote(db.get("USER") or "")
    password = quote(db.get("PASSWORD") or "")
    dbname = name or db["NAME"]
    if not host or host.startswith("/"):
        return f"postgresql://{user}:{password}@/{dbname}?host={host}"
    return f"postgresql://{user}:{password}@{host}:{db.get('PORT') or 5432}/{dbname}"
