"""Search filters: which documents a search may return.

>>> Where.parse(["path=guides/*.md", "year=2020"])
Where(path='guides/*.md', kind=None, metadata={'year': 2020})
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rag.errors import InvalidValue

_FIELD = re.compile(r"^[A-Za-z_][\w.-]*$")


@dataclass(frozen=True)
class Where:
    """Conditions a document must meet, all of them.

    ``path`` is a glob over the document id (the path relative to the indexed folder,
    or a JSONL id): ``*`` matches any run of characters, ``/`` included, ``?`` one.
    ``kind`` is a file type (``markdown``, ``pdf``, ``html``, ... or a suffix such as
    ``md``). ``metadata`` maps JSONL fields to the value they must equal.
    """

    path: str | None = None
    kind: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in self.metadata:
            if not _FIELD.match(key):
                raise InvalidValue(f"metadata field names are letters, digits, _ . -; got {key!r}")
        if self.kind is not None:
            object.__setattr__(self, "kind", _kind(self.kind))

    @classmethod
    def of(cls, value: Where | Mapping[str, Any] | None) -> Where | None:
        """A Where from a Where, or a dict with ``path``, ``type`` and metadata fields."""
        if value is None or isinstance(value, Where):
            return value
        rest = dict(value)
        path, kind = rest.pop("path", None), rest.pop("type", rest.pop("kind", None))
        return cls(path, kind, rest)

    @classmethod
    def parse(cls, clauses: Sequence[str]) -> Where | None:
        """From ``field=value`` clauses; a value that reads as JSON (numbers, true) is one."""
        if not clauses:
            return None
        values: dict[str, Any] = {}
        for clause in clauses:
            key, sep, raw = clause.partition("=")
            if not sep or not key.strip():
                raise InvalidValue(
                    f"a filter is FIELD=VALUE (path=*.md, type=pdf, year=2020), got {clause!r}"
                )
            try:
                value: Any = json.loads(raw)
            except json.JSONDecodeError:
                value = raw
            if key.strip() in ("path", "type", "kind"):
                value = raw
            values[key.strip()] = value
        return cls.of(values)


def _kind(value: str) -> str:
    from rag.readers import SUFFIX_KINDS

    kinds = set(SUFFIX_KINDS.values())
    if value in kinds:
        return value
    suffix = "." + value.lstrip(".").lower()
    if suffix in SUFFIX_KINDS:
        return SUFFIX_KINDS[suffix]
    raise InvalidValue(f"unknown file type {value!r}; use one of {', '.join(sorted(kinds))}")
