"""The browser layer: one headless Debian Chromium per session, driven by Playwright.

Tests marked ``browser`` use ``live_server`` (so a transactional database: rows made in
the test through the ORM are visible to the server thread) and the ``page`` factory::

    @pytest.mark.browser
    def test_something(live_server, page):
        p = page(375)  # a fresh context: 375x812 touch phone, zh-CN
        p.goto(live_server.url + "/")

Never run ``playwright install``: the browser is Debian's ``chromium`` package. When it
is missing every ``browser`` test is skipped. On failure each open page is saved as a
screenshot under ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# Playwright's sync API keeps an asyncio loop in the test thread; Django's ORM would then
# refuse every query in the test body with SynchronousOnlyOperation.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

CHROMIUM_MISSING = (
    "Chromium not found: install Debian's chromium (apt-get install chromium) to run browser tests"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

DESKTOP = 1280
MOBILE = 375
# Narrower than this is a phone: touch, mobile viewport meta honoured.
PHONE_MAX_WIDTH = 767
DEFAULT_LOCALE = "zh-CN"  # Accept-Language zh-CN, i.e. the site default zh-hans


def chromium_path() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if chromium_path() is not None:
        return
    skip = pytest.mark.skip(reason=CHROMIUM_MISSING)
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Keep each phase's report on the item so fixtures can see in teardown if the test failed.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    if executable is None:
        pytest.skip(CHROMIUM_MISSING)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _artifact_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1]).strip("_")


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[..., Page]]:
    """Factory: ``page(width=1280, locale="zh-CN")`` opens a page in a fresh browser context.

    1280 gives a 1280x800 desktop; 375 (any width under 768) a 375x812 touch phone.
    Every context is closed after the test.
    """
    contexts: list[Any] = []

    def new_page(width: int = DESKTOP, locale: str = DEFAULT_LOCALE) -> Page:
        phone = width <= PHONE_MAX_WIDTH
        context = browser.new_context(
            viewport={"width": width, "height": 812 if phone else 800},
            is_mobile=phone,
            has_touch=phone,
            device_scale_factor=2 if phone else 1,
            locale=locale,
        )
        context.set_default_timeout(10_000)
        context.set_default_navigation_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield new_page

    failed = any(
        getattr(getattr(request.node, f"rep_{when}", None), "failed", False)
        for when in ("setup", "call")
    )
    if failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = _artifact_name(request.node.nodeid)
        for n, context in enumerate(contexts):
            for m, open_page in enumerate(context.pages):
                target = ARTIFACTS / f"{name}-{n}-{m}.png"
                try:
                    open_page.screenshot(path=str(target), full_page=True)
                except Exception:  # noqa: BLE001, S112 - best effort on a page that may be dead
                    continue
    for context in contexts:
        context.close()
