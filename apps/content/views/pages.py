"""Console: landing pages. The list with per-page visits, unique visitors, submissions and
conversion rate over a period; the editor (settings, blocks, preview); publish,
unpublish, duplicate.

The block editor works with plain POST round trips: the whole page's blocks travel in
every POST (``b-<index>-<field>``), so adding, moving or removing a block keeps what was
typed in the others; those changes are kept in the form until **Save** writes them.
Reading needs ``content.view``; every write needs ``content.edit`` in the page's unit.
Another unit's page is a 404.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from apps.content.blocks import BLOCK_TYPES, SPACER_SIZES, block_default, blocks_html
from apps.content.models import LandingPage, PageStatus
from apps.content.selectors import pages as selectors
from apps.content.services import pages as services
from apps.core.models import BusinessUnit, User
from apps.core.pagination import InvalidCursor, KeysetPage, keyset_page
from apps.core.roles import Surface
from apps.core.scoping import visible_unit_ids
from apps.core.web import page_units, surface_context, surface_required, user_of

VIEW = selectors.VIEW
EDIT = selectors.EDIT


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "core/forbidden.html", {"surface": _("Landing pages")}, status=403)


def _can_edit(user: User, unit_id: int) -> bool:
    return unit_id in visible_unit_ids(user, EDIT)


def period_of(request: HttpRequest) -> int:
    raw = request.GET.get("days", "")
    return int(raw) if raw.isdigit() and int(raw) in selectors.PERIODS else selectors.DEFAULT_DAYS


def first_page(request: HttpRequest, qs: Any) -> KeysetPage[Any]:
    try:
        return keyset_page(qs, cursor=request.GET.get("cursor") or None, size=selectors.PAGE_SIZE)
    except InvalidCursor:
        messages.warning(request, _("That page link is no longer valid; showing the first page."))
        return keyset_page(qs, size=selectors.PAGE_SIZE)


def add_errors(form: forms.Form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


# --- Forms ---------------------------------------------------------------------------------


class PageCreateForm(forms.Form):
    unit = forms.TypedChoiceField(label=gettext_lazy("Business unit"), coerce=int)
    title = forms.CharField(label=gettext_lazy("Title"), max_length=services.TITLE_MAX)
    slug = forms.CharField(
        label=gettext_lazy("Address"),
        max_length=services.SLUG_MAX,
        help_text=gettext_lazy("The page will live at /p/<address>/: a–z, 0–9 and hyphens."),
    )

    def __init__(self, *args: Any, units: list[BusinessUnit], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.units = {u.pk: u for u in units}
        unit_field: Any = self.fields["unit"]
        unit_field.choices = [(u.pk, u.name) for u in units]
        if len(units) == 1:
            unit_field.initial = units[0].pk

    def chosen_unit(self) -> BusinessUnit:
        return self.units[self.cleaned_data["unit"]]


class PageSettingsForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Title"), max_length=services.TITLE_MAX)
    slug = forms.CharField(
        label=gettext_lazy("Address"),
        max_length=services.SLUG_MAX,
        help_text=gettext_lazy("/p/<address>/: lowercase a–z, 0–9 and hyphens."),
    )
    seo_title = forms.CharField(
        label=gettext_lazy("SEO title"),
        max_length=services.SEO_TITLE_MAX,
        required=False,
        help_text=gettext_lazy("Shown in the browser tab and search results; the title if empty."),
    )
    seo_description = forms.CharField(
        label=gettext_lazy("SEO description"),
        max_length=services.SEO_DESCRIPTION_MAX,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    channel = forms.TypedChoiceField(
        label=gettext_lazy("Channel"), required=False, coerce=int, empty_value=None
    )
    campaign = forms.TypedChoiceField(
        label=gettext_lazy("Campaign"), required=False, coerce=int, empty_value=None
    )

    def __init__(self, *args: Any, channels: list[Any], campaigns: list[Any], **kwargs: Any):
        super().__init__(*args, **kwargs)
        none = [("", _("(none)"))]
        channel_field: Any = self.fields["channel"]
        channel_field.choices = none + [(c.pk, c.name) for c in channels]
        campaign_field: Any = self.fields["campaign"]
        campaign_field.choices = none + [(c.pk, c.name) for c in campaigns]
        channel_field.help_text = _("Visits without UTM in their link are credited to these.")


# --- The list ------------------------------------------------------------------------------


@surface_required(Surface.CONSOLE)
@require_GET
def page_list(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    if not user.is_superuser and not visible_unit_ids(user, VIEW):
        return _forbidden(request)
    days = period_of(request)
    q = request.GET.get("q", "").strip()[:100]
    status = request.GET.get("status", "")
    status = status if status in PageStatus.values else ""
    qs = selectors.pages_of(user=user, unit_ids=page_units(request, VIEW), q=q, status=status)
    page = first_page(request, qs)
    stats = selectors.page_stats(
        user=user, page_ids=[p.pk for p in page.items], since=selectors.period_start(days)
    )
    rows = [{"page": p, "stats": stats[p.pk]} for p in page.items]
    units = selectors.editable_units(user=user, narrowed=page_units(request, EDIT))
    kept = urlencode([(k, v) for k, v in (("q", q), ("status", status), ("days", days)) if v])
    context = surface_context(
        request,
        Surface.CONSOLE,
        page=page,
        rows=rows,
        days=days,
        periods=selectors.PERIODS,
        q=q,
        status=status,
        statuses=PageStatus.choices,
        filter_query=kept + "&" if kept else "",
        create_form=PageCreateForm(units=units) if units else None,
    )
    return render(request, "content/pages/list.html", context)


@surface_required(Surface.CONSOLE)
@require_POST
def page_create(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    units = selectors.editable_units(user=user)
    if not units:
        return _forbidden(request)
    form = PageCreateForm(request.POST, units=units)
    if form.is_valid():
        data = form.cleaned_data
        try:
            page = services.page_create(
                unit=form.chosen_unit(), title=data["title"], slug=data["slug"], acting_user=user
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(
                request,
                _("Page “%(title)s” created. Add its blocks below.") % {"title": page.title},
            )
            return redirect("content:page-edit", page.pk)
    context = surface_context(request, Surface.CONSOLE, create_form=form)
    return render(request, "content/pages/new.html", context, status=400)


# --- The editor ----------------------------------------------------------------------------


def _page_or_404(request: HttpRequest, pk: int, permission: str = VIEW) -> LandingPage:
    page = selectors.page_get(user=user_of(request), pk=pk, permission=permission)
    if page is None:
        raise Http404
    return page


def _posted_blocks(request: HttpRequest) -> list[dict[str, Any]]:
    """The blocks as the editor posted them (checked later by the service)."""
    raw_count = request.POST.get("block_count", "0")
    count = min(int(raw_count), 200) if raw_count.isdigit() else 0
    blocks: list[dict[str, Any]] = []
    for index in range(count):
        kind = request.POST.get(f"b-{index}-type", "")
        if kind not in BLOCK_TYPES:
            continue
        block: dict[str, Any] = {"type": kind}
        for field in BLOCK_TYPES[kind].fields:
            value = request.POST.get(f"b-{index}-{field}")
            if value is not None:
                block[field] = value
        blocks.append(block)
    return blocks


def _apply_op(blocks: list[dict[str, Any]], op: str, add_type: str) -> bool:
    """Add, move or remove a block in place; whether anything changed."""
    if op == "add" and add_type in BLOCK_TYPES:
        blocks.append(block_default(add_type))
        return True
    verb, _sep, raw = op.partition(":")
    if not raw.isdigit() or int(raw) >= len(blocks):
        return False
    index = int(raw)
    if verb == "remove":
        blocks.pop(index)
        return True
    if verb == "up" and index > 0:
        blocks[index - 1], blocks[index] = blocks[index], blocks[index - 1]
        return True
    if verb == "down" and index < len(blocks) - 1:
        blocks[index + 1], blocks[index] = blocks[index], blocks[index + 1]
        return True
    return False


def _block_errors(exc: ValidationError) -> tuple[dict[int, list[str]], dict[str, list[str]]]:
    """Split a service error into per-block messages and the rest."""
    by_block: dict[int, list[str]] = {}
    rest: dict[str, list[str]] = {}
    for key, errors in exc.message_dict.items():
        parts = key.split(".")
        if len(parts) >= 2 and parts[0] == "blocks" and parts[1].isdigit():
            by_block.setdefault(int(parts[1]), []).extend(errors)
        else:
            rest.setdefault(key, []).extend(errors)
    return by_block, rest


def _editor_context(
    request: HttpRequest,
    page: LandingPage,
    *,
    form: PageSettingsForm,
    blocks: list[dict[str, Any]],
    block_errors: dict[int, list[str]] | None = None,
    unsaved: bool = False,
) -> dict[str, Any]:
    user = user_of(request)
    days = period_of(request)
    stats = selectors.page_stats(user=user, page_ids=[page.pk], since=selectors.period_start(days))[
        page.pk
    ]
    forms_of_unit = list(selectors.unit_forms(user=user, unit_id=page.unit_id)[:200])
    assets_of_unit = list(selectors.unit_assets(user=user, unit_id=page.unit_id)[:500])
    errors = block_errors or {}
    items = []
    for index, block in enumerate(blocks):
        items.append(
            {
                "index": index,
                "type": block.get("type"),
                "label": BLOCK_TYPES[block["type"]].label,
                "block": block,
                "errors": errors.get(index, []),
                "first": index == 0,
                "last": index == len(blocks) - 1,
            }
        )
    return surface_context(
        request,
        Surface.CONSOLE,
        lp=page,
        form=form,
        editor_blocks=items,
        block_count=len(blocks),
        block_types=[(key, t.label) for key, t in BLOCK_TYPES.items()],
        spacer_sizes=SPACER_SIZES,
        unit_forms=forms_of_unit,
        unit_assets=assets_of_unit,
        unsaved=unsaved,
        can_edit=_can_edit(user, page.unit_id),
        preview=blocks_html(page, request, embed_forms=False),
        public_url=request.build_absolute_uri(reverse("page-public", args=[page.slug])),
        stats=stats,
        days=days,
    )


def _settings_form(request: HttpRequest, page: LandingPage, data: Any = None) -> PageSettingsForm:
    user = user_of(request)
    return PageSettingsForm(
        data,
        initial={
            "title": page.title,
            "slug": page.slug,
            "seo_title": page.seo_title,
            "seo_description": page.seo_description,
            "channel": page.channel_id,
            "campaign": page.campaign_id,
        },
        channels=list(selectors.unit_channels(user=user, unit_id=page.unit_id)[:200]),
        campaigns=list(selectors.unit_campaigns(user=user, unit_id=page.unit_id)[:200]),
    )


@surface_required(Surface.CONSOLE)
def page_edit(request: HttpRequest, pk: int) -> HttpResponse:
    user = user_of(request)
    page = _page_or_404(request, pk)
    if request.method != "POST":
        form = _settings_form(request, page)
        return render(
            request,
            "content/pages/edit.html",
            _editor_context(request, page, form=form, blocks=list(page.blocks or [])),
        )
    if not _can_edit(user, page.unit_id):
        return _forbidden(request)
    form = _settings_form(request, page, request.POST)
    blocks = _posted_blocks(request)
    block_errors: dict[int, list[str]] = {}
    # Images are stored as they arrive (checked first), so a round trip keeps them.
    for index, block in enumerate(blocks):
        upload = request.FILES.get(f"b-{index}-upload")
        if block["type"] == "image" and upload is not None:
            try:
                block["file"] = services.page_image_store(
                    unit=page.unit, upload=upload, acting_user=user
                )
                block["src"] = ""
            except ValidationError as exc:
                block_errors.setdefault(index, []).extend(exc.messages)
    op = request.POST.get("op", "save")
    if op != "save":
        _apply_op(blocks, op, request.POST.get("add_type", ""))
        form.is_valid()  # show field problems now, but keep what was typed
        context = _editor_context(
            request, page, form=form, blocks=blocks, block_errors=block_errors, unsaved=True
        )
        return render(request, "content/pages/edit.html", context)
    if form.is_valid() and not block_errors:
        data = form.cleaned_data
        channels = {c.pk: c for c in selectors.unit_channels(user=user, unit_id=page.unit_id)}
        campaigns = {c.pk: c for c in selectors.unit_campaigns(user=user, unit_id=page.unit_id)}
        try:
            services.page_update(
                page=page,
                title=data["title"],
                slug=data["slug"],
                seo_title=data["seo_title"],
                seo_description=data["seo_description"],
                blocks=blocks,
                channel=channels.get(data["channel"]) if data["channel"] else None,
                campaign=campaigns.get(data["campaign"]) if data["campaign"] else None,
                acting_user=user,
            )
        except ValidationError as exc:
            by_block, rest = _block_errors(exc)
            block_errors.update(by_block)
            if rest:
                add_errors(form, ValidationError(rest))
        else:
            messages.success(request, _("Page “%(title)s” saved.") % {"title": page.title})
            return redirect("content:page-edit", page.pk)
    if block_errors:
        form.add_error(None, _("Some blocks need attention; see the messages on them."))
    context = _editor_context(
        request, page, form=form, blocks=blocks, block_errors=block_errors, unsaved=True
    )
    return render(request, "content/pages/edit.html", context, status=400)


def _write(request: HttpRequest, pk: int) -> LandingPage | HttpResponse:
    page = _page_or_404(request, pk)
    if not _can_edit(user_of(request), page.unit_id):
        return _forbidden(request)
    return page


@surface_required(Surface.CONSOLE)
@require_POST
def page_publish(request: HttpRequest, pk: int) -> HttpResponse:
    page = _write(request, pk)
    if isinstance(page, HttpResponse):
        return page
    services.page_publish(page=page, acting_user=user_of(request))
    messages.success(
        request,
        _("Published: the page is live at /p/%(slug)s/.") % {"slug": page.slug},
    )
    return redirect("content:page-edit", page.pk)


@surface_required(Surface.CONSOLE)
@require_POST
def page_unpublish(request: HttpRequest, pk: int) -> HttpResponse:
    page = _write(request, pk)
    if isinstance(page, HttpResponse):
        return page
    services.page_unpublish(page=page, acting_user=user_of(request))
    messages.success(request, _("Unpublished: the public address now answers “not found”."))
    return redirect("content:page-edit", page.pk)


@surface_required(Surface.CONSOLE)
@require_POST
def page_duplicate(request: HttpRequest, pk: int) -> HttpResponse:
    page = _write(request, pk)
    if isinstance(page, HttpResponse):
        return page
    copy = services.page_duplicate(page=page, acting_user=user_of(request))
    messages.success(request, _("Copied as a draft at /p/%(slug)s/.") % {"slug": copy.slug})
    return redirect("content:page-edit", copy.pk)


@surface_required(Surface.CONSOLE)
@require_GET
def page_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """Open the public page with a signed preview token (editors only)."""
    page = _write(request, pk)
    if isinstance(page, HttpResponse):
        return page
    token = services.page_preview_token(page=page, user_id=user_of(request).pk)
    url = reverse("page-public", args=[page.slug])
    return HttpResponseRedirect(f"{url}?{urlencode({'preview': token})}")


urlpatterns = [
    path("console/pages/", page_list, name="pages"),
    path("console/pages/new/", page_create, name="page-new"),
    path("console/pages/<int:pk>/", page_edit, name="page-edit"),
    path("console/pages/<int:pk>/publish/", page_publish, name="page-publish"),
    path("console/pages/<int:pk>/unpublish/", page_unpublish, name="page-unpublish"),
    path("console/pages/<int:pk>/duplicate/", page_duplicate, name="page-duplicate"),
    path("console/pages/<int:pk>/preview/", page_preview, name="page-preview"),
]
