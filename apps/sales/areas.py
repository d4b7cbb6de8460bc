"""The areas of the sales app. Each area may contribute a module to each layer
(``views.<area>``, ``api.<area>``, ``tasks.<area>``…); the URL files import whichever
exist, so an area is added by adding its modules."""

from __future__ import annotations

import importlib
from types import ModuleType

AREAS = (
    "sdr",
    "mobile",
    "leads",
    "intake",
    "setup",
    "reports",
    "alerts",
    "crm",
    "opportunities",
)


def area_modules(package: str) -> list[ModuleType]:
    modules = []
    for name in AREAS:
        dotted = f"{package}.{name}"
        try:
            modules.append(importlib.import_module(dotted))
        except ModuleNotFoundError as exc:  # an area not built yet
            if exc.name != dotted:
                raise
    return modules
