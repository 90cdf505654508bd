"""Loading a model on first use, once, however many threads ask for it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    """A value built by ``build()`` the first time it is asked for.

    >>> loads = []
    >>> model = Lazy(lambda: loads.append(1) or "model")
    >>> model.get(), model.get(), len(loads)
    ('model', 'model', 1)
    """

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
                value = self._value
        return value

    @property
    def loaded(self) -> bool:
        return self._value is not None


def quiet_transformers() -> None:
    """Silence the progress bars and chatter transformers prints while loading."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
