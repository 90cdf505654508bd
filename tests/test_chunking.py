from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.ingest.chunking import chunk_document
from rag.types import Document
from tests.fakes import HashEmbedder

TOK = HashEmbedder()

words = st.sampled_from(
    ["alpha", "beta.", "gamma!", "delta?", "epsilon", "# Head", "## Sub", "- item", "1. step",
     "```", "\n", "\n\n", "  ", "\t", "x" * 40, "naïve", "日本語", "\r"]
)  # fmt: skip
texts = st.lists(words, min_size=1, max_size=300).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(text=texts, kind=st.sampled_from(["markdown", "text", "code"]), size=st.integers(16, 80))
def test_chunks_map_back_to_the_exact_source_text(text: str, kind: str, size: int) -> None:
    if not text.strip():
        return
    doc = Document("d", "d", text, kind)
    chunks = chunk_document(doc, TOK, size, size // 4)
    assert chunks, "non-blank text must give at least one chunk"
    # tokens of the whole text, found independently of the chunker's own pieces
    tokens = TOK.token_offsets([text])[0]
    token_starts, token_ends = {s for s, _ in tokens}, {e for _, e in tokens}
    for c in chunks:
        assert c.start in token_starts and c.end in token_ends, "cut between tokens only"
        assert c.text == c.text.strip(), "chunks start and end on text, not white space"
        assert c.line_start == text.count("\n", 0, c.start) + 1
        assert c.line_end == text.count("\n", 0, c.end - 1) + 1
        assert c.tokens <= size
    # every non-space character is in some chunk (headings included)
    covered = [False] * len(text)
    for c in chunks:
        covered[c.start : c.end] = [True] * (c.end - c.start)
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())
    # chunks advance through the document
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_cuts_prefer_sentence_ends_and_overlap_repeats_the_tail() -> None:
    text = " ".join(f"Sentence {i} says something here." for i in range(60))
    chunks = chunk_document(Document("d", "d", text, "text"), TOK, 50, 12)
    assert len(chunks) > 3
    for c in chunks:
        assert c.text.endswith("."), c.text[-30:]
        assert c.text.startswith("Sentence")
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end, "consecutive chunks overlap"
        assert b.end > a.end, "each chunk moves forward"


def test_markdown_heading_path_and_section_cuts() -> None:
    text = (
        "# Guide\n\nIntro text.\n\n## Install\n\nRun the installer. It takes a minute.\n\n"
        "### On Linux\n\nUse the package manager.\n\n## Use\n\n" + "Call it often. " * 40
    )
    chunks = chunk_document(Document("g.md", "g.md", text, "markdown"), TOK, 40, 0)
    by_text = {c.heading: c for c in chunks}
    assert "Guide > Install > On Linux" in by_text or any("On Linux" in c.heading for c in chunks)
    use = [c for c in chunks if c.heading == "Guide > Use"]
    assert use and all("Call it often" in c.text for c in use)
    # a heading is never the last thing in a chunk
    for c in chunks:
        assert not c.text.splitlines()[-1].startswith("#")


def test_overlong_sentence_is_cut_by_tokens() -> None:
    text = "word " * 500
    chunks = chunk_document(Document("d", "d", text.strip(), "text"), TOK, 64, 0)
    assert len(chunks) == 8
    assert all(c.tokens <= 64 for c in chunks)
    assert "".join(c.text.replace(" ", "") for c in chunks) == "word" * 500


def test_pages_of_a_pdf_document() -> None:
    page1 = "First page text. " * 30
    page2 = "Second page text. " * 30
    text = page1.strip() + "\n\n" + page2.strip()
    doc = Document("p.pdf", "p.pdf", text, "pdf", pages=(0, len(page1.strip()) + 2))
    chunks = chunk_document(doc, TOK, 40, 0)
    assert chunks[0].page_start == 1
    assert chunks[-1].page_end == 2
    for c in chunks:
        assert c.page_start is not None and c.page_end is not None
        if "Second" in c.text and "First" not in c.text:
            assert c.page_start == 2
