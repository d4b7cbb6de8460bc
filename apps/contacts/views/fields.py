"""Console: a unit's custom fields (客户类型 with this unit's own options, and so on).

Fields are created, relabelled, reordered and deactivated here; their key and type stay
(stored values are read by them). An option some contact still holds cannot be removed:
the page shows how many contacts hold each option.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from apps.contacts.models import CustomField, CustomFieldType
from apps.contacts.selectors import config as selectors
from apps.contacts.services import config as services
from apps.contacts.views.tags import (
    add_errors,
    back_to,
    configurable_units,
    first_page,
    forbidden,
    pick_unit,
)
from apps.core.roles import Surface
from apps.core.web import surface_context, surface_required, user_of

CHOICE_TYPES = (CustomFieldType.CHOICE, CustomFieldType.MULTI_CHOICE)


class OptionsField(forms.CharField):
    """Options typed one per line as ``value | label`` (or just a label)."""

    widget = forms.Textarea(attrs={"rows": 6, "class": "code"})

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value) or ""
        options = []
        for line in text.splitlines():
            if not line.strip():
                continue
            value_part, sep, label_part = line.partition("|")
            value_part = value_part.strip()
            options.append(
                {"value": value_part, "label": label_part.strip() if sep else value_part}
            )
        return options

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return "\n".join(f"{o.get('value')} | {o.get('label')}" for o in value)
        return value


OPTIONS_HELP = gettext_lazy(
    "Choice fields only: one option per line, as “value | label”, e.g. “ka | KA key account”. "
    "The value is what is stored and what imports may use; the label is what people see."
)


class NewFieldForm(forms.Form):
    label = forms.CharField(label=gettext_lazy("Label"), max_length=100)
    key = forms.CharField(
        label=gettext_lazy("Key"),
        max_length=50,
        help_text=gettext_lazy("Letters, digits, - and _; names the column in imports."),
    )
    field_type = forms.ChoiceField(label=gettext_lazy("Type"), choices=CustomFieldType.choices)
    options = OptionsField(label=gettext_lazy("Options"), required=False, help_text=OPTIONS_HELP)


class EditFieldForm(forms.Form):
    label = forms.CharField(label=gettext_lazy("Label"), max_length=100)
    options = OptionsField(label=gettext_lazy("Options"), required=False, help_text=OPTIONS_HELP)
    is_active = forms.BooleanField(
        label=gettext_lazy("Active"),
        required=False,
        help_text=gettext_lazy(
            "An inactive field keeps its stored values but is no longer offered in forms "
            "and imports."
        ),
    )


def _option_rows(field: CustomField, usage: dict[tuple[int, str], int]) -> list[dict[str, Any]]:
    return [
        {
            "value": str(o.get("value")),
            "label": str(o.get("label")),
            "count": usage.get((field.pk, str(o.get("value"))), 0),
        }
        for o in field.options
    ]


@surface_required(Surface.CONSOLE)
def field_list(request: HttpRequest) -> HttpResponse:
    units = configurable_units(request)
    if not units and not selectors.configurable_units(user=user_of(request)):
        return forbidden(request, _("Custom fields"))
    unit = pick_unit(request, units)
    form = NewFieldForm(request.POST or None)
    context = surface_context(request, Surface.CONSOLE, units=units, unit=unit, form=form)
    if unit is None:
        return render(request, "contacts/fields/list.html", context)
    user = user_of(request)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            field = services.custom_field_create(
                unit=unit,
                key=data["key"],
                label=data["label"],
                field_type=data["field_type"],
                options=data["options"],
                acting_user=user,
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(request, _("Field “%(label)s” created.") % {"label": field.label})
            return back_to("contacts:fields", unit.pk)
    page = first_page(
        request, selectors.custom_fields_of(user=user, unit_id=unit.pk), ("position", "id")
    )
    usage = selectors.options_usage(fields=page.items)
    context.update(
        page=page,
        rows=[{"field": f, "options": _option_rows(f, usage)} for f in page.items],
        count_limit=selectors.COUNT_LIMIT,
        filter_query=f"unit={unit.pk}&",
    )
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "contacts/fields/list.html", context, status=status)


def _field_or_404(request: HttpRequest, pk: int) -> CustomField:
    field = selectors.custom_field_get(user=user_of(request), pk=pk)
    if field is None:
        raise Http404
    return field


@surface_required(Surface.CONSOLE)
def field_edit(request: HttpRequest, pk: int) -> HttpResponse:
    field = _field_or_404(request, pk)
    form = EditFieldForm(
        request.POST or None,
        initial={"label": field.label, "options": field.options, "is_active": field.is_active},
    )
    if field.type not in CHOICE_TYPES:
        del form.fields["options"]
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.custom_field_update(
                field=field,
                label=data["label"],
                options=data.get("options") if field.type in CHOICE_TYPES else None,
                is_active=data["is_active"],
                acting_user=user_of(request),
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(request, _("Field “%(label)s” saved.") % {"label": data["label"]})
            return back_to("contacts:fields", field.unit_id)
        field.refresh_from_db()
    usage = selectors.options_usage(fields=[field])
    context = surface_context(
        request,
        Surface.CONSOLE,
        unit=field.unit,
        field=field,
        form=form,
        options=_option_rows(field, usage),
        count_limit=selectors.COUNT_LIMIT,
    )
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "contacts/fields/form.html", context, status=status)


@surface_required(Surface.CONSOLE)
@require_POST
def field_move(request: HttpRequest, pk: int) -> HttpResponse:
    field = _field_or_404(request, pk)
    offset = -1 if request.POST.get("direction") == "up" else 1
    services.custom_field_move(field=field, offset=offset, acting_user=user_of(request))
    return back_to("contacts:fields", field.unit_id)


urlpatterns = [
    path("fields/", field_list, name="fields"),
    path("fields/<int:pk>/edit/", field_edit, name="field-edit"),
    path("fields/<int:pk>/move/", field_move, name="field-move"),
]
