"""Landing-page blocks: what a block may hold, how it is checked when saved, and how a
page's blocks become HTML.

A page's ``blocks`` is an ordered list of small dicts, each with a ``type``:

- ``heading``: ``text``, ``level`` 1–3
- ``text``: ``html`` (rich text, sanitised with nh3 when saved *and* when rendered)
- ``image``: ``src`` (an https URL, or ``file``: a name in Django storage), ``alt``,
  ``link`` (optional http/https URL)
- ``form``: ``form`` (the id of a form of the page's unit), shown in an iframe of
  ``/f/<key>/`` that reports its height
- ``asset``: ``asset`` (the id of an asset of the page's unit), shown as a card with a
  button to ``/a/<key>/``
- ``cta``: ``label``, ``url`` (http/https only)
- ``spacer``: ``size`` ``s`` | ``m`` | ``l``; ``divider``: nothing

Nothing from a block reaches a page unescaped except rich text, and that only through
``safe_html``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.content.html import clean_html, safe_html
from apps.content.models import Asset, AssetKind, Form, LandingPage

MAX_BLOCKS = 60
MAX_TEXT = 200  # headings, labels, alt text
MAX_HTML = 50_000
MAX_URL = 1000


@dataclass(frozen=True)
class BlockType:
    key: str
    label: Any  # lazy string
    fields: tuple[str, ...]  # the fields it keeps, in editor order


BLOCK_TYPES: dict[str, BlockType] = {
    block.key: block
    for block in (
        BlockType("heading", gettext_lazy("Heading"), ("text", "level")),
        BlockType("text", gettext_lazy("Rich text"), ("html",)),
        BlockType("image", gettext_lazy("Image"), ("src", "file", "alt", "link")),
        BlockType("form", gettext_lazy("Form"), ("form",)),
        BlockType("asset", gettext_lazy("Content asset"), ("asset",)),
        BlockType("cta", gettext_lazy("Button"), ("label", "url")),
        BlockType("spacer", gettext_lazy("Spacer"), ("size",)),
        BlockType("divider", gettext_lazy("Divider"), ()),
    )
}

SPACER_SIZES = ("s", "m", "l")


def block_default(block_type: str) -> dict[str, Any]:
    """A new, empty block of a type (what "add block" inserts in the editor)."""
    defaults: dict[str, dict[str, Any]] = {
        "heading": {"text": "", "level": 2},
        "text": {"html": ""},
        "image": {"src": "", "alt": "", "link": ""},
        "form": {"form": None},
        "asset": {"asset": None},
        "cta": {"label": "", "url": ""},
        "spacer": {"size": "m"},
        "divider": {},
    }
    return {"type": block_type, **defaults[block_type]}


# --- Validation ------------------------------------------------------------------------------


class _Errors:
    """Collects ``blocks.<index>.<field>`` → message, so every problem is named at once."""

    def __init__(self) -> None:
        self.items: dict[str, list[str]] = {}

    def add(self, index: int, block_type: str, field: str, message: str) -> None:
        key = f"blocks.{index}.{field}" if field else f"blocks.{index}"
        # Humans count from 1: "Block 3 (image), alt: …".
        label = str(BLOCK_TYPES[block_type].label) if block_type in BLOCK_TYPES else block_type
        prefix = _("Block %(number)s (%(type)s)") % {"number": index + 1, "type": label}
        text = f"{prefix}, {field}: {message}" if field else f"{prefix}: {message}"
        self.items.setdefault(key, []).append(text)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def url_is_web(url: str, *, https_only: bool = False) -> bool:
    if not url or len(url) > MAX_URL or any(ch.isspace() for ch in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    schemes = ("https",) if https_only else ("http", "https")
    return parts.scheme.lower() in schemes and bool(parts.netloc)


def blocks_clean(blocks: Any, *, unit_id: int) -> list[dict[str, Any]]:
    """The blocks as they will be stored: only known types and fields, text trimmed, rich
    text sanitised, forms and assets checked to belong to ``unit_id``.

    Raises ``ValidationError`` keyed ``blocks.<index>.<field>`` (index from 0) whose
    messages name the block (counted from 1) and the field.
    """
    if not isinstance(blocks, list):
        raise ValidationError({"blocks": [_("Blocks must be a list.")]})
    if len(blocks) > MAX_BLOCKS:
        raise ValidationError(
            {"blocks": [_("A page has at most %(max)s blocks.") % {"max": MAX_BLOCKS}]}
        )
    errors = _Errors()
    cleaned: list[dict[str, Any]] = []
    form_refs: list[tuple[int, int]] = []
    asset_refs: list[tuple[int, int]] = []
    for index, raw in enumerate(blocks):
        if not isinstance(raw, dict):
            errors.add(index, "", "", _("must be an object with a type."))
            continue
        block_type = raw.get("type")
        if not isinstance(block_type, str) or block_type not in BLOCK_TYPES:
            errors.add(
                index,
                str(block_type),
                "type",
                _("unknown block type; use one of: %(types)s.") % {"types": ", ".join(BLOCK_TYPES)},
            )
            continue
        block = _CLEANERS[block_type](raw, index, errors)
        if block_type == "form" and isinstance(block.get("form"), int):
            form_refs.append((index, block["form"]))
        if block_type == "asset" and isinstance(block.get("asset"), int):
            asset_refs.append((index, block["asset"]))
        cleaned.append({"type": block_type, **block})
    _check_refs(Form, form_refs, unit_id, "form", _("no such form in this unit."), errors)
    _check_refs(Asset, asset_refs, unit_id, "asset", _("no such asset in this unit."), errors)
    if errors.items:
        raise ValidationError(errors.items)
    return cleaned


def _check_refs(
    model: type[Form] | type[Asset],
    refs: list[tuple[int, int]],
    unit_id: int,
    field: str,
    message: str,
    errors: _Errors,
) -> None:
    if not refs:
        return
    # Saving a page is already scoped to a unit the editor may edit; the reference must be
    # in that same unit (an id from another unit is "no such").
    found = set(
        model.objects.dangerously_unscoped()
        .filter(unit_id=unit_id, pk__in=[ref for _i, ref in refs])
        .values_list("pk", flat=True)
    )
    for index, ref in refs:
        if ref not in found:
            errors.add(index, field, field, message)


def _clean_heading(raw: dict[str, Any], index: int, errors: _Errors) -> dict[str, Any]:
    text = _text(raw.get("text"))
    if not text:
        errors.add(index, "heading", "text", _("is required."))
    elif len(text) > MAX_TEXT:
        errors.add(index, "heading", "text", _("at most %(max)s characters.") % {"max": MAX_TEXT})
    level = _id(raw.get("level", 2))
    if level not in (1, 2, 3):
        errors.add(index, "heading", "level", _("must be 1, 2 or 3."))
    return {"text": text, "level": level}


def _clean_text(raw: dict[str, Any], index: int, errors: _Errors) -> dict[str, Any]:
    value = raw.get("html")
    html = value if isinstance(value, str) else ""
    if len(html) > MAX_HTML:
        errors.add(index, "text", "html", _("at most %(max)s characters.") % {"max": MAX_HTML})
    return {"html": clean_html(html)}


def _clean_image(raw: dict[str, Any], index: int, errors: _Errors) -> dict[str, Any]:
    src = _text(raw.get("src"))
    file = _text(raw.get("file"))
    alt = _text(raw.get("alt"))
    link = _text(raw.get("link"))
    if file:
        # A name our own upload service returned; never a path outside the upload folder.
        if not file.startswith("pages/") or ".." in file or file.startswith("/"):
            errors.add(index, "image", "file", _("not an uploaded image."))
        src = ""
    elif not src:
        errors.add(index, "image", "src", _("upload an image or give an https URL."))
    elif not url_is_web(src, https_only=True):
        errors.add(index, "image", "src", _("must be an https:// URL."))
    if len(alt) > MAX_TEXT:
        errors.add(index, "image", "alt", _("at most %(max)s characters.") % {"max": MAX_TEXT})
    if link and not url_is_web(link):
        errors.add(index, "image", "link", _("must be an http:// or https:// URL."))
    block: dict[str, Any] = {"src": src, "alt": alt, "link": link}
    if file:
        block["file"] = file
    return block


def _clean_form(raw: dict[str, Any], index: int, errors: _Errors) -> dict[str, Any]:
    form_id = _id(raw.get("form"))
    if form_id is None:
        errors.add(index, "form", "form", _("choose a form."))
    return {"form": form_id}


def _clean_asset(raw: dict[str, Any], index: int, errors: _Errors) -> dict[str, Any]:
    asset_id = _id(raw.get("asset"))
    if asset_id is None:
        errors.add(index, "asset", "asset", _("choose an asset."))
    return {"asset": asset_id}


def _clean_cta(raw: dict[str, Any], index: int, errors: _Errors) -> dict[str, Any]:
    label = _text(raw.get("label"))
    url = _text(raw.get("url"))
    if not label:
        errors.add(index, "cta", "label", _("is required."))
    elif len(label) > MAX_TEXT:
        errors.add(index, "cta", "label", _("at most %(max)s characters.") % {"max": MAX_TEXT})
    if not url_is_web(url):
        errors.add(index, "cta", "url", _("must be an http:// or https:// URL."))
    return {"label": label, "url": url}


def _clean_spacer(raw: dict[str, Any], index: int, errors: _Errors) -> dict[str, Any]:
    size = raw.get("size", "m")
    if size not in SPACER_SIZES:
        errors.add(index, "spacer", "size", _("must be s, m or l."))
    return {"size": size}


def _clean_divider(raw: dict[str, Any], index: int, errors: _Errors) -> dict[str, Any]:
    return {}


_CLEANERS: dict[str, Callable[[dict[str, Any], int, _Errors], dict[str, Any]]] = {
    "heading": _clean_heading,
    "text": _clean_text,
    "image": _clean_image,
    "form": _clean_form,
    "asset": _clean_asset,
    "cta": _clean_cta,
    "spacer": _clean_spacer,
    "divider": _clean_divider,
}


# --- Rendering -------------------------------------------------------------------------------


def _public_path(name: str, key: str, fallback: str) -> str:
    try:
        return reverse(name, args=[key])
    except NoReverseMatch:  # the public page of that area is not installed
        return fallback


def form_embed_url(form_key: str, *, page_id: int, share_token: str = "") -> str:
    params: dict[str, str | int] = {"embed": 1, "lp": page_id}
    if share_token:
        params["sl"] = share_token
    path = _public_path("form-public", form_key, f"/f/{form_key}/")
    return f"{path}?{urlencode(params)}"


def asset_public_url(asset_key: str, *, share_token: str = "") -> str:
    path = _public_path("asset-public", asset_key, f"/a/{asset_key}/")
    return f"{path}?{urlencode({'sl': share_token})}" if share_token else path


def _image_src(block: dict[str, Any]) -> str:
    file = block.get("file") or ""
    if file:
        return str(default_storage.url(file))
    src = str(block.get("src") or "")
    return src if url_is_web(src, https_only=True) else ""


def _web_url(value: Any) -> str:
    url = value if isinstance(value, str) else ""
    return url if url_is_web(url) else ""


def blocks_render_items(
    page: LandingPage, *, share_token: str = "", blocks: Iterable[Any] | None = None
) -> list[dict[str, Any]]:
    """The blocks as template items, with forms and assets loaded (one query each) and
    everything that could carry script re-checked, whatever is stored."""
    source = list(page.blocks if blocks is None else blocks)
    form_ids = {
        _id(b.get("form")) for b in source if isinstance(b, dict) and b.get("type") == "form"
    }
    asset_ids = {
        _id(b.get("asset")) for b in source if isinstance(b, dict) and b.get("type") == "asset"
    }
    form_ids.discard(None)
    asset_ids.discard(None)
    # Public rendering: nobody is logged in; the unit of the page is the scope.
    forms = (
        {
            f.pk: f
            for f in Form.objects.dangerously_unscoped().filter(
                unit_id=page.unit_id, pk__in=form_ids, is_active=True
            )
        }
        if form_ids
        else {}
    )
    assets = (
        {
            a.pk: a
            for a in Asset.objects.dangerously_unscoped().filter(
                unit_id=page.unit_id, pk__in=asset_ids, is_active=True
            )
        }
        if asset_ids
        else {}
    )
    items: list[dict[str, Any]] = []
    for block in source:
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            continue
        kind = block["type"]
        item: dict[str, Any] = {"type": kind}
        if kind == "heading":
            level = _id(block.get("level"))
            item.update(text=str(block.get("text") or ""), level=level if level in (1, 2, 3) else 2)
        elif kind == "text":
            item["html"] = safe_html(str(block.get("html") or ""))
        elif kind == "image":
            src = _image_src(block)
            if not src:
                continue
            item.update(src=src, alt=str(block.get("alt") or ""), link=_web_url(block.get("link")))
        elif kind == "form":
            form = forms.get(_id(block.get("form")))  # type: ignore[arg-type]
            if form is None:
                continue
            item.update(
                form=form,
                src=form_embed_url(form.key, page_id=page.pk or 0, share_token=share_token),
            )
        elif kind == "asset":
            asset = assets.get(_id(block.get("asset")))  # type: ignore[arg-type]
            if asset is None:
                continue
            item.update(
                asset=asset,
                href=asset_public_url(asset.key, share_token=share_token),
                action=_asset_action(asset),
            )
        elif kind == "cta":
            url = _web_url(block.get("url"))
            if not url:
                continue
            item.update(label=str(block.get("label") or ""), url=url)
        elif kind == "spacer":
            size = block.get("size")
            item["size"] = size if size in SPACER_SIZES else "m"
        items.append(item)
    return items


def _asset_action(asset: Asset) -> str:
    if asset.is_gated:
        return _("Get it")
    if asset.kind in (AssetKind.VIDEO, AssetKind.ARTICLE) or not asset.file:
        return _("View")
    return _("Download")


def blocks_html(
    page: LandingPage, request: HttpRequest, *, share_token: str = "", embed_forms: bool = True
) -> SafeString:
    """The page's blocks as HTML for the public page, and for the editor's preview
    (``embed_forms=False``: a form shows as a placeholder, so looking is not a visit)."""
    items = blocks_render_items(page, share_token=share_token)
    html = render_to_string(
        "content/pages/partials/_blocks.html",
        {
            "items": items,
            "embed_forms": embed_forms,
            "has_form": embed_forms and any(i["type"] == "form" for i in items),
        },
        request=request,
    )
    # Rendered by a template with autoescaping; rich text went through safe_html.
    return mark_safe(html)  # noqa: S308
