"""A contact's timeline: what the person did and what we did to them, newest first.

Keyset-paged on ``("-occurred_at", "-id")``, which the ``activity_timeline`` index
(contact, -occurred_at, -id) serves directly; only activities of units the user may see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.contacts.models import Activity, Contact
from apps.core.models import User
from apps.core.pagination import KeysetPage, keyset_page

ORDERING = ("-occurred_at", "-id")
PAGE_SIZE = 30

# Activity types producers record (collector, forms, email, events, WeChat, sales…).
# An unknown type is shown as it is stored.
ACTIVITY_LABELS: dict[str, Promise] = {
    "page_view": _("Viewed a page"),
    "click": _("Clicked a link"),
    "custom": _("Custom event"),
    "form_submit": _("Submitted a form"),
    "content_view": _("Viewed content"),
    "download": _("Downloaded"),
    "email_sent": _("Email sent"),
    "email_open": _("Opened an email"),
    "email_click": _("Clicked a link in an email"),
    "email_bounce": _("Email bounced"),
    "unsubscribe": _("Unsubscribed"),
    "sms_sent": _("SMS sent"),
    "event_register": _("Registered for an event"),
    "event_attend": _("Attended an event"),
    "event_check_in": _("Checked in at an event"),
    "webinar_watch": _("Watched a webinar"),
    "wechat_follow": _("Followed the WeChat account"),
    "wechat_unfollow": _("Unfollowed the WeChat account"),
    "wechat_message": _("Sent a WeChat message"),
    "wecom_add": _("Added on WeCom"),
    "call": _("Call"),
    "meeting": _("Meeting"),
    "purchase": _("Purchase"),
    "trial_start": _("Started a trial"),
    "share": _("Shared content"),
    "share_open": _("Opened a shared link"),
    "wechat_oauth": _("Signed in with WeChat"),
}

# Properties worth a line on the timeline, in this order, with their labels.
PROPERTY_LABELS: dict[str, Promise] = {
    "title": _("Title"),
    "url": _("Page"),
    "seconds": _("Time spent"),
    "duration_seconds": _("Duration"),
    "form": _("Form"),
    "subject": _("Subject"),
    "event": _("Event"),
    "outcome": _("Outcome"),
    "note": _("Note"),
    "amount": _("Amount"),
    "referrer": _("Referrer"),
}
SECONDS_PROPERTIES = {"seconds", "duration_seconds"}


def activity_label(activity_type: str) -> str:
    label = ACTIVITY_LABELS.get(activity_type)
    return str(label) if label is not None else activity_type


def type_choices() -> list[tuple[str, str]]:
    """The known types, labelled, for the timeline filter."""
    return sorted(((t, str(label)) for t, label in ACTIVITY_LABELS.items()), key=lambda c: c[1])


def _duration(raw: Any) -> str:
    try:
        total = int(float(raw))
    except (TypeError, ValueError):
        return str(raw)
    minutes, seconds = divmod(max(total, 0), 60)
    return f"{minutes}′{seconds:02d}″" if minutes else f"{seconds}″"


def key_properties(properties: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(label, value) pairs worth showing, known properties only, in a stable order."""
    shown = []
    props = properties if isinstance(properties, dict) else {}
    for name, label in PROPERTY_LABELS.items():
        value = props.get(name)
        if value in (None, "", [], {}):
            continue
        text = _duration(value) if name in SECONDS_PROPERTIES else str(value)
        shown.append((str(label), text[:300]))
    return shown


@dataclass
class TimelineEntry:
    activity: Activity
    label: str
    properties: list[tuple[str, str]]


def contact_timeline(
    *,
    user: User,
    contact: Contact,
    types: Iterable[str] | None = None,
    channel_id: int | None = None,
    cursor: str | None = None,
    size: int = PAGE_SIZE,
) -> KeysetPage[Activity]:
    """One page of the contact's activities; InvalidCursor when ``cursor`` is bad."""
    qs = (
        Activity.objects.visible_to(user, "contacts.view")
        .filter(contact=contact)
        .select_related("channel", "campaign")
    )
    wanted = [t for t in (types or []) if t]
    if wanted:
        qs = qs.filter(type__in=wanted)
    if channel_id is not None:
        qs = qs.filter(channel_id=channel_id)
    return keyset_page(qs, ordering=ORDERING, cursor=cursor, size=size)


def timeline_entries(page: KeysetPage[Activity]) -> list[TimelineEntry]:
    return [
        TimelineEntry(
            activity=a, label=activity_label(a.type), properties=key_properties(a.properties)
        )
        for a in page.items
    ]
