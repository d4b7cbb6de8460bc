"""Console pages for exports and data-subject requests.

* ``/console/exports/``: the user's export jobs (progress polled with htmx) and a form
  to start one. The contact list links here with its own filter query string
  (``q``, ``tag``, ``source``, ``unit``, ``field`` + ``value``), which fills the form.
* ``/console/exports/<id>/download/``: the file, for its creator and the unit's admins.
* ``/console/contacts/<id>/subject-export/``: everything we hold on the person as JSON.
* ``/console/contacts/<id>/erase/``: erasure, after a confirmation. Administrators only:
  it cannot be undone and removes the person from every unit of the group, so it is for
  whoever handles data-protection requests, not a routine marketing action.

An id in a URL is never enough: jobs and contacts are fetched through the user's scope,
and anything outside it is a 404.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from apps.contacts.models import ContactExport, ContactStatus, JobStatus
from apps.contacts.selectors.exports import (
    ADMIN,
    EXPORT,
    VIEW,
    ExportFilterOptions,
    contact_for_subject_request,
    export_filter_options,
    exports_visible,
)
from apps.contacts.services import retention as _retention  # noqa: F401 - its audit labels
from apps.contacts.services.exports import FILE_TYPES, contact_export_create
from apps.contacts.services.subject import (
    ErasureError,
    contact_erase,
    contact_subject_export_record,
    contact_subject_export_stream,
)
from apps.core.models import User
from apps.core.pagination import InvalidCursor, keyset_page
from apps.core.roles import Surface
from apps.core.scoping import visible_unit_ids
from apps.core.web import page_units, surface_context, surface_required, user_of

PAGE_SIZE = 20
FILE_TYPE_LABELS = {"csv": gettext_lazy("CSV (UTF-8)"), "xlsx": gettext_lazy("Excel (XLSX)")}


def _allowed(user: User, permission: str) -> bool:
    return user.is_superuser or bool(visible_unit_ids(user, permission))


def _forbidden(request: HttpRequest, what: str) -> HttpResponse:
    return render(request, "core/forbidden.html", {"surface": what}, status=403)


# --- The export form -----------------------------------------------------------------------


class ExportForm(forms.Form):
    """The contact list's filters, plus the file type. Choices are the user's own units'
    tags, channels and fields, so a forged id fails validation."""

    q = forms.CharField(label=gettext_lazy("Search"), required=False, max_length=200)
    unit = forms.TypedChoiceField(
        label=gettext_lazy("Business unit"), required=False, coerce=int, empty_value=None
    )
    tag = forms.TypedChoiceField(
        label=gettext_lazy("Tag"), required=False, coerce=int, empty_value=None
    )
    source = forms.TypedChoiceField(
        label=gettext_lazy("Source channel"), required=False, coerce=int, empty_value=None
    )
    field = forms.TypedChoiceField(
        label=gettext_lazy("Custom field"), required=False, coerce=int, empty_value=None
    )
    value = forms.CharField(label=gettext_lazy("Field value"), required=False, max_length=200)
    file_type = forms.ChoiceField(
        label=gettext_lazy("File type"),
        choices=[(t, FILE_TYPE_LABELS[t]) for t in FILE_TYPES],
        initial="xlsx",
    )

    def __init__(self, *args: Any, options: ExportFilterOptions, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        anything = [("", _("Any"))]
        self.fields["unit"].choices = anything + [  # type: ignore[attr-defined]
            (u.pk, f"— {u.name}" if u.parent_id else u.name) for u in options.units
        ]
        self.fields["tag"].choices = anything + [  # type: ignore[attr-defined]
            (t.pk, f"{t.name} · {t.unit.name}") for t in options.tags
        ]
        self.fields["source"].choices = anything + [  # type: ignore[attr-defined]
            (c.pk, c.name) for c in options.channels
        ]
        self.fields["field"].choices = anything + [  # type: ignore[attr-defined]
            (f.pk, f"{f.label} · {f.unit.name}") for f in options.fields
        ]
        self.fields["q"].widget.attrs["placeholder"] = _("Name, company, phone or email")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("field") and not (data.get("value") or "").strip():
            self.add_error("value", _("Enter the value to filter the custom field by."))
        return data

    def filters(self) -> dict[str, Any]:
        """The service's filter vocabulary."""
        data = self.cleaned_data
        filters: dict[str, Any] = {
            key: data[key] for key in ("q", "unit", "tag", "source") if data.get(key)
        }
        if data.get("field"):
            filters["custom"] = {str(data["field"]): data["value"].strip()}
        return filters


def _initial(request: HttpRequest) -> dict[str, Any]:
    """The contact list's filters from the query string; the unit switcher's unit when
    the list named none."""
    names = ("q", "unit", "tag", "source", "field", "value")
    initial: dict[str, Any] = {k: request.GET[k] for k in names if request.GET.get(k)}
    if "unit" not in initial:
        selected = page_units(request, EXPORT)
        if selected is not None and len(selected) == 1:
            initial["unit"] = next(iter(selected))
    return initial


def _describe(filters: dict[str, Any], options: ExportFilterOptions) -> list[str]:
    """The filters of a job in words, for the list ("Tag: VIP")."""
    units = {u.pk: u.name for u in options.units}
    tags = {t.pk: t.name for t in options.tags}
    channels = {c.pk: c.name for c in options.channels}
    fields = {f.storage_key: f.label for f in options.fields}
    parts = []
    if filters.get("q"):
        parts.append(_("Search: %(v)s") % {"v": filters["q"]})
    for key, names, label in (
        ("unit", units, _("Business unit")),
        ("tag", tags, _("Tag")),
        ("source", channels, _("Source channel")),
    ):
        if filters.get(key):
            parts.append(f"{label}: {names.get(filters[key], '#' + str(filters[key]))}")
    for key, value in (filters.get("custom") or {}).items():
        parts.append(f"{fields.get(str(key), '#' + str(key))}: {value}")
    return parts


