"""Run a generator in a thread of its own, a few items ahead of its consumer.

An import alternates between Python work (decoding, parsing and checking the next rows)
and waiting for PostgreSQL to store the previous batch. The driver releases the GIL
while it waits, so reading ahead in a second thread overlaps the two instead of adding
them up. The producer must not touch the database (Django connections are per thread)
and must activate the translation it needs itself (it is per thread too).

Exceptions in the producer come out of the consumer's ``for`` loop, unchanged.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_ITEM, _END, _ERROR = "item", "end", "error"


class Prefetch(Generic[T]):
    def __init__(self, produce: Callable[[], Iterator[T]], *, depth: int = 2) -> None:
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(produce,), name="import-reader", daemon=True
        )
        self._thread.start()

    def _put(self, kind: str, value: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put((kind, value), timeout=0.2)
            except queue.Full:
                continue
            return True
        return False

    def _run(self, produce: Callable[[], Iterator[T]]) -> None:
        try:
            for item in produce():
                if not self._put(_ITEM, item):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, re-raised there
            self._put(_ERROR, exc)
        else:
            self._put(_END, None)

    def __iter__(self) -> Iterator[T]:
        while True:
            kind, value = self._queue.get()
            if kind == _ITEM:
                yield value
            elif kind == _END:
                return
            else:
                raise value

    def close(self) -> None:
        """Stop the producer (it may be blocked on a full queue) and wait for it."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=10)

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
