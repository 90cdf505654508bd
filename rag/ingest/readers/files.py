"""A file's bytes and text, within the size limits every reader applies.

Text formats are refused over ``MAX_FILE_BYTES``. Binary document formats (PDF, Office,
e-books, notebooks, e-mail) are refused over ``MAX_DOCUMENT_BYTES``: their bytes are
mostly images, fonts and attachments, so they may be far larger than their text.
"""

from __future__ import annotations

import codecs
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.errors import ReadError

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_DOCUMENT_BYTES = 200 * 1024 * 1024
_SNIFF_BYTES = 8 * 1024


def stat_file(path: Path) -> os.stat_result:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ReadError(str(path), "no such file") from None
    except OSError as err:
        raise ReadError(str(path), os_reason(err)) from None
    if not stat.S_ISREG(st.st_mode):
        raise ReadError(str(path), "not a regular file")
    return st


def os_reason(err: OSError) -> str:
    if isinstance(err, PermissionError):
        return "permission denied; check the file's read permission"
    return f"cannot read file: {err.strerror or err}"


def read_bytes(path: Path, limit: int | None = None) -> bytes:
    """The whole file, refusing files over ``limit`` (``MAX_FILE_BYTES`` when None)
    before reading them into memory."""
    limit = MAX_FILE_BYTES if limit is None else limit
    size = stat_file(path).st_size
    too_big = f"file is {size:,} bytes, over the {limit:,} byte limit; split it into smaller files"
    if size > limit:
        raise ReadError(str(path), too_big)
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as err:
        raise ReadError(str(path), os_reason(err)) from None
    if len(data) > limit:  # the file grew after stat
        raise ReadError(str(path), too_big)
    return data


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode(path: Path, data: bytes) -> str:
    """Text of ``data``: by its byte-order mark if it has one, else strict UTF-8."""
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8")
    if encoding in ("utf-8", "utf-8-sig") and b"\0" in data[:_SNIFF_BYTES]:
        raise ReadError(str(path), "binary content, not text")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        name = encoding.upper().removesuffix("-SIG")
        raise ReadError(
            str(path), f"not valid {name} text (byte offset {err.start}); convert it to UTF-8"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def library_reason(what: str, err: BaseException) -> str:
    """A one-line reason for a library's failure to parse a damaged file of kind ``what``."""
    message = " ".join(str(err).split()) or type(err).__name__
    message = message if len(message) <= 200 else message[:197] + "..."
    return f"cannot parse {what} ({message}); the file may be damaged or truncated"


@contextmanager
def parsing(path: Path, what: str) -> Iterator[None]:
    """Inside it, a library's failure to parse ``path`` (a file of kind ``what``) becomes
    a ``ReadError`` with a one-line reason; a ``ReadError`` passes through as it is.

    The libraries raise many exception types for damaged files, so any is caught.
    """
    try:
        yield
    except ReadError:
        raise
    except Exception as err:
        raise ReadError(str(path), library_reason(what, err)) from None
