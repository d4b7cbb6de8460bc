"""Writes for landing pages: create, change, publish, unpublish, duplicate; images for
image blocks; and the signed preview token that shows a draft to whoever an editor hands
it to.

Every write takes ``acting_user`` and leaves an audit row in the same transaction. A slug
is the page's public address (``/p/<slug>/``) across all units, so its uniqueness is the
database's; a clash is reported as a clear message on the ``slug`` field.
"""

from __future__ import annotations

import re
from typing import Any

from django.core import signing
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.contacts.models import Campaign, Channel
from apps.content.blocks import blocks_clean
from apps.content.models import LandingPage, PageStatus
from apps.core.audit_actions import register_action
from apps.core.models import BusinessUnit, User
from apps.core.services import Actor, audit_record

for _action, _label in (
    ("landing_page.create", gettext_lazy("Landing page created")),
    ("landing_page.update", gettext_lazy("Landing page changed")),
    ("landing_page.publish", gettext_lazy("Landing page published")),
    ("landing_page.unpublish", gettext_lazy("Landing page unpublished")),
    ("landing_page.duplicate", gettext_lazy("Landing page duplicated")),
    ("landing_page.image_upload", gettext_lazy("Landing page image uploaded")),
    ("landing_page.delete", gettext_lazy("Landing page deleted")),
):
    register_action(_action, _label)

TITLE_MAX = 200
SLUG_MAX = 100
SEO_TITLE_MAX = 200
SEO_DESCRIPTION_MAX = 300
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Words a page address must not take: they read as parts of LeadLoop itself, or would
# confuse people reading a link ("/p/admin/").
RESERVED_SLUGS = frozenset(
    {
        "a",
        "admin",
        "api",
        "app",
        "assets",
        "console",
        "edit",
        "f",
        "forms",
        "index",
        "leadloop",
        "login",
        "logout",
        "m",
        "media",
        "new",
        "p",
        "pages",
        "preview",
        "s",
        "sdr",
        "static",
        "t",
        "wx",
    }
)

# Images for image blocks.
IMAGE_EXTENSIONS = {"png": b"\x89PNG\r\n\x1a\n", "jpg": b"\xff\xd8\xff", "jpeg": b"\xff\xd8\xff"}
IMAGE_MAX_BYTES = 5 * 1024 * 1024

PREVIEW_SALT = "content.page-preview"
PREVIEW_MAX_AGE = 60 * 60  # an hour: enough to look and share with a colleague, not forever

UNSET: Any = object()


# --- Checks --------------------------------------------------------------------------------


def slug_clean(value: str) -> str:
    """The slug as stored: trimmed and lowercased; ASCII letters, digits and single
    hyphens only; not a reserved word."""
    slug = (value or "").strip().lower()
    if not slug:
        raise ValidationError({"slug": [_("Enter the page address, e.g. spring-webinar.")]})
    if len(slug) > SLUG_MAX:
        raise ValidationError({"slug": [_("At most %(n)d characters, please.") % {"n": SLUG_MAX}]})
    if not SLUG_PATTERN.match(slug):
        raise ValidationError(
            {
                "slug": [
                    _(
                        "Use lowercase letters a–z, digits and single hyphens only "
                        "(e.g. cell-culture-2026); no spaces, Chinese characters or accents."
                    )
                ]
            }
        )
    if slug in RESERVED_SLUGS:
        raise ValidationError(
            {
                "slug": [
                    _("“%(slug)s” is reserved by LeadLoop; choose another address.")
                    % {"slug": slug}
                ]
            }
        )
    return slug


def _text(value: str, *, field: str, limit: int, required: bool = False) -> str:
    text = (value or "").strip()
    if required and not text:
        raise ValidationError({field: [_("This field is required.")]})
    if len(text) > limit:
        raise ValidationError({field: [_("At most %(n)d characters, please.") % {"n": limit}]})
    return text


def _same_unit(obj: Channel | Campaign | None, unit_id: int, field: str) -> None:
    if obj is not None and obj.unit_id != unit_id:
        raise ValidationError({field: [_("Choose one of this unit's own.")]})


def _slug_taken() -> ValidationError:
    # Slugs are global (one public address space); the message does not say whose page
    # holds it, which may be another unit's.
    return ValidationError(
        {"slug": [_("This address is already used by another landing page; choose another.")]}
    )


