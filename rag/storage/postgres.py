"""The PostgreSQL backend of the store: a schema per index, many writers at once.

Tables are the same as on SQLite (``rag.storage.schema``), in the index's own schema.

- **Lexical search**: a ``tsvector`` column over the document title, the chunk's
  heading and its text (English stemming), kept by a trigger in the same transaction
  as the row (the title lives on the document, so a generated column cannot reach
  it), with a GIN index. Ranking is BM25-like: each query word weighs its
  ``ts_rank`` by its inverse document frequency.
- **Dense search**: pgvector when the database has it (``rag.storage.pgvectors``,
  HNSW over inner products of unit vectors); otherwise the embeddings are bytes and
  each reader searches them exactly with FAISS in memory.
- **Many writers**: each batch is one transaction. A unique index allows one
  document per file (per file and id for JSONL lines), so two writers adding the same
  file never store it twice: the second waits for the first to commit, then writes
  its batch again as a replacement (``rag.storage.writer``). Rows are locked, not
  whole files or the index, so writers on different files do not wait on each other.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Engine, MetaData, create_engine, insert, inspect, text
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import Session

from rag.errors import DatabaseUnavailable, InvalidValue
from rag.storage.location import Location
from rag.storage.schema import PGVECTOR_FLAG, Meta
from rag.text import STOPWORDS, WORD
from rag.types import Where

log = logging.getLogger(__name__)

POSTGRESQL = "postgresql"
VECTOR_SEARCH_KEY = "vector_search"
PGVECTOR, EXACT = "pgvector", "exact"
HNSW_INDEX = "chunks_embedding_hnsw"
TEXT_CONFIG = "english"


class PostgresBackend:
    """What differs on PostgreSQL: a schema in a shared database, concurrent writers."""

    kind = POSTGRESQL

    def __init__(self, location: Location) -> None:
        self.location = location
        self.schema = location.schema
        self.pgvector = False
        self._count: tuple[int, int] = (-1, 0)  # (write generation, chunks then)

    def connect(self) -> Engine:
        options = f"-c search_path={self.schema},public"
        try:
            engine = create_engine(
                self.location.url, connect_args={"options": options}, pool_pre_ping=True
            )
        except ImportError as e:
            raise InvalidValue(
                f"an index in PostgreSQL needs the driver ({e.name} is missing): "
                "pip install 'rag[postgres]'"
            ) from e
        except ArgumentError as e:
            raise InvalidValue(f"cannot use the database URL {self.location}: {e}") from e
        try:
            if self.has_index(engine):
                with engine.connect() as conn:
                    found = conn.execute(
                        text("SELECT value FROM meta WHERE key = :k"), {"k": VECTOR_SEARCH_KEY}
                    ).scalar()
                self._use_pgvector(engine, found == PGVECTOR)
        except OperationalError as e:
            engine.dispose()
            reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
            raise DatabaseUnavailable(
                f"cannot reach the database at {self.location}: {reason}"
            ) from e
        return engine

    def _use_pgvector(self, engine: Engine, on: bool) -> None:
        self.pgvector = on
        setattr(engine.dialect, PGVECTOR_FLAG, on)

    def has_index(self, engine: Engine) -> bool:
        return inspect(engine).has_table("meta", schema=self.schema)

    def create(self, engine: Engine, metadata: MetaData, meta: dict[str, str]) -> None:
        """Make the schema, its tables, the lexical index and the ``meta`` rows, at once."""
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        self._use_pgvector(engine, _has_pgvector(engine))
        if not self.pgvector:
            log.warning(
                "%s has no pgvector extension (and it could not be created); dense search "
                "will be exact, in each reader's memory, from the stored embeddings. "
                "Install pgvector and index into a new schema for HNSW search",
                self.location.display,
            )
        s = f'"{self.schema}"'
        # tables made in the index's schema, whatever other schemas on the search path hold
        scoped = engine.execution_options(schema_translate_map={None: self.schema})
        with scoped.begin() as conn:
            # two processes creating the same index: the second finds the first's
            conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                {"k": f"{self.schema}:create"},
            )
            if inspect(conn).has_table("meta", schema=self.schema):
                raise InvalidValue(f"an index already exists at {self.location}; open it instead")
            taken = [t for t in metadata.tables if inspect(conn).has_table(t, self.schema)]
            if taken:
                raise InvalidValue(
                    f"schema {self.schema} already has tables named {', '.join(taken)}; "
                    "name another schema for the index (?schema=NAME)"
                )
            metadata.create_all(conn)
            conn.exec_driver_sql(f"ALTER TABLE {s}.chunks ADD COLUMN tsv tsvector")
            conn.exec_driver_sql(
                f"CREATE OR REPLACE FUNCTION {s}.chunks_tsv() RETURNS trigger AS $$ BEGIN "
                f"NEW.tsv := to_tsvector('{TEXT_CONFIG}', coalesce((SELECT title FROM "
                f"{s}.documents WHERE id = NEW.document_id), '') || ' ' || "
                "coalesce(NEW.heading, '') || ' ' || NEW.text); RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                f"CREATE TRIGGER chunks_tsv BEFORE INSERT OR UPDATE OF text, heading ON "
                f"{s}.chunks FOR EACH ROW EXECUTE FUNCTION {s}.chunks_tsv()"
            )
            conn.exec_driver_sql(f"CREATE INDEX chunks_tsv_gin ON {s}.chunks USING gin (tsv)")
            conn.exec_driver_sql(
                f"CREATE UNIQUE INDEX documents_one_per_file ON {s}.documents "
                "(source) WHERE kind <> 'jsonl'"
            )
            conn.exec_driver_sql(
                f"CREATE UNIQUE INDEX documents_one_per_line ON {s}.documents "
                "(source, doc_id) WHERE kind = 'jsonl'"
            )
            facts = {**meta, VECTOR_SEARCH_KEY: PGVECTOR if self.pgvector else EXACT}
            conn.execute(insert(Meta), [{"key": k, "value": v} for k, v in facts.items()])

    # -- search -------------------------------------------------------------

    def chunk_count(self, engine: Engine) -> int:
        """How many chunks the index holds, counted again only after a write."""
        with engine.connect() as conn:
            generation = int(
                conn.execute(text("SELECT value FROM meta WHERE key = 'generation'")).scalar() or 0
            )
            if generation != self._count[0]:
                n = conn.execute(text("SELECT count(*) FROM chunks")).scalar() or 0
                self._count = (generation, int(n))
        return self._count[1]

    def lexical_search(
        self, engine: Engine, query: str, limit: int, where: Where | None
    ) -> list[tuple[int, float]]:
        """(chunk id, score) of the best ``limit`` chunks: BM25-like, best first."""
        words = list(dict.fromkeys(w for w in WORD.findall(query.lower()) if w not in STOPWORDS))
        if not words:
            return []
        total = max(self.chunk_count(engine), 1)
        # each word's query (stemmed) and how many chunks hold it, through the GIN index
        stats = (
            "SELECT q.t::text, (SELECT count(*) FROM chunks c WHERE c.tsv @@ q.t) "
            "FROM (SELECT DISTINCT plainto_tsquery(:config, w) AS t "
            "FROM unnest(CAST(:words AS text[])) AS w) q WHERE numnode(q.t) > 0"
        )
        with engine.connect() as conn:
            found = conn.execute(text(stats), {"config": TEXT_CONFIG, "words": words})
            terms = [(t, int(df)) for t, df in found if df]
            if not terms:
                return []
            params: dict[str, Any] = {"limit": limit, "any": " | ".join(f"({t})" for t, _ in terms)}
            parts = []
            for n, (term, df) in enumerate(terms):
                idf = math.log(1 + (max(total, df) - df + 0.5) / (df + 0.5))
                parts.append(f"{idf!r} * ts_rank(c.tsv, CAST(:t{n} AS tsquery), 1)")
                params[f"t{n}"] = term
            restrict = ""
            if where is not None:
                cond, extra = document_filter(where)
                restrict = f" AND c.document_id IN (SELECT d.id FROM documents d WHERE {cond})"
                params.update(extra)
            sql = (
                f"SELECT c.id, {' + '.join(parts)} AS score FROM chunks c "
                f"WHERE c.tsv @@ CAST(:any AS tsquery){restrict} "
                "ORDER BY score DESC, c.id LIMIT :limit"
            )
            rows = conn.execute(text(sql), params)
            return [(int(r[0]), float(r[1])) for r in rows]

    def document_filter(self, where: Where) -> tuple[str, dict[str, Any]]:
        return document_filter(where)

    # -- writing ------------------------------------------------------------

    def lock(self, session: Session, keys: Sequence[str]) -> None:
        """Take a transaction advisory lock per key (such as ``meta``), in one sorted
        order so that two writers never wait on each other in a cycle."""
        if not keys:
            return
        names = sorted({f"{self.schema}:{k}" for k in keys})
        session.execute(
            text(
                "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) "
                "FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS u(k, n) ORDER BY n"
            ),
            {"keys": names},
        )

    def first_vectors(self, session: Session, dim: int) -> None:
        """With pgvector, fix the column's dimension and build its HNSW index (once, by
        the first batch that writes vectors; the caller holds the ``meta`` lock)."""
        if not self.pgvector:
            return
        session.execute(text(f"ALTER TABLE chunks ALTER COLUMN embedding TYPE vector({dim})"))
        session.execute(
            text(
                f"CREATE INDEX IF NOT EXISTS {HNSW_INDEX} ON chunks "
                "USING hnsw (embedding vector_ip_ops)"
            )
        )

    # -- health -------------------------------------------------------------

    def lexical_ids(self, engine: Engine) -> np.ndarray:
        sql = "SELECT id FROM chunks WHERE tsv IS NOT NULL ORDER BY id"
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(sql).fetchall()
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    def integrity_problems(self, engine: Engine) -> list[str]:
        """PostgreSQL keeps its own files sound; here only the lexical column is checked."""
        with engine.connect() as conn:
            missing = conn.execute(text("SELECT count(*) FROM chunks WHERE tsv IS NULL")).scalar()
        return [f"database: {missing} chunks lack their lexical vector"] if missing else []

    def bytes_used(self, engine: Engine) -> int:
        """The size of the index's tables and their indexes."""
        sql = (
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :schema AND c.relkind = 'r'"
        )
        with engine.connect() as conn:
            return int(conn.execute(text(sql), {"schema": self.schema}).scalar() or 0)


