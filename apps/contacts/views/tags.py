"""Console: tag groups and tags (manual and rule) of a unit.

Only units where the user holds ``contacts.configure`` are offered; an object of another
unit is "not found". Writes go through ``services.config``; a rule tag is applied right
after it is saved (one set-based statement), and again by the periodic task.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from apps.contacts.models import IdentityKind, Tag, TagGroup, TagKind
from apps.contacts.selectors import config as selectors
from apps.contacts.services import config as services
from apps.contacts.services import tag_rules
from apps.core.models import BusinessUnit, User
from apps.core.pagination import InvalidCursor, keyset_page
from apps.core.roles import Surface
from apps.core.web import page_units, surface_context, surface_required, user_of

PAGE_SIZE = 50


# --- Shared by the configuration pages (tags, fields, channels) ---------------------------


def configurable_units(request: HttpRequest) -> list[BusinessUnit]:
    return selectors.configurable_units(
        user=user_of(request), narrowed=page_units(request, selectors.CONFIGURE)
    )


def forbidden(request: HttpRequest, what: str) -> HttpResponse:
    return render(request, "core/forbidden.html", {"surface": what}, status=403)


def pick_unit(request: HttpRequest, units: list[BusinessUnit]) -> BusinessUnit | None:
    """The unit the page works on: ``?unit=`` (404 if not one of ``units``) or the first."""
    raw = request.GET.get("unit") or request.POST.get("unit")
    if not raw:
        return units[0] if units else None
    for unit in units:
        if str(unit.pk) == raw:
            return unit
    raise Http404


def back_to(name: str, unit_id: int, **params: Any) -> HttpResponse:
    query = "&".join(f"{k}={v}" for k, v in params.items() if v not in (None, ""))
    url = f"{reverse(name)}?unit={unit_id}"
    return redirect(f"{url}&{query}" if query else url)


def add_errors(form: forms.Form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def first_page(request: HttpRequest, qs: Any, ordering: tuple[str, ...]) -> Any:
    try:
        return keyset_page(qs, ordering=ordering, cursor=request.GET.get("cursor"), size=PAGE_SIZE)
    except InvalidCursor:
        messages.warning(request, _("That page link is no longer valid; showing the first page."))
        return keyset_page(qs, ordering=ordering, size=PAGE_SIZE)


# --- Forms --------------------------------------------------------------------------------


class TagGroupForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=60)
    position = forms.IntegerField(
        label=gettext_lazy("Position"), min_value=0, max_value=32767, initial=0, required=False
    )


class RuleField(forms.CharField):
    """A JSON rule typed into a textarea."""

    widget = forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "class": "code"})

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if not text:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                _("Not valid JSON (line %(line)d, column %(col)d): %(msg)s")
                % {"line": exc.lineno, "col": exc.colno, "msg": exc.msg}
            ) from None

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False, indent=2)
        return value


class TagForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=60)
    group: forms.ModelChoiceField[TagGroup] = forms.ModelChoiceField(
        label=gettext_lazy("Tag group"),
        queryset=None,
        required=False,
        empty_label=gettext_lazy("(no group)"),
    )
    kind = forms.ChoiceField(
        label=gettext_lazy("Kind"), choices=TagKind.choices, widget=forms.HiddenInput
    )
    rule = RuleField(label=gettext_lazy("Rule"), required=False)

    def __init__(self, *args: Any, user: User, unit: BusinessUnit, editing: bool, **kwargs: Any):
        super().__init__(*args, **kwargs)
        group_field: Any = self.fields["group"]
        group_field.queryset = selectors.tag_groups_of(user=user, unit_id=unit.pk)
        # The kind is picked with the "new manual / rule tag" buttons and cannot change.
        self.fields["kind"].disabled = editing


# --- Pages --------------------------------------------------------------------------------


@surface_required(Surface.CONSOLE)
def tag_list(request: HttpRequest) -> HttpResponse:
    units = configurable_units(request)
    if not units and not selectors.configurable_units(user=user_of(request)):
        return forbidden(request, _("Tags"))
    unit = pick_unit(request, units)
    context = surface_context(request, Surface.CONSOLE, units=units, unit=unit)
    if unit is None:
        return render(request, "contacts/tags/list.html", context)
    user = user_of(request)
    groups = list(selectors.tag_groups_of(user=user, unit_id=unit.pk)[:200])
    group_filter = request.GET.get("group", "")
    group_id = int(group_filter) if group_filter.isdigit() else None
    if group_id is not None and all(g.pk != group_id for g in groups):
        raise Http404
    kind = request.GET.get("kind", "")
    qs = selectors.tags_of(
        user=user,
        unit_id=unit.pk,
        group_id=group_id,
        ungrouped=group_filter == "none",
        kind=kind if kind in TagKind.values else "",
    )
    page = first_page(request, qs, ("name", "id"))
    counts = selectors.tag_contact_counts(tag_ids=[t.pk for t in page.items])
    rule_context = (
        tag_rules.rule_context(unit_id=unit.pk)
        if any(t.kind == TagKind.RULE for t in page.items)
        else None
    )
    rows = []
    for tag in page.items:
        summary, problems = "", []
        if tag.kind == TagKind.RULE and rule_context is not None:
            rule_context.tag_id = tag.pk
            problems = tag_rules.rule_check(tag.rule, context=rule_context)
            if not problems:
                summary = rule_summary(tag_rules.rule_describe(tag.rule, context=rule_context))
        rows.append(
            {
                "tag": tag,
                "count": counts.get(tag.pk, 0),
                "summary": summary,
                "problems": problems,
            }
        )
    group_sizes = selectors.tag_group_sizes(group_ids=[g.pk for g in groups])
    context.update(
        groups=[{"group": g, "size": group_sizes.get(g.pk, 0)} for g in groups],
        group_filter=group_filter,
        kind=kind,
        rows=rows,
        page=page,
        count_limit=selectors.COUNT_LIMIT,
        group_form=TagGroupForm(),
        filter_query=f"unit={unit.pk}&group={group_filter}&kind={kind}&",
    )
    return render(request, "contacts/tags/list.html", context)


def rule_summary(line: tag_rules.RuleLine) -> str:
    if not line.children:
        return line.text
    inner = "; ".join(rule_summary(child) for child in line.children)
    return f"{line.text}: ({inner})"


def _tag_or_404(request: HttpRequest, pk: int) -> Tag:
    tag = selectors.tag_get(user=user_of(request), pk=pk)
    if tag is None:
        raise Http404
    return tag


def _rule_help(request: HttpRequest, unit: BusinessUnit, tag: Tag | None) -> dict[str, Any]:
    user = user_of(request)
    fields = list(selectors.custom_fields_of(user=user, unit_id=unit.pk)[:100])
    tags = [
        t
        for t in selectors.tags_of(user=user, unit_id=unit.pk).order_by("name")[:200]
        if tag is None or t.pk != tag.pk
    ]
    channels = list(selectors.channels_of(user=user, unit_id=unit.pk).order_by("code")[:100])
    return {
        "help_fields": tag_rules.RULE_FIELDS,
        "help_field_ops": tag_rules.FIELD_OPS,
        "help_custom": [{"field": f, "ops": tag_rules.CUSTOM_OPS[f.type]} for f in fields],
        "help_tags": tags,
        "help_channels": channels,
        "help_identities": IdentityKind.choices,
        "examples": [
            (title, json.dumps(rule, ensure_ascii=False, indent=2)) for title, rule in RULE_EXAMPLES
        ],
    }


RULE_EXAMPLES = [
    (
        gettext_lazy("Downloaded at least 3 times in 30 days"),
        {"activity": {"type": "download", "days": 30, "min_count": 3}},
    ),
    (
        gettext_lazy("Biopharma industry"),
        {"field": "industry", "op": "in", "value": ["生物医药", "制药"]},
    ),
    (
        gettext_lazy("Managers in Shanghai or Jiangsu reachable on WeChat"),
        {
            "all": [
                {"field": "title", "op": "contains", "value": "经理"},
                {"field": "province", "op": "in", "value": ["上海", "江苏"]},
                {"has_identity": "wechat_unionid"},
            ]
        },
    ),
]


def _tag_form_page(request: HttpRequest, *, unit: BusinessUnit, tag: Tag | None) -> HttpResponse:
    user = user_of(request)
    initial: dict[str, Any] = {"kind": request.GET.get("kind") or TagKind.MANUAL}
    if tag is not None:
        initial = {"name": tag.name, "group": tag.group_id, "kind": tag.kind, "rule": tag.rule}
    elif request.GET.get("group", "").isdigit():
        initial["group"] = int(request.GET["group"])
    form = TagForm(
        request.POST or None, initial=initial, user=user, unit=unit, editing=tag is not None
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if tag is None:
                saved = services.tag_create(
                    unit=unit,
                    name=data["name"],
                    kind=data["kind"],
                    group=data["group"],
                    rule=data["rule"],
                    acting_user=user,
                )
            else:
                saved = services.tag_update(
                    tag=tag,
                    name=data["name"],
                    group=data["group"],
                    rule=data["rule"],
                    acting_user=user,
                )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            if saved.kind == TagKind.RULE:
                result = tag_rules.tag_rule_apply(tag=saved)
                messages.success(
                    request,
                    _(
                        "Rule tag “%(name)s” saved and applied: "
                        "%(added)d added, %(removed)d removed."
                    )
                    % {"name": saved.name, "added": result.added, "removed": result.removed},
                )
            else:
                messages.success(request, _("Tag “%(name)s” saved.") % {"name": saved.name})
            return back_to("contacts:tags", unit.pk)
    context = surface_context(
        request,
        Surface.CONSOLE,
        unit=unit,
        tag=tag,
        form=form,
        is_rule=(tag.kind if tag else (form["kind"].value() or TagKind.MANUAL)) == TagKind.RULE,
        **_rule_help(request, unit, tag),
    )
    if tag is not None:
        context["history"] = selectors.tag_history_recent(user=user, tag=tag)
        context["count"] = selectors.tag_contact_counts(tag_ids=[tag.pk]).get(tag.pk, 0)
        context["count_limit"] = selectors.COUNT_LIMIT
        if tag.kind == TagKind.RULE and tag.rule is not None and not form.is_bound:
            context["preview"] = _preview(unit, tag, tag.rule)
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "contacts/tags/form.html", context, status=status)


@surface_required(Surface.CONSOLE)
def tag_new(request: HttpRequest) -> HttpResponse:
    units = configurable_units(request)
    unit = pick_unit(request, units)
    if unit is None:
        return forbidden(request, _("Tags"))
    return _tag_form_page(request, unit=unit, tag=None)


@surface_required(Surface.CONSOLE)
def tag_edit(request: HttpRequest, pk: int) -> HttpResponse:
    tag = _tag_or_404(request, pk)
    return _tag_form_page(request, unit=tag.unit, tag=tag)


@surface_required(Surface.CONSOLE)
@require_POST
def tag_delete(request: HttpRequest, pk: int) -> HttpResponse:
    tag = _tag_or_404(request, pk)
    try:
        services.tag_delete(tag=tag, acting_user=user_of(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Tag “%(name)s” deleted.") % {"name": tag.name})
    return back_to("contacts:tags", tag.unit_id)


@surface_required(Surface.CONSOLE)
@require_POST
def tag_apply(request: HttpRequest, pk: int) -> HttpResponse:
    tag = _tag_or_404(request, pk)
    if tag.kind != TagKind.RULE:
        raise Http404
    try:
        result = services.tag_rule_apply_now(tag=tag, acting_user=user_of(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            _("“%(name)s” applied: %(added)d contacts added, %(removed)d removed.")
            % {"name": tag.name, "added": result.added, "removed": result.removed},
        )
    return back_to("contacts:tags", tag.unit_id)


def _preview(unit: BusinessUnit, tag: Tag | None, rule: Any) -> dict[str, Any]:
    context = tag_rules.rule_context(unit_id=unit.pk, tag=tag)
    problems = tag_rules.rule_check(rule, context=context)
    if problems:
        return {"problems": problems}
    matches = tag_rules.rule_matches(rule, context=context)
    count = matches.values("pk")[: selectors.COUNT_LIMIT + 1].count()
    return {
        "tree": tag_rules.rule_describe(rule, context=context),
        "count": count,
        "count_limit": selectors.COUNT_LIMIT,
    }


@surface_required(Surface.CONSOLE)
@require_POST
def rule_preview(request: HttpRequest) -> HttpResponse:
    """The editor's "Check" button: problems by node, or a readable tree and a count."""
    unit = pick_unit(request, configurable_units(request))
    if unit is None:
        raise Http404
    tag = None
    if request.POST.get("tag", "").isdigit():
        tag = _tag_or_404(request, int(request.POST["tag"]))
        if tag.unit_id != unit.pk:
            raise Http404
    field = RuleField(required=True)
    try:
        rule = field.clean(request.POST.get("rule", ""))
    except ValidationError as exc:
        preview: dict[str, Any] = {"problems": exc.messages}
    else:
        preview = _preview(unit, tag, rule)
    return render(request, "contacts/tags/partials/_rule_preview.html", {"preview": preview})


