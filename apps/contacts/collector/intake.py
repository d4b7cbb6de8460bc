"""The collector endpoint's side: find the site, limit the rate, store, dispatch.

Everything here runs on the hot path, so it costs one INSERT when the site is in the cache.
Redis (cache) and the broker are helpers, not dependencies: when either is down the batch
is still stored and answered with 202; the sweeper processes what was not dispatched.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from apps.contacts.collector.driver import server_cursor
from apps.contacts.collector.parse import token_or_none
from apps.contacts.models import RawBatch, RawBatchStatus, Site
from apps.core.dispatch import Dispatcher

logger = logging.getLogger(__name__)

# A site's settings are cached this long: a deactivated key keeps working for up to a minute.
SITE_CACHE_SECONDS = 60
# Unknown keys are remembered briefly, so garbage keys do not reach the database each time.
UNKNOWN_SITE_CACHE_SECONDS = 10
RATE_WINDOW_SECONDS = 60
# After the broker refused a dispatch, this process stops trying for a while: a dead broker
# costs redis-py several seconds of connection retries per attempt.
DISPATCH_PAUSE_SECONDS = 15.0
# Batch ids waiting for the dispatcher thread; beyond this they are left to the sweeper.
DISPATCH_QUEUE_SIZE = 10_000
# At most one drain task is published per window (the flag's lifetime), and it starts once
# the window is over, so it sees every batch committed during it.
DRAIN_WINDOW_SECONDS = 1
DRAIN_FLAG = "collector:drain"
_dispatch_paused_until = 0.0
# Until then (this process's monotonic clock) a drain already published, by this process or
# another, will start late enough to see any batch committed now: no need to ask Redis.
_drain_covered_until = 0.0


@dataclass(frozen=True)
class SiteInfo:
    id: int
    unit_id: int
    is_active: bool
    allowed_origins: tuple[str, ...]
    max_events_per_batch: int
    max_requests_per_minute: int


def _site_cache_key(public_key: str) -> str:
    return f"collector:site:{public_key}"


def site_for_key(public_key: str) -> SiteInfo | None:
    """The site with this public key, from the cache when possible (no query then)."""
    if token_or_none(public_key) is None or len(public_key) > 40:
        return None
    cache_key = _site_cache_key(public_key)
    try:
        cached: Any = cache.get(cache_key)
    except Exception:
        logger.warning("collector: cache unavailable for the site lookup", exc_info=True)
        cached = None
    if cached == "unknown":
        return None
    if isinstance(cached, dict):
        return SiteInfo(**cached)
    row = (
        Site.objects.dangerously_unscoped()
        .filter(public_key=public_key)
        .values(
            "id",
            "unit_id",
            "is_active",
            "allowed_origins",
            "max_events_per_batch",
            "max_requests_per_minute",
        )
        .first()
    )
    info = None
    if row is not None:
        origins = row["allowed_origins"] or []
        info = SiteInfo(
            id=row["id"],
            unit_id=row["unit_id"],
            is_active=row["is_active"],
            allowed_origins=tuple(str(o).rstrip("/").lower() for o in origins),
            max_events_per_batch=row["max_events_per_batch"],
            max_requests_per_minute=row["max_requests_per_minute"],
        )
    try:
        if info is None:
            cache.set(cache_key, "unknown", UNKNOWN_SITE_CACHE_SECONDS)
        else:
            cache.set(cache_key, info.__dict__, SITE_CACHE_SECONDS)
    except Exception:
        logger.warning("collector: cache unavailable for the site lookup", exc_info=True)
    return info


def site_forget(public_key: str) -> None:
    """Drop a cached site (after its settings change)."""
    cache.delete(_site_cache_key(public_key))


def origin_allowed(site: SiteInfo, origin: str) -> bool:
    """No list allows any origin; a request without Origin (server-side) is allowed."""
    if not site.allowed_origins or not origin:
        return True
    return origin.rstrip("/").lower() in site.allowed_origins


def _rate_key(public_key: str, visitor: str) -> str:
    window = int(time.time() // RATE_WINDOW_SECONDS)
    visitor_hash = hashlib.sha256(visitor.encode("utf-8")).hexdigest()[:24]
    return f"collector:rate:{public_key}:{visitor_hash}:{window}"


# This thread's redis-py client, kept with the cache backend object it came from (Django
# gives each thread its own). Django's ``get_client`` builds a new ``redis.Redis`` on every
# call, and its constructor copies a table of ~170 response callbacks: on the collector's
# hot path that cost as much CPU as the round trip itself (cProfile, ``bench collector``).
_redis_local = threading.local()


def _redis() -> Any:
    backend = cache._cache  # type: ignore[attr-defined]
    if getattr(_redis_local, "backend", None) is not backend:
        _redis_local.backend = backend
        _redis_local.client = backend.get_client(write=True)
    return _redis_local.client


def site_and_rate(public_key: str, visitor: str | None) -> tuple[SiteInfo | None, int | None]:
    """The site with this key and, when ``visitor`` is given, this request's number in the
    visitor's rate window: one Redis round trip when the site is cached (GET, INCR and
    EXPIRE pipelined), the site lookup of ``site_for_key`` otherwise. The count is None
    when the cache is unavailable (the request is then not limited)."""
    if token_or_none(public_key) is None or len(public_key) > 40:
        return None, None
    # ``make_key``, not ``make_and_validate_key``: the validation walks every character in
    # Python looking for what memcached refuses, and these keys are ours (a checked token,
    # a hash), so it could only ever pass.
    site_key = cache.make_key(_site_cache_key(public_key))
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.get(site_key)
        if visitor is not None:
            rate_key = cache.make_key(_rate_key(public_key, visitor))
            pipe.incr(rate_key)
            pipe.expire(rate_key, RATE_WINDOW_SECONDS + 5)
        replies = pipe.execute()
    except Exception:
        logger.warning("collector: cache unavailable for the site lookup", exc_info=True)
        return site_for_key(public_key), None
    count = int(replies[1]) if visitor is not None else None
    raw = replies[0]
    if raw is None:
        return site_for_key(public_key), count
    cached: Any = cache._cache._serializer.loads(raw)  # type: ignore[attr-defined]
    if isinstance(cached, dict):
        return SiteInfo(**cached), count
    if cached == "unknown":
        return None, count
    return site_for_key(public_key), count


def _drain_publish() -> bool:
    """Queue one drain (``contacts.collector_sweep``) unless one was queued this window.

    ``SET NX`` on a flag that lives ``DRAIN_WINDOW_SECONDS``: whoever sets it publishes a
    sweep that starts once the window has passed (``countdown``), so every batch committed
    while the flag stood, whose dispatch therefore published nothing, is still pending when
    that sweep looks. At most one publish per window, whatever the request rate.

    The flag's remaining life (``PTTL``, same round trip) tells this process how long any
    later batch of its own is covered by that sweep: until then ``batch_dispatch_soon``
    does nothing at all (see ``_drain_covered_until``).
    """
    global _dispatch_paused_until, _drain_covered_until
    from apps.contacts.tasks.collector import collector_sweep

    if time.monotonic() < _dispatch_paused_until:
        return False
    asked_at = time.monotonic()  # the flag was set, or read, after this moment
    window_ms = int(DRAIN_WINDOW_SECONDS * 1000)
    covered_ms = 0
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.set(cache.make_key(DRAIN_FLAG), 1, nx=True, px=window_ms)
        pipe.pttl(cache.make_key(DRAIN_FLAG))
        won, covered_ms = pipe.execute()
    except Exception:
        logger.warning("collector: cache unavailable for the drain flag", exc_info=True)
        won = True  # better a task too many than a batch left to the 30 s sweeper
        covered_ms = 0
    if not won:
        # Somebody else's drain starts when the flag dies (PTTL < 0: it just did).
        _drain_covered_until = asked_at + max(int(covered_ms), 0) / 1000
        return False
    try:
        # No publish retries: nobody waits on this, and the beat sweeper is the retry.
        collector_sweep.apply_async(countdown=DRAIN_WINDOW_SECONDS, retry=False)
    except Exception:  # noqa: BLE001 - any broker failure; the rows are safely stored
        _dispatch_paused_until = time.monotonic() + DISPATCH_PAUSE_SECONDS
        logger.warning("collector: could not queue a drain; the sweeper will")
        return False
    # Our drain starts DRAIN_WINDOW_SECONDS after the publish, later than asked_at + window.
    _drain_covered_until = asked_at + max(int(covered_ms), 0) / 1000
    return True


def batch_dispatch(batch_id: int) -> bool:
    """Make sure a drain will process this committed batch; True when this call queued
    one. If the broker is down, log and leave it to the beat sweeper."""
    return _drain_publish()


# The batches' ids only say "something was stored": one drain covers them all.
_dispatcher = Dispatcher(
    "collector-dispatch", lambda _batch_ids: _drain_publish(), maxsize=DISPATCH_QUEUE_SIZE
)


def batch_dispatch_soon(batch_id: int) -> None:
    """Hand the batch to the dispatcher thread: the request never waits on the broker.
    Whatever is lost here (queue full, process exits) the sweeper picks up.

    Nothing at all while a drain already published will see this committed batch: under
    load that is almost every request, and waking the dispatcher thread for nothing is not
    free (it competes for the GIL with the request threads: about 0.4 ms a request when it
    ran a Redis round trip per batch, measured in-process).
    """
    if time.monotonic() < _drain_covered_until:
        return
    _dispatcher.put(batch_id)


def dispatch_drain(timeout: float = 10.0) -> bool:
    """Wait until the dispatcher has handled everything queued so far (tests, shutdown)."""
    return _dispatcher.drain(timeout)


def dispatch_resume() -> None:
    """Forget a paused dispatch and the drain this process knows of (tests, or once the
    broker is known to be back)."""
    global _dispatch_paused_until, _drain_covered_until
    _dispatch_paused_until = 0.0
    _drain_covered_until = 0.0
    try:
        cache.delete(DRAIN_FLAG)
    except Exception:
        logger.warning("collector: cache unavailable for the drain flag", exc_info=True)


_INSERT_BATCH = f"""
    INSERT INTO {RawBatch._meta.db_table} (site_id, public_key, received_at, body, ip,
        user_agent, origin, is_bot, status, event_count, accepted_count, rejections, reason,
        attempts, last_error, processed_at)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0, '[]', %s, 0, '', %s)
    RETURNING id
