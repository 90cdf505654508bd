"""Office, e-book, notebook, spreadsheet and e-mail files: their readers, the parts a
citation points to, damaged and locked files, and the whole path through the CLI."""

from __future__ import annotations

import json
import logging
import sqlite3
import zipfile
from pathlib import Path

import pytest

from rag.errors import ReadError
from rag.formats import FILE_TYPES
from rag.index import Index
from rag.ingest.chunking import chunk_document
from rag.ingest.readers import archive, parts, read, reader_for, sheets
from rag.settings import FORMAT_VERSION, Settings
from rag.types import Document, Hit, location
from tests import documents as make
from tests.conftest import run_cli as run
from tests.fakes import HashEmbedder
from tests.test_readers import make_pdf


def read_one(path: Path) -> Document:
    (doc,) = list(read(path, path.name))
    assert isinstance(doc, Document)
    return doc


def reason(path: Path) -> str:
    with pytest.raises(ReadError) as info:
        list(read(path, path.name))
    assert info.value.path == str(path)
    return info.value.reason


def part_text(doc: Document, n: int) -> str:
    """The text of part ``n`` (1-based), as the part offsets cut it."""
    end = doc.pages[n] if n < len(doc.pages) else len(doc.text)
    return doc.text[doc.pages[n - 1] : end].strip()


# --- each reader ----------------------------------------------------------------------


def test_every_suffix_has_a_reader() -> None:
    assert [s for s in FILE_TYPES if reader_for(Path("x" + s)) is None] == []
    assert FILE_TYPES[".xlsx"] == FILE_TYPES[".csv"] == "spreadsheet"
    assert FILE_TYPES[".eml"] == FILE_TYPES[".mbox"] == "email"
    assert (FILE_TYPES[".docx"], FILE_TYPES[".pptx"]) == ("docx", "pptx")
    assert (FILE_TYPES[".epub"], FILE_TYPES[".ipynb"]) == ("epub", "notebook")


def test_docx_paragraphs_and_table_rows_are_parts_with_headings(tmp_path: Path) -> None:
    doc = read_one(make.make_docx(tmp_path / "memo.docx"))
    assert (doc.type, doc.title, doc.part, doc.part_names) == (
        "docx", "Quarterly Memo", "paragraph", ()
    )  # fmt: skip
    assert doc.text == (
        "# Quarterly Memo\n\nThis memo covers the first quarter.\n\n# Budget\n\n"
        "The marketing budget grew by twelve percent.\n\nTeam | Head | Seats\n\n"
        "Sales | Alice | 12\n\n## Hiring\n\nWe hire two engineers in April."
    )
    assert len(doc.pages) == 8
    assert part_text(doc, 6) == "Sales | Alice | 12"
    chunks = chunk_document(doc, HashEmbedder(), max_tokens=24, overlap=0)
    hiring = next(c for c in chunks if "engineers" in c.text)
    assert hiring.heading == "Budget > Hiring"
    assert (hiring.page_start, hiring.page_end) == (7, 8)


def test_pptx_slides_with_titles_tables_and_notes(tmp_path: Path) -> None:
    doc = read_one(make.make_pptx(tmp_path / "deck.pptx"))
    assert (doc.type, doc.title, doc.part) == ("pptx", "Roadmap", "slide")
    assert doc.part_names == ("Roadmap", "Risks", "")
    assert part_text(doc, 1) == (
        "# Roadmap\n\nShip the importer in May\n\nNotes: Mention the beta customers."
    )
    assert part_text(doc, 2) == "# Risks\n\nRisk | Owner\nVendor delay | Bob"
    assert part_text(doc, 3) == "# Slide 3\n\nQuestions welcome"


def test_xlsx_sheets_rows_named_by_the_header(tmp_path: Path) -> None:
    doc = read_one(make.make_xlsx(tmp_path / "book.xlsx"))
    assert (doc.type, doc.title, doc.part, doc.part_names) == (
        "spreadsheet", "book", "sheet", ("Staff", "Sales")
    )  # fmt: skip
    assert part_text(doc, 1) == (
        "# Staff\nRow 1: Name | Age | City\nRow 2: Name: Alice | Age: 30 | City: Lisbon\n"
        "Row 4: Name: Bob | Age: 41"
    )
    assert part_text(doc, 2) == (
        "# Sales\nRow 1: Region | Revenue\nRow 2: Region: North | Revenue: 1200.5\n"
        "Row 5: Region: South | Revenue: 800"
    )
    chunks = chunk_document(doc, HashEmbedder(), max_tokens=24, overlap=0)
    south = next(c for c in chunks if "South" in c.text)
    assert (south.page_start, south.page_end, south.heading) == (2, 2, "Sales")
    assert all("\n" not in c.text or c.text.count("Row") > 1 for c in chunks)  # rows whole


