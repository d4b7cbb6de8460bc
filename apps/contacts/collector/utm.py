"""Where a touch came from: UTM first, then the referrer, as a channel and a campaign.

``utm_source`` names a Channel by its ``code`` in the site's unit and ``utm_campaign`` a
Campaign by its ``code``. Without UTM the referrer's host decides the channel *kind*
(table below), and the touch gets the unit's active channel of that kind: the one whose
code equals the kind (e.g. a channel coded ``seo``) or else the oldest one.

Referrer host → kind (the host or any parent domain matches):

============================================================  ========================
baidu.com, so.com, sogou.com, sm.cn, bing.com, google.*,       seo (sem when the URL
yandex.*, toutiao.com (search)                                 carries a paid marker)
weixin.qq.com, qq.com, wechat.com                              wechat
douyin.com, iesdouyin.com                                      douyin
weibo.com, weibo.cn, zhihu.com, xiaohongshu.com, linkedin.com  social
any other external host                                        referral
no referrer at all                                             direct
============================================================  ========================

A paid marker is ``utm_medium`` in cpc/ppc/paid/sem or a click id in the URL (bd_vid,
gclid, msclkid). A referrer on the page's own host is navigation, not a touch: no channel.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from apps.contacts.models import ChannelKind

UTM_FIELDS = ("source", "medium", "campaign", "term", "content")
PAID_MEDIUMS = frozenset({"cpc", "ppc", "paid", "sem", "paidsearch"})
CLICK_IDS = ("bd_vid", "gclid", "msclkid")

SEARCH_ENGINES = ("baidu.com", "so.com", "sogou.com", "sm.cn", "bing.com", "toutiao.com")
SEARCH_PREFIXES = ("google.", "yandex.")
REFERRER_KINDS: tuple[tuple[str, str], ...] = (
    ("weixin.qq.com", ChannelKind.WECHAT),
    ("wechat.com", ChannelKind.WECHAT),
    ("qq.com", ChannelKind.WECHAT),
    ("douyin.com", ChannelKind.DOUYIN),
    ("iesdouyin.com", ChannelKind.DOUYIN),
    ("weibo.com", ChannelKind.SOCIAL),
    ("weibo.cn", ChannelKind.SOCIAL),
    ("zhihu.com", ChannelKind.SOCIAL),
    ("xiaohongshu.com", ChannelKind.SOCIAL),
    ("linkedin.com", ChannelKind.SOCIAL),
)


class Touch(NamedTuple):
    """What an event says about its origin, before it is matched to the unit's rows.

    A named tuple, not a dataclass: the worker hashes one per event to match it to its
    channel and campaign, and a tuple hashes and compares in C.
    """

    channel_code: str = ""
    campaign_code: str = ""
    kind: str = ""  # used only when there is no channel code


@lru_cache(maxsize=4096)  # referrers and page URLs repeat across a worker's batches
def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


def _matches(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def _is_search(host: str) -> bool:
    if any(_matches(host, d) for d in SEARCH_ENGINES):
        return True
    labels = host.split(".")
    # google.com, www.google.com.hk, google.cn …
    return any(f"{label}." in SEARCH_PREFIXES for label in labels[:-1])


def utm_of(url: str, explicit: Any) -> dict[str, str]:
    """The event's UTM values: the ones it sent, else those in its URL's query string."""
    found: dict[str, str] = {}
    if isinstance(explicit, dict):
        for name in UTM_FIELDS:
            value = explicit.get(name) or explicit.get(f"utm_{name}")
            if isinstance(value, str) and value.strip():
                found[name] = value.strip()[:200]
    if found or "?" not in url:  # no query string, no UTM (and no parsing to find out)
        return found
    try:
        query = parse_qs(urlsplit(url).query)
    except ValueError:
        return {}
    for name in UTM_FIELDS:
        values = query.get(f"utm_{name}")
        if values and values[0].strip():
            found[name] = values[0].strip()[:200]
    return found


def _has_click_id(url: str) -> bool:
    try:
        query = parse_qs(urlsplit(url).query)
    except ValueError:
        return False
    return any(name in query for name in CLICK_IDS)


def touch_of(*, url: str, referrer: str, utm: dict[str, str]) -> Touch:
    if not utm:
        return _touch_by_referrer(url, referrer)
    return _touch(url, referrer, utm)


@lru_cache(maxsize=4096)  # most events carry no UTM, and page/referrer pairs repeat
def _touch_by_referrer(url: str, referrer: str) -> Touch:
    return _touch(url, referrer, {})


def _touch(url: str, referrer: str, utm: dict[str, str]) -> Touch:
    campaign = utm.get("campaign", "").lower()
    if utm.get("source"):
        return Touch(channel_code=utm["source"].lower(), campaign_code=campaign)
    if not referrer:
        return Touch(campaign_code=campaign, kind=ChannelKind.DIRECT)
    host = _host(referrer)
    if not host:
        return Touch(campaign_code=campaign)
    own = _host(url)
    if own and (host == own or _matches(host, own) or _matches(own, host)):
        return Touch(campaign_code=campaign)  # moving around the site is not a touch
    if _is_search(host):
        paid = utm.get("medium", "").lower() in PAID_MEDIUMS or _has_click_id(url)
        return Touch(campaign_code=campaign, kind=ChannelKind.SEM if paid else ChannelKind.SEO)
    for domain, kind in REFERRER_KINDS:
        if _matches(host, domain):
            return Touch(campaign_code=campaign, kind=kind)
    return Touch(campaign_code=campaign, kind=ChannelKind.REFERRAL)
