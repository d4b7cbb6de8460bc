"""Personal share links (全员营销, seeds 003 and 004): writes, and turning opens into
activities and notifications.

Anyone who talks to customers (``content.share``) makes their own tracked link to an
active asset or a published landing page of a unit they share in. The public page
``/s/<token>/`` stores a ``ShareView`` first (who, when, from where) and heartbeats from
the page raise its ``seconds``; a worker then processes each view once:

* a view whose visitor we know (the ``ll_aid`` cookie's anonymous id belongs to a
  contact, now or by the time the worker looks) becomes one ``share_open`` Activity on the
  contact's timeline, a touch (the link's campaign, else the unit's "sales self-sourced"
  channel), and a notification to the sharer;
* an anonymous view becomes an anonymous ``share_open`` Activity (attached to the person
  later if the visitor identifies, like any anonymous activity) and nothing else.

Anonymous views wait ``ANONYMOUS_GRACE`` before they are processed, so a visitor who
fills the gate form on the shared page is known by then and the sharer still hears of it.
Processing is idempotent: rows are claimed with ``FOR UPDATE SKIP LOCKED`` while
``processed_at`` is empty, activities and notifications carry dedupe keys.

Read time lives on the view row (``seconds``); the viewer list reads it from there.
"""

from __future__ import annotations

import hmac
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.contacts.collector.services import touches_resolve
from apps.contacts.collector.utm import Touch
from apps.contacts.identity_keys import Key
from apps.contacts.models import Campaign, ChannelKind, Contact, IdentityKind
from apps.contacts.services import resolution
from apps.contacts.services.activities import ActivityIn, activities_record
from apps.contacts.services.resolution import contact_unit_ensure
from apps.contacts.services.touches import TouchIn, contact_touches_apply
from apps.content.models import Asset, LandingPage, PageStatus, ShareLink, ShareView
from apps.core.audit_actions import register_action
from apps.core.models import BusinessUnit, User
from apps.core.scoping import visible_unit_ids
from apps.core.selectors import landing_surface
from apps.core.services import Actor, audit_record, notification_send

for _action, _label in (
    ("share_link.create", gettext_lazy("Share link created")),
    ("share_link.deactivate", gettext_lazy("Share link switched off")),
):
    register_action(_action, _label)

SHARE = "content.share"
EDIT = "content.edit"
NOTE_MAX = 200
# Views claimed per transaction by the worker.
BATCH_SIZE = 200
# How long an anonymous view waits before it is processed (see the module docstring).
ANONYMOUS_GRACE = timedelta(minutes=5)
# A heartbeat may claim at most the time since the page was opened, plus this slack for
# clocks and the request's own travel.
BEAT_SLACK_SECONDS = 5
# Nobody reads one page for longer; a larger claim is capped here too.
MAX_READ_SECONDS = 6 * 3600
ACTIVITY_TYPE = "share_open"
NOTIFICATION_KIND = "share_opened"

# Which surface a sharer reads their viewer list in.
DETAIL_URL_NAMES = {
    "console": "content:share-detail",
    "sdr": "content:sdr-share-detail",
    "mobile": "content:m-share-detail",
}


# --- Links ---------------------------------------------------------------------------------


def _may(user: User, permission: str, unit_id: int) -> bool:
    return bool(user.is_superuser and user.is_active) or unit_id in visible_unit_ids(
        user, permission
    )


def target_is_shareable(target: Asset | LandingPage) -> bool:
    if isinstance(target, Asset):
        return target.is_active
    return target.status == PageStatus.PUBLISHED


def _target(asset: Asset | None, landing_page: LandingPage | None) -> Asset | LandingPage:
    if (asset is None) == (landing_page is None):
        raise ValidationError(
            {"target": [_("Pick one asset or one landing page to share.")]}, code="target"
        )
    target: Asset | LandingPage = asset if asset is not None else landing_page  # type: ignore[assignment]
    if not target_is_shareable(target):
        field = "asset" if asset is not None else "landing_page"
        message = (
            _("This asset is switched off; it cannot be shared.")
            if asset is not None
            else _("This landing page is not published; publish it before sharing it.")
        )
        raise ValidationError({field: [message]}, code="not_shareable")
    return target


