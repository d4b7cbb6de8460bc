"""Custom fields: checking and converting values before they are stored on a contact.

Values live in ``Contact.custom`` keyed by the field's id (a string): text as str, number
as a JSON number, date as "YYYY-MM-DD", choice as the option value, multi-choice as a
sorted list of option values. Everything is validated against the unit's field
definition, so a filter can trust what it finds.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext as _

from apps.contacts.models import CustomField, CustomFieldType

TEXT_MAX = 500
# 2026-11-30, 2026/6/3, 2026.06.03, 2026年6月3日 (what Chinese spreadsheets hold)
_DATE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
MULTI_SEPARATORS = (",", "，", ";", "；", "|", "、")


class FieldValueError(ValueError):
    """A value does not fit its field; ``str()`` is the message for the user."""


def _split_multi(raw: Any) -> list[str]:
    if isinstance(raw, list | tuple):
        return [str(v).strip() for v in raw if str(v).strip()]
    text = str(raw)
    for sep in MULTI_SEPARATORS[1:]:
        text = text.replace(sep, MULTI_SEPARATORS[0])
    return [part.strip() for part in text.split(MULTI_SEPARATORS[0]) if part.strip()]


def _option_value(field: CustomField, raw: str) -> str:
    """Accept an option by its value or its label."""
    for option in field.options:
        if raw in (str(option.get("value")), str(option.get("label"))):
            return str(option.get("value"))
    allowed = "、".join(str(o.get("label")) for o in field.options)
    raise FieldValueError(
        _("“%(value)s” is not an option of %(field)s (options: %(allowed)s)")
        % {"value": raw, "field": field.label, "allowed": allowed}
    )


def clean_value(field: CustomField, raw: Any) -> Any:
    """The stored form of ``raw`` for ``field``; None means "no value"."""
    if raw is None or (isinstance(raw, str) and not raw.strip()) or raw == []:
        return None
    kind = field.type
    if kind == CustomFieldType.TEXT:
        text = str(raw).strip()
        if len(text) > TEXT_MAX:
            raise FieldValueError(
                _("%(field)s is longer than %(max)d characters")
                % {"field": field.label, "max": TEXT_MAX}
            )
        return text
    if kind == CustomFieldType.NUMBER:
        try:
            number = Decimal(str(raw).strip().replace(",", ""))
        except InvalidOperation:
            raise FieldValueError(
                _("%(field)s must be a number (got “%(value)s”)")
                % {"field": field.label, "value": raw}
            ) from None
        if not number.is_finite():
            raise FieldValueError(_("%(field)s must be a number") % {"field": field.label})
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == CustomFieldType.DATE:
        if isinstance(raw, dt.datetime):
            return raw.date().isoformat()
        if isinstance(raw, dt.date):
            return raw.isoformat()
        match = _DATE.fullmatch(str(raw).strip())
        try:
            if match is None:
                raise ValueError(raw)
            year, month, day = (int(part) for part in match.groups())
            return dt.date(year, month, day).isoformat()
        except ValueError:
            raise FieldValueError(
                _("%(field)s must be a date like 2026-11-30 (got “%(value)s”)")
                % {"field": field.label, "value": raw}
            ) from None
    if kind == CustomFieldType.CHOICE:
        return _option_value(field, str(raw).strip())
    if kind == CustomFieldType.MULTI_CHOICE:
        return sorted({_option_value(field, part) for part in _split_multi(raw)})
    raise FieldValueError(f"unknown field type {kind!r}")


def clean_custom(fields: Iterable[CustomField], raw: dict[str, Any]) -> dict[str, Any]:
    """{field key or id: raw} -> {field id: stored value}; FieldValueError on the first bad one."""
    by_key = {}
    for f in fields:
        by_key[f.key] = f
        by_key[str(f.pk)] = f
    cleaned: dict[str, Any] = {}
    for name, value in raw.items():
        field = by_key.get(str(name))
        if field is None:
            raise FieldValueError(_("unknown custom field “%(name)s”") % {"name": name})
        stored = clean_value(field, value)
        if stored is not None:
            cleaned[field.storage_key] = stored
    return cleaned
