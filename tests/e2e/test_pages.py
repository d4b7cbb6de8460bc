"""A landing page in a real phone-sized browser: it fits 375 px without sideways
scrolling, and rich text carrying script and event handlers stays inert."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from playwright.sync_api import Dialog, Page
from pytest_django.live_server_helper import LiveServer

from apps.contacts.models import RawBatch
from apps.content.models import Asset
from apps.content.services import pages as services
from apps.core.services import SystemActor
from tests.factories import GroupFactory, UnitFactory

pytestmark = pytest.mark.browser

# Headless Chromium says "HeadlessChrome", which the collector rightly files as a bot.
USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Mobile Safari/537.36"
)
HOSTILE = (
    "<p>细胞培养方案：覆盖样本制备、建库、测序与数据分析全流程，"
    "averyveryveryveryveryveryveryveryveryveryveryverylongwordthatmustwrapanyway</p>"
    "<script>alert('script')</script>"
    "<img src=x onerror=\"alert('onerror')\">"
    "<a href=\"javascript:alert('link')\">点这里</a>"
    "<table><tr><td>一</td><td>二</td><td>三</td><td>四</td><td>五</td><td>六</td>"
    "<td>七</td><td>八</td><td>九</td><td>十</td><td>十一</td><td>十二</td></tr></table>"
)


@pytest.mark.django_db(transaction=True)
def test_landing_page_fits_a_phone_and_hostile_rich_text_does_not_run(
    live_server: LiveServer, page: Callable[..., Page]
) -> None:
    # given a published page of a unit with a heading, hostile rich text, an asset card
    # and a button with a long label
    unit = UnitFactory(code="ls", name="生命科学", parent=GroupFactory(code="g", name="集团"))
    asset = Asset.objects.create(
        unit=unit,
        title="《单细胞测序技术白皮书 2026》",
        kind="whitepaper",
        url="https://files.example.cn/wp.pdf",
        summary="从样本制备到数据分析的完整流程。",
    )
    actor = SystemActor("e2e")
    lp = services.page_create(
        unit=unit,
        title="单细胞测序解决方案",
        slug="single-cell",
        blocks=[
            {"type": "heading", "text": "单细胞测序解决方案 2026", "level": 1},
            {"type": "text", "html": HOSTILE},
            {"type": "asset", "asset": asset.pk},
            {
                "type": "cta",
                "label": "立即预约应用科学家一对一技术交流",
                "url": "https://x.example.cn/",
            },
        ],
        acting_user=actor,
    )
    # straight into the database too, as an older version might have stored it
    lp.blocks.append({"type": "text", "html": HOSTILE})
    lp.save(update_fields=["blocks"])
    services.page_publish(page=lp, acting_user=actor)

    p = page(375)
    p.context.set_extra_http_headers({"User-Agent": USER_AGENT})
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    p.on("dialog", on_dialog)
    # when a phone opens it, and the visitor taps the neutralised link
    p.goto(f"{live_server.url}/p/single-cell/")
    p.wait_for_load_state("load")
    p.get_by_text("点这里").first.click()
    p.wait_for_timeout(300)

    # then nothing ran: no dialog from the script, the onerror or the link
    assert dialogs == []
    assert p.evaluate("document.querySelectorAll('script:not([src])').length") == 0
    assert p.evaluate("document.querySelectorAll('[onerror]').length") == 0
    # and the page fits the phone: nothing scrolls sideways
    sizes = p.evaluate(
        "({doc: document.documentElement.scrollWidth, body: document.body.scrollWidth,"
        " view: window.innerWidth})"
    )
    assert sizes["view"] == 375
    assert sizes["doc"] <= 375, sizes
    assert sizes["body"] <= 375, sizes
    assert p.locator("h1").first.inner_text() == "单细胞测序解决方案 2026"
    assert p.locator(".lp-asset .button").count() == 1
    # and the visit was stored for the collector, as a person (not a bot)
    batch = RawBatch.objects.get()
    assert not batch.is_bot
    [event] = json.loads(bytes(batch.body))["events"]
    assert (event["type"], event["object_id"]) == ("page_view", str(lp.pk))