def _audit(link: ShareLink) -> dict[str, Any]:
    return {
        "owner": link.owner_id,
        "asset": link.asset_id,
        "landing_page": link.landing_page_id,
        "token": link.token,
        "note": link.note,
        "campaign": link.campaign_id,
        "is_active": link.is_active,
    }


def _check_owner(owner: User, unit_id: int, acting_user: Actor) -> None:
    if not owner.is_active or not _may(owner, SHARE, unit_id):
        raise ValidationError(
            {"owner": [_("%(user)s may not share content of this unit.") % {"user": owner}]},
            code="owner",
        )
    # Making a link in somebody else's name needs the right to run the unit's content.
    someone_else = isinstance(acting_user, User) and acting_user.pk != owner.pk
    if someone_else and not _may(acting_user, EDIT, unit_id):  # type: ignore[arg-type]
        raise ValidationError(
            {"owner": [_("You may only make share links in your own name.")]}, code="owner"
        )


def _campaign(campaign: Campaign | None, unit_id: int) -> Campaign | None:
    if campaign is not None and campaign.unit_id != unit_id:
        raise ValidationError(
            {"campaign": [_("Pick a campaign of the same business unit as the content.")]},
            code="campaign",
        )
    return campaign


def _note(note: str) -> str:
    text = (note or "").strip()
    if len(text) > NOTE_MAX:
        raise ValidationError(
            {"note": [_("At most %(n)d characters, please.") % {"n": NOTE_MAX}]}, code="note"
        )
    return text


@transaction.atomic
def share_link_create(
    *,
    owner: User,
    asset: Asset | None = None,
    landing_page: LandingPage | None = None,
    note: str = "",
    campaign: Campaign | None = None,
    acting_user: Actor,
) -> ShareLink:
    """A new personal link of ``owner`` to an active asset or a published landing page."""
    target = _target(asset, landing_page)
    _check_owner(owner, target.unit_id, acting_user)
    link = ShareLink(
        unit_id=target.unit_id,
        owner=owner,
        asset=asset,
        landing_page=landing_page,
        note=_note(note),
        campaign=_campaign(campaign, target.unit_id),
    )
    link.save()
    audit_record(
        actor=acting_user,
        action="share_link.create",
        obj=link,
        unit=link.unit_id,
        after=_audit(link),
    )
    return link


@transaction.atomic
def share_link_for(
    *,
    owner: User,
    asset: Asset | None = None,
    landing_page: LandingPage | None = None,
    acting_user: Actor,
) -> tuple[ShareLink, bool]:
    """The owner's link to this content (their newest active one), made on first use: a
    second tap on "get my link" returns the same link. Returns (link, created)."""
    target = _target(asset, landing_page)
    _check_owner(owner, target.unit_id, acting_user)
    # Two taps at once must not make two links: serialise on the owner's row.
    User.objects.select_for_update().filter(pk=owner.pk).first()
    existing = (
        ShareLink.objects.dangerously_unscoped()
        .filter(owner=owner, asset=asset, landing_page=landing_page, is_active=True)
        .order_by("-id")
        .first()
    )
    if existing is not None:
        return existing, False
    return (
        share_link_create(
            owner=owner, asset=asset, landing_page=landing_page, acting_user=acting_user
        ),
        True,
    )


@transaction.atomic
def share_link_deactivate(*, link: ShareLink, acting_user: Actor) -> ShareLink:
    """Switch a link off: its page says the link is no longer available. Views stay."""
    if not link.is_active:
        return link
    before = _audit(link)
    link.is_active = False
    link.save(update_fields=["is_active"])
    audit_record(
        actor=acting_user,
        action="share_link.deactivate",
        obj=link,
        unit=link.unit_id,
        before=before,
        after=_audit(link),
    )
    return link


def share_link_may_manage(*, user: User, link: ShareLink) -> bool:
    """The owner, or whoever runs content in the link's unit."""
    return link.owner_id == user.pk or _may(user, EDIT, link.unit_id)


# --- Opening and reading -------------------------------------------------------------------


def new_beat_key() -> str:
    return secrets.token_urlsafe(16)


def anonymous_owner(unit: BusinessUnit, anonymous_id: str) -> int | None:
    """The contact an anonymous visitor id belongs to in the unit's group, if any."""
    return resolution.anonymous_owner(unit.parent_id or unit.pk, anonymous_id)


