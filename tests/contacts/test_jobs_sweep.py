"""The jobs sweeper: queued jobs the broker lost run again; running jobs whose worker
went away fail with a message saying what to do."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from apps.contacts.models import ContactExport, ContactImport, JobStatus
from apps.contacts.services.jobs import REQUEUE_AFTER, STALE_AFTER, jobs_sweep
from apps.core.models import AuditLog

pytestmark = pytest.mark.django_db(transaction=True)


def _import(world, **fields):
    defaults = {
        "unit": world.a,
        "created_by": world.marketer,
        "file": "imports/people.csv",
        "original_name": "people.csv",
        "file_type": "csv",
    }
    return ContactImport.objects.create(**{**defaults, **fields})


def _export(world, **fields):
    return ContactExport.objects.create(
        **{"unit": world.a, "created_by": world.marketer, "file_type": "csv", **fields}
    )


def test_a_queued_job_the_broker_lost_is_queued_again_and_a_fresh_one_is_left_alone(world):
    # given an import and an export queued 3 minutes ago that never started, a draft
    # import (no mapping: waiting for a person) and an import queued a moment ago
    now = timezone.now()
    old = now - REQUEUE_AFTER - timedelta(minutes=1)
    lost_import = _import(world, mapping={"0": "email"}, heartbeat_at=old)
    lost_export = _export(world, heartbeat_at=old)
    _import(world, created_at=old)
    _import(world, mapping={"0": "email"}, heartbeat_at=now)

    # when the sweeper runs
    with (
        mock.patch("apps.contacts.tasks.imports.import_run.delay") as import_delay,
        mock.patch("apps.contacts.tasks.exports.contacts_export_run.delay") as export_delay,
    ):
        result = jobs_sweep(now=now)

    # then exactly the two lost jobs are queued again, their clocks restarted
    assert result.requeued_imports == [lost_import.pk]
    assert result.requeued_exports == [lost_export.pk]
    import_delay.assert_called_once_with(lost_import.pk)
    export_delay.assert_called_once_with(lost_export.pk)
    lost_import.refresh_from_db()
    assert (lost_import.status, lost_import.heartbeat_at) == (JobStatus.PENDING, now)


def test_a_running_job_silent_for_too_long_fails_with_a_message_and_an_audit_row(world):
    # given an import by an English-speaking marketer, running silently for 11 minutes,
    # and an export that reported a minute ago
    world.marketer.language = "en"
    world.marketer.save(update_fields=["language"])
    now = timezone.now()
    silent = _import(
        world,
        mapping={"0": "email"},
        status=JobStatus.RUNNING,
        processed_rows=5000,
        heartbeat_at=now - STALE_AFTER - timedelta(minutes=1),
    )
    busy = _export(world, status=JobStatus.RUNNING, heartbeat_at=now - timedelta(minutes=1))

    # when the sweeper runs
    result = jobs_sweep(now=now)

    # then the silent one failed, saying what to do; the busy one runs on
    assert (result.failed_imports, result.failed_exports) == ([silent.pk], [])
    silent.refresh_from_db()
    assert silent.status == JobStatus.FAILED
    assert silent.finished_at == now
    assert silent.failure == (
        "The job stopped before it finished (the worker running it went away). "
        "Nothing after the last progress shown was done; start it again."
    )
    busy.refresh_from_db()
    assert busy.status == JobStatus.RUNNING
    # (the message is in the language of the person who started the job)
    audit = AuditLog.objects.get(action="contact_import.fail")
    assert (audit.object_id, audit.actor_label) == (str(silent.pk), "system: jobs sweeper")
    assert audit.after == {"failure": "worker went away", "processed_rows": 5000}


def test_finished_jobs_are_never_touched(world):
    # given finished and failed jobs with old clocks
    old = timezone.now() - timedelta(days=1)
    done = _import(world, mapping={"0": "email"}, status=JobStatus.DONE, heartbeat_at=old)
    failed = _export(world, status=JobStatus.FAILED, failure="disk full", heartbeat_at=old)

    # when the sweeper runs
    result = jobs_sweep()

    # then nothing changed
    assert result == type(result)([], [], [], [])
    done.refresh_from_db()
    failed.refresh_from_db()
    assert (done.status, failed.status, failed.failure) == (
        JobStatus.DONE,
        JobStatus.FAILED,
        "disk full",
    )
    assert not AuditLog.objects.filter(action__endswith=".fail").exists()
