"""Slow down password guessing: lock a username (and an address) after repeated failures.

Counters live in the cache (Redis) with a fixed window, so they hold across web workers
and expire on their own.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def _keys(request: HttpRequest, username: str) -> list[str]:
    ip = request.META.get("REMOTE_ADDR", "") or "unknown"
    name = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return [f"login-fail:user:{name}", f"login-fail:ip:{ip}"]


def _ip_limit() -> int:
    # One address may try a few usernames (an office behind one NAT), not hundreds.
    return settings.LOGIN_MAX_FAILURES * 4


def is_locked(request: HttpRequest, username: str) -> bool:
    user_key, ip_key = _keys(request, username)
    counts = cache.get_many([user_key, ip_key])
    return (
        counts.get(user_key, 0) >= settings.LOGIN_MAX_FAILURES
        or counts.get(ip_key, 0) >= _ip_limit()
    )


def record_failure(request: HttpRequest, username: str) -> None:
    for key in _keys(request, username):
        # add() is a no-op when the key exists, so the window starts at the first failure.
        cache.add(key, 0, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)


def record_success(request: HttpRequest, username: str) -> None:
    cache.delete(_keys(request, username)[0])


def lockout_minutes() -> int:
    return max(1, settings.LOGIN_FAILURE_WINDOW_SECONDS // 60)
