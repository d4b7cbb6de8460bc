"""Reads for share-link pages and the API: links a user may see, their viewers and totals,
and the content a user may share.

A user sees their own links; whoever holds ``content.edit`` in a unit (marketers,
administrators) sees every link of that unit. Bots' opens are stored but never listed
or counted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.contacts.models import Campaign
from apps.content.models import Asset, LandingPage, PageStatus, ShareLink, ShareView
from apps.core.models import User
from apps.core.scoping import visible_unit_ids

SHARE = "content.share"
EDIT = "content.edit"
VIEW = "content.view"
# How many items a picker offers (newest first); the rest are found by searching the lists.
CHOICES_LIMIT = 200


def may_use_shares(*, user: User) -> bool:
    return bool(user.is_superuser or visible_unit_ids(user, SHARE) or visible_unit_ids(user, EDIT))


def may_see_everyones(*, user: User) -> bool:
    """Marketers and administrators see (and filter by) their units' people's links."""
    return bool(user.is_superuser or visible_unit_ids(user, EDIT))


def share_links_visible(*, user: User) -> QuerySet[ShareLink]:
    qs = ShareLink.objects.visible_to(user, VIEW)
    if user.is_superuser:
        return qs
    return qs.filter(Q(owner_id=user.pk) | Q(unit_id__in=visible_unit_ids(user, EDIT)))


def share_links_list(
    *,
    user: User,
    owner_id: int | None = None,
    everyone: bool = False,
    unit_ids: set[int] | None = None,
) -> QuerySet[ShareLink]:
    """The user's own links, or (``everyone``) all they may see, or one person's."""
    qs = share_links_visible(user=user).select_related("asset", "landing_page", "owner", "campaign")
    if owner_id is not None:
        qs = qs.filter(owner_id=owner_id)
    elif not everyone:
        qs = qs.filter(owner_id=user.pk)
    if unit_ids is not None:
        qs = qs.filter(unit_id__in=unit_ids)
    return qs


def share_link_get(*, user: User, pk: int) -> ShareLink | None:
    return (
        share_links_visible(user=user)
        .select_related("asset", "landing_page", "owner", "campaign", "unit")
        .filter(pk=pk)
        .first()
    )


@dataclass(frozen=True)
class LinkTotals:
    opens: int = 0
    viewers: int = 0
    contacts: int = 0
    seconds: int = 0
    last_opened_at: datetime | None = None


def _counted(user: User) -> QuerySet[ShareView]:
    return ShareView.objects.visible_to(user, VIEW).filter(is_bot=False)


_TOTALS = {
    "opens": Count("id"),
    # A person is the contact when known, else the browser's anonymous id.
    "viewers": Count("contact_id", distinct=True)
    + Count("anonymous_id", distinct=True, filter=Q(contact__isnull=True)),
    "contacts": Count("contact_id", distinct=True),
    "seconds": Coalesce(Sum("seconds"), 0),
    "last_opened_at": Max("opened_at"),
}


def share_link_totals(*, user: User, link: ShareLink) -> LinkTotals:
    row = _counted(user).filter(link=link).aggregate(**_TOTALS)
    return LinkTotals(**row)


def share_links_totals(*, user: User, links: list[ShareLink]) -> dict[int, LinkTotals]:
    """Totals of a page of links: one grouped query."""
    if not links:
        return {}
    rows = (
        _counted(user)
        .filter(link_id__in=[link.pk for link in links])
        .values("link_id")
        .annotate(**_TOTALS)
        .order_by()
    )
    return {row.pop("link_id"): LinkTotals(**row) for row in rows}


def share_views_list(*, user: User, link: ShareLink) -> QuerySet[ShareView]:
    """Who opened the link, newest first (keyset on ``("-opened_at", "-id")``)."""
    return _counted(user).filter(link=link).select_related("contact")


def owner_choices(*, user: User) -> list[User]:
    """People whose links the user may filter by: owners of links in units they edit."""
    if user.is_superuser:
        owners = ShareLink.objects.visible_to(user, EDIT).values("owner_id")
    else:
        owners = (
            ShareLink.objects.visible_to(user, VIEW)
            .filter(unit_id__in=visible_unit_ids(user, EDIT))
            .values("owner_id")
        )
    return list(
        User.objects.visible_to(user).filter(pk__in=owners).order_by("display_name", "username")
    )


def shareable_assets(*, user: User, unit_ids: set[int] | None = None) -> QuerySet[Asset]:
    qs = Asset.objects.visible_to(user, SHARE).filter(is_active=True)
    return qs.filter(unit_id__in=unit_ids) if unit_ids is not None else qs


def shareable_pages(*, user: User, unit_ids: set[int] | None = None) -> QuerySet[LandingPage]:
    qs = LandingPage.objects.visible_to(user, SHARE).filter(status=PageStatus.PUBLISHED)
    return qs.filter(unit_id__in=unit_ids) if unit_ids is not None else qs


def campaign_choices(*, user: User, unit_ids: set[int] | None = None) -> list[Campaign]:
    qs = Campaign.objects.visible_to(user, SHARE)
    if unit_ids is not None:
        qs = qs.filter(unit_id__in=unit_ids)
    return list(qs.select_related("unit").order_by("-id")[:CHOICES_LIMIT])


def my_links_for(
    *, user: User, asset_ids: Sequence[int] = (), page_ids: Sequence[int] = ()
) -> dict[tuple[str, int], ShareLink]:
    """The user's newest active link to each of these items (what "get my link" returns)."""
    if not asset_ids and not page_ids:
        return {}
    qs = (
        ShareLink.objects.visible_to(user, VIEW)
        .filter(owner_id=user.pk, is_active=True)
        .filter(Q(asset_id__in=list(asset_ids)) | Q(landing_page_id__in=list(page_ids)))
        .order_by("id")
    )
    found: dict[tuple[str, int], ShareLink] = {}
    for link in qs:
        key = ("asset", link.asset_id) if link.asset_id else ("page", link.landing_page_id or 0)
        found[key] = link  # the newest wins, as in share_link_for
    return found


