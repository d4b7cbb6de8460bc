"""Reading a collector body and checking each event, with a reason for whatever is refused.

The endpoint calls ``body_parse`` (strict UTF-8, JSON, the overall shape) and answers 400
when it fails, so a broken client learns at once and nothing is stored. The worker parses
again (the stored bytes are the source of truth) and checks every event with
``events_validate``: a bad event is refused with its index and reason while the others in
the batch still land.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils.translation import gettext as _

from apps.contacts.collector.utm import utm_of

# Bodies above this are refused with 413 before they are read into memory twice.
MAX_BODY_BYTES = 256 * 1024
# One event's properties, JSON-encoded: enough for a form's answers, not for a file.
MAX_PROPERTIES_BYTES = 8 * 1024
MAX_URL_LENGTH = 2000
MAX_TITLE_LENGTH = 300
MAX_NAME_LENGTH = 100
MAX_SECONDS = 24 * 3600
# Events older than this when the batch arrived are refused (a replay, or a broken clock);
# a tracker that was offline longer has lost them anyway.
MAX_AGE = timedelta(days=7)
# Clocks drift; a little future is tolerated, more is a broken clock.
MAX_FUTURE = timedelta(minutes=5)

EVENT_TYPES = frozenset(
    {
        "page_view",
        "click",
        "content_view",
        "custom",
        "form_submit",
        "download",
        "share",
        "identify",
    }
)
_TOKEN = re.compile(r"[A-Za-z0-9._:\-]{1,64}")
# The only way a NUL character or a lone surrogate gets into a decoded body: a ``\u0000``
# or ``\uD800``–``\uDFFF`` escape. Raw ones cannot (the JSON parser refuses control
# characters in strings, strict UTF-8 decoding refuses encoded surrogates).
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


class BodyError(ValueError):
    """The whole body cannot be read; ``str()`` is the reason, fit for the client."""


# One encoder for every size check: ``json.dumps(..., ensure_ascii=False)`` builds a new
# JSONEncoder per call.
_encode = json.JSONEncoder(ensure_ascii=False).encode


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# One decoder for every body (``json.loads`` with an argument builds a new one per call).
_decode = json.JSONDecoder(parse_constant=_reject_constant).decode


def body_parse(raw: bytes) -> dict[str, Any]:
    """The decoded body, or BodyError. Never raises anything else."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(
            _("The body is not valid UTF-8 (byte %(at)s).") % {"at": exc.start}
        ) from exc
    if not text.strip():
        raise BodyError(_("The body is empty."))
    try:
        data = _decode(text)
    except RecursionError as exc:
        raise BodyError(_("The body is nested too deeply.")) from exc
    except ValueError as exc:
        raise BodyError(_("The body is not valid JSON: %(error)s") % {"error": exc}) from exc
    if not isinstance(data, dict):
        raise BodyError(_('The body must be a JSON object with an "events" list.'))
    events = data.get("events")
    if not isinstance(events, list):
        raise BodyError(_('The body must be a JSON object with an "events" list.'))
    if not events:
        raise BodyError(_('The "events" list is empty.'))
    return data


def text_is_clean(raw: bytes) -> bool:
    """True when nothing decoded from ``raw`` can hold a NUL or a lone surrogate, so the
    per-event walk of ``_clean_text`` can be skipped (one scan of the bytes instead of a
    call per string; the walk was a tenth of the worker's time). False is only "maybe":
    an escaped backslash or a valid surrogate pair also match, and then the walk decides.
    """
    return _SUSPECT_ESCAPE.search(raw) is None


def _clean_text(value: Any) -> bool:
    """JSON allows what PostgreSQL refuses: NUL characters and lone surrogates."""
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_clean_text(k) and _clean_text(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_clean_text(v) for v in value)
    return True


def token_or_none(value: Any) -> str | None:
    """An id a client made up (anonymous id, event id): short, plain characters."""
    if isinstance(value, str) and _TOKEN.fullmatch(value):
        return value
    return None


def _parse_time(value: Any) -> datetime:
    if isinstance(value, bool):
        raise ValueError(_("occurred_at must be an ISO 8601 time or epoch milliseconds"))
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(_("occurred_at is out of range")) from exc
    if isinstance(value, str) and len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(_("occurred_at is not an ISO 8601 time")) from exc
        if moment.tzinfo is None:
            raise ValueError(_("occurred_at needs a time zone (e.g. 2026-11-01T08:00:00Z)"))
        return moment
    raise ValueError(_("occurred_at must be an ISO 8601 time or epoch milliseconds"))


@dataclass(slots=True)
class EventIn:
    """One valid event, ready to become an Activity."""

    index: int
    type: str
    occurred_at: datetime
    url: str = ""
    referrer: str = ""
    utm: dict[str, str] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    object_type: str = ""
    object_id: str = ""
    client_id: str | None = None
    identify: dict[str, Any] | None = None  # {"identifiers": {...}, "signature": "…"}

    def dedupe_key(self, site_id: int, anonymous_id: str) -> str:
        """The same event sent twice gets the same key, so it is stored once."""
        if self.client_id:
            return f"c:{site_id}:{self.client_id}"
        fingerprint = json.dumps(
            [anonymous_id, self.type, self.occurred_at.isoformat(), self.url, self.properties],
            sort_keys=True,
            ensure_ascii=False,
            default=str,
        )
        return f"h:{site_id}:{hashlib.sha256(fingerprint.encode('utf-8')).hexdigest()}"


