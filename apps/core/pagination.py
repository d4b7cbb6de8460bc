"""Keyset ("cursor") pagination for pages and the API.

Pages are found by the last row's ordering values, never by OFFSET and never with a
COUNT(*), so the hundredth thousandth row costs what the first does. Orderings are a
tuple of fields, all in one direction, ending with a unique one (``("-created_at", "-id")``).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import models
from django.db.models import Q

_T = TypeVar("_T", bound=models.Model)

MAX_PAGE_SIZE = 200


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class KeysetPage(Generic[_T]):
    items: list[_T]
    next_cursor: str | None
    previous_cursor: str | None


def _encode(values: list[Any], direction: str) -> str:
    raw = json.dumps({"v": values, "d": direction}, separators=(",", ":"), default=str)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[list[Any], str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        values, direction = data["v"], data["d"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidCursor("cursor is not valid") from exc
    if direction not in {"n", "p"} or not isinstance(values, list):
        raise InvalidCursor("cursor is not valid")
    return values, direction


def _split(ordering: tuple[str, ...]) -> tuple[list[str], bool]:
    descending = {o.startswith("-") for o in ordering}
    if len(descending) != 1:
        raise ValueError("keyset orderings must run in one direction")
    return [o.lstrip("-") for o in ordering], descending.pop()


def _after(fields: list[str], values: list[Any], descending: bool) -> Q:
    """Rows strictly past ``values`` in the ordering.

    Written as ``a <= x AND (a < x OR b < y)`` rather than a plain OR, so PostgreSQL can
    range-scan the (a, b) index from x instead of filtering the whole table.
    """
    op = "lt" if descending else "gt"
    eq_op = "lte" if descending else "gte"
    if len(fields) == 1:
        return Q(**{f"{fields[0]}__{op}": values[0]})
    head, rest = fields[0], fields[1:]
    return Q(**{f"{head}__{eq_op}": values[0]}) & (
        Q(**{f"{head}__{op}": values[0]})
        | (Q(**{head: values[0]}) & _after(rest, values[1:], descending))
    )


def _row_values(obj: models.Model, fields: list[str]) -> list[Any]:
    out = []
    for name in fields:
        value = getattr(obj, name)
        out.append(value.isoformat() if hasattr(value, "isoformat") else value)
    return out


def _parse_values(queryset: models.QuerySet[Any], fields: list[str], raw: list[Any]) -> list[Any]:
    """The cursor's values as Python values of each key: a model field's, or an
    annotation's output field (a queue ordered by a computed rank pages the same way)."""
    if len(raw) != len(fields):
        raise InvalidCursor("cursor is not valid")
    parsed = []
    for name, value in zip(fields, raw, strict=True):
        annotation = queryset.query.annotations.get(name)
        field = (
            annotation.output_field
            if annotation is not None
            else queryset.model._meta.get_field("id" if name == "pk" else name)
        )
        try:
            parsed.append(field.to_python(value))  # type: ignore[union-attr]
        except Exception as exc:
            raise InvalidCursor("cursor is not valid") from exc
    return parsed


def keyset_page(
    queryset: models.QuerySet[_T],
    *,
    ordering: tuple[str, ...] = ("-id",),
    cursor: str | None = None,
    size: int = 50,
) -> KeysetPage[_T]:
    """One page of ``queryset`` in ``ordering``, after (or before) ``cursor``."""
    size = max(1, min(size, MAX_PAGE_SIZE))
    fields, descending = _split(ordering)
    direction = "n"
    if cursor:
        raw, direction = _decode(cursor)
        values = _parse_values(queryset, fields, raw)
        # Going back means walking the ordering in reverse from the cursor.
        queryset = queryset.filter(_after(fields, values, descending != (direction == "p")))
    if direction == "p":
        reverse = tuple(fields) if descending else tuple(f"-{f}" for f in fields)
        rows = list(queryset.order_by(*reverse)[: size + 1])
        has_more = len(rows) > size
        items = list(reversed(rows[:size]))
        next_cursor = _encode(_row_values(items[-1], fields), "n") if items else None
        previous_cursor = (
            _encode(_row_values(items[0], fields), "p") if items and has_more else None
        )
        return KeysetPage(items, next_cursor, previous_cursor)
    rows = list(queryset.order_by(*ordering)[: size + 1])
    has_more = len(rows) > size
    items = rows[:size]
    next_cursor = _encode(_row_values(items[-1], fields), "n") if items and has_more else None
    previous_cursor = _encode(_row_values(items[0], fields), "p") if items and cursor else None
    return KeysetPage(items, next_cursor, previous_cursor)


def cursor_for(obj: models.Model, *, ordering: tuple[str, ...] = ("-id",)) -> str:
    """The cursor that starts the page right after ``obj`` (benchmarks, deep links)."""
    fields, _ = _split(ordering)
    return _encode(_row_values(obj, fields), "n")
