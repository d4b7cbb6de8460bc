"""Exporting a filtered contact list to CSV or XLSX, as a background job with progress.

``contact_export_create`` checks the filters and queues the job; the worker calls
``contact_export_run``, which streams the contacts in chunks, writes the file to Django
storage, and records who exported how many rows in the audit trail.

Formula injection (OWASP "CSV injection"): a name such as ``=HYPERLINK("http://evil","x")``
typed into a public form would run as a formula when a colleague opens the export in
Excel or WPS. Every text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return is therefore neutralised:

* CSV has no cell types, so the cell gets a leading apostrophe (``'=HYPERLINK(…)``), the
  spreadsheet convention for "this is text"; Excel shows the text and never evaluates it.
* XLSX cells are typed: such a cell is written explicitly as a string (openpyxl would
  otherwise store a leading ``=`` as a formula) with Excel's quote-prefix flag, which is
  what typing the apostrophe does in Excel, so the value stays exactly what the person
  entered and still reads as text when someone edits the cell.

Phone numbers are E.164 (``+86…``) and so are always written as text too, which also
keeps Excel from turning them into ``8.61E+12``.
"""

from __future__ import annotations

import csv
import io
import logging
import tempfile
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from apps.contacts.models import (
    Channel,
    Contact,
    ContactExport,
    CustomField,
    CustomFieldType,
    IdentityKind,
    JobStatus,
    Segment,
    Tag,
)
from apps.contacts.selectors.exports import (
    EXPORT,
    export_custom_fields,
    export_queryset,
    export_rows,
)
from apps.contacts.services.fields import FieldValueError, clean_value
from apps.core.audit_actions import register_action
from apps.core.models import BusinessUnit, User
from apps.core.scoping import visible_unit_ids
from apps.core.services import audit_record
from apps.core.tasks import enqueue_on_commit

logger = logging.getLogger(__name__)

register_action("contact.export", gettext_lazy("Contacts exported"))
register_action("contact_export.fail", gettext_lazy("Contact export failed"))

FILE_TYPES = ("csv", "xlsx")
# Contacts fetched per round trip (plus two prefetch queries) and between progress
# updates: big enough that a million rows is 500 chunks, small enough to hold in memory.
CHUNK_SIZE = 2000
# Characters that make a spreadsheet treat a cell as a formula (OWASP CSV injection list).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
QUERY_MAX = 200
# Export files hold personal data: they are deleted this many days after they were
# written (the nightly retention task does it), so copies do not outlive erasures.
FILE_DAYS = 7


class ExportError(ValueError):
    pass


def is_formula_like(text: str) -> bool:
    return text.startswith(FORMULA_TRIGGERS)


def neutralise(text: str) -> str:
    """The CSV form of a text cell: a leading apostrophe when it could run as a formula."""
    return "'" + text if is_formula_like(text) else text


# --- Creating the job ----------------------------------------------------------------------


def _visible_pk(model: Any, user: User, raw: Any, field: str, errors: dict[str, str]) -> int:
    try:
        pk = int(raw)
    except (TypeError, ValueError):
        errors[field] = _("Choose one from the list.")
        return 0
    if not model.objects.visible_to(user, EXPORT).filter(pk=pk).exists():
        errors[field] = _("That choice does not exist in your business units.")
    return pk


def export_filters_clean(*, user: User, filters: dict[str, Any]) -> dict[str, Any]:
    """The filters in their stored form; ValidationError names each bad one.

    A tag, unit, channel or field the user cannot see is refused rather than ignored:
    ignoring it would export more people than the user asked for.
    """
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    text = str(filters.get("q") or "").strip()
    if len(text) > QUERY_MAX:
        errors["q"] = _("Search text is limited to %(max)d characters.") % {"max": QUERY_MAX}
    elif text:
        cleaned["q"] = text
    for key, model in (
        ("tag", Tag),
        ("unit", BusinessUnit),
        ("source", Channel),
        ("segment", Segment),
    ):
        raw = filters.get(key)
        if raw not in (None, ""):
            cleaned[key] = _visible_pk(model, user, raw, key, errors)
    custom = {str(k): v for k, v in (filters.get("custom") or {}).items() if v not in (None, "")}
    if custom:
        ids = [int(k) for k in custom if k.isdigit()]
        fields = {
            f.storage_key: f
            for f in CustomField.objects.visible_to(user, EXPORT).filter(pk__in=ids)
        }
        for key, raw in custom.items():
            field = fields.get(key)
            if field is None:
                errors["custom"] = _("Unknown custom field %(key)s.") % {"key": key}
                continue
            try:
                if clean_value(field, raw) is None:
                    continue
            except FieldValueError as exc:
                errors["custom"] = str(exc)
                continue
            cleaned.setdefault("custom", {})[key] = raw
    if errors:
        raise ValidationError(errors)
    return cleaned


