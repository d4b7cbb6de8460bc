"""Sending the email and WeCom alerts that ``alerts_send`` queued as ``AlertDelivery`` rows.

``alert_deliveries_send`` runs from the task ``alerts_send`` queues after its transaction
commits and from beat every minute (rows whose dispatch was lost). It is safe to run twice
at once and twice in a row:

- **Claim.** Due pending rows are locked with ``FOR UPDATE SKIP LOCKED`` in a short
  transaction that counts the attempt and moves ``next_attempt_at`` a lease ahead
  (``CLAIM_LEASE``), then commits. A second worker neither waits for nor sees them.
- **Send.** Outside any transaction and row lock: a slow mail server or robot never holds
  a lock. A worker that dies here leaves the row to come due again when the lease ends
  (at least once, never silently lost).
- **Record.** ``sent`` (with ``sent_at``); or back to pending after 1, 5 then 30 minutes;
  ``failed`` with ``last_error`` after ``MAX_ATTEMPTS`` attempts, or at once when nothing
  can ever deliver it (no email address, no robot URL, a deactivated person).

WeCom group robots take ``{"msgtype": "markdown", "markdown": {"content": …}}``; they
answer HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}`` or another ``errcode`` on error, so
an ``errcode`` other than 0 (or an answer that is not that JSON) is a failure.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from apps.core.models import User
from apps.sales.models import AlertChannel, AlertDelivery, AlertSettings

logger = logging.getLogger(__name__)

BATCH_SIZE = 20
# Batches per call at most; beat comes back a minute later for the rest.
MAX_BATCHES = 25
MAX_ATTEMPTS = 4
# Wait after the 1st, 2nd and 3rd failed attempt; the 4th failure gives up.
BACKOFF = (dt.timedelta(minutes=1), dt.timedelta(minutes=5), dt.timedelta(minutes=30))
# A claimed row is invisible to other workers this long (a batch of robots at 5 s each,
# or a slow mail server, fits well inside it).
CLAIM_LEASE = dt.timedelta(minutes=5)
WECOM_TIMEOUT_SECONDS = 5
# Django's SMTP backend waits forever unless EMAIL_TIMEOUT is set; a hung server must not
# hold a worker past the claim lease.
EMAIL_TIMEOUT_SECONDS = 10
# WeCom refuses markdown content over 4096 bytes.
WECOM_MAX_BYTES = 4000
ERROR_MAX = 500
# Where the robot URL may point. The server POSTs to it, so any host would let anyone with
# the alerts page make the server call machines on its own network; only WeCom's official
# robot endpoint is allowed (a private WeCom deployment adds its own prefix in settings).
DEFAULT_WECOM_PREFIXES = ("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?",)


def wecom_prefixes() -> tuple[str, ...]:
    return tuple(getattr(settings, "SALES_WECOM_WEBHOOK_PREFIXES", DEFAULT_WECOM_PREFIXES))


def wecom_url_problem(url: str) -> str:
    """Why ``url`` cannot be a robot webhook (empty string: it can)."""
    if not url:
        return ""
    if len(url) > 500:
        return _("The webhook URL is too long (at most 500 characters).")
    parts = urlsplit(url)
    if any(ch.isspace() for ch in url) or parts.username or parts.password:
        return _("The webhook URL must be a plain address without spaces or passwords.")
    if not url.startswith(wecom_prefixes()):
        return _(
            "Use the WeCom group robot's webhook address: it starts with "
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key="
        )
    return ""


@dataclass(frozen=True)
class Outcome:
    ok: bool
    error: str = ""
    permanent: bool = False  # no retry can help


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A robot answers; it never redirects. Following one could lead anywhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _absolute(url: str) -> str:
    base = str(getattr(settings, "SITE_URL", "") or "").rstrip("/")
    return f"{base}{url}" if url.startswith("/") and base else url


def _email_send(row: AlertDelivery, user: User) -> Outcome:
    if not user.email:
        return Outcome(
            False, _("This person has no email address; add one to their account."), True
        )
    with translation.override(user.language or settings.LANGUAGE_CODE):
        lines = [row.body] if row.body else []
        if row.url:
            lines.append(_("Open in LeadLoop: %(url)s") % {"url": _absolute(row.url)})
        lines.append("")
        lines.append(_("You get this email because of your alert settings in LeadLoop."))
        body = "\n\n".join(lines)
    try:
        timeout = getattr(settings, "EMAIL_TIMEOUT", None) or EMAIL_TIMEOUT_SECONDS
        connection = get_connection(timeout=timeout)
        EmailMessage(subject=row.title, body=body, to=[user.email], connection=connection).send()
    except Exception as exc:  # noqa: BLE001 - SMTP, DNS, TLS…: all retried the same way
        return Outcome(False, f"email: {type(exc).__name__}: {exc}")
    return Outcome(True)


# Titles carry what contacts typed (a name from a public form): markdown in them must stay
# text, or "[点我](http://…)" as a name becomes a link in the sales group. WeCom's markdown
# has no escape character, so the marks become their full-width look-alikes.
_MARKDOWN_MARKS = str.maketrans(
    {
        "[": "［",
        "]": "］",
        "(": "（",
        ")": "）",
        "<": "＜",
        ">": "＞",
        "*": "＊",
        "`": "｀",
        "#": "＃",
        "_": "＿",
    }
)


def markdown_text(text: str) -> str:
    return text.translate(_MARKDOWN_MARKS)


def wecom_markdown(row: AlertDelivery, language: str) -> str:
    with translation.override(language):
        parts = [f"**{markdown_text(row.title)}**"]
        if row.body:
            parts.append("> " + markdown_text(row.body).replace("\n", "\n> "))
        if row.url:
            parts.append(f"[{_('Open in LeadLoop')}]({_absolute(row.url)})")
    content = "\n".join(parts)
    encoded = content.encode("utf-8")
    if len(encoded) > WECOM_MAX_BYTES:
        content = encoded[: WECOM_MAX_BYTES - 3].decode("utf-8", "ignore") + "…"
    return content


def _wecom_send(row: AlertDelivery, user: User, webhook_url: str) -> Outcome:
    if not webhook_url:
        return Outcome(
            False, _("No WeCom robot webhook URL in this person's alert settings."), True
        )
    problem = wecom_url_problem(webhook_url)
    if problem:
        return Outcome(
            False,
            _("The WeCom webhook URL is not allowed: %(problem)s") % {"problem": problem},
            True,
        )
    content = wecom_markdown(row, user.language or settings.LANGUAGE_CODE)
    payload = json.dumps(
        {"msgtype": "markdown", "markdown": {"content": content}}, ensure_ascii=False
    ).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 - the prefix check above allows only https
        webhook_url,
        data=payload,
        headers={"Content-Type": "application/json; charset=utf-8"},
        method="POST",
    )
    try:
        with _opener.open(request, timeout=WECOM_TIMEOUT_SECONDS) as response:
            status = response.status
            raw = response.read(64 * 1024)
    except urllib.error.HTTPError as exc:
        return Outcome(False, f"WeCom: HTTP {exc.code}")
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Outcome(False, f"WeCom: {type(exc).__name__}: {reason}")
    if status != 200:
        return Outcome(False, f"WeCom: HTTP {status}")
    try:
        answer = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return Outcome(False, _("WeCom: the answer is not JSON: %(raw)r") % {"raw": raw[:100]})
    if not isinstance(answer, dict) or answer.get("errcode") != 0:
        code = answer.get("errcode") if isinstance(answer, dict) else None
        message = answer.get("errmsg", "") if isinstance(answer, dict) else ""
        return Outcome(False, f"WeCom: errcode {code}: {message}"[:ERROR_MAX])
    return Outcome(True)


def _claim(now: dt.datetime) -> list[AlertDelivery]:
    with transaction.atomic():
        rows = list(
            AlertDelivery.objects.select_for_update(skip_locked=True)
            .filter(status="pending", next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")[:BATCH_SIZE]
        )
        if rows:
            AlertDelivery.objects.filter(pk__in=[r.pk for r in rows]).update(
                attempts=F("attempts") + 1, next_attempt_at=now + CLAIM_LEASE
            )
    for row in rows:
        row.attempts += 1
    return rows


def _record(row: AlertDelivery, outcome: Outcome, now: dt.datetime) -> str:
    if outcome.ok:
        fields: dict[str, Any] = {"status": "sent", "sent_at": now, "last_error": ""}
    elif outcome.permanent or row.attempts >= MAX_ATTEMPTS:
        fields = {"status": "failed", "last_error": outcome.error[:ERROR_MAX]}
    else:
        wait = BACKOFF[min(row.attempts, len(BACKOFF)) - 1]
        fields = {"next_attempt_at": now + wait, "last_error": outcome.error[:ERROR_MAX]}
    # Only the claim this worker holds: a row another worker re-claimed after the lease
    # (this one was stuck) carries a higher attempt count and is left to that worker.
    AlertDelivery.objects.filter(pk=row.pk, status="pending", attempts=row.attempts).update(
        **fields
    )
    return str(fields.get("status", "pending"))


def alert_deliveries_send(*, now: dt.datetime | None = None) -> int:
    """Send due email and WeCom alerts. Returns how many went out."""
    sent = 0
    for _batch in range(MAX_BATCHES):
        claimed_at = now or timezone.now()
        rows = _claim(claimed_at)
        if not rows:
            break
        user_ids = {r.user_id for r in rows}
        users = {u.pk: u for u in User.objects.filter(pk__in=user_ids)}
        hooks = dict(
            AlertSettings.objects.filter(user_id__in=user_ids).values_list(
                "user_id", "wecom_webhook_url"
            )
        )
        for row in rows:
            user = users.get(row.user_id)
            # last_error is shown on the person's alerts page: in their language.
            language = (user.language if user else "") or settings.LANGUAGE_CODE
            with translation.override(language):
                outcome = _deliver(row, user, hooks.get(row.user_id, ""))
            if not outcome.ok:
                logger.info("alert delivery %s failed: %s", row.pk, outcome.error)
            status = _record(row, outcome, now or timezone.now())
            sent += status == "sent"
        if len(rows) < BATCH_SIZE:
            break
    return sent


def _deliver(row: AlertDelivery, user: User | None, webhook_url: str) -> Outcome:
    if user is None or not user.is_active:
        return Outcome(False, _("The person's account is deactivated."), True)
    if row.channel == AlertChannel.EMAIL:
        return _email_send(row, user)
    if row.channel == AlertChannel.WECOM:
        return _wecom_send(row, user, webhook_url)
    return Outcome(False, f"Unknown channel {row.channel!r}.", True)
