"""Console: the content library. The filtered list (kind, topic, buying stage, persona,
gated, text) with each asset's downloads and views; the upload / edit page with its
performance and public link; archive and restore.

Reading needs ``content.view``; writes need ``content.edit`` in the asset's unit. Another
unit's asset is a 404.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from apps.content.models import Asset, AssetKind, BuyingStage
from apps.content.selectors import assets as selectors
from apps.content.selectors import pages as page_selectors
from apps.content.services import assets as services
from apps.content.views.pages import add_errors, first_page, period_of
from apps.core.models import BusinessUnit, User
from apps.core.roles import Surface
from apps.core.scoping import visible_unit_ids
from apps.core.web import page_units, surface_context, surface_required, user_of

VIEW = page_selectors.VIEW
EDIT = page_selectors.EDIT
FILTER_PARAMS = ("q", "kind", "topic", "stage", "persona", "gated", "archived", "days")


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "core/forbidden.html", {"surface": _("Content library")}, status=403)


def _can_edit(user: User, unit_id: int) -> bool:
    return unit_id in visible_unit_ids(user, EDIT)


# --- Forms ---------------------------------------------------------------------------------


class AssetFilterForm(forms.Form):
    q = forms.CharField(label=gettext_lazy("Search"), required=False, max_length=100)
    kind = forms.ChoiceField(
        label=gettext_lazy("Kind"),
        required=False,
        choices=[("", gettext_lazy("All")), *list(AssetKind.choices)],
    )
    topic = forms.ChoiceField(label=gettext_lazy("Topic"), required=False)
    stage = forms.ChoiceField(
        label=gettext_lazy("Buying stage"),
        required=False,
        choices=[("", gettext_lazy("All")), *list(BuyingStage.choices)],
    )
    persona = forms.CharField(label=gettext_lazy("Persona"), required=False, max_length=40)
    gated = forms.ChoiceField(
        label=gettext_lazy("Access"),
        required=False,
        choices=[
            ("", gettext_lazy("All")),
            ("yes", gettext_lazy("Gated")),
            ("no", gettext_lazy("Open to all")),
        ],
    )
    archived = forms.BooleanField(label=gettext_lazy("Archived"), required=False)

    def __init__(self, *args: Any, topics: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        topic_field: Any = self.fields["topic"]
        topic_field.choices = [("", _("All"))] + [(t, t) for t in topics]

    def filters(self) -> selectors.AssetFilters:
        if not self.is_bound or not self.is_valid():
            return selectors.AssetFilters()
        data = self.cleaned_data
        gated = {"yes": True, "no": False}.get(data["gated"])
        return selectors.AssetFilters(
            q=data["q"].strip(),
            kind=data["kind"],
            topic=data["topic"],
            buying_stage=data["stage"],
            persona=data["persona"].strip(),
            gated=gated,
            archived=data["archived"],
        )


class AssetForm(forms.Form):
    unit = forms.TypedChoiceField(label=gettext_lazy("Business unit"), coerce=int)
    title = forms.CharField(label=gettext_lazy("Title"), max_length=services.TITLE_MAX)
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=AssetKind.choices)
    summary = forms.CharField(
        label=gettext_lazy("Summary"),
        required=False,
        max_length=services.SUMMARY_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    upload = forms.FileField(
        label=gettext_lazy("File"),
        required=False,
        help_text=gettext_lazy("PDF, PPTX, DOCX, XLSX, PNG, JPG or MP4, at most 50 MB."),
        widget=forms.FileInput(attrs={"accept": ".pdf,.pptx,.docx,.xlsx,.png,.jpg,.jpeg,.mp4"}),
    )
    url = forms.CharField(
        label=gettext_lazy("…or its address"),
        required=False,
        max_length=1000,
        help_text=gettext_lazy("For videos and pages hosted elsewhere (http:// or https://)."),
        widget=forms.URLInput(attrs={"placeholder": "https://"}),
    )
    body = forms.CharField(
        label=gettext_lazy("Article text (HTML)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 10, "class": "code"}),
        help_text=gettext_lazy(
            "For articles. Scripts, event handlers and javascript: links are removed when saved."
        ),
    )
    topic = forms.CharField(
        label=gettext_lazy("Topic"),
        required=False,
        max_length=services.TOPIC_MAX,
        help_text=gettext_lazy("e.g. 单细胞, 质谱, 基因测序"),
    )
    buying_stage = forms.ChoiceField(
        label=gettext_lazy("Buying stage"),
        required=False,
        choices=[("", gettext_lazy("(none)")), *list(BuyingStage.choices)],
    )
    personas = forms.CharField(
        label=gettext_lazy("Personas"),
        required=False,
        max_length=500,
        help_text=gettext_lazy("Separated by commas, e.g. 实验室主任, 采购经理"),
    )
    is_gated = forms.BooleanField(
        label=gettext_lazy("Gated: people fill a form to get it"), required=False
    )
    gate_form = forms.TypedChoiceField(
        label=gettext_lazy("Gate form"), required=False, coerce=int, empty_value=None
    )

    def __init__(
        self,
        *args: Any,
        units: list[BusinessUnit],
        gate_forms: list[Any],
        editing: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.units = {u.pk: u for u in units}
        self.gate_forms = {f.pk: f for f in gate_forms}
        unit_field: Any = self.fields["unit"]
        unit_field.choices = [(u.pk, u.name) for u in units]
        if editing:
            del self.fields["unit"]
        gate_field: Any = self.fields["gate_form"]
        several_units = len({f.unit_id for f in gate_forms}) > 1
        gate_field.choices = [("", _("(none)"))] + [
            (f.pk, f"{f.unit.name} · {f.name}" if several_units else f.name) for f in gate_forms
        ]
        gate_field.help_text = _(
            "A form of the asset's own unit; it delivers the asset after submit."
        )

    def chosen_unit(self) -> BusinessUnit:
        return self.units[self.cleaned_data["unit"]]

    def chosen_gate_form(self) -> Any:
        pk = self.cleaned_data.get("gate_form")
        return self.gate_forms.get(pk) if pk else None


# --- The library ---------------------------------------------------------------------------


@surface_required(Surface.CONSOLE)
@require_GET
def asset_list(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    if not user.is_superuser and not visible_unit_ids(user, VIEW):
        return _forbidden(request)
    units = page_units(request, VIEW)
    form = AssetFilterForm(
        request.GET or None, topics=selectors.topic_options(user=user, unit_ids=units)
    )
    filters = form.filters()
    days = period_of(request)
    page = first_page(request, selectors.assets_of(user=user, filters=filters, unit_ids=units))
    stats = selectors.asset_stats(
        user=user,
        asset_ids=[a.pk for a in page.items],
        since=page_selectors.period_start(days),
    )
    rows = [
        {
            "asset": a,
            "stats": stats[a.pk],
            "link": request.build_absolute_uri(reverse("asset-public", args=[a.key])),
        }
        for a in page.items
    ]
    kept = urlencode([(k, request.GET.get(k)) for k in FILTER_PARAMS if request.GET.get(k)])
    context = surface_context(
        request,
        Surface.CONSOLE,
        form=form,
        rows=rows,
        page=page,
        days=days,
        periods=page_selectors.PERIODS,
        filtered=filters != selectors.AssetFilters(),
        filter_query=kept + "&" if kept else "",
        can_create=bool(page_selectors.editable_units(user=user)),
    )
    return render(request, "content/assets/list.html", context)


def _asset_form(
    request: HttpRequest, *, units: list[BusinessUnit], asset: Asset | None, data: Any = None
) -> AssetForm:
    user = user_of(request)
    unit_ids = [asset.unit_id] if asset is not None else [u.pk for u in units]
    gate_forms = list(selectors.gate_forms(user=user, unit_ids=unit_ids)[:300])
    initial: dict[str, Any] = {}
    if asset is not None:
        initial = {
            "title": asset.title,
            "kind": asset.kind,
            "summary": asset.summary,
            "url": asset.url,
            "body": asset.body,
            "topic": asset.topic,
            "buying_stage": asset.buying_stage,
            "personas": ", ".join(asset.personas or []),
            "is_gated": asset.is_gated,
            "gate_form": asset.gate_form_id,
        }
    return AssetForm(
        data,
        request.FILES if data is not None else None,
        initial=initial,
        units=units,
        gate_forms=gate_forms,
        editing=asset is not None,
    )


@surface_required(Surface.CONSOLE)
def asset_new(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    units = page_selectors.editable_units(user=user, narrowed=page_units(request, EDIT))
    if not units:
        units = page_selectors.editable_units(user=user)
    if not units:
        return _forbidden(request)
    if request.method != "POST":
        form = _asset_form(request, units=units, asset=None)
        return render(
            request,
            "content/assets/edit.html",
            surface_context(request, Surface.CONSOLE, form=form),
        )
    form = _asset_form(request, units=units, asset=None, data=request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            asset = services.asset_create(
                unit=form.chosen_unit(),
                title=data["title"],
                kind=data["kind"],
                summary=data["summary"],
                upload=data["upload"] or None,
                url=data["url"],
                body=data["body"],
                topic=data["topic"],
                buying_stage=data["buying_stage"],
                personas=data["personas"],
                is_gated=data["is_gated"],
                gate_form=form.chosen_gate_form(),
                acting_user=user,
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(
                request, _("“%(title)s” added to the library.") % {"title": asset.title}
            )
            return redirect("content:asset-edit", asset.pk)
    context = surface_context(request, Surface.CONSOLE, form=form)
    return render(request, "content/assets/edit.html", context, status=400)


def _asset_or_404(request: HttpRequest, pk: int) -> Asset:
    asset = selectors.asset_get(user=user_of(request), pk=pk)
    if asset is None:
        raise Http404
    return asset


@surface_required(Surface.CONSOLE)
def asset_edit(request: HttpRequest, pk: int) -> HttpResponse:
    user = user_of(request)
    asset = _asset_or_404(request, pk)
    can_edit = _can_edit(user, asset.unit_id)
    status = 200
    if request.method == "POST":
        if not can_edit:
            return _forbidden(request)
        form = _asset_form(request, units=[asset.unit], asset=asset, data=request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.asset_update(
                    asset=asset,
                    title=data["title"],
                    kind=data["kind"],
                    summary=data["summary"],
                    upload=data["upload"] or None,
                    url=data["url"],
                    body=data["body"],
                    topic=data["topic"],
                    buying_stage=data["buying_stage"],
                    personas=data["personas"],
                    is_gated=data["is_gated"],
                    gate_form=form.chosen_gate_form(),
                    acting_user=user,
                )
            except ValidationError as exc:
                add_errors(form, exc)
            else:
                messages.success(request, _("“%(title)s” saved.") % {"title": asset.title})
                return redirect("content:asset-edit", asset.pk)
        status = 400
    else:
        form = _asset_form(request, units=[asset.unit], asset=asset)
    days = period_of(request)
    since = page_selectors.period_start(days)
    context = surface_context(
        request,
        Surface.CONSOLE,
        form=form,
        asset=asset,
        can_edit=can_edit,
        days=days,
        periods=page_selectors.PERIODS,
        stats=selectors.asset_stats(user=user, asset_ids=[asset.pk], since=since)[asset.pk],
        recent=selectors.asset_recent_contacts(user=user, asset=asset, since=since),
        link=request.build_absolute_uri(reverse("asset-public", args=[asset.key])),
    )
    return render(request, "content/assets/edit.html", context, status=status)


@surface_required(Surface.CONSOLE)
@require_POST
def asset_archive(request: HttpRequest, pk: int) -> HttpResponse:
    user = user_of(request)
    asset = _asset_or_404(request, pk)
    if not _can_edit(user, asset.unit_id):
        return _forbidden(request)
    services.asset_archive(asset=asset, acting_user=user)
    messages.success(
        request,
        _("“%(title)s” archived: its link answers “not found” until it is restored.")
        % {"title": asset.title},
    )
    return redirect("content:asset-edit", asset.pk)


@surface_required(Surface.CONSOLE)
@require_POST
def asset_restore(request: HttpRequest, pk: int) -> HttpResponse:
    user = user_of(request)
    asset = _asset_or_404(request, pk)
    if not _can_edit(user, asset.unit_id):
        return _forbidden(request)
    services.asset_restore(asset=asset, acting_user=user)
    messages.success(request, _("“%(title)s” restored.") % {"title": asset.title})
    return redirect("content:asset-edit", asset.pk)


urlpatterns = [
    path("console/assets/", asset_list, name="assets"),
    path("console/assets/new/", asset_new, name="asset-new"),
    path("console/assets/<int:pk>/", asset_edit, name="asset-edit"),
    path("console/assets/<int:pk>/archive/", asset_archive, name="asset-archive"),
    path("console/assets/<int:pk>/restore/", asset_restore, name="asset-restore"),
]