def share_view_open(
    *,
    link: ShareLink,
    anonymous_id: str,
    contact_id: int | None,
    ip: str | None,
    user_agent: str,
    referrer: str,
    is_bot: bool,
) -> ShareView:
    """Store one opening (one INSERT). Bots are stored already processed: never counted."""
    now = timezone.now()
    view = ShareView.objects.create(
        link=link,
        unit_id=link.unit_id,
        contact_id=contact_id,
        anonymous_id=anonymous_id[:64],
        beat_key=new_beat_key(),
        opened_at=now,
        ip=ip,
        user_agent=user_agent[:400],
        referrer=referrer[:2000],
        is_bot=is_bot,
        processed_at=now if is_bot else None,
    )
    if not is_bot:
        view_id, known = view.pk, contact_id is not None
        transaction.on_commit(lambda: share_view_dispatch(view_id, known=known))
    return view


def share_view_dispatch(view_id: int, *, known: bool) -> None:
    """Queue processing of one view; a broker outage is logged and left to beat's sweep
    (the view is stored, nothing is lost, and the visitor's page must not wait)."""
    import logging

    from apps.content.tasks.shares import share_views_process

    countdown = 0 if known else int(ANONYMOUS_GRACE.total_seconds()) + 1
    try:
        share_views_process.apply_async(args=[[view_id]], countdown=countdown, retry=False)
    except Exception:  # noqa: BLE001 - any broker failure; the sweep is the retry
        logging.getLogger(__name__).warning("shares: could not queue view %s", view_id)


class BeatRejected(ValueError):
    """The heartbeat does not belong to a view of this link (wrong id or key)."""


def share_view_beat(
    *, token: str, view_id: int, beat_key: str, seconds: int, now: datetime | None = None
) -> int:
    """Raise a view's read time to ``seconds``: never lower, never more than the time since
    the page was opened (plus a little slack). One conditional UPDATE, so concurrent beats
    cannot lower it. Returns the seconds now stored."""
    now = now or timezone.now()
    view = (
        ShareView.objects.dangerously_unscoped()
        .filter(pk=view_id, link__token=token)
        .only("pk", "beat_key", "opened_at", "seconds")
        .first()
    )
    if view is None or not hmac.compare_digest(view.beat_key, beat_key):
        raise BeatRejected("no such view")
    elapsed = int((now - view.opened_at).total_seconds()) + BEAT_SLACK_SECONDS
    wanted = max(0, min(seconds, elapsed, MAX_READ_SECONDS))
    updated = (
        ShareView.objects.dangerously_unscoped()
        .filter(pk=view.pk, seconds__lt=wanted)
        .update(seconds=wanted, last_beat_at=now)
    )
    return wanted if updated else max(view.seconds, wanted)


# --- Processing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessResult:
    processed: int
    notified: int
    more: bool


def _claim(ids: list[int] | None, now: datetime) -> list[ShareView]:
    ready = Q(contact__isnull=False) | Q(opened_at__lte=now - ANONYMOUS_GRACE)
    qs = (
        ShareView.objects.dangerously_unscoped()
        .filter(processed_at__isnull=True)
        .filter(ready)
        .select_related("link", "link__campaign", "link__asset", "link__landing_page", "unit")
        .order_by("id")
        .select_for_update(skip_locked=True, of=("self",))
    )
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return list(qs[:BATCH_SIZE])


def _owners_now(views: list[ShareView]) -> dict[tuple[int, str], int]:
    """(group id, anonymous id) → contact id, one query per group."""
    wanted: dict[int, set[str]] = defaultdict(set)
    for v in views:
        if v.anonymous_id:
            wanted[v.unit.parent_id or v.unit.pk].add(v.anonymous_id)
    owners: dict[tuple[int, str], int] = {}
    for group_id, values in wanted.items():
        keys = [Key(IdentityKind.ANONYMOUS, "", value) for value in sorted(values)]
        for key, contact_id in resolution.identity_owners(group_id, keys).items():
            owners[(group_id, key.value)] = contact_id
    return owners


def link_title(link: ShareLink) -> str:
    target = link.asset or link.landing_page
    return target.title if target is not None else ""


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def share_open_title(*, contact: Contact, link: ShareLink) -> str:
    """What the sharer's notification says, in the active language."""
    who = contact.name or _("Contact #%(id)d") % {"id": contact.pk}
    title = _short(link_title(link))
    if contact.company_name:
        return _("%(who)s (%(company)s) opened your link “%(title)s”") % {
            "who": who,
            "company": contact.company_name,
            "title": title,
        }
    return _("%(who)s opened your link “%(title)s”") % {"who": who, "title": title}


