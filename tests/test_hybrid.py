from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from rag.errors import InvalidValue
from rag.index import Index
from rag.retrieval.fusion import ALPHA, best_per_group, fusion, minmax, relative, rrf
from rag.retrieval.search import SEARCH_MODES
from rag.settings import FORMAT_VERSION, Settings
from rag.storage.lexical import lexical_query
from tests.fakes import HashEmbedder


def make(tmp_path: Path, embedder: HashEmbedder) -> Index:
    return Index.create(tmp_path / "idx", Settings(embedder=embedder.name), embedder)


def test_rrf_rewards_agreement() -> None:
    dense = [(1, 0.9), (2, 0.8), (3, 0.7)]
    lexical = [(3, 12.0), (2, 11.0), (4, 3.0)]
    fused = [key for key, _ in rrf([dense, lexical])]
    assert set(fused[:2]) == {2, 3}  # ranked by both beat the top of one
    assert set(fused) == {1, 2, 3, 4}
    assert rrf([dense])[0][0] == 1


def test_minmax_scales_each_list() -> None:
    dense = [("a", 0.9), ("b", 0.1)]
    lexical = [("b", 100.0), ("a", 0.0)]
    assert minmax([dense, lexical], alpha=0.8)[0][0] == "a"
    assert minmax([dense, lexical], alpha=0.2)[0][0] == "b"
    assert minmax([dense, []], alpha=0.5) == [("a", 0.5), ("b", 0.0)]


def test_best_per_group_keeps_first_member() -> None:
    ranking = [(10, 0.9), (11, 0.8), (20, 0.7), (99, 0.6)]
    assert best_per_group(ranking, {10: "x", 11: "x", 20: "y"}) == [("x", 0.9), ("y", 0.7)]


def test_lexical_query_quotes_words_and_drops_stopwords() -> None:
    assert lexical_query('What is the "RAG" model?') == '"rag" OR "model"'
    assert lexical_query("the of and") == ""


def test_lexical_index_follows_updates_and_deletions(
    tmp_path: Path, corpus: Path, embedder: HashEmbedder
) -> None:
    index = make(tmp_path, embedder)
    index.add(corpus)
    store = index.store
    assert store.lexical_ids().tolist() == store.chunk_ids().tolist()
    (corpus / "notes.txt").write_text("The zanzibarian quokka protocol uses xylotomous keys.")
    index.add(corpus)
    top = index.search("xylotomous", k=1, mode="lexical")
    assert top and top[0].doc_id == "notes.txt"
    (corpus / "notes.txt").write_text("Now it only talks about marmalade.")
    index.add(corpus)
    assert index.search("xylotomous", k=3, mode="lexical") == []
    assert index.search("marmalade", k=1, mode="lexical")[0].doc_id == "notes.txt"
    (corpus / "notes.txt").unlink()
    (corpus / "hallucination.md").unlink()
    index.add(corpus)
    assert index.search("marmalade", k=3, mode="lexical") == []
    assert store.lexical_ids().tolist() == store.chunk_ids().tolist()


def test_modes_rank_differently_and_hybrid_fuses(
    tmp_path: Path, corpus: Path, embedder: HashEmbedder
) -> None:
    index = make(tmp_path, embedder)
    index.add(corpus)
    q = "how does a diffusion model remove noise step by step"
    lexical = index.search(q, k=5, mode="lexical")
    hybrid = index.search(q, k=5, mode="hybrid")
    assert len(hybrid) == 5
    ids = [[h.chunk_id for h in index.search(q, k=10, mode=m)] for m in SEARCH_MODES]
    assert ids[0] not in (ids[1], ids[2]), "both retrievers shape the hybrid ranking"
    # a chunk that both retrievers score higher than another is ranked above it
    dense_score = {h.chunk_id: h.score for h in index.search(q, k=100, mode="dense")}
    lexical_score = {h.chunk_id: h.score for h in index.search(q, k=100, mode="lexical")}
    ranked = [h.chunk_id for h in index.search(q, k=20, mode="hybrid")]
    for i, above in enumerate(ranked):
        for below in ranked[i + 1 :]:
            assert not (
                dense_score[below] > dense_score[above]
                and lexical_score.get(below, 0.0) > lexical_score.get(above, 0.0)
            ), (above, below)
    assert hybrid[0].doc_id == "diffusion-models.md"
    assert lexical[0].score > 0
    docs = index.search_documents([q], k=4, mode="hybrid")[0]
    assert len({h.doc_id for h in docs}) == 4 and docs[0].doc_id == "diffusion-models.md"
    with pytest.raises(InvalidValue, match="search mode"):
        index.search(q, mode="fuzzy")