def _decorate(exports: list[ContactExport], options: ExportFilterOptions) -> None:
    for export in exports:
        export.filter_words = _describe(export.filters or {}, options)  # type: ignore[attr-defined]


@surface_required(Surface.CONSOLE)
@require_http_methods(["GET", "POST"])
def export_list(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    if not _allowed(user, EXPORT):
        return _forbidden(request, _("Exports"))
    options = export_filter_options(user=user)
    if request.method == "POST":
        form = ExportForm(request.POST, options=options)
        if form.is_valid():
            try:
                export = contact_export_create(
                    acting_user=user,
                    filters=form.filters(),
                    file_type=form.cleaned_data["file_type"],
                )
            except ValidationError as exc:
                for name, errors in exc.message_dict.items():
                    form.add_error(name if name in form.fields else None, errors)
            except PermissionDenied:
                return _forbidden(request, _("Exports"))
            else:
                messages.success(
                    request,
                    _("Export #%(id)s started. It appears below; download it when it is done.")
                    % {"id": export.pk},
                )
                return redirect("contacts:exports")
    else:
        form = ExportForm(initial=_initial(request), options=options)
    try:
        page = keyset_page(
            exports_visible(user=user), cursor=request.GET.get("cursor"), size=PAGE_SIZE
        )
    except InvalidCursor:
        page = keyset_page(exports_visible(user=user), size=PAGE_SIZE)
    _decorate(page.items, options)
    context = surface_context(request, Surface.CONSOLE, form=form, page=page)
    status = 400 if form.errors else 200
    return render(request, "contacts/exports/list.html", context, status=status)


def _visible_export(request: HttpRequest, pk: int) -> ContactExport:
    export = exports_visible(user=user_of(request)).filter(pk=pk).first()
    if export is None:
        raise Http404
    return export


@surface_required(Surface.CONSOLE)
@require_GET
def export_row(request: HttpRequest, pk: int) -> HttpResponse:
    """One job's row, re-rendered while it runs (htmx polls it)."""
    export = _visible_export(request, pk)
    _decorate([export], export_filter_options(user=user_of(request)))
    return render(request, "contacts/exports/partials/_row.html", {"export": export})


@surface_required(Surface.CONSOLE)
@require_GET
def export_download(request: HttpRequest, pk: int) -> HttpResponseBase:
    export = _visible_export(request, pk)
    if export.status != JobStatus.DONE or not export.file:
        raise Http404
    name = f"contacts-{export.pk}.{export.file_type}"
    return FileResponse(export.file.open("rb"), as_attachment=True, filename=name)


# --- Data-subject requests -----------------------------------------------------------------


def _contact_url(pk: int) -> str:
    # The contact page belongs to the contact list's module; fall back if it is absent.
    for name, args in (("contacts:detail", [pk]), ("contacts:list", []), ("core:home", [])):
        try:
            return reverse(name, args=args)
        except NoReverseMatch:
            continue
    return "/"


@surface_required(Surface.CONSOLE)
@require_GET
def contact_subject_export_view(request: HttpRequest, pk: int) -> HttpResponseBase:
    user = user_of(request)
    contact = contact_for_subject_request(user=user, pk=pk, permission=EXPORT)
    if contact is None:
        raise Http404
    contact_subject_export_record(contact=contact, acting_user=user)
    response = StreamingHttpResponse(
        contact_subject_export_stream(contact), content_type="application/json; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="contact-{contact.pk}-data.json"'
    return response


class EraseForm(forms.Form):
    confirm = forms.BooleanField(
        label=gettext_lazy(
            "I understand that this removes the person's details from every business unit "
            "and cannot be undone."
        ),
        required=True,
    )


@surface_required(Surface.CONSOLE)
@require_http_methods(["GET", "POST"])
def contact_erase_view(request: HttpRequest, pk: int) -> HttpResponse:
    user = user_of(request)
    contact = contact_for_subject_request(user=user, pk=pk, permission=ADMIN)
    if contact is None:
        if contact_for_subject_request(user=user, pk=pk, permission=VIEW) is None:
            raise Http404
        return _forbidden(request, _("Erasure"))
    form = EraseForm(request.POST if request.method == "POST" else None)
    if contact.status == ContactStatus.ERASED:
        messages.info(request, _("This person was erased already."))
        return redirect(_contact_url(contact.pk))
    if request.method == "POST" and form.is_valid():
        try:
            result = contact_erase(contact=contact, acting_user=user)
        except ErasureError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                _(
                    "Contact #%(id)s erased: %(identities)d identifiers and %(activities)d "
                    "activities removed. Their phone and email cannot be added again."
                )
                % {
                    "id": contact.pk,
                    "identities": result.identities,
                    "activities": result.activities,
                },
            )
            return redirect(_contact_url(contact.pk))
    context = surface_context(
        request, Surface.CONSOLE, form=form, contact=contact, contact_url=_contact_url(contact.pk)
    )
    return render(
        request, "contacts/exports/erase_confirm.html", context, status=400 if form.errors else 200
    )


urlpatterns = [
    path("exports/", export_list, name="exports"),
    path("exports/<int:pk>/row/", export_row, name="export-row"),
    path("exports/<int:pk>/download/", export_download, name="export-download"),
    path(
        "contacts/<int:pk>/subject-export/",
        contact_subject_export_view,
        name="contact-subject-export",
    ),
    path("contacts/<int:pk>/erase/", contact_erase_view, name="contact-erase"),
]