def _has_pgvector(engine: Engine) -> bool:
    """Whether the database has pgvector, creating the extension if this role may."""
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public")
        return True
    except DBAPIError as e:
        log.info("cannot create the vector extension: %s", e.orig)
    with engine.connect() as conn:
        found = conn.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
        return found.first() is not None


def document_filter(where: Where) -> tuple[str, dict[str, Any]]:
    """A SQL condition on ``documents d`` and its named parameters."""
    conds, params = ["true"], dict[str, Any]()
    if where.path is not None:
        conds.append("d.doc_id ~ :path_re")
        params["path_re"] = glob_regex(where.path)
    if where.type is not None:
        conds.append("d.kind = :kind")
        params["kind"] = where.type
    for n, (key, value) in enumerate(where.metadata.items()):
        params[f"key{n}"] = key
        if value is None:  # as on SQLite, where json_extract gives NULL, equal to nothing
            conds.append("false")
            continue
        # as on SQLite, where JSON true and false read as 1 and 0
        same = (
            [True, 1]
            if value is True or value == 1
            else [False, 0]
            if value in (0, False)
            else [value]
        )
        names = [f"value{n}_{m}" for m in range(len(same))]
        params.update({name: json.dumps(v) for name, v in zip(names, same)})
        listed = ", ".join(f"CAST(:{name} AS jsonb)" for name in names)
        conds.append(f"d.metadata -> :key{n} IN ({listed})")
    return " AND ".join(conds), params


def glob_regex(pattern: str) -> str:
    """A POSIX regular expression matching what SQLite's GLOB ``pattern`` matches.

    >>> glob_regex("guides/*.md")
    '^guides/.*\\\\.md$'
    """
    out, i = ["^"], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[" and _class_end(pattern, i) < 0:
            return "^$.^"  # an unclosed class: SQLite's GLOB matches nothing
        elif ch == "[":
            end = _class_end(pattern, i)
            body = pattern[i + 1 : end]
            neg = body.startswith("^")
            body = body[1:] if neg else body
            out.append("[" + ("^" if neg else "") + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out) + "$"


def _class_end(pattern: str, start: int) -> int:
    """Where the character class opened at ``start`` closes (-1: it does not); a ``]``
    first in the class, after any ``^``, is one of its characters."""
    j = start + 1
    if j < len(pattern) and pattern[j] == "^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1
    return pattern.find("]", j)


def _alike(value: Any) -> list[Any]:
    """The JSON values SQLite's filter finds equal to ``value``: true and 1 are one
    value there, and false and 0."""
    if isinstance(value, (bool, int, float)) and value in (0, 1):
        return [bool(value), int(value)]
    return [value]
