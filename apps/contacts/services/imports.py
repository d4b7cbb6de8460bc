"""Contact import: upload a CSV or XLSX file, map its columns, run it in the background.

1. ``contact_import_create``: size, type (name *and* content) and encoding are checked
   and the first rows read before anything is stored; a refused file leaves nothing
   behind. The import is then a *draft*: pending, with no mapping yet.
2. ``contact_import_start``: the mapping, tags and consent basis are checked against the
   file's header and the unit; the mapping is remembered for the unit (same header, same
   mapping next time) and the job is queued once the transaction commits.
3. ``contact_import_run`` (the Celery task's body): claims the import with a conditional
   UPDATE (a second delivery finds it taken and does nothing), proves the whole file
   decodes while counting its rows, then streams it in batches. Each batch is one
   transaction: rows are checked in Python, duplicates of earlier rows found, the rest
   resolved set-based (``batch_resolution``), tagged, given consent, and the progress
   counters moved, all or nothing. Bad rows go to the error file, with row, column and
   reason; they never half-land. A batch the database refuses stops the job, with
   everything before it kept and nothing of it stored.

Duplicates within a file are caught across batches without holding the file's keys in
Python: a temporary table on the job's connection remembers each key's first row.

Speed (``python -m bench contacts_import``): rows are read and checked in a second thread
one batch ahead (``importing.prefetch``) while PostgreSQL stores the previous batch; each
batch is eight statements whatever its size; batch commits do not wait for the disk
(``_commit_without_waiting``).

A job whose worker dies stays "running"; import the file again (rows already imported
are matched, not duplicated).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.contacts.hooks import import_hooks
from apps.contacts.importing import encoding as encodings
from apps.contacts.importing.error_file import ErrorFileWriter
from apps.contacts.importing.files import (
    CSV,
    SAMPLE_BYTES,
    ImportFileError,
    check_size,
    sniff_file_type,
)
from apps.contacts.importing.mapping import MappingError, Plan, plan_mapping
from apps.contacts.importing.prefetch import Prefetch
from apps.contacts.importing.readers import (
    Preview,
    count_rows,
    header_signature,
    open_table,
    read_preview,
    stored_binary,
)
from apps.contacts.importing.rows import CellError, ParsedRow, RowChecker, shown
from apps.contacts.models import (
    ConsentBasis,
    ConsentChannel,
    ConsentEvent,
    ContactImport,
    CustomField,
    IdentityKind,
    ImportMapping,
    JobStatus,
    Tag,
    TagKind,
)
from apps.contacts.services.batch_resolution import BatchRow, contacts_resolve_batch
from apps.contacts.services.consent import consent_states_refresh
from apps.contacts.services.segments import segments_mark_stale
from apps.contacts.services.tags import tags_add
from apps.core.audit_actions import register_action
from apps.core.models import BusinessUnit, User
from apps.core.scoping import visible_unit_ids
from apps.core.services import audit_record
from apps.core.tasks import enqueue_on_commit

logger = logging.getLogger(__name__)

IMPORT_PERMISSION = "contacts.import"
SOURCE = "import"
# Rows per transaction. Large enough that the fixed statements of a batch are a small
# share of its cost, small enough to keep locks and memory modest.
BATCH_SIZE = 1000
# Keys (advisory locks) per transaction at most: each is a slot in PostgreSQL's shared
# lock table (max_locks_per_transaction × max_connections = 6 400 by default), which
# every session shares. A file with many identifier columns gets smaller batches.
KEY_BUDGET = 2000
# A batch that loses a deadlock or serialisation race is tried again this many times.
RETRIES = 2
_RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure

register_action("contact_import.upload", gettext_lazy("Contact file uploaded"))
register_action("contact_import.start", gettext_lazy("Contact import started"))
register_action("contact_import.finish", gettext_lazy("Contact import finished"))
register_action("contact_import.fail", gettext_lazy("Contact import failed"))


OPENS_LEAD = ("", "warm", "hot")


def is_draft(contact_import: ContactImport) -> bool:
    """Uploaded, not yet mapped and started."""
    return contact_import.status == JobStatus.PENDING and not contact_import.mapping


def _check_unit(user: User, unit: BusinessUnit) -> None:
    if unit.pk not in visible_unit_ids(user, IMPORT_PERMISSION):
        raise PermissionDenied(
            _("You may not import contacts into %(unit)s.") % {"unit": unit.name}
        )


def read_stored_preview(contact_import: ContactImport) -> Preview:
    """The header and first rows of an uploaded file."""
    with stored_binary(contact_import.file) as binary:
        return read_preview(
            binary, file_type=contact_import.file_type, encoding=contact_import.encoding
        )


def contact_import_create(
    *,
    unit: BusinessUnit,
    upload: File,  # type: ignore[type-arg]
    acting_user: User,
) -> ContactImport:
    """Store an uploaded file as a draft import, or refuse it (ValidationError on "file")."""
    _check_unit(acting_user, unit)
    name = PurePath(upload.name or "contacts.csv").name[-200:]
    try:
        check_size(upload.size)
        file_type = sniff_file_type(name, upload)  # type: ignore[arg-type]
        encoding = ""
        if file_type == CSV:
            upload.seek(0)
            encoding = encodings.detect_encoding(upload.read(SAMPLE_BYTES))
        preview = read_preview(upload, file_type=file_type, encoding=encoding)  # type: ignore[arg-type]
        if not preview.rows:
            raise ImportFileError(_("The file has a header row but no rows under it."))
    except ImportFileError as exc:
        raise ValidationError({"file": [str(exc)]}) from None
    upload.seek(0)
    contact_import = ContactImport(
        unit=unit,
        created_by=acting_user,
        original_name=name,
        file_type=file_type,
        encoding=encoding,
        status=JobStatus.PENDING,
    )
    contact_import.file.save(name, upload, save=False)
    try:
        with transaction.atomic():
            contact_import.save()
            audit_record(
                actor=acting_user,
                action="contact_import.upload",
                obj=contact_import,
                unit=unit,
                after={"file": name, "type": file_type, "encoding": encoding},
            )
    except BaseException:
        contact_import.file.delete(save=False)  # nothing partial for a refused upload
        raise
    return contact_import


def _check_tags(unit: BusinessUnit, tag_ids: Iterable[Any]) -> tuple[list[Tag], list[str]]:
    try:
        wanted = sorted({int(t) for t in tag_ids})
    except (TypeError, ValueError):
        return [], [_("Tags must be given by their ids.")]
    tags = list(Tag.objects.dangerously_unscoped().filter(unit=unit, pk__in=wanted))
    missing = sorted(set(wanted) - {t.pk for t in tags})
    if missing:
        return [], [
            _("Tag(s) %(ids)s are not tags of %(unit)s.")
            % {"ids": ", ".join(map(str, missing)), "unit": unit.name}
        ]
    return tags, []


def _check_consent(raw: Any) -> tuple[dict[str, Any], list[str]]:
    if raw in (None, ""):
        return {}, []
    if not isinstance(raw, dict):
        return {}, [_("Consent must be given as a basis and the channels it covers.")]
    basis = str(raw.get("basis") or "").strip()
    if basis == "none":
        basis = ""
    channels = raw.get("channels") or []
    if isinstance(channels, str):
        channels = [channels]
    channels = list(dict.fromkeys(str(c) for c in channels))
    errors = []
    if basis and basis not in ConsentBasis.values:
        errors.append(
            _("“%(basis)s” is not a consent basis; use one of %(choices)s, or none.")
            % {"basis": basis, "choices": ", ".join(ConsentBasis.values)}
        )
    unknown = [c for c in channels if c not in ConsentChannel.values]
    if unknown:
        errors.append(
            _("Unknown consent channel(s): %(channels)s; use %(choices)s.")
            % {"channels": ", ".join(unknown), "choices": ", ".join(ConsentChannel.values)}
        )
    if basis and not channels:
        errors.append(_("Choose the channels the consent basis covers."))
    if channels and not basis:
        errors.append(_("Choose the consent basis for these channels, or none."))
    if errors:
        return {}, errors
    return ({"basis": basis, "channels": channels} if basis else {}), []


def contact_import_start(
    *,
    contact_import: ContactImport,
    mapping: Any,
    unit: BusinessUnit | None = None,
    tag_ids: Sequence[Any] = (),
    consent: Any = None,
    opens_lead: str = "",
    acting_user: User,
) -> ContactImport:
    """Check the mapping, tags and consent, remember the mapping, and queue the job.

    Refusals are one ValidationError listing every problem (keys ``mapping``, ``tags``,
    ``consent``); nothing is changed then.
    """
    from apps.contacts.tasks.imports import import_run

    with transaction.atomic():
        locked = (
            ContactImport.objects.dangerously_unscoped()
            .select_for_update()
            .select_related("unit")
            .get(pk=contact_import.pk)
        )
        _check_unit(acting_user, locked.unit)
        unit = unit or locked.unit
        _check_unit(acting_user, unit)
        if not is_draft(locked):
            raise ValidationError(_("This import has already started."))
        preview = read_stored_preview(locked)
        fields = list(CustomField.objects.dangerously_unscoped().filter(unit=unit, is_active=True))
        problems: dict[str, list[str]] = {}
        plan: Plan | None = None
        try:
            plan = plan_mapping(preview.header, mapping, fields)
        except MappingError as exc:
            problems["mapping"] = [str(exc)]
        tags, tag_errors = _check_tags(unit, tag_ids)
        if tag_errors:
            problems["tags"] = tag_errors
        consent_value, consent_errors = _check_consent(consent)
        if consent_errors:
            problems["consent"] = consent_errors
        if (opens_lead or "") not in OPENS_LEAD:
            problems["opens_lead"] = [_("Open leads: use warm, hot or leave it empty.")]
        if problems or plan is None:
            raise ValidationError(problems)
        locked.unit = unit
        locked.mapping = plan.mapping
        locked.tag_ids = [t.pk for t in tags]
        locked.consent = consent_value
        locked.opens_lead = opens_lead or ""
        locked.heartbeat_at = timezone.now()
        locked.save(
            update_fields=["unit", "mapping", "tag_ids", "consent", "opens_lead", "heartbeat_at"]
        )
        ImportMapping.objects.dangerously_unscoped().update_or_create(
            unit=unit,
            header_signature=header_signature(preview.header),
            defaults={"mapping": plan.mapping},
        )
        audit_record(
            actor=acting_user,
            action="contact_import.start",
            obj=locked,
            unit=unit,
            after={
                "mapping": plan.mapping,
                "tags": locked.tag_ids,
                "consent": consent_value,
                "opens_lead": locked.opens_lead,
            },
        )
        enqueue_on_commit(import_run, locked.pk)
    return locked


def contact_import_submit(
    *,
    unit: BusinessUnit,
    upload: File,  # type: ignore[type-arg]
    mapping: Any = None,
    tag_ids: Sequence[Any] = (),
    consent: Any = None,
    opens_lead: str = "",
    acting_user: User,
) -> ContactImport:
    """Upload and, when a mapping is given, start in one go (the API's single call).

    All or nothing: if the mapping, tags or consent are refused, the upload is not kept.
    """
    created: ContactImport | None = None
    try:
        with transaction.atomic():
            created = contact_import_create(unit=unit, upload=upload, acting_user=acting_user)
            if mapping:
                created = contact_import_start(
                    contact_import=created,
                    mapping=mapping,
                    tag_ids=tag_ids,
                    consent=consent,
                    opens_lead=opens_lead,
                    acting_user=acting_user,
                )
    except BaseException:
        if created is not None:
            created.file.delete(save=False)
        raise
    return created


# --- The job -------------------------------------------------------------------------------


class BatchFailed(Exception):
    pass


class _Cancelled(Exception):
    """The import stopped being ours (cancelled or finished elsewhere) mid-batch."""


def _commit_without_waiting(on: bool) -> None:
    """While on, a COMMIT on this connection returns before its WAL reaches the disk.

    A bulk load commits once per batch, and a flush costs milliseconds to tens of
    milliseconds on network disks: a million rows would spend minutes waiting. Safe here:
    PostgreSQL stays consistent, a crash can only lose the last fraction of a second of
    batches *with* their progress counters (same transactions), and the job switches it
    off before writing the import's final status, whose commit flushes everything before.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off" if on else "RESET synchronous_commit")


class _SeenKeys:
    """Which row of this file first carried each key: a temporary table on the job's
    connection (dropped at the end), so a million rows' keys never sit in Python.

    Written inside each batch's transaction, so a batch that rolls back forgets its keys.
    """

    table = "pg_temp.contact_import_seen_keys"

    def __init__(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.table} "
                "(key text PRIMARY KEY, row_number integer NOT NULL)"
            )
            cursor.execute(f"TRUNCATE {self.table}")

    def lookup(self, names: Sequence[str]) -> dict[str, int]:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT key, row_number FROM {self.table} "  # noqa: S608
                "WHERE key IN (SELECT json_array_elements_text(%s::json))",
                [json.dumps(list(names), ensure_ascii=False)],
            )
            return dict(cursor.fetchall())

    def add(self, names: Sequence[str], rows: Sequence[int]) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {self.table} (key, row_number) "  # noqa: S608
                "SELECT k, r::integer FROM ROWS FROM (json_array_elements_text(%s::json), "
                "json_array_elements_text(%s::json)) AS v(k, r) ON CONFLICT DO NOTHING",
                [json.dumps(list(names), ensure_ascii=False), json.dumps(list(rows))],
            )

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")


