"""Form submission tasks: process what the public endpoint stored; sweep what was missed.

The endpoint queues ``content.form_submissions_process`` once the submission is committed.
Beat runs ``content.form_submissions_sweep`` every minute as the safety net: a submission
whose dispatch was lost (broker down, process killed) is processed by the next sweep, so
an outage delays processing but loses nothing.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from functools import partial

from celery import shared_task
from django.db import transaction

# Imported for their audit action labels too (registered as the app starts).
from apps.content.services import forms as _form_services  # noqa: F401
from apps.content.services.submissions import submissions_process, submissions_sweep
from apps.core.tasks import enqueue_on_commit

logger = logging.getLogger(__name__)

# After the broker refused a dispatch, this process stops trying for a while: a dead
# broker costs redis-py seconds of connection attempts per publish.
DISPATCH_PAUSE_SECONDS = 15.0
# Submission ids waiting for the dispatcher thread; beyond this they are left to the sweep.
DISPATCH_QUEUE_SIZE = 10_000
_paused_until = 0.0
_queue: queue.Queue[int] | None = None
_queue_pid = 0
_lock = threading.Lock()


@shared_task(name="content.form_submissions_process", ignore_result=True)
def form_submissions_process(submission_ids: list[int]) -> None:
    """Process these submissions (a no-op for those already processed)."""
    submissions_process(submission_ids)


@shared_task(name="content.form_submissions_sweep", ignore_result=True)
def form_submissions_sweep() -> None:
    """Beat's sweep of pending submissions; queues its successor while more remain."""
    result = submissions_sweep()
    if result.more:
        enqueue_on_commit(form_submissions_sweep)


def _publish(submission_ids: list[int]) -> None:
    global _paused_until
    if time.monotonic() < _paused_until:
        return
    try:
        # No publish retries: the sweep is the retry.
        form_submissions_process.apply_async(args=[submission_ids], retry=False)
    except Exception:  # noqa: BLE001 - any broker failure; the submissions are stored
        _paused_until = time.monotonic() + DISPATCH_PAUSE_SECONDS
        logger.warning("forms: could not queue submissions %s; the sweep will", submission_ids)


def _loop(pending: queue.Queue[int]) -> None:
    while True:
        ids = [pending.get()]
        # Whatever was queued meanwhile travels in the same message.
        while True:
            try:
                ids.append(pending.get_nowait())
            except queue.Empty:
                break
        try:
            _publish(ids)
        except Exception:  # the thread must survive; the sweep is the retry
            logger.exception("forms: dispatch of submissions %s failed", ids)
        finally:
            for _done in ids:
                pending.task_done()


def _dispatcher() -> queue.Queue[int]:
    """This process's dispatch queue and thread, started on first use (and again in a
    forked child, which does not inherit the parent's threads)."""
    global _queue, _queue_pid
    with _lock:
        if _queue is None or _queue_pid != os.getpid():
            _queue = queue.Queue(maxsize=DISPATCH_QUEUE_SIZE)
            _queue_pid = os.getpid()
            threading.Thread(
                target=_loop, args=(_queue,), name="forms-dispatch", daemon=True
            ).start()
        return _queue


def _hand_over(submission_id: int) -> None:
    try:
        _dispatcher().put_nowait(submission_id)
    except queue.Full:
        logger.warning("forms: dispatch queue full; submission %s left to the sweep", submission_id)


def submission_dispatch(submission_id: int) -> None:
    """Queue processing once the current transaction commits.

    Unlike ``core.tasks.enqueue_on_commit`` the publish happens on a dispatcher thread:
    with the broker down, redis-py spends seconds failing to connect, and the visitor is
    waiting for the thank-you page. Whatever is lost here, beat's sweep processes.
    """
    transaction.on_commit(partial(_hand_over, submission_id))


def dispatch_drain(timeout: float = 10.0) -> bool:
    """Wait until the dispatcher has handled everything queued so far (tests, shutdown)."""
    deadline = time.monotonic() + timeout
    while _queue is not None and _queue.unfinished_tasks:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def dispatch_resume() -> None:
    """Forget a paused dispatch (tests, or once the broker is known to be back)."""
    global _paused_until
    _paused_until = 0.0