def test_huge_sheet_is_capped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sheets, "MAX_SHEET_ROWS", 2)
    with caplog.at_level(logging.WARNING):
        doc = read_one(make.make_xlsx(tmp_path / "book.xlsx"))
    assert "Row 4" not in doc.text and "Row 2: Region: North" in doc.text
    assert "Row 5" not in doc.text
    assert "sheet 'Staff' has over 2 rows" in caplog.text


def test_csv_rows_are_parts_numbered_as_in_the_file(tmp_path: Path) -> None:
    doc = read_one(make.make_csv(tmp_path / "scores.csv"))
    assert (doc.type, doc.part, doc.title) == ("spreadsheet", "row", "scores")
    assert doc.text == (
        "Row 1: name | score | comment\nRow 2: name: Alice | score: 9 | comment: fine, thanks\n"
        "Row 4: name: Bob | score: 7 | comment: two lines"
    )
    assert len(doc.pages) == 4 and part_text(doc, 3) == ""
    assert part_text(doc, 4).startswith("Row 4: name: Bob")


def test_csv_with_semicolons_and_no_header(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("1;2;3\n4;5;6\n")
    assert read_one(path).text == "Row 1: 1 | 2 | 3\nRow 2: 4 | 5 | 6"


def test_epub_chapters_in_spine_order_named_by_the_toc(tmp_path: Path) -> None:
    doc = read_one(make.make_epub(tmp_path / "sea.epub"))
    assert (doc.type, doc.title, doc.part) == ("epub", "The Sea Book", "chapter")
    assert doc.part_names == ("The Calm", "The Storm")  # the nav document is left out
    assert part_text(doc, 1) == "# The Calm\n\nThe water was still at dawn."
    # no heading of its own: the table of contents gives one
    assert part_text(doc, 2) == (
        "# The Storm\n\nWaves rose over the harbour wall.\n\nWind | Force 9"
    )


def test_notebook_cells_are_parts(tmp_path: Path) -> None:
    doc = read_one(make.make_notebook(tmp_path / "rain.ipynb"))
    assert (doc.type, doc.title, doc.part) == ("notebook", "Rainfall Analysis", "cell")
    assert len(doc.pages) == 4  # the empty cell keeps its number
    assert part_text(doc, 2) == (
        "```python\ntotal = sum([3, 4])\nprint(total)\n```\n```output\n7\n```"
    )
    assert part_text(doc, 3) == ""
    assert part_text(doc, 4) == "## Findings\nJune was the wettest month."


def test_eml_headers_body_and_attachment_names(tmp_path: Path) -> None:
    doc = read_one(make.make_eml(tmp_path / "inspection.eml"))
    assert (doc.type, doc.title, doc.part) == ("email", "Boat inspection", "message")
    assert doc.part_names == ("Boat inspection",)
    assert doc.text == (
        "# Boat inspection\n\nFrom: Alice <alice@example.com>\nTo: Bob <bob@example.com>\n"
        "Date: Mon, 01 Jan 2024 10:00:00 +0000\n\n"
        "The hull inspection is on Friday at noon.\n\nAttachments: report.pdf"
    )
    assert "%PDF" not in doc.text


def test_mbox_messages_named_by_subject_html_body_as_text(tmp_path: Path) -> None:
    doc = read_one(make.make_mbox(tmp_path / "crew.mbox"))
    assert (doc.type, doc.title, doc.part) == ("email", "crew", "message")
    assert doc.part_names == ("Harbour fees", "Crew list")
    assert part_text(doc, 2).startswith("# Crew list\n\nFrom: Alice")
    assert part_text(doc, 2).endswith("\n\nCarla joins the crew as navigator.")
    assert "<p>" not in doc.text


def test_readers_load_their_libraries_only_when_used() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import rag.ingest.readers; "
        "print(sorted(m for m in ('docx','pptx','openpyxl','ebooklib','nbformat') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


# --- damaged, locked and oversized files ----------------------------------------------

MAKERS = {
    "memo.docx": make.make_docx,
    "deck.pptx": make.make_pptx,
    "book.xlsx": make.make_xlsx,
    "sea.epub": make.make_epub,
    "rain.ipynb": make.make_notebook,
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_truncated_file_says_it_is_damaged(tmp_path: Path, name: str) -> None:
    good = MAKERS[name](tmp_path / name)
    cut = make.truncated(good, tmp_path / f"cut-{name}")
    assert "damaged" in reason(cut) or "truncated" in reason(cut)


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("x.docx", b"\x00\x01garbage" * 40, "not a complete zip package"),
        ("x.pptx", b"just some text", "not a complete zip package"),
        ("x.xlsx", b"", "empty file"),
        ("x.epub", b"PK\x03\x04 not really", "not a complete zip package"),
        ("x.ipynb", b'{"cells": [', "not valid JSON"),
        ("x.ipynb", b"[1, 2]", "not a JSON object"),
        ("x.ipynb", b'{"a": 1}', "not a valid Jupyter notebook"),
        ("x.eml", b"\x00\x01garbage with no headers", "no From, To, Date or Subject header"),
        ("x.mbox", b"no message starts here\n", "no messages"),
        ("x.csv", "café;1".encode("latin-1"), "not valid UTF-8"),
    ],
)
def test_garbage_gets_a_reason(tmp_path: Path, name: str, data: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    assert expected in reason(path)


@pytest.mark.parametrize("suffix", ["docx", "pptx", "xlsx"])
def test_password_protected_office_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"locked.{suffix}"
    ole = make.OLE_HEADER + bytes(504) + "EncryptionInfo".encode("utf-16-le") + b"junk" * 200
    path.write_bytes(ole)
    assert reason(path) == (
        "password-protected (encrypted) Office file; remove the password and index it again"
    )


def test_old_binary_word_file_with_a_docx_name(tmp_path: Path) -> None:
    path = tmp_path / "old.docx"
    path.write_bytes(make.OLE_HEADER + bytes(504) + "WordDocument".encode("utf-16-le"))
    assert "old binary Office file" in reason(path) and "save it as .docx" in reason(path)


def test_drm_epub_is_refused_but_font_obfuscation_is_not(tmp_path: Path) -> None:
    assert "encrypted (DRM)" in reason(make.make_epub(tmp_path / "drm.epub", drm=True))
    path = make.make_epub(tmp_path / "fonts.epub")
    with zipfile.ZipFile(path, "a") as z:
        z.writestr(
            "META-INF/encryption.xml",
            '<encryption xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
            '<enc:EncryptionMethod Algorithm="http://www.idpf.org/2008/embedding"/>'
            "</enc:EncryptedData></encryption>",
        )
    assert read_one(path).part_names == ("The Calm", "The Storm")


def test_zip_bomb_is_refused_before_unpacking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive, "MAX_UNZIPPED_BYTES", 1_000_000)
    path = tmp_path / "bomb.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", b"<" * 2_000_000)
    assert path.stat().st_size < 20_000
    assert "over the 1,000,000 byte limit (a zip bomb?)" in reason(path)


