"""The answer-finder: a cross-encoder that says which sentence holds the answer, and where.

It reads a question with one sentence (or passage) and gives two things: how likely
the text is to hold the answer (a calibrated probability), and the best answer span
inside it. It is the packaged all-MiniLM-L6-v2 encoder with a LoRA adapter (``peft``)
and two small heads, trained by ``scripts/train_finder.py`` on SQuAD paragraphs
(CC BY-SA 4.0). Only the adapter and heads ship with rag (``weights/answer-finder``);
the base weights come from the embedder's package, so nothing is downloaded.

>>> finder = AnswerFinder()                                             # doctest: +SKIP
>>> finder.score("Who wrote it?", ["Ann wrote it in 1990.", "It rained."])  # doctest: +SKIP
[0.93, 0.01]
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import InvalidValue, ModelError
from rag.models.batching import by_length
from rag.models.embedder import packaged_embedder_path
from rag.models.lazy import Lazy, quiet_transformers

log = logging.getLogger(__name__)

PACKAGED_FINDER = Path(__file__).parent / "weights" / "answer-finder"
HEADS_FILE = "heads.safetensors"
CARD_FILE = "finder.json"
MAX_TOKENS = 192  # question and text together
MAX_SPAN_TOKENS = 30


@dataclass(frozen=True)
class Span:
    """Characters ``start:end`` of the text scored, and the span's score (log-odds)."""

    start: int
    end: int
    score: float


class AnswerFinder:
    """Scores (question, text) pairs for "holds the answer" and finds the answer span.

    ``path`` is a folder written by ``scripts/train_finder.py``: a peft LoRA adapter,
    ``heads.safetensors`` and ``finder.json`` (its calibration and training card).
    """

    def __init__(self, path: str | Path = PACKAGED_FINDER, *, batch_size: int = 32) -> None:
        self.path = Path(path)
        if batch_size <= 0:
            raise InvalidValue(f"batch_size must be greater than 0, got {batch_size}")
        self.name = str(path)
        self.batch_size = batch_size
        self._model: Lazy[tuple[Any, Any, dict[str, Any]]] = Lazy(self._load)

    @property
    def card(self) -> dict[str, Any]:
        """What ``finder.json`` says: calibration, held-out articles, training figures."""
        return self._model.get()[2]

    def _load(self) -> tuple[Any, Any, dict[str, Any]]:
        return _loaded(self.path.resolve())

    def _run(self, question: str, texts: Sequence[str]) -> list[tuple[float, Span]]:
        import torch

        model, tokenizer, card = self._model.get()
        scale, bias = card["calibration"]["scale"], card["calibration"]["bias"]
        out: dict[int, tuple[float, Span]] = {}
        for indices in by_length(texts, max_items=self.batch_size):
            batch = [plain(texts[i]) for i in indices]
            enc, offsets, second = encode_pairs(tokenizer, [question] * len(batch), batch)
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                logit, start, end = model(**enc)
            for row, i in enumerate(indices):
                span = best_span(start[row].float(), end[row].float(), second[row], offsets[row])
                z = scale * float(logit[row]) + bias
                out[i] = (1.0 / (1.0 + math.exp(-z)), span)
        return [out[i] for i in range(len(texts))]

    def score(self, question: str, texts: Sequence[str]) -> list[float]:
        """The probability that each text holds the answer to ``question``."""
        return [p for p, _ in self._run(question, texts)] if texts else []

    def find(self, question: str, texts: Sequence[str]) -> list[tuple[float, Span]]:
        """Each text's probability of holding the answer, with its best answer span."""
        return self._run(question, texts) if texts else []


# Markdown markup the finder never saw in training: emphasis, code ticks, bullets.
_MARKUP = re.compile(r"\*\*|__|`+|^\s*(?:[-*+]|\d+[.)])\s|^#{1,6}\s", re.M)


def plain(text: str) -> str:
    """``text`` with Markdown markup blanked out, every character kept in place (so that
    offsets into it are offsets into ``text``).

    >>> plain("- The **discriminator** is a `classifier`.")
    '  The   discriminator   is a  classifier .'
    """
    return _MARKUP.sub(lambda m: " " * len(m.group()), text)


@functools.lru_cache(maxsize=4)
def _loaded(path: Path) -> tuple[Any, Any, dict[str, Any]]:
    """The model, tokenizer and card in ``path``, loaded once per process (read-only)."""
    if not (path / CARD_FILE).is_file():
        raise ModelError(
            f"no answer-finder in {path}: {CARD_FILE} is missing. Train one with "
            "scripts/train_finder.py or reinstall rag"
        )
    quiet_transformers()
    try:
        card = json.loads((path / CARD_FILE).read_text())
        base = card.get("base") or packaged_embedder_path()
        with warnings.catch_warnings():  # peft calls an API transformers deprecates
            warnings.simplefilter("ignore", FutureWarning)
            model = FinderModel.load(path, base)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(base)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise ModelError(f"cannot load the answer-finder from {path}: {e}") from e
    log.info("answer-finder loaded from %s", path)
    return model, tokenizer, card


