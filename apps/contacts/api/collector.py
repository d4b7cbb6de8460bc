"""``POST /api/v1/collect``: the tracker's endpoint. Public, no session, no DRF.

It is the hot path, so it only does cheap checks: size, key, origin, rate, and a parse of
the body (strict UTF-8 and JSON, so a broken client gets a 400 at once and nothing is
stored). Then one INSERT of the raw bytes and 202; events are checked one by one and turned
into activities by a worker (``apps.contacts.collector.services``).

The key comes from the ``X-LeadLoop-Key`` header, the ``?key=`` query (what
``navigator.sendBeacon`` can send) or the body's ``"key"``. Bodies may be
``application/json`` or ``text/plain`` (sendBeacon). HEAD (link checkers) gets 204 and
stores nothing; OPTIONS answers the CORS preflight.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from apps.contacts.collector.bots import is_bot
from apps.contacts.collector.intake import (
    SiteInfo,
    batch_store,
    origin_allowed,
    site_and_rate,
    site_for_key,
)
from apps.contacts.collector.parse import MAX_BODY_BYTES, BodyError, body_parse, token_or_none
from apps.contacts.collector.server import client_ip
from apps.core.api_errors import error_body

CONTENT_TYPES = frozenset({"application/json", "text/plain", ""})
ALLOWED_HEADERS = "Content-Type, X-LeadLoop-Key"


def register(router: Any) -> None:
    """The collector is a plain view, not a viewset: nothing to register."""


def _cors(response: HttpResponse, origin: str, site: SiteInfo | None) -> HttpResponse:
    if site is None or not site.allowed_origins:
        response["Access-Control-Allow-Origin"] = "*"
    elif origin and origin_allowed(site, origin):
        response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin"
    return response


def _error(
    status: int, code: str, message: str, origin: str, site: SiteInfo | None = None
) -> HttpResponse:
    return _cors(JsonResponse(error_body(status, code, message), status=status), origin, site)


def _preflight(request: HttpRequest, origin: str) -> HttpResponse:
    key = request.GET.get("key", "")
    site = site_for_key(key) if key else None
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response["Access-Control-Max-Age"] = "86400"
    return _cors(response, origin, site)


def _too_large(origin: str) -> HttpResponse:
    message = _("The batch is larger than %(limit)s KB; send fewer events at a time.") % {
        "limit": MAX_BODY_BYTES // 1024
    }
    return _error(413, "payload_too_large", message, origin)


class _Headers:
    """The few request headers the hot path reads, straight from ``META``: building
    ``request.headers`` parses every header the client sent, on every request."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta

    def get(self, name: str, default: str = "") -> str:
        value = self.meta.get("HTTP_" + name.upper().replace("-", "_"), default)
        return str(value)


@csrf_exempt
def collect(request: HttpRequest) -> HttpResponse:
    headers = _Headers(request.META)
    origin = headers.get("Origin")[:200]
    if request.method == "OPTIONS":
        return _preflight(request, origin)
    if request.method == "HEAD":
        return _cors(HttpResponse(status=204), origin, None)
    if request.method != "POST":
        response = _error(405, "method_not_allowed", _("Send events with POST."), origin)
        response["Allow"] = "POST, OPTIONS, HEAD"
        return response
    if (request.content_type or "").lower() not in CONTENT_TYPES:
        return _error(
            415,
            "unsupported_media_type",
            _("Send events as application/json (or text/plain from sendBeacon)."),
            origin,
        )
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        return _too_large(origin)
    try:
        body = request.body
    except RequestDataTooBig:
        return _too_large(origin)
    if len(body) > MAX_BODY_BYTES:
        return _too_large(origin)

    ip = client_ip(request)
    key = headers.get("X-LeadLoop-Key") or request.GET.get("key") or ""
    payload: dict[str, Any] | None = None
    body_error: BodyError | None = None
    try:
        payload = body_parse(body)
    except BodyError as exc:
        body_error = exc
    if not key and payload is not None:
        body_key = payload.get("key")
        key = body_key if isinstance(body_key, str) else ""
    if not key:
        if body_error is not None:
            return _error(400, "invalid_body", str(body_error), origin)
        return _error(
            400,
            "missing_key",
            _("Send the site's key in the X-LeadLoop-Key header, ?key= or the body."),
            origin,
        )
    # One Redis round trip: the cached site and this request's count in its rate window.
    visitor = None
    if payload is not None:
        visitor = token_or_none(payload.get("anonymous_id")) or ip or ""
    site, count = site_and_rate(key, visitor)
    if site is None:
        return _error(404, "unknown_key", _("No site has this key."), origin)
    if payload is None:
        message = str(body_error) if body_error is not None else ""
        return _error(400, "invalid_body", message, origin, site)
    if not site.is_active:
        return _error(403, "site_inactive", _("This site no longer collects events."), origin)
    if not origin_allowed(site, origin):
        return _error(
            403,
            "origin_not_allowed",
            _("This site does not accept events from here."),
            origin,
            site,
        )
    events = payload["events"]
    if len(events) > site.max_events_per_batch:
        return _error(
            413,
            "too_many_events",
            _("At most %(max)s events per batch; this one has %(count)s.")
            % {"max": site.max_events_per_batch, "count": len(events)},
            origin,
            site,
        )
    if count is not None and count > site.max_requests_per_minute:
        response = _error(
            429, "rate_limited", _("Too many requests; try again in a minute."), origin, site
        )
        response["Retry-After"] = "60"
        return response
    user_agent = headers.get("User-Agent")
    batch_id = batch_store(
        site=site,
        public_key=key,
        body=body,
        ip=ip,
        user_agent=user_agent,
        origin=origin,
        is_bot=is_bot(user_agent, headers),
        event_count=len(events),
    )
    # The answer spelled out: JsonResponse builds a JSON encoder per call.
    accepted = HttpResponse(
        b'{"accepted": true, "batch": %d}' % batch_id, status=202, content_type="application/json"
    )
    return _cors(accepted, origin, site)


urlpatterns = [path("collect", collect, name="collect")]
