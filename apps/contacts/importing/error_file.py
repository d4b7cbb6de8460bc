"""The downloadable list of bad rows: one line per bad cell (or per bad row, when the
problem is the row as a whole), with the row number Excel shows, the column, the value and
the reason.

CSV in UTF-8 *with* a byte-order mark: without it, Chinese Excel opens the file as GBK and
shows mojibake. The header is bilingual so people and scripts both find their way.
Written to a local temporary file while the job runs (never held in memory), then saved
to ``ContactImport.error_file``.
"""

from __future__ import annotations

import codecs
import csv
import io
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

from apps.contacts.importing.rows import CellError

HEADER = ("行号/row", "列/column", "值/value", "原因/reason")


class ErrorFileWriter:
    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.file.write(codecs.BOM_UTF8)
        self._text = io.TextIOWrapper(self.file, encoding="utf-8", newline="", write_through=True)
        self._csv = csv.writer(self._text)
        self._csv.writerow(HEADER)
        self.lines = 0

    def add(self, errors: Iterable[CellError]) -> None:
        for e in errors:
            self._csv.writerow((e.row, e.column, e.value, e.reason))
            self.lines += 1

    def rewound(self) -> IO[bytes]:
        """The finished file, positioned at its start, for saving to storage."""
        self._text.flush()
        self.file.seek(0)
        return self.file

    def close(self) -> None:
        self._text.detach()
        self.file.close()


def read_errors(binary: IO[bytes], *, after: int = 0, limit: int = 50) -> Iterator[dict[str, Any]]:
    """Error lines from a stored error file, from line ``after + 1`` on (1 = first line
    after the header), at most ``limit`` of them; each with its ``line`` number."""
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    next(reader, None)
    given = 0
    for line, record in enumerate(reader, start=1):
        if line <= after:
            continue
        if given >= limit:
            return
        row, column, value, reason = [*record, "", "", "", ""][:4]
        yield {
            "line": line,
            "row": int(row) if row.isdigit() else None,
            "column": column,
            "value": value,
            "reason": reason,
        }
        given += 1