def share_link_url(link: ShareLink, owner: User) -> str:
    """The link's viewer list in the surface its owner works in."""
    surface = landing_surface(user=owner) or "console"
    return reverse(DETAIL_URL_NAMES.get(surface, DETAIL_URL_NAMES["console"]), args=[link.pk])


def _notify(views: list[ShareView], contacts: dict[int, Contact]) -> int:
    owner_ids = {v.link.owner_id for v in views}
    owners = {u.pk: u for u in User.objects.filter(pk__in=owner_ids, is_active=True)}
    sent = 0
    for v in views:
        owner = owners.get(v.link.owner_id)
        contact = contacts.get(v.contact_id or 0)
        if owner is None or contact is None:
            continue
        with translation.override(owner.language or settings.LANGUAGE_CODE):
            title = share_open_title(contact=contact, link=v.link)
        notice = notification_send(
            user_id=owner.pk,
            kind=NOTIFICATION_KIND,
            title=title,
            url=share_link_url(v.link, owner),
            unit_id=v.unit_id,
            dedupe_key=f"share-open:{v.pk}",
        )
        sent += notice is not None
    return sent


@transaction.atomic
def share_views_process(
    *, ids: list[int] | None = None, now: datetime | None = None
) -> ProcessResult:
    """Process unprocessed views (these ``ids``, or the oldest ones): activities, touches,
    notifications, then ``processed_at``. Safe to run twice and from several workers."""
    now = now or timezone.now()
    views = _claim(ids, now)
    if not views:
        return ProcessResult(0, 0, False)
    owners = _owners_now(views)
    for v in views:
        found = owners.get((v.unit.parent_id or v.unit.pk, v.anonymous_id))
        # The identity says who the visitor is now (it follows merges); else what the page knew.
        v.contact_id = found or v.contact_id
    contact_ids = {v.contact_id for v in views if v.contact_id}
    contacts = {
        c.pk: c
        for c in Contact.objects.dangerously_unscoped()
        .filter(pk__in=contact_ids)
        .only("pk", "name", "company_name", "status")
    }
    # Each unit's "sales self-sourced" channel: what brought a person who opens a link.
    sales_channel: dict[int, int | None] = {}
    for unit_id in {v.unit_id for v in views}:
        touch = Touch(kind=ChannelKind.SALES)
        sales_channel[unit_id] = touches_resolve(unit_id, [touch])[touch].channel_id
    rows: list[ActivityIn] = []
    touches: list[TouchIn] = []
    known_by_unit: dict[int, list[int]] = defaultdict(list)
    for v in views:
        campaign = v.link.campaign
        channel_id = (campaign.channel_id if campaign else None) or sales_channel[v.unit_id]
        properties: dict[str, Any] = {
            "title": link_title(v.link),
            "share_link": v.link_id,
            "sharer": v.link.owner_id,
        }
        if v.seconds:
            properties["seconds"] = v.seconds
        rows.append(
            ActivityIn(
                unit_id=v.unit_id,
                type=ACTIVITY_TYPE,
                occurred_at=v.opened_at,
                contact_id=v.contact_id,
                anonymous_id=v.anonymous_id,
                channel_id=channel_id,
                campaign_id=v.link.campaign_id,
                object_type="share_link",
                object_id=str(v.link_id),
                properties=properties,
                dedupe_key=f"share:{v.pk}",
            )
        )
        if v.contact_id:
            known_by_unit[v.unit_id].append(v.contact_id)
            touches.append(TouchIn(v.contact_id, v.opened_at, channel_id, v.link.campaign_id))
    for unit_id, ids_known in known_by_unit.items():
        contact_unit_ensure(ids_known, unit_id, "share_link")
    activities_record(rows)
    contact_touches_apply(touches)
    known = [v for v in views if v.contact_id and v.notified_at is None]
    notified = _notify(known, contacts)
    for v in views:
        v.processed_at = now
        if v.contact_id and v.notified_at is None:
            v.notified_at = now
    ShareView.objects.dangerously_unscoped().bulk_update(
        views, ["contact", "processed_at", "notified_at"]
    )
    return ProcessResult(len(views), notified, len(views) == BATCH_SIZE)