def _save_new(page: LandingPage) -> None:
    try:
        with transaction.atomic():
            page.save()
    except IntegrityError as exc:
        if "slug" in str(exc):
            raise _slug_taken() from None
        raise


def _user_or_none(actor: Actor) -> User | None:
    return actor if isinstance(actor, User) else None


def _audit(page: LandingPage) -> dict[str, Any]:
    return {
        "title": page.title,
        "slug": page.slug,
        "seo_title": page.seo_title,
        "seo_description": page.seo_description,
        "status": page.status,
        "channel": page.channel_id,
        "campaign": page.campaign_id,
        "blocks": len(page.blocks or []),
    }


# --- Writes --------------------------------------------------------------------------------


@transaction.atomic
def page_create(
    *,
    unit: BusinessUnit,
    title: str,
    slug: str,
    seo_title: str = "",
    seo_description: str = "",
    blocks: list[dict[str, Any]] | None = None,
    channel: Channel | None = None,
    campaign: Campaign | None = None,
    acting_user: Actor,
) -> LandingPage:
    """A new draft page."""
    _same_unit(channel, unit.pk, "channel")
    _same_unit(campaign, unit.pk, "campaign")
    page = LandingPage(
        unit=unit,
        title=_text(title, field="title", limit=TITLE_MAX, required=True),
        slug=slug_clean(slug),
        seo_title=_text(seo_title, field="seo_title", limit=SEO_TITLE_MAX),
        seo_description=_text(seo_description, field="seo_description", limit=SEO_DESCRIPTION_MAX),
        blocks=blocks_clean(blocks or [], unit_id=unit.pk),
        channel=channel,
        campaign=campaign,
        status=PageStatus.DRAFT,
        created_by=_user_or_none(acting_user),
    )
    _save_new(page)
    audit_record(
        actor=acting_user, action="landing_page.create", obj=page, unit=unit, after=_audit(page)
    )
    return page


@transaction.atomic
def page_update(
    *,
    page: LandingPage,
    title: str = UNSET,
    slug: str = UNSET,
    seo_title: str = UNSET,
    seo_description: str = UNSET,
    blocks: list[dict[str, Any]] = UNSET,
    channel: Channel | None = UNSET,
    campaign: Campaign | None = UNSET,
    acting_user: Actor,
) -> LandingPage:
    """Change what is given; everything is checked before anything is written."""
    before = _audit(page)
    changes: dict[str, Any] = {}
    if title is not UNSET:
        changes["title"] = _text(title, field="title", limit=TITLE_MAX, required=True)
    if slug is not UNSET:
        changes["slug"] = slug_clean(slug)
    if seo_title is not UNSET:
        changes["seo_title"] = _text(seo_title, field="seo_title", limit=SEO_TITLE_MAX)
    if seo_description is not UNSET:
        changes["seo_description"] = _text(
            seo_description, field="seo_description", limit=SEO_DESCRIPTION_MAX
        )
    if blocks is not UNSET:
        changes["blocks"] = blocks_clean(blocks, unit_id=page.unit_id)
    if channel is not UNSET:
        _same_unit(channel, page.unit_id, "channel")
        changes["channel"] = channel
    if campaign is not UNSET:
        _same_unit(campaign, page.unit_id, "campaign")
        changes["campaign"] = campaign
    if not changes:
        return page
    for name, value in changes.items():
        setattr(page, name, value)
    try:
        with transaction.atomic():
            page.save(update_fields=[*changes, "updated_at"])
    except IntegrityError as exc:
        page.refresh_from_db()
        if "slug" in str(exc):
            raise _slug_taken() from None
        raise
    audit_record(
        actor=acting_user,
        action="landing_page.update",
        obj=page,
        unit=page.unit_id,
        before=before,
        after=_audit(page),
    )
    return page


@transaction.atomic
def page_publish(*, page: LandingPage, acting_user: Actor) -> LandingPage:
    """Put the page live at ``/p/<slug>/``; ``published_at`` is when it (last) went live."""
    if page.is_published:
        return page
    page.status = PageStatus.PUBLISHED
    page.published_at = timezone.now()
    page.save(update_fields=["status", "published_at", "updated_at"])
    audit_record(
        actor=acting_user,
        action="landing_page.publish",
        obj=page,
        unit=page.unit_id,
        after={"status": page.status, "published_at": page.published_at.isoformat()},
    )
    return page


