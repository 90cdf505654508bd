"""Where an index lives: a folder (SQLite and FAISS files) or a PostgreSQL URL.

>>> Location.of("my-index").kind
'folder'
>>> loc = Location.of("postgresql://rag:secret@db.example/team?schema=papers")
>>> loc.kind, loc.schema, loc.display
('postgresql', 'papers', 'postgresql://rag:***@db.example/team?schema=papers')

A URL names a database; ``?schema=NAME`` (default ``rag``) names the index inside it,
so several indexes can share one database, one PostgreSQL schema each. Every other
query parameter (``host=/run/postgresql``, ``sslmode=require``...) goes to the driver.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from rag.errors import InvalidValue

FOLDER, POSTGRESQL = "folder", "postgresql"
DEFAULT_SCHEMA = "rag"
_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
# A schema name is used as it is in SQL and in the search path; keep it plain, lower case.
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Query parameters of a URL that hold secrets (libpq's names).
_SECRETS = ("password", "sslpassword")


def is_url(text: str) -> bool:
    """Whether ``text`` names a database rather than a folder."""
    return "://" in text and text.split("://", 1)[0].lower() in _SCHEMES


@dataclass(frozen=True)
class Location:
    """A folder, or a PostgreSQL database URL and the schema holding the index."""

    kind: str
    folder: Path | None = None
    url: str = ""  # the driver URL, without our own parameters
    schema: str = ""

    @classmethod
    def of(cls, where: str | os.PathLike[str] | Location) -> Location:
        if isinstance(where, Location):
            return where
        text = os.fspath(where)
        if not is_url(text):
            return cls(FOLDER, folder=Path(text))
        parts = urlsplit(text)
        params = parse_qsl(parts.query, keep_blank_values=True)
        schema = next((v for k, v in params if k == "schema"), DEFAULT_SCHEMA)
        if not _SCHEMA_NAME.fullmatch(schema):
            raise InvalidValue(
                f"schema must be a plain name (lower-case letters, digits, underscores; "
                f"at most 63), "
                f"got {schema!r} in {mask(text)}"
            )
        rest = urlencode([(k, v) for k, v in params if k != "schema"], safe="/")
        driver = urlunsplit(("postgresql+psycopg", parts.netloc, parts.path, rest, ""))
        return cls(POSTGRESQL, url=driver, schema=schema)

    @property
    def display(self) -> str:
        """How messages name the index: the folder, or the URL with its password hidden."""
        if self.folder is not None:
            return str(self.folder)
        parts = urlsplit(self.url)
        query = "&".join(p for p in (parts.query, f"schema={self.schema}") if p)
        return mask(urlunsplit(("postgresql", parts.netloc, parts.path, query, "")))

    def __str__(self) -> str:
        return self.display


def mask(url: str) -> str:
    """``url`` with any password (in the address or the query) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    params = parse_qsl(parts.query, keep_blank_values=True)
    query = parts.query
    if any(k in _SECRETS for k, _ in params):
        shown = [(k, "***" if k in _SECRETS else v) for k, v in params]
        query = urlencode(shown, safe="/*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
