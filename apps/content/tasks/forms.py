"""Form submission tasks: process what the public endpoint stored; sweep what was missed.

The endpoint queues ``content.form_submissions_process`` once the submission is committed.
Beat runs ``content.form_submissions_sweep`` every minute as the safety net: a submission
whose dispatch was lost (broker down, process killed) is processed by the next sweep, so
an outage delays processing but loses nothing.
"""

from __future__ import annotations

import logging
import time
from functools import partial

from celery import shared_task
from django.db import transaction

# Imported for their audit action labels too (registered as the app starts).
from apps.content.services import forms as _form_services  # noqa: F401
from apps.content.services.submissions import submissions_process, submissions_sweep
from apps.core.dispatch import Dispatcher
from apps.core.tasks import enqueue_on_commit

logger = logging.getLogger(__name__)

# After the broker refused a dispatch, this process stops trying for a while: a dead
# broker costs redis-py seconds of connection attempts per publish.
DISPATCH_PAUSE_SECONDS = 15.0
_paused_until = 0.0


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


_dispatcher = Dispatcher("forms-dispatch", _publish)


def _hand_over(submission_id: int) -> None:
    _dispatcher.put(submission_id)


def submission_dispatch(submission_id: int) -> None:
    """Queue processing once the current transaction commits.

    Unlike ``core.tasks.enqueue_on_commit`` the publish happens on a dispatcher thread:
    with the broker down, redis-py spends seconds failing to connect, and the visitor is
    waiting for the thank-you page. Whatever is lost here, beat's sweep processes.
    """
    transaction.on_commit(partial(_hand_over, submission_id))


def dispatch_drain(timeout: float = 10.0) -> bool:
    """Wait until the dispatcher has handled everything queued so far (tests, shutdown)."""
    return _dispatcher.drain(timeout)


def dispatch_resume() -> None:
    """Forget a paused dispatch (tests, or once the broker is known to be back)."""
    global _paused_until
    _paused_until = 0.0
