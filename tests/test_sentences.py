from __future__ import annotations

import numpy as np
import pytest

from rag.answer.sentences import Sentence, rank_sentences
from tests.fakes import HashEmbedder


def test_sentences_are_scored_against_the_question() -> None:
    e = HashEmbedder()
    question = "Which network judges whether an image is real?"
    passages = [
        "A GAN has two networks. The discriminator judges whether an image is real or fake.",
        "Training alternates between them.\n\nThe generator learns to fool it.",
    ]
    ranked = rank_sentences(question, passages, e)
    assert len(ranked) == 4
    q = e.embed([question])[0]
    for s in ranked:
        assert passages[s.passage][s.start : s.end] == s.text
        assert s.similarity == pytest.approx(float(e.embed([s.text])[0] @ q), abs=1e-6)
    assert ranked[0].text.startswith("The discriminator judges")
    assert ranked[0].overlap > 0.5 and min(s.overlap for s in ranked) == 0.0
    assert [s.score for s in ranked] == sorted((s.score for s in ranked), reverse=True)
    assert np.isclose(ranked[0].score, ranked[0].similarity + ranked[0].overlap)


def test_a_lower_retrieved_passage_is_marked_down_but_its_evidence_is_its_own() -> None:
    from rag.answer.sentences import RANK_WEIGHT, Sentence

    first = Sentence(0, 0, 10, "Ann wrote it.", 0.5, 0.5, holds=0.5, rank=0)
    third = Sentence(2, 0, 10, "Ann wrote it.", 0.5, 0.5, holds=0.5, rank=2)
    assert first.evidence == third.evidence
    assert third.score == pytest.approx(third.evidence - RANK_WEIGHT * np.log(3))
    assert first.score > third.score
    plain = Sentence(2, 0, 10, "Ann wrote it.", 0.5, 0.5, rank=2)  # no finder: no mark
    assert plain.score == plain.evidence


def test_a_run_of_sentences_stays_within_its_list_item() -> None:
    """Every sentence ranks high, yet the answer from the LoRA item takes neither the item
    before it nor the paragraph after the list; the paragraph's own sentences run on."""
    from rag.answer.runs import sentence_run
    from rag.text import sentence_spans

    text = (
        "- **Prefix tuning** learns soft prompt vectors.\n"
        "- **LoRA** freezes the weights. It learns two thin matrices.\n\n"
        "Prompts also create a risk. Injection overrides instructions."
    )
    spans = sentence_spans(text)
    ranked = [Sentence(0, s, e, text[s:e], 1.0 - n / 10, 0.0) for n, (s, e) in enumerate(spans)]
    texts = [s.text for s in ranked]
    assert texts[1:3] == ["- **LoRA** freezes the weights.", "It learns two thin matrices."]
    by_text = {s.text: s for s in ranked}

    def run_from(first: str) -> list[str]:
        best = by_text[first]
        order = [best, *[s for s in ranked if s is not best]]
        return [s.text for s in sentence_run(text, best, order, ranked)]

    assert run_from("It learns two thin matrices.") == texts[1:3]
    assert run_from("Prompts also create a risk.") == texts[3:5]
    assert run_from("- **Prefix tuning** learns soft prompt vectors.") == texts[:1]


@pytest.mark.parametrize(
    ("text", "reads"),
    [
        ("The isolation level decides what a transaction sees.", True),
        ("Isolation Levels", False),
        ("1.2.8.", False),
        ("Write-Ahead Logging (WAL)\n30.4.", False),  # a table of contents' entry
        ("Write-Ahead Logging (WAL) makes commits durable at low cost.", True),
    ],
)
def test_what_reads_as_a_sentence(text: str, reads: bool) -> None:
    from rag.answer.runs import reads_as_sentence

    assert reads_as_sentence(Sentence(0, 0, len(text), text, 0.0, 0.0)) is reads
