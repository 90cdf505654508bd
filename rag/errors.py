"""The exceptions the library raises: one base class, a few kinds a caller can act on."""

from __future__ import annotations


class RagError(Exception):
    """Base of every error raised on purpose by this package."""


class InvalidValue(RagError, ValueError):
    """An argument or setting has a value the library cannot use."""


class IndexNotFound(RagError):
    """No index exists at the given path."""


class IndexMismatch(RagError):
    """The index was built with settings (embedder, chunking) other than the ones asked for."""


class IndexCorrupt(RagError):
    """The index files are damaged or disagree with each other."""


class IndexLocked(RagError):
    """Another process is writing to the index."""


class ReadError(RagError):
    """A document file could not be read or parsed.

    ``path`` names the file (with ``:line`` for one bad line of a JSONL file) and
    ``reason`` says what was wrong, so an ingest report can list both.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class ModelError(RagError):
    """A model could not be found, loaded or run."""


class DatabaseUnavailable(RagError):
    """The database server holding an index cannot be reached or refused the login."""


class SourceChanged(RagError):
    """A document's file no longer holds the text that was indexed from it."""
