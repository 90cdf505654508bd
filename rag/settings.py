"""The one settings object of an index, saved with it so queries use what built it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from rag.errors import InvalidValue

FORMAT_VERSION = 4
DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
DEFAULT_GENERATOR = "gemma-3-270m"


MIN_CHUNK_TOKENS = 16
# An embedder named by one of these is a server (rag.models.embedding_server); the
# same test as rag.models.generation.is_endpoint, which this layer cannot import.
SERVER_PREFIXES = ("http://", "https://")


def check_chunking(tokens: int, overlap: int) -> None:
    """Refuse a chunk size or overlap that chunking cannot work with."""
    if tokens < MIN_CHUNK_TOKENS:
        raise InvalidValue(f"chunk_tokens must be at least {MIN_CHUNK_TOKENS}, got {tokens}")
    if not 0 <= overlap < tokens // 2:
        raise InvalidValue(
            f"chunk_overlap must be between 0 and {tokens // 2 - 1} (under half of "
            f"chunk_tokens {tokens}), got {overlap}"
        )


@dataclass(frozen=True)
class Settings:
    """How an index is built and queried.

    ``embedder`` and the chunking fields decide what the vectors mean, so an index
    refuses to be opened with others. ``generator`` is only the default for answers.
    ``tokenizer`` sizes the chunks of an embedder behind a server, whose own tokenizer
    is out of reach: a Hugging Face tokenizer name or folder, or empty for an
    approximation (see ``rag.models.tokenizers``). A local embedder always chunks
    with its own, so it refuses one.
    """

    embedder: str = DEFAULT_EMBEDDER
    generator: str = DEFAULT_GENERATOR
    chunk_tokens: int = 200
    chunk_overlap: int = 32
    # "flat" (exact), "ivf" (approximate), or "auto": flat below ivf_threshold chunks
    vector_index: str = "auto"
    ivf_threshold: int = 100_000
    # Empty by default: the settings saved by an index made before it lack it.
    tokenizer: str = ""

    def __post_init__(self) -> None:
        if not self.embedder.strip():
            raise InvalidValue("embedder must not be empty")
        if not self.generator.strip():
            raise InvalidValue("generator must not be empty")
        check_chunking(self.chunk_tokens, self.chunk_overlap)
        if self.vector_index not in ("auto", "flat", "ivf"):
            raise InvalidValue(f"vector_index must be auto, flat or ivf, got {self.vector_index!r}")
        if self.ivf_threshold < 1000:
            raise InvalidValue(f"ivf_threshold must be at least 1000, got {self.ivf_threshold}")
        if self.tokenizer and not self.tokenizer.strip():
            raise InvalidValue("tokenizer must be a name or folder, or empty for the approximation")
        if self.tokenizer and not self.embedder.startswith(SERVER_PREFIXES):
            raise InvalidValue(
                f"tokenizer {self.tokenizer!r} is only for an embedder behind a server "
                f"(an http:// or https:// URL); embedder {self.embedder!r} chunks with its "
                "own tokenizer, so give none"
            )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> Settings:
        data: dict[str, Any] = json.loads(raw)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def vector_identity(self) -> dict[str, Any]:
        """The settings that must match for stored vectors to stay valid."""
        return {
            "embedder": self.embedder,
            "chunk_tokens": self.chunk_tokens,
            "chunk_overlap": self.chunk_overlap,
            "tokenizer": self.tokenizer,
        }
