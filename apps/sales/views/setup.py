"""Sales setup (``/console/sales/``): a unit's SLA policy, sales teams, assignment rules
and the holiday calendar, for sales ops (``sales.configure``).

Sales managers open it from the lead queue (they have no console), so the page is drawn in
whichever of the two surfaces the user has, console first. Everything is per unit (the
``?unit=`` switcher); another unit's team, member or rule is a 404.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from apps.core.models import BusinessUnit
from apps.core.roles import Surface
from apps.core.scoping import visible_unit_ids
from apps.core.web import page_units, surface_context, surfaces_required, user_of
from apps.core.workcalendar import calendar_days_from, calendar_years, years_without_data
from apps.nurture.models import Tier
from apps.sales.forms import (
    CLOCKS,
    CONDITION_FIELDS,
    CalendarDayForm,
    MemberEditForm,
    MemberForm,
    RouteTestForm,
    RuleForm,
    SlaPolicyForm,
    TeamForm,
)
from apps.sales.models import AssignmentRule, Lead, SalesTeam, SlaPolicy, TeamMember
from apps.sales.services import assignment
from apps.sales.services import config as services
from apps.sales.services.sla import due_after, misses_in_month

CONFIGURE = "sales.configure"
TABS = ("policy", "teams", "rules", "calendar")


setup_required = surfaces_required(
    Surface.CONSOLE, Surface.SDR, permission=CONFIGURE, label=gettext_lazy("Sales setup")
)


def _units(request: HttpRequest) -> list[BusinessUnit]:
    user = user_of(request)
    units = BusinessUnit.objects.visible_to(user, CONFIGURE).filter(is_active=True)
    narrowed = page_units(request, CONFIGURE)
    if narrowed is not None:
        units = units.filter(pk__in=narrowed)
    return list(units.select_related("parent").order_by("parent_id", "name"))


def _unit(request: HttpRequest, units: list[BusinessUnit]) -> BusinessUnit:
    raw = request.GET.get("unit") or request.POST.get("unit") or ""
    if not raw:
        # The unit picked in the shell's switcher, else the first unit (not the group).
        picked = request.session.get("unit")
        plain = [u for u in units if u.parent_id is not None]
        chosen = next((u for u in units if u.pk == picked), None)
        if chosen is None and (plain or units):
            chosen = (plain or units)[0]
        if chosen is None:
            raise Http404
        return chosen
    unit = next((u for u in units if str(u.pk) == raw), None)
    if unit is None:
        raise Http404
    return unit


def _url(unit: BusinessUnit, tab: str, **extra: Any) -> str:
    query = {"unit": unit.pk, "tab": tab, **{k: v for k, v in extra.items() if v is not None}}
    return f"{reverse('sales:setup')}?{urlencode(query)}"


def _add_errors(form: Any, exc: ValidationError, renamed: dict[str, str] | None = None) -> None:
    renamed = renamed or {}
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            name = renamed.get(field, field)
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _policy(unit: BusinessUnit) -> SlaPolicy:
    policy, _created = SlaPolicy.objects.dangerously_unscoped().get_or_create(unit=unit)
    policy.unit = unit
    return policy


def _examples(policy: SlaPolicy, now: dt.datetime) -> list[dict[str, Any]]:
    if policy.work_end <= policy.work_start:
        return []
    tz = unit_tz(policy.unit)
    out = []
    for clock, label in CLOCKS:
        due = due_after(
            now, getattr(policy, f"{clock}_value"), getattr(policy, f"{clock}_unit"), policy
        )
        out.append({"clock": clock, "label": label, "due": timezone.localtime(due, tz)})
    return out


def unit_tz(unit: BusinessUnit) -> Any:
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(unit.time_zone or "Asia/Shanghai")
    except (KeyError, ValueError):
        return ZoneInfo("Asia/Shanghai")


# --- Tabs -----------------------------------------------------------------------------------


def _policy_context(unit: BusinessUnit, form: SlaPolicyForm | None) -> dict[str, Any]:
    policy = _policy(unit)
    form = form or SlaPolicyForm(instance=policy)
    now = timezone.now()
    rows = [
        {"label": label, "value": form[f"{clock}_value"], "unit": form[f"{clock}_unit"]}
        for clock, label in CLOCKS
    ]
    return {
        "policy": policy,
        "policy_form": form,
        "clock_rows": rows,
        "examples": _examples(policy, now),
        "now_local": timezone.localtime(now, unit_tz(unit)),
    }


def _team_role(team: SalesTeam, rules: list[AssignmentRule]) -> str:
    roles = {r.role for r in rules if r.team_id == team.pk}
    return "sdr" if roles == {"sdr"} else "sales"


def _teams_context(
    unit: BusinessUnit, rules: list[AssignmentRule], forms_: dict[str, Any]
) -> dict[str, Any]:
    policy = _policy(unit)
    people = services.team_people(unit)
    teams = list(SalesTeam.objects.dangerously_unscoped().filter(unit=unit).order_by("name"))
    members = list(
        TeamMember.objects.dangerously_unscoped()
        .filter(team__in=teams)
        .select_related("user")
        .order_by("user__username")
    )
    now = timezone.now()
    last_month = assignment.previous_month(assignment.month_start(now))
    misses = misses_in_month([m.user_id for m in members], last_month) if members else {}
    rows = []
    for team in teams:
        role = _team_role(team, rules)
        candidates = {c.user_id: c for c in assignment.team_candidates(team, role, policy, now)}
        team_members = []
        for m in (m for m in members if m.team_id == team.pk):
            c = candidates.get(m.user_id)
            team_members.append(
                {
                    "member": m,
                    "this_month": c.this_month if c else None,
                    "open_leads": c.open_leads if c else None,
                    "share": int(c.share * 100) if c else 0,
                    "misses": misses.get(m.user_id, 0),
                    "form": forms_.get(f"member-{m.pk}")
                    or MemberEditForm(
                        initial={
                            "capacity": m.capacity,
                            "is_active": m.is_active,
                            "penalised": m.penalised,
                        },
                        prefix=f"m{m.pk}",
                    ),
                }
            )
        rows.append(
            {
                "team": team,
                "role": role,
                "members": team_members,
                "rules": [r for r in rules if r.team_id == team.pk],
                "add_form": forms_.get(f"add-{team.pk}") or MemberForm(people=people),
                "form": forms_.get(f"team-{team.pk}")
                or TeamForm(initial={"name": team.name, "method": team.method}),
            }
        )
    return {
        "teams": rows,
        "team_form": forms_.get("team-new") or TeamForm(),
        "last_month": last_month,
        "penalty_misses": policy.penalty_misses,
        "penalty_share": policy.penalty_share,
    }


def _rules_context(
    request: HttpRequest,
    unit: BusinessUnit,
    rules: list[AssignmentRule],
    forms_: dict[str, Any],
) -> dict[str, Any]:
    people = services.team_people(unit)
    teams = list(SalesTeam.objects.dangerously_unscoped().filter(unit=unit).order_by("name"))
    editing = None
    raw = forms_.get("edit") or request.GET.get("edit", "")
    if raw.isdigit():
        editing = next((r for r in rules if r.pk == int(raw)), None)
        if editing is None:
            raise Http404
    form = forms_.get("rule")
    if form is None:
        initial = (
            RuleForm.initial_for(editing)
            if editing
            else {"role": request.GET.get("role") or "sales", "is_active": True}
        )
        form = RuleForm(initial=initial, people=people, teams=teams)
    names = {p.pk: str(p) for p in people}
    by_role = []
    for role, label in AssignmentRule.Role.choices:
        items = [r for r in rules if r.role == role]
        by_role.append(
            {
                "role": role,
                "label": label,
                "rules": [
                    {
                        "rule": r,
                        "target": r.team.name
                        if r.team
                        else names.get(r.user_id or 0, f"#{r.user_id}"),
                        "summary": _summary(r.conditions or {}),
                        "first": i == 0,
                        "last": i == len(items) - 1,
                    }
                    for i, r in enumerate(items)
                ],
            }
        )
    return {
        "rule_groups": by_role,
        "rule_form": form,
        "editing": editing,
        "test_form": forms_.get("test") or RouteTestForm(initial={"role": "sales"}),
        "test_result": forms_.get("test_result"),
    }


def _summary(c: dict[str, Any]) -> list[str]:
    out = []
    labels = {
        "regions": _("regions"),
        "industries": _("industries"),
        "tiers": _("tiers"),
        "products": _("products"),
    }
    tier_names = {k: str(v) for k, v in Tier.choices}
    for key, label in labels.items():
        if c.get(key):
            values = [tier_names.get(v, v) for v in c[key]] if key == "tiers" else c[key]
            out.append(f"{label}: {', '.join(values)}")
    for low, high, label in (
        ("size_min", "size_max", _("employees")),
        ("score_min", "score_max", _("score")),
    ):
        if c.get(low) is not None or c.get(high) is not None:
            out.append(f"{label}: {c.get(low, '…')}–{c.get(high, '…')}")
    return out or [_("every lead")]


def _calendar_context(request: HttpRequest, form: CalendarDayForm | None) -> dict[str, Any]:
    this_year = timezone.localdate().year
    rows = calendar_years()
    recent = [r for r in rows if r["year"] >= this_year - 2]
    user = user_of(request)
    may_edit = calendar_may_edit(user)
    return {
        "calendar_years": recent or rows[:3],
        "calendar_missing": years_without_data([this_year, this_year + 1]),
        "calendar_form": (form or CalendarDayForm()) if may_edit else None,
        "calendar_recent": calendar_days_from(this_year),
        "this_year": this_year,
    }


def calendar_may_edit(user: Any) -> bool:
    """The calendar is the whole group's: superusers and group administrators edit it."""
    if user.is_superuser:
        return True
    ids = visible_unit_ids(user, "core.admin_unit")
    return (
        bool(ids)
        and BusinessUnit.objects.dangerously_unscoped()
        .filter(pk__in=ids, parent__isnull=True)
        .exists()
    )


