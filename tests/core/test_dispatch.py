"""The background dispatcher public endpoints use to publish without waiting."""

from __future__ import annotations

import threading

from apps.core.dispatch import Dispatcher


def _stuck_publisher(published: list[list[int]]):
    """A publish that fails the first time, after holding the thread until released."""
    started, release = threading.Event(), threading.Event()

    def publish(ids: list[int]) -> None:
        if not started.is_set():
            started.set()
            release.wait(5)
            raise ConnectionError("broker down")
        published.append(ids)

    return publish, started, release


def test_a_failed_publish_does_not_stop_the_thread_and_later_ids_travel_together():
    # given a dispatcher whose first publish (of id 1) fails while holding the thread
    published: list[list[int]] = []
    publish, started, release = _stuck_publisher(published)
    dispatcher = Dispatcher("test-dispatch", publish)
    assert dispatcher.put(1)
    assert started.wait(5)

    # when three more ids arrive while it is busy, and then it fails
    assert [dispatcher.put(n) for n in (2, 3, 4)] == [True, True, True]
    release.set()

    # then the thread survives and publishes the three in one go
    assert dispatcher.drain(timeout=5)
    assert published == [[2, 3, 4]]


def test_a_full_queue_refuses_the_id_and_leaves_it_to_the_sweep():
    # given a dispatcher with room for one waiting id, its thread busy with id 1
    published: list[list[int]] = []
    publish, started, release = _stuck_publisher(published)
    dispatcher = Dispatcher("test-full", publish, maxsize=1)
    assert dispatcher.put(1)
    assert started.wait(5)

    # when three more arrive
    results = [dispatcher.put(n) for n in (2, 3, 4)]
    release.set()

    # then one waits and is published; the other two are refused, nothing raised
    assert results == [True, False, False]
    assert dispatcher.drain(timeout=5)
    assert published == [[2]]
