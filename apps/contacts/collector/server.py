"""Events our own public pages record on the server (landing pages, forms, asset
downloads, share links): they go through the same store-first pipeline as the tracker.

Each unit has one built-in site the pages report through. The visitor is known by the
same first-party cookie ``t.js`` uses (``ll_aid``), so what a visitor did on a customer's
own website and on our pages lands under one anonymous id.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponseBase

from apps.contacts.collector.bots import is_bot
from apps.contacts.collector.intake import SiteInfo, batch_store, site_for_key
from apps.contacts.models import Site

VISITOR_COOKIE = "ll_aid"
VISITOR_COOKIE_AGE = 2 * 365 * 24 * 3600  # as t.js: two years from the last visit
# The shape t.js gives visitor ids (a UUID4), checked wherever one arrives.
VISITOR_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def visitor_id(request: HttpRequest) -> tuple[str, bool]:
    """The visitor's anonymous id from the cookie, or a new one; and whether it is new."""
    current = request.COOKIES.get(VISITOR_COOKIE, "")
    if VISITOR_ID.match(current):
        return current, False
    return str(uuid.uuid4()), True


def visitor_cookie_set(response: HttpResponseBase, anonymous_id: str, request: HttpRequest) -> None:
    """(Re)write the cookie, so the two years count from this visit, as t.js does."""
    response.set_cookie(
        VISITOR_COOKIE,
        anonymous_id,
        max_age=VISITOR_COOKIE_AGE,
        samesite="Lax",
        secure=request.is_secure(),
        httponly=False,  # t.js on the same site reads it
    )


def client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client says unless a proxy we
    # trust sets it, and the deployment decides that in front of Django.
    address = request.META.get("REMOTE_ADDR") or None
    return address if address and len(address) <= 45 else None


def request_is_bot(request: HttpRequest) -> bool:
    return is_bot(request.headers.get("User-Agent", ""), request.headers)


def builtin_site(unit_id: int) -> Site:
    """The unit's built-in site, created the first time a page of the unit reports."""
    site = Site.objects.dangerously_unscoped().filter(unit_id=unit_id, is_builtin=True).first()
    if site is not None:
        return site
    try:
        with transaction.atomic():
            return Site.objects.create(
                unit_id=unit_id,
                name="LeadLoop pages",
                public_key=f"pk_{secrets.token_urlsafe(18)}",
                signing_secret=secrets.token_urlsafe(32),
                is_builtin=True,
            )
    except IntegrityError:  # another request created it a moment ago
        return Site.objects.dangerously_unscoped().get(unit_id=unit_id, is_builtin=True)


def server_events_store(
    *,
    unit_id: int,
    anonymous_id: str,
    events: list[dict[str, Any]],
    request: HttpRequest | None = None,
) -> int | None:
    """Store events as a raw collector batch of the unit's built-in site; processing turns
    them into Activities exactly as the tracker's (dedupe keys, bots, anonymous → known).

    Each event is a collector event (``type``, ``url``, ``object_type``, ``object_id``,
    ``properties``, ``id`` for idempotency…). Returns the batch id, or None when the site
    was switched off.
    """
    site = builtin_site(unit_id)
    info: SiteInfo | None = site_for_key(site.public_key)
    if info is None:
        return None
    body = json.dumps(
        {"anonymous_id": anonymous_id, "events": events}, ensure_ascii=False, default=str
    ).encode("utf-8")
    user_agent = request.headers.get("User-Agent", "") if request is not None else ""
    return batch_store(
        site=info,
        public_key=site.public_key,
        body=body,
        ip=client_ip(request) if request is not None else None,
        user_agent=user_agent,
        origin=request.headers.get("Origin", "") if request is not None else "",
        is_bot=request_is_bot(request) if request is not None else False,
        event_count=len(events),
    )
