"""Tests for rag.ingest discovery and readers: finding files, reading each type."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader, PdfWriter

from rag.errors import ReadError
from rag.ingest.discovery import Skipped, discover
from rag.ingest.readers import files as reader_files
from rag.ingest.readers import jsonl, read
from rag.types import FILE_TYPES, Document

HELVETICA = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    """A minimal valid PDF, one Helvetica text object per page ('\\n' starts a new line)."""
    streams = []
    for text in pages:
        ops = " T* ".join(f"({line}) Tj" for line in text.split("\n"))
        streams.append(f"BT /F1 12 Tf 14 TL 72 720 Td {ops} ET".encode() if text else b"")
    return pdf_document(streams, [HELVETICA], title)


def pdf_document(streams: list[bytes], font: list[bytes], title: str | None = None) -> bytes:
    """A minimal valid PDF, one page per content stream, whose font /F1 is ``font[0]``:
    object 3, with the objects it refers to following it from object 4."""
    first_page = 3 + len(font)
    page_ids = [first_page + 2 * i for i in range(len(streams))]
    kids = " ".join(f"{p} 0 R" for p in page_ids)
    objs = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{kids}] /Count {len(streams)} >>".encode(),
    }
    objs.update({3 + i: obj for i, obj in enumerate(font)})
    for pid, stream in zip(page_ids, streams, strict=True):
        objs[pid] = (
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {pid + 1} 0 R >>"
        ).encode()
        objs[pid + 1] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    info = ""
    if title:
        objs[len(objs) + 1] = f"<< /Title ({title}) >>".encode()
        info = f" /Info {len(objs)} 0 R"
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for num in sorted(objs):
        offsets[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, objs[num])
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % offsets[n] for n in sorted(objs))
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R{info} >>\n".encode()
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def read_one(path: Path, doc_id: str = "doc") -> Document:
    (doc,) = list(read(path, doc_id))
    assert isinstance(doc, Document)
    return doc


def read_error(path: Path) -> ReadError:
    with pytest.raises(ReadError) as info:
        list(read(path, "doc"))
    assert info.value.path == str(path)
    return info.value


# --- plain text, code, Markdown, reStructuredText -------------------------------------


def test_suffix_kinds_cover_the_documented_types() -> None:
    assert FILE_TYPES[".txt"] == "text"
    assert FILE_TYPES[".md"] == FILE_TYPES[".markdown"] == "markdown"
    assert FILE_TYPES[".rst"] == "rst"
    assert FILE_TYPES[".html"] == FILE_TYPES[".htm"] == "html"
    assert FILE_TYPES[".pdf"] == "pdf"
    assert FILE_TYPES[".jsonl"] == "jsonl"
    code = [".py", ".js", ".ts", ".tsx", ".java", ".c", ".h", ".cpp", ".go", ".rs", ".sh"]
    for suffix in [*code, ".sql", ".toml", ".yaml", ".yml", ".cfg"]:
        assert FILE_TYPES[suffix] == "code", suffix


def test_text_file_is_one_document_with_normalized_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"first\r\nsecond\rthird\n")
    doc = read_one(path, "sub/notes.txt")
    assert doc == Document("sub/notes.txt", str(path), "first\nsecond\nthird\n", "text", "notes")


def test_code_file_keeps_its_text(tmp_path: Path) -> None:
    path = tmp_path / "tool.py"
    path.write_text("def f():\n    return 1\n")
    doc = read_one(path)
    assert (doc.type, doc.title, doc.text) == ("code", "tool", "def f():\n    return 1\n")


def test_markdown_title_is_first_h1_and_syntax_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    body = "```sh\n# not a title\n```\n## Sub\n# Install Guide #\n\nUse *pip*.\n# Later\n"
    path.write_text(body)
    doc = read_one(path)
    assert doc.type == "markdown"
    assert doc.title == "Install Guide"
    assert doc.text == body


def test_markdown_without_h1_is_titled_by_stem(tmp_path: Path) -> None:
    path = tmp_path / "faq.markdown"
    path.write_text("## Only a subheading\ntext\n")
    assert read_one(path).title == "faq"


def test_rst_is_titled_by_stem(tmp_path: Path) -> None:
    path = tmp_path / "index.rst"
    path.write_text("Title\n=====\n\nBody.\n")
    doc = read_one(path)
    assert (doc.type, doc.title, doc.text) == ("rst", "index", "Title\n=====\n\nBody.\n")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-32-be", "utf-8-sig"])
def test_bom_files_decode(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "bom.txt"
    data = "Grüße, 世界\r\nzwei".encode(encoding)
    if encoding.endswith("-be"):  # the -be codecs write no BOM; add the big-endian one
        data = "\ufeff".encode(encoding) + data
    path.write_bytes(data)
    assert read_one(path).text == "Grüße, 世界\nzwei"


def test_invalid_utf8_names_path_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("café au lait".encode("latin-1"))
    err = read_error(path)
    assert str(path) in str(err)
    assert "not valid UTF-8" in err.reason
    assert "byte offset 3" in err.reason
    assert "convert it to UTF-8" in err.reason


def test_binary_content_with_text_suffix_raises(tmp_path: Path) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert "binary content" in read_error(path).reason


@pytest.mark.parametrize("content", [b"", b"  \n\t\r\n"])
def test_empty_or_blank_file_raises(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.md"
    path.write_bytes(content)
    assert read_error(path).reason == "empty file (no text)"


def test_oversize_file_raises_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader_files, "MAX_FILE_BYTES", 10)
    path = tmp_path / "big.txt"
    path.write_text("x" * 11)
    reason = read_error(path).reason
    assert "11 bytes" in reason and "10 byte limit" in reason
    assert "split it into smaller files" in reason
    path.write_text("x" * 10)
    assert read_one(path).text == "x" * 10


def test_unreadable_file_raises_permission_denied(tmp_path: Path) -> None:
    path = tmp_path / "secret.txt"
    path.write_text("hidden")
    path.chmod(0)
    try:
        try:
            path.open("rb").close()
        except PermissionError:
            pass
        else:
            pytest.skip("running with privileges that ignore file permissions")
        assert "permission denied" in read_error(path).reason
    finally:
        path.chmod(0o644)


def test_missing_and_unsupported_files_raise(tmp_path: Path) -> None:
    assert read_error(tmp_path / "gone.txt").reason == "no such file"
    (tmp_path / "pic.png").write_bytes(b"\x89PNG")
    assert "unsupported file type '.png'" in read_error(tmp_path / "pic.png").reason


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(st.characters(codec="utf-8", exclude_characters="\x00\ufeff")),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32"]),
)
def test_any_text_round_trips_up_to_line_endings(text: str, encoding: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "t.txt")
        path.write_bytes(text.encode(encoding))
        expected = text.replace("\r\n", "\n").replace("\r", "\n")
        if expected.strip():
            assert read_one(path).text == expected
        else:
            assert read_error(path).reason == "empty file (no text)"


# --- HTML -----------------------------------------------------------------------------

PAGE = """<!doctype html>
<html><head><title>  Release   Notes </title>
<style>body { color: red }</style><script>var secret = "SCRIPT";</script></head>
<body><h1>Version 2</h1>
<p>Faster   startup
and <b>fewer</b> bugs.</p><!-- a COMMENT -->
<noscript>NOSCRIPT</noscript><template>TEMPLATE</template><svg><text>SVG</text></svg>
<ul><li>one</li><li>two</li></ul><div>line<br>break</div>
<pre>  keep
    indent  </pre></body></html>
