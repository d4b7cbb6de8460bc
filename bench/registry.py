"""Find benchmarks: every public module in :mod:`bench.benchmarks` that defines them.

A benchmark module defines

* ``NAME: str`` — what ``python -m bench NAME`` calls it;
* ``DESCRIPTION: str`` — one line for ``--list``;
* ``run(args: argparse.Namespace) -> bench.report.Result``;
* optionally ``add_arguments(parser: argparse.ArgumentParser) -> None`` for its own options.

Modules are imported before Django is set up (listing must not start a database), so they
import models and app code inside ``run``, not at the top.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from bench import benchmarks
from bench.report import Result


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    module: ModuleType

    @property
    def run(self) -> Callable[[argparse.Namespace], Result]:
        run: Callable[[argparse.Namespace], Result] = self.module.run
        return run

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        hook = getattr(self.module, "add_arguments", None)
        if callable(hook):
            hook(parser)


def discover() -> dict[str, Benchmark]:
    found: dict[str, Benchmark] = {}
    for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{benchmarks.__name__}.{info.name}")
        name = getattr(module, "NAME", None)
        if not isinstance(name, str) or not callable(getattr(module, "run", None)):
            continue
        if name in found:
            raise RuntimeError(f"two benchmarks are called {name!r}")
        description = str(getattr(module, "DESCRIPTION", "") or (module.__doc__ or "").strip())
        found[name] = Benchmark(name, description.splitlines()[0] if description else "", module)
    return found
