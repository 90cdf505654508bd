"""Lexical search: BM25 over the FTS5 index, and filters as SQL over documents.

>>> lexical_query("How is BERT trained?")
'"bert" OR "trained"'
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, text

from rag.text import STOPWORDS, WORD
from rag.types import Where

# Column weights for bm25(): title, heading, text.
BM25_WEIGHTS = (1.0, 1.0, 1.0)


def lexical_query(text: str) -> str:
    """An FTS5 query matching any of the text's words (stopwords dropped), each quoted."""
    words = dict.fromkeys(w for w in WORD.findall(text.lower()) if w not in STOPWORDS)
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)


def document_filter(where: Where) -> tuple[str, dict[str, Any]]:
    """A SQL condition on ``documents d`` and its named parameters."""
    conds, params = ["1"], dict[str, Any]()
    if where.path is not None:
        conds.append("d.doc_id GLOB :path_glob")
        params["path_glob"] = where.path
    if where.type is not None:
        conds.append("d.kind = :kind")
        params["kind"] = where.type
    for n, (key, value) in enumerate(where.metadata.items()):
        conds.append(f"json_extract(d.metadata, '$.\"{key}\"') = :value{n}")
        # json_extract gives lists and objects as compact JSON text
        compact = isinstance(value, (list, dict))
        params[f"value{n}"] = json.dumps(value, separators=(",", ":")) if compact else value
    return " AND ".join(conds), params


def bm25_search(
    engine: Engine, query: str, limit: int, where: Where | None = None
) -> list[tuple[int, float]]:
    """(chunk id, BM25 score) of the best ``limit`` chunks, best first."""
    match = lexical_query(query)
    if not match:
        return []
    weights = ", ".join(str(w) for w in BM25_WEIGHTS)
    restrict, params = "", dict[str, Any]()
    if where is not None:
        cond, params = document_filter(where)
        restrict = (
            " AND rowid IN (SELECT c.id FROM chunks c JOIN documents d "
            f"ON d.id = c.document_id WHERE {cond})"
        )
    sql = (
        f"SELECT rowid, -bm25(chunks_fts, {weights}) AS score FROM chunks_fts "
        f"WHERE chunks_fts MATCH :match{restrict} "
        f"ORDER BY bm25(chunks_fts, {weights}) LIMIT :limit"
    )
    with engine.connect() as conn:
        rows = conn.execute(text(sql), {**params, "match": match, "limit": limit})
        return [(int(r[0]), float(r[1])) for r in rows]
