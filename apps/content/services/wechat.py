"""WeChat entry points without network access: official accounts, the OAuth callback's
identification, and follow/unfollow events.

LeadLoop never calls WeChat here. An OAuth bridge (the unit's own server, or a test
helper) lets WeChat authorise the visitor and then redirects the browser to our callback
with the account's app id, the visitor's openid (and unionid when the account is bound to
an open platform), a timestamp and a signature made with the account's
``callback_secret``:

    signature = hex HMAC-SHA256(callback_secret, canonical JSON of
                {"app_id", "next", "openid", "ts", "unionid"})

where canonical JSON is ``json.dumps(params, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` as UTF-8 and every value is a string (``ts`` is the Unix time in
seconds; empty unionid and next are empty strings), the same recipe the collector uses for
signed identifiers. JSON rather than ``a=1&b=2`` so no value can shift a boundary. A
signature counts for ``CALLBACK_WINDOW`` either side of ``ts``.

Identification is atomic (one transaction: contact resolution by openid scoped to the app
id and unionid, the visitor's anonymous activity attached, one ``wechat_oauth`` activity,
the touch), so the page the visitor lands on next already knows them. A replay of the same
signed URL adds nothing (the activity's dedupe key is the app id, openid and ts).

Follow/unfollow events (from the API) resolve the person the same way and record
``wechat_follow`` / ``wechat_unfollow`` once per (app id, openid, event, time). Following
records WeChat consent given, unfollowing consent withdrawn (newest event wins, so late
deliveries converge).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.contacts.collector.services import anonymous_link, touches_resolve
from apps.contacts.collector.utm import Touch
from apps.contacts.identity_keys import InvalidKey, Key, make_key
from apps.contacts.models import (
    ChannelKind,
    ConsentChannel,
    Contact,
    IdentityKind,
    WeChatAccount,
)
from apps.contacts.services.activities import ActivityIn, activities_record
from apps.contacts.services.consent import consent_record
from apps.contacts.services.resolution import contact_resolve
from apps.contacts.services.touches import TouchIn, contact_touches_apply
from apps.core.audit_actions import register_action
from apps.core.models import BusinessUnit
from apps.core.services import Actor, SystemActor, audit_record

for _action, _label in (
    ("wechat_account.create", gettext_lazy("WeChat official account added")),
    ("wechat_account.update", gettext_lazy("WeChat official account changed")),
    ("wechat_account.rotate_secret", gettext_lazy("WeChat callback secret rotated")),
):
    register_action(_action, _label)

WECHAT = SystemActor("wechat")
SOURCE = "wechat"
NAME_MAX = 100
# An official account's app id: "wx" and 16 letters or digits.
APP_ID = re.compile(r"^wx[0-9A-Za-z]{16}$")
# A signed callback counts this long either side of its timestamp.
CALLBACK_WINDOW = timedelta(minutes=10)
# Follow events from the future are refused beyond this clock skew.
FUTURE_SKEW = timedelta(minutes=5)
EVENTS = ("follow", "unfollow")


# --- Accounts ------------------------------------------------------------------------------


def new_callback_secret() -> str:
    return secrets.token_hex(32)


def _name(value: str) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationError({"name": [_("This field is required.")]})
    if len(text) > NAME_MAX:
        raise ValidationError({"name": [_("At most %(n)d characters, please.") % {"n": NAME_MAX}]})
    return text


def _app_id(value: str) -> str:
    text = (value or "").strip()
    if not APP_ID.match(text):
        raise ValidationError(
            {
                "app_id": [
                    _(
                        "An app id is “wx” followed by 16 letters or digits, as shown in the "
                        "official account's settings (开发 › 基本配置)."
                    )
                ]
            }
        )
    return text


def _audit(account: WeChatAccount) -> dict[str, Any]:
    # Never the secret.
    return {"name": account.name, "app_id": account.app_id, "is_active": account.is_active}


@transaction.atomic
def wechat_account_create(
    *, unit: BusinessUnit, name: str, app_id: str, acting_user: Actor
) -> WeChatAccount:
    """A unit's official account with a fresh callback secret (read it from the returned
    account now: pages and the API show it only once)."""
    account = WeChatAccount(
        unit=unit,
        name=_name(name),
        app_id=_app_id(app_id),
        callback_secret=new_callback_secret(),
    )
    try:
        with transaction.atomic():
            account.save()
    except IntegrityError:
        raise ValidationError(
            {"app_id": [_("This app id is already registered.")]}, code="unique"
        ) from None
    audit_record(
        actor=acting_user,
        action="wechat_account.create",
        obj=account,
        unit=unit,
        after=_audit(account),
    )
    return account


@transaction.atomic
def wechat_account_update(
    *, account: WeChatAccount, name: str, is_active: bool, acting_user: Actor
) -> WeChatAccount:
    """Rename or switch off. The app id never changes: openids are scoped by it."""
    before = _audit(account)
    account.name = _name(name)
    account.is_active = bool(is_active)
    account.save(update_fields=["name", "is_active"])
    audit_record(
        actor=acting_user,
        action="wechat_account.update",
        obj=account,
        unit=account.unit_id,
        before=before,
        after=_audit(account),
    )
    return account


@transaction.atomic
def wechat_account_rotate_secret(*, account: WeChatAccount, acting_user: Actor) -> str:
    """A new callback secret; links signed with the old one stop working at once."""
    account.callback_secret = new_callback_secret()
    account.save(update_fields=["callback_secret"])
    audit_record(
        actor=acting_user,
        action="wechat_account.rotate_secret",
        obj=account,
        unit=account.unit_id,
        after={"app_id": account.app_id},
    )
    return account.callback_secret


# --- Signed callbacks ----------------------------------------------------------------------


def callback_params(
    *, app_id: str, openid: str, unionid: str = "", ts: str | int, next_url: str = ""
) -> dict[str, str]:
    return {
        "app_id": str(app_id),
        "next": str(next_url or ""),
        "openid": str(openid),
        "ts": str(ts),
        "unionid": str(unionid or ""),
    }


def callback_sign(secret: str, params: dict[str, str]) -> str:
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(secret.encode("utf-8"), canonical.encode("utf-8"), hashlib.sha256).hexdigest()


def callback_verify(secret: str, params: dict[str, str], signature: str) -> bool:
    if not secret or not signature:
        return False
    return hmac.compare_digest(callback_sign(secret, params), signature.strip().lower())


def callback_fresh(ts: str, now: datetime | None = None) -> bool:
    """Is ``ts`` (Unix seconds) within the window around now?"""
    try:
        moment = int(ts)
    except (TypeError, ValueError):
        return False
    now = now or timezone.now()
    return abs(now.timestamp() - moment) <= CALLBACK_WINDOW.total_seconds()


def wechat_callback_url(
    account: WeChatAccount,
    openid: str,
    unionid: str = "",
    next: str = "",
    *,
    ts: int | None = None,
) -> str:
    """The path (with query) the OAuth bridge would redirect the browser to, signed with
    the account's secret: for tests, demos and the ``wechat_simulate`` command."""
    moment = int(ts if ts is not None else timezone.now().timestamp())
    params = callback_params(
        app_id=account.app_id, openid=openid, unionid=unionid, ts=moment, next_url=next
    )
    query = {k: v for k, v in params.items() if k != "app_id" and (v or k in ("openid", "ts"))}
    query["sig"] = callback_sign(account.callback_secret, params)
    path = reverse("wechat-oauth-callback", args=[account.app_id])
    return f"{path}?{urlencode(query)}"