# --- The page -------------------------------------------------------------------------------


def _page(
    request: HttpRequest,
    units: list[BusinessUnit],
    unit: BusinessUnit,
    tab: str,
    forms_: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    forms_ = forms_ or {}
    rules = list(
        AssignmentRule.objects.dangerously_unscoped()
        .filter(unit=unit)
        .select_related("team")
        .order_by("role", "position", "id")
    )
    context = surface_context(
        request,
        request.surface,  # type: ignore[attr-defined]
        units=units,
        unit=unit,
        tab=tab,
        tabs=[
            ("policy", _("SLA policy")),
            ("teams", _("Teams")),
            ("rules", _("Assignment rules")),
            ("calendar", _("Holiday calendar")),
        ],
        calendar_missing=years_without_data(
            [timezone.localdate().year, timezone.localdate().year + 1]
        ),
    )
    if tab == "policy":
        context.update(_policy_context(unit, forms_.get("policy")))
    elif tab == "teams":
        context.update(_teams_context(unit, rules, forms_))
    elif tab == "rules":
        context.update(_rules_context(request, unit, rules, forms_))
    else:
        context.update(_calendar_context(request, forms_.get("calendar")))
    return render(request, "sales/setup/page.html", context, status=status)


@setup_required
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    units = _units(request)
    if not units:
        return render(request, "core/forbidden.html", {"surface": _("Sales setup")}, status=403)
    unit = _unit(request, units)
    tab = str(request.GET.get("tab")) if request.GET.get("tab") in TABS else "policy"
    if request.method == "POST":
        action = request.POST.get("action", "")
        handler = ACTIONS.get(action)
        if handler is None:
            raise Http404
        return handler(request, units, unit)
    if tab == "rules" and request.GET.get("test"):
        return _route_test(request, units, unit)
    return _page(request, units, unit, tab)


# --- Actions (POST) -------------------------------------------------------------------------

Handler = Callable[[HttpRequest, list[BusinessUnit], BusinessUnit], HttpResponse]


def _save_policy(
    request: HttpRequest, units: list[BusinessUnit], unit: BusinessUnit
) -> HttpResponse:
    form = SlaPolicyForm(request.POST, instance=_policy(unit))
    if form.is_valid():
        try:
            services.sla_policy_update(unit=unit, acting_user=user_of(request), **form.values())
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("SLA policy saved."))
            return redirect(_url(unit, "policy"))
    return _page(request, units, unit, "policy", {"policy": form}, status=400)