def test_text_taken_from_a_file_is_capped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(parts, "MAX_TEXT_CHARS", 60)
    with caplog.at_level(logging.WARNING):
        doc = read_one(make.make_docx(tmp_path / "memo.docx"))
    assert len(doc.text) == 60 and doc.text.startswith("# Quarterly Memo")
    assert len(doc.pages) == 3
    assert "only 3 paragraph(s) are indexed" in caplog.text


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
    settings = Settings(embedder=e.name, chunk_tokens=24, chunk_overlap=0)  # a slide a chunk
    with Index.create(tmp_path / "idx", settings, e) as index:
        index.add(old)
    db = sqlite3.connect(tmp_path / "idx" / "index.db")
    db.executescript(
        "ALTER TABLE documents DROP COLUMN parts;"
        "UPDATE meta SET value = '3' WHERE key = 'format_version';"
    )
    db.close()
    deck = make.make_pptx(old / "deck.pptx")
    (old / "timetable.pdf").write_bytes(make_pdf(["Boats leave hourly", "Buses leave at noon"]))
    with Index.open(tmp_path / "idx", e) as index:
        assert index.status().format_version == FORMAT_VERSION == 4
        assert index.search("ferry nine", k=1)[0].doc_id == "notes.md"
        report = index.add(old)
        assert (report.added, report.unchanged) == (2, 1)
        (hit,) = index.search("vendor delay owner", k=1, where={"path": deck.name})
        assert (hit.part, hit.page_start, hit.part_name) == ("slide", 2, "Risks")
        assert hit.location.endswith('(slide 2 "Risks")')
        (hit,) = index.search("buses noon", k=1, where={"path": "timetable.pdf"})
        assert (hit.part, hit.page_start, hit.page_end, hit.part_name) == ("page", 1, 2, "")
        assert hit.location == "timetable.pdf:1-3 (pp.1-2)"


# --- through the command line ---------------------------------------------------------