@dataclass
class _Checked:
    """A batch of rows, read and checked: the ones to land and the reasons for the rest."""

    first: int  # row numbers, as Excel shows them
    last: int
    rows: int
    parsed: list[ParsedRow]
    errors: list[CellError]


def _checked_chunks(
    rows: Iterable[tuple[int, list[str]]], checker: RowChecker, size: int
) -> Iterator[_Checked]:
    chunk: _Checked | None = None
    for number, cells in rows:
        if chunk is None:
            chunk = _Checked(number, number, 0, [], [])
        chunk.last = number
        chunk.rows += 1
        parsed, errors = checker.check(number, cells)
        if parsed is None:
            chunk.errors += errors
        else:
            chunk.parsed.append(parsed)
        if chunk.rows >= size:
            yield chunk
            chunk = None
    if chunk is not None:
        yield chunk


@dataclass
class _Landed:
    imported: int = 0
    created: int = 0
    matched: int = 0
    bad_rows: int = 0


class _ImportJob:
    def __init__(self, contact_import: ContactImport, batch_size: int) -> None:
        self.ci = contact_import
        self.unit = contact_import.unit
        self.actor = contact_import.created_by
        self.batch_size = batch_size
        self.fields = list(
            CustomField.objects.dangerously_unscoped().filter(unit=self.unit, is_active=True)
        )
        self.tags = list(
            Tag.objects.dangerously_unscoped().filter(unit=self.unit, pk__in=self.ci.tag_ids or [])
        )
        self.consent = contact_import.consent or {}
        self.observed_at = timezone.now()
        self.errors = ErrorFileWriter()
        self.seen: _SeenKeys | None = None
        self.done_rows = 0
        self.imported_rows = 0

    # -- reading --

    def _count(self, binary: IO[bytes]) -> int:
        """Prove the file decodes, counting its rows; a CSV that looked like UTF-8 in its
        first 64 KB but is GBK further on is read as GB18030 instead."""
        ci = self.ci
        try:
            return count_rows(binary, file_type=ci.file_type, encoding=ci.encoding)
        except encodings.FileDecodeError:
            binary.seek(0)
            if ci.encoding != encodings.UTF8 or not binary.read(SAMPLE_BYTES).isascii():
                raise
        total = count_rows(binary, file_type=ci.file_type, encoding=encodings.GB18030)
        ci.encoding = encodings.GB18030
        return total

    def run(self) -> None:
        ci = self.ci
        with stored_binary(ci.file) as binary:
            total = self._count(binary)
            ContactImport.objects.dangerously_unscoped().filter(
                pk=ci.pk, status=JobStatus.RUNNING
            ).update(total_rows=total, encoding=ci.encoding, heartbeat_at=timezone.now())
            with open_table(binary, file_type=ci.file_type, encoding=ci.encoding) as table:
                try:
                    plan = plan_mapping(table.header, ci.mapping, self.fields)
                except MappingError as exc:  # a custom field went away since the start
                    raise ImportFileError(str(exc)) from None
                checker = RowChecker(plan)
                keys_per_row = max(1, len(plan.identity_columns))
                size = max(1, min(self.batch_size, KEY_BUDGET // keys_per_row))
                self.seen = _SeenKeys()
                _commit_without_waiting(True)
                language = translation.get_language()

                def checked() -> Iterator[_Checked]:
                    # In the reader thread: no database here, and its own language.
                    with translation.override(language):
                        yield from _checked_chunks(table.rows, checker, size)

                with Prefetch(checked) as chunks:
                    for chunk in chunks:
                        self._batch(chunk)
        self._finish()

    # -- one batch --

    def _batch(self, chunk: _Checked) -> None:
        parsed, errors = chunk.parsed, chunk.errors
        bad = len({e.row for e in errors})
        for attempt in range(RETRIES + 1):
            try:
                with transaction.atomic():
                    more_errors, landed = self._land(parsed)
                    landed.bad_rows += bad
                    self._progress(chunk.rows, landed)
                break
            except OperationalError as exc:
                if getattr(exc.__cause__, "sqlstate", "") in _RETRYABLE and attempt < RETRIES:
                    continue
                raise self._failed(chunk, exc) from exc
            except DatabaseError as exc:
                raise self._failed(chunk, exc) from exc
        self.done_rows += chunk.rows
        self.imported_rows += landed.imported
        self.errors.add(sorted(errors + more_errors, key=lambda e: e.row))

    def _failed(self, chunk: _Checked, exc: Exception) -> BatchFailed:
        logger.exception("contact import %s: batch failed", self.ci.pk)
        return BatchFailed(
            _(
                "Rows %(first)d–%(last)d could not be saved, so none of them were (%(error)s). "
                "%(done)d rows before them were checked and %(imported)d imported; import the "
                "file again once the problem is fixed: rows already imported are matched, "
                "not duplicated."
            )
            % {
                "first": chunk.first,
                "last": chunk.last,
                "error": str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__,
                "done": self.done_rows,
                "imported": self.imported_rows,
            }
        )

    def _duplicates(self, parsed: list[ParsedRow]) -> tuple[list[ParsedRow], list[CellError]]:
        """Rows whose key an earlier row of the file already had: the earlier row wins."""
        assert self.seen is not None
        earlier = self.seen.lookup([k.lock_name for p in parsed for k in p.keys])
        accepted: list[ParsedRow] = []
        errors: list[CellError] = []
        for p in parsed:
            row_errors = []
            for key, (column, raw) in zip(p.keys, p.key_cells, strict=True):
                first = earlier.get(key.lock_name)
                if first is not None:
                    row_errors.append(
                        CellError(
                            p.number,
                            column,
                            shown(raw),
                            _("duplicate of row %(row)d (same %(kind)s)")
                            % {"row": first, "kind": IdentityKind(key.kind).label},
                        )
                    )
            if row_errors:
                errors += row_errors
                continue
            for key in p.keys:
                earlier[key.lock_name] = p.number
            accepted.append(p)
        return accepted, errors

    def _land(self, parsed: list[ParsedRow]) -> tuple[list[CellError], _Landed]:
        landed = _Landed()
        if not parsed:
            return [], landed
        assert self.seen is not None
        accepted, errors = self._duplicates(parsed)
        landed.bad_rows = len({e.row for e in errors})
        if not accepted:
            return errors, landed
        result = contacts_resolve_batch(
            unit=self.unit,
            rows=[BatchRow(p.keys, p.attributes) for p in accepted],
            source=SOURCE,
            observed_at=self.observed_at,
            acting_user=self.actor,
        )
        for i in result.erased_rows:
            p = accepted[i]
            errors.append(
                CellError(
                    p.number,
                    "、".join(column for column, _raw in p.key_cells),
                    shown(" ".join(raw for _column, raw in p.key_cells)),
                    _("this person asked to be erased; their details cannot be imported again"),
                )
            )
        landed.bad_rows += len(result.erased_rows)
        rows = [(p, cid) for p, cid in zip(accepted, result.contact_ids, strict=True) if cid]
        self.seen.add(
            [k.lock_name for p, _cid in rows for k in p.keys],
            [p.number for p, _cid in rows for _k in p.keys],
        )
        contact_ids = sorted({cid for _p, cid in rows})
        if self.tags:
            tags_add(
                contact_ids=contact_ids,
                tags=self.tags,
                source=SOURCE,
                actor_label=f"{SOURCE} #{self.ci.pk}"[:150],
            )
        if self.consent.get("basis"):
            self._consent(contact_ids)
        if self.ci.opens_lead and contact_ids:
            for hook in import_hooks():
                hook(self.unit.pk, contact_ids, self.ci.opens_lead, self.ci.pk)
        landed.imported = len(rows)
        landed.created = result.created
        landed.matched = result.matched + result.merged
        return errors, landed

    def _consent(self, contact_ids: list[int]) -> None:
        proof = {"import": self.ci.pk, "file": self.ci.original_name}
        ConsentEvent.objects.bulk_create(
            ConsentEvent(
                contact_id=cid,
                unit=self.unit,
                channel=channel,
                granted=True,
                basis=self.consent["basis"],
                source=SOURCE,
                proof=proof,
                occurred_at=self.observed_at,
            )
            for cid in contact_ids
            for channel in self.consent["channels"]
        )
        consent_states_refresh(contact_ids)

    def _progress(self, rows: int, landed: _Landed) -> None:
        updated = (
            ContactImport.objects.dangerously_unscoped()
            .filter(pk=self.ci.pk, status=JobStatus.RUNNING)
            .update(
                processed_rows=F("processed_rows") + rows,
                imported_rows=F("imported_rows") + landed.imported,
                error_rows=F("error_rows") + landed.bad_rows,
                created_contacts=F("created_contacts") + landed.created,
                matched_contacts=F("matched_contacts") + landed.matched,
                heartbeat_at=timezone.now(),
            )
        )
        if updated != 1:
            raise _Cancelled

    # -- the end --

    def _save_errors(self) -> str:
        if not self.errors.lines:
            return ""
        name = f"{PurePath(self.ci.original_name).stem[:80]}-errors.csv"
        self.ci.error_file.save(name, File(self.errors.rewound()), save=False)
        return self.ci.error_file.name or ""

    def _end(self, status: str, action: str, failure: str = "") -> None:
        _commit_without_waiting(False)
        error_file = self._save_errors()
        with transaction.atomic():
            ContactImport.objects.dangerously_unscoped().filter(
                pk=self.ci.pk, status=JobStatus.RUNNING
            ).update(
                status=status, failure=failure, error_file=error_file, finished_at=timezone.now()
            )
            self.ci.refresh_from_db()
            counts = {
                name: getattr(self.ci, name)
                for name in (
                    "total_rows",
                    "processed_rows",
                    "imported_rows",
                    "error_rows",
                    "created_contacts",
                    "matched_contacts",
                )
            }
            audit_record(
                actor=self.actor,
                action=action,
                obj=self.ci,
                unit=self.unit,
                after={**counts, **({"failure": failure} if failure else {})},
            )

    def _finish(self) -> None:
        self._end(JobStatus.DONE, "contact_import.finish")
        # Rule tags of the unit follow the new and changed contacts: one set-based run per
        # rule tag, not a task per contact.
        from apps.contacts.tasks.tag_rules import apply_tag_rule

        rule_tags = Tag.objects.dangerously_unscoped().filter(
            unit_id=self.ci.unit_id, kind=TagKind.RULE
        )
        for tag_id in rule_tags.values_list("pk", flat=True):
            enqueue_on_commit(apply_tag_rule, tag_id)
        # Dynamic segments of the unit are rebuilt by the next periodic run.
        segments_mark_stale(unit_ids=[self.ci.unit_id])

    def fail(self, message: str) -> None:
        self._end(JobStatus.FAILED, "contact_import.fail", message)

    def close(self) -> None:
        _commit_without_waiting(False)
        self.errors.close()
        if self.seen is not None:
            self.seen.drop()


def contact_import_run(*, import_id: int, batch_size: int = BATCH_SIZE) -> ContactImport | None:
    """Run a started import to its end (the background job). Safe to call twice: only the
    call that moves it from pending to running does the work."""
    claimed = (
        ContactImport.objects.dangerously_unscoped()
        .filter(pk=import_id, status=JobStatus.PENDING)
        .exclude(mapping={})
        .update(status=JobStatus.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now())
    )
    contact_import = (
        ContactImport.objects.dangerously_unscoped()
        .select_related("unit", "created_by")
        .filter(pk=import_id)
        .first()
    )
    if not claimed or contact_import is None:
        return contact_import
    language = contact_import.created_by.language or settings.LANGUAGE_CODE
    with translation.override(language):
        job = _ImportJob(contact_import, batch_size)
        try:
            job.run()
        except (ImportFileError, BatchFailed) as exc:
            job.fail(str(exc))
        except _Cancelled:
            pass
        except Exception as exc:
            logger.exception("contact import %s failed", import_id)
            job.fail(
                _(
                    "The import stopped on an unexpected error (%(error)s). Rows imported before "
                    "it are kept; nothing of the unfinished batch was saved."
                )
                % {"error": exc.__class__.__name__}
            )
        finally:
            job.close()
    contact_import.refresh_from_db()
    return contact_import
