"""Documents in parts (pages, slides, sheets, ...): the part a location names, the
JSON fields that carry it, and an index of the format before parts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rag.index import Index
from rag.settings import FORMAT_VERSION, Settings
from rag.types import Document, Hit, location
from tests.fakes import HashEmbedder
from tests.test_readers import make_pdf

# --- locations ------------------------------------------------------------------------


def test_locations_name_the_part() -> None:
    assert location("paper.pdf", 3, 9, 3, 3) == "paper.pdf:3-9 (p.3)"
    assert location("paper.pdf", 3, 9, 3, 4) == "paper.pdf:3-9 (pp.3-4)"
    assert location("notes.md", 7, 7, None, None) == "notes.md:7"
    assert location("deck.pptx", 40, 52, 3, 3, "slide") == "deck.pptx:40-52 (slide 3)"
    assert location("deck.pptx", 40, 52, 3, 4, "slide", "Plan") == "deck.pptx:40-52 (slides 3-4)"
    assert location("b.xlsx", 10, 20, 2, 2, "sheet", "Sales") == 'b.xlsx:10-20 (sheet 2 "Sales")'
    assert location("nb.ipynb", 30, 41, 4, 5, "cell") == "nb.ipynb:30-41 (cells 4-5)"
    assert location("memo.docx", 12, 20, 5, 8, "paragraph") == "memo.docx:12-20 (¶ 5-8)"


def test_hit_json_adds_part_fields_and_keeps_the_old_ones() -> None:
    hit = Hit(1, 0.5, "b.xlsx", "/d/b.xlsx", "b", "Row 2", 0, 5, 2, 2, "Sales", 2, 2, {},
              "sheet", "Sales")  # fmt: skip
    d = hit.to_dict()
    assert (d["page_start"], d["page_end"], d["part"], d["part_name"]) == (2, 2, "sheet", "Sales")
    plain = Hit(1, 0.5, "a.md", "/d/a.md", "a", "text", 0, 4, 1, 1).to_dict()
    assert (plain["page_start"], plain["part"], plain["part_name"]) == (None, None, None)
    assert {"doc_id", "score", "text", "source", "start", "end", "line_start", "line_end",
            "heading", "chunk_id"} < set(plain)  # fmt: skip


def test_documents_without_parts_keep_their_content_hash() -> None:
    """Hashes from before parts existed: an upgraded index re-embeds nothing."""
    md = Document("a.md", "/x/a.md", "hello", "markdown", "A")
    pdf = Document("p.pdf", "/x/p.pdf", "one\n\ntwo", "pdf", "P", pages=(0, 5))
    assert md.content_hash == "161eaf164303c53d80cef148f0d6c3e1f6e3ed7e3ec89166e109551ccdcdd2c7"
    assert pdf.content_hash == "db6c73d5e1a97d7a7f60551a4ed973d8a2f871eefc1146e0ad3885da0bce3383"
    renamed = Document("p.pdf", "/x/p.pdf", "one\n\ntwo", "pdf", "P", (), (0, 5), "page", ("a",))
    assert renamed.content_hash != pdf.content_hash


def test_index_of_format_3_gains_parts_on_open(tmp_path: Path) -> None:
    e = HashEmbedder()
    old = tmp_path / "old"
    old.mkdir()
    (old / "notes.md").write_text("# Notes\n\nThe ferry leaves at nine.\n")
    with Index.create(tmp_path / "idx", Settings(embedder=e.name), e) as index:
        index.add(old)
    db = sqlite3.connect(tmp_path / "idx" / "index.db")
    db.executescript(
        "ALTER TABLE documents DROP COLUMN parts;"
        "UPDATE meta SET value = '3' WHERE key = 'format_version';"
    )
    db.close()
    (old / "timetable.pdf").write_bytes(make_pdf(["Boats leave hourly", "Buses leave at noon"]))
    with Index.open(tmp_path / "idx", e) as index:
        assert index.status().format_version == FORMAT_VERSION == 4
        assert index.search("ferry nine", k=1)[0].doc_id == "notes.md"
        report = index.add(old)
        assert (report.added, report.unchanged) == (1, 1)
        (hit,) = index.search("buses noon", k=1, where={"path": "timetable.pdf"})
        assert (hit.part, hit.page_start, hit.page_end, hit.part_name) == ("page", 1, 2, "")
        assert hit.location == "timetable.pdf:1-3 (pp.1-2)"
