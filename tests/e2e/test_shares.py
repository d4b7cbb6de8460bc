"""A share link in a real browser: the page counts visible reading time and reports it by
beacon when the page is hidden; the view's seconds follow what the reader did."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, Request
from pytest_django.live_server_helper import LiveServer

from apps.content.models import Asset, ShareView
from apps.content.services.shares import share_link_create
from tests.factories import GroupFactory, UnitFactory, UserFactory, member

pytestmark = pytest.mark.browser

# Headless Chromium says "HeadlessChrome", which is rightly filed as a bot.
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
# What the browser does when the tab is switched away from.
HIDE_PAGE = """() => {
  Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "hidden"});
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_visible_reading_time_reaches_the_view(
    live_server: LiveServer, page: Callable[..., Page], transactional_db: None
) -> None:
    # Given a salesperson's link to a whitepaper
    unit = UnitFactory(code="ls", name="生命科学", parent=GroupFactory(code="g", name="集团"))
    sales = UserFactory(username="sales-e2e")
    member(sales, unit, "sales")
    paper = Asset.objects.create(
        unit=unit, title="单细胞测序白皮书", kind="whitepaper", url="https://files.example.cn/a.pdf"
    )
    link = share_link_create(owner=sales, asset=paper, acting_user=sales)

    # When a reader opens it on a phone and keeps it visible for about 3 s
    p = page(375)
    p.context.set_extra_http_headers({"User-Agent": USER_AGENT})
    p.goto(f"{live_server.url}/s/{link.token}/")
    assert p.inner_text("h1") == "单细胞测序白皮书"
    p.wait_for_timeout(3000)

    # … and then switches away (the page is hidden)
    def is_beat(request: Request) -> bool:
        return request.method == "POST" and request.url.endswith(f"/s/{link.token}/beat")

    with p.expect_request(is_beat) as caught:
        p.evaluate(HIDE_PAGE)
    beat = caught.value
    assert beat.headers["content-type"].startswith("text/plain")

    # Then the stored view holds the visible seconds: between 2 and 5
    deadline = time.monotonic() + 5
    view = ShareView.objects.get(link=link)
    while view.seconds == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
        view.refresh_from_db()
    assert 2 <= view.seconds <= 5, view.seconds
    assert view.is_bot is False
    assert view.last_beat_at is not None

    # And time spent hidden does not count: nothing raises it while the page stays hidden
    p.wait_for_timeout(1500)
    seconds_hidden = view.seconds
    view.refresh_from_db()
    assert view.seconds == seconds_hidden