def _export_unit(user: User, filters: dict[str, Any]) -> BusinessUnit:
    """The unit a job is filed under (whose administrators may also download it): the
    unit filter, else the user's only unit, else their group when they see all of it,
    else the first of their units."""
    if filters.get("unit"):
        return BusinessUnit.objects.dangerously_unscoped().get(pk=filters["unit"])
    units = list(
        BusinessUnit.objects.dangerously_unscoped()
        .filter(pk__in=visible_unit_ids(user, EXPORT))
        .order_by("id")
    )
    if not units:
        raise PermissionDenied(_("You may not export contacts."))
    groups = [u for u in units if u.parent_id is None]
    if len(units) == 1 or len(groups) != 1:
        return units[0]
    return groups[0]


@transaction.atomic
def contact_export_create(
    *, acting_user: User, filters: dict[str, Any], file_type: str
) -> ContactExport:
    """Queue an export of the contacts ``filters`` selects, as ``acting_user`` sees them."""
    # Imported here: the task module imports this one.
    from apps.contacts.tasks.exports import contacts_export_run

    if not visible_unit_ids(acting_user, EXPORT):
        raise PermissionDenied(_("You may not export contacts."))
    if file_type not in FILE_TYPES:
        raise ValidationError({"file_type": _("Choose CSV or Excel (XLSX).")})
    cleaned = export_filters_clean(user=acting_user, filters=filters)
    export = ContactExport.objects.create(
        unit=_export_unit(acting_user, cleaned),
        created_by=acting_user,
        file_type=file_type,
        filters=cleaned,
        heartbeat_at=timezone.now(),
    )
    enqueue_on_commit(contacts_export_run, export.pk)
    return export


# --- Running it ----------------------------------------------------------------------------


