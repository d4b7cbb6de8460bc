"""Keeping import and export jobs honest when the machinery under them fails.

A job is queued on commit; if the broker was down at that moment the message is lost and
the job would wait for ever. A worker killed mid-job (deploy, OOM) leaves it "running"
for ever, and its page polls for ever. The sweeper, run by beat, re-queues the first kind
(running a job twice is safe: only the claim that moves it from pending to running does
the work) and fails the second with a message that says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from apps.contacts.models import ContactExport, ContactImport, JobStatus
from apps.core.services import SystemActor, audit_record
from apps.core.tasks import enqueue_on_commit

SWEEPER = SystemActor("jobs sweeper")
# A queued job that has not started within this was lost by the broker.
REQUEUE_AFTER = timedelta(minutes=2)
# A running job reports progress every batch (seconds apart); silence this long means
# its worker is gone.
STALE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class JobsSweep:
    requeued_imports: list[int]
    requeued_exports: list[int]
    failed_imports: list[int]
    failed_exports: list[int]


def _waiting(now: datetime) -> Q:
    return Q(heartbeat_at__lt=now - REQUEUE_AFTER) | Q(
        heartbeat_at__isnull=True, created_at__lt=now - REQUEUE_AFTER
    )


def _silent(now: datetime) -> Q:
    return Q(heartbeat_at__lt=now - STALE_AFTER) | Q(
        heartbeat_at__isnull=True, created_at__lt=now - STALE_AFTER
    )


def _stopped_message(language: str) -> str:
    with translation.override(language or settings.LANGUAGE_CODE):
        return _(
            "The job stopped before it finished (the worker running it went away). "
            "Nothing after the last progress shown was done; start it again."
        )


@transaction.atomic
def jobs_sweep(*, now: datetime | None = None) -> JobsSweep:
    from apps.contacts.tasks.exports import contacts_export_run
    from apps.contacts.tasks.imports import import_run

    now = now or timezone.now()
    imports = ContactImport.objects.dangerously_unscoped()
    exports = ContactExport.objects.dangerously_unscoped()

    # Queued (a draft import has no mapping yet and is waiting for a person, not a worker).
    lost_imports = list(
        imports.select_for_update(skip_locked=True)
        .filter(_waiting(now), status=JobStatus.PENDING)
        .exclude(mapping={})
        .values_list("pk", flat=True)
    )
    imports.filter(pk__in=lost_imports).update(heartbeat_at=now)
    for pk in lost_imports:
        enqueue_on_commit(import_run, pk)
    lost_exports = list(
        exports.select_for_update(skip_locked=True)
        .filter(_waiting(now), status=JobStatus.PENDING)
        .values_list("pk", flat=True)
    )
    exports.filter(pk__in=lost_exports).update(heartbeat_at=now)
    for pk in lost_exports:
        enqueue_on_commit(contacts_export_run, pk)

    failed: dict[str, list[int]] = {"import": [], "export": []}
    for kind, queryset in (("import", imports), ("export", exports)):
        stale = (
            queryset.select_for_update(skip_locked=True)
            .select_related("created_by")
            .filter(_silent(now), status=JobStatus.RUNNING)
        )
        for job in stale:
            job.status = JobStatus.FAILED
            job.failure = _stopped_message(job.created_by.language)
            job.finished_at = now
            job.save(update_fields=["status", "failure", "finished_at"])
            audit_record(
                actor=SWEEPER,
                action=f"contact_{kind}.fail",
                obj=job,
                unit=job.unit_id,
                after={"failure": "worker went away", "processed_rows": job.processed_rows},
            )
            failed[kind].append(job.pk)
    return JobsSweep(lost_imports, lost_exports, failed["import"], failed["export"])
