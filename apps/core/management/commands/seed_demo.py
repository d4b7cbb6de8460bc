from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.core.demo import seed_all


class Command(BaseCommand):
    help = "Build the demo world (idempotent). --scale N multiplies the generated volume."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scale", type=int, default=1, help="volume multiplier (≥ 1)")
        parser.add_argument(
            "--only",
            default="",
            help="comma-separated apps whose demo to build (core always): e.g. core,contacts",
        )

    def handle(self, *args: Any, scale: int, only: str, **options: Any) -> None:
        if scale < 1:
            self.stderr.write("--scale must be 1 or more")
            raise SystemExit(2)
        apps = {name.strip() for name in only.split(",") if name.strip()} or None
        seed_all(scale, log=lambda line: self.stdout.write(line), only=apps)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
