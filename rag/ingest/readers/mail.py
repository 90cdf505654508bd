"""E-mail: one message (.eml) or a mailbox of them (.mbox), with the standard library.

Each message is a part (unit ``message``) named by its subject: the subject as a ``#``
heading, the From, To, Cc and Date headers as lines, then the plain-text body (or the
HTML body's text when there is no plain one) and the names of its attachments.
"""

from __future__ import annotations

import email
import logging
import mailbox
from email import policy
from email.message import EmailMessage, Message
from pathlib import Path

from rag.errors import ReadError
from rag.ingest.readers.files import MAX_DOCUMENT_BYTES, parsing, read_bytes, stat_file
from rag.ingest.readers.html import html_text
from rag.ingest.readers.parts import Parts
from rag.types import Document

logger = logging.getLogger(__name__)

_HEADERS = ("From", "To", "Cc", "Date")


def read_eml(path: Path, doc_id: str) -> Document:
    data = read_bytes(path, MAX_DOCUMENT_BYTES)
    message = email.message_from_bytes(data, policy=policy.default)
    if not any(_header(message, h) for h in (*_HEADERS, "Subject")):
        raise ReadError(str(path), "not an e-mail message: no From, To, Date or Subject header")
    parts = Parts(path, "message")
    with parsing(path, "e-mail"):
        subject, text = message_text(path, message)
    parts.add(text, subject)
    return parts.document(doc_id, "email", subject, "empty message")


def read_mbox(path: Path, doc_id: str) -> Document:
    size = stat_file(path).st_size
    if size > MAX_DOCUMENT_BYTES:
        raise ReadError(
            str(path),
            f"file is {size:,} bytes, over the {MAX_DOCUMENT_BYTES:,} byte limit; "
            "split the mailbox into smaller ones",
        )
    parts = Parts(path, "message")
    with parsing(path, "mailbox"):
        box = mailbox.mbox(path, create=False)
        try:
            for key in box.iterkeys():
                message = email.message_from_bytes(box.get_bytes(key), policy=policy.default)
                subject, text = message_text(path, message)
                if not parts.add(text, subject):
                    break
        finally:
            box.close()
    if not len(parts):
        raise ReadError(str(path), "no messages (an mbox file starts each one with 'From ')")
    return parts.document(doc_id, "email", "", "no text in any message")


def message_text(path: Path, message: Message) -> tuple[str, str]:
    """(subject, text) of one message."""
    subject = " ".join(_header(message, "Subject").split())
    lines = [f"# {subject or '(no subject)'}", ""]
    lines += [f"{h}: {v}" for h in _HEADERS if (v := " ".join(_header(message, h).split()))]
    text = [
        "\n".join(lines),
        _body(path, message),
    ]
    attachments = _attachments(message)
    if attachments:
        text.append("Attachments: " + ", ".join(attachments))
    return subject, "\n\n".join(t for t in text if t)


def _header(message: Message, name: str) -> str:
    try:
        return str(message.get(name, "") or "")
    except Exception:  # a malformed header the parser chokes on: its raw value
        raw = next((v for k, v in message.raw_items() if k.lower() == name.lower()), "")
        return str(raw)


def _body(path: Path, message: Message) -> str:
    if not isinstance(message, EmailMessage):
        return ""
    for kind in ("plain", "html"):
        part = message.get_body(preferencelist=(kind,))
        if part is None:
            continue
        text = _content(part)
        if kind == "html":
            text = html_text(path, text)[1]
        text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
        if text:
            return text
    return ""


def _content(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            return content
    except Exception:  # an unknown or wrong charset: decode as UTF-8, marking bad bytes
        pass
    payload = part.get_payload(decode=True)
    return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def _attachments(message: Message) -> list[str]:
    if not isinstance(message, EmailMessage):
        return []
    names = []
    for part in message.iter_attachments():
        name = part.get_filename() or part.get_content_type()
        names.append(" ".join(str(name).split()))
    return names
