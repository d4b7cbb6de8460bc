"""Serve the collector before the rest of the middleware stack.

``/api/v1/collect`` is the hottest path we have and needs none of sessions, auth, CSRF,
locale, messages or htmx: this middleware, placed right after SecurityMiddleware, hands
such requests straight to the collector view and skips the rest (measured in
``python -m bench collector``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import translation

COLLECT_PATH = "/api/v1/collect"


class CollectorShortcutMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        from apps.contacts.api.collector import collect

        self.collect = collect

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info != COLLECT_PATH:
            return self.get_response(request)
        # Error messages still follow the caller's Accept-Language, as LocaleMiddleware
        # would have arranged.
        with translation.override(translation.get_language_from_request(request)):
            return self.collect(request)