@transaction.atomic
def page_unpublish(*, page: LandingPage, acting_user: Actor) -> LandingPage:
    """Take the page down (the public address answers 404); it keeps its content."""
    if not page.is_published:
        return page
    page.status = PageStatus.DRAFT
    page.save(update_fields=["status", "updated_at"])
    audit_record(
        actor=acting_user,
        action="landing_page.unpublish",
        obj=page,
        unit=page.unit_id,
        before={"status": PageStatus.PUBLISHED},
        after={"status": page.status},
    )
    return page


def _free_copy_slug(slug: str) -> str:
    base = f"{slug[: SLUG_MAX - 10]}-copy"
    # Slugs are global: look across every unit (the copy must not collide with anyone's).
    taken = set(
        LandingPage.objects.dangerously_unscoped()
        .filter(slug__startswith=base)
        .values_list("slug", flat=True)
    )
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


@transaction.atomic
def page_duplicate(*, page: LandingPage, acting_user: Actor) -> LandingPage:
    """A draft copy in the same unit, addressed ``<slug>-copy`` (or ``-copy-2``…)."""
    copy = LandingPage(
        unit_id=page.unit_id,
        title=_("%(title)s (copy)") % {"title": page.title}
        if len(page.title) <= TITLE_MAX - 10
        else page.title,
        slug=_free_copy_slug(page.slug),
        seo_title=page.seo_title,
        seo_description=page.seo_description,
        blocks=list(page.blocks or []),
        channel_id=page.channel_id,
        campaign_id=page.campaign_id,
        status=PageStatus.DRAFT,
        created_by=_user_or_none(acting_user),
    )
    _save_new(copy)
    audit_record(
        actor=acting_user,
        action="landing_page.duplicate",
        obj=copy,
        unit=page.unit_id,
        before={"source": page.pk},
        after=_audit(copy),
    )
    return copy


@transaction.atomic
def page_delete(*, page: LandingPage, acting_user: Actor) -> None:
    """Delete a draft. A published page must be unpublished first, so a live address
    never disappears by accident; submissions made on it keep their data."""
    if page.is_published:
        raise ValidationError(
            {"status": [_("This page is published; unpublish it before deleting it.")]}
        )
    audit_record(
        actor=acting_user,
        action="landing_page.delete",
        obj=page,
        unit=page.unit_id,
        before=_audit(page),
    )
    page.delete()


# --- Images for image blocks ---------------------------------------------------------------


def _extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


@transaction.atomic
def page_image_store(*, unit: BusinessUnit, upload: UploadedFile, acting_user: Actor) -> str:
    """Store an image for an image block through Django storage; returns its storage name
    (``pages/<unit>/…``). Checked before anything is written: PNG or JPEG, at most 5 MB."""
    name = upload.name or ""
    extension = _extension(name)
    if extension not in IMAGE_EXTENSIONS:
        raise ValidationError({"upload": [_("Images must be PNG or JPEG files (.png, .jpg).")]})
    if (upload.size or 0) > IMAGE_MAX_BYTES:
        raise ValidationError(
            {"upload": [_("An image may be at most %(mb)d MB.") % {"mb": IMAGE_MAX_BYTES // 2**20}]}
        )
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    if not head.startswith(IMAGE_EXTENSIONS[extension]):
        raise ValidationError(
            {"upload": [_("This file is not a PNG or JPEG image, whatever its name says.")]}
        )
    stored = default_storage.save(
        f"pages/{unit.pk}/{timezone.now():%Y/%m}/image.{extension}", upload
    )
    audit_record(
        actor=acting_user,
        action="landing_page.image_upload",
        unit=unit,
        after={"file": stored, "size": upload.size},
    )
    return stored


# --- Preview -------------------------------------------------------------------------------


def page_preview_token(*, page: LandingPage, user_id: int) -> str:
    """A signed token that shows this page (draft or not) for an hour."""
    return signing.dumps({"p": page.pk, "u": user_id}, salt=PREVIEW_SALT, compress=True)


def page_preview_check(token: str, page: LandingPage) -> bool:
    if not token or len(token) > 500:
        return False
    try:
        data = signing.loads(token, salt=PREVIEW_SALT, max_age=PREVIEW_MAX_AGE)
    except signing.BadSignature:  # also expired (SignatureExpired is a BadSignature)
        return False
    return isinstance(data, dict) and data.get("p") == page.pk