def test_index_of_format_1_gains_a_lexical_index_on_open(
    tmp_path: Path, corpus: Path, embedder: HashEmbedder
) -> None:
    make(tmp_path, embedder).add(corpus)
    db = sqlite3.connect(tmp_path / "idx" / "index.db")
    db.executescript(
        "DROP TRIGGER chunks_fts_insert; DROP TRIGGER chunks_fts_delete; DROP TABLE chunks_fts;"
        "UPDATE meta SET value = '1' WHERE key = 'format_version';"
    )
    db.close()
    index = Index.open(tmp_path / "idx", embedder)
    assert index.status().format_version == FORMAT_VERSION
    assert index.store.lexical_ids().tolist() == index.store.chunk_ids().tolist()
    assert index.search("reparameterization", k=1, mode="lexical")[0].doc_id == (
        "variational-autoencoders.md"
    )


class LengthReranker:
    """Prefers the passage that mentions the query's last word most often."""

    name = "fake-rerank"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def score(self, query: str, passages: list[str]) -> list[float]:
        self.calls.append(len(passages))
        word = query.split()[-1].lower()
        return [p.lower().count(word) + 1 / (1 + len(p)) for p in passages]


def test_reranker_rescores_the_fused_candidates(
    tmp_path: Path, corpus: Path, embedder: HashEmbedder
) -> None:
    index = make(tmp_path, embedder)
    index.add(corpus)
    q = "what is the noise in diffusion"
    plain = index.search(q, k=3)
    reranker = LengthReranker()
    index.reranker = reranker
    reranked = index.search(q, k=3)
    assert reranker.calls and reranker.calls[0] > 3, "more candidates than k are rescored"
    counts = [h.text.lower().count("diffusion") for h in reranked]
    assert counts == sorted(counts, reverse=True) and counts[0] >= 3
    assert [h.chunk_id for h in reranked] != [h.chunk_id for h in plain]
    docs = index.search_documents([q], k=3)[0]
    assert len({h.doc_id for h in docs}) == 3
    assert docs[0].score >= docs[1].score >= docs[2].score


def test_cli_reranker_option(tmp_path: Path, corpus: Path, embedder: HashEmbedder) -> None:
    from click.testing import CliRunner

    from rag.cli import cli
    from rag.models.registry import register_embedder, register_reranker

    register_embedder("fake-hash", HashEmbedder)
    register_reranker("fake-rerank", LengthReranker)
    make(tmp_path, embedder).add(corpus)
    out = CliRunner().invoke(
        cli,
        ["search", "noise diffusion", "--index", str(tmp_path / "idx"), "--reranker",
         "fake-rerank", "--json"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    hits = json.loads(out.stdout)["hits"]
    assert hits[0]["text"].lower().count("diffusion") >= hits[-1]["text"].lower().count("diffusion")


def test_relative_fusion_keeps_scores_meaningful() -> None:
    dense = [("a", 0.42), ("c", 0.30)]
    lexical = [("a", 3.0), ("b", 1.5)]
    fused = dict(relative([dense, lexical], alpha=0.6))
    assert fused["a"] == pytest.approx(0.6 * 0.42 + 0.4 * 1.0), "the top hit is not stretched to 1"
    assert fused["b"] == pytest.approx(0.4 * 0.5), "the last keyword match still counts"
    assert fused["c"] == pytest.approx(0.6 * 0.30)
    assert relative([[("x", -0.2)], []]) == [("x", 0.0)], "a negative cosine adds nothing"
    with pytest.raises(InvalidValue, match=r"fusion must be one of .*got 'average'"):
        fusion("average")


def test_hybrid_scores_are_the_weighted_dense_and_relative_lexical_scores(
    tmp_path: Path, corpus: Path, embedder: HashEmbedder
) -> None:
    index = make(tmp_path, embedder)
    index.add(corpus)
    q = "how do diffusion models remove noise"
    dense = {h.chunk_id: h.score for h in index.search(q, k=100, mode="dense")}
    lexical = {h.chunk_id: h.score for h in index.search(q, k=100, mode="lexical")}
    best = max(lexical.values())
    hits = index.search(q, k=10)
    for h in hits:
        cosine = max(dense.get(h.chunk_id, 0.0), 0.0)
        expected = ALPHA * cosine + (1 - ALPHA) * lexical.get(h.chunk_id, 0.0) / best
        assert h.score == pytest.approx(expected, abs=1e-6)
    assert hits[0].score < 1.0
    assert [h.chunk_id for h in index.search(q, k=10, fusion="rrf")] != [h.chunk_id for h in hits]
