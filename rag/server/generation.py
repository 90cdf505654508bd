"""Answers, one generation at a time: the engines and the queue in front of them.

A generator runs one prompt at a time on the CPU (two at once only halve each other's
speed), so at most one answer is generated while ``waiting`` more wait their turn; a
request past that is refused with 503 and a ``Retry-After`` estimated from how long
answers have been taking. Searches do not pass through here: they run concurrently.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Literal

from rag.answer.engine import ANSWER_MODES, DEFAULT_ANSWER_MODE, QueryEngine
from rag.errors import InvalidValue
from rag.index import Index
from rag.models.finder import AnswerFinder
from rag.models.generation import Generator
from rag.server.errors import Busy
from rag.types import Answer

log = logging.getLogger(__name__)

# How long an answer is assumed to take before one has been timed (for Retry-After).
FIRST_GUESS_SECONDS = 5.0

Event = tuple[str, Any]  # ("token", str) | ("answer", Answer) | ("error", BaseException)


class GenerationQueue:
    """Admits at most ``1 + waiting`` answers at once; they run one at a time."""

    def __init__(self, waiting: int) -> None:
        if waiting < 0:
            raise InvalidValue(f"the ask queue must be 0 or more, got {waiting}")
        self.limit = 1 + waiting
        self.admitted = 0
        self.seconds = FIRST_GUESS_SECONDS  # a running mean of how long a turn takes
        self._count = threading.Lock()
        self._running = threading.Lock()

    def admit(self) -> Turn:
        """A place in the queue, or ``Busy`` when there is none."""
        with self._count:
            if self.admitted >= self.limit:
                raise Busy(
                    f"{self.admitted} answers are being generated or waiting, the most this "
                    "server takes; try again later",
                    self.seconds * self.admitted,
                )
            self.admitted += 1
        return Turn(self)

    def _done(self, seconds: float | None) -> None:
        with self._count:
            self.admitted -= 1
            if seconds is not None:
                self.seconds = 0.7 * self.seconds + 0.3 * seconds


class Turn:
    """A place in the queue: entering waits until it is this answer's turn to run."""

    def __init__(self, owner: GenerationQueue) -> None:
        self.owner = owner
        self.started: float | None = None

    def __enter__(self) -> Turn:
        try:
            self.owner._running.acquire()
        except BaseException:
            self.owner._done(None)
            raise
        self.started = time.perf_counter()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.owner._running.release()
        started = self.started or time.perf_counter()
        self.owner._done(time.perf_counter() - started)


class Answers:
    """One engine per answer mode, sharing the generator, the answer-finder and the queue."""

    def __init__(self, index: Index, generator: Generator, waiting: int) -> None:
        self.queue = GenerationQueue(waiting)
        first = QueryEngine(index, generator, answer_mode=DEFAULT_ANSWER_MODE)
        finder: AnswerFinder | Literal[False] = first.finder or False  # one finder loaded
        self.engines = {mode: QueryEngine(index, generator, answer_mode=mode, finder=finder)
                        for mode in ANSWER_MODES if mode != DEFAULT_ANSWER_MODE}  # fmt: skip
        self.engines[DEFAULT_ANSWER_MODE] = first

    def engine(self, mode: str | None) -> QueryEngine:
        if mode is None:
            return self.engines[DEFAULT_ANSWER_MODE]
        if mode not in self.engines:
            raise InvalidValue(
                f"answer mode must be one of {', '.join(ANSWER_MODES)}, got {mode!r}"
            )
        return self.engines[mode]

    def warm_up(self) -> None:
        """Load the answer-finder now, not at the first question."""
        finder = self.engines[DEFAULT_ANSWER_MODE].finder
        if finder is not None:
            finder.score("warm up", ["warm up"])

    def ask(self, question: str, k: int | None = None, mode: str | None = None) -> Answer:
        engine = self.engine(mode)
        with self.queue.admit():
            return engine.ask(question, k=k)

    def stream(self, question: str, k: int | None = None, mode: str | None = None) -> AnswerStream:
        """Token events, then one answer event (or an error event).

        Returns once the first event is there, so that a question the engine refuses,
        or a full queue, fails the request itself rather than its stream.
        """
        engine = self.engine(mode)
        turn = self.queue.admit()
        events: queue.Queue[Event] = queue.Queue()
        gone = threading.Event()  # nobody reads the events any more

        def token(text: str) -> None:
            if gone.is_set():
                raise _Dropped
            events.put(("token", text))

        def run() -> None:
            with turn:
                if gone.is_set():
                    return  # given up while waiting: the next answer goes instead
                try:
                    events.put(("answer", engine.ask(question, k=k, on_token=token)))
                except _Dropped:
                    log.info("stopped an answer that nobody reads any more")
                except Exception as e:  # handed to the request, which answers with it
                    events.put(("error", e))

        # not a daemon: a shutdown waits for the answer being generated
        threading.Thread(target=run, name="rag-answer").start()
        first = events.get()
        if first[0] == "error":
            raise first[1]
        return AnswerStream(_until_done(first, events), gone)


class AnswerStream(Iterator[Event]):
    """The events of an answer being generated. ``close()`` says nobody reads them any
    more (its client went away): the answer stops at its next token and gives its place
    in the queue to the next one."""

    def __init__(self, events: Iterator[Event], gone: threading.Event) -> None:
        self._events = events
        self._gone = gone

    def __next__(self) -> Event:
        return next(self._events)

    def close(self) -> None:
        self._gone.set()


class _Dropped(Exception):
    """Raised into the generation of an answer that nobody reads any more."""


def _until_done(first: Event, events: queue.Queue[Event]) -> Iterator[Event]:
    event = first
    yield event
    while event[0] == "token":
        event = events.get()
        yield event