# --- Tag groups ---------------------------------------------------------------------------


def _group_or_404(request: HttpRequest, pk: int) -> TagGroup:
    group = selectors.tag_group_get(user=user_of(request), pk=pk)
    if group is None:
        raise Http404
    return group


@surface_required(Surface.CONSOLE)
@require_POST
def group_new(request: HttpRequest) -> HttpResponse:
    unit = pick_unit(request, configurable_units(request))
    if unit is None:
        raise Http404
    form = TagGroupForm(request.POST)
    if form.is_valid():
        try:
            group = services.tag_group_create(
                unit=unit,
                name=form.cleaned_data["name"],
                position=form.cleaned_data["position"] or 0,
                acting_user=user_of(request),
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Tag group “%(name)s” created.") % {"name": group.name})
    else:
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
    return back_to("contacts:tags", unit.pk)


@surface_required(Surface.CONSOLE)
def group_edit(request: HttpRequest, pk: int) -> HttpResponse:
    group = _group_or_404(request, pk)
    form = TagGroupForm(
        request.POST or None, initial={"name": group.name, "position": group.position}
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.tag_group_update(
                group=group,
                name=form.cleaned_data["name"],
                position=form.cleaned_data["position"],
                acting_user=user_of(request),
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(request, _("Tag group “%(name)s” saved.") % {"name": group.name})
            return back_to("contacts:tags", group.unit_id)
    context = surface_context(request, Surface.CONSOLE, group=group, unit=group.unit, form=form)
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "contacts/tags/group_form.html", context, status=status)


@surface_required(Surface.CONSOLE)
@require_POST
def group_delete(request: HttpRequest, pk: int) -> HttpResponse:
    group = _group_or_404(request, pk)
    moved = services.tag_group_delete(group=group, acting_user=user_of(request))
    messages.success(
        request,
        _("Tag group “%(name)s” deleted; its %(n)d tags are now ungrouped.")
        % {"name": group.name, "n": moved},
    )
    return back_to("contacts:tags", group.unit_id)


urlpatterns = [
    path("tags/", tag_list, name="tags"),
    path("tags/new/", tag_new, name="tag-new"),
    path("tags/rule-preview/", rule_preview, name="tag-rule-preview"),
    path("tags/<int:pk>/edit/", tag_edit, name="tag-edit"),
    path("tags/<int:pk>/delete/", tag_delete, name="tag-delete"),
    path("tags/<int:pk>/apply/", tag_apply, name="tag-apply"),
    path("tags/groups/new/", group_new, name="tag-group-new"),
    path("tags/groups/<int:pk>/edit/", group_edit, name="tag-group-edit"),
    path("tags/groups/<int:pk>/delete/", group_delete, name="tag-group-delete"),
]
