"""Public, unauthenticated URLs of contacts: the tracker script ``/t.js``.

One script for every site (each page passes its public key in ``data-key``), so browsers
and proxies may cache it; the ETag lets them revalidate cheaply after the hour.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils.cache import get_conditional_response
from django.views.decorators.http import require_safe

TRACKER = "js/t.js"
MAX_AGE = 3600  # an hour: a changed tracker reaches every visitor within it


@lru_cache(maxsize=4)
def _load(filename: str, mtime_ns: int) -> tuple[bytes, str]:
    # Keyed by modification time, so an edited file is picked up without a restart.
    content = Path(filename).read_bytes()
    return content, hashlib.sha256(content).hexdigest()[:20]


def tracker_source() -> tuple[bytes, str]:
    """The script and its ETag (without quotes)."""
    found = finders.find(TRACKER)
    if not found:
        raise Http404
    filename = str(found if isinstance(found, str) else found[0])
    return _load(filename, Path(filename).stat().st_mtime_ns)


@require_safe
def tracker_script(request: HttpRequest) -> HttpResponse:
    content, tag = tracker_source()
    etag = f'"{tag}"'
    response = get_conditional_response(request, etag=etag) or HttpResponse(
        content, content_type="application/javascript; charset=utf-8"
    )
    # On the 304 too: a revalidated copy is good for another hour.
    response["ETag"] = etag
    response["Cache-Control"] = f"public, max-age={MAX_AGE}"
    # Loaded by <script src> from the customers' own sites: any origin may embed it.
    response["Access-Control-Allow-Origin"] = "*"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


urlpatterns: list[URLPattern] = [
    path("t.js", tracker_script, name="tracker-script"),
]
