"""What kind of file was uploaded, judged by its name *and* its first bytes, and how big
it may be.

A name alone is not enough: Excel users rename files, and a ``.csv`` that is really a
workbook (or a workbook that is really an old ``.xls``) would otherwise fail deep inside
the job with an unreadable error. Each refusal says what to do instead.
"""

from __future__ import annotations

import codecs
import zipfile
from pathlib import PurePath
from typing import IO

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

# Upload limit unless settings.CONTACT_IMPORT_MAX_BYTES says otherwise: about 1 M rows of
# a typical contact CSV, and an upload a browser finishes in reasonable time.
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
# How much of the file the type and encoding sniffers look at.
SAMPLE_BYTES = 64 * 1024

CSV = "csv"
XLSX = "xlsx"
EXTENSIONS = {".csv": CSV, ".txt": CSV, ".xlsx": XLSX}

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # old .xls / .doc


class ImportFileError(ValueError):
    """The file cannot be imported; ``str()`` says why and what to do, for the user."""


def max_file_bytes() -> int:
    return int(getattr(settings, "CONTACT_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES))


def check_size(size: int | None) -> None:
    limit = max_file_bytes()
    if not size:
        raise ImportFileError(_("The file is empty."))
    if size > limit:
        raise ImportFileError(
            _(
                "The file is %(size)s; files up to %(limit)s can be imported. "
                "Split it into smaller files."
            )
            % {"size": filesizeformat(size), "limit": filesizeformat(limit)}
        )


def sniff_file_type(name: str, fileobj: IO[bytes]) -> str:
    """``csv`` or ``xlsx`` for a file called ``name``; ImportFileError otherwise.

    Reads the first bytes (and, for a workbook, the zip directory) and rewinds.
    """
    extension = PurePath(name).suffix.lower()
    fileobj.seek(0)
    head = fileobj.read(SAMPLE_BYTES)
    fileobj.seek(0)
    if extension == ".xls" or head.startswith(_OLE_MAGIC):
        raise ImportFileError(
            _(
                "Old Excel files (.xls) cannot be imported. In Excel choose Save As and "
                "pick “Excel Workbook (.xlsx)” or “CSV UTF-8”."
            )
        )
    kind = EXTENSIONS.get(extension)
    if kind is None:
        raise ImportFileError(
            _("“%(name)s” is not a file type we can import: use a .csv, .txt or .xlsx file.")
            % {"name": name}
        )
    if not head:
        raise ImportFileError(_("The file is empty."))
    if kind == XLSX:
        if not head.startswith(_ZIP_MAGIC):
            raise ImportFileError(
                _("“%(name)s” is named .xlsx but is not an Excel workbook.") % {"name": name}
            )
        _check_workbook(name, fileobj)
        return XLSX
    if head.startswith(_ZIP_MAGIC):
        raise ImportFileError(
            _("“%(name)s” is an Excel workbook, not a CSV: rename it to .xlsx or save it as CSV.")
            % {"name": name}
        )
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileError(
            _(
                "The file is UTF-16 text (Excel's “Unicode text”). Save it as “CSV UTF-8” "
                "or as an Excel workbook instead."
            )
        )
    if b"\x00" in head:
        raise ImportFileError(
            _("“%(name)s” is not a text file; save it as CSV or as an Excel workbook.")
            % {"name": name}
        )
    return CSV


def _check_workbook(name: str, fileobj: IO[bytes]) -> None:
    try:
        with zipfile.ZipFile(fileobj) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        names = set()
    finally:
        fileobj.seek(0)
    if "xl/workbook.xml" not in names:
        raise ImportFileError(
            _("“%(name)s” is damaged or is not an Excel workbook.") % {"name": name}
        )
