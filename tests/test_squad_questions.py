"""The project's own questions over SQuAD paragraphs (scripts/data), and how answers to
them are judged (scripts/squad.py)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

from squad import DEFAULT_DATA, SENTENCE_QUESTIONS, answered_by, sentence_questions  # noqa: E402

TYPES = {"definition", "how", "why", "list", "compare", "what"}


def test_question_file_is_well_formed() -> None:
    rows = [json.loads(line) for line in SENTENCE_QUESTIONS.open(encoding="utf-8")]
    assert len(rows) >= 700
    assert len({r["id"] for r in rows}) == len(rows)
    assert len({r["question"].lower() for r in rows}) == len(rows)
    assert {r["type"] for r in rows} == TYPES
    for r in rows:
        assert r["context_id"].rsplit("__", 1)[0] == r["title"]
        assert 1 <= len(r["answer"]) <= 3
        assert all(0 <= s < e for s, e in r["answer"]) and r["answer"] == sorted(r["answer"])


@pytest.mark.skipif(not DEFAULT_DATA.exists(), reason="needs ../shared/data/squad-tune")
def test_answers_are_whole_sentences_of_their_paragraph() -> None:
    found = sentence_questions(DEFAULT_DATA)
    parts = Counter(
        part for part in ("train", "dev", "test")
        for _ in sentence_questions(DEFAULT_DATA, part=part)
    )  # fmt: skip
    assert parts["train"] > parts["test"] > parts["dev"] > 100
    assert sum(parts.values()) == len(found)
    for q in found:
        for text in q["answer_text"]:
            assert text == text.strip() and len(text.split()) >= 4, q["id"]
            assert text[0].isupper() or text[0] in "\"'(0123456789", q["id"]


def test_an_answer_is_judged_by_the_sentences_it_holds() -> None:
    q = {"answer_text": ["The cat sat on the mat.", "It purred."]}
    assert answered_by(q, "Hello. The cat  sat on the mat. Bye.")  # whole, white space aside
    assert answered_by(q, "The cat sat on the")  # the greater part of one
    assert not answered_by(q, "cat sat")
    assert not answered_by(q, "Dogs bark.")
    assert answered_by({"answers": ["1889"]}, "It opened in 1889.")
