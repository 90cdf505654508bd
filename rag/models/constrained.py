"""Constrained decoding: a logits processor that only lets a model copy a span.

Given source texts, the completion may only be a contiguous span of one of them,
starting and ending at word boundaries, white space aside. The greedy choice is then
the model's best span, never a paraphrase.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rag.errors import InvalidValue
from rag.models.generation import CopyFrom, cut_at_stop
from rag.text import says_something, span_pattern, squeeze

# How many of the model's best tokens are tried at each step, besides those that
# continue a span where the sources have it.
TOP_TOKENS = 48


def copy_constraint(tokenizer: Any, start: int, copy: CopyFrom, stops: Sequence[str]) -> Any:
    """A logits processor that only lets the completion be a span of one of the sources.

    Candidates at each step are the model's top tokens plus the tokens that continue
    the span where the sources have it (so a span never dead-ends because the model
    prefers a differently split token). A candidate is allowed when the text it
    makes, up to any stop string, occurs in a source (white space squeezed) starting
    at a word boundary. Ending (EOS or a stop string) is allowed when the span also
    ends at a word boundary there and holds a word that is not a function word. With
    no candidate left, only ending is. Discouraged words lose ``copy.penalty`` logits.
    """
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList

    texts = [squeeze(s) for s in copy.sources if s.strip()]
    if not texts:
        raise InvalidValue("copy_from must hold at least one non-empty text")
    eos = tokenizer.eos_token_id
    ends = {eos} if isinstance(eos, int) else set(eos or [])
    discouraged = {w.lower() for w in copy.discouraged}

    def occurs(span: str, whole: bool) -> bool:
        pattern = span_pattern(span, whole=whole)
        return any(pattern.search(t) for t in texts)

    def complete(span: str) -> bool:
        return bool(span) and says_something(span) and occurs(span, whole=True)

    spaced = [" " + t for t in texts]
    first_tokens = {
        t for ids in tokenizer(spaced, add_special_tokens=False)["input_ids"] for t in ids
    }

    def follows(so_far: str) -> set[int]:
        """The first token of what follows ``so_far`` at each place a source has it.

        Text after a span that ends inside a source token (``a`` of ``and``) is
        tokenized afresh, so every span the sources allow can still be completed.
        """
        if not so_far:
            return first_tokens
        pattern = span_pattern(so_far, whole=False)
        rests = {t[m.end() : m.end() + 24] for t in texts for m in pattern.finditer(t)}
        firsts = (
            tokenizer([r for r in rests if r], add_special_tokens=False)["input_ids"]
            if any(rests)
            else []
        )
        return {ids[0] for ids in firsts if ids}

    def allowed(done: list[int], best: list[int]) -> list[int]:
        so_far = squeeze(tokenizer.decode(done, skip_special_tokens=True))
        following = follows(so_far)
        out: list[int] = []
        for token in dict.fromkeys(best + sorted(following)):
            if token in ends:
                continue
            text = tokenizer.decode([*done, token], skip_special_tokens=True)
            head, stopped = cut_at_stop(text, stops)
            span = squeeze(head)
            if stopped:
                ok = complete(span)
            elif span == so_far:  # white space alone, only where the sources have it
                ok = token in following
            else:
                ok = occurs(span, whole=False)
            if ok:
                out.append(token)
        if complete(so_far):
            out.extend(sorted(ends))
        # a model without an end-of-sequence token still gets one token to go on with
        return out or sorted(ends) or best[:1]

    class _Copy(LogitsProcessor):
        def __call__(self, input_ids: Any, scores: Any) -> Any:
            mask = torch.full_like(scores, float("-inf"))
            for row in range(input_ids.shape[0]):
                best = torch.topk(scores[row], TOP_TOKENS).indices.tolist()
                tokens = allowed(input_ids[row, start:].tolist(), best)
                mask[row, tokens] = 0.0
                if discouraged:
                    for token in tokens:
                        if tokenizer.decode([token]).strip().lower() in discouraged:
                            mask[row, token] = -copy.penalty
            return scores + mask

    return LogitsProcessorList([_Copy()])
