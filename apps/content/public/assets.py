"""Public asset delivery: ``/a/<key>/``.

An open asset is delivered at once: a file from storage (PDFs, images and videos inline,
office documents as attachments), a redirect for an asset by URL (videos), an article
rendered on a public page. A gated asset is delivered to whoever brings a valid grant for
*this* asset (``?g=``, handed out by the gate form's thank-you page) or is a known visitor
(their ``ll_aid`` cookie belongs to a contact, or to a visitor, who has filled the gate
form); anyone else is sent to the gate form, which delivers after submit.

Every delivery is stored as an event through the collector's server-side intake:
``download`` for files, ``content_view`` for articles, videos and pages by URL, with
``object_type`` "asset". ``?sl=<token>`` (a share link) passes through as the event's
``share_token``. Bots are stored but marked by the intake, so they are not counted.
"""

from __future__ import annotations

import mimetypes
import os
from typing import Any
from urllib.parse import urlencode

from django.db.models import Q
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponseBase,
    HttpResponseRedirect,
)
from django.shortcuts import render
from django.urls import NoReverseMatch, path, reverse
from django.utils.cache import add_never_cache_headers

from apps.contacts.collector.server import server_events_store, visitor_cookie_set, visitor_id
from apps.contacts.models import Identity, IdentityKind
from apps.content.blocks import url_is_web
from apps.content.gating import asset_grant_check
from apps.content.html import safe_html
from apps.content.models import Asset, AssetKind, FormSubmission, SubmissionStatus
from apps.content.public.pages import request_event_id, share_token_of

# Shown in the browser rather than saved: formats every browser displays itself.
INLINE_EXTENSIONS = {"pdf", "png", "jpg", "jpeg", "mp4"}
KEY_MAX = 40


def _gate_url(asset: Asset, share_token: str) -> str:
    assert asset.gate_form is not None
    try:
        base = reverse("form-public", args=[asset.gate_form.key])
    except NoReverseMatch:  # the forms area is not installed
        base = f"/f/{asset.gate_form.key}/"
    params = {"asset": asset.key}
    if share_token:
        params["sl"] = share_token
    return f"{base}?{urlencode(params)}"


def _known_visitor(asset: Asset, anonymous_id: str) -> bool:
    """Has this browser's visitor (or the contact it belongs to) filled the gate form?"""
    group_id = asset.unit.parent_id or asset.unit_id
    owners = (
        Identity.objects.dangerously_unscoped()
        .filter(group_id=group_id, kind=IdentityKind.ANONYMOUS, scope="", value=anonymous_id)
        .values("contact_id")
    )
    return (
        FormSubmission.objects.dangerously_unscoped()
        .filter(
            form_id=asset.gate_form_id or 0,
            status__in=[SubmissionStatus.PENDING, SubmissionStatus.PROCESSED],
        )
        .filter(Q(anonymous_id=anonymous_id) | Q(contact_id__in=owners))
        .exists()
    )


def _record(
    request: HttpRequest,
    asset: Asset,
    *,
    event_type: str,
    anonymous_id: str,
    new_visitor: bool,
    share_token: str,
    granted: bool,
) -> None:
    properties: dict[str, Any] = {"title": asset.title[:200], "kind": asset.kind}
    # What the asset is about travels with the event, so segments and scoring can ask
    # "viewed topic X three times" without a join into content (a layer above contacts).
    if asset.topic:
        properties["topic"] = asset.topic
    if asset.buying_stage:
        properties["buying_stage"] = asset.buying_stage
    if share_token:
        properties["share_token"] = share_token
    if granted:
        properties["gated"] = True
    event = {
        "type": event_type,
        "id": request_event_id(
            request,
            kind="as",
            object_id=asset.pk,
            anonymous_id=anonymous_id,
            new_visitor=new_visitor,
        ),
        "url": request.build_absolute_uri()[:2000],
        "referrer": request.headers.get("Referer", "")[:2000],
        "title": asset.title[:300],
        "object_type": "asset",
        "object_id": str(asset.pk),
        "properties": properties,
    }
    server_events_store(
        unit_id=asset.unit_id, anonymous_id=anonymous_id, events=[event], request=request
    )


def _file_response(asset: Asset) -> HttpResponseBase:
    name = asset.file.name or ""
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    try:
        handle = asset.file.open("rb")
    except (FileNotFoundError, OSError):
        raise Http404 from None
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = FileResponse(
        handle,
        as_attachment=extension not in INLINE_EXTENSIONS,
        filename=os.path.basename(name),
        content_type=content_type,
    )
    # Whatever a file holds, it must not run as a page of ours.
    response["Content-Security-Policy"] = "sandbox"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def asset_public(request: HttpRequest, key: str) -> HttpResponseBase:
    if len(key) > KEY_MAX:
        raise Http404
    # Public: nobody is logged in; the key is the address.
    asset = (
        Asset.objects.dangerously_unscoped()
        .select_related("unit", "gate_form")
        .filter(key=key, is_active=True)
        .first()
    )
    if asset is None:
        raise Http404
    share_token = share_token_of(request)
    anonymous_id, new_visitor = visitor_id(request)
    granted = False
    if asset.is_gated and asset.gate_form is not None:
        grant = request.GET.get("g", "")
        granted = bool(grant) and asset_grant_check(grant, asset.key) is not None
        if not granted and not (not new_visitor and _known_visitor(asset, anonymous_id)):
            response: HttpResponseBase = HttpResponseRedirect(_gate_url(asset, share_token))
            add_never_cache_headers(response)
            visitor_cookie_set(response, anonymous_id, request)
            return response
    if asset.file:
        response = _file_response(asset)
        event_type = "content_view" if asset.kind == AssetKind.VIDEO else "download"
    elif asset.url and url_is_web(asset.url):
        response = HttpResponseRedirect(asset.url)
        event_type = (
            "content_view" if asset.kind in (AssetKind.VIDEO, AssetKind.ARTICLE) else "download"
        )
    elif asset.body.strip():
        response = render(
            request,
            "content/assets/public_article.html",
            {"asset": asset, "body": safe_html(asset.body)},
        )
        event_type = "content_view"
    else:
        raise Http404
    add_never_cache_headers(response)
    if request.method == "GET":
        _record(
            request,
            asset,
            event_type=event_type,
            anonymous_id=anonymous_id,
            new_visitor=new_visitor,
            share_token=share_token,
            granted=granted,
        )
    visitor_cookie_set(response, anonymous_id, request)
    return response


urlpatterns = [path("a/<str:key>/", asset_public, name="asset-public")]
