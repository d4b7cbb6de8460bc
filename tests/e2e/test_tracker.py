"""The tracker in a real browser: a page embeds the console's snippet, loads /t.js from the
live server and sends its events to the collector.

The landing page is not part of the app: Playwright answers its URL (on the live server's
origin) with a small HTML page holding the snippet, so no test-only view or file ships.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, Request, Route
from pytest_django.live_server_helper import LiveServer

from apps.contacts.collector.services import collector_batch_process
from apps.contacts.collector.signing import identifiers_sign
from apps.contacts.models import RawBatch, RawBatchStatus, Site
from apps.contacts.services import sites
from apps.contacts.views.sites import SNIPPET
from apps.core.services import SystemActor
from tests.factories import GroupFactory, UnitFactory

pytestmark = pytest.mark.browser

# Headless Chromium says "HeadlessChrome", which the collector rightly files as a bot.
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
LANDING = "/__landing__/pricing?utm_source=baidu&utm_medium=cpc&utm_campaign=2026-spring"
# What the browser does when the tab is switched away from.
HIDE_PAGE = """() => {
  Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "hidden"});
  document.dispatchEvent(new Event("visibilitychange"));
}"""
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


@pytest.fixture
def site(transactional_db: None) -> Site:
    unit = UnitFactory(code="web", name="官网事业部", parent=GroupFactory(code="g", name="集团"))
    return sites.site_create(unit=unit, name="官网", acting_user=SystemActor("e2e"))


def landing_html(live_server: LiveServer, site: Site) -> str:
    snippet = SNIPPET.format(script_url=f"{live_server.url}/t.js", public_key=site.public_key)
    # The track() call runs before t.js has loaded: the snippet's stub must keep it.
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>价格方案</title>
{snippet}
<script>leadloop.track("webinar_signup", {{webinar: "2026-05"}});</script>
</head><body>
<h1>价格方案</h1>
<a id="pdf" href="/files/white-paper.pdf" onclick="event.preventDefault()">下载白皮书</a>
<a id="out" href="https://partner.example.org/" onclick="event.preventDefault()">合作伙伴</a>
<button id="case" data-ll-asset="case-42">案例</button>
</body></html>"""


def body_of(request: Request) -> dict[str, Any]:
    data = request.post_data
    assert data, f"no body in {request.method} {request.url}"
    return json.loads(data)


def is_collect(request: Request) -> bool:
    return request.method == "POST" and urlsplit(request.url).path == "/api/v1/collect"


def sent_when(page: Page, action: Callable[[], Any], *, wanted: str) -> dict[str, Any]:
    """Do ``action`` and return the next collector body holding an event of type ``wanted``."""

    def matches(request: Request) -> bool:
        if not is_collect(request):
            return False
        return any(e["type"] == wanted for e in body_of(request)["events"])

    with page.expect_request(matches) as caught:
        action()
    request = caught.value
    response = request.response()
    assert response is not None
    assert response.status == 202, response.text()
    return {"body": body_of(request), "request": request}


