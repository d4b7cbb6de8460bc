"""Acceptance: "A lead not followed up in 48 h is recycled by the periodic task exactly
once, even with two beat ticks and two workers running at once."

Real PostgreSQL, committed data (``transactional_db``): two real Celery workers on the real
broker each take one ``sales.sla_sweep`` (two beat ticks), and, without the broker, two
threads with their own database connections run the sweep at the same moment.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from amqp.exceptions import ChannelError
from django.db import connection
from django.utils import timezone

from apps.contacts.models import Contact, Identity
from apps.core.models import Notification
from apps.sales.models import Lead, LeadHistory, SlaMiss, Stage
from apps.sales.services import leads as services
from apps.sales.services import sla
from tests.support import purge_queue, start_worker

N = 50


def _overdue_leads(world, n=N):
    """``n`` accepted leads whose 48 h follow-up clock ran out an hour ago."""
    accepted = timezone.now() - dt.timedelta(hours=49)
    ids = []
    for i in range(n):
        contact = Contact.objects.create(
            group=world.group, name=f"客户{i}", company_name="华东生物"
        )
        Identity.objects.create(
            group=world.group, contact=contact, kind="email", value=f"c{i}@example.cn"
        )
        lead = services.lead_open(
            contact=contact,
            unit=world.a,
            source="manual",
            stage="mql",
            sdr=world.sdr,
            now=accepted,
        ).lead
        services.lead_handoff(lead=lead, actor=world.sdr, owner=world.sales, now=accepted)
        services.lead_accept(lead=lead, actor=world.sales, now=accepted)
        ids.append(lead.pk)
    due = Lead.objects.filter(pk__in=ids, sla_clock="follow_up", sla_due_at__lt=timezone.now())
    assert due.count() == n
    return ids


def _assert_each_recycled_once(world, ids):
    leads = Lead.objects.filter(pk__in=ids)
    assert set(leads.values_list("stage", "owner_id", "sla_clock")) == {(Stage.RECYCLED, None, "")}
    misses = Counter(SlaMiss.objects.values_list("lead_id", "clock", "user_id"))
    assert misses == {(pk, "follow_up", world.sales.pk): 1 for pk in ids}
    recycled = Counter(
        LeadHistory.objects.filter(kind="stage", to_value="recycled").values_list(
            "lead_id", "from_value"
        )
    )
    assert recycled == {(pk, "sal"): 1 for pk in ids}
    # the recycle row names the missed clock; no separate "missed" row for a recycle
    assert LeadHistory.objects.filter(kind="sla").count() == 0
    # dedupe keys read "recycled:<lead>:<due>:<user>": one notice per person per lead,
    # the salesperson who lost each lead among them
    keys = Notification.objects.filter(kind="lead_recycled").values_list("user_id", "dedupe_key")
    per_person = Counter((user, int(key.split(":")[1])) for user, key in keys)
    assert set(per_person.values()) == {1}
    assert {lead for user, lead in per_person if user == world.sales.pk} == set(ids)
    assert {user for user, _lead in per_person} <= {world.sales.pk, world.sdr.pk}
    assert Notification.objects.filter(kind="sla_breached").count() == 0


# --- Two real workers, two beat ticks ------------------------------------------------------


def _workers_up(names: set[str]) -> bool:
    from config.celery import app

    replies = app.control.inspect(timeout=0.5).active_queues() or {}
    queue = app.conf.task_default_queue
    up = {n for n, queues in replies.items() if any(q.get("name") == queue for q in queues)}
    return names <= up


@contextmanager
def _workers_running(count: int) -> Iterator[None]:
    """``count`` real ``celery worker`` processes (distinct node names, one task at a time
    each) consuming this run's queue; like ``tests.support.worker_running``."""
    from django.conf import settings

    purge_queue()
    names = {f"sla-{i}-{settings.TEST_RUN}@localhost" for i in range(count)}
    with ExitStack() as stack:
        processes = []
        for name in sorted(names):
            process = start_worker(name)
            processes.append(process)

            def stop(p: subprocess.Popen[bytes] = process) -> None:
                p.terminate()
                p.wait(timeout=20)

            stack.callback(stop)
        deadline = time.monotonic() + 60
        while not _workers_up(names):
            assert all(p.poll() is None for p in processes), "a worker exited during start-up"
            if time.monotonic() > deadline:
                pytest.fail(f"{count} workers did not come up in 60 s")
        yield


def _idle() -> bool:
    from config.celery import app

    with app.connection_for_write() as conn:
        try:
            _name, waiting, _consumers = conn.default_channel.queue_declare(
                app.conf.task_default_queue, passive=True
            )
        except ChannelError:  # Redis drops an empty queue's list: nothing waiting
            waiting = 0
    active = app.control.inspect(timeout=0.5).active() or {}
    return waiting == 0 and not any(active.values())


@pytest.mark.django_db(transaction=True)
def test_two_beat_ticks_on_two_workers_recycle_each_overdue_lead_once(world):
    # Given 50 accepted leads nobody followed up for 49 h (committed)
    ids = _overdue_leads(world)
    from apps.sales.tasks import sla_sweep

    # When two beat ticks send the sweep at once and two workers take one each
    with _workers_running(2):
        sla_sweep.delay()
        sla_sweep.delay()
        deadline = time.monotonic() + 90
        time.sleep(1)
        while not (Lead.objects.filter(pk__in=ids, stage=Stage.RECYCLED).count() == N and _idle()):
            assert time.monotonic() < deadline, "the sweeps did not finish in 90 s"
            time.sleep(0.5)
        # (a third tick later finds nothing to do)
        sla_sweep.delay()
        time.sleep(2)
        while not _idle():
            assert time.monotonic() < deadline, "the third sweep did not finish"
            time.sleep(0.5)
    # Then each lead was recycled exactly once: one miss, one stage row, one notice each
    _assert_each_recycled_once(world, ids)


# --- Two threads, two connections, same instant ----------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_in_parallel_threads_recycle_each_lead_once(world):
    # Given 50 overdue leads
    ids = _overdue_leads(world)
    now = timezone.now()
    start = threading.Barrier(2)
    results: list[sla.SweepResult] = []
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            start.wait(timeout=10)
            # small batches so the two sweeps claim side by side, batch after batch
            results.append(sla.sla_sweep(now=now, batch=5))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    # When two sweeps start at the same instant, each on its own connection
    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # Then no error, the two recycled 50 between them, each lead once
    assert errors == []
    assert sum(r.recycled for r in results) == N
    assert sum(r.missed for r in results) == N
    _assert_each_recycled_once(world, ids)
