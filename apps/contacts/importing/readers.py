"""CSV and XLSX files as a header and a stream of rows, never the whole file in memory.

``open_table`` yields a ``Table``: the header (made unique, so a mapping can name columns
by it) and an iterator of ``(row number, cells)``. Row numbers are what Excel shows: the
header is row 1, the first data row is row 2, and blank rows keep their number but are
not yielded. Cells are strings, padded to the header's width; cells past the header are
dropped (they have no column to map to).

CSV is read line by line through ``encoding.decoded_lines`` and the csv module; XLSX
through openpyxl's read-only mode, which streams the sheet's XML. Excel stores long
numbers (phones) as numbers: 13800138000.0 comes back as "13800138000".
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import IO, Any

from django.utils.translation import gettext as _

from apps.contacts.importing.encoding import decoded_lines
from apps.contacts.importing.files import CSV, XLSX, ImportFileError

PREVIEW_ROWS = 10
# The csv module's default (128 KB) would reject a big notes cell with a cryptic error; a
# cell this large is refused by the row checks with a clear one instead.
csv.field_size_limit(10 * 1024 * 1024)
_DELIMITERS = (",", "\t", ";", "|")


@dataclass
class Table:
    header: list[str]
    rows: Iterator[tuple[int, list[str]]]


def column_letter(index: int) -> str:
    """0 -> "A", 25 -> "Z", 26 -> "AA": what Excel calls the column."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def unique_header(raw: Iterable[Any]) -> list[str]:
    """Header cells as names a mapping can use: trimmed, blanks named by their column
    letter (language-neutral, so a remembered mapping works in zh-hans and en), repeats
    numbered ("备注", "备注 (2)")."""
    cells = [cell_text(cell).strip() for cell in raw]
    while cells and not cells[-1]:
        cells.pop()  # trailing blank header cells are not columns
    names: list[str] = []
    seen: set[str] = set()
    for index, cell in enumerate(cells):
        name = cell or column_letter(index)
        candidate, n = name, 1
        while candidate.lower() in seen:
            n += 1
            candidate = f"{name} ({n})"
        seen.add(candidate.lower())
        names.append(candidate)
    return names


def header_signature(header: list[str]) -> str:
    """A fingerprint of a header row, to offer the mapping used last time for it."""
    text = "\x1f".join(name.strip().lower() for name in header)
    return hashlib.sha256(text.encode()).hexdigest()


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _rows(
    records: Iterable[Any], width: int, first_number: int, *, convert: bool
) -> Iterator[tuple[int, list[str]]]:
    for number, record in enumerate(records, start=first_number):
        # CSV cells are strings already; workbook cells are numbers, dates, None…
        cells = [cell_text(c) for c in record[:width]] if convert else record[:width]
        if not any(c.strip() for c in cells):
            continue
        if len(cells) < width:
            cells += [""] * (width - len(cells))
        yield number, cells


def _delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_records(lines: Iterator[str], delimiter: str) -> Iterator[list[str]]:
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        yield from reader
    except csv.Error as exc:
        raise ImportFileError(
            _("Line %(line)d of the file is not valid CSV (%(error)s).")
            % {"line": reader.line_num, "error": exc}
        ) from None


def _csv_table(binary: IO[bytes], encoding: str) -> Table:
    lines = decoded_lines(binary, encoding)
    # Skip blank lines before the header; the header row's number is where it was found.
    skipped = 0
    for first in lines:
        if first.strip():
            break
        skipped += 1
    else:
        raise ImportFileError(_("The file has no header row."))
    records = _csv_records(chain([first], lines), _delimiter(first))
    header = unique_header(next(records))
    if not header:
        raise ImportFileError(_("The file has no header row."))
    return Table(header, _rows(records, len(header), skipped + 2, convert=False))


def _xlsx_table(binary: IO[bytes]) -> tuple[Table, Any]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(binary, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds on a broken file
        raise ImportFileError(
            _("The workbook cannot be read (%(error)s). Open it in Excel and save it again.")
            % {"error": exc.__class__.__name__}
        ) from None
    if not book.worksheets:
        book.close()
        raise ImportFileError(_("The workbook has no sheet."))
    records = book.worksheets[0].iter_rows(values_only=True)
    for number, record in enumerate(records, start=1):
        if any(cell_text(c).strip() for c in record):
            header = unique_header(record)
            return Table(header, _rows(records, len(header), number + 1, convert=True)), book
    book.close()
    raise ImportFileError(_("The first sheet of the workbook has no header row."))


@contextmanager
def open_table(binary: IO[bytes], *, file_type: str, encoding: str = "") -> Iterator[Table]:
    """The table in ``binary`` (rewound first). Closes what it opened, not ``binary``."""
    binary.seek(0)
    if file_type == CSV:
        yield _csv_table(binary, encoding)
    elif file_type == XLSX:
        table, book = _xlsx_table(binary)
        try:
            yield table
        finally:
            book.close()
    else:
        raise ImportFileError(_("Unknown file type %(type)s.") % {"type": file_type})


@dataclass
class Preview:
    header: list[str]
    rows: list[tuple[int, list[str]]]


def read_preview(binary: IO[bytes], *, file_type: str, encoding: str = "") -> Preview:
    with open_table(binary, file_type=file_type, encoding=encoding) as table:
        rows = []
        for row in table.rows:
            rows.append(row)
            if len(rows) >= PREVIEW_ROWS:
                break
        return Preview(table.header, rows)


def count_rows(binary: IO[bytes], *, file_type: str, encoding: str = "") -> int:
    """Data rows in the file (blank ones not counted), reading every byte once: for a CSV
    this is also the proof that the whole file decodes."""
    with open_table(binary, file_type=file_type, encoding=encoding) as table:
        return sum(1 for _row in table.rows)


@contextmanager
def stored_binary(field_file: Any) -> Iterator[IO[bytes]]:
    """The raw binary file behind a stored ``FieldFile``, opened for reading.

    Line iteration over Django's ``File`` wrapper is chunked and slower; the storage's own
    file object reads lines at C speed and seeks (openpyxl needs that).
    """
    with field_file.storage.open(field_file.name, "rb") as handle:
        yield getattr(handle, "file", None) or handle