def test_the_snippet_tracks_views_clicks_read_time_and_identify(
    live_server: LiveServer, page: Callable[..., Page], site: Site
) -> None:
    p = page()
    p.context.set_extra_http_headers({"User-Agent": USER_AGENT})
    html = landing_html(live_server, site)

    def serve(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)

    p.route(f"{live_server.url}/__landing__/**", serve)

    # Given a visitor lands on a page with the snippet, from a Baidu ad.
    first = sent_when(p, lambda: p.goto(live_server.url + LANDING), wanted="page_view")

    # Then the page view goes out at once, with the key, an anonymous id and the UTM.
    body, request = first["body"], first["request"]
    assert request.headers["x-leadloop-key"] == site.public_key
    assert body["key"] == site.public_key
    anonymous_id = body["anonymous_id"]
    assert re.fullmatch(UUID, anonymous_id)
    view = next(e for e in body["events"] if e["type"] == "page_view")
    assert re.fullmatch(UUID, view["id"])
    assert view["url"] == live_server.url + LANDING
    assert view["title"] == "价格方案"
    assert view["utm"] == {"source": "baidu", "medium": "cpc", "campaign": "2026-spring"}
    assert view["occurred_at"].endswith("Z")
    # And the anonymous id lives in a first-party cookie: two years asked for, which
    # Chromium caps at 400 days (RFC 6265bis); every visit writes it again.
    cookie = next(c for c in p.context.cookies() if c["name"] == "ll_aid")
    assert cookie["value"] == anonymous_id
    assert (cookie["path"], cookie["sameSite"]) == ("/", "Lax")
    assert 399 * 86400 < cookie["expires"] - time.time() <= 730 * 86400 + 5

    # When they click a PDF link, an outbound link and a marked asset.
    asset = sent_when(p, lambda: p.click("#pdf"), wanted="click")["body"]
    outbound = sent_when(p, lambda: p.click("#out"), wanted="click")["body"]
    marked = sent_when(p, lambda: p.click("#case"), wanted="click")["body"]

    # Then each is a click with its kind, sent by beacon with the key in the URL.
    clicks = [
        next(e for e in b["events"] if e["type"] == "click")["properties"]
        for b in (asset, outbound, marked)
    ]
    assert clicks == [
        {"href": f"{live_server.url}/files/white-paper.pdf", "text": "下载白皮书", "kind": "asset"},
        {"href": "https://partner.example.org/", "text": "合作伙伴", "kind": "outbound"},
        {"href": "", "text": "案例", "kind": "asset", "asset_id": "case-42"},
    ]
    # The custom event queued before the script loaded went out with the first batch or
    # the next one; either way it was kept.
    everything = [body, asset, outbound, marked]
    custom = [e for b in everything for e in b["events"] if e["type"] == "custom"]
    assert [(e["name"], e["properties"]) for e in custom] == [
        ("webinar_signup", {"webinar": "2026-05", "name": "webinar_signup"})
    ]

    # When the single-page app moves to another route.
    spa = sent_when(
        p,
        lambda: p.evaluate("history.pushState({}, '', '/__landing__/docs'); leadloop.flush()"),
        wanted="page_view",
    )["body"]
    spa_view = next(e for e in spa["events"] if e["type"] == "page_view")
    assert (spa_view["url"], spa_view["referrer"]) == (
        f"{live_server.url}/__landing__/docs",
        live_server.url + LANDING,
    )
    # UTM parameters stay with the session after the landing URL is gone.
    assert spa_view["utm"]["source"] == "baidu"

    # When the visitor has read for a while and the page is hidden.
    p.wait_for_timeout(1200)
    hidden = sent_when(
        p,
        lambda: p.evaluate(HIDE_PAGE),
        wanted="content_view",
    )
    # Then the read time goes out by beacon, keyed in the URL, as text/plain.
    read = next(e for e in hidden["body"]["events"] if e["type"] == "content_view")
    assert read["properties"]["seconds"] >= 1
    assert read["url"] == f"{live_server.url}/__landing__/docs"
    beacon = hidden["request"]
    assert parse_qs(urlsplit(beacon.url).query)["key"] == [site.public_key]
    assert beacon.headers["content-type"].startswith("text/plain")

    # When the site's server vouches for the visitor.
    signature = identifiers_sign(site.signing_secret, {"email": "li.lei@example.cn"})
    identified = sent_when(
        p,
        lambda: p.evaluate(
            "([ids, sig]) => leadloop.identify(ids, sig)",
            [{"email": "li.lei@example.cn"}, signature],
        ),
        wanted="identify",
    )["body"]
    ident = next(e for e in identified["events"] if e["type"] == "identify")
    assert (ident["identifiers"], ident["signature"]) == ({"email": "li.lei@example.cn"}, signature)

    # Then every batch was stored, with the anonymous id, as a person (not a bot).
    batches = list(RawBatch.objects.dangerously_unscoped().filter(site=site).order_by("id"))
    stored = [json.loads(bytes(b.body)) for b in batches]
    assert len(batches) >= 6
    assert {s["anonymous_id"] for s in stored} == {anonymous_id}
    assert not any(b.is_bot for b in batches)
    types = sorted({e["type"] for s in stored for e in s["events"]})
    assert types == ["click", "content_view", "custom", "identify", "page_view"]
    assert all(b.status == RawBatchStatus.PENDING for b in batches)

    # And the collector's worker accepts every event the tracker sent, the signed
    # identity included.
    done = [collector_batch_process(batch_id=b.pk) for b in batches]
    assert [(b.status, b.rejections) for b in done if b is not None] == [
        (RawBatchStatus.PROCESSED, [])
    ] * len(batches)


@pytest.fixture
def customer_site() -> Iterator[dict[str, Any]]:
    """A second web server on 127.0.0.1: the customer's own site, another origin than the
    live server's (localhost). A real server, not a Playwright route: Chromium lets a page
    reach loopback addresses only when it was itself served from one."""
    served: dict[str, Any] = {"html": ""}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = served["html"].encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served["origin"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield served
    server.shutdown()
    server.server_close()


def test_the_snippet_works_from_a_customers_own_domain(
    live_server: LiveServer, page: Callable[..., Page], site: Site, customer_site: dict[str, Any]
) -> None:
    # Given the site only accepts events from its own origin, which is not LeadLoop's.
    customer = customer_site["origin"]
    sites.site_update(
        site=site,
        name=site.name,
        allowed_origins=[customer],
        max_events_per_batch=100,
        max_requests_per_minute=120,
        is_active=True,
        acting_user=SystemActor("e2e"),
    )
    customer_site["html"] = landing_html(live_server, site)
    p = page()
    p.context.set_extra_http_headers({"User-Agent": USER_AGENT})

    # When a visitor opens a page there.
    first = sent_when(p, lambda: p.goto(f"{customer}/__landing__/pricing"), wanted="page_view")

    # Then the cross-origin POST (with its preflight) is accepted.
    assert first["request"].all_headers()["origin"] == customer
    anonymous_id = first["body"]["anonymous_id"]
    assert re.fullmatch(UUID, anonymous_id)
    # And the visitor's id is a first-party cookie of the customer's domain.
    cookie = next(c for c in p.context.cookies() if c["name"] == "ll_aid")
    assert (cookie["domain"], cookie["value"]) == ("127.0.0.1", anonymous_id)
    # And the beacon sent when the page is hidden is accepted too. (Chromium does not
    # show a cross-origin beacon's body to the test; the stored batch does.)
    p.wait_for_timeout(1100)
    with p.expect_request(lambda r: is_collect(r) and "key=" in r.url) as caught:
        p.evaluate(HIDE_PAGE)
    beacon = caught.value
    response = beacon.response()
    assert response is not None
    assert response.status == 202
    stored = [
        json.loads(bytes(body))
        for body in RawBatch.objects.dangerously_unscoped()
        .filter(site=site)
        .order_by("id")
        .values_list("body", flat=True)
    ]
    read = [e for b in stored for e in b["events"] if e["type"] == "content_view"]
    assert len(read) == 1
    assert read[0]["properties"]["seconds"] >= 1
    origins = set(
        RawBatch.objects.dangerously_unscoped().filter(site=site).values_list("origin", flat=True)
    )
    assert origins == {customer}
