"""The areas of the content app. Each area may contribute a module to each layer
(``views.<area>``, ``api.<area>``, ``public.<area>``, ``tasks.<area>``, ``demo_<area>``,
``home_cards``…); the URL files and ``apps.py`` import whichever exist."""

from __future__ import annotations

import importlib
from types import ModuleType

AREAS = ("assets", "forms", "pages", "shares", "notifications", "wechat")


def area_modules(package: str) -> list[ModuleType]:
    modules = []
    for name in AREAS:
        dotted = f"{package}.{name}" if package else name
        try:
            modules.append(importlib.import_module(dotted))
        except ModuleNotFoundError as exc:  # an area not built yet
            if exc.name != dotted:
                raise
    return modules
