"""JSONL corpora: one document per line, ``{"_id" or "id", "text", "title"?, ...}``."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from rag.errors import ReadError
from rag.ingest.readers.files import MAX_FILE_BYTES, os_reason, stat_file
from rag.types import Document

MAX_LINE_BYTES = MAX_FILE_BYTES


def read_jsonl(path: Path, doc_id: str) -> Iterator[Document | ReadError]:
    """The documents of a JSONL corpus, one a line; each bad line is yielded as a
    ``ReadError`` naming ``path:line``. ``doc_id`` is unused: each line has its own."""
    stat_file(path)  # a missing or unreadable file fails now, not on the first next()
    return _documents(path)


def _documents(path: Path) -> Iterator[Document | ReadError]:
    try:
        f = path.open("rb")
    except OSError as err:
        raise ReadError(str(path), os_reason(err)) from None
    seen: dict[str, int] = {}
    with f:
        for lineno, raw in enumerate(_lines(f, MAX_LINE_BYTES), 1):
            where = f"{path}:{lineno}"
            if raw is None:
                yield ReadError(where, f"line is over the {MAX_LINE_BYTES:,} byte limit")
                continue
            if lineno == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                yield ReadError(where, f"not valid UTF-8 (byte offset {err.start} in the line)")
                continue
            if not line.strip():
                continue
            try:
                doc = _jsonl_document(line, path)
            except ValueError as err:
                yield ReadError(where, str(err))
                continue
            if doc.doc_id in seen:
                yield ReadError(
                    where, f"duplicate id {doc.doc_id!r} (first on line {seen[doc.doc_id]})"
                )
                continue
            seen[doc.doc_id] = lineno
            yield doc


def _lines(f: BinaryIO, limit: int) -> Iterator[bytes | None]:
    """Lines of ``f``, with ``None`` in place of a line longer than ``limit`` bytes."""
    while line := f.readline(limit + 1):
        if len(line) > limit and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):  # skip the rest without holding it
                line = f.readline(1024 * 1024)
            yield None
        else:
            yield line


_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number"}


def _json_type(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "null" if value is None else "boolean"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _jsonl_document(line: str, path: Path) -> Document:
    """The document of one JSONL line; ValueError says what is wrong with the line."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"invalid JSON: {err.msg} (column {err.colno})") from None
    except RecursionError:
        raise ValueError("invalid JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {_json_type(obj)}")
    key = "_id" if "_id" in obj else "id"
    if key not in obj:
        raise ValueError("missing '_id' or 'id'")
    doc_id = obj[key]
    if isinstance(doc_id, int) and not isinstance(doc_id, bool):
        doc_id = str(doc_id)
    if not isinstance(doc_id, str):
        raise ValueError(f"'{key}' must be a string or integer, got {_json_type(doc_id)}")
    if not doc_id.strip():
        raise ValueError(f"empty '{key}'")
    if "text" not in obj:
        raise ValueError("missing 'text'")
    text = obj["text"]
    if not isinstance(text, str):
        raise ValueError(f"'text' must be a string, got {_json_type(text)}")
    if not text.strip():
        raise ValueError("empty text")
    title = obj.get("title")
    if title is None:
        title = ""
    if not isinstance(title, str):
        raise ValueError(f"'title' must be a string, got {_json_type(title)}")
    metadata = {k: v for k, v in obj.items() if k not in (key, "text", "title")}
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return Document(doc_id, str(path), text, "jsonl", title, metadata)
