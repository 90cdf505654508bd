"""Small real files of each office, e-book, notebook and e-mail format, written with the
same libraries that read them (or the standard library), and damaged copies of them."""

from __future__ import annotations

import mailbox
from email.message import EmailMessage
from pathlib import Path

import docx
import nbformat
import openpyxl
import pptx
from ebooklib import epub
from nbformat import v4
from pptx.util import Inches

OLE_HEADER = bytes.fromhex("D0CF11E0A1B11AE1")


def make_docx(path: Path) -> Path:
    d = docx.Document()
    d.add_heading("Quarterly Memo", 0)
    d.add_paragraph("This memo covers the first quarter.")
    d.add_heading("Budget", 1)
    d.add_paragraph("The marketing budget grew by twelve percent.")
    table = d.add_table(rows=2, cols=3)
    for cell, text in zip(table.rows[0].cells, ["Team", "Head", "Seats"]):
        cell.text = text
    for cell, text in zip(table.rows[1].cells, ["Sales", "Alice", "12"]):
        cell.text = text
    d.add_heading("Hiring", 2)
    d.add_paragraph("We hire two engineers in April.")
    d.save(str(path))
    return path


def make_pptx(path: Path) -> Path:
    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Roadmap"
    slide.placeholders[1].text_frame.text = "Ship the importer in May"
    slide.notes_slide.notes_text_frame.text = "Mention the beta customers."
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = "Risks"
    rows = slide.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(6), Inches(1)).table
    cells = {(0, 0): "Risk", (0, 1): "Owner", (1, 0): "Vendor delay", (1, 1): "Bob"}
    for (r, c), text in cells.items():
        rows.cell(r, c).text = text
    slide = deck.slides.add_slide(deck.slide_layouts[6])  # blank: no title
    box = slide.shapes.add_textbox(Inches(1), Inches(1), Inches(4), Inches(1))
    box.text_frame.text = "Questions welcome"
    deck.save(str(path))
    return path


def make_xlsx(path: Path) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Staff"
    sheet.append(["Name", "Age", "City"])
    sheet.append(["Alice", 30, "Lisbon"])
    sheet.append([])
    sheet.append(["Bob", 41.0, None])
    sales = book.create_sheet("Sales")
    sales["A1"], sales["B1"] = "Region", "Revenue"
    sales["A2"], sales["B2"] = "North", 1200.5
    sales["A5"], sales["B5"] = "South", 800
    book.save(str(path))
    return path


def make_csv(path: Path) -> Path:
    path.write_text('name,score,comment\nAlice,9,"fine, thanks"\n\nBob,7,"two\nlines"\n')
    return path


def make_epub(path: Path, drm: bool = False) -> Path:
    book = epub.EpubBook()
    book.set_identifier("sea-book-1")
    book.set_title("The Sea Book")
    book.set_language("en")
    calm = epub.EpubHtml(title="The Calm", file_name="calm.xhtml", lang="en")
    calm.content = "<html><body><h1>The Calm</h1><p>The water was still at dawn.</p></body></html>"
    storm = epub.EpubHtml(title="The Storm", file_name="storm.xhtml", lang="en")
    storm.content = (
        "<html><body><p>Waves rose over the harbour wall.</p>"
        "<table><tr><td>Wind</td><td>Force 9</td></tr></table></body></html>"
    )
    book.add_item(calm)
    book.add_item(storm)
    book.toc = (
        epub.Link("calm.xhtml", "The Calm", "calm"),
        epub.Link("storm.xhtml", "The Storm", "storm"),
    )
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", calm, storm]
    epub.write_epub(str(path), book)
    if drm:
        import zipfile

        with zipfile.ZipFile(path, "a") as z:
            z.writestr(
                "META-INF/encryption.xml",
                '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
                'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
                '<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
                '<enc:CipherData><enc:CipherReference URI="EPUB/storm.xhtml"/></enc:CipherData>'
                "</enc:EncryptedData></encryption>",
            )
    return path


def make_notebook(path: Path) -> Path:
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Py"}
    nb.cells = [
        v4.new_markdown_cell("# Rainfall Analysis\nWe load the rainfall series."),
        v4.new_code_cell(
            "total = sum([3, 4])\nprint(total)",
            outputs=[v4.new_output("stream", name="stdout", text="7\n")],
        ),
        v4.new_code_cell(""),
        v4.new_markdown_cell("## Findings\nJune was the wettest month."),
    ]
    nbformat.write(nb, str(path))
    return path


def make_message(subject: str, body: str, html: bool = False) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@example.com>"
    msg["To"] = "Bob <bob@example.com>"
    msg["Date"] = "Mon, 01 Jan 2024 10:00:00 +0000"
    msg["Subject"] = subject
    if html:
        msg.set_content(f"<html><body><p>{body}</p></body></html>", subtype="html")
    else:
        msg.set_content(body)
    return msg


def make_eml(path: Path) -> Path:
    msg = make_message("Boat inspection", "The hull inspection is on Friday at noon.")
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="report.pdf")
    path.write_bytes(msg.as_bytes())
    return path


def make_mbox(path: Path) -> Path:
    box = mailbox.mbox(str(path))
    box.lock()
    try:
        box.add(make_message("Harbour fees", "Fees rise to forty euros in March."))
        box.add(make_message("Crew list", "Carla joins the crew as navigator.", html=True))
    finally:
        box.flush()
        box.unlock()
        box.close()
    return path


def truncated(path: Path, dest: Path) -> Path:
    """A copy of ``path`` cut in half, as an interrupted download leaves it."""
    data = path.read_bytes()
    dest.write_bytes(data[: len(data) // 2])
    return dest