def _team_or_404(unit: BusinessUnit, raw: str) -> SalesTeam:
    team = (
        SalesTeam.objects.dangerously_unscoped().filter(unit=unit, pk=int(raw)).first()
        if raw.isdigit()
        else None
    )
    if team is None:
        raise Http404
    return team


def _member_or_404(unit: BusinessUnit, raw: str) -> TeamMember:
    member = (
        TeamMember.objects.dangerously_unscoped()
        .filter(team__unit=unit, pk=int(raw))
        .select_related("team", "team__unit")
        .first()
        if raw.isdigit()
        else None
    )
    if member is None:
        raise Http404
    return member


def _rule_or_404(unit: BusinessUnit, raw: str) -> AssignmentRule:
    rule = (
        AssignmentRule.objects.dangerously_unscoped().filter(unit=unit, pk=int(raw)).first()
        if raw.isdigit()
        else None
    )
    if rule is None:
        raise Http404
    return rule


def _team_create(
    request: HttpRequest, units: list[BusinessUnit], unit: BusinessUnit
) -> HttpResponse:
    form = TeamForm(request.POST)
    if form.is_valid():
        try:
            services.sales_team_create(unit=unit, acting_user=user_of(request), **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Team created. Add its people below."))
            return redirect(_url(unit, "teams"))
    return _page(request, units, unit, "teams", {"team-new": form}, status=400)


def _team_update(
    request: HttpRequest, units: list[BusinessUnit], unit: BusinessUnit
) -> HttpResponse:
    team = _team_or_404(unit, request.POST.get("team", ""))
    form = TeamForm(request.POST)
    if form.is_valid():
        try:
            services.sales_team_update(team=team, acting_user=user_of(request), **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Team saved."))
            return redirect(_url(unit, "teams"))
    return _page(request, units, unit, "teams", {f"team-{team.pk}": form}, status=400)


def _team_delete(
    request: HttpRequest, units: list[BusinessUnit], unit: BusinessUnit
) -> HttpResponse:
    team = _team_or_404(unit, request.POST.get("team", ""))
    try:
        services.sales_team_delete(team=team, acting_user=user_of(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Team deleted."))
    return redirect(_url(unit, "teams"))


def _member_add(
    request: HttpRequest, units: list[BusinessUnit], unit: BusinessUnit
) -> HttpResponse:
    team = _team_or_404(unit, request.POST.get("team", ""))
    form = MemberForm(request.POST, people=services.team_people(unit))
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.team_member_add(
                team=team,
                user=data["user"],
                capacity=data["capacity"],
                is_active=data["is_active"],
                penalised=data["penalised"],
                acting_user=user_of(request),
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(
                request,
                _("%(person)s joined %(team)s.") % {"person": data["user"], "team": team.name},
            )
            return redirect(_url(unit, "teams"))
    return _page(request, units, unit, "teams", {f"add-{team.pk}": form}, status=400)


def _member_update(
    request: HttpRequest, units: list[BusinessUnit], unit: BusinessUnit
) -> HttpResponse:
    member = _member_or_404(unit, request.POST.get("member", ""))
    form = MemberEditForm(request.POST, prefix=f"m{member.pk}")
    if form.is_valid():
        try:
            services.team_member_update(
                member=member, acting_user=user_of(request), **form.cleaned_data
            )
        except ValidationError as exc:
            _add_errors(form, exc)
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Saved."))
            return redirect(_url(unit, "teams"))
    return _page(request, units, unit, "teams", {f"member-{member.pk}": form}, status=400)


def _member_remove(
    request: HttpRequest, units: list[BusinessUnit], unit: BusinessUnit
) -> HttpResponse:
    member = _member_or_404(unit, request.POST.get("member", ""))
    try:
        services.team_member_remove(member=member, acting_user=user_of(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Removed from the team."))
    return redirect(_url(unit, "teams"))


def _rule_save(request: HttpRequest, units: list[BusinessUnit], unit: BusinessUnit) -> HttpResponse:
    raw = request.POST.get("rule", "")
    rule = _rule_or_404(unit, raw) if raw else None
    people = services.team_people(unit)
    teams = list(SalesTeam.objects.dangerously_unscoped().filter(unit=unit).order_by("name"))
    form = RuleForm(request.POST, people=people, teams=teams)
    if form.is_valid():
        user = user_of(request)
        try:
            if rule is None:
                services.assignment_rule_create(unit=unit, acting_user=user, **form.values())
            else:
                services.assignment_rule_update(rule=rule, acting_user=user, **form.values())
        except ValidationError as exc:
            renamed = {"team": "target", "user": "target", **CONDITION_FIELDS}
            if hasattr(exc, "error_dict") and "conditions" in exc.error_dict:
                form.add_error(None, exc.message_dict["conditions"])
            else:
                _add_errors(form, exc, renamed)
        else:
            messages.success(request, _("Assignment rule saved."))
            return redirect(_url(unit, "rules"))
    # The form stays the rule being edited.
    forms_ = {"rule": form, "edit": str(rule.pk) if rule is not None else ""}
    return _page(request, units, unit, "rules", forms_, status=400)


def _rule_move(request: HttpRequest, units: list[BusinessUnit], unit: BusinessUnit) -> HttpResponse:
    rule = _rule_or_404(unit, request.POST.get("rule", ""))
    services.assignment_rule_move(
        rule=rule, up=request.POST.get("direction") == "up", acting_user=user_of(request)
    )
    return redirect(_url(unit, "rules"))


def _rule_toggle(
    request: HttpRequest, units: list[BusinessUnit], unit: BusinessUnit
) -> HttpResponse:
    rule = _rule_or_404(unit, request.POST.get("rule", ""))
    try:
        services.assignment_rule_update(
            rule=rule, is_active=not rule.is_active, acting_user=user_of(request)
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request, _("Rule switched on.") if rule.is_active else _("Rule switched off.")
        )
    return redirect(_url(unit, "rules"))


def _rule_delete(
    request: HttpRequest, units: list[BusinessUnit], unit: BusinessUnit
) -> HttpResponse:
    rule = _rule_or_404(unit, request.POST.get("rule", ""))
    services.assignment_rule_delete(rule=rule, acting_user=user_of(request))
    messages.success(request, _("Assignment rule removed."))
    return redirect(_url(unit, "rules"))


def _calendar_add(
    request: HttpRequest, units: list[BusinessUnit], unit: BusinessUnit
) -> HttpResponse:
    if not calendar_may_edit(user_of(request)):
        return render(
            request, "core/forbidden.html", {"surface": _("Holiday calendar")}, status=403
        )
    form = CalendarDayForm(request.POST)
    if form.is_valid():
        try:
            day = services.calendar_day_add(acting_user=user_of(request), **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(
                request, _("%(date)s added to the calendar.") % {"date": day.date.isoformat()}
            )
            return redirect(_url(unit, "calendar"))
    return _page(request, units, unit, "calendar", {"calendar": form}, status=400)


def _route_test(
    request: HttpRequest, units: list[BusinessUnit], unit: BusinessUnit
) -> HttpResponse:
    """Where would this open lead go now (nothing is recorded)."""
    form = RouteTestForm(request.GET)
    result: dict[str, Any] | None = None
    if form.is_valid():
        lead = (
            Lead.objects.visible_to(user_of(request))
            .filter(pk=form.cleaned_data["lead"], unit=unit, is_open=True)
            .select_related("contact")
            .first()
        )
        if lead is None:
            form.add_error("lead", _("No open lead with this id in this business unit."))
        else:
            routed = assignment.route(lead, form.cleaned_data["role"], policy=_policy(unit))
            person = None
            if routed.user_id is not None:
                from apps.core.models import User

                person = User.objects.dangerously_unscoped().filter(pk=routed.user_id).first()
            result = {"lead": lead, "routed": routed, "person": person}
    status = 200 if result is not None else 400
    return _page(
        request, units, unit, "rules", {"test": form, "test_result": result}, status=status
    )


ACTIONS: dict[str, Handler] = {
    "policy": _save_policy,
    "team-create": _team_create,
    "team-update": _team_update,
    "team-delete": _team_delete,
    "member-add": _member_add,
    "member-update": _member_update,
    "member-remove": _member_remove,
    "rule-save": _rule_save,
    "rule-move": _rule_move,
    "rule-toggle": _rule_toggle,
    "rule-delete": _rule_delete,
    "calendar-add": _calendar_add,
}


urlpatterns = [
    path("console/sales/", setup, name="setup"),
]
