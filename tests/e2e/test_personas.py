"""Every demo persona signs in through a real browser and lands on their own surface.

Run at a desktop (1280 px) and a phone (375 px) width. Each case also flips the language
switch to English and back, and saves a screenshot of the landing page in both languages
to ``test-artifacts/e2e/`` for a human to look at.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from apps.core.demo import DEMO_PASSWORD, PERSONAS, Persona, seed_core
from tests.e2e.conftest import ARTIFACTS, DESKTOP, MOBILE

pytestmark = pytest.mark.browser

SURFACE_PATHS = {"console": "/console/", "sdr": "/sdr/", "mobile": "/m/"}
LOGIN_PATH = "/accounts/login/"
SHOTS = ARTIFACTS / "e2e"

CASES = [
    pytest.param(persona, width, id=f"{persona.username}-{width}")
    for persona in PERSONAS
    for width in (DESKTOP, MOBILE)
]


@pytest.fixture
def demo_world(transactional_db: None) -> None:
    seed_core()


def path_of(page: Page) -> str:
    return urlsplit(page.url).path


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the document is wider than the viewport (0 when it fits)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def assert_fits(page: Page, what: str) -> None:
    overflow = horizontal_overflow(page)
    assert overflow <= 1, f"{what} at {page.viewport_size}: {overflow}px horizontal overflow"


def english_h1(persona: Persona) -> str:
    """The landing page's heading in English, the source language of the templates."""
    return {
        "console": f"Welcome, {persona.display_name}",
        "sdr": "Lead queue",
        "mobile": f"Hello, {persona.display_name}",
    }[persona.surface]


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(base_url + "/")
    expect(page).to_have_url(re.compile(re.escape(LOGIN_PATH)))
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    with page.expect_navigation():
        page.locator("form:has(#id_password) button[type=submit]").click()


def switch_language(page: Page, to: str) -> None:
    button = page.locator(".lang-switch button[name=language]")
    expect(button).to_have_attribute("value", to)
    before = path_of(page)
    with page.expect_navigation():
        button.click()
    expect(page.locator("html")).to_have_attribute("lang", to)
    assert path_of(page) == before, "the language switch should return to the same page"


def assert_surface(page: Page, persona: Persona) -> None:
    """The parts of each surface that hold in any language."""
    expect(page.locator("h1").first).to_be_visible()
    if persona.surface != "sdr":  # the SDR lands on their lead queue, not a card page
        assert page.locator(".cards .card").count() >= 1, "the home page shows no cards"
    if persona.surface == "mobile":
        expect(page.locator("body")).to_have_class(re.compile(r"\bmobile\b"))
        expect(page.locator("nav.m-tabs")).to_be_attached()
        expect(page.locator(".sidenav")).to_have_count(0)
    else:
        sidenav = page.locator("nav.sidenav")
        expect(sidenav).to_be_attached()
        assert sidenav.locator("a").count() >= 1, "the side navigation has no links"
        expect(page.locator("nav.m-tabs")).to_have_count(0)
        if persona.surface == "console":
            expect(sidenav.locator("a.on")).to_have_attribute("href", "/console/")


@pytest.mark.parametrize(("persona", "width"), CASES)
def test_persona_lands_on_their_surface(
    demo_world: None,
    live_server: LiveServer,
    page: Callable[..., Page],
    persona: Persona,
    width: int,
) -> None:
    p = page(width)
    base_url = live_server.url
    name = f"{persona.username}-{width}"

    p.goto(base_url + "/")
    assert path_of(p) == LOGIN_PATH
    expect(p.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(p.locator("h1")).to_have_text("LeadLoop")
    if width == MOBILE:
        assert_fits(p, "the login page")
    shoot(p, f"login-{width}")

    sign_in(p, base_url, persona.username, DEMO_PASSWORD)
    surface_path = SURFACE_PATHS[persona.surface]
    assert path_of(p) == surface_path, f"{persona.username} landed on {p.url}"
    expect(p.locator("html")).to_have_attribute("lang", "zh-hans")
    assert_surface(p, persona)
    if persona.surface != "sdr":
        # The heading greets the user by name in any language.
        expect(p.locator("h1").first).to_contain_text(persona.display_name)
    if width == MOBILE:
        assert_fits(p, surface_path)
    shoot(p, f"{name}-zh-hans")

    switch_language(p, "en")
    expect(p.locator("h1").first).to_have_text(english_h1(persona))
    assert_surface(p, persona)
    if width == MOBILE:
        assert_fits(p, f"{surface_path} in English")
    shoot(p, f"{name}-en")

    switch_language(p, "zh-hans")
    assert_surface(p, persona)
