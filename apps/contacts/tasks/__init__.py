"""Celery tasks for contacts. Celery autodiscovers this package; each area's tasks live in a
module imported here."""

import importlib

for _name in ("imports", "exports", "retention", "tag_rules", "collector", "jobs", "segments"):
    try:
        importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _exc:  # an area not built yet
        if _exc.name != f"{__name__}.{_name}":
            raise
