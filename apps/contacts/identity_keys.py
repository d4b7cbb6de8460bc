"""Normalising identity keys, so every spelling of a key finds the same person.

Phones become E.164 (default region CN): "138 0013 8000", "+86 13800138000",
"008613800138000", "１３８－００１３－８０００" all give "+8613800138000". Mainland mobile
numbers take a fast path (imports normalise millions); everything else goes through
``phonenumbers``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import phonenumbers

from apps.contacts.models import IdentityKind

MAX_VALUE_LENGTH = 254
_CN_MOBILE = re.compile(r"1[3-9]\d{9}")
_PHONE_JUNK = re.compile(r"[\s\-().·/]")
# Practical email check: one @, a dot in the domain, no spaces; the real test is delivery.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class InvalidKey(ValueError):
    """The value cannot be a key of this kind; ``str()`` says why, for the user."""


@dataclass(frozen=True, order=True)
class Key:
    kind: str
    scope: str
    value: str

    @property
    def lock_name(self) -> str:
        return f"{self.kind}|{self.scope}|{self.value}"


def normalize_phone(raw: str, region: str = "CN") -> str:
    text = unicodedata.normalize("NFKC", raw or "").strip()
    if not text:
        raise InvalidKey("empty phone number")
    compact = _PHONE_JUNK.sub("", text)
    # Fast path: a mainland mobile number, bare or with +86 / 0086 / 86.
    for prefix in ("+86", "0086", "86", ""):
        if compact.startswith(prefix):
            rest = compact[len(prefix) :]
            if _CN_MOBILE.fullmatch(rest):
                return "+86" + rest
    try:
        number = phonenumbers.parse(
            compact.replace("00", "+", 1) if compact.startswith("00") else compact, region
        )
    except phonenumbers.NumberParseException as exc:
        raise InvalidKey(f"not a phone number: {raw!r}") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidKey(f"not a valid phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    text = unicodedata.normalize("NFKC", raw or "").strip().lower()
    if not text:
        raise InvalidKey("empty email address")
    if len(text) > MAX_VALUE_LENGTH or not _EMAIL.fullmatch(text):
        raise InvalidKey(f"not an email address: {raw!r}")
    return text


def normalize_token(raw: str) -> str:
    text = (raw or "").strip()
    if not text:
        raise InvalidKey("empty id")
    if len(text) > MAX_VALUE_LENGTH or any(c.isspace() for c in text):
        raise InvalidKey(f"not a valid id: {raw!r}")
    return text


_KINDS = frozenset(IdentityKind.values)

# Keys that need a scope (an openid means nothing without its official account).
SCOPED_KINDS = {IdentityKind.WECHAT_OPENID}


def make_key(kind: str, raw: str, scope: str = "") -> Key:
    """A normalised key, or InvalidKey with a message fit for the user."""
    if kind not in _KINDS:
        raise InvalidKey(f"unknown identity kind {kind!r}")
    if kind in SCOPED_KINDS and not scope:
        raise InvalidKey("a WeChat openid needs its official-account app id")
    if kind not in SCOPED_KINDS:
        scope = ""
    if kind == IdentityKind.PHONE:
        value = normalize_phone(raw)
    elif kind == IdentityKind.EMAIL:
        value = normalize_email(raw)
    else:
        value = normalize_token(raw)
    return Key(kind, scope.strip(), value)
