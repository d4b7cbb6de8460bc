""" "A known contact of mine is active now": the sweep beat runs every minute.

It reads the activities of the last few minutes that say a contact is warm right now, for
contacts with an open lead someone works, in **one grouped query**, and sends the alert
kind ``contact_active`` through ``alerts_send`` (so each person's channel choices apply):

- ``share``: opened a share link (activity ``share_open``, written by
  ``apps.content.services.shares``; ``properties.sharer`` is the link's owner). Goes to the
  sharer, and only when the sharer is the lead's sales owner or SDR.
- ``pricing``: viewed a pricing page (``page_view`` whose ``properties.url`` contains
  "pricing" or "价格", also percent-encoded). Goes to the sales owner, or to the SDR while
  the lead has no owner yet.
- ``form``: submitted a form (``form_submit``). Same person as ``pricing``.

Only what the contact did in the lead's own business unit counts: a salesperson of unit A
hears nothing about the contact's visits to unit B.

**Window.** Activities are selected by ``occurred_at`` (the ``(type, occurred_at)`` index;
``recorded_at`` has none, and this table is the largest). The high-water mark is when the
last sweep ran, kept in the cache (``HWM_KEY``); each sweep looks from ``OVERLAP`` before it,
so activities stored a little late (a collector batch, a share view processed by the
worker) are still seen, and never further back than ``MAX_WINDOW`` (the first run, or after
beat was down: older activity is not "now").

**Once.** One alert per (lead, what, person, hour of the activity): a burst of ten pricing
views is one alert saying "10×". The overlap sees activities twice, so every alert first
claims its ``dedupe_key`` with an atomic ``cache.add``; a second sweep, or two at once,
send nothing again (the in-app notice also carries the key, which the database keeps
unique).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.contacts.models import Activity, Contact
from apps.core.models import User
from apps.sales.models import AlertKind, Lead
from apps.sales.services import alerts

HWM_KEY = "sales:contact-active:hwm"
SENT_KEY = "sales:contact-active:sent:"
OVERLAP = dt.timedelta(minutes=5)
MAX_WINDOW = dt.timedelta(minutes=10)
# How long a sent alert's key is remembered: well past the widest window.
SENT_TTL_SECONDS = 3 * 3600
SHARE_TYPE = "share_open"
FORM_TYPE = "form_submit"
PAGE_TYPE = "page_view"
PRICING_WORDS = ("pricing", "价格", "%e4%bb%b7%e6%a0%bc")  # the last: 价格 in a URL

_SQL = f"""
SELECT l.id, l.unit_id,
       CASE WHEN o.is_active THEN l.owner_id END, o.language,
       CASE WHEN s.is_active THEN l.sdr_id END, s.language,
       c.name, c.company_name,
       CASE a.type WHEN %(share)s THEN 'share' WHEN %(form)s THEN 'form' ELSE 'pricing' END
           AS what,
       CASE WHEN a.type = %(share)s THEN a.properties ->> 'sharer' ELSE '' END AS sharer,
       date_trunc('hour', a.occurred_at) AS hour,
       count(*),
       max(a.occurred_at),
       (array_agg(coalesce(a.properties ->> 'title', '') ORDER BY a.occurred_at DESC))[1]
FROM {Activity._meta.db_table} a
JOIN {Lead._meta.db_table} l
  ON l.contact_id = a.contact_id AND l.unit_id = a.unit_id AND l.is_open