def mixed_folder(docs: Path) -> dict[str, str]:
    """One good file of each new format and a broken one of each: broken name -> reason."""
    docs.mkdir()
    for name, maker in {**MAKERS, "scores.csv": make.make_csv, "inspection.eml": make.make_eml,
                        "crew.mbox": make.make_mbox}.items():  # fmt: skip
        maker(docs / name)
    broken = docs / "broken"
    broken.mkdir()
    expected = {}
    for name in MAKERS:
        make.truncated(docs / name, broken / name)
        expected[name] = "damaged"
    (broken / "locked.docx").write_bytes(make.OLE_HEADER + b"junk" * 300)
    expected["locked.docx"] = "password-protected (encrypted) Office file"
    make.make_epub(broken / "drm.epub", drm=True)
    expected["drm.epub"] = "encrypted (DRM)"
    (broken / "scores.csv").write_bytes("café;1".encode("latin-1"))
    expected["scores.csv"] = "not valid UTF-8"
    (broken / "inspection.eml").write_bytes(b"\x00garbage")
    expected["inspection.eml"] = "not an e-mail message"
    (broken / "crew.mbox").write_bytes(b"garbage\n")
    expected["crew.mbox"] = "no messages"
    return expected


@pytest.mark.usefixtures("cli_fakes")
def test_cli_indexes_every_format_and_reports_the_broken_files(tmp_path: Path) -> None:
    index = str(tmp_path / "idx")
    first = tmp_path / "first"
    first.mkdir()
    (first / "ferry.md").write_text("# Ferry\n\nThe ferry to the island leaves at nine.\n")
    # small chunks, so that a slide, a sheet or a chapter is a chunk of its own
    code, _, _ = run("index", str(first), "--index", index, "--embedder", "fake-hash",
                     "--generator", "fake-echo", "--chunk-tokens", "24",
                     "--chunk-overlap", "0")  # fmt: skip
    assert code == 0
    docs = tmp_path / "docs"
    expected = mixed_folder(docs)

    code, out, _ = run("index", str(docs), "--index", index, "--json")
    assert code == 1
    report = json.loads(out)
    assert report["added"] == 8
    failures = {Path(f["path"]).name: f["reason"] for f in report["failures"]}
    assert set(failures) == set(expected)
    for name, words in expected.items():
        assert words in failures[name], (name, failures[name])
    assert all(Path(f["path"]).parent.name == "broken" for f in report["failures"])

    def top(query: str, path: str) -> dict[str, object]:
        code, out, err = run("search", query, "--index", index, "--where", f"path={path}",
                             "--json")  # fmt: skip
        assert code == 0, err
        hit: dict[str, object] = json.loads(out)["hits"][0]
        return hit

    def where(hit: dict[str, object]) -> tuple[object, ...]:
        return hit["doc_id"], hit["part"], hit["page_start"], hit["part_name"]

    assert where(top("vendor delay owner", "deck.pptx")) == ("deck.pptx", "slide", 2, "Risks")
    assert where(top("south revenue", "book.xlsx")) == ("book.xlsx", "sheet", 2, "Sales")
    assert where(top("harbour wall waves", "sea.epub")) == ("sea.epub", "chapter", 2, "The Storm")
    assert where(top("wettest month", "rain.ipynb"))[:3] == ("rain.ipynb", "cell", 4)
    assert where(top("navigator", "crew.mbox")) == ("crew.mbox", "message", 2, "Crew list")
    assert where(top("hull inspection", "inspection.eml"))[1:] == (
        "message", 1, "Boat inspection"
    )  # fmt: skip
    assert where(top("hire engineers", "memo.docx"))[:2] == ("memo.docx", "paragraph")
    assert where(top("Bob comment", "scores.csv"))[:2] == ("scores.csv", "row")

    code, out, _ = run("search", "vendor delay", "--index", index, "--where", "type=pptx")
    assert code == 0 and "deck.pptx:" in out and '(slide 2 "Risks")' in out
    code, out, _ = run("search", "revenue", "--index", index, "--where", "type=xlsx", "--json")
    assert {h["doc_id"] for h in json.loads(out)["hits"]} == {"book.xlsx", "scores.csv"}

    code, out, _ = run("ask", "Who owns the vendor delay risk?", "--index", index,
                       "--where", "path=deck.pptx", "--generator", "fake-echo",
                       "--min-confidence", "0", "--json")  # fmt: skip
    assert code == 0
    answer = json.loads(out)
    assert answer["passages"][0]["part"] == "slide"
    assert answer["citations"] and answer["citations"][0]["part"] == "slide"
    assert answer["citations"][0]["page_start"] in (1, 2)

    code, out, _ = run("search", "ferry island nine", "--index", index, "--json")
    assert json.loads(out)["hits"][0]["doc_id"] == "ferry.md"  # indexed first, still there
    code, out, _ = run("status", "--index", index, "--json")
    assert json.loads(out)["documents"] == 9
