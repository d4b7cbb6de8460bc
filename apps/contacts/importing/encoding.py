"""Which text encoding a CSV is in, and decoding it line by line without guessing twice.

Chinese Excel saves "CSV" in GBK (strictly, the system code page 936); newer Excel offers
"CSV UTF-8", which starts with a byte-order mark. We accept UTF-8 with or without the
mark, and GB18030, which is a superset of GBK (and of GB2312), so one decoder reads all
three. Anything else (UTF-16, Big5, binary) is refused with a message saying how to save
the file.

The encoding is guessed from a sample, then *proved* on the whole file by a streaming
pass (``decoded_lines``): a file whose first 64 KB are plain ASCII and whose row 90 000
holds GBK bytes is found out there, and named by line and byte offset.

Lines are split on the byte ``\\n``. That is safe for both encodings: in UTF-8 and in
GB18030 no byte of a multi-byte character is ever 0x0A or 0x0D.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator

from django.utils.translation import gettext as _

from apps.contacts.importing.files import ImportFileError

UTF8 = "utf-8"
UTF8_BOM = "utf-8-sig"
GB18030 = "gb18030"

LABELS = {UTF8: "UTF-8", UTF8_BOM: "UTF-8 (BOM)", GB18030: "GBK / GB18030"}


class FileDecodeError(ImportFileError):
    """A line of the file is not valid in the encoding we settled on."""

    def __init__(self, *, line: int, offset: int, encoding: str) -> None:
        self.line, self.offset, self.encoding = line, offset, encoding
        super().__init__(
            _(
                "The file is not valid %(encoding)s text: line %(line)d (byte %(offset)d) "
                "cannot be read. Save the file again as “CSV UTF-8” and import it again."
            )
            % {"encoding": LABELS.get(encoding, encoding), "line": line, "offset": offset}
        )


def _decodes(sample: bytes, codec: str) -> bool:
    # Incremental, not final: the sample may end in the middle of a character.
    try:
        codecs.getincrementaldecoder(codec)(errors="strict").decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(sample: bytes) -> str:
    """``utf-8-sig``, ``utf-8`` or ``gb18030`` for a file starting with ``sample``."""
    if sample.startswith(codecs.BOM_UTF8):
        return UTF8_BOM
    if _decodes(sample, UTF8):
        return UTF8
    if _decodes(sample, GB18030):
        return GB18030
    raise ImportFileError(
        _(
            "The file's text is neither UTF-8 nor GBK/GB18030. Save it as “CSV UTF-8” "
            "or as an Excel workbook and import it again."
        )
    )


def decoded_lines(lines: Iterable[bytes], encoding: str) -> Iterator[str]:
    """Each line of ``lines`` decoded strictly; FileDecodeError names the first bad one."""
    codec = UTF8 if encoding == UTF8_BOM else encoding
    offset = 0
    for number, raw in enumerate(lines, start=1):
        if number == 1 and encoding == UTF8_BOM and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
            offset = len(codecs.BOM_UTF8)
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError as exc:
            raise FileDecodeError(
                line=number, offset=offset + exc.start, encoding=encoding
            ) from None
        offset += len(raw)
        yield text
