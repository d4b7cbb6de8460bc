"""One row of a file checked and turned into keys and attributes, or into reasons.

``RowChecker.check`` never touches the database. It reports every bad cell of a row at
once (a user fixing the file wants them all), so a row can yield several ``CellError``s;
the row is then not imported at all. What makes a cell bad:

* an identifier that does not normalise (``identity_keys.make_key``): a phone that is not
  a phone, an email that is not an email, an id with spaces;
* a value longer than the contact field holds (``Contact`` max_length), or a custom
  field value its definition refuses (``services.fields.clean_value``: unknown option,
  not a number, not a date…);
* emoji and other characters outside the Basic Multilingual Plane. PostgreSQL stores them
  fine, but the CRMs, SMS gateways and MySQL-era systems our users sync to often cannot
  (utf8mb3), and a name with an emoji in it is usually pasted decoration, so we refuse
  it with a clear reason rather than pass the problem downstream;
* control characters (PostgreSQL refuses NUL outright; the rest garble exports);
* a required column left empty, or no identifier at all in the row.

Duplicates within the file (the same normalised key in an earlier row) are found by the
job, which sees all rows; see ``services.imports``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from apps.contacts.identity_keys import (
    InvalidKey,
    Key,
    make_key,
    normalize_email,
    normalize_phone,
)
from apps.contacts.importing.mapping import Column, Plan
from apps.contacts.models import CustomFieldType, IdentityKind
from apps.contacts.services.fields import FieldValueError, clean_value

_OUTSIDE_BMP = re.compile("[\U00010000-\U0010ffff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Both at once: one scan per cell on the common, clean path.
_SUSPECT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\U00010000-\U0010ffff]")
# Dates as Chinese spreadsheets spell them: 2025/6/30, 2025.6.30, 2025年6月30日.
_LOOSE_DATE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
# The value shown in the error file: enough to find the cell, not a whole essay.
SHOWN_VALUE_MAX = 100


@dataclass(frozen=True)
class CellError:
    row: int
    column: str
    value: str
    reason: str


@dataclass
class ParsedRow:
    number: int
    keys: list[Key] = field(default_factory=list)
    # The column each key came from, and its raw value (for duplicate messages).
    key_cells: list[tuple[str, str]] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)


def shown(value: str) -> str:
    return value if len(value) <= SHOWN_VALUE_MAX else value[: SHOWN_VALUE_MAX - 1] + "…"


def _key_reason(kind: str) -> str:
    if kind == IdentityKind.PHONE:
        return _("not a valid mobile or phone number")
    if kind == IdentityKind.EMAIL:
        return _("not a valid email address")
    return _("not a valid id (no spaces, at most 254 characters)")


class RowChecker:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.identity_headers = "、".join(c.header for c in plan.identity_columns)
        self.limits = {c.target: c.max_length for c in plan.columns if c.is_standard}

    def _key(self, kind: str, value: str) -> Key:
        """``identity_keys.make_key`` for a kind the mapping already checked, minus its
        per-call checks (a million rows feel them); the same normalisers."""
        if kind == IdentityKind.PHONE:
            return Key(kind, "", normalize_phone(value))
        if kind == IdentityKind.EMAIL:
            return Key(kind, "", normalize_email(value))
        return make_key(kind, value, self.plan.wechat_app_id)

    def _text_problem(self, value: str) -> str | None:
        if not _SUSPECT.search(value):
            return None
        if _OUTSIDE_BMP.search(value):
            return _(
                "contains emoji or other characters outside the Basic Multilingual Plane, "
                "which many systems cannot store"
            )
        if _CONTROL.search(value):
            return _("contains control characters")
        return None

    def _cell(self, column: Column, value: str, parsed: ParsedRow) -> str | None:
        """Put the cell's value into ``parsed``; the reason it is bad otherwise."""
        problem = self._text_problem(value)
        if problem:
            return problem
        if column.is_identity:
            try:
                key = self._key(column.target, value)
            except InvalidKey:
                return _key_reason(column.target)
            if key not in parsed.keys:
                parsed.keys.append(key)
                parsed.key_cells.append((column.header, value))
            return None
        if column.is_standard:
            limit = self.limits[column.target]
            if limit is not None and len(value) > limit:
                return _("longer than %(max)d characters (has %(length)d)") % {
                    "max": limit,
                    "length": len(value),
                }
            parsed.attributes[column.target] = value
            return None
        assert column.custom_field is not None
        if column.custom_field.type == CustomFieldType.DATE:
            loose = _LOOSE_DATE.fullmatch(value)
            if loose:
                year, month, day = loose.groups()
                value = f"{year}-{int(month):02d}-{int(day):02d}"
        try:
            stored = clean_value(column.custom_field, value)
        except FieldValueError as exc:
            return str(exc)
        if stored is not None:
            parsed.attributes.setdefault("custom", {})[column.custom_field.storage_key] = stored
        return None

    def check(self, number: int, cells: list[str]) -> tuple[ParsedRow | None, list[CellError]]:
        parsed = ParsedRow(number)
        errors: list[CellError] = []
        identity_failed = False
        for column in self.plan.columns:
            raw = cells[column.index]
            value = raw.strip()
            if not value:
                if column.required:
                    errors.append(CellError(number, column.header, "", _("required, but empty")))
                continue
            reason = self._cell(column, value, parsed)
            if reason:
                identity_failed = identity_failed or column.is_identity
                errors.append(CellError(number, column.header, shown(raw), reason))
        for column in self.plan.required:
            if not cells[column.index].strip():
                errors.append(CellError(number, column.header, "", _("required, but empty")))
        if not parsed.keys and not identity_failed:
            errors.append(
                CellError(
                    number,
                    self.identity_headers,
                    "",
                    _("no identifier: fill at least one of %(columns)s")
                    % {"columns": self.identity_headers},
                )
            )
        if errors:
            return None, errors
        return parsed, []