# --- Identification ------------------------------------------------------------------------


def _keys(account: WeChatAccount, openid: str, unionid: str) -> list[Key]:
    """The visitor's keys; ValidationError naming the bad one."""
    try:
        keys = [make_key(IdentityKind.WECHAT_OPENID, openid, account.app_id)]
    except InvalidKey as exc:
        raise ValidationError({"openid": [str(exc)]}) from None
    if unionid:
        try:
            keys.append(make_key(IdentityKind.WECHAT_UNIONID, unionid))
        except InvalidKey as exc:
            raise ValidationError({"unionid": [str(exc)]}) from None
    return keys


def _dedupe(kind: str, *parts: str) -> str:
    digest = hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:40]
    return f"{kind}:{digest}"


def _wechat_channel(unit_id: int) -> int | None:
    touch = Touch(kind=ChannelKind.WECHAT)
    return touches_resolve(unit_id, [touch])[touch].channel_id


@transaction.atomic
def wechat_identify(
    *,
    account: WeChatAccount,
    openid: str,
    unionid: str = "",
    anonymous_id: str = "",
    ts: str = "",
    observed_at: datetime | None = None,
    acting_user: Actor = WECHAT,
) -> Contact:
    """The visitor behind a verified OAuth callback: resolve (or create) the contact by
    openid and unionid, attach the browser's earlier anonymous activity, record one
    ``wechat_oauth`` activity and the WeChat touch. Raises ValidationError for a bad
    openid/unionid and ``ErasedPerson`` for someone who asked to be erased."""
    observed_at = observed_at or timezone.now()
    keys = _keys(account, openid, unionid)
    contact = contact_resolve(
        unit=account.unit,
        keys=keys,
        source=SOURCE,
        observed_at=observed_at,
        acting_user=acting_user,
    ).contact
    if anonymous_id:
        anonymous_link(contact=contact, anonymous_id=anonymous_id, acting_user=acting_user)
    channel_id = _wechat_channel(account.unit_id)
    activities_record(
        [
            ActivityIn(
                unit_id=account.unit_id,
                type="wechat_oauth",
                occurred_at=observed_at,
                contact_id=contact.pk,
                anonymous_id=anonymous_id,
                channel_id=channel_id,
                object_type="wechat_account",
                object_id=account.app_id,
                properties={"app_id": account.app_id},
                dedupe_key=_dedupe(
                    "wx-oauth", account.app_id, keys[0].value, str(ts or observed_at)
                ),
            )
        ]
    )
    contact_touches_apply([TouchIn(contact.pk, observed_at, channel_id)])
    return contact


