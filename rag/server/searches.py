"""Searches that arrive together run together: one ``Index.search_batch`` call each.

A search's cost is mostly per call: embedding one query costs about as much torch work
as embedding several, and a process whose request threads each start their own torch
and FAISS work on the same cores spends much of its time making them wait for each
other. So the request threads hand their searches to a few workers. A worker that is
free takes every search waiting and runs them as one batch per (k, mode, filter); a
lone search runs at once, never waiting for a batch to fill. The results are those of
``Index.search``, query by query.
"""

from __future__ import annotations

import json
import queue
import threading
from collections import defaultdict
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field

from rag.index import Index
from rag.retrieval.search import check_queries
from rag.types import Hit, Where

# Workers that run batches side by side, and the most searches in one batch.
WORKERS = 2
MOST = 32


@dataclass
class _Search:
    query: str
    k: int
    mode: str
    where: Where | None
    result: Future[list[Hit]] = field(default_factory=Future)

    @property
    def kind(self) -> str:
        """Searches of one kind can share a batch."""
        where = asdict(self.where) if self.where is not None else None
        return json.dumps([self.k, self.mode, where], sort_keys=True, default=str)


class SearchBatcher:
    """Runs ``Index.search`` calls from many threads in batches, on ``workers`` threads."""

    def __init__(self, index: Index, workers: int = WORKERS, most: int = MOST) -> None:
        self.index = index
        self.most = most
        self._waiting: queue.SimpleQueue[_Search | None] = queue.SimpleQueue()
        self._closed = False
        self._workers = [
            threading.Thread(target=self._work, name=f"search-{n}", daemon=True)
            for n in range(workers)
        ]
        for worker in self._workers:
            worker.start()

    def search(self, query: str, k: int, mode: str, where: Where | None = None) -> list[Hit]:
        """The ``k`` best passages for ``query``, as ``Index.search`` gives them."""
        check_queries([query], k, mode)  # a bad search fails alone, not its batch
        if self._closed:  # no worker is left to take it
            return self.index.search(query, k, mode, where)
        search = _Search(query, k, mode, where)
        self._waiting.put(search)
        return search.result.result()

    def close(self) -> None:
        """Stop the workers once the searches already handed over are done."""
        self._closed = True
        for _ in self._workers:
            self._waiting.put(None)
        for worker in self._workers:
            worker.join()

    def _work(self) -> None:
        while True:
            first = self._waiting.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.most:
                try:
                    more = self._waiting.get_nowait()
                except queue.Empty:
                    break
                if more is None:  # closing: finish this batch, then stop
                    self._waiting.put(None)
                    break
                batch.append(more)
            self._run(batch)

    def _run(self, batch: list[_Search]) -> None:
        kinds: dict[str, list[_Search]] = defaultdict(list)
        for search in batch:
            kinds[search.kind].append(search)
        for group in kinds.values():
            head = group[0]
            try:
                results = self.index.search_batch(
                    [s.query for s in group], head.k, head.mode, head.where
                )
            except BaseException as e:  # every caller of the batch gets the error
                for s in group:
                    s.result.set_exception(e)
                continue
            for s, hits in zip(group, results):
                s.result.set_result(hits)
