"""Signed identifiers: a page may only say who the visitor is with the site's signature.

The site's server (after a login or a form) signs the identifiers it vouches for with the
site's ``signing_secret``; the collector checks the signature before it trusts them. Any
other identifiers a page sends are ignored, so a visitor cannot claim to be somebody else.

Signature = hex HMAC-SHA256(secret, canonical JSON of the identifiers), where canonical
JSON is ``json.dumps(identifiers, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` encoded as UTF-8.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any


def canonical_identifiers(identifiers: dict[str, Any]) -> bytes:
    return json.dumps(
        identifiers, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def identifiers_sign(secret: str, identifiers: dict[str, Any]) -> str:
    """The signature a site's server puts next to the identifiers it sends."""
    return hmac.new(
        secret.encode("utf-8"), canonical_identifiers(identifiers), hashlib.sha256
    ).hexdigest()


def identifiers_verify(secret: str, identifiers: dict[str, Any], signature: Any) -> bool:
    if not secret or not isinstance(signature, str) or not signature:
        return False
    return hmac.compare_digest(identifiers_sign(secret, identifiers), signature.lower())