@dataclass(frozen=True)
class FollowResult:
    contact: Contact
    created: bool  # False: this event was recorded before (a repeat delivery)


@transaction.atomic
def wechat_follow_record(
    *,
    account: WeChatAccount,
    openid: str,
    unionid: str = "",
    event: str,
    occurred_at: datetime,
    acting_user: Actor = WECHAT,
) -> FollowResult:
    """A follow or unfollow of the account, recorded once per (app id, openid, event,
    time). Follow records WeChat consent given, unfollow consent withdrawn."""
    if event not in EVENTS:
        raise ValidationError({"event": [_("Use “follow” or “unfollow”.")]})
    if timezone.is_naive(occurred_at):
        raise ValidationError(
            {"occurred_at": [_("Give a time zone, e.g. 2026-11-30T09:15:00+08:00.")]}
        )
    if occurred_at > timezone.now() + FUTURE_SKEW:
        raise ValidationError({"occurred_at": [_("This time is in the future.")]})
    keys = _keys(account, openid, unionid)
    contact = contact_resolve(
        unit=account.unit,
        keys=keys,
        source=SOURCE,
        observed_at=occurred_at,
        acting_user=acting_user,
    ).contact
    channel_id = _wechat_channel(account.unit_id)
    created = activities_record(
        [
            ActivityIn(
                unit_id=account.unit_id,
                type=f"wechat_{event}",
                occurred_at=occurred_at,
                contact_id=contact.pk,
                channel_id=channel_id,
                object_type="wechat_account",
                object_id=account.app_id,
                properties={"app_id": account.app_id},
                dedupe_key=_dedupe(
                    f"wx-{event}", account.app_id, keys[0].value, f"{occurred_at.timestamp():.6f}"
                ),
            )
        ]
    )
    if created:
        consent_record(
            contact=contact,
            unit=account.unit,
            channel=ConsentChannel.WECHAT,
            granted=event == "follow",
            source=f"wechat_{event}",
            proof={"app_id": account.app_id, "event": event},
            occurred_at=occurred_at,
        )
        if event == "follow":
            contact_touches_apply([TouchIn(contact.pk, occurred_at, channel_id)])
    return FollowResult(contact, bool(created))