"""


def test_html_keeps_title_and_visible_text_only(tmp_path: Path) -> None:
    path = tmp_path / "notes.html"
    path.write_text(PAGE)
    doc = read_one(path)
    assert doc.type == "html"
    assert doc.title == "Release Notes"
    assert doc.text == (
        "Version 2\n\nFaster startup and fewer bugs.\n\n"
        "one\ntwo\n\nline\nbreak\n\n  keep\n    indent"
    )
    for hidden in ("SCRIPT", "color", "COMMENT", "NOSCRIPT", "TEMPLATE", "SVG", "Release"):
        assert hidden not in doc.text


def test_html_drops_site_navigation(tmp_path: Path) -> None:
    path = tmp_path / "manual.html"
    path.write_text(
        '<div class="navheader"><a href="a.html">Prev</a> <a href="b.html">Up</a></div>'
        "<nav><ul><li>Home</li><li>Contents</li></ul></nav>"
        '<div role="navigation" class="related">Index | Modules</div>'
        "<h1>VACUUM</h1><p>VACUUM reclaims storage occupied by dead tuples.</p>"
        '<div class="navfooter"><p>Next: ANALYZE</p></div>'
    )
    assert read_one(path).text == "VACUUM\n\nVACUUM reclaims storage occupied by dead tuples."


def test_html_without_title_uses_stem_and_survives_huge_script(tmp_path: Path) -> None:
    path = tmp_path / "page.htm"
    path.write_text("<script>" + "x=1;" * 500_000 + "</script><p>visible</p>")
    doc = read_one(path)
    assert (doc.title, doc.text) == ("page", "visible")


def test_html_deeply_nested_does_not_overflow(tmp_path: Path) -> None:
    path = tmp_path / "deep.html"
    path.write_text("<span>" * 20_000 + "deep" + "</span>" * 20_000)
    assert read_one(path).text == "deep"


def test_html_with_no_visible_text_raises(tmp_path: Path) -> None:
    path = tmp_path / "blank.html"
    path.write_text("<html><head><title>T</title></head><body><script>x()</script></body></html>")
    assert "no visible text" in read_error(path).reason


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(["<p>", "</p>", "<div>", "<br>", "<pre>", "</pre>", "<script>", "a  b"])
        | st.text(max_size=8),
        max_size=20,
    )
)
def test_html_text_is_clean_for_any_markup(parts: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "x.html")
        path.write_text("".join(parts), encoding="utf-8", errors="surrogatepass")
        try:
            doc = read_one(path)
        except ReadError:
            return
        assert doc.text.strip()
        assert "\n\n\n" not in doc.text
        assert all(line == line.rstrip(" \t") for line in doc.text.split("\n"))


# --- PDF ------------------------------------------------------------------------------


def test_pdf_pages_and_offsets(tmp_path: Path) -> None:
    path = tmp_path / "paper.pdf"
    path.write_bytes(make_pdf(["Hello page one", "Second page\nline two"], title="A Paper"))
    doc = read_one(path, "paper.pdf")
    assert (doc.doc_id, doc.type, doc.title) == ("paper.pdf", "pdf", "A Paper")
    assert doc.text == "Hello page one\n\nSecond page\nline two"
    assert doc.pages == (0, len("Hello page one\n\n"))
    assert doc.text[doc.pages[1] :] == "Second page\nline two"


def test_pdf_without_metadata_title_uses_stem(tmp_path: Path) -> None:
    path = tmp_path / "scan2.pdf"
    path.write_bytes(make_pdf(["", "only page two"]))
    doc = read_one(path)
    assert doc.title == "scan2"
    assert doc.pages == (0, 2)
    assert doc.text == "\n\nonly page two"


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_pdf_raises(tmp_path: Path, cut: float) -> None:
    data = make_pdf(["Hello page one", "Second page"])
    path = tmp_path / "cut.pdf"
    path.write_bytes(data[: int(len(data) * cut)])
    assert "cannot parse PDF" in read_error(path).reason


def test_non_pdf_bytes_with_pdf_suffix_raise(tmp_path: Path) -> None:
    path = tmp_path / "fake.pdf"
    path.write_text("this is not a PDF at all")
    assert "cannot parse PDF" in read_error(path).reason


def test_pdf_without_text_layer_raises(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(make_pdf(["", ""]))
    assert read_error(path).reason == "no text layer (scanned PDF?); run OCR on it first"


def test_password_protected_pdf_raises(tmp_path: Path) -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(["secret text"]))))
    writer.encrypt(user_password="pw", owner_password="owner", algorithm="RC4-128")
    path = tmp_path / "locked.pdf"
    with path.open("wb") as f:
        writer.write(f)
    assert "encrypted" in read_error(path).reason


# --- JSONL ----------------------------------------------------------------------------


def test_jsonl_yields_documents_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    lines = [
        json.dumps({"_id": "d1", "title": "One", "text": "first doc", "url": "u", "tags": ["a"]}),
        "{not json",
        "",
        json.dumps([1, 2]),
        json.dumps({"text": "no id"}),
        json.dumps({"id": 7, "text": "int id\r\nhere"}),
        json.dumps({"_id": "d3"}),
        json.dumps({"_id": "d4", "text": 5}),
        json.dumps({"_id": "d5", "text": "   "}),
        json.dumps({"_id": "d1", "text": "again"}),
    ]
    data = ("\n".join(lines) + "\n").encode() + b'{"_id": "d6", "text": "caf\xe9"}\n'
    path.write_bytes(b"\xef\xbb\xbf" + data)  # a BOM on the first line is tolerated

    results = list(read(path, "ignored"))
    docs = [r for r in results if isinstance(r, Document)]
    errors = {r.path: r.reason for r in results if isinstance(r, ReadError)}

    assert docs == [
        Document("d1", str(path), "first doc", "jsonl", "One", {"url": "u", "tags": ["a"]}),
        Document("7", str(path), "int id\nhere", "jsonl", ""),
    ]
    assert sorted(errors) == sorted(f"{path}:{n}" for n in (2, 4, 5, 7, 8, 9, 10, 11))
    assert errors[f"{path}:2"].startswith("invalid JSON")
    assert errors[f"{path}:4"] == "expected a JSON object, got array"
    assert errors[f"{path}:5"] == "missing '_id' or 'id'"
    assert errors[f"{path}:7"] == "missing 'text'"
    assert errors[f"{path}:8"] == "'text' must be a string, got number"
    assert errors[f"{path}:9"] == "empty text"
    assert "duplicate id 'd1'" in errors[f"{path}:10"]
    assert "not valid UTF-8" in errors[f"{path}:11"]


def test_jsonl_with_only_bad_lines_yields_only_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('"just a string"\n{"id": null, "text": "x"}\n')
    results = list(read(path, "bad"))
    assert all(isinstance(r, ReadError) for r in results)
    assert [r.path for r in results if isinstance(r, ReadError)] == [f"{path}:1", f"{path}:2"]


def test_jsonl_line_over_the_cap_is_a_bad_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonl, "MAX_LINE_BYTES", 40)
    path = tmp_path / "long.jsonl"
    long_line = json.dumps({"id": "a", "text": "y" * 100})
    path.write_text(long_line + "\n" + json.dumps({"id": "b", "text": "short"}) + "\n")
    results = list(read(path, "long"))
    assert isinstance(results[0], ReadError) and results[0].path == f"{path}:1"
    assert "byte limit" in results[0].reason
    assert isinstance(results[1], Document) and results[1].doc_id == "b"
    assert len(results) == 2


def test_jsonl_missing_file_raises(tmp_path: Path) -> None:
    assert read_error(tmp_path / "none.jsonl").reason == "no such file"


# --- discover -------------------------------------------------------------------------


def touch(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_discover_finds_supported_files_sorted_and_skips_hidden(tmp_path: Path) -> None:
    skipped_silently = [".hidden.txt", ".git/config.txt", "__pycache__/m.py", "sub/.venv/l.py"]
    for rel in ["b.md", "a.txt", "sub/c.py", "sub/deeper/d.pdf", "img.png", "README"]:
        touch(tmp_path / rel)
    for rel in [*skipped_silently, "node_modules/x/i.js"]:
        touch(tmp_path / rel)
    files, skipped = discover(tmp_path)
    assert files == [tmp_path / p for p in ["a.txt", "b.md", "sub/c.py", "sub/deeper/d.pdf"]]
    assert skipped == [
        Skipped(str(tmp_path / "README"), "unsupported file type (no suffix)"),
        Skipped(str(tmp_path / "img.png"), "unsupported file type '.png'"),
    ]


def test_discover_survives_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    touch(root / "real.txt")
    touch(tmp_path / "outside.md")
    os.symlink(root, root / "loop")  # a folder linking to its parent
    os.symlink(root / "self.txt", root / "self.txt")  # a file link pointing at itself
    os.symlink(tmp_path / "missing.txt", root / "broken.txt")
    os.symlink(tmp_path / "outside.md", root / "linked.md")
    files, skipped = discover(root)
    assert files == [root / "linked.md", root / "real.txt"]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert reasons["self.txt"] == "symbolic link loop"
    assert reasons["broken.txt"].startswith("broken symbolic link")
    assert "not followed" in reasons["loop"]
    assert read_one(root / "linked.md").text == "x"


def test_discover_single_file_root(tmp_path: Path) -> None:
    path = touch(tmp_path / "one.rst")
    assert discover(path) == ([path], [])
    png = touch(tmp_path / "one.PNG")
    assert discover(png) == ([], [Skipped(str(png), "unsupported file type '.PNG'")])


def test_discover_suffix_match_ignores_case(tmp_path: Path) -> None:
    path = touch(tmp_path / "UPPER.TXT")
    assert discover(tmp_path) == ([path], [])
    assert read_one(path).type == "text"


def test_discover_missing_root_raises(tmp_path: Path) -> None:
    with pytest.raises(ReadError) as info:
        discover(tmp_path / "nope")
    assert info.value.reason == "no such file or folder"
    assert info.value.path == str(tmp_path / "nope")
