"""Writes for tracked sites: create, change, rotate the signing secret.

A site's public key sits in every page's snippet; it names the site, it does not
authorise anything. The signing secret stays on the site's own server, which signs the
identifiers it hands to ``leadloop.identify`` (the recipe is in
``apps.contacts.collector.signing``), so a page cannot claim to be someone else. Each
write takes ``acting_user`` and leaves an audit row in the same transaction; the audit
never holds the secret.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.contacts.collector.intake import site_forget
from apps.contacts.models import Site
from apps.core.audit_actions import register_action
from apps.core.models import BusinessUnit
from apps.core.services import Actor, audit_record

for _action, _label in (
    ("site.create", gettext_lazy("Tracked site created")),
    ("site.update", gettext_lazy("Tracked site changed")),
    ("site.rotate_secret", gettext_lazy("Tracked site signing secret rotated")),
):
    register_action(_action, _label)

NAME_MAX = 100
MAX_ORIGINS = 50
ORIGIN_MAX = 200
# Bounds a person may set; the collector enforces the values.
EVENTS_PER_BATCH = (1, 1000)
REQUESTS_PER_MINUTE = (1, 10_000)


def new_public_key() -> str:
    return "pk_" + secrets.token_urlsafe(16)


def new_signing_secret() -> str:
    return secrets.token_hex(32)


def clean_origins(origins: Iterable[str]) -> list[str]:
    """``https://www.example.cn`` style origins, lowercased, duplicates dropped; a trailing
    slash is forgiven, a path is not (browsers send the origin without one)."""
    cleaned: list[str] = []
    for raw in origins:
        text = (raw or "").strip()
        if not text:
            continue
        if text.endswith("/") and text.count("/") == 3:
            text = text[:-1]
        parts = urlsplit(text)
        try:
            port = parts.port
        except ValueError:
            port = None
            parts = parts._replace(netloc="")
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path
            or parts.query
            or parts.fragment
            or parts.username
            or len(text) > ORIGIN_MAX
        ):
            raise ValidationError(
                {
                    "allowed_origins": [
                        _(
                            "“%(origin)s” is not an origin. Write the scheme and host only, "
                            "e.g. https://www.example.cn"
                        )
                        % {"origin": text[:ORIGIN_MAX]}
                    ]
                }
            )
        # Browsers leave a default port out of the Origin header.
        default_port = {"http": 80, "https": 443}[parts.scheme]
        keep_port = port is not None and port != default_port
        origin = f"{parts.scheme}://{parts.hostname}" + (f":{port}" if keep_port else "")
        if origin not in cleaned:
            cleaned.append(origin)
    if len(cleaned) > MAX_ORIGINS:
        raise ValidationError(
            {"allowed_origins": [_("At most %(n)d origins, please.") % {"n": MAX_ORIGINS}]}
        )
    return cleaned


def _limit(value: Any, *, field: str, bounds: tuple[int, int]) -> int:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(
            {
                field: [
                    _("Enter a whole number from %(low)d to %(high)d.") % {"low": low, "high": high}
                ]
            }
        )
    return value


def _name(value: str) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationError({"name": [_("This field is required.")]})
    if len(text) > NAME_MAX:
        raise ValidationError({"name": [_("At most %(n)d characters, please.") % {"n": NAME_MAX}]})
    return text


def _audit(site: Site) -> dict[str, Any]:
    return {
        "name": site.name,
        "public_key": site.public_key,
        "allowed_origins": list(site.allowed_origins),
        "max_events_per_batch": site.max_events_per_batch,
        "max_requests_per_minute": site.max_requests_per_minute,
        "is_active": site.is_active,
    }


@transaction.atomic
def site_create(
    *,
    unit: BusinessUnit,
    name: str,
    allowed_origins: Iterable[str] = (),
    max_events_per_batch: int = 100,
    max_requests_per_minute: int = 120,
    acting_user: Actor,
) -> Site:
    """A new site with a fresh public key and signing secret (read it from the returned
    site now: pages show it only once)."""
    site = Site(
        unit=unit,
        name=_name(name),
        allowed_origins=clean_origins(allowed_origins),
        max_events_per_batch=_limit(
            max_events_per_batch, field="max_events_per_batch", bounds=EVENTS_PER_BATCH
        ),
        max_requests_per_minute=_limit(
            max_requests_per_minute, field="max_requests_per_minute", bounds=REQUESTS_PER_MINUTE
        ),
        public_key=new_public_key(),
        signing_secret=new_signing_secret(),
    )
    site.save()
    audit_record(actor=acting_user, action="site.create", obj=site, unit=unit, after=_audit(site))
    return site


@transaction.atomic
def site_update(
    *,
    site: Site,
    name: str,
    allowed_origins: Iterable[str],
    max_events_per_batch: int,
    max_requests_per_minute: int,
    is_active: bool,
    acting_user: Actor,
) -> Site:
    before = _audit(site)
    site.name = _name(name)
    site.allowed_origins = clean_origins(allowed_origins)
    site.max_events_per_batch = _limit(
        max_events_per_batch, field="max_events_per_batch", bounds=EVENTS_PER_BATCH
    )
    site.max_requests_per_minute = _limit(
        max_requests_per_minute, field="max_requests_per_minute", bounds=REQUESTS_PER_MINUTE
    )
    site.is_active = bool(is_active)
    site.save(
        update_fields=[
            "name",
            "allowed_origins",
            "max_events_per_batch",
            "max_requests_per_minute",
            "is_active",
        ]
    )
    # The collector caches a site's settings for a minute; drop them once this commits
    # (robust: a cache outage must not fail a change already committed).
    public_key = site.public_key
    transaction.on_commit(lambda: site_forget(public_key), robust=True)
    audit_record(
        actor=acting_user,
        action="site.update",
        obj=site,
        unit=site.unit_id,
        before=before,
        after=_audit(site),
    )
    return site


@transaction.atomic
def site_rotate_secret(*, site: Site, acting_user: Actor) -> str:
    """Replace the signing secret; identify calls signed with the old one stop counting at
    once. Returns the new secret (pages show it only once)."""
    site.signing_secret = new_signing_secret()
    site.save(update_fields=["signing_secret"])
    audit_record(
        actor=acting_user,
        action="site.rotate_secret",
        obj=site,
        unit=site.unit_id,
        after={"public_key": site.public_key},
    )
    return site.signing_secret
