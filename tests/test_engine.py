from __future__ import annotations

from pathlib import Path

import pytest

from rag.engine import NOT_FOUND, QueryEngine, attribute, build_prompt
from rag.errors import InvalidValue
from rag.index import Index
from rag.settings import Settings
from tests.fakes import EchoGenerator, HashEmbedder


@pytest.fixture
def index(tmp_path: Path, corpus: Path, embedder: HashEmbedder) -> Index:
    idx = Index.create(tmp_path / "idx", Settings(embedder=embedder.name), embedder)
    idx.add(corpus)
    return idx


def test_answer_cites_the_passage_it_came_from(index: Index, corpus: Path) -> None:
    gen = EchoGenerator()
    streamed: list[str] = []
    answer = QueryEngine(index, gen, k=3).ask(
        "What does the forward process of a diffusion model add to the data?",
        on_token=streamed.append,
    )
    assert not answer.abstained and answer.supported
    assert answer.citations and answer.citations[0].n == 1
    cited = answer.citations[0]
    passage = answer.passages[0]
    assert cited.doc_id == passage.doc_id
    source = (corpus / cited.doc_id).read_text()
    assert source[cited.start : cited.end] == passage.text
    assert answer.text.endswith("[1]")
    assert "".join(streamed) == answer.text.rsplit(" [", 1)[0].split(" [")[0]
    # the prompt numbers the passages and keeps them apart from the instruction
    prompt = gen.prompts[-1]
    assert "[1] " in prompt and "[3] " in prompt and prompt.rstrip().endswith("Answer:")


def test_passages_that_do_not_fit_are_left_out_whole(index: Index) -> None:
    gen = EchoGenerator()
    engine = QueryEngine(index, gen, k=8, max_prompt_tokens=450)
    answer = engine.ask("what is hallucination in language models?")
    assert 0 < len(answer.passages) < 8
    prompt = gen.prompts[-1]
    for p in answer.passages:
        assert " ".join(p.text.split()) in prompt, "every passage given is given whole"
    assert gen.count_tokens([prompt])[0] <= 450


def test_unsupported_answer_is_withdrawn(index: Index) -> None:
    answer = QueryEngine(index, EchoGenerator("Purple elephants juggle xylophones")).ask("why?")
    assert not answer.supported and answer.citations == []
    assert answer.abstained and answer.text == NOT_FOUND and answer.passages
    assert answer.generated == "Purple elephants juggle xylophones"


def test_model_saying_not_found_abstains_with_passages(index: Index) -> None:
    answer = QueryEngine(index, EchoGenerator("not found")).ask("who won the 1970 world cup?")
    assert answer.abstained and answer.text == NOT_FOUND and answer.passages


def test_empty_index_abstains_without_calling_the_model(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    idx = Index.create(tmp_path / "empty", Settings(embedder=embedder.name), embedder)
    gen = EchoGenerator()
    answer = QueryEngine(idx, gen).ask("anything?")
    assert answer.abstained and gen.prompts == []


def test_bad_questions_are_refused(index: Index) -> None:
    engine = QueryEngine(index, EchoGenerator())
    with pytest.raises(InvalidValue, match="empty"):
        engine.ask("  ")
    with pytest.raises(InvalidValue, match="characters long"):
        engine.ask("x" * 100_000)
    with pytest.raises(InvalidValue, match="k must"):
        QueryEngine(index, EchoGenerator(), k=0)


def test_ask_batch_answers_each_question(index: Index) -> None:
    answers = QueryEngine(index, EchoGenerator()).ask_batch(
        ["what is LoRA?", "what is a GAN discriminator?"]
    )
    assert [a.question for a in answers] == ["what is LoRA?", "what is a GAN discriminator?"]
    assert all(a.citations for a in answers)


def test_attribute_prefers_exact_containment() -> None:
    passages = ["The sky is blue today.", "Paris hosted the 1889 World's Fair.", "1889 again"]
    assert attribute("the 1889 World's Fair", passages) == [2]
    assert attribute("1889", passages) == [2, 3]
    assert attribute("World Fair Paris hosted", passages) == [2]
    assert attribute("bananas", passages) == []


def test_prompt_flattens_passages_to_one_line_each() -> None:
    prompt = build_prompt("Q?", ["line one\nline two", "other"])
    assert "[1] line one line two\n[2] other\n" in prompt
