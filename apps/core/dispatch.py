"""Handing work to the broker without making a request wait for it.

A public endpoint stores what arrived and must answer at once; publishing the Celery
message that processes it can take seconds when the broker is down (redis-py retrying
its connection). So the request hands the stored row's id to a per-process dispatcher
thread, which publishes in the background, batching whatever queued up meanwhile. What is
lost here (queue full, process killed, broker down) is picked up by the owner's periodic
sweep: the stored row is the source of truth, the message only a shortcut.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

# Ids waiting for the thread; beyond this they are left to the sweep.
DEFAULT_QUEUE_SIZE = 10_000


class Dispatcher:
    """One background publisher per process (started on first use, and again in a forked
    child, which does not inherit its parent's threads)."""

    def __init__(
        self,
        name: str,
        publish: Callable[[list[int]], object],
        *,
        maxsize: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        self.name = name
        self.publish = publish
        self.maxsize = maxsize
        self._queue: queue.Queue[int] | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def _loop(self, pending: queue.Queue[int]) -> None:
        while True:
            ids = [pending.get()]
            # Whatever was queued meanwhile travels with the same publish.
            while True:
                try:
                    ids.append(pending.get_nowait())
                except queue.Empty:
                    break
            try:
                self.publish(ids)
            except Exception:  # the thread must survive; the sweep is the retry
                logger.exception("%s: dispatch of %s failed", self.name, ids)
            finally:
                for _done in ids:
                    pending.task_done()

    def _pending(self) -> queue.Queue[int]:
        with self._lock:
            if self._queue is None or self._pid != os.getpid():
                self._queue = queue.Queue(maxsize=self.maxsize)
                self._pid = os.getpid()
                threading.Thread(
                    target=self._loop, args=(self._queue,), name=self.name, daemon=True
                ).start()
            return self._queue

    def put(self, item_id: int) -> bool:
        """Hand one id over; False (logged) when the queue is full."""
        try:
            self._pending().put_nowait(item_id)
        except queue.Full:
            logger.warning("%s: dispatch queue full; %s left to the sweep", self.name, item_id)
            return False
        return True

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until everything handed over so far was published (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue is not None and self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True
