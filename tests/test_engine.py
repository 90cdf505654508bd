from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rag.answer.confidence import confidence
from rag.answer.engine import ANSWER_MODES, GENERATIVE, NOT_FOUND, QueryEngine
from rag.answer.generative import attribute, build_prompt
from rag.errors import InvalidValue
from rag.index import Index
from rag.settings import Settings
from rag.text import find_span
from tests.fakes import EchoGenerator, HashEmbedder


@pytest.fixture
def index(tmp_path: Path, corpus: Path, embedder: HashEmbedder) -> Index:
    idx = Index.create(tmp_path / "idx", Settings(embedder=embedder.name), embedder)
    idx.add(corpus)
    return idx


def test_generative_answer_cites_the_passage_it_came_from(index: Index, corpus: Path) -> None:
    gen = EchoGenerator()
    streamed: list[str] = []
    answer = QueryEngine(index, gen, k=3, answer_mode=GENERATIVE, min_confidence=0.0).ask(
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
    engine = QueryEngine(index, gen, k=8, max_prompt_tokens=450, answer_mode=GENERATIVE)
    answer = engine.ask("what is hallucination in language models?")
    assert 0 < len(answer.passages) < 8
    prompt = gen.prompts[-1]
    for p in answer.passages:
        assert " ".join(p.text.split()) in prompt, "every passage given is given whole"
    assert gen.count_tokens([prompt])[0] <= 450


def test_extractive_answer_is_a_verified_span_with_its_offsets(index: Index, corpus: Path) -> None:
    gen = EchoGenerator()
    question = "What does the forward process of a diffusion model add to the data?"
    answer = QueryEngine(index, gen, k=3, min_confidence=0.0).ask(question)
    assert answer.mode == "extractive" and not answer.abstained and answer.supported
    copy = gen.copied[-1]
    assert copy is not None and len(copy.sources) == 1
    assert {"forward", "diffusion", "data"} <= copy.discouraged
    # the model read only the best sentence, which comes from a retrieved passage
    prompt = gen.prompts[-1]
    assert prompt.rstrip().endswith("Answer:") and copy.sources[0] in prompt
    assert any(copy.sources[0] in p.text for p in answer.passages)
    cited = answer.citations[0]
    source = (corpus / cited.doc_id).read_text()
    assert source[cited.start : cited.end] == answer.passages[cited.n - 1].text
    assert cited.quote_start is not None and cited.quote_end is not None
    assert source[cited.quote_start : cited.quote_end] == answer.generated
    assert cited.quote_line == source.count("\n", 0, cited.quote_start) + 1
    assert answer.text == f"{answer.generated} [{cited.n}]"
    assert answer.signals is not None and answer.signals.overlap > 0.0
    assert answer.confidence == confidence(answer.signals), "the calibrated estimate it reports"


def test_extractive_answer_not_copied_is_withdrawn(index: Index) -> None:
    """A generator that cannot constrain decoding may paraphrase; the span is checked."""
    engine = QueryEngine(index, EchoGenerator("diffusion adds noise slowly"), min_confidence=0.0)
    answer = engine.ask("What does the forward process of a diffusion model add to the data?")
    assert answer.abstained and not answer.supported and answer.text == NOT_FOUND
    assert answer.generated == "diffusion adds noise slowly" and answer.passages


class _OlderGenerator(EchoGenerator):
    """Written against the protocol before ``copy_from``: quotes four words it was shown."""

    def generate(  # type: ignore[override]
        self, prompt: str, *, max_new_tokens: int = 64, stop: Any = (), on_token: Any = None
    ) -> Any:
        self.reply = " ".join(prompt.rsplit("Passage: ", 1)[-1].split()[:4])
        return super().generate(prompt, max_new_tokens=max_new_tokens, stop=stop)


def test_generator_without_copy_from_still_answers_extractively(index: Index) -> None:
    gen = _OlderGenerator()
    answer = QueryEngine(index, gen, min_confidence=0.0).ask(
        "What does the forward process of a diffusion model add to the data?"
    )
    assert gen.prompts and set(gen.copied) == {None}, "called without copy_from"
    assert answer.mode == "extractive" and not answer.abstained and answer.citations
    assert answer.citations[0].quote_start is not None


def test_low_confidence_abstains_and_keeps_the_closest_passages(index: Index) -> None:
    gen = EchoGenerator()
    engine = QueryEngine(index, gen, min_confidence=1.0)
    answer = engine.ask("What does the forward process of a diffusion model add to the data?")
    assert answer.abstained and answer.supported and answer.text == NOT_FOUND
    assert answer.passages and answer.confidence < 1.0 and answer.signals is not None
    assert gen.prompts == [] and answer.generated == "", "decided before generating"
    sure = QueryEngine(index, EchoGenerator(), min_confidence=0.0).ask(answer.question)
    assert not sure.abstained and sure.confidence == answer.confidence


def test_confidence_is_higher_for_a_question_the_documents_answer(index: Index) -> None:
    engine = QueryEngine(index, EchoGenerator(), min_confidence=0.0)
    inside = engine.ask("What does the forward process of a diffusion model add to the data?")
    outside = engine.ask("Which football club won the 1970 world cup final in Mexico?")
    assert inside.confidence > outside.confidence


def test_passages_without_a_sentence_get_no_extractive_answer(
    tmp_path: Path, embedder: HashEmbedder
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "toc.md").write_text("# Contents\n\n## Diffusion models\n\n## GANs\n")
    idx = Index.create(tmp_path / "idx", Settings(embedder=embedder.name), embedder)
    idx.add(tmp_path / "docs")
    gen = EchoGenerator()
    answer = QueryEngine(idx, gen, min_confidence=0.0).ask("what are diffusion models?")
    assert answer.abstained and answer.passages and gen.prompts == []


def test_find_span_matches_whole_words_across_white_space() -> None:
    text = "It opened in\n1889 as the arch of the fair; directly elected."
    assert find_span("in 1889", text) == (text.index("in\n"), text.index(" as"))
    assert find_span("direct", text) is None
    assert find_span("the fair;", text) == (text.index("the fair"), text.index(" directly"))
    assert find_span("", text) is None


def test_unsupported_answer_is_withdrawn(index: Index) -> None:
    engine = QueryEngine(
        index, EchoGenerator("Purple elephants juggle xylophones"), min_confidence=0
    )
    answer = engine.ask("which process adds noise in diffusion models?")
    assert not answer.supported and answer.citations == []
    assert answer.abstained and answer.text == NOT_FOUND and answer.passages
    assert answer.generated == "Purple elephants juggle xylophones"


def one_document_engine(
    tmp_path: Path, embedder: HashEmbedder, name: str, text: str
) -> QueryEngine:
    """An engine (echo generator, no finder, never abstaining) over one document."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / name).write_text(text)
    idx = Index.create(tmp_path / "idx", Settings(embedder=embedder.name), embedder)
    idx.add(docs)
    return QueryEngine(idx, EchoGenerator(), min_confidence=0.0, finder=False)


def test_an_answer_that_leans_on_the_sentence_before_starts_there(
    tmp_path: Path, embedder: HashEmbedder
) -> None:
    """ "Transformers therefore add ..." answers nothing without what came before it; a
    section number ("1.2.8.") is never part of an answer."""
    engine = one_document_engine(
        tmp_path,
        embedder,
        "pos.txt",
        "Attention by itself ignores word order. Transformers therefore add position "
        "information to every token before attention runs.\n\n1.2.8.\n\n"
        # sentences that outrank the first one, so that only the rule brings it in
        + " ".join(f"Model {n} adds position information to a token." for n in range(10))
        + "\n",
    )
    answer = engine.ask("why do transformers add position information to every token?")
    assert answer.shape == "sentences" and not answer.abstained
    assert answer.generated.startswith("Attention by itself ignores word order. Transformers")
    assert "1.2.8." not in answer.generated
    assert [e.text for e in answer.sentences][:2] == [
        "Attention by itself ignores word order.",
        "Transformers therefore add position information to every token before attention runs.",
    ]


def test_a_comparison_is_answered_by_what_is_said_of_each(
    tmp_path: Path, embedder: HashEmbedder
) -> None:
    """When no run of sentences speaks of both things compared, the best sentence about
    each is given, each verbatim where it stands and cited, in reading order."""
    source = (
        "BLEU computes modified n-gram precision against reference translations. "
        "It was introduced at IBM in 2002.\n\n"
        "Translation systems improved quickly after that. Many teams reported scores. "
        "Some of them shared their systems. Others kept them closed.\n\n"
        "ROUGE measures recall of overlapping words against reference summaries.\n"
    )
    engine = one_document_engine(tmp_path, embedder, "metrics.txt", source)
    answer = engine.ask("BLEU vs ROUGE - what's the difference?")
    assert answer.shape == "sentences" and not answer.abstained
    bleu = "BLEU computes modified n-gram precision against reference translations."
    rouge = "ROUGE measures recall of overlapping words against reference summaries."
    assert bleu in answer.generated and rouge in answer.generated
    assert "Translation systems improved" not in answer.generated
    assert answer.generated.index(bleu) < answer.generated.index(rouge)
    assert answer.text.count("[1]") == 2, "each piece carries its citation"
    for e in answer.sentences:
        assert source[e.start : e.end] == e.text
    c = answer.citations[0]
    assert c.quote_start is not None and c.quote_end is not None
    assert source[c.quote_start : c.quote_end] in answer.generated


def test_a_description_is_given_with_the_signature_it_describes(
    tmp_path: Path, embedder: HashEmbedder
) -> None:
    """A reference table's description ("Concatenates the two strings.") answers nothing
    without the signature on the line before it."""
    engine = one_document_engine(
        tmp_path,
        embedder,
        "strings.txt",
        "String functions and operators.\n\n"
        "text || text → text\n\nConcatenates the two strings.\n\n"
        "'Post' || 'greSQL' → PostgreSQL\n",
    )
    answer = engine.ask("how do I concatenate the two strings?")
    assert answer.shape == "sentences" and not answer.abstained
    assert answer.generated.startswith("text || text → text\n\nConcatenates the two strings.")


def test_a_question_asking_for_a_set_is_answered_from_where_the_set_is_announced(
    tmp_path: Path, embedder: HashEmbedder
) -> None:
    engine = one_document_engine(
        tmp_path,
        embedder,
        "errors.txt",
        "A hallucination is output of a model that is false; hallucination types of errors "
        "matter to users.\n\n"
        "Researchers distinguish two kinds. An intrinsic one contradicts the source. "
        "An extrinsic one adds what the source cannot support.\n\n"
        "Measuring them is hard.\n",
    )
    answer = engine.ask("what types of hallucination errors are there?")
    assert answer.shape == "sentences" and not answer.abstained
    assert answer.generated == (
        "Researchers distinguish two kinds. An intrinsic one contradicts the source. "
        "An extrinsic one adds what the source cannot support."
    )


@pytest.mark.parametrize("answer_mode", ANSWER_MODES)
def test_model_saying_not_found_abstains_with_passages(index: Index, answer_mode: str) -> None:
    # min_confidence 0: the engine must not abstain before the model is asked
    gen = EchoGenerator("not found")
    engine = QueryEngine(index, gen, answer_mode=answer_mode, min_confidence=0.0)
    answer = engine.ask("who won the 1970 world cup?")
    assert gen.prompts, "the model was asked and its reply checked"
    assert answer.abstained and answer.text == NOT_FOUND and answer.passages
    assert answer.generated == "not found" and answer.supported and answer.citations == []


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
    with pytest.raises(InvalidValue, match="answer mode must be one of extractive, generative"):
        QueryEngine(index, EchoGenerator(), answer_mode="abstractive")
    with pytest.raises(InvalidValue, match="min_confidence"):
        QueryEngine(index, EchoGenerator(), min_confidence=1.5)


def test_ask_batch_answers_each_question(index: Index) -> None:
    answers = QueryEngine(index, EchoGenerator(), min_confidence=0.0).ask_batch(
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


def test_generative_prompt_asks_for_sentences_not_a_short_copy() -> None:
    prompt = build_prompt("Why do GANs collapse?", ["Mode collapse happens when..."])
    assert "one or two sentences" in prompt
    assert "short" not in prompt.lower()
    # the worked example answers with a sentence, as the mode is meant to
    example_answer = prompt.split("Answer:")[1].split("\n")[0].strip()
    assert len(example_answer.split()) >= 6 and example_answer.endswith(".")


def test_the_engine_filter_limits_what_it_reads(index: Index) -> None:
    from rag.types import Where

    engine = QueryEngine(
        index, EchoGenerator(), min_confidence=0.0, where=Where(path="hallucination.md")
    )
    for answer in (engine.ask("what are diffusion models?"), *engine.ask_batch(["what is a GAN?"])):
        assert answer.passages and {p.doc_id for p in answer.passages} == {"hallucination.md"}


def test_the_prompt_budget_keeps_every_passage_that_fits(index: Index) -> None:
    """Passages are tried best first; one too long is skipped, later shorter ones still go in."""
    from dataclasses import replace

    from rag.answer.generative import Generative

    gen = EchoGenerator()
    best, *rest = index.search("what is hallucination in language models?", k=3)
    hits = [replace(best, text=best.text * 4), *rest]
    fixed = gen.count_tokens([build_prompt("q", [])])[0]
    sizes = gen.count_tokens([f"[99] {h.text}\n" for h in hits])
    budget = fixed + sizes[1] + sizes[2]  # room for the two shorter passages only
    assert sizes[0] > sizes[1] + sizes[2] and budget + 10 <= gen.context_window
    reader = Generative(max_new_tokens=10, max_prompt_tokens=budget, sentences=1)
    assert reader.fit(gen, "q", hits) == rest
    tighter = Generative(max_new_tokens=10, max_prompt_tokens=budget - 1, sentences=1)
    assert tighter.fit(gen, "q", hits) == rest[:1]


def test_a_citation_carries_its_passage_location(index: Index) -> None:
    from rag.types import Citation

    hit = index.search("latent diffusion", k=1)[0]
    c = Citation.of(2, hit, hit.text.split()[3])
    assert (c.n, c.chunk_id, c.doc_id, c.source, c.start, c.end) == (
        2, hit.chunk_id, hit.doc_id, hit.source, hit.start, hit.end
    )  # fmt: skip
    assert (c.line_start, c.line_end, c.page_start, c.page_end) == (
        hit.line_start, hit.line_end, hit.page_start, hit.page_end
    )  # fmt: skip
    assert c.to_dict()["source"] == hit.source and c.location == hit.location


def test_attribute_cites_a_passage_holding_half_the_answer_words() -> None:
    passages = ["The cat sat on the warm mat.", "Dogs bark at the mail carrier."]
    assert attribute("cat purred loudly mat", passages) == [1]  # 2 of 4 content words
    assert attribute("cat purred loudly softly", passages) == []  # 1 of 4
    assert attribute("the mail carrier", passages) == [2]


def test_a_why_question_gets_the_answering_sentences_verbatim(index: Index, corpus: Path) -> None:
    gen = EchoGenerator("Purple elephants")
    streamed: list[str] = []
    engine = QueryEngine(index, gen, min_confidence=0.0)
    question = "why does a diffusion model add noise step by step?"
    answer = engine.ask(question, on_token=streamed.append)
    assert answer.shape == "sentences" and not answer.abstained
    assert gen.prompts == [], "whole sentences need no generation"
    assert "".join(streamed) == answer.generated
    source = (corpus / answer.citations[0].doc_id).read_text()
    c = answer.citations[0]
    assert c.quote_start is not None and c.quote_end is not None
    assert source[c.quote_start : c.quote_end] == answer.generated
    excerpts = answer.sentences
    assert 1 <= len(excerpts) <= 3
    assert excerpts[0].start == c.quote_start and excerpts[-1].end == c.quote_end
    for e in excerpts:
        assert source[e.start : e.end] == e.text
        assert e.line == 1 + source.count("\n", 0, e.start)
        assert e.text[-1] in ".!?:" or e.text.endswith(")")
    data = answer.to_dict()
    assert data["shape"] == "sentences" and data["sentences"][0]["text"] == excerpts[0].text


def test_a_factoid_question_gets_a_span_and_the_sentence_it_came_from(index: Index) -> None:
    gen = EchoGenerator()
    answer = QueryEngine(index, gen, min_confidence=0.0).ask(
        "which process adds noise to the data in diffusion models?"
    )
    assert answer.shape == "factoid" and len(gen.prompts) == 1
    assert answer.sentences and answer.generated in answer.sentences[0].text


def test_a_span_of_the_question_own_words_gives_the_sentence_instead(index: Index) -> None:
    """The next sentence is read; when its span says no more, the best sentence is given."""
    gen = EchoGenerator("diffusion models")  # verbatim in the passages, but no answer
    streamed: list[str] = []
    answer = QueryEngine(index, gen, min_confidence=0.0, finder=False).ask(
        "which process adds noise to the data in diffusion models?", on_token=streamed.append
    )
    assert len(gen.prompts) == 2 and gen.prompts[0] != gen.prompts[1]
    assert not answer.abstained and answer.sentences
    assert answer.generated != "diffusion models"
    assert answer.generated.startswith(answer.sentences[0].text)
    assert streamed == [answer.generated], "what was streamed is the answer given"


def test_an_answer_never_starts_from_a_title(tmp_path: Path, embedder: HashEmbedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "iso.txt").write_text(
        "Isolation Levels\n\nThe isolation level decides what a transaction sees of other "
        "transactions that run at the same time.\n"
    )
    idx = Index.create(tmp_path / "idx", Settings(embedder=embedder.name), embedder)
    idx.add(docs)
    answer = QueryEngine(idx, EchoGenerator(), min_confidence=0.0).ask("what are isolation levels?")
    assert answer.shape == "sentences"
    assert answer.generated.startswith("The isolation level decides")


@pytest.mark.parametrize("answer_mode", ANSWER_MODES)
def test_the_answer_length_limit_reaches_the_generator(index: Index, answer_mode: str) -> None:
    gen = EchoGenerator("one two three four five six seven")
    engine = QueryEngine(index, gen, max_new_tokens=3, min_confidence=0.0, answer_mode=answer_mode)
    answer = engine.ask("which process adds noise to the data in diffusion models?")
    assert gen.prompts, "the model was asked"
    assert answer.generated == "one two three"


def test_a_definition_question_is_answered_by_the_sentence_that_defines_the_term(
    tmp_path: Path, embedder: HashEmbedder
) -> None:
    """Sentences that only mention autovacuum, with more of the question's words, lose
    to the one that says what it is."""
    engine = one_document_engine(
        tmp_path,
        embedder,
        "vacuum.txt",
        "What is autovacuum doing when the autovacuum daemon does not run at all? "
        "Tables hold rows. Rows hold values. Values have types.\n\n"
        "PostgreSQL has an optional feature called autovacuum, whose purpose is to "
        "automate the execution of VACUUM and ANALYZE commands.\n\n"
        "Indexes speed up reads. Writes update indexes. Pages hold tuples.\n\n"
        "What is autovacuum logging is set by a parameter.\n",
    )
    answer = engine.ask("what is autovacuum?")
    assert not answer.abstained
    assert "PostgreSQL has an optional feature called autovacuum, whose" in answer.generated
    assert "daemon" not in answer.generated and "logging" not in answer.generated


def test_which_function_is_answered_by_the_signature_the_best_sentence_describes(
    tmp_path: Path, embedder: HashEmbedder
) -> None:
    """The description holds the question's words and the signature above it the name:
    the answer is both, and not the example line of the entry above."""
    engine = one_document_engine(
        tmp_path,
        embedder,
        "functions.txt",
        "repeat ( string text, number integer ) → text\n\n"
        "Repeats string the specified number of times.\n\n"
        "repeat('Pg', 4) → PgPgPgPg\n\n"
        "replace ( string text, from text, to text ) → text\n\n"
        "Replaces all occurrences in string of substring from with substring to.\n\n"
        "replace('abcdefabcdef', 'cd', 'XX') → abXXefabXXef\n\n",
    )
    answer = engine.ask("which function replaces all occurrences of a substring in a string?")
    assert answer.shape == "factoid" and not answer.abstained
    assert answer.generated.startswith("replace ( string text, from text, to text ) → text\n\n")
    assert "Replaces all occurrences in string" in answer.generated


def test_a_run_of_lines_that_end_like_no_sentence_is_not_an_answer(
    tmp_path: Path, embedder: HashEmbedder
) -> None:
    """An index of terms matches every word of the question and says nothing."""
    engine = one_document_engine(
        tmp_path,
        embedder,
        "manual.txt",
        "index types, B-tree\nindex types, hash\nindex types, GiST\nindex types, GIN\n"
        "index types, BRIN\nindex, partial\n\n"
        "Each of the index types uses a different algorithm that suits other queries.\n",
    )
    answer = engine.ask("how do the index types differ?")
    assert not answer.abstained
    assert answer.generated.startswith("Each of the index types uses a different algorithm")


def test_a_set_announced_right_before_one_of_its_items_answers_a_list_question(
    tmp_path: Path, embedder: HashEmbedder
) -> None:
    """The announcing sentence shares no word with the question; an item right after it
    ranks among the best, and the answer is the set as announced, items and all."""
    engine = one_document_engine(
        tmp_path,
        embedder,
        "hallucination.txt",
        " ".join(f"Hallucination types matter in {field}." for field in ("law", "news", "code"))
        + "\n\nResearch distinguishes two kinds. An intrinsic hallucination contradicts "
        "the source. An extrinsic hallucination adds what the source never said.\n",
    )
    answer = engine.ask("what types of hallucination are there?")
    assert answer.shape == "sentences" and not answer.abstained
    assert answer.generated.startswith("Research distinguishes two kinds. An intrinsic")
    assert "extrinsic" in answer.generated


def test_a_list_question_is_answered_by_the_list_one_of_its_items_is_in(
    tmp_path: Path, embedder: HashEmbedder
) -> None:
    """The best sentence is the last item of a Markdown list; the sentence that introduces
    the list shares no word with the question, ranks below five others and is not next
    to that item. The answer is the list as it stands, with its introduction."""
    engine = one_document_engine(
        tmp_path,
        embedder,
        "tuning.md",
        "# Tuning\n\nEfficient ways matter. Parameters are many. Training takes time. "
        "Efficient models help. Ways differ.\n\n"
        "Three families freeze the original weights:\n\n"
        "- **Adapters** insert small layers.\n"
        "- **Prefix tuning** learns soft prompt vectors.\n"
        "- **QLoRA** keeps the frozen model in 4-bit precision and trains efficient "
        "parameters on top.\n\nThe end of the story is near.\n",
    )
    answer = engine.ask("which efficient ways train parameters?")
    assert answer.shape == "sentences" and not answer.abstained
    assert answer.generated.startswith("Three families freeze the original weights:")
    assert "Adapters" in answer.generated and "Prefix tuning" in answer.generated
    assert answer.generated.rstrip().endswith("trains efficient parameters on top.")
