"""Spreadsheets: Excel workbooks (openpyxl) and CSV files (the standard ``csv`` module).

Every row becomes one line that starts with its row number in the sheet, its cells
named by the header row when the sheet has one: ``Row 5: Name: Alice | Age: 30``.
Empty rows are left out. A workbook is read sheet by sheet, each sheet a part (unit
``sheet``, named by the sheet) headed ``# Sheet name``; formulas give their last
computed value. A CSV file is read row by row, each row a part (unit ``row``), so a
passage's location gives the rows it spans as a spreadsheet program numbers them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rag.errors import ReadError
from rag.ingest.readers.archive import read_package
from rag.ingest.readers.files import decode, parsing, read_bytes
from rag.ingest.readers.parts import Parts
from rag.types import Document

logger = logging.getLogger(__name__)

# Rows read from one sheet (or CSV file) at most; the rest are left out with a warning.
MAX_SHEET_ROWS = 100_000


def read_xlsx(path: Path, doc_id: str) -> Document:
    data, _ = read_package(path, "XLSX")
    with parsing(path, "XLSX"):
        import openpyxl

        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            title = (book.properties.title or "").strip()
            parts = Parts(path, "sheet")
            for name in book.sheetnames:  # in tab order, chart sheets (no cells) included
                sheet = book[name]
                lines: list[str] = []
                if hasattr(sheet, "iter_rows"):
                    sheet.reset_dimensions()  # the stored size may be wrong: read every row
                    rows = sheet.iter_rows(min_row=1, values_only=True)
                    size = 0
                    for line in _row_lines(rows, path, name):
                        if line:
                            lines.append(line)
                            size += len(line) + 1
                        if size > parts.room:  # the cap is reached: add() says so
                            break
                heading = f"# {' '.join(name.split())}\n"
                if not parts.add(heading + "\n".join(lines) if lines else "", name):
                    break
        finally:
            book.close()
    return parts.document(doc_id, "spreadsheet", title, "no cells with values in any sheet")


def read_csv(path: Path, doc_id: str) -> Document:
    text = decode(path, read_bytes(path))
    try:
        dialect: Any = csv.Sniffer().sniff(text[: 64 * 1024], delimiters=",;\t|")
    except csv.Error:  # one column, or too irregular to tell: plain commas
        dialect = csv.excel
    parts = Parts(path, "row", separator="\n")
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        for line in _row_lines(reader, path, ""):  # every record is a part, empty ones too
            if not parts.add(line):
                break
    except csv.Error as err:
        raise ReadError(
            str(path), f"cannot parse CSV (record {reader.line_num}: {err}); check its quoting"
        ) from None
    return parts.document(doc_id, "spreadsheet", "", "no cells with values")


def _row_lines(rows: Iterable[Sequence[Any]], path: Path, sheet: str) -> Iterator[str]:
    """The line of each row, numbered from 1: ``""`` for a row without values."""
    header: list[str] | None = None
    kept = 0
    for number, row in enumerate(rows, 1):
        values = [_cell(v) for v in row]
        if not any(values):
            yield ""
            continue
        if kept == MAX_SHEET_ROWS:
            where = f"sheet {sheet!r}" if sheet else "the file"
            logger.warning(
                "%s: %s has over %s rows with values; the rest are left out",
                path,
                where,
                f"{MAX_SHEET_ROWS:,}",
            )
            return
        kept += 1
        if header is None and kept == 1 and _is_header(row, values):
            header = values
            yield f"Row {number}: " + " | ".join(v for v in values if v)
            continue
        yield f"Row {number}: " + _cells_text(values, header)


def _cell(value: Any) -> str:
    """A cell's value as text, on one line: whole numbers without ``.0``, dates in ISO form."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return " ".join(str(value).split())


def _is_header(row: Sequence[Any], values: list[str]) -> bool:
    """A first row of two or more distinct text cells, none a number, names the columns."""
    named = [v for v, raw in zip(values, row) if v and isinstance(raw, str) and not _number(v)]
    filled = [v for v in values if v]
    return len(named) >= 2 and len(named) == len(filled) and len(set(named)) == len(named)


def _number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def _cells_text(values: list[str], header: list[str] | None) -> str:
    if header is None:
        return " | ".join(v for v in values if v)
    cells = []
    for column, value in enumerate(values):
        if value:
            name = header[column] if column < len(header) and header[column] else None
            cells.append(f"{name or _column_letter(column + 1)}: {value}")
    return " | ".join(cells)


def _column_letter(n: int) -> str:
    """Spreadsheet column name of 1-based column ``n``: A, B, ... Z, AA, AB, ..."""
    name = ""
    while n:
        n, rest = divmod(n - 1, 26)
        name = chr(ord("A") + rest) + name
    return name
