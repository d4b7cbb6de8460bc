"""Writes for sales ops configuration (the setup page and the admin), audited.

SLA policy, sales teams and their members, assignment rules. Every write is checked
before it is stored (a policy whose day ends before it starts, a rule that could match
nobody are refused with the reason) and leaves one audit row in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from apps.core.audit_actions import register_action
from apps.core.models import BusinessUnit, Membership
from apps.core.models import CalendarDay as CalendarDayModel
from apps.core.services import Actor, audit_record
from apps.sales.models import (
    BANT_FIELDS,
    AssignmentRule,
    DurationUnit,
    SalesTeam,
    SlaPolicy,
    TeamMember,
)
from apps.sales.services.assignment import rule_validate

for _code, _label in (
    ("sla_policy.update", _lazy("SLA policy changed")),
    ("sales_team.create", _lazy("Sales team created")),
    ("sales_team.update", _lazy("Sales team changed")),
    ("sales_team.delete", _lazy("Sales team deleted")),
    ("team_member.create", _lazy("Team member added")),
    ("team_member.update", _lazy("Team member changed")),
    ("team_member.delete", _lazy("Team member removed")),
    ("assignment_rule.create", _lazy("Assignment rule added")),
    ("assignment_rule.update", _lazy("Assignment rule changed")),
    ("assignment_rule.delete", _lazy("Assignment rule removed")),
    ("calendar_day.create", _lazy("Holiday calendar day added")),
):
    register_action(_code, _label)

# Roles that may sit in a sales team (SDRs, salespeople, their managers).
TEAM_ROLES = ("sdr", "sales", "sales_manager")

POLICY_FIELDS = (
    "work_start",
    "work_end",
    "first_touch_value",
    "first_touch_unit",
    "accept_value",
    "accept_unit",
    "sql_value",
    "sql_unit",
    "follow_up_value",
    "follow_up_unit",
    "recycle_to_sdr",
    "warn_before_minutes",
    "penalty_misses",
    "penalty_share",
    "sdr_credit_days",
    "bant_required",
    "use_tql",
)
MAX_CLOCK = {
    DurationUnit.HOURS: 24 * 90,
    DurationUnit.WORKING_HOURS: 9 * 90,
    DurationUnit.WORKING_DAYS: 90,
}


def _snap(obj: Any, fields: tuple[str, ...] | list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in fields:
        value = getattr(obj, name)
        out[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


# --- SLA policy ---------------------------------------------------------------------------


def policy_problems(policy: SlaPolicy) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        problems.setdefault(field, []).append(message)

    if policy.work_start is None or policy.work_end is None:
        add("work_end", _("Give the hours the working day starts and ends."))
    elif policy.work_end <= policy.work_start:
        add("work_end", _("The working day must end after it starts."))
    for clock in ("first_touch", "accept", "sql", "follow_up"):
        value = getattr(policy, f"{clock}_value")
        unit = getattr(policy, f"{clock}_unit")
        if unit not in DurationUnit.values:
            add(f"{clock}_unit", _("Pick hours, working hours or working days."))
            continue
        if value is None or value < 1:
            add(f"{clock}_value", _("Give a time of at least 1."))
        elif value > MAX_CLOCK[unit]:
            add(
                f"{clock}_value",
                _("At most %(n)d %(unit)s.")
                % {"n": MAX_CLOCK[unit], "unit": DurationUnit(unit).label},
            )
    if policy.penalty_share is None or not 0 <= policy.penalty_share <= 100:
        add("penalty_share", _("A share is a percentage from 0 to 100."))
    if policy.sdr_credit_days is None or not 1 <= policy.sdr_credit_days <= 365:
        add("sdr_credit_days", _("Give 1 to 365 days."))
    if policy.warn_before_minutes is None or policy.warn_before_minutes > 7 * 24 * 60:
        add("warn_before_minutes", _("Warn at most a week (10080 minutes) ahead."))
    bant = policy.bant_required
    if not isinstance(bant, list) or any(b not in BANT_FIELDS for b in bant):
        add("bant_required", _("Pick from budget, authority, need and timeline."))
    return problems


@transaction.atomic
def sla_policy_update(*, unit: BusinessUnit, acting_user: Actor, **changes: Any) -> SlaPolicy:
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise ValidationError({k: [_("This cannot be changed.")] for k in sorted(unknown)})
    policy, _created = SlaPolicy.objects.dangerously_unscoped().get_or_create(unit=unit)
    policy = SlaPolicy.objects.dangerously_unscoped().select_for_update().get(pk=policy.pk)
    before = _snap(policy, list(changes))
    for key, value in changes.items():
        setattr(policy, key, value)
    if "bant_required" in changes and isinstance(policy.bant_required, list):
        policy.bant_required = [b for b in BANT_FIELDS if b in policy.bant_required]
    problems = policy_problems(policy)
    if problems:
        raise ValidationError(problems)
    policy.save()
    after = _snap(policy, list(changes))
    changed = {k for k in changes if before[k] != after[k]}
    if changed:
        audit_record(
            actor=acting_user,
            action="sla_policy.update",
            obj=policy,
            unit=unit.pk,
            before={k: before[k] for k in sorted(changed)},
            after={k: after[k] for k in sorted(changed)},
        )
    return policy


# --- Teams --------------------------------------------------------------------------------


def team_people(unit: BusinessUnit) -> list[Any]:
    """People who may join a team of ``unit``: SDRs, salespeople and their managers there
    (directly or through the unit's group)."""
    from apps.core.models import User

    unit_ids = [unit.pk] + ([unit.parent_id] if unit.parent_id else [])
    ids = (
        Membership.objects.dangerously_unscoped()
        .filter(unit_id__in=unit_ids, role__in=TEAM_ROLES, user__is_active=True)
        .values("user_id")
    )
    return list(User.objects.filter(pk__in=ids).order_by("username"))


def _team_check(team: SalesTeam) -> None:
    name = (team.name or "").strip()
    if not name:
        raise ValidationError({"name": _("Give the team a name.")})
    if len(name) > 100:
        raise ValidationError({"name": _("Keep the name under 100 characters.")})
    team.name = name
    from apps.sales.models import AssignMethod

    if team.method not in AssignMethod.values:
        raise ValidationError({"method": _("Pick round robin or least loaded.")})


def _team_save(team: SalesTeam) -> None:
    try:
        with transaction.atomic():
            team.save()
    except IntegrityError as exc:
        raise ValidationError(
            {
                "name": _("This business unit already has a team called “%(name)s”.")
                % {"name": team.name}
            }
        ) from exc


@transaction.atomic
def sales_team_create(
    *, unit: BusinessUnit, name: str, method: str = "round_robin", acting_user: Actor
) -> SalesTeam:
    team = SalesTeam(unit=unit, name=name, method=method)
    _team_check(team)
    _team_save(team)
    audit_record(
        actor=acting_user,
        action="sales_team.create",
        obj=team,
        unit=unit.pk,
        after=_snap(team, ("name", "method")),
    )
    return team


@transaction.atomic
def sales_team_update(*, team: SalesTeam, acting_user: Actor, **changes: Any) -> SalesTeam:
    unknown = set(changes) - {"name", "method"}
    if unknown:
        raise ValidationError({k: [_("This cannot be changed.")] for k in sorted(unknown)})
    before = _snap(team, ("name", "method"))
    for key, value in changes.items():
        setattr(team, key, value)
    _team_check(team)
    _team_save(team)
    audit_record(
        actor=acting_user,
        action="sales_team.update",
        obj=team,
        unit=team.unit_id,
        before=before,
        after=_snap(team, ("name", "method")),
    )
    return team


@transaction.atomic
def sales_team_delete(*, team: SalesTeam, acting_user: Actor) -> None:
    active_rules = AssignmentRule.objects.dangerously_unscoped().filter(team=team, is_active=True)
    names = list(active_rules.values_list("name", flat=True)[:5])
    if names:
        raise ValidationError(
            _("Active assignment rules route to this team (%(names)s): disable them first.")
            % {"names": ", ".join(names)}
        )
    audit_record(
        actor=acting_user,
        action="sales_team.delete",
        obj=team,
        unit=team.unit_id,
        before=_snap(team, ("name", "method")),
    )
    team.delete()


MEMBER_FIELDS = ("capacity", "is_active", "penalised")


def _member_check(member: TeamMember, unit: BusinessUnit) -> None:
    if member.capacity is not None and not 0 < member.capacity <= 100000:
        raise ValidationError(
            {"capacity": _("Capacity is 1 or more open leads (empty: no limit).")}
        )
    if member.user_id not in {u.pk for u in team_people(unit)}:
        raise ValidationError(
            {"user": _("Pick an SDR, salesperson or sales manager of this business unit.")}
        )


def _leaves_rule_empty(member: TeamMember) -> list[str]:
    """Active rules of the team that would have nobody taking leads without ``member``."""
    others = (
        TeamMember.objects.dangerously_unscoped()
        .filter(team_id=member.team_id, is_active=True)
        .exclude(pk=member.pk)
        .exists()
    )
    if others:
        return []
    return list(
        AssignmentRule.objects.dangerously_unscoped()
        .filter(team_id=member.team_id, is_active=True)
        .values_list("name", flat=True)[:5]
    )


@transaction.atomic
def team_member_add(
    *,
    team: SalesTeam,
    user: Any,
    capacity: int | None = None,
    is_active: bool = True,
    penalised: bool = False,
    acting_user: Actor,
) -> TeamMember:
    member = TeamMember(
        team=team,
        # No person: id 0, which the check below refuses with its message.
        user_id=cast(int, getattr(user, "pk", None) or 0),
        capacity=capacity,
        is_active=is_active,
        penalised=penalised,
    )
    _member_check(member, team.unit)
    try:
        with transaction.atomic():
            member.save()
    except IntegrityError as exc:
        raise ValidationError({"user": _("This person is already in the team.")}) from exc
    audit_record(
        actor=acting_user,
        action="team_member.create",
        obj=member,
        unit=team.unit_id,
        after={"user": member.user_id, **_snap(member, MEMBER_FIELDS)},
    )
    return member


@transaction.atomic
def team_member_update(*, member: TeamMember, acting_user: Actor, **changes: Any) -> TeamMember:
    unknown = set(changes) - set(MEMBER_FIELDS)
    if unknown:
        raise ValidationError({k: [_("This cannot be changed.")] for k in sorted(unknown)})
    before = _snap(member, MEMBER_FIELDS)
    for key, value in changes.items():
        setattr(member, key, value)
    _member_check(member, member.team.unit)
    if not member.is_active:
        rules = _leaves_rule_empty(member)
        if rules:
            raise ValidationError(
                {
                    "is_active": _(
                        "Nobody else in the team takes leads, and rules route to it (%(names)s):"
                        " the rules would match nobody."
                    )
                    % {"names": ", ".join(rules)}
                }
            )
    member.save()
    audit_record(
        actor=acting_user,
        action="team_member.update",
        obj=member,
        unit=member.team.unit_id,
        before=before,
        after=_snap(member, MEMBER_FIELDS),
    )
    return member


@transaction.atomic
def team_member_remove(*, member: TeamMember, acting_user: Actor) -> None:
    rules = _leaves_rule_empty(member)
    if rules:
        raise ValidationError(
            _(
                "Nobody else in the team takes leads, and rules route to it (%(names)s): "
                "disable the rules first."
            )
            % {"names": ", ".join(rules)}
        )
    audit_record(
        actor=acting_user,
        action="team_member.delete",
        obj=member,
        unit=member.team.unit_id,
        before={"user": member.user_id, **_snap(member, MEMBER_FIELDS)},
    )
    member.delete()


# --- Assignment rules ---------------------------------------------------------------------

RULE_FIELDS = ("name", "role", "conditions", "user_id", "team_id", "is_active", "position")


def _rule_check(rule: AssignmentRule) -> None:
    name = (rule.name or "").strip()
    if not name:
        raise ValidationError({"name": _("Give the rule a name.")})
    rule.name = name[:100]
    if rule.role not in AssignmentRule.Role.values:
        raise ValidationError({"role": _("Pick SDR or sales.")})
    if (rule.user_id is None) == (rule.team_id is None):
        raise ValidationError({"target": _("Route to either one person or one team.")})
    if rule.user_id is not None:
        unit = BusinessUnit.objects.dangerously_unscoped().get(pk=rule.unit_id)
        if rule.user_id not in {u.pk for u in team_people(unit)}:
            raise ValidationError(
                {"user": _("Pick an SDR, salesperson or sales manager of this business unit.")}
            )
    # Conditions, the team being of this unit and having someone taking leads.
    rule_validate(rule)


@transaction.atomic
def assignment_rule_create(
    *,
    unit: BusinessUnit,
    name: str,
    role: str,
    conditions: dict[str, Any],
    user: Any = None,
    team: SalesTeam | None = None,
    is_active: bool = True,
    acting_user: Actor,
) -> AssignmentRule:
    last = (
        AssignmentRule.objects.dangerously_unscoped()
        .filter(unit=unit, role=role)
        .aggregate(m=Max("position"))["m"]
    )
    rule = AssignmentRule(
        unit=unit,
        name=name,
        role=role,
        conditions=conditions,
        user_id=getattr(user, "pk", None),
        team=team,
        is_active=is_active,
        position=0 if last is None else last + 1,
    )
    _rule_check(rule)
    rule.save()
    audit_record(
        actor=acting_user,
        action="assignment_rule.create",
        obj=rule,
        unit=unit.pk,
        after=_snap(rule, RULE_FIELDS),
    )
    return rule


@transaction.atomic
def assignment_rule_update(
    *, rule: AssignmentRule, acting_user: Actor, **changes: Any
) -> AssignmentRule:
    allowed = {"name", "role", "conditions", "user", "team", "is_active"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({k: [_("This cannot be changed.")] for k in sorted(unknown)})
    before = _snap(rule, RULE_FIELDS)
    for key, value in changes.items():
        if key == "user":
            rule.user_id = getattr(value, "pk", None)
        elif key == "team":
            rule.team = value
        else:
            setattr(rule, key, value)
    if rule.is_active:
        _rule_check(rule)
    rule.save()
    audit_record(
        actor=acting_user,
        action="assignment_rule.update",
        obj=rule,
        unit=rule.unit_id,
        before=before,
        after=_snap(rule, RULE_FIELDS),
    )
    return rule


@transaction.atomic
def assignment_rule_move(*, rule: AssignmentRule, up: bool, acting_user: Actor) -> None:
    """Swap ``rule`` with its neighbour in its unit's list for its role (renumbered 0…n)."""
    rules = list(
        AssignmentRule.objects.dangerously_unscoped()
        .select_for_update()
        .filter(unit_id=rule.unit_id, role=rule.role)
        .order_by("position", "id")
    )
    index = next(i for i, r in enumerate(rules) if r.pk == rule.pk)
    other = index - 1 if up else index + 1
    if not 0 <= other < len(rules):
        return
    before = [r.pk for r in rules]
    rules[index], rules[other] = rules[other], rules[index]
    changed = [r for position, r in enumerate(rules) if r.position != position]
    for position, r in enumerate(rules):
        r.position = position
    AssignmentRule.objects.dangerously_unscoped().bulk_update(changed, ["position"])
    audit_record(
        actor=acting_user,
        action="assignment_rule.update",
        obj=rule,
        unit=rule.unit_id,
        before={"order": before},
        after={"order": [r.pk for r in rules]},
    )


@transaction.atomic
def assignment_rule_delete(*, rule: AssignmentRule, acting_user: Actor) -> None:
    audit_record(
        actor=acting_user,
        action="assignment_rule.delete",
        obj=rule,
        unit=rule.unit_id,
        before=_snap(rule, RULE_FIELDS),
    )
    rule.delete()


# --- Holiday calendar ---------------------------------------------------------------------


@transaction.atomic
def calendar_day_add(
    *, date: dt.date, is_workday: bool, name: str = "", acting_user: Actor
) -> CalendarDayModel:
    name = (name or "").strip()
    if len(name) > 60:
        raise ValidationError({"name": _("Keep the name under 60 characters.")})
    if is_workday and date.weekday() < 5:
        raise ValidationError(
            {
                "is_workday": _(
                    "%(date)s is a weekday and already a working day: "
                    "a make-up working day falls on a weekend."
                )
                % {"date": date.isoformat()}
            }
        )
    if not is_workday and date.weekday() >= 5:
        raise ValidationError(
            {
                "is_workday": _(
                    "%(date)s is a weekend and already a day off: only weekday holidays need a row."
                )
                % {"date": date.isoformat()}
            }
        )
    if CalendarDayModel.objects.filter(date=date).exists():
        raise ValidationError(
            {"date": _("%(date)s is already in the calendar.") % {"date": date.isoformat()}}
        )
    day = CalendarDayModel.objects.create(
        date=date, is_workday=is_workday, name=name, source="admin"
    )
    audit_record(
        actor=acting_user,
        action="calendar_day.create",
        obj=day,
        after={"date": date.isoformat(), "is_workday": is_workday, "name": name},
    )
    return day
