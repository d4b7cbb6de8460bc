"""Console: segments ("smart groups") of a unit — list with sizes and trends, the editor
with a live preview, a segment's members, "rebuild now", static-list editing.

Reading needs ``contacts.segments``; writing ``contacts.segments.edit``. Another unit's
segment is "not found". Writes go through ``services.segments``.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from apps.contacts.hooks import rule_conditions
from apps.contacts.models import ConsentChannel, IdentityKind, Segment, SegmentKind
from apps.contacts.selectors import config as config_selectors
from apps.contacts.selectors import segments as selectors
from apps.contacts.services import segments as services
from apps.contacts.services import tag_rules
from apps.contacts.services.exports import contact_export_create
from apps.contacts.views.tags import RuleField, add_errors, first_page, forbidden
from apps.core.models import BusinessUnit, User
from apps.core.roles import Surface
from apps.core.scoping import visible_unit_ids
from apps.core.web import page_units, surface_context, surface_required, user_of

PAGE_SIZE = 50


def _units(request: HttpRequest, permission: str = selectors.SEGMENTS) -> list[BusinessUnit]:
    return selectors.segment_units(
        user=user_of(request), permission=permission, narrowed=page_units(request, permission)
    )


def _pick_unit(request: HttpRequest, units: list[BusinessUnit]) -> BusinessUnit | None:
    raw = request.GET.get("unit") or request.POST.get("unit")
    if not raw:
        return units[0] if units else None
    for unit in units:
        if str(unit.pk) == raw:
            return unit
    raise Http404


def _can_edit(user: User, unit_id: int) -> bool:
    return unit_id in visible_unit_ids(user, selectors.EDIT)


def _segment_or_404(request: HttpRequest, pk: int, permission: str = selectors.SEGMENTS) -> Segment:
    segment = selectors.segment_get(user=user_of(request), pk=pk, permission=permission)
    if segment is None:
        raise Http404
    return segment


def _back(segment: Segment) -> HttpResponse:
    return redirect("contacts:segment", pk=segment.pk)


# --- List ---------------------------------------------------------------------------------


@surface_required(Surface.CONSOLE)
def segment_list(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    units = _units(request)
    if not units and not selectors.segment_units(user=user):
        return forbidden(request, _("Segments"))
    unit = _pick_unit(request, units)
    context = surface_context(request, Surface.CONSOLE, units=units, unit=unit)
    if unit is None:
        return render(request, "contacts/segments/list.html", context)
    archived = request.GET.get("archived") == "1"
    qs = selectors.segments_of(user=user, unit_id=unit.pk, archived=archived)
    page = first_page(request, qs, ("-id",))
    trends = selectors.segment_trends(user=user, segment_ids=[s.pk for s in page.items])
    rows = []
    for segment in page.items:
        sizes = trends.get(segment.pk, [])
        rows.append(
            {
                "segment": segment,
                "points": selectors.sparkline_points(sizes),
                "trend": sizes,
                "progress": (
                    round(100 * segment.progress_done / segment.progress_total)
                    if segment.progress_total
                    else 0
                ),
            }
        )
    context.update(
        rows=rows,
        page=page,
        archived=archived,
        can_edit=_can_edit(user, unit.pk),
        filter_query=f"unit={unit.pk}&archived={int(archived)}&",
    )
    return render(request, "contacts/segments/list.html", context)


# --- Editor -------------------------------------------------------------------------------


class SegmentForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=150)
    description = forms.CharField(
        label=gettext_lazy("Description"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    rebuild_every_minutes = forms.IntegerField(
        label=gettext_lazy("Rebuild every (minutes)"),
        min_value=services.MIN_EVERY_MINUTES,
        max_value=services.MAX_EVERY_MINUTES,
        initial=60,
    )
    definition = RuleField(label=gettext_lazy("Conditions (JSON)"), required=False)

    def __init__(self, *args: Any, dynamic: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not dynamic:
            del self.fields["definition"]
            del self.fields["rebuild_every_minutes"]
        else:
            self.fields["definition"].widget.attrs.update({"id": "segment-definition", "rows": 12})


def _editor_options(user: User, unit: BusinessUnit, segment: Segment | None) -> dict[str, Any]:
    """What the tree editor offers (rendered into the page with json_script)."""
    tags = config_selectors.tags_of(
        user=user, unit_id=unit.pk, permission=selectors.SEGMENTS
    ).order_by("name")[:300]
    others = selectors.segments_of(user=user, unit_id=unit.pk).order_by("name")[:300]
    return {
        "fields": [[f, tag_rules._field_label(f)] for f in tag_rules.RULE_FIELDS],
        "field_ops": list(tag_rules.FIELD_OPS),
        "date_fields": [[f, tag_rules._field_label(f)] for f in tag_rules.DATE_FIELDS],
        "date_ops": list(tag_rules.DATE_OPS),
        "op_labels": {
            **{op: tag_rules._op_text(op) for op in tag_rules.FIELD_OPS + tag_rules.DATE_OPS},
            "within_days": _("within the last … days"),
            "not_within_days": _("not within the last … days"),
        },
        "tags": [[t.pk, t.name] for t in tags],
        "segments": [[s.pk, s.name] for s in others if segment is None or s.pk != segment.pk],
        "identities": [[k, str(label)] for k, label in IdentityKind.choices],
        "consent_channels": [[k, str(label)] for k, label in ConsentChannel.choices],
        "consent_states": list(tag_rules.CONSENT_STATES),
        "activity_types": ["content_view", "download", "page_view", "form_submit", "*"],
        "extensions": {
            key: {"label": str(c.label or key), **c.editor()}
            for key, c in rule_conditions().items()
            if c.editor is not None
        },
        "unit": unit.pk,
        "preview_url": reverse("api:segment-preview"),
        "labels": {
            "all": _("All of"),
            "any": _("Any of"),
            "not": _("not"),
            "add_condition": _("+ condition"),
            "add_group": _("+ group"),
            "remove": _("Remove"),
            "matching": _("contacts match"),
            "cost": _("planner cost"),
            "timed_out": _("The preview took too long; the segment may still be fine."),
            "invalid": _("Fix the marked conditions."),
            "checking": _("Counting…"),
            "json_error": _("The JSON is not valid."),
            "any_value": _("(any)"),
            "field": _("Field"),
            "date": _("Date"),
            "tag": _("Tag"),
            "segment": _("In segment"),
            "activity": _("Activity"),
            "consent": _("Consent"),
            "has_identity": _("Has"),
            "other": _("Other (JSON)"),
            "type": _("type"),
            "days": _("in days"),
            "min_count": _("at least"),
            "max_count": _("at most"),
            "topic": _("topic"),
        },
    }


def _editor(
    request: HttpRequest, *, unit: BusinessUnit, segment: Segment | None, kind: str
) -> HttpResponse:
    user = user_of(request)
    dynamic = kind == SegmentKind.DYNAMIC
    initial: dict[str, Any] = {"rebuild_every_minutes": 60}
    if segment is not None:
        initial = {
            "name": segment.name,
            "description": segment.description,
            "rebuild_every_minutes": segment.rebuild_every_minutes,
            "definition": segment.definition,
        }
    elif dynamic:
        initial["definition"] = {"all": [{"field": "industry", "op": "eq", "value": ""}]}
    form = SegmentForm(request.POST or None, initial=initial, dynamic=dynamic)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if segment is None:
                saved = services.segment_create(
                    unit=unit,
                    name=data["name"],
                    kind=kind,
                    definition=data.get("definition"),
                    description=data["description"],
                    rebuild_every_minutes=data.get("rebuild_every_minutes") or 60,
                    acting_user=user,
                )
            else:
                saved = services.segment_update(
                    segment=segment,
                    name=data["name"],
                    definition=data.get("definition"),
                    description=data["description"],
                    rebuild_every_minutes=data.get("rebuild_every_minutes"),
                    acting_user=user,
                )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(
                request,
                _("Segment “%(name)s” saved.") % {"name": saved.name}
                + (" " + _("Its members are being rebuilt.") if dynamic else ""),
            )
            return _back(saved)
    context = surface_context(
        request,
        Surface.CONSOLE,
        unit=unit,
        segment=segment,
        form=form,
        dynamic=dynamic,
        editor_options=_editor_options(user, unit, segment) if dynamic else None,
    )
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "contacts/segments/form.html", context, status=status)


@surface_required(Surface.CONSOLE)
def segment_new(request: HttpRequest) -> HttpResponse:
    unit = _pick_unit(request, _units(request, selectors.EDIT))
    if unit is None:
        return forbidden(request, _("Segments"))
    kind = request.GET.get("kind") or SegmentKind.DYNAMIC
    if kind not in SegmentKind.values:
        raise Http404
    return _editor(request, unit=unit, segment=None, kind=kind)


@surface_required(Surface.CONSOLE)
def segment_edit(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _segment_or_404(request, pk, selectors.EDIT)
    if not segment.is_active:
        raise Http404
    return _editor(request, unit=segment.unit, segment=segment, kind=segment.kind)


# --- One segment --------------------------------------------------------------------------


@surface_required(Surface.CONSOLE)
def segment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = user_of(request)
    segment = _segment_or_404(request, pk)
    page = first_page(request, selectors.segment_members(user=user, segment=segment), ("-id",))
    trend = selectors.segment_trends(user=user, segment_ids=[segment.pk]).get(segment.pk, [])
    tree, problems = None, []
    if segment.kind == SegmentKind.DYNAMIC and segment.definition is not None:
        context_ = services.segment_rule_context(unit_id=segment.unit_id, segment=segment)
        problems = tag_rules.rule_check(segment.definition, context=context_)
        if not problems:
            tree = tag_rules.rule_describe(segment.definition, context=context_)
    context = surface_context(
        request,
        Surface.CONSOLE,
        unit=segment.unit,
        segment=segment,
        page=page,
        trend=trend,
        points=selectors.sparkline_points(trend, width=320, height=60),
        tree=tree,
        problems=problems,
        can_edit=_can_edit(user, segment.unit_id),
        can_export=segment.unit_id in visible_unit_ids(user, "contacts.export"),
        progress=(
            round(100 * segment.progress_done / segment.progress_total)
            if segment.progress_total
            else 0
        ),
    )
    return render(request, "contacts/segments/detail.html", context)


@surface_required(Surface.CONSOLE)
@require_POST
def segment_rebuild(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _segment_or_404(request, pk, selectors.EDIT)
    try:
        services.segment_rebuild_request(segment=segment, acting_user=user_of(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Rebuild queued; the page shows its progress."))
    return _back(segment)


@surface_required(Surface.CONSOLE)
@require_POST
def segment_archive(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _segment_or_404(request, pk, selectors.EDIT)
    try:
        services.segment_archive(segment=segment, acting_user=user_of(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _back(segment)
    messages.success(request, _("Segment “%(name)s” archived.") % {"name": segment.name})
    return redirect(f"{reverse('contacts:segments')}?unit={segment.unit_id}")


@surface_required(Surface.CONSOLE)
@require_POST
def segment_export(request: HttpRequest, pk: int) -> HttpResponse:
    """Export the members through the contact export (a background job with progress)."""
    segment = _segment_or_404(request, pk)
    try:
        contact_export_create(
            acting_user=user_of(request),
            filters={"segment": segment.pk, "unit": segment.unit_id},
            file_type="xlsx" if request.POST.get("file_type") != "csv" else "csv",
        )
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return _back(segment)
    messages.success(request, _("Export of “%(name)s” queued.") % {"name": segment.name})
    return redirect("contacts:exports")


_IDS = re.compile(r"[\s,，;；]+")


@surface_required(Surface.CONSOLE)
@require_POST
def segment_members_change(request: HttpRequest, pk: int) -> HttpResponse:
    """Static lists: add or remove contacts by id (pasted, separated by spaces/commas)."""
    segment = _segment_or_404(request, pk, selectors.EDIT)
    raw = [part for part in _IDS.split(request.POST.get("contacts", "")) if part]
    if not raw or not all(part.isdigit() for part in raw):
        messages.error(request, _("Paste contact ids: numbers separated by spaces or commas."))
        return _back(segment)
    ids = [int(part) for part in raw]
    change = (
        services.segment_members_remove
        if request.POST.get("action") == "remove"
        else services.segment_members_add
    )
    try:
        n = change(segment=segment, contact_ids=ids, acting_user=user_of(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request, _("%(n)d of %(asked)d contacts changed.") % {"n": n, "asked": len(ids)}
        )
    return _back(segment)


urlpatterns = [
    path("segments/", segment_list, name="segments"),
    path("segments/new/", segment_new, name="segment-new"),
    path("segments/<int:pk>/", segment_detail, name="segment"),
    path("segments/<int:pk>/edit/", segment_edit, name="segment-edit"),
    path("segments/<int:pk>/rebuild/", segment_rebuild, name="segment-rebuild"),
    path("segments/<int:pk>/archive/", segment_archive, name="segment-archive"),
    path("segments/<int:pk>/members/", segment_members_change, name="segment-members"),
    path("segments/<int:pk>/export/", segment_export, name="segment-export"),
]