# --- How a view is shown -------------------------------------------------------------------


def duration_label(seconds: int | None) -> str:
    """``1 min 35 s``, ``2 h 5 min``, ``40 s``."""
    total = max(int(seconds or 0), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return _("%(h)d h %(m)d min") % {"h": hours, "m": minutes}
    if minutes:
        return _("%(m)d min %(s)d s") % {"m": minutes, "s": secs}
    return _("%(s)d s") % {"s": secs}


_BROWSERS: tuple[tuple[str, str], ...] = (
    (r"wxwork/", "WeCom"),
    (r"MicroMessenger/", "WeChat"),
    (r"DingTalk", "DingTalk"),
    (r"\bQQ/", "QQ"),
    (r"Lark/|Feishu", "Feishu"),
    (r"Edg(e|A|iOS)?/", "Edge"),
    (r"OPR/|Opera", "Opera"),
    (r"QQBrowser/", "QQ Browser"),
    (r"UCBrowser/", "UC Browser"),
    (r"HuaweiBrowser/", "Huawei Browser"),
    (r"MiuiBrowser/", "Xiaomi Browser"),
    (r"SamsungBrowser/", "Samsung Internet"),
    (r"Firefox/|FxiOS/", "Firefox"),
    (r"Chrome/|CriOS/|Chromium/", "Chrome"),
    (r"Safari/", "Safari"),
)
_SYSTEMS: tuple[tuple[str, str], ...] = (
    (r"iPhone", "iPhone"),
    (r"iPad", "iPad"),
    (r"HarmonyOS|OpenHarmony", "HarmonyOS"),
    (r"Android", "Android"),
    (r"Windows", "Windows"),
    (r"Mac OS X|Macintosh", "Mac"),
    (r"CrOS", "ChromeOS"),
    (r"Linux", "Linux"),
)


def device_label(user_agent: str) -> str:
    """A simple family for a user agent: ``WeChat · iPhone``, ``Chrome · Windows``."""
    ua = user_agent or ""
    browser = next((name for pattern, name in _BROWSERS if re.search(pattern, ua)), "")
    system = next((name for pattern, name in _SYSTEMS if re.search(pattern, ua)), "")
    label = " · ".join(part for part in (browser, system) if part)
    return label or (_("Unknown device") if ua else "")


def my_recent_opens(*, user: User, days: int = 7) -> LinkTotals:
    """Opens of the user's own links in the last ``days`` (for the home card)."""
    since = timezone.now() - timedelta(days=days)
    row = _counted(user).filter(link__owner_id=user.pk, opened_at__gte=since).aggregate(**_TOTALS)
    return LinkTotals(**row)
