"""Public landing pages: ``/p/<slug>/``.

A published page is shown to anyone; a draft only with a valid preview token (signed,
an hour long) that an editor opened from the console. Each view of a published page is
stored as a ``page_view`` through the collector's server-side intake (store first,
processed after), under the visitor's ``ll_aid`` cookie, with the full URL (so UTM
resolves to channel and campaign) and the referrer. The event id is derived from the
request, so a retried request (same visitor, URL and referrer within the minute) is
counted once.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.cache import add_never_cache_headers

from apps.contacts.collector.server import (
    client_ip,
    server_events_store,
    visitor_cookie_set,
    visitor_id,
)
from apps.content.blocks import blocks_html, blocks_render_items
from apps.content.models import LandingPage
from apps.content.services.pages import page_preview_check

SHARE_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
SLUG = re.compile(r"^[a-z0-9-]{1,100}$")
# A retried request inside this window is the same view (same event id).
RETRY_WINDOW_SECONDS = 60


def share_token_of(request: HttpRequest) -> str:
    token = request.GET.get("sl", "")
    return token if SHARE_TOKEN.match(token) else ""


def request_event_id(
    request: HttpRequest, *, kind: str, object_id: int, anonymous_id: str, new_visitor: bool
) -> str:
    """A stable id for the event this request records: the same request sent again
    (a browser or proxy retry) yields the same id, which the collector stores once.

    A visitor without the cookie gets a fresh anonymous id on every try, so for them the
    address and browser stand in for it.
    """
    who = (
        f"{client_ip(request)}|{request.headers.get('User-Agent', '')}"
        if new_visitor
        else anonymous_id
    )
    window = int(time.time() // RETRY_WINDOW_SECONDS)
    basis = "|".join(
        [
            kind,
            str(object_id),
            who,
            request.get_full_path(),
            request.headers.get("Referer", ""),
            str(window),
        ]
    )
    return f"{kind}-{hashlib.sha256(basis.encode('utf-8', 'replace')).hexdigest()[:40]}"


def _page_view(
    request: HttpRequest,
    page: LandingPage,
    *,
    anonymous_id: str,
    new_visitor: bool,
    share_token: str,
) -> None:
    event: dict[str, Any] = {
        "type": "page_view",
        "id": request_event_id(
            request,
            kind="lp",
            object_id=page.pk,
            anonymous_id=anonymous_id,
            new_visitor=new_visitor,
        ),
        "url": request.build_absolute_uri()[:2000],
        "referrer": request.headers.get("Referer", "")[:2000],
        "title": (page.seo_title or page.title)[:300],
        "object_type": "landing_page",
        "object_id": str(page.pk),
        "properties": {"slug": page.slug},
    }
    if share_token:
        event["properties"]["share_token"] = share_token
    # The page's own channel and campaign stand in when the link carries no UTM.
    if "utm_source" not in request.GET and "utm_campaign" not in request.GET:
        utm = {}
        if page.channel is not None:
            utm["source"] = page.channel.code
        if page.campaign is not None:
            utm["campaign"] = page.campaign.code
        if utm:
            event["utm"] = utm
    server_events_store(
        unit_id=page.unit_id, anonymous_id=anonymous_id, events=[event], request=request
    )


def _og_image(request: HttpRequest, page: LandingPage) -> str:
    for item in blocks_render_items(
        page, blocks=[b for b in page.blocks if b.get("type") == "image"]
    ):
        return request.build_absolute_uri(item["src"])
    return ""


def page_public(request: HttpRequest, slug: str) -> HttpResponse:
    if not SLUG.match(slug):
        raise Http404
    # Public: nobody is logged in; the slug is the whole address space.
    page = (
        LandingPage.objects.dangerously_unscoped()
        .select_related("channel", "campaign")
        .filter(slug=slug)
        .first()
    )
    if page is None:
        raise Http404
    preview = page_preview_check(request.GET.get("preview", ""), page)
    if not page.is_published and not preview:
        raise Http404
    share_token = share_token_of(request)
    anonymous_id, new_visitor = visitor_id(request)
    canonical = request.build_absolute_uri(reverse("page-public", args=[page.slug]))
    context = {
        "page": page,
        "preview": preview,
        "draft": not page.is_published,
        "title": page.seo_title or page.title,
        "description": page.seo_description,
        "canonical": canonical,
        "og_image": _og_image(request, page),
        "blocks": blocks_html(page, request, share_token=share_token),
    }
    response = render(request, "content/pages/public.html", context)
    add_never_cache_headers(response)  # per visitor: a cookie and a counted view
    if preview:
        response["X-Robots-Tag"] = "noindex"
        return response  # an editor looking is not a visit
    if request.method == "GET":
        _page_view(
            request,
            page,
            anonymous_id=anonymous_id,
            new_visitor=new_visitor,
            share_token=share_token,
        )
    visitor_cookie_set(response, anonymous_id, request)
    return response


urlpatterns = [path("p/<str:slug>/", page_public, name="page-public")]
