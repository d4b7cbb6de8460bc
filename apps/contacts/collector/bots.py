"""Telling crawlers and prefetches from people: they are stored, marked, and not counted."""

from __future__ import annotations

import re
from typing import Protocol

# Matched case-insensitively anywhere in the user agent. "Headless" catches headless
# Chromium (HeadlessChrome/…), which is how most scrapers drive a browser; browser tests
# that exercise the tracker must therefore set an ordinary user agent. An empty user agent
# is not treated as a bot: some in-app browsers and our own test clients send none.
BOT_USER_AGENT = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|curl/|wget/|python-requests|python-urllib|httpx|"
    r"aiohttp|go-http-client|java/|okhttp|headless|phantomjs|selenium|puppeteer|"
    r"lighthouse|pagespeed|pingdom|uptimerobot|facebookexternalhit|bytespider|"
    r"yisouspider|sogou web|360spider|baiduspider|feedfetcher|preview",
    re.IGNORECASE,
)


class Headers(Protocol):
    """``request.headers``, or anything else that looks headers up by their HTTP name."""

    def get(self, key: str, default: str, /) -> str: ...


def is_bot(user_agent: str, headers: Headers) -> bool:
    """True for crawler user agents and for prefetches (the page may never be seen)."""
    purpose = f"{headers.get('Purpose', '')} {headers.get('Sec-Purpose', '')}".lower()
    if "prefetch" in purpose or "prerender" in purpose:
        return True
    if headers.get("X-Moz", "").lower() == "prefetch":
        return True
    return bool(user_agent) and BOT_USER_AGENT.search(user_agent) is not None
