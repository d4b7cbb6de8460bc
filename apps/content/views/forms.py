"""Console: forms. The list with per-form performance over a period, the editor (field
builder, consent, progressive profiling, thank-you or redirect, gated asset, attribution),
the embed snippet and public link, and the submissions of a form.

Anyone with ``content.view`` reads; only ``content.edit`` in the form's unit changes
(others see the editor read-only, and a write answers 403). Another unit's form is "not
found". The field builder works without script: its buttons (add, up, down, remove)
re-render the editor with the list changed and nothing saved; ``content-forms.js`` does
the same in the page without a round trip.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from apps.contacts.models import Campaign, Channel
from apps.content.form_fields import MAX_FIELDS, CatalogueField, FieldType, field_catalogue
from apps.content.models import Asset, Form, SubmissionStatus
from apps.content.selectors import forms as selectors
from apps.content.services import forms as services
from apps.core.models import BusinessUnit
from apps.core.pagination import InvalidCursor, keyset_page
from apps.core.roles import Surface
from apps.core.web import page_units, surface_context, surface_required, user_of

PAGE_SIZE = 50
# Newest first, as received: served by the (form, -received_at) index.
SUBMISSION_ORDER = selectors.SUBMISSION_ORDER
PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30
TYPE_LABELS = {
    FieldType.EMAIL: gettext_lazy("email"),
    FieldType.PHONE: gettext_lazy("phone"),
    FieldType.TEXT: gettext_lazy("text"),
    FieldType.NUMBER: gettext_lazy("number"),
    FieldType.DATE: gettext_lazy("date"),
    FieldType.CHOICE: gettext_lazy("single choice"),
    FieldType.MULTI_CHOICE: gettext_lazy("multiple choice"),
}


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return surface_context(request, Surface.CONSOLE, **extra)


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "core/forbidden.html", {"surface": _("Forms")}, status=403)


def _units(request: HttpRequest) -> list[BusinessUnit]:
    return selectors.form_units(user=user_of(request), narrowed=page_units(request, selectors.READ))


def _pick_unit(request: HttpRequest, units: list[BusinessUnit]) -> BusinessUnit | None:
    raw = request.GET.get("unit") or request.POST.get("unit")
    if not raw:
        return units[0] if units else None
    for unit in units:
        if str(unit.pk) == raw:
            return unit
    raise Http404


def _page(request: HttpRequest, qs: Any, ordering: tuple[str, ...]) -> Any:
    try:
        return keyset_page(qs, ordering=ordering, cursor=request.GET.get("cursor"), size=PAGE_SIZE)
    except InvalidCursor:
        messages.warning(request, _("That page link is no longer valid; showing the first page."))
        return keyset_page(qs, ordering=ordering, size=PAGE_SIZE)


def _period(request: HttpRequest) -> int:
    try:
        days = int(request.GET.get("days", DEFAULT_PERIOD))
    except ValueError:
        return DEFAULT_PERIOD
    return days if days in PERIODS else DEFAULT_PERIOD


# --- List ------------------------------------------------------------------------------------


@surface_required(Surface.CONSOLE)
def form_list(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    units = _units(request)
    if not units and not selectors.form_units(user=user):
        return _forbidden(request)
    unit = _pick_unit(request, units)
    archived = request.GET.get("archived") == "1"
    days = _period(request)
    context = _context(request, units=units, unit=unit, archived=archived, days=days)
    if unit is None:
        return render(request, "content/forms/list.html", context)
    page = _page(
        request, selectors.forms_of(user=user, unit_id=unit.pk, archived=archived), ("-id",)
    )
    until = timezone.now()
    performance = selectors.forms_performance(
        user=user,
        form_ids=[f.pk for f in page.items],
        since=until - timedelta(days=days),
        until=until,
    )
    rows = [(f, performance[f.pk]) for f in page.items]
    query = f"unit={unit.pk}&days={days}&" + ("archived=1&" if archived else "")
    context.update(
        page=page,
        rows=rows,
        periods=PERIODS,
        filter_query=query,
        can_edit=selectors.can_edit(user=user, unit_id=unit.pk),
    )
    return render(request, "content/forms/list.html", context)


# --- Editor ----------------------------------------------------------------------------------


class FormSettings(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=150,
        help_text=gettext_lazy("For your team, e.g. “Whitepaper download (SEM)”."),
    )
    title = forms.CharField(
        label=gettext_lazy("Heading"),
        max_length=200,
        required=False,
        help_text=gettext_lazy("What visitors read above the form."),
    )
    intro = forms.CharField(
        label=gettext_lazy("Introduction"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Optional. Simple HTML is kept (links, bold, lists)."),
    )
    submit_label = forms.CharField(
        label=gettext_lazy("Button text"),
        max_length=60,
        required=False,
        help_text=gettext_lazy("Empty: “Submit”."),
    )
    consent_required = forms.BooleanField(
        label=gettext_lazy("Consent required"),
        required=False,
        help_text=gettext_lazy("The form cannot be sent without ticking the consent box."),
    )
    consent_text = forms.CharField(
        label=gettext_lazy("Consent wording"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy(
            "Shown next to the checkbox. Each consent records this wording's version."
        ),
    )
    consent_version = forms.CharField(
        label=gettext_lazy("Consent wording version"),
        max_length=40,
        required=False,
        help_text=gettext_lazy("e.g. 2026-03. Change it whenever the wording changes."),
    )
    progressive = forms.BooleanField(
        label=gettext_lazy("Progressive profiling"),
        required=False,
        help_text=gettext_lazy(
            "Returning visitors we recognise are asked only fields we do not know yet."
        ),
    )
    progressive_max = forms.IntegerField(
        label=gettext_lazy("New fields per visit, at most"),
        min_value=1,
        max_value=services.PROGRESSIVE_MAX_LIMIT,
        initial=3,
    )
    success_message = forms.CharField(
        label=gettext_lazy("Thank-you message"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Empty: “Thank you! We have received your details.”"),
    )
    redirect_url = forms.CharField(
        label=gettext_lazy("Redirect after submit"),
        max_length=1000,
        required=False,
        help_text=gettext_lazy(
            "Optional http(s) address shown instead of the thank-you message "
            "(not when an asset is delivered)."
        ),
    )
    opens_lead = forms.ChoiceField(
        label=gettext_lazy("Open a lead"),
        required=False,
        choices=[
            ("", gettext_lazy("No: only update the contact")),
            ("warm", gettext_lazy("Warm lead (e.g. a download)")),
            ("hot", gettext_lazy("Hot lead (e.g. a trial or demo request)")),
        ],
        help_text=gettext_lazy(
            "Each submission opens a lead in this unit for an SDR (or joins the open one)."
        ),
    )
    asset: forms.ModelChoiceField[Asset] = forms.ModelChoiceField(
        label=gettext_lazy("Asset delivered after submit"),
        queryset=None,
        required=False,
        empty_label=gettext_lazy("(none)"),
        help_text=gettext_lazy("The thank-you page offers a download link for it."),
    )
    channel: forms.ModelChoiceField[Channel] = forms.ModelChoiceField(
        label=gettext_lazy("Channel"),
        queryset=None,
        required=False,
        empty_label=gettext_lazy("(from the visitor's UTM or referrer)"),
        help_text=gettext_lazy("Used when the visitor's link carries no utm_source."),
    )
    campaign: forms.ModelChoiceField[Campaign] = forms.ModelChoiceField(
        label=gettext_lazy("Campaign"),
        queryset=None,
        required=False,
        empty_label=gettext_lazy("(from the visitor's UTM)"),
        help_text=gettext_lazy("Used when the visitor's link carries no utm_campaign."),
    )

    def __init__(self, *args: Any, user: Any, unit: BusinessUnit, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fields: Any = self.fields
        fields["asset"].queryset = selectors.unit_assets(user=user, unit_id=unit.pk)
        fields["channel"].queryset = selectors.unit_channels(user=user, unit_id=unit.pk)
        fields["campaign"].queryset = selectors.unit_campaigns(user=user, unit_id=unit.pk)


SECTIONS = (
    (gettext_lazy("About the form"), ("name", "title", "intro", "submit_label")),
    (gettext_lazy("Consent"), ("consent_required", "consent_text", "consent_version")),
    (gettext_lazy("Progressive profiling"), ("progressive", "progressive_max")),
    (gettext_lazy("After submit"), ("success_message", "redirect_url", "asset", "opens_lead")),
    (gettext_lazy("Attribution"), ("channel", "campaign")),
)


def _initial(form: Form | None) -> dict[str, Any]:
    if form is None:
        return {"consent_required": True, "progressive_max": 3}
    return {
        "name": form.name,
        "title": form.title,
        "intro": form.intro,
        "submit_label": form.submit_label,
        "consent_required": form.consent_required,
        "consent_text": form.consent_text,
        "consent_version": form.consent_version,
        "progressive": form.progressive,
        "progressive_max": form.progressive_max,
        "success_message": form.success_message,
        "redirect_url": form.redirect_url,
        "opens_lead": form.opens_lead,
        "asset": form.asset_id,
        "channel": form.channel_id,
        "campaign": form.campaign_id,
    }


DEFAULT_FIELDS = [
    {"key": "name", "required": True, "label": "", "options": []},
    {"key": "phone", "required": True, "label": "", "options": []},
    {"key": "email", "required": False, "label": "", "options": []},
    {"key": "company_name", "required": True, "label": "", "options": []},
]


def _posted_fields(request: HttpRequest) -> list[dict[str, Any]]:
    """The builder's list as posted: keys in order (``fk``), required ones (``freq``),
    labels (``flabel-<key>``) and narrowed options (``fopt-<key>``)."""
    required = set(request.POST.getlist("freq"))
    entries: list[dict[str, Any]] = []
    for key in request.POST.getlist("fk")[: MAX_FIELDS + 1]:
        entries.append(
            {
                "key": key,
                "required": key in required,
                "label": request.POST.get(f"flabel-{key}", "").strip(),
                "options": request.POST.getlist(f"fopt-{key}"),
            }
        )
    return entries


def _apply_op(op: str, entries: list[dict[str, Any]], add_key: str) -> list[dict[str, Any]]:
    """A builder button pressed without script: add, up, down or remove."""
    entries = list(entries)
    if op == "add":
        if add_key and all(e["key"] != add_key for e in entries):
            entries.append({"key": add_key, "required": False, "label": "", "options": []})
        return entries
    verb, _sep, raw = op.partition(":")
    try:
        index = int(raw)
    except ValueError:
        return entries
    if not 0 <= index < len(entries):
        return entries
    if verb == "remove":
        del entries[index]
    elif verb == "up" and index > 0:
        entries[index - 1], entries[index] = entries[index], entries[index - 1]
    elif verb == "down" and index < len(entries) - 1:
        entries[index + 1], entries[index] = entries[index], entries[index + 1]
    return entries


def _row(spec: CatalogueField, entry: dict[str, Any]) -> dict[str, Any]:
    chosen = set(entry.get("options") or [])
    return {
        "key": spec.key,
        "default_label": str(spec.label),
        "type_label": TYPE_LABELS.get(spec.type, spec.type),
        "required": bool(entry.get("required")),
        "label": entry.get("label") or "",
        "options": [(value, label, not chosen or value in chosen) for value, label in spec.options],
        "custom": spec.is_custom,
    }


def _builder(catalogue: dict[str, CatalogueField], entries: list[dict[str, Any]]) -> dict[str, Any]:
    rows = [_row(catalogue[e["key"]], e) for e in entries if e.get("key") in catalogue]
    missing = [e["key"] for e in entries if e.get("key") not in catalogue]
    used = {r["key"] for r in rows}
    return {
        "rows": rows,
        "missing": missing,
        "addable": [
            {"key": spec.key, "label": str(spec.label), "used": spec.key in used}
            for spec in catalogue.values()
        ],
        # One row per catalogue field, for the script to add without a round trip.
        "templates": [_row(spec, {"key": spec.key}) for spec in catalogue.values()],
    }


def _embed(request: HttpRequest, form: Form) -> dict[str, str]:
    public = request.build_absolute_uri(reverse("form-public", args=[form.key]))
    script = request.build_absolute_uri(reverse("form-embed-script", args=[form.key]))
    return {
        "public_url": public,
        "script": f'<script src="{script}" async></script>',
        "iframe": (
            f'<iframe src="{public}?embed=1" title="{escape(form.title or form.name)}" '
            'style="width:100%;border:0;height:560px"></iframe>'
        ),
    }


def _editor(
    request: HttpRequest,
    *,
    unit: BusinessUnit,
    form: Form | None,
) -> HttpResponse:
    user = user_of(request)
    editable = selectors.can_edit(user=user, unit_id=unit.pk)
    if request.method == "POST" and not editable:
        return _forbidden(request)
    catalogue = field_catalogue(unit.pk)
    settings_form = FormSettings(
        request.POST if request.method == "POST" else None,
        initial=_initial(form),
        user=user,
        unit=unit,
    )
    entries = list(form.fields) if form is not None else list(DEFAULT_FIELDS)
    status = 200
    show_errors = False
    fields_errors: list[str] = []
    if request.method == "POST":
        entries = _posted_fields(request)
        op = request.POST.get("op", "save")
        if op != "save":
            entries = _apply_op(op, entries, request.POST.get("add_key", ""))
        else:
            show_errors = True
            status = 400
            if settings_form.is_valid():
                saved, fields_errors = _save(request, unit, form, settings_form, entries)
                if saved is not None:
                    return saved
    context = _context(
        request,
        unit=unit,
        obj=form,
        settings=settings_form,
        about=(SECTIONS[0][0], [settings_form[name] for name in SECTIONS[0][1]]),
        sections=[
            (title, [settings_form[name] for name in names]) for title, names in SECTIONS[1:]
        ],
        builder=_builder(catalogue, entries),
        editable=editable,
        show_errors=show_errors,
        fields_errors=fields_errors,
        embed=_embed(request, form) if form is not None else None,
    )
    return render(request, "content/forms/edit.html", context, status=status)


def _save(
    request: HttpRequest,
    unit: BusinessUnit,
    form: Form | None,
    settings_form: FormSettings,
    entries: list[dict[str, Any]],
) -> tuple[HttpResponse | None, list[str]]:
    """Save through the service: (the redirect, []) or (None, problems with the fields);
    other problems are added to ``settings_form``."""
    data = dict(settings_form.cleaned_data)
    user = user_of(request)
    try:
        if form is None:
            name = data.pop("name")
            form = services.form_create(
                unit=unit, name=name, fields=entries, acting_user=user, **data
            )
            messages.success(
                request,
                _("Form “%(name)s” created. Copy its link or embed code on the right.")
                % {"name": form.name},
            )
        else:
            services.form_update(form=form, fields=entries, acting_user=user, **data)
            messages.success(request, _("Form “%(name)s” saved.") % {"name": form.name})
    except ValidationError as exc:
        fields_errors: list[str] = []
        for name, problems in exc.message_dict.items():
            if name == "fields":
                fields_errors = problems
            elif name in settings_form.fields:
                settings_form.add_error(name, problems)
            else:
                settings_form.add_error(None, problems)
        return None, fields_errors
    return redirect("content:form-edit", form.pk), []


def _form_or_404(request: HttpRequest, pk: int) -> Form:
    form = selectors.form_get(user=user_of(request), pk=pk)
    if form is None:
        raise Http404
    return form


@surface_required(Surface.CONSOLE)
def form_new(request: HttpRequest) -> HttpResponse:
    units = [u for u in _units(request) if selectors.can_edit(user=user_of(request), unit_id=u.pk)]
    if not units:
        return _forbidden(request)
    unit = _pick_unit(request, units)
    assert unit is not None
    return _editor(request, unit=unit, form=None)


@surface_required(Surface.CONSOLE)
def form_edit(request: HttpRequest, pk: int) -> HttpResponse:
    form = _form_or_404(request, pk)
    return _editor(request, unit=form.unit, form=form)


@surface_required(Surface.CONSOLE)
@require_POST
def form_archive(request: HttpRequest, pk: int) -> HttpResponse:
    form = _form_or_404(request, pk)
    user = user_of(request)
    if not selectors.can_edit(user=user, unit_id=form.unit_id):
        return _forbidden(request)
    if request.POST.get("restore") == "1":
        services.form_restore(form=form, acting_user=user)
        messages.success(request, _("Form “%(name)s” is live again.") % {"name": form.name})
    else:
        services.form_archive(form=form, acting_user=user)
        messages.success(
            request,
            _("Form “%(name)s” archived: its page no longer takes submissions.")
            % {"name": form.name},
        )
    return redirect("content:form-edit", form.pk)


# --- Submissions -----------------------------------------------------------------------------


def _day(raw: str, *, end: bool = False) -> datetime | None:
    try:
        day = datetime.strptime(raw, "%Y-%m-%d")  # made aware just below
    except ValueError:
        return None
    moment = timezone.make_aware(day)
    return moment + timedelta(days=1) if end else moment


def _answers(data: Any, catalogue: dict[str, CatalogueField]) -> list[tuple[str, str]]:
    """A submission's answers as (label, text), choice values shown by their labels."""
    shown: list[tuple[str, str]] = []
    for key, value in (data or {}).items() if isinstance(data, dict) else ():
        spec = catalogue.get(key)
        labels = dict(spec.options) if spec is not None else {}
        values = value if isinstance(value, list) else [value]
        text = "、".join(str(labels.get(str(v), v)) for v in values)
        shown.append((str(spec.label) if spec is not None else key, text[:300]))
    return shown