JOIN {Contact._meta.db_table} c ON c.id = l.contact_id
LEFT JOIN {User._meta.db_table} o ON o.id = l.owner_id
LEFT JOIN {User._meta.db_table} s ON s.id = l.sdr_id
WHERE a.type IN (%(share)s, %(form)s, %(page)s)
  AND a.occurred_at > %(since)s
  AND a.contact_id IS NOT NULL
  AND (l.owner_id IS NOT NULL OR l.sdr_id IS NOT NULL)
  AND (a.type <> %(page)s OR lower(coalesce(a.properties ->> 'url', '')) LIKE ANY(%(words)s))
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
ORDER BY 11, 1
"""  # noqa: S608 - table names are ours, values are parameters


@dataclass(frozen=True)
class Burst:
    lead_id: int
    unit_id: int
    owner_id: int | None
    owner_language: str | None
    sdr_id: int | None
    sdr_language: str | None
    contact_name: str
    company: str
    what: str  # share / pricing / form
    sharer: str
    hour: dt.datetime
    count: int
    last_at: dt.datetime
    title: str

    def recipient(self) -> tuple[int, str] | None:
        """(user id, language) to alert, or None."""
        if self.what == "share":
            sharer = int(self.sharer) if self.sharer.isdigit() else None
            if sharer is not None and sharer == self.owner_id:
                return sharer, self.owner_language or ""
            if sharer is not None and sharer == self.sdr_id:
                return sharer, self.sdr_language or ""
            return None
        if self.owner_id:
            return self.owner_id, self.owner_language or ""
        if self.sdr_id:
            return self.sdr_id, self.sdr_language or ""
        return None


def bursts_since(since: dt.datetime) -> list[Burst]:
    params: dict[str, Any] = {
        "share": SHARE_TYPE,
        "form": FORM_TYPE,
        "page": PAGE_TYPE,
        "since": since,
        "words": [f"%{w}%" for w in PRICING_WORDS],
    }
    with connection.cursor() as cursor:
        cursor.execute(_SQL, params)
        return [Burst(*row) for row in cursor.fetchall()]


def _text(burst: Burst, language: str) -> tuple[str, str]:
    who = burst.contact_name or _("A contact")
    if burst.company:
        who = (
            f"{who}（{burst.company}）" if language.startswith("zh") else f"{who} ({burst.company})"
        )
    local = timezone.localtime(burst.last_at).strftime("%H:%M")
    if burst.what == "share":
        title = _("%(who)s opened your share link") % {"who": who}
    elif burst.what == "pricing":
        title = _("%(who)s is looking at pricing") % {"who": who}
    else:
        title = _("%(who)s submitted a form") % {"who": who}
    parts = []
    if burst.title:
        parts.append(f"“{burst.title}”")
    if burst.count > 1:
        parts.append(ngettext("%(n)s time", "%(n)s times", burst.count) % {"n": burst.count})
    parts.append(_("last at %(time)s") % {"time": local})
    return title, " · ".join(parts)


@dataclass(frozen=True)
class SweepResult:
    found: int  # (lead, what, hour) groups seen
    sent: int  # alerts handed to alerts_send


def contact_activity_sweep(*, now: dt.datetime | None = None) -> SweepResult:
    now = now or timezone.now()
    floor = now - MAX_WINDOW
    since = floor
    stored = cache.get(HWM_KEY)
    if stored:
        try:
            since = max(dt.datetime.fromisoformat(stored) - OVERLAP, floor)
        except (TypeError, ValueError):
            since = floor
    bursts = bursts_since(since)
    out: list[alerts.AlertIn] = []
    for burst in bursts:
        recipient = burst.recipient()
        if recipient is None:
            continue
        user_id, language = recipient
        key = f"active:{burst.lead_id}:{burst.what}:{user_id}:{burst.hour:%Y%m%d%H}"
        if not cache.add(SENT_KEY + key, 1, timeout=SENT_TTL_SECONDS):
            continue  # an earlier (or parallel) sweep sent it
        with translation.override(language or settings.LANGUAGE_CODE):
            title, body = _text(burst, language or settings.LANGUAGE_CODE)
        out.append(
            alerts.AlertIn(
                user_id=user_id,
                kind=AlertKind.CONTACT_ACTIVE,
                title=title,
                body=body,
                unit_id=burst.unit_id,
                lead_id=burst.lead_id,
                url=alerts.lead_url(burst.lead_id, mobile=user_id == burst.owner_id),
                dedupe_key=key,
                # content already rings the sharer's bell for every known-contact open
                only=("email", "wecom") if burst.what == "share" else None,
            )
        )
    try:
        with transaction.atomic():
            alerts.alerts_send(out)
    except Exception:
        # Nothing was stored: give the keys back so the next sweep sends these alerts.
        cache.delete_many([SENT_KEY + a.dedupe_key for a in out if a.dedupe_key])
        raise
    mark = now.astimezone(dt.UTC).isoformat()
    previous = cache.get(HWM_KEY)
    if not previous or previous < mark:
        cache.set(HWM_KEY, mark, timeout=24 * 3600)
    return SweepResult(found=len(bursts), sent=len(out))
