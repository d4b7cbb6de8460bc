"""Gated assets: after a visitor fills the gate form, the thank-you page hands them a
signed grant for that asset, so the download works at once (before the submission has
been processed) and cannot be forged or reused for another asset."""

from __future__ import annotations

from django.core import signing

SALT = "content.asset-grant"
GRANT_MAX_AGE = 7 * 24 * 3600  # a week: long enough to come back to the e-mail/thank-you page


def asset_grant(asset_key: str, submission_id: int) -> str:
    return signing.dumps({"a": asset_key, "s": submission_id}, salt=SALT, compress=True)


def asset_grant_check(token: str, asset_key: str) -> int | None:
    """The submission id behind a valid grant for this asset, else None."""
    try:
        data = signing.loads(token, salt=SALT, max_age=GRANT_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("a") != asset_key:
        return None
    submission = data.get("s")
    return submission if isinstance(submission, int) else None
