"""Console pages for contact imports: the list, the upload, one import (preview and mapping
while a draft, then live progress and the result), and the error file."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from apps.contacts.importing.encoding import LABELS as ENCODING_LABELS
from apps.contacts.importing.forms import MappingForm, UploadForm
from apps.contacts.importing.mapping import IGNORE, target_label
from apps.contacts.importing.readers import Preview
from apps.contacts.models import ConsentBasis, ConsentChannel, ContactImport, JobStatus
from apps.contacts.selectors import imports as selectors
from apps.contacts.services import imports as services
from apps.core.models import BusinessUnit
from apps.core.pagination import InvalidCursor, keyset_page
from apps.core.roles import Surface
from apps.core.scoping import visible_unit_ids
from apps.core.web import page_units, surface_context, surface_required, user_of

PERMISSION = services.IMPORT_PERMISSION
PAGE_SIZE = 25


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "core/forbidden.html", {"surface": _("Imports")}, status=403)


def _may_import(request: HttpRequest) -> bool:
    return bool(request.user.is_superuser or visible_unit_ids(request.user, PERMISSION))


def _import_or_404(request: HttpRequest, pk: int) -> ContactImport:
    contact_import = selectors.import_get(user=user_of(request), pk=pk)
    if contact_import is None:
        raise Http404
    return contact_import


def status_label(contact_import: ContactImport) -> str:
    if services.is_draft(contact_import):
        return _("Needs mapping")
    return str(JobStatus(contact_import.status).label)


@surface_required(Surface.CONSOLE)
@require_GET
def import_list(request: HttpRequest) -> HttpResponse:
    if not _may_import(request):
        return _forbidden(request)
    qs = selectors.import_list(user=user_of(request), unit_ids=page_units(request, PERMISSION))
    try:
        page = keyset_page(qs, ordering=("-id",), cursor=request.GET.get("cursor"), size=PAGE_SIZE)
    except InvalidCursor:
        messages.warning(request, _("That page link is no longer valid; showing the newest."))
        page = keyset_page(qs, ordering=("-id",), size=PAGE_SIZE)
    for item in page.items:
        item.status_label = status_label(item)  # type: ignore[attr-defined]
        item.is_draft = services.is_draft(item)  # type: ignore[attr-defined]
    context = surface_context(request, Surface.CONSOLE, page=page)
    return render(request, "contacts/imports/list.html", context)


def _default_unit(request: HttpRequest, units: list[BusinessUnit]) -> int | None:
    picked = request.session.get("unit")
    ids = [u.pk for u in units]
    if picked in ids:
        return int(picked)
    # Prefer a business unit over its group: contacts are usually imported for one unit.
    leaves = [u.pk for u in units if u.parent_id]
    return (leaves or ids)[0] if units else None


@surface_required(Surface.CONSOLE)
@require_http_methods(["GET", "POST"])
def import_new(request: HttpRequest) -> HttpResponse:
    units = selectors.import_units(user=user_of(request))
    if not units:
        return _forbidden(request)
    form = UploadForm(
        request.POST or None,
        request.FILES or None,
        units=units,
        initial={"unit": _default_unit(request, units)},
    )
    if request.method == "POST" and form.is_valid():
        unit = next(u for u in units if u.pk == form.cleaned_data["unit"])
        try:
            contact_import = services.contact_import_create(
                unit=unit, upload=form.cleaned_data["file"], acting_user=user_of(request)
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        except PermissionDenied as exc:
            form.add_error("unit", str(exc))
        else:
            return redirect("contacts:import-detail", pk=contact_import.pk)
    context = surface_context(request, Surface.CONSOLE, form=form)
    return render(request, "contacts/imports/new.html", context, status=400 if form.errors else 200)


def _mapping_form(
    request: HttpRequest, contact_import: ContactImport, preview: Preview
) -> MappingForm:
    user = user_of(request)
    units = selectors.import_units(user=user)
    unit_ids = {u.pk for u in units}
    raw_unit = request.POST.get("unit") or request.GET.get("unit") or ""
    unit_id = int(raw_unit) if raw_unit.isdigit() and int(raw_unit) in unit_ids else None
    unit_id = unit_id or contact_import.unit_id
    fields = selectors.unit_custom_fields(user=user, unit_id=unit_id)
    offer = selectors.mapping_offer(
        user=user, unit_id=unit_id, header=preview.header, custom_fields=fields
    )
    form = MappingForm(
        request.POST if request.method == "POST" else None,
        header=preview.header,
        units=units,
        tags=selectors.unit_tags(user=user, unit_id=unit_id),
        custom_fields=fields,
        offer=offer.mapping,
        initial={"unit": unit_id},
    )
    form.remembered = offer.remembered  # type: ignore[attr-defined]
    return form


def _settings(request: HttpRequest, contact_import: ContactImport) -> dict[str, Any]:
    """What a started import was told to do, in words."""
    mapping = contact_import.mapping or {}
    fields = selectors.unit_custom_fields(user=user_of(request), unit_id=contact_import.unit_id)
    required = set(mapping.get("required", []))
    columns = mapping.get("columns", {})
    mapped = [
        (column, target_label(columns[column], fields), column in required)
        for column in mapping.get("header") or list(columns)
        if columns.get(column, IGNORE) != IGNORE
    ]
    tags = [
        t
        for t in selectors.unit_tags(user=user_of(request), unit_id=contact_import.unit_id)
        if t.pk in set(contact_import.tag_ids or [])
    ]
    consent = contact_import.consent or {}
    basis = consent.get("basis")
    return {
        "mapped": mapped,
        "tags": tags,
        "consent_label": ConsentBasis(basis).label if basis in ConsentBasis.values else "",
        "consent_channels": [
            ConsentChannel(c).label
            for c in consent.get("channels", [])
            if c in ConsentChannel.values
        ],
    }


@surface_required(Surface.CONSOLE)
@require_http_methods(["GET", "POST"])
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    contact_import = _import_or_404(request, pk)
    context = surface_context(
        request,
        Surface.CONSOLE,
        item=contact_import,
        status_label=status_label(contact_import),
        encoding_label=ENCODING_LABELS.get(contact_import.encoding, contact_import.encoding),
    )
    if not services.is_draft(contact_import):
        if request.method == "POST":
            messages.warning(request, _("This import has already started."))
            return redirect("contacts:import-detail", pk=contact_import.pk)
        context.update(_settings(request, contact_import))
        return render(request, "contacts/imports/detail.html", context)
    preview = selectors.import_preview(contact_import=contact_import)
    form = _mapping_form(request, contact_import, preview)
    if request.method == "POST" and form.is_valid():
        units = selectors.import_units(user=user_of(request))
        unit = next(u for u in units if u.pk == form.cleaned_data["unit"])
        try:
            services.contact_import_start(
                contact_import=contact_import,
                mapping=form.mapping(),
                unit=unit,
                tag_ids=form.cleaned_data["tags"],
                consent=form.consent(),
                opens_lead=form.cleaned_data.get("opens_lead") or "",
                acting_user=user_of(request),
            )
        except ValidationError as exc:
            for errors in exc.message_dict.values():
                form.add_error(None, errors)
        except PermissionDenied as exc:
            form.add_error("unit", str(exc))
        else:
            messages.success(request, _("Import started. You can leave this page; it keeps going."))
            return redirect("contacts:import-detail", pk=contact_import.pk)
    samples = [
        [cells[i] for _number, cells in preview.rows if cells[i].strip()][:3]
        for i in range(len(preview.header))
    ]
    columns = [(*column, samples[i]) for i, column in enumerate(form.columns())]
    context.update(form=form, preview=preview, columns=columns)
    status = 400 if request.method == "POST" else 200
    return render(request, "contacts/imports/detail.html", context, status=status)


@surface_required(Surface.CONSOLE)
@require_GET
def import_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The status panel alone, which the page polls every second while the job runs."""
    contact_import = _import_or_404(request, pk)
    context = {"item": contact_import, "status_label": status_label(contact_import)}
    return render(request, "contacts/imports/_progress.html", context)


@surface_required(Surface.CONSOLE)
@require_GET
def import_errors(request: HttpRequest, pk: int) -> FileResponse:
    contact_import = _import_or_404(request, pk)
    if not contact_import.error_file:
        raise Http404
    stem = contact_import.original_name.rsplit(".", 1)[0]
    return FileResponse(
        contact_import.error_file.open("rb"),
        as_attachment=True,
        filename=f"{stem}-errors.csv",
        content_type="text/csv; charset=utf-8",
    )


urlpatterns = [
    path("imports/", import_list, name="imports"),
    path("imports/new/", import_new, name="import-new"),
    path("imports/<int:pk>/", import_detail, name="import-detail"),
    path("imports/<int:pk>/progress/", import_progress, name="import-progress"),
    path("imports/<int:pk>/errors.csv", import_errors, name="import-errors"),
]