def encode_pairs(
    tokenizer: Any, questions: Sequence[str], texts: Sequence[str]
) -> tuple[Any, Any, Any]:
    """The finder's input, as in training and in use: (question, text) pairs cut to
    MAX_TOKENS, padded; with each token's character offsets, and a mask of the tokens
    of the text (where a span may be)."""
    import torch

    enc = tokenizer(
        list(questions), list(texts), truncation="longest_first", max_length=MAX_TOKENS,
        padding=True, return_offsets_mapping=True, return_tensors="pt",
    )  # fmt: skip
    offsets = enc.pop("offset_mapping")
    second = torch.tensor([[sid == 1 for sid in enc.sequence_ids(i)] for i in range(len(texts))])
    return enc, offsets, second


def best_span(start: Any, end: Any, allowed: Any, offsets: Any) -> Span:
    """The highest-scoring span (start ≤ end, at most MAX_SPAN_TOKENS) of allowed tokens."""
    import torch

    low = torch.finfo(start.dtype).min / 4
    s = torch.where(allowed, start, torch.full_like(start, low))
    e = torch.where(allowed, end, torch.full_like(end, low))
    grid = s[:, None] + e[None, :]
    n = grid.shape[0]
    keep = torch.triu(torch.ones(n, n, dtype=torch.bool)) & ~torch.triu(
        torch.ones(n, n, dtype=torch.bool), diagonal=MAX_SPAN_TOKENS
    )
    grid = torch.where(keep, grid, torch.full_like(grid, low))
    flat = int(torch.argmax(grid))
    i, j = divmod(flat, n)
    return Span(int(offsets[i][0]), int(offsets[j][1]), float(grid[i, j]))


def _pooled(hidden: Any, mask: Any) -> Any:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class FinderModel:
    """The encoder (with its adapter) and the two heads, as one callable.

    Built on demand so that importing rag does not import torch.
    """

    def __init__(self, encoder: Any, relevance: Any, span: Any) -> None:
        self.encoder, self.relevance, self.span = encoder, relevance, span

    @classmethod
    def fresh(cls, base: str, *, rank: int, alpha: int, dropout: float) -> FinderModel:
        """A new model for training: LoRA on every attention and feed-forward layer."""
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModel

        encoder = AutoModel.from_pretrained(base, add_pooling_layer=False)
        config = LoraConfig(
            r=rank, lora_alpha=alpha, lora_dropout=dropout,
            target_modules=["query", "key", "value", "dense"],
        )  # fmt: skip
        width = encoder.config.hidden_size
        return cls(get_peft_model(encoder, config), torch.nn.Linear(width, 1),
                   torch.nn.Linear(width, 2))  # fmt: skip

    @classmethod
    def load(cls, folder: Path, base: str) -> FinderModel:
        """The shipped model, its adapter merged into the base weights for speed."""
        import torch
        from peft import PeftModel
        from safetensors.torch import load_file
        from transformers import AutoModel

        encoder = AutoModel.from_pretrained(base, add_pooling_layer=False)
        encoder = PeftModel.from_pretrained(encoder, str(folder)).merge_and_unload()
        encoder.eval()
        heads = load_file(str(folder / HEADS_FILE))
        width = encoder.config.hidden_size
        relevance, span = torch.nn.Linear(width, 1), torch.nn.Linear(width, 2)
        relevance.load_state_dict({"weight": heads["relevance.weight"],
                                   "bias": heads["relevance.bias"]})  # fmt: skip
        span.load_state_dict({"weight": heads["span.weight"], "bias": heads["span.bias"]})
        return cls(encoder, relevance, span)

    def parameters(self) -> list[Any]:
        trainable = [p for p in self.encoder.parameters() if p.requires_grad]
        return [*trainable, *self.relevance.parameters(), *self.span.parameters()]

    def train(self, mode: bool = True) -> None:
        for part in (self.encoder, self.relevance, self.span):
            part.train(mode)

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(str(folder))
        heads = {f"relevance.{k}": v for k, v in self.relevance.state_dict().items()}
        heads.update({f"span.{k}": v for k, v in self.span.state_dict().items()})
        save_file({k: v.contiguous() for k, v in heads.items()}, str(folder / HEADS_FILE))

    def __call__(self, **enc: Any) -> tuple[Any, Any, Any]:
        """Relevance logit per pair, and start and end logits per token."""
        hidden = self.encoder(
            input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
            token_type_ids=enc.get("token_type_ids"),
        ).last_hidden_state  # fmt: skip
        logit = self.relevance(_pooled(hidden, enc["attention_mask"])).squeeze(-1)
        start, end = self.span(hidden).unbind(-1)
        return logit, start, end