def _optional_text(event: dict[str, Any], name: str, limit: int) -> str:
    value = event.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(_("%(field)s must be a string") % {"field": name})
    if len(value) > limit:
        raise ValueError(
            _("%(field)s is longer than %(limit)s characters") % {"field": name, "limit": limit}
        )
    return value


# The optional text fields of an event and their longest length, in the order checked.
_TEXTS = (
    ("url", MAX_URL_LENGTH),
    ("referrer", MAX_URL_LENGTH),
    ("title", MAX_TITLE_LENGTH),
    ("name", MAX_NAME_LENGTH),
    ("object_type", 40),
    ("object_id", 64),
)


def event_validate(
    index: int, event: Any, *, received_at: datetime, text_clean: bool = False
) -> EventIn:
    """One event, or ValueError with the reason. ``text_clean``: the body it came from
    passed ``text_is_clean``, so its strings need no further Unicode check."""
    return _event_check(
        index, event, received_at, received_at - MAX_AGE, received_at + MAX_FUTURE, text_clean
    )


def _event_check(
    index: int,
    event: Any,
    received_at: datetime,
    earliest: datetime,
    latest: datetime,
    text_clean: bool,
) -> EventIn:
    # The worker runs this for every event it stores, so the common path is kept flat:
    # the time window is computed once per batch and the text fields are read inline.
    if not isinstance(event, dict):
        raise ValueError(_("an event must be a JSON object"))
    kind = event.get("type")
    if kind not in EVENT_TYPES:
        raise ValueError(_("unknown event type “%(type)s”") % {"type": str(kind)[:40]})
    if not text_clean and not _clean_text(event):
        raise ValueError(_("the event contains NUL characters or invalid Unicode"))
    raw_time = event.get("occurred_at")
    occurred_at = received_at if raw_time is None else _parse_time(raw_time)
    if occurred_at > latest:
        raise ValueError(_("occurred_at is in the future"))
    if occurred_at < earliest:
        raise ValueError(_("occurred_at is more than %(days)d days old") % {"days": MAX_AGE.days})
    texts: list[str] = []
    for name, limit in _TEXTS:
        value = event.get(name)
        if value is None:
            texts.append("")
        elif type(value) is str and len(value) <= limit:
            texts.append(value)
        else:
            _optional_text(event, name, limit)  # raises with the reason
    url, referrer, title, name, object_type, object_id = texts
    properties = event.get("properties") or {}
    if not isinstance(properties, dict):
        raise ValueError(_("properties must be a JSON object"))
    size = len(_encode(properties).encode("utf-8")) if properties else 2
    if size > MAX_PROPERTIES_BYTES:
        raise ValueError(
            _("properties take %(size)s bytes, at most %(limit)s are allowed")
            % {"size": size, "limit": MAX_PROPERTIES_BYTES}
        )
    client_id = None
    if event.get("id") is not None:
        client_id = token_or_none(event["id"])
        if client_id is None:
            raise ValueError(_("id must be 1–64 letters, digits or ._:-"))
    stored = dict(properties)
    # Our own keys win over a client's properties of the same name.
    if url:
        stored["url"] = url
    if referrer:
        stored["referrer"] = referrer
    if title:
        stored["title"] = title
    if name:
        stored["name"] = name
    seconds = event.get("seconds")
    if seconds is not None:
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ValueError(_("seconds must be a number"))
        if not 0 <= seconds <= MAX_SECONDS:
            raise ValueError(_("seconds must be between 0 and %(max)s") % {"max": MAX_SECONDS})
        stored["seconds"] = round(seconds)
    utm = utm_of(url, event.get("utm"))
    if utm:
        stored["utm"] = utm
    identify = None
    if kind == "identify":
        if not isinstance(event.get("identifiers"), dict):
            raise ValueError(_('an identify event needs an "identifiers" object'))
        identify = {"identifiers": event["identifiers"], "signature": event.get("signature")}
    return EventIn(
        index=index,
        type=kind,
        occurred_at=occurred_at,
        url=url,
        referrer=referrer,
        utm=utm,
        properties=stored,
        object_type=object_type,
        object_id=object_id,
        client_id=client_id,
        identify=identify,
    )


@dataclass
class Checked:
    events: list[EventIn]
    rejections: list[dict[str, Any]]


def events_validate(
    payload: dict[str, Any], *, received_at: datetime, max_events: int, text_clean: bool = False
) -> Checked:
    """Every event of a parsed body: the valid ones, and a reason for each refused one.
    ``text_clean``: the raw body passed ``text_is_clean``."""
    events: list[EventIn] = []
    rejections: list[dict[str, Any]] = []
    earliest, latest = received_at - MAX_AGE, received_at + MAX_FUTURE
    for index, raw in enumerate(payload["events"]):
        if index >= max_events:
            rejections.append(
                {
                    "index": index,
                    "reason": _("more than %(max)s events in one batch") % {"max": max_events},
                }
            )
            continue
        try:
            events.append(_event_check(index, raw, received_at, earliest, latest, text_clean))
        except ValueError as exc:
            rejections.append({"index": index, "reason": str(exc)})
    return Checked(events=events, rejections=rejections)
