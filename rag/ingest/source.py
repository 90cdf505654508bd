"""A stored document's text, read again from the file it was indexed from.

Citations carry character offsets into a document's text, which for most formats is
not the file's bytes (a PDF's text layer, an HTML page's visible text). Reading the
file again with the same reader gives that text back; the content hash stored with the
document says whether the file still holds what was indexed.

>>> document_text("/docs/guide.md", "guide.md", "9f2c...")  # doctest: +SKIP
'# Guide\\n...'
"""

from __future__ import annotations

import logging
from pathlib import Path

from rag.errors import ReadError, SourceChanged
from rag.ingest import readers

log = logging.getLogger(__name__)


def document_text(source: str, doc_id: str, content_hash: str) -> str:
    """The text of document ``doc_id`` as read from ``source``, the file recorded for it.

    Raises ``ReadError`` when the file cannot be read any more and ``SourceChanged``
    when it no longer holds the indexed text (it changed and was not indexed again).
    """
    path = Path(source)
    if not path.is_file():
        raise ReadError(source, "the file is gone; index its folder again")
    for item in readers.read(path, doc_id):
        if isinstance(item, ReadError) or (item.type == "jsonl" and item.doc_id != doc_id):
            continue
        if item.content_hash != content_hash:
            break
        return item.text
    log.info("%s no longer holds the text indexed as %r", source, doc_id)
    raise SourceChanged(
        f"{source} changed since {doc_id!r} was indexed from it; index it again to cite it"
    )
