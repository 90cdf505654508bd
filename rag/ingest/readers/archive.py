"""Zip-packaged documents (Office Open XML, EPUB): checked before a library opens them.

A password-protected Office file is not a zip package at all but an OLE compound file
holding the encrypted package; so is an old binary .doc/.xls/.ppt given a new suffix.
A zip package is refused when it would unpack to more than ``MAX_UNZIPPED_BYTES`` (the
sizes its directory declares, which Python's zip reader holds each member to).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from rag.errors import ReadError
from rag.ingest.readers.files import MAX_DOCUMENT_BYTES, read_bytes

MAX_UNZIPPED_BYTES = 512 * 1024 * 1024
OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
# Stream names in an OLE file's directory are UTF-16: an encrypted OOXML package sits
# in "EncryptedPackage" next to "EncryptionInfo"; the old binary formats have these.
_ENCRYPTED = "EncryptionInfo".encode("utf-16-le")
_LEGACY = tuple(n.encode("utf-16-le") for n in ("WordDocument", "Workbook", "PowerPoint Document"))
_OFFICE = frozenset({"DOCX", "PPTX", "XLSX"})
PASSWORD_PROTECTED = (
    "password-protected (encrypted) Office file; remove the password and index it again"
)


def read_package(path: Path, kind: str) -> tuple[bytes, list[zipfile.ZipInfo]]:
    """The bytes of a zip-packaged ``kind`` file (``DOCX``, ``EPUB``...) and its members."""
    data = read_bytes(path, MAX_DOCUMENT_BYTES)
    if data.startswith(OLE_MAGIC) and kind in _OFFICE:
        raise ReadError(str(path), _ole_reason(data, kind))
    if not data:
        raise ReadError(str(path), "empty file")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            members = package.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        raise ReadError(
            str(path),
            f"not a readable {kind} file: not a complete zip package (damaged, truncated, "
            "or another format with this suffix); get a fresh copy",
        ) from None
    unpacked = sum(m.file_size for m in members)
    if unpacked > MAX_UNZIPPED_BYTES:
        raise ReadError(
            str(path),
            f"unpacks to {unpacked:,} bytes, over the {MAX_UNZIPPED_BYTES:,} byte limit "
            "(a zip bomb?); split the document if it is genuine",
        )
    return data, members


def _ole_reason(data: bytes, kind: str) -> str:
    if _ENCRYPTED not in data and any(name in data for name in _LEGACY):
        return (
            f"an old binary Office file (.doc, .xls or .ppt), not {kind}; open it and "
            f"save it as .{kind.lower()}"
        )
    return PASSWORD_PROTECTED
