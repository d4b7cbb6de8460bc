"""A person's own alert choices: per kind, in the app / by email / by WeCom robot.

Only the signed-in person's own row is ever written (the pages pass ``request.user``; no
user id travels in the form). Bad input is refused whole: nothing is stored.
"""

from __future__ import annotations

import datetime as dt

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.core.audit_actions import register_action
from apps.core.models import Notification, User
from apps.core.services import audit_record
from apps.core.tasks import enqueue_on_commit
from apps.sales.models import (
    AlertChannel,
    AlertDelivery,
    AlertKind,
    AlertSettings,
    default_alert_channels,
)
from apps.sales.services.alert_delivery import wecom_url_problem

register_action("alert_settings.change", gettext_lazy("Alert settings changed"))

TEST_KIND = "alert_test"
# One test per person this often: the button must not become a way to spam a robot.
TEST_THROTTLE_SECONDS = 30


def alert_settings_of(*, user: User) -> tuple[dict[str, list[str]], str]:
    row = AlertSettings.objects.filter(user_id=user.pk).first()
    if row is None:
        return default_alert_channels(), ""
    channels = {**default_alert_channels(), **(row.channels or {})}
    return channels, row.wecom_webhook_url


@transaction.atomic
def alert_settings_save(
    *, user: User, channels: dict[str, list[str]], wecom_webhook_url: str, acting_user: User
) -> AlertSettings:
    """Store ``user``'s choices. Raises ValidationError (field → messages) and stores nothing
    when a channel or kind is unknown, the webhook URL is not WeCom's, WeCom is ticked with
    no URL, or email is ticked and the account has no address."""
    if acting_user.pk != user.pk:
        raise ValidationError(_("You can only change your own alert settings."))
    url = (wecom_webhook_url or "").strip()
    errors: dict[str, list[str]] = {}
    clean: dict[str, list[str]] = {}
    for kind in AlertKind.values:
        chosen = channels.get(kind, [])
        unknown = [c for c in chosen if c not in AlertChannel.values]
        if unknown:
            errors.setdefault("channels", []).append(
                _("Unknown channel: %(name)s.") % {"name": ", ".join(unknown)}
            )
        clean[kind] = [c for c in AlertChannel.values if c in chosen]
    extra = sorted(set(channels) - set(AlertKind.values))
    if extra:
        errors.setdefault("channels", []).append(
            _("Unknown alert: %(name)s.") % {"name": ", ".join(extra)}
        )
    problem = wecom_url_problem(url)
    if problem:
        errors.setdefault("wecom_webhook_url", []).append(problem)
    elif not url and any(AlertChannel.WECOM in c for c in clean.values()):
        errors.setdefault("wecom_webhook_url", []).append(
            _("WeCom is ticked but there is no robot webhook URL: add it, or untick WeCom.")
        )
    if not user.email and any(AlertChannel.EMAIL in c for c in clean.values()):
        errors.setdefault("channels", []).append(
            _("Your account has no email address, so email alerts cannot reach you.")
        )
    if errors:
        raise ValidationError(errors)
    old = AlertSettings.objects.filter(user_id=user.pk).first()
    before = {"channels": old.channels, "wecom": bool(old.wecom_webhook_url)} if old else None
    row, _created = AlertSettings.objects.update_or_create(
        user=user, defaults={"channels": clean, "wecom_webhook_url": url}
    )
    audit_record(
        actor=acting_user,
        action="alert_settings.change",
        obj=row,
        before=before,
        # The webhook key is a secret: the log says only whether there is one.
        after={"channels": clean, "wecom": bool(url)},
    )
    return row


def alert_test_send(*, user: User, now: dt.datetime | None = None) -> list[str]:
    """A test alert over every channel ``user`` uses for some kind. Returns the channels
    (empty when throttled)."""
    if not cache.add(f"sales:alert-test:{user.pk}", 1, timeout=TEST_THROTTLE_SECONDS):
        return []
    now = now or timezone.now()
    kinds, url = alert_settings_of(user=user)
    used = {c for chosen in kinds.values() for c in chosen}
    title = _("Test alert from LeadLoop")
    body = _("If you read this, alerts reach you here.")
    channels = [AlertChannel.IN_APP.value]
    with transaction.atomic():
        Notification.objects.create(
            user=user, kind=TEST_KIND, title=title, body=body, created_at=now
        )
        rows = []
        if AlertChannel.EMAIL in used and user.email:
            rows.append(AlertChannel.EMAIL.value)
        if AlertChannel.WECOM in used and url:
            rows.append(AlertChannel.WECOM.value)
        AlertDelivery.objects.bulk_create(
            [
                AlertDelivery(user=user, channel=c, kind=TEST_KIND, title=title, body=body)
                for c in rows
            ]
        )
        if rows:
            from apps.sales.tasks import alert_deliveries_send

            enqueue_on_commit(alert_deliveries_send)
    return channels + rows


def recent_deliveries(*, user: User, limit: int = 5) -> list[AlertDelivery]:
    """The person's last email / WeCom sends, to see whether their channel works."""
    return list(AlertDelivery.objects.filter(user_id=user.pk).order_by("-id")[:limit])
