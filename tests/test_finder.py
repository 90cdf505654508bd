"""The answer-finder: the shipped adapter loads offline, ranks and marks real text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rag.answer.engine import QueryEngine
from rag.errors import InvalidValue, ModelError
from rag.index import Index
from rag.models.finder import (
    CARD_FILE,
    MAX_SPAN_TOKENS,
    PACKAGED_FINDER,
    AnswerFinder,
    best_span,
)
from rag.settings import Settings
from tests.fakes import EchoGenerator, HashEmbedder


def test_a_folder_without_a_finder_is_named_in_the_error(tmp_path: Path) -> None:
    finder = AnswerFinder(tmp_path / "nowhere")
    with pytest.raises(ModelError, match="nowhere"):
        finder.score("who?", ["someone did"])


def test_best_span_keeps_to_the_allowed_tokens_and_the_length_limit() -> None:
    n = 60
    start, end = torch.zeros(n), torch.zeros(n)
    start[2], end[3] = 9.0, 9.0  # best pair, but not allowed
    start[10], end[10 + MAX_SPAN_TOKENS + 5] = 5.0, 5.0  # allowed, too long
    start[12], end[14] = 3.0, 3.0
    allowed = torch.zeros(n, dtype=torch.bool)
    allowed[8:] = True
    offsets = [(i * 2, i * 2 + 1) for i in range(n)]
    span = best_span(start, end, allowed, offsets)
    assert (span.start, span.end) in {(20, 29), (24, 29)}
    assert span.end - span.start <= 2 * MAX_SPAN_TOKENS
    assert span.start >= 16  # token 8 onwards only


def test_the_shipped_files_are_small_and_say_where_they_came_from() -> None:
    files = {f.name: f.stat().st_size for f in PACKAGED_FINDER.iterdir()}
    assert {
        "adapter_model.safetensors",
        "adapter_config.json",
        "heads.safetensors",
        CARD_FILE,
    } <= set(files)
    assert sum(files.values()) <= 10_000_000
    card = json.loads((PACKAGED_FINDER / CARD_FILE).read_text())
    articles = card["articles"]
    assert articles["test"] and articles["dev"] and articles["train"]
    assert not set(articles["test"]) & set(articles["train"])
    assert not set(articles["dev"]) & set(articles["train"])
    assert "SQuAD" in card["trained_on"]
    assert card["calibration"]["scale"] > 0


@pytest.fixture(scope="module")
def finder() -> AnswerFinder:
    return AnswerFinder()


@pytest.mark.models
def test_the_sentence_that_holds_the_answer_scores_highest(finder: AnswerFinder) -> None:
    question = "Which network in a GAN judges whether an image is real?"
    sentences = [
        "A GAN trains two networks against each other.",
        "The discriminator judges whether an image is real or produced by the generator.",
        "Training alternates between the two until the samples look convincing.",
        "Paris is the capital of France.",
    ]
    scores = finder.score(question, sentences)
    assert all(0.0 < s < 1.0 for s in scores)
    assert max(range(4), key=scores.__getitem__) == 1
    assert scores[3] < 0.1


@pytest.mark.models
def test_the_marked_span_is_the_answer_inside_the_text(finder: AnswerFinder) -> None:
    text = "The Eiffel Tower, designed by Gustave Eiffel's company, was completed in 1889."
    ((p, span),) = finder.find("When was the Eiffel Tower completed?", [text])
    assert text[span.start : span.end] == "1889"
    ((p2, span2),) = finder.find("Whose company designed the Eiffel Tower?", [text])
    assert "Gustave Eiffel" in text[span2.start : span2.end]
    assert p > 0.5 and p2 > 0.5


def _index(tmp_path: Path, files: dict[str, str]) -> Index:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in files.items():
        (docs / name).write_text(text)
    embedder = HashEmbedder()
    idx = Index.create(tmp_path / "idx", Settings(embedder=embedder.name), embedder)
    idx.add(docs)
    return idx


def test_the_finder_reads_the_span_and_no_generator_loads(tmp_path: Path) -> None:
    idx = _index(tmp_path, {
        "tower.md": "# Towers\n\nThe Eiffel Tower was completed in 1889 for the World's Fair. "
                    "It is made of wrought iron.\n",
        "bridge.md": "# Bridges\n\nThe old bridge was replaced in 1998: it was too narrow.\n",
    })  # fmt: skip
    engine = QueryEngine(idx, min_confidence=0.0, span_reader="finder")
    answer = engine.ask("When was the Eiffel Tower completed?")
    assert answer.shape == "factoid" and not answer.abstained
    assert answer.generated == "1889"
    assert answer.citations[0].doc_id == "tower.md"
    assert answer.sentences[0].text.startswith("The Eiffel Tower was completed in 1889")
    assert answer.signals is not None and answer.signals.holds is not None
    assert not engine.generator._loaded.loaded  # the generator's weights never loaded


def test_a_command_in_the_marked_line_is_answered_whole(tmp_path: Path) -> None:
    idx = _index(tmp_path, {
        "backup.txt": "Backups\n\nTo dump a database called mydb into an SQL-script file, run:\n\n"
                      "$ pg_dump mydb > db.sql\n\nThe file can be loaded again with psql.\n",
    })  # fmt: skip
    answer = QueryEngine(idx, min_confidence=0.0, k=1, span_reader="finder").ask(
        "which command dumps the database mydb into a file?"
    )
    assert answer.shape == "factoid"
    assert answer.generated == "$ pg_dump mydb > db.sql"


def test_a_given_generator_reads_the_span_instead(tmp_path: Path) -> None:
    idx = _index(tmp_path, {"tower.md": "The Eiffel Tower was completed in 1889 in Paris.\n"})
    gen = EchoGenerator("Paris")
    answer = QueryEngine(idx, gen, min_confidence=0.0).ask("Where is the Eiffel Tower?")
    assert len(gen.prompts) == 1 and answer.generated == "Paris"
    assert answer.signals is not None and answer.signals.holds is not None


def test_an_unknown_span_reader_is_refused(tmp_path: Path) -> None:
    idx = _index(tmp_path, {"tower.md": "The Eiffel Tower was completed in 1889 in Paris.\n"})
    with pytest.raises(InvalidValue, match="span reader"):
        QueryEngine(idx, span_reader="oracle")
    with pytest.raises(InvalidValue, match="read_depth"):
        QueryEngine(idx, read_depth=0)


def test_without_the_finder_sentences_rank_by_similarity_and_overlap(tmp_path: Path) -> None:
    idx = _index(tmp_path, {"tower.md": "The Eiffel Tower was completed in 1889 in Paris.\n"})
    answer = QueryEngine(idx, EchoGenerator("1889"), finder=False, min_confidence=0.0).ask(
        "When was the Eiffel Tower completed?"
    )
    assert answer.generated == "1889"
    assert answer.signals is not None and answer.signals.holds is None


def test_a_question_longer_than_the_model_reads_is_cut_not_refused(finder: AnswerFinder) -> None:
    question = " ".join(["why is the sky blue on a clear afternoon"] * 60)
    ((p, span),) = finder.find(question, ["The sky is blue because air scatters blue light most."])
    assert 0.0 < p < 1.0 and 0 <= span.start <= span.end


def test_a_list_introduced_by_a_colon_is_answered_whole(tmp_path: Path) -> None:
    steps = (
        "1. Supervised fine-tuning on written demonstrations.\n"
        "2. Training a reward model on human rankings of answers.\n"
        "3. Reinforcement learning against that reward model.\n"
    )
    idx = _index(tmp_path, {
        "rlhf.md": "# RLHF\n\nRLHF aligns a model with human preferences. The InstructGPT paper "
                   f"described three steps:\n\n{steps}\nIt is used by most chat models today.\n",
    })  # fmt: skip
    answer = QueryEngine(idx, min_confidence=0.0).ask("what are the steps of RLHF?")
    assert answer.shape == "sentences"
    assert answer.generated.endswith(steps.rstrip())
    assert "described three steps:" in answer.generated
    assert "chat models" not in answer.generated
