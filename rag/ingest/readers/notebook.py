"""Jupyter notebooks (nbformat): cell by cell, each cell a part (unit ``cell``).

Markdown and raw cells keep their text; a code cell is a fenced block in the
notebook's language, followed by the start of its plain-text output, if any. Cell
``n`` is the n-th cell of the notebook, empty ones counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.errors import ReadError
from rag.ingest.readers.files import MAX_DOCUMENT_BYTES, decode, read_bytes
from rag.ingest.readers.parts import Parts
from rag.ingest.readers.text import markdown_title
from rag.types import Document

# Characters of a code cell's output kept: enough to find a printed result, not a log.
MAX_OUTPUT_CHARS = 500


def read_notebook(path: Path, doc_id: str) -> Document:
    # Notebooks hold their images as base64 outputs, so they may be large.
    text = decode(path, read_bytes(path, MAX_DOCUMENT_BYTES))
    try:
        import nbformat
        from nbformat.reader import NotJSONError

        if not text.lstrip().startswith("{"):
            raise ReadError(str(path), "not a Jupyter notebook: not a JSON object")
        try:
            notebook = nbformat.reads(text, as_version=4, capture_validation_error={})
        except NotJSONError:
            raise ReadError(
                str(path), "not a Jupyter notebook: not valid JSON (damaged or truncated?)"
            ) from None
        metadata = notebook.get("metadata") or {}
        language = (metadata.get("kernelspec") or {}).get("language") or (
            metadata.get("language_info") or {}
        ).get("name", "")
        parts = Parts(path, "cell")
        for cell in notebook.get("cells") or []:
            if not parts.add(_cell_text(cell, str(language or ""))):
                break
    except ReadError:
        raise
    except Exception as err:  # nbformat raises many exception types for invalid notebooks
        message = " ".join(str(err).split())[:200] or type(err).__name__
        raise ReadError(str(path), f"not a valid Jupyter notebook ({message})") from None
    title = markdown_title(parts.text()) or str(metadata.get("title") or "")
    return parts.document(doc_id, "notebook", title, "no text in any cell")


def _cell_text(cell: Any, language: str) -> str:
    source = cell.get("source") or ""
    if isinstance(source, list):  # nbformat joins these; a hand-edited file may not
        source = "".join(source)
    source = str(source).strip("\n")
    if cell.get("cell_type") != "code":
        return source
    blocks = [f"```{language}\n{source}\n```"] if source.strip() else []
    output = _output_text(cell.get("outputs") or [])
    if output:
        blocks.append(f"```output\n{output}\n```")
    return "\n".join(blocks)


def _output_text(outputs: list[Any]) -> str:
    """The start of a code cell's plain-text output: streams, results, errors."""
    pieces: list[str] = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            pieces.append(_joined(out.get("text")))
        elif kind in ("execute_result", "display_data"):
            pieces.append(_joined((out.get("data") or {}).get("text/plain")))
        elif kind == "error":
            pieces.append(f"{out.get('ename', '')}: {out.get('evalue', '')}")
    text = "\n".join(p.strip("\n") for p in pieces if p.strip())
    if len(text) > MAX_OUTPUT_CHARS:
        text = text[:MAX_OUTPUT_CHARS].rstrip() + " …"
    return text.replace("```", "'''")  # the output must not close its fence


def _joined(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return str(value or "")
