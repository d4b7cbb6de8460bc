"""Public share links: ``/s/<token>/`` shows the shared content, ``/s/<token>/beat`` takes
the page's read-time heartbeats.

Opening stores a ``ShareView`` first (one INSERT; who from the ``ll_aid`` cookie, read
only, ip, user agent, referrer, a bot flag) and only then renders; the worker does the rest
(``content.services.shares``). The page's script (``static/js/content-share.js``) counts
the seconds the page is visible and reports the total every 15 s and when the page is
hidden, with the view's id and its beat key (the id alone is guessable).
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
)
from django.shortcuts import render
from django.urls import NoReverseMatch, path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from apps.contacts.collector.server import (
    client_ip,
    request_is_bot,
    visitor_cookie_set,
    visitor_id,
)
from apps.content.blocks import asset_public_url, blocks_html
from apps.content.html import safe_html
from apps.content.models import Asset, AssetKind, ShareLink
from apps.content.services import shares as services

# A heartbeat is a few dozen bytes; anything much larger is not ours.
BEAT_MAX_BYTES = 512


def _link(token: str) -> ShareLink | None:
    if not token or len(token) > 40:
        return None
    return (
        ShareLink.objects.dangerously_unscoped()
        .select_related("asset", "asset__gate_form", "landing_page", "owner", "unit")
        .filter(token=token)
        .first()
    )


def _gone(request: HttpRequest, status: int) -> HttpResponse:
    return render(request, "content/shares/public_gone.html", status=status)


def _gate_url(form_key: str, asset_key: str, token: str) -> str:
    try:
        base = reverse("form-public", args=[form_key])
    except NoReverseMatch:  # the forms area is not installed
        base = f"/f/{form_key}/"
    return f"{base}?{urlencode({'embed': 1, 'sl': token, 'asset': asset_key})}"


def _asset_context(asset: Asset, token: str) -> dict[str, object]:
    has_file = bool(asset.file) or bool(asset.url)
    gate = asset.gate_form if asset.is_gated else None
    return {
        "asset": asset,
        # A gated article's body is what the form unlocks: only the summary shows here.
        "body": safe_html(asset.body) if asset.body and gate is None else "",
        "is_video": asset.kind == AssetKind.VIDEO and bool(asset.url),
        "download_url": (
            asset_public_url(asset.key, share_token=token) if has_file and gate is None else ""
        ),
        "gate_url": _gate_url(gate.key, asset.key, token) if gate is not None else "",
    }


@never_cache
@require_safe
def share_public(request: HttpRequest, token: str) -> HttpResponse:
    link = _link(token)
    if link is None:
        return _gone(request, 404)
    target = link.asset or link.landing_page
    if not link.is_active or target is None or not services.target_is_shareable(target):
        return _gone(request, 410)
    anonymous_id, is_new = visitor_id(request)
    is_bot = request_is_bot(request) or request.method == "HEAD"
    contact_id = None if is_new else services.anonymous_owner(link.unit, anonymous_id)
    view = services.share_view_open(
        link=link,
        anonymous_id=anonymous_id,
        contact_id=contact_id,
        ip=client_ip(request),
        user_agent=request.headers.get("User-Agent", ""),
        referrer=request.headers.get("Referer", ""),
        is_bot=is_bot,
    )
    context: dict[str, object] = {
        "link": link,
        "sharer": link.owner,
        "view": view,
        "track": not is_bot,
        "beat_url": reverse("share-beat", args=[link.token]),
    }
    if link.asset is not None:
        context.update(_asset_context(link.asset, link.token))
        template = "content/shares/public_asset.html"
    else:
        assert link.landing_page is not None
        context.update(
            page=link.landing_page,
            blocks=blocks_html(link.landing_page, request, share_token=link.token),
        )
        template = "content/shares/public_page.html"
    response = render(request, template, context)
    visitor_cookie_set(response, anonymous_id, request)
    return response


def _beat_payload(request: HttpRequest) -> tuple[int, str, int] | None:
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return None
    if length > BEAT_MAX_BYTES:
        return None
    raw = request.body[: BEAT_MAX_BYTES + 1]
    if len(raw) > BEAT_MAX_BYTES:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    view_id, key, seconds = data.get("v"), data.get("k"), data.get("s")
    if (
        not isinstance(view_id, int)
        or isinstance(view_id, bool)
        or not isinstance(key, str)
        or not isinstance(seconds, int | float)
        or isinstance(seconds, bool)
        or not 0 < view_id < 2**63
        or not 0 <= seconds < 10**7
        or not 0 < len(key) <= 40
    ):
        return None
    return view_id, key, int(seconds)


@csrf_exempt  # sendBeacon carries no token; the view id and its beat key authorise it
@never_cache
@require_POST
def share_beat(request: HttpRequest, token: str) -> HttpResponse:
    """``{"v": view id, "k": beat key, "s": total visible seconds}`` as text/plain (what
    sendBeacon sends) or JSON. 204 when taken, 400 when malformed, 404 for a wrong view or
    key; nothing changes on an error."""
    payload = _beat_payload(request)
    if payload is None:
        return HttpResponseBadRequest(
            _('A heartbeat is {"v": view id, "k": key, "s": seconds}.'),
            content_type="text/plain; charset=utf-8",
        )
    view_id, key, seconds = payload
    try:
        services.share_view_beat(token=token, view_id=view_id, beat_key=key, seconds=seconds)
    except services.BeatRejected:
        raise Http404 from None
    return HttpResponse(status=204)


urlpatterns = [
    path("s/<str:token>/", share_public, name="share-public"),
    path("s/<str:token>/beat", share_beat, name="share-beat"),
]