"""  # noqa: S608 - the table name comes from model metadata; values are parameters


def _insert_batch(params: list[Any]) -> int:
    """One ``INSERT … RETURNING id``, in SQL and with the parameters bound on the server
    (``driver``): the ORM's ``create`` spent as much Python building the statement as the
    database took to run it, and the body went as hex text.

    It also skips Django's health check (``CONN_HEALTH_CHECKS`` runs a ``SELECT 1`` before
    the first query of every request: a second round trip on the hottest path). The
    INSERT is the check instead: when a connection reused from an earlier request turns
    out to be dead, it is closed and the INSERT runs once more on a fresh one. Should the
    dead connection have committed the row before dying, the batch is stored twice with
    the same ``received_at``; processing dedupes its events, so they still count once.
    Inside a transaction there is no retry (the transaction is lost with its connection).
    """
    reused = connection.connection is not None and not connection.in_atomic_block
    try:
        with server_cursor() as cursor:
            cursor.execute(_INSERT_BATCH, params)
            return int(cursor.fetchone()[0])
    except (OperationalError, InterfaceError):
        if not reused:
            raise
        logger.warning("collector: the database connection was lost; retrying once")
        connection.close()
    with server_cursor() as cursor:
        cursor.execute(_INSERT_BATCH, params)
        return int(cursor.fetchone()[0])


def batch_store(
    *,
    site: SiteInfo,
    public_key: str,
    body: bytes,
    ip: str | None,
    user_agent: str,
    origin: str,
    is_bot: bool,
    event_count: int,
) -> int:
    """One INSERT; processing is queued once it commits. Bots are stored already done."""
    now = timezone.now()
    batch_id = _insert_batch(
        [
            site.id,
            public_key,
            now,
            body,
            ip,
            user_agent[:400],
            origin[:200],
            is_bot,
            RawBatchStatus.PROCESSED if is_bot else RawBatchStatus.PENDING,
            event_count,
            "bot" if is_bot else "",
            now if is_bot else None,
        ]
    )
    if not is_bot:
        transaction.on_commit(lambda: batch_dispatch_soon(batch_id))
    return batch_id
