"""Console pages for lead scoring: the models with their score distributions, the model
editor (rules, "test on this contact", recompute with progress), and the explanation
fragment the contact 360 page loads.

Reading needs ``nurture.view``; editing ``nurture.scoring`` in the model's unit. A model,
rule or contact outside the user's scope is a 404.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core.models import BusinessUnit
from apps.core.roles import Surface
from apps.core.scoping import visible_unit_ids
from apps.core.web import page_units, surface_context, surface_required, user_of
from apps.nurture import selectors
from apps.nurture.forms import ScoringModelForm, ScoringRuleForm, TestContactForm
from apps.nurture.models import RecomputeStatus, ScoringModel
from apps.nurture.selectors import EDIT, VIEW
from apps.nurture.services import config as services
from apps.nurture.services.scoring import rule_summaries, score_explain


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "core/forbidden.html", {"surface": _("Scoring")}, status=403)


def _add_errors(form: Any, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _can_edit(request: HttpRequest, unit_id: int) -> bool:
    user = user_of(request)
    return user.is_superuser or unit_id in visible_unit_ids(user, EDIT)


def _model_or_404(request: HttpRequest, pk: int, permission: str = VIEW) -> ScoringModel:
    model = selectors.scoring_model_visible(user=user_of(request), pk=pk, permission=permission)
    if model is None:
        raise Http404
    return model


def _editable_units(request: HttpRequest) -> list[BusinessUnit]:
    user = user_of(request)
    ids = set(visible_unit_ids(user, EDIT)) if not user.is_superuser else None
    narrowed = page_units(request, EDIT)
    units = BusinessUnit.objects.visible_to(user, EDIT).order_by("name")
    if ids is not None:
        units = units.filter(pk__in=ids)
    if narrowed is not None:
        units = units.filter(pk__in=narrowed)
    return list(units)


@surface_required(Surface.CONSOLE)
@require_http_methods(["GET", "POST"])
def scoring_list(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    if not user.is_superuser and not visible_unit_ids(user, VIEW):
        return _forbidden(request)
    units = _editable_units(request)
    form = ScoringModelForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        unit = next((u for u in units if str(u.pk) == request.POST.get("unit")), None)
        if unit is None:
            raise Http404
        if form.is_valid():
            try:
                model = services.scoring_model_create(unit=unit, acting_user=user, **form.values())
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(
                    request,
                    _("Scoring model “%(name)s” created. Add its rules below.")
                    % {"name": model.name},
                )
                return redirect("nurture:scoring-model", pk=model.pk)
    models = list(selectors.scoring_models(user=user, unit_ids=page_units(request, VIEW)))
    distributions = selectors.score_distributions(user=user, models=models)
    rows = [{"model": m, "dist": distributions.get(m.pk)} for m in models]
    context = surface_context(request, Surface.CONSOLE, rows=rows, form=form, units=units)
    return render(request, "nurture/scoring_list.html", context)


def _model_context(
    request: HttpRequest,
    model: ScoringModel,
    *,
    form: ScoringModelForm | None = None,
    rule_form: ScoringRuleForm | None = None,
) -> dict[str, Any]:
    user = user_of(request)
    test_form = TestContactForm(request.GET if "contact" in request.GET else None)
    explanation, test_error = None, ""
    if test_form.is_bound and test_form.is_valid():
        contact = selectors.contact_for_scoring(user=user, text=test_form.cleaned_data["contact"])
        if contact is None:
            test_error = _("No contact you can see has that id, mobile number or email.")
        else:
            # Computed now, nothing saved: the score this contact would get today.
            from django.utils import timezone

            explanation = score_explain(model=model, contact=contact, now=timezone.now())
            explanation.stored = None
    dist = selectors.score_distributions(user=user, models=[model]).get(model.pk)
    rules = selectors.scoring_rules(user=user, model=model)
    summaries = rule_summaries(model=model, rules=rules)
    return surface_context(
        request,
        Surface.CONSOLE,
        model=model,
        rules=[(rule, summaries.get(rule.pk, "")) for rule in rules],
        can_edit=_can_edit(request, model.unit_id),
        form=form or ScoringModelForm(initial=ScoringModelForm.initial_of(model)),
        rule_form=rule_form or ScoringRuleForm(),
        test_form=test_form,
        test_error=test_error,
        explanation=explanation,
        tested=explanation is not None,
        dist=dist,
        running=model.recompute_status in (RecomputeStatus.QUEUED, RecomputeStatus.RUNNING),
    )


@surface_required(Surface.CONSOLE)
@require_http_methods(["GET", "POST"])
def scoring_model_view(request: HttpRequest, pk: int) -> HttpResponse:
    model = _model_or_404(request, pk)
    form = None
    if request.method == "POST":
        if not _can_edit(request, model.unit_id):
            return _forbidden(request)
        form = ScoringModelForm(request.POST)
        if form.is_valid():
            try:
                services.scoring_model_update(
                    model=model, acting_user=user_of(request), **form.values()
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, _("Saved. Scores are being recomputed."))
                return redirect("nurture:scoring-model", pk=model.pk)
    return render(request, "nurture/scoring_model.html", _model_context(request, model, form=form))


@surface_required(Surface.CONSOLE)
@require_POST
def scoring_rule_add(request: HttpRequest, pk: int) -> HttpResponse:
    model = _model_or_404(request, pk, EDIT)
    form = ScoringRuleForm(request.POST)
    if form.is_valid():
        try:
            services.scoring_rule_create(model=model, acting_user=user_of(request), **form.values())
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Rule added. Scores are being recomputed."))
            return redirect(reverse("nurture:scoring-model", args=[model.pk]) + "#rules")
    context = _model_context(request, model, rule_form=form)
    return render(request, "nurture/scoring_model.html", context, status=400)


@surface_required(Surface.CONSOLE)
@require_http_methods(["GET", "POST"])
def scoring_rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    rule = selectors.scoring_rule_visible(user=user_of(request), pk=pk, permission=EDIT)
    if rule is None:
        raise Http404
    if request.method == "POST":
        form = ScoringRuleForm(request.POST, editing=True, initial={"kind": rule.kind})
        if form.is_valid():
            try:
                services.scoring_rule_update(
                    rule=rule, acting_user=user_of(request), **form.values()
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, _("Rule saved. Scores are being recomputed."))
                return redirect(reverse("nurture:scoring-model", args=[rule.model_id]) + "#rules")
    else:
        form = ScoringRuleForm(initial=ScoringRuleForm.initial_of(rule), editing=True)
    context = surface_context(request, Surface.CONSOLE, rule=rule, model=rule.model, form=form)
    status = 400 if request.method == "POST" else 200
    return render(request, "nurture/scoring_rule.html", context, status=status)


@surface_required(Surface.CONSOLE)
@require_POST
def scoring_rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    rule = selectors.scoring_rule_visible(user=user_of(request), pk=pk, permission=EDIT)
    if rule is None:
        raise Http404
    model_id = rule.model_id
    services.scoring_rule_delete(rule=rule, acting_user=user_of(request))
    messages.success(request, _("Rule removed. Scores are being recomputed."))
    return redirect(reverse("nurture:scoring-model", args=[model_id]) + "#rules")


@surface_required(Surface.CONSOLE)
@require_POST
def scoring_model_recompute(request: HttpRequest, pk: int) -> HttpResponse:
    model = _model_or_404(request, pk, EDIT)
    services.scoring_model_recompute_request(model=model, acting_user=user_of(request))
    if request.htmx:  # type: ignore[attr-defined]
        model.refresh_from_db()
        return render(request, "nurture/partials/_progress.html", {"model": model, "running": True})
    messages.success(request, _("Recompute queued."))
    return redirect("nurture:scoring-model", pk=model.pk)


@surface_required(Surface.CONSOLE)
@require_GET
def scoring_model_progress(request: HttpRequest, pk: int) -> HttpResponse:
    model = _model_or_404(request, pk)
    running = model.recompute_status in (RecomputeStatus.QUEUED, RecomputeStatus.RUNNING)
    return render(request, "nurture/partials/_progress.html", {"model": model, "running": running})


@surface_required(Surface.CONSOLE)
@require_GET
def scoring_explain(request: HttpRequest, pk: int, contact_pk: int) -> HttpResponse:
    """The explanation of one stored score (loaded into the 360 page's scores panel)."""
    model = _model_or_404(request, pk)
    contact = selectors.contact_visible_for_scoring(user=user_of(request), pk=contact_pk)
    if contact is None:
        raise Http404
    explanation = score_explain(model=model, contact=contact)
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "nurture/partials/_explanation.html", {"explanation": explanation})
    context = surface_context(request, Surface.CONSOLE, explanation=explanation, contact=contact)
    return render(request, "nurture/explain.html", context)


app_name = "nurture"
urlpatterns = [
    path("scoring/", scoring_list, name="scoring"),
    path("scoring/<int:pk>/", scoring_model_view, name="scoring-model"),
    path("scoring/<int:pk>/rules/", scoring_rule_add, name="scoring-rule-add"),
    path("scoring/<int:pk>/recompute/", scoring_model_recompute, name="scoring-recompute"),
    path("scoring/<int:pk>/progress/", scoring_model_progress, name="scoring-progress"),
    path("scoring/<int:pk>/explain/<int:contact_pk>/", scoring_explain, name="scoring-explain"),
    path("scoring/rules/<int:pk>/", scoring_rule_edit, name="scoring-rule"),
    path("scoring/rules/<int:pk>/delete/", scoring_rule_delete, name="scoring-rule-delete"),
]
