"""Share links' and WeChat's part of the demo world (``register_demo`` order 320, after the
assets at 290, forms at 300 and landing pages at 310).

Each 华澜 unit gets its WeChat official account, with the app id the contacts demo scoped
its openids by. In the life-science unit the sales, SDR, sales-manager and marketer
personas share a few assets and landing pages (全员营销); every link has been opened over
the last two weeks by known contacts and anonymous visitors, with read times. The opens
are processed the way the worker does it, so the sharers find activities on their
contacts' timelines and notifications in the bell, the older ones already read.

Idempotent: accounts are keyed by app id; the links step is skipped once the sales persona
has a link.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.contacts.demo import WECHAT_APP_IDS
from apps.contacts.models import ContactUnit, WeChatAccount
from apps.content.models import Asset, LandingPage, PageStatus, ShareLink, ShareView
from apps.content.services import shares, wechat
from apps.core.demo import SYSTEM, register_demo
from apps.core.models import BusinessUnit, Notification, User

SEED = 20261320
UNIT = "hualan-ls"
# persona → (how many assets, how many pages) they share
SHARERS = {"sales": (3, 1), "sdr": (2, 1), "manager": (1, 1), "marketer": (2, 2)}
NOTES = ("", "", "展会后跟进", "给采购部", "技术交流会后发送", "")
DAYS = 14
UNREAD_PER_SHARER = 3
USER_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN",
    "Mozilla/5.0 (Linux; Android 14; V2309A Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 "
    "MMWEBSDK/20231202 MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 Weixin NetType/4G",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 wxwork/4.1.22 MicroMessenger/7.0.1 Language/zh ColorScheme/Light",
)
# Documentation ranges (RFC 5737): look like addresses, belong to nobody.
IP_PREFIXES = ("198.51.100.", "203.0.113.", "192.0.2.")


def _accounts() -> None:
    for code, app_id in WECHAT_APP_IDS.items():
        unit = BusinessUnit.objects.dangerously_unscoped().filter(code=code).first()
        if (
            unit is None
            or WeChatAccount.objects.dangerously_unscoped().filter(app_id=app_id).exists()
        ):
            continue
        wechat.wechat_account_create(
            unit=unit, name=f"华澜{unit.name}", app_id=app_id, acting_user=SYSTEM
        )


def _targets(unit: BusinessUnit) -> tuple[list[Asset], list[LandingPage]]:
    assets = list(
        Asset.objects.dangerously_unscoped().filter(unit=unit, is_active=True).order_by("id")
    )
    pages = list(
        LandingPage.objects.dangerously_unscoped()
        .filter(unit=unit, status=PageStatus.PUBLISHED)
        .order_by("id")
    )
    return assets, pages


def _people(unit: BusinessUnit, rng: random.Random) -> list[int]:
    known = (
        ContactUnit.objects.dangerously_unscoped()
        .filter(unit=unit, contact__status="active")
        .exclude(contact__name="")
        .values_list("contact_id", flat=True)
        .order_by("contact_id")[:400]
    )
    ids = list(known)
    rng.shuffle(ids)
    return ids[:60]


def _links(unit: BusinessUnit, rng: random.Random) -> list[ShareLink]:
    assets, pages = _targets(unit)
    if not assets and not pages:
        return []
    made = []
    for username, (n_assets, n_pages) in SHARERS.items():
        owner = User.objects.filter(username=username, is_active=True).first()
        if owner is None:
            continue
        picks: list[Asset | LandingPage] = rng.sample(assets, min(n_assets, len(assets)))
        picks += rng.sample(pages, min(n_pages, len(pages)))
        for target in picks:
            link = shares.share_link_create(
                owner=owner,
                asset=target if isinstance(target, Asset) else None,
                landing_page=target if isinstance(target, LandingPage) else None,
                note=rng.choice(NOTES),
                acting_user=owner,
            )
            ShareLink.objects.dangerously_unscoped().filter(pk=link.pk).update(
                created_at=timezone.now() - timedelta(days=DAYS + 1)
            )
            made.append(link)
    return made


def _views(links: list[ShareLink], people: list[int], rng: random.Random, scale: int) -> list[int]:
    now = timezone.now()
    rows = []
    for link in links:
        for _n in range(rng.randint(2, 7) * scale):
            known = bool(people) and rng.random() < 0.45
            opened = now - timedelta(days=rng.uniform(0.05, DAYS))
            # Most readers glance; some read properly (seed 003: who read for how long).
            seconds = int(
                rng.choice((rng.uniform(3, 40), rng.uniform(40, 240), rng.uniform(240, 600)))
            )
            rows.append(
                ShareView(
                    link=link,
                    unit_id=link.unit_id,
                    contact_id=rng.choice(people) if known else None,
                    anonymous_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    beat_key=shares.new_beat_key(),
                    opened_at=opened,
                    last_beat_at=opened + timedelta(seconds=seconds),
                    seconds=seconds,
                    ip=f"{rng.choice(IP_PREFIXES)}{rng.randint(1, 254)}",
                    user_agent=rng.choice(USER_AGENTS),
                    referrer=rng.choice(("", "", "https://weixin.qq.com/")),
                )
            )
    # In time order, so ids (what lists order by) follow the opens.
    rows.sort(key=lambda v: v.opened_at)
    return [v.pk for v in ShareView.objects.dangerously_unscoped().bulk_create(rows)]


def _settle_notifications(links: list[ShareLink]) -> None:
    """Notifications dated when each open happened; all but the newest few read."""
    views = ShareView.objects.dangerously_unscoped().filter(
        link__in=links, notified_at__isnull=False
    )
    opened = {f"share-open:{pk}": at for pk, at in views.values_list("pk", "opened_at")}
    notices = list(Notification.objects.filter(dedupe_key__in=list(opened)))
    for notice in notices:
        notice.created_at = opened[notice.dedupe_key or ""] + timedelta(seconds=20)
    Notification.objects.bulk_update(notices, ["created_at"])
    by_user: dict[int, list[Notification]] = {}
    for notice in sorted(notices, key=lambda n: n.created_at, reverse=True):
        by_user.setdefault(notice.user_id, []).append(notice)
    older = [n.pk for mine in by_user.values() for n in mine[UNREAD_PER_SHARER:]]
    Notification.objects.filter(pk__in=older).update(read_at=timezone.now())


@register_demo(320, "content: share links & WeChat")
def seed_shares(scale: int = 1) -> None:
    rng = random.Random(SEED)  # noqa: S311 - demo data, reproducible on purpose
    with transaction.atomic():
        _accounts()
    unit = BusinessUnit.objects.dangerously_unscoped().filter(code=UNIT).first()
    if unit is None:
        return
    if ShareLink.objects.dangerously_unscoped().filter(owner__username="sales").exists():
        return
    with transaction.atomic():
        links = _links(unit, rng)
        if not links:
            return
        ids = _views(links, _people(unit, rng), rng, scale)
        for start in range(0, len(ids), shares.BATCH_SIZE):
            shares.share_views_process(ids=ids[start : start + shares.BATCH_SIZE])
        _settle_notifications(links)
