"""Writes for the content library: create, change, archive and restore assets.

Files are stored through Django storage (the ``Asset.file`` FileField, so
``default_storage``). An upload is checked before anything is written: its extension
against the allowlist, its size against the limit, and its first bytes against what that
kind of file starts with (a renamed ``.exe`` is refused). Article bodies are sanitised
with nh3 when saved. A gated asset needs a gate form of its own unit. Every write takes
``acting_user`` and leaves an audit row in the same transaction.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.content.blocks import url_is_web
from apps.content.html import clean_html
from apps.content.models import Asset, AssetKind, BuyingStage, Form
from apps.core.audit_actions import register_action
from apps.core.models import BusinessUnit, User
from apps.core.services import Actor, audit_record

for _action, _label in (
    ("asset.create", gettext_lazy("Asset created")),
    ("asset.update", gettext_lazy("Asset changed")),
    ("asset.archive", gettext_lazy("Asset archived")),
    ("asset.restore", gettext_lazy("Asset restored")),
):
    register_action(_action, _label)

# What an uploaded file may be: extension → how such files begin. Office files are ZIP
# containers; an MP4 carries "ftyp" at byte 4.
ALLOWED_UPLOADS: dict[str, tuple[bytes, ...]] = {
    "pdf": (b"%PDF-",),
    "pptx": (b"PK\x03\x04",),
    "docx": (b"PK\x03\x04",),
    "xlsx": (b"PK\x03\x04",),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpg": (b"\xff\xd8\xff",),
    "jpeg": (b"\xff\xd8\xff",),
    "mp4": (),  # checked below: "ftyp" at offset 4
}
MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # whitepapers and short videos; longer videos go by URL
TITLE_MAX = 200
TOPIC_MAX = 100
SUMMARY_MAX = 2000
BODY_MAX = 200_000
PERSONA_MAX = 40
PERSONAS_MAX = 10
FILE_NAME_MAX = 120

UNSET: Any = object()


def allowed_extensions_label() -> str:
    return ", ".join(ext.upper() for ext in ALLOWED_UPLOADS if ext != "jpeg")


# --- Checks --------------------------------------------------------------------------------


def _extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def upload_check(upload: UploadedFile) -> str:
    """The file's extension when it may be stored; else ValidationError on ``upload``."""
    name = os.path.basename(upload.name or "")
    extension = _extension(name)
    if extension not in ALLOWED_UPLOADS:
        shown = f".{extension}" if extension else _("without an extension")
        raise ValidationError(
            {
                "upload": [
                    _("Files of type %(type)s cannot be uploaded. Allowed: %(allowed)s.")
                    % {"type": shown, "allowed": allowed_extensions_label()}
                ]
            }
        )
    size = upload.size or 0
    if size > MAX_UPLOAD_BYTES:
        raise ValidationError(
            {
                "upload": [
                    _("The file is %(size).1f MB; at most %(max)d MB can be uploaded.")
                    % {"size": size / 2**20, "max": MAX_UPLOAD_BYTES // 2**20}
                ]
            }
        )
    if size == 0:
        raise ValidationError({"upload": [_("The file is empty.")]})
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    signatures = ALLOWED_UPLOADS[extension]
    looks_right = (
        head[4:8] == b"ftyp" if extension == "mp4" else any(head.startswith(s) for s in signatures)
    )
    if not looks_right:
        raise ValidationError(
            {
                "upload": [
                    _("This file is not a real %(type)s file, whatever its name says.")
                    % {"type": extension.upper()}
                ]
            }
        )
    return extension


def _text(value: str, *, field: str, limit: int, required: bool = False) -> str:
    text = (value or "").strip()
    if required and not text:
        raise ValidationError({field: [_("This field is required.")]})
    if len(text) > limit:
        raise ValidationError({field: [_("At most %(n)d characters, please.") % {"n": limit}]})
    return text


def _kind(value: str) -> str:
    if value not in AssetKind.values:
        raise ValidationError(
            {"kind": [_("Choose one of: %(kinds)s.") % {"kinds": ", ".join(AssetKind.values)}]}
        )
    return value


def _stage(value: str) -> str:
    value = (value or "").strip()
    if value and value not in BuyingStage.values:
        raise ValidationError(
            {
                "buying_stage": [
                    _("Choose one of: %(stages)s.") % {"stages": ", ".join(BuyingStage.values)}
                ]
            }
        )
    return value


def personas_clean(values: Iterable[Any] | str) -> list[str]:
    """Persona tags ("采购经理", "实验室主任"…): trimmed, duplicates dropped, order kept."""
    if isinstance(values, str):
        values = values.replace("，", ",").split(",")
    cleaned: list[str] = []
    for raw in values:
        if not isinstance(raw, str):
            raise ValidationError({"personas": [_("Personas must be text.")]})
        text = raw.strip()
        if not text:
            continue
        if len(text) > PERSONA_MAX:
            raise ValidationError(
                {"personas": [_("A persona has at most %(n)d characters.") % {"n": PERSONA_MAX}]}
            )
        if text not in cleaned:
            cleaned.append(text)
    if len(cleaned) > PERSONAS_MAX:
        raise ValidationError(
            {"personas": [_("At most %(n)d personas per asset.") % {"n": PERSONAS_MAX}]}
        )
    return cleaned


def _url(value: str) -> str:
    url = (value or "").strip()
    if url and not url_is_web(url):
        raise ValidationError({"url": [_("Enter an http:// or https:// address.")]})
    return url


def _gate(is_gated: bool, gate_form: Form | None, unit_id: int) -> Form | None:
    if gate_form is not None and gate_form.unit_id != unit_id:
        raise ValidationError({"gate_form": [_("Choose a form of this asset's own unit.")]})
    if is_gated and gate_form is None:
        raise ValidationError(
            {"gate_form": [_("A gated asset needs a gate form: the form people fill to get it.")]}
        )
    return gate_form


def _content_check(asset: Asset, *, has_upload: bool) -> None:
    """What each kind needs to be deliverable: an article its text, a video an address
    or an MP4, anything else a file, an address or a text written here."""
    has_file = has_upload or bool(asset.file)
    if asset.kind == AssetKind.ARTICLE:
        if not asset.body.strip() and not has_file and not asset.url:
            raise ValidationError({"body": [_("Write the article's text.")]})
    elif asset.kind == AssetKind.VIDEO:
        if not asset.url and not has_file:
            raise ValidationError({"url": [_("Give the video's address, or upload an MP4.")]})
    elif not asset.url and not has_file and not asset.body.strip():
        raise ValidationError(
            {"upload": [_("Upload a file, give its address, or write its text.")]}
        )


def _file_name(title: str, extension: str, original: str) -> str:
    # Keep the person's file name (it is what the downloader sees), bounded in length.
    stem = os.path.splitext(os.path.basename(original))[0].strip() or title.strip() or "asset"
    return f"{stem[:FILE_NAME_MAX]}.{extension}"


def _audit(asset: Asset) -> dict[str, Any]:
    return {
        "title": asset.title,
        "kind": asset.kind,
        "file": asset.file.name or "",
        "url": asset.url,
        "topic": asset.topic,
        "buying_stage": asset.buying_stage,
        "personas": list(asset.personas or []),
        "is_gated": asset.is_gated,
        "gate_form": asset.gate_form_id,
        "is_active": asset.is_active,
    }


def _store(asset: Asset, upload: UploadedFile, extension: str) -> None:
    """Write the file through storage; removed again if the transaction rolls back later
    in this call (the row then does not exist, so neither should the file)."""
    asset.file.save(_file_name(asset.title, extension, upload.name or ""), upload, save=False)


def _discard(name: str) -> None:
    if name:
        with contextlib.suppress(OSError):  # already gone; nothing to clean
            default_storage.delete(name)


# --- Writes --------------------------------------------------------------------------------


def asset_create(
    *,
    unit: BusinessUnit,
    title: str,
    kind: str,
    summary: str = "",
    upload: UploadedFile | None = None,
    url: str = "",
    body: str = "",
    topic: str = "",
    buying_stage: str = "",
    personas: Iterable[Any] | str = (),
    is_gated: bool = False,
    gate_form: Form | None = None,
    acting_user: Actor,
) -> Asset:
    """A new asset. Everything is checked first; the file is stored last, so bad input
    stores nothing."""
    asset = Asset(
        unit=unit,
        title=_text(title, field="title", limit=TITLE_MAX, required=True),
        kind=_kind(kind),
        summary=_text(summary, field="summary", limit=SUMMARY_MAX),
        url=_url(url),
        body=clean_html(_text(body, field="body", limit=BODY_MAX)),
        topic=_text(topic, field="topic", limit=TOPIC_MAX),
        buying_stage=_stage(buying_stage),
        personas=personas_clean(personas),
        is_gated=bool(is_gated),
        gate_form=_gate(bool(is_gated), gate_form, unit.pk),
        created_by=acting_user if isinstance(acting_user, User) else None,
    )
    extension = upload_check(upload) if upload is not None else ""
    _content_check(asset, has_upload=upload is not None)
    stored = ""
    try:
        with transaction.atomic():
            if upload is not None:
                _store(asset, upload, extension)
                stored = asset.file.name or ""
            asset.save()
            audit_record(
                actor=acting_user, action="asset.create", obj=asset, unit=unit, after=_audit(asset)
            )
    except BaseException:
        _discard(stored)
        raise
    return asset


def asset_update(
    *,
    asset: Asset,
    title: str = UNSET,
    kind: str = UNSET,
    summary: str = UNSET,
    upload: UploadedFile | None = None,
    url: str = UNSET,
    body: str = UNSET,
    topic: str = UNSET,
    buying_stage: str = UNSET,
    personas: Iterable[Any] | str = UNSET,
    is_gated: bool = UNSET,
    gate_form: Form | None = UNSET,
    acting_user: Actor,
) -> Asset:
    """Change what is given; a new upload replaces the file (the old one is removed once
    the change has committed)."""
    before = _audit(asset)
    changes: dict[str, Any] = {}
    if title is not UNSET:
        changes["title"] = _text(title, field="title", limit=TITLE_MAX, required=True)
    if kind is not UNSET:
        changes["kind"] = _kind(kind)
    if summary is not UNSET:
        changes["summary"] = _text(summary, field="summary", limit=SUMMARY_MAX)
    if url is not UNSET:
        changes["url"] = _url(url)
    if body is not UNSET:
        changes["body"] = clean_html(_text(body, field="body", limit=BODY_MAX))
    if topic is not UNSET:
        changes["topic"] = _text(topic, field="topic", limit=TOPIC_MAX)
    if buying_stage is not UNSET:
        changes["buying_stage"] = _stage(buying_stage)
    if personas is not UNSET:
        changes["personas"] = personas_clean(personas)
    gated = asset.is_gated if is_gated is UNSET else bool(is_gated)
    form = asset.gate_form if gate_form is UNSET else gate_form
    if is_gated is not UNSET or gate_form is not UNSET:
        changes["is_gated"] = gated
        changes["gate_form"] = _gate(gated, form, asset.unit_id)
    extension = upload_check(upload) if upload is not None else ""
    # Check the result on a copy, so a refused change leaves the caller's object as it was.
    candidate = Asset(**{f.attname: getattr(asset, f.attname) for f in Asset._meta.concrete_fields})
    candidate.file = asset.file
    for name, value in changes.items():
        setattr(candidate, name, value)
    _content_check(candidate, has_upload=upload is not None)
    old_file = asset.file.name or ""
    stored = ""
    try:
        with transaction.atomic():
            for name, value in changes.items():
                setattr(asset, name, value)
            fields = list(changes)
            if upload is not None:
                _store(asset, upload, extension)
                stored = asset.file.name or ""
                fields.append("file")
            if fields:
                asset.save(update_fields=[*fields, "updated_at"])
                audit_record(
                    actor=acting_user,
                    action="asset.update",
                    obj=asset,
                    unit=asset.unit_id,
                    before=before,
                    after=_audit(asset),
                )
            if stored and old_file and old_file != stored:
                transaction.on_commit(lambda: _discard(old_file), robust=True)
    except BaseException:
        _discard(stored)
        if stored:
            asset.file.name = old_file
        raise
    return asset


@transaction.atomic
def asset_archive(*, asset: Asset, acting_user: Actor) -> Asset:
    """Hide the asset from the library and stop delivering it (``/a/<key>/`` answers 404);
    its file and history stay."""
    if not asset.is_active:
        return asset
    asset.is_active = False
    asset.save(update_fields=["is_active", "updated_at"])
    audit_record(
        actor=acting_user,
        action="asset.archive",
        obj=asset,
        unit=asset.unit_id,
        before={"is_active": True},
        after={"is_active": False},
    )
    return asset


@transaction.atomic
def asset_restore(*, asset: Asset, acting_user: Actor) -> Asset:
    if asset.is_active:
        return asset
    asset.is_active = True
    asset.save(update_fields=["is_active", "updated_at"])
    audit_record(
        actor=acting_user,
        action="asset.restore",
        obj=asset,
        unit=asset.unit_id,
        before={"is_active": False},
        after={"is_active": True},
    )
    return asset