@surface_required(Surface.CONSOLE)
def form_submissions(request: HttpRequest, pk: int) -> HttpResponse:
    form = _form_or_404(request, pk)
    status = request.GET.get("status", "")
    if status not in SubmissionStatus.values:
        status = ""
    since = _day(request.GET.get("since", ""))
    until = _day(request.GET.get("until", ""), end=True)
    qs = selectors.form_submissions(
        user=user_of(request), form_id=form.pk, status=status, since=since, until=until
    )
    page = _page(request, qs, SUBMISSION_ORDER)
    catalogue = field_catalogue(form.unit_id)
    rows = [(s, _answers(s.data, catalogue)) for s in page.items]
    query = "&".join(
        f"{k}={v}"
        for k, v in (
            ("status", status),
            ("since", request.GET.get("since", "") if since else ""),
            ("until", request.GET.get("until", "") if until else ""),
        )
        if v
    )
    context = _context(
        request,
        unit=form.unit,
        obj=form,
        page=page,
        rows=rows,
        status=status,
        statuses=SubmissionStatus.choices,
        since=request.GET.get("since", "") if since else "",
        until=request.GET.get("until", "") if until else "",
        filter_query=f"{query}&" if query else "",
    )
    return render(request, "content/forms/submissions.html", context)


urlpatterns = [
    path("console/forms/", form_list, name="forms"),
    path("console/forms/new/", form_new, name="form-new"),
    path("console/forms/<int:pk>/", form_edit, name="form-edit"),
    path("console/forms/<int:pk>/archive/", form_archive, name="form-archive"),
    path("console/forms/<int:pk>/submissions/", form_submissions, name="form-submissions"),
]
