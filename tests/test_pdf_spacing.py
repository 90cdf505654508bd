"""PDF pages whose words pypdf runs together are read again by pdfminer.six."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from pdfminer.pdfinterp import PDFPageInterpreter
from pypdf import PdfReader

from rag.ingest.readers import pdf as pdf_reader
from tests.test_readers import pdf_document, read_one

DEBIAN_REFERENCE = Path("/usr/share/debian-reference/debian-reference.en.pdf")
# TeX's subset fonts number their glyphs from the space, 29 below ASCII ('a' is 68)
TEX_SHIFT = 29


def type0_font(text: str, shift: int = TEX_SHIFT) -> list[bytes]:
    """A Type0 font, no glyphs embedded, whose code for a character c is ord(c) - shift;
    its ToUnicode map turns the codes of ``text`` back into characters. As in a TeX subset
    without a space, code 32 draws another glyph, 564/1000 em wide."""
    chars = sorted(set(text))
    pairs = "".join(f"<{ord(c) - shift:04X}> <{ord(c):04X}>\n" for c in chars)
    cmap = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /T def\n"
        "/CMapType 2 def 1 begincodespacerange <0000> <FFFF> endcodespacerange\n"
        f"{len(chars)} beginbfchar\n{pairs}endbfchar\n"
        "endcmap CMapName currentdict /CMap defineresource pop end end"
    ).encode()
    return [
        b"<< /Type /Font /Subtype /Type0 /BaseFont /Subset /Encoding /Identity-H "
        b"/DescendantFonts [4 0 R] /ToUnicode 5 0 R >>",
        b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Subset /CIDSystemInfo "
        b"<< /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
        b"/FontDescriptor 6 0 R /DW 500 /W [32 [564]] >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(cmap), cmap),
        b"<< /Type /FontDescriptor /FontName /Subset /Flags 32 /FontBBox [0 -200 1000 800] "
        b"/ItalicAngle 0 /Ascent 800 /Descent -200 /CapHeight 700 /StemV 80 >>",
    ]


def shown(text: str, shift: int = TEX_SHIFT) -> str:
    return "<" + "".join(f"{ord(c) - shift:04X}" for c in text) + ">"


def page(lines: list[str], gap: int | None = None, shift: int = TEX_SHIFT) -> bytes:
    """A content stream, one line per item. With a ``gap``, each word is placed by a TJ
    offset of gap/1000 em after the one before, and no space is drawn; else the lines are
    drawn whole, spaces included."""
    if gap is None:
        shows = [f"{shown(line, shift)} Tj" for line in lines]
    else:
        shows = [
            f"[{f' -{gap} '.join(shown(w, shift) for w in line.split())}] TJ" for line in lines
        ]
    return f"BT /F1 12 Tf 14 TL 72 720 Td {' T* '.join(shows)} ET".encode()


@pytest.fixture
def reread(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The page numbers handed to pdfminer.six, one list per document (the real call)."""
    calls: list[list[int]] = []
    real = pdf_reader.pdfminer_texts

    def spy(data: bytes, pages: Sequence[int]) -> Iterator[tuple[int, str | Exception]]:
        calls.append(list(pages))
        return real(data, pages)

    monkeypatch.setattr(pdf_reader, "pdfminer_texts", spy)
    return calls


KERNED = ["Replace it with the following to track testing.", "Words are placed by offsets."]
WIDE = ["Here the gaps between words", "are wide enough for pypdf."]


def no_spaces(*texts: list[str]) -> str:
    return "".join("".join(lines) for lines in texts).replace(" ", "")


def test_words_placed_by_offsets_get_their_spaces_back(
    tmp_path: Path, reread: list[list[int]]
) -> None:
    # a quarter em between words, as XeTeX sets them in the Debian Reference: pypdf wants
    # about half the width of the glyph at code 32, which in this font is no space
    path = tmp_path / "kerned.pdf"
    font = type0_font(no_spaces(KERNED, WIDE))
    path.write_bytes(pdf_document([page(KERNED, gap=250), page(WIDE, gap=600)], font))
    by_pypdf = [p.extract_text() for p in PdfReader(path).pages]
    assert by_pypdf == [
        "Replaceitwiththefollowingtotracktesting.\nWordsareplacedbyoffsets.",
        "\n".join(WIDE),
    ]

    doc = read_one(path)
    assert doc.text == "\n".join(KERNED) + "\n\n" + "\n".join(WIDE)
    assert doc.pages == (0, len("\n".join(KERNED)) + 2)
    assert doc.text[doc.pages[1] :] == "\n".join(WIDE)
    assert reread == [[0]]  # the page pypdf reads well is not read again


@pytest.mark.parametrize(
    ("lines", "shift"),
    [
        (["A page of English prose, where every word", "is followed by a space."], TEX_SHIFT),
        (
            [
                "Die Paketverwaltung liest die Steuerdateien aller installierten Pakete.",
                "Laufzeitbibliotheken werden nach ihrem Namen und ihrer Version gesucht;",
                "ein Systemadministrator kann die Konfigurationsdateien jederzeit anpassen,",
                "und Umgebungsvariablen haben Vorrang vor den Voreinstellungen.",
            ],
            TEX_SHIFT,
        ),
        (
            [
                "See https://deb.debian.org/debian/dists/bookworm/InRelease",
                "getElementsByTagName(x)",
            ],
            TEX_SHIFT,
        ),
        (["日本語の文章は単語の間に空白を置かずに書きます。", "中文也不用空格分词。"], 0),
    ],
    ids=["english", "german-compounds", "url-and-code", "cjk"],
)
def test_a_page_with_its_spaces_is_not_read_again(
    tmp_path: Path, reread: list[list[int]], lines: list[str], shift: int
) -> None:
    path = tmp_path / "normal.pdf"
    spaced = page(lines, shift=shift)
    path.write_bytes(pdf_document([spaced, spaced], type0_font(" ".join(lines), shift)))
    assert read_one(path).text == "\n".join(lines) + "\n\n" + "\n".join(lines)
    assert reread == []


def test_a_page_pdfminer_cannot_read_keeps_pypdf_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: PDFPageInterpreter, page: object) -> None:
        raise ValueError("damaged content stream")

    monkeypatch.setattr(PDFPageInterpreter, "process_page", broken)
    path = tmp_path / "kerned.pdf"
    path.write_bytes(pdf_document([page(KERNED, gap=250)], type0_font(no_spaces(KERNED))))
    with caplog.at_level(logging.WARNING, logger=pdf_reader.__name__):
        doc = read_one(path)
    assert doc.text == "Replaceitwiththefollowingtotracktesting.\nWordsareplacedbyoffsets."
    assert "page 1 keeps words run together" in caplog.text
    assert "damaged content stream" in caplog.text


@pytest.mark.skipif(not DEBIAN_REFERENCE.exists(), reason="needs the package debian-reference-en")
def test_debian_reference_reads_with_spaces_between_words() -> None:
    doc = read_one(DEBIAN_REFERENCE)
    sentence = "Replace it with the following to track testing."
    page_101 = doc.text[doc.pages[100] : doc.pages[101]]
    assert sentence in " ".join(page_101.split())
    assert "73 / 233" in page_101  # the page's own number: pages were not shifted
    assert len(doc.pages) == len(PdfReader(io.BytesIO(DEBIAN_REFERENCE.read_bytes())).pages)
