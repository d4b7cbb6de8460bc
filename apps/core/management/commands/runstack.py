"""``make run``: migrate, seed the demo once, then run web + Celery worker + Celery beat.

This process owns the embedded PostgreSQL/Redis (when DATABASE_URL/REDIS_URL are unset)
and passes their URLs to its children, so the servers live exactly as long as the stack.
Ctrl-C stops all three children, then the servers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from apps.core.demo import DEMO_PASSWORD, PERSONAS
from config import services

SURFACE_PATHS = {"console": "/console/", "sdr": "/sdr/", "mobile": "/m/"}


class Command(BaseCommand):
    help = "Run LeadLoop: web, Celery worker and Celery beat (what `make run` calls)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
        parser.add_argument("--no-demo", action="store_true", help="skip the demo data")
        parser.add_argument("--check-only", action="store_true", help="check the services and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        db = settings.DATABASES["default"]
        db_url = os.environ.get("DATABASE_URL") or services.database_url()[0]
        try:
            services.check_database(db_url, from_env=settings.DATABASE_FROM_ENV)
            services.check_redis(settings.REDIS_URL, from_env=settings.REDIS_FROM_ENV)
        except services.ServiceError as error:
            services.fail(error)
        if options["check_only"]:
            self.stdout.write(f"database {db['NAME']} and Redis are reachable")
            return

        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database is migrated.")
        if not options["no_demo"]:
            call_command("seed_demo", verbosity=0, stdout=self.stdout)

        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "REDIS_URL": settings.REDIS_URL,
            "PYTHONUNBUFFERED": "1",
        }
        python = sys.executable
        address = f"{options['host']}:{options['port']}"
        commands = {
            "web": [python, "manage.py", "runserver", address, "--noreload"],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
                "--hostname",
                "leadloop@%h",
            ],
            "beat": [python, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"],
        }
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        # Ctrl-C, a closed terminal and `kill` all stop the three children before we go.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, stop)
        children: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for name, command in commands.items():
                # Own process group, so Ctrl-C reaches only us and we stop them in order;
                # and on Linux they get SIGTERM should we die without cleaning up.
                children[name] = subprocess.Popen(
                    command,
                    env=env,
                    cwd=settings.BASE_DIR,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            self._say(self._banner(options["host"], options["port"]))
            while not stopping:
                for name, child in children.items():
                    if child.poll() is not None:
                        self._say(f"{name} exited with code {child.returncode}; stopping.")
                        stopping = True
                        break
                time.sleep(0.5)
        finally:
            # Stop first, talk after: our output may be a pipe that is already gone.
            _stop_all(children)
            self._say("Stopped web, worker and beat.")

    def _say(self, text: str) -> None:
        try:
            self.stdout.write(text)
            self.stdout.flush()
        except (BrokenPipeError, OSError):
            pass

    def _banner(self, host: str, port: str) -> str:
        all_interfaces = "0.0.0.0"  # noqa: S104 - only to print a clickable URL
        shown = "localhost" if host in {"127.0.0.1", all_interfaces} else host
        url = f"http://{shown}:{port}/"
        lines = [
            "",
            f"  LeadLoop is running at {url}",
            f"  API docs: {url}api/docs/   health: {url}healthz",
            f"  Demo logins (password: {DEMO_PASSWORD}):",
        ]
        for p in PERSONAS:
            lines.append(
                f"    {p.username:<9} {p.role:<14} {p.unit_code:<10} → {SURFACE_PATHS[p.surface]}"
            )
        lines += ["  Press Ctrl-C to stop web, worker and beat.", ""]
        return "\n".join(lines)


def _stop_all(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM us when runstack dies (no-op elsewhere)."""
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