def _zone(user: User) -> ZoneInfo:
    try:
        return ZoneInfo(user.time_zone or settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


def _local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    # Spreadsheets have no time zones: write the user's wall-clock time.
    return timezone.localtime(moment, zone).replace(tzinfo=None) if moment else None


def _option_labels(field: CustomField) -> dict[str, str]:
    return {str(o.get("value")): str(o.get("label")) for o in field.options if isinstance(o, dict)}


def _custom_value(field: CustomField, labels: dict[str, str], value: Any) -> Any:
    if value in (None, "", []):
        return None
    if field.type == CustomFieldType.CHOICE:
        return labels.get(str(value), str(value))
    if field.type == CustomFieldType.MULTI_CHOICE:
        values = value if isinstance(value, list) else [value]
        return "; ".join(labels.get(str(v), str(v)) for v in values)
    if field.type == CustomFieldType.NUMBER and isinstance(value, int | float):
        return value
    return str(value)


def _headers(fields: list[CustomField]) -> list[str]:
    headers = [
        _("ID"),
        pgettext("contact field", "Name"),
        _("Job title"),
        _("Company"),
        _("Department"),
        _("Province"),
        _("City"),
        _("Industry"),
        _("Phones"),
        _("Emails"),
        _("Tags"),
        _("First seen"),
        _("Last seen"),
    ]
    label_count: dict[str, int] = {}
    for f in fields:
        label_count[f.label] = label_count.get(f.label, 0) + 1
    for f in fields:
        # Two units may both have a "客户类型": say whose column is whose.
        headers.append(f"{f.label} ({f.unit.name})" if label_count[f.label] > 1 else f.label)
    return headers


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _row(
    contact: Contact, fields: list[CustomField], labels: list[dict[str, str]], zone: ZoneInfo
) -> list[Any]:
    identities = contact.export_identities  # type: ignore[attr-defined]
    custom = contact.custom or {}
    row: list[Any] = [
        contact.pk,
        contact.name,
        contact.title,
        contact.company_name,
        contact.department,
        contact.province,
        contact.city,
        contact.industry,
        "; ".join(i.value for i in identities if i.kind == IdentityKind.PHONE),
        "; ".join(i.value for i in identities if i.kind == IdentityKind.EMAIL),
        "; ".join(_unique(t.tag.name for t in contact.export_tags)),  # type: ignore[attr-defined]
        _local(contact.first_seen_at, zone),
        _local(contact.last_seen_at, zone),
    ]
    for field, field_labels in zip(fields, labels, strict=True):
        row.append(_custom_value(field, field_labels, custom.get(field.storage_key)))
    return row


class _CsvWriter:
    def __init__(self, target: IO[bytes]) -> None:
        # UTF-8 with a byte-order mark: without it Excel on Windows reads Chinese as GBK.
        self.text = io.TextIOWrapper(target, encoding="utf-8-sig", newline="")
        self.writer = csv.writer(self.text)

    def write(self, row: list[Any]) -> None:
        self.writer.writerow([self._cell(v) for v in row])

    @staticmethod
    def _cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(value, str):
            return neutralise(value)
        return str(value)

    def close(self) -> None:
        self.text.flush()
        self.text.detach()


class _XlsxWriter:
    def __init__(self, target: IO[bytes], title: str) -> None:
        self.target = target
        # write_only streams rows to disk instead of building the whole sheet in memory.
        self.book = Workbook(write_only=True)
        self.sheet = self.book.create_sheet(title=title[:31])

    def write(self, row: list[Any]) -> None:
        self.sheet.append([self._cell(v) for v in row])

    def _cell(self, value: Any) -> Any:
        if isinstance(value, datetime):
            cell = WriteOnlyCell(self.sheet, value=value)
            cell.number_format = "yyyy-mm-dd hh:mm:ss"
            return cell
        if not isinstance(value, str):
            return value
        # Control characters are not allowed in XLSX; a stray one must not fail the export.
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
        if not is_formula_like(value):
            return value
        cell = WriteOnlyCell(self.sheet, value=value)
        cell.data_type = "s"  # openpyxl typed a leading "=" as a formula
        cell.quotePrefix = True  # Excel's "typed with an apostrophe": text, even on edit
        return cell

    def close(self) -> None:
        self.book.save(self.target)


def _claim(export_id: int) -> bool:
    """Only one worker runs a job: pending → running must change exactly one row."""
    claimed = (
        ContactExport.objects.dangerously_unscoped()
        .filter(pk=export_id, status=JobStatus.PENDING)
        .update(status=JobStatus.RUNNING, heartbeat_at=timezone.now())
    )
    return claimed == 1


def contact_export_run(*, export_id: int) -> ContactExport | None:
    """Write the file for a pending export; None when another worker has it already.

    Not one transaction: progress (``processed_rows``) is committed every chunk so the
    page polling it sees the job move. The file, the final status and the audit row are
    written together at the end.
    """
    if not _claim(export_id):
        return None
    export = (
        ContactExport.objects.dangerously_unscoped().select_related("created_by").get(pk=export_id)
    )
    user = export.created_by
    try:
        with translation.override(user.language or settings.LANGUAGE_CODE):
            _write(export, user)
    except Exception as exc:
        # The job says it failed (the page stops polling); the worker log has the trace.
        logger.exception("contact export %s failed", export_id)
        ContactExport.objects.dangerously_unscoped().filter(pk=export_id).update(
            status=JobStatus.FAILED, failure=str(exc)[:2000], finished_at=timezone.now()
        )
    export.refresh_from_db()
    return export


def _write(export: ContactExport, user: User) -> int:
    filters = export.filters or {}
    fields = export_custom_fields(user, filters)
    labels = [_option_labels(f) for f in fields]
    zone = _zone(user)
    total = export_queryset(user, filters).count()
    ContactExport.objects.dangerously_unscoped().filter(pk=export.pk).update(
        total_rows=total, heartbeat_at=timezone.now()
    )
    processed = 0
    with tempfile.TemporaryFile() as target:
        writer: _CsvWriter | _XlsxWriter
        if export.file_type == "xlsx":
            writer = _XlsxWriter(target, _("Contacts"))
        else:
            writer = _CsvWriter(target)
        writer.write(_headers(fields))
        for contact in export_rows(user, filters).iterator(chunk_size=CHUNK_SIZE):
            writer.write(_row(contact, fields, labels, zone))
            processed += 1
            if processed % CHUNK_SIZE == 0:
                ContactExport.objects.dangerously_unscoped().filter(pk=export.pk).update(
                    processed_rows=processed, heartbeat_at=timezone.now()
                )
        writer.close()
        target.seek(0)
        stamp = timezone.localtime(timezone.now(), zone).strftime("%Y%m%d-%H%M")
        with transaction.atomic():
            export.file.save(
                f"contacts-{export.pk}-{stamp}.{export.file_type}", File(target), save=False
            )
            export.status = JobStatus.DONE
            export.processed_rows = processed
            export.total_rows = processed
            export.finished_at = timezone.now()
            export.save(
                update_fields=["file", "status", "processed_rows", "total_rows", "finished_at"]
            )
            audit_record(
                actor=user,
                action="contact.export",
                obj=export,
                unit=export.unit_id,
                after={"rows": processed, "file_type": export.file_type, "filters": filters},
            )
    return processed


def contact_export_files_expire(*, now: datetime | None = None, days: int = FILE_DAYS) -> int:
    """Delete the files of exports finished more than ``days`` ago; returns how many.

    The job row stays (who exported what, when); only the file goes, and the page says
    it expired.
    """
    cutoff = (now or timezone.now()) - timedelta(days=days)
    expired = 0
    old = (
        ContactExport.objects.dangerously_unscoped()
        .filter(finished_at__lt=cutoff)
        .exclude(file="")
        .order_by("id")
    )
    for export in old.iterator(chunk_size=CHUNK_SIZE):
        export.file.delete(save=False)
        ContactExport.objects.dangerously_unscoped().filter(pk=export.pk).update(file="")
        expired += 1
    return expired
