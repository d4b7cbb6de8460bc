"""Lead routing (线索分配): a unit's ordered rules pick a person or a team; inside a team,
weighted round robin or least loaded, within each person's capacity.

Shares: everyone starts at 1. Someone marked penalised by sales ops, or with at least
``policy.penalty_misses`` missed SLAs last calendar month, gets ``policy.penalty_share``
percent (seed 003 rule 5: two misses → fewer leads next month). Round robin gives the next
lead to the member with the lowest (leads this month + 1) / share, so over a month
assignments follow the shares.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.sales.models import (
    Assignment,
    AssignmentRule,
    AssignMethod,
    Lead,
    SalesTeam,
    SlaPolicy,
    TeamMember,
)
from apps.sales.services.sla import misses_in_month

CONDITION_KEYS = {
    "regions",
    "industries",
    "tiers",
    "products",
    "size_min",
    "size_max",
    "score_min",
    "score_max",
}
LIST_KEYS = ("regions", "industries", "tiers", "products")


def conditions_problems(conditions: Any) -> list[str]:
    """What is wrong with a rule's conditions (empty when fine), field by field."""
    if not isinstance(conditions, dict):
        return [_("conditions: expected an object")]
    problems = []
    for key in sorted(set(conditions) - CONDITION_KEYS):
        problems.append(_("%(key)s: not a condition we know") % {"key": key})
    for key in LIST_KEYS:
        value = conditions.get(key)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) and v for v in value)
        ):
            problems.append(_("%(key)s: expected a list of names") % {"key": key})
    for low, high in (("size_min", "size_max"), ("score_min", "score_max")):
        values = {}
        for key in (low, high):
            value = conditions.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                problems.append(_("%(key)s: expected a number of 0 or more") % {"key": key})
            else:
                values[key] = value
        if len(values) == 2 and values[low] > values[high]:
            problems.append(
                _("%(low)s is above %(high)s: the rule could never match")
                % {"low": low, "high": high}
            )
    return problems


def rule_validate(rule: AssignmentRule) -> None:
    """Refuse a rule that cannot route anyone: bad conditions, an empty team, a person
    outside the unit."""
    problems = conditions_problems(rule.conditions)
    if problems:
        raise ValidationError({"conditions": problems})
    if rule.team_id is not None:
        if rule.team is None or rule.team.unit_id != rule.unit_id:
            raise ValidationError({"team": _("Pick a team of the same business unit.")})
        if (
            not TeamMember.objects.dangerously_unscoped()
            .filter(team_id=rule.team_id, is_active=True)
            .exists()
        ):
            raise ValidationError(
                {"team": _("This team has nobody taking leads: the rule would match nobody.")}
            )


def lead_matches(rule: AssignmentRule, lead: Lead) -> bool:
    c = rule.conditions or {}
    contact = lead.contact
    checks = (
        ("regions", contact.province),
        ("industries", contact.industry),
        ("tiers", lead.tier),
        ("products", lead.product_interest),
    )
    for key, value in checks:
        if c.get(key) and value not in c[key]:
            return False
    size = lead.company_size
    if c.get("size_min") is not None and (size is None or size < c["size_min"]):
        return False
    if c.get("size_max") is not None and (size is None or size > c["size_max"]):
        return False
    score = lead.score or Decimal(0)
    if c.get("score_min") is not None and score < Decimal(str(c["score_min"])):
        return False
    return not (c.get("score_max") is not None and score > Decimal(str(c["score_max"])))


def month_start(now: dt.datetime) -> dt.date:
    return timezone.localtime(now).date().replace(day=1)


def previous_month(start: dt.date) -> dt.date:
    return (start - dt.timedelta(days=1)).replace(day=1)


@dataclass
class Candidate:
    user_id: int
    share: Decimal
    this_month: int
    open_leads: int
    capacity: int | None


def team_candidates(
    team: SalesTeam, role: str, policy: SlaPolicy, now: dt.datetime
) -> list[Candidate]:
    members = list(TeamMember.objects.dangerously_unscoped().filter(team=team, is_active=True))
    if not members:
        return []
    user_ids = [m.user_id for m in members]
    start = month_start(now)
    misses = misses_in_month(user_ids, previous_month(start))
    tz = timezone.get_current_timezone()
    since = dt.datetime.combine(start, dt.time(0), tzinfo=tz)
    counts = dict(
        Assignment.objects.dangerously_unscoped()
        .filter(team=team, role=role, at__gte=since, user_id__in=user_ids)
        .values_list("user_id")
        .annotate(n=Count("id"))
    )
    field = "sdr_id" if role == AssignmentRule.Role.SDR else "owner_id"
    loads = dict(
        Lead.objects.dangerously_unscoped()
        .filter(is_open=True, **{f"{field}__in": user_ids})
        .values_list(field)
        .annotate(n=Count("id"))
    )
    cut = Decimal(policy.penalty_share) / 100
    out = []
    for m in members:
        penalised = m.penalised or misses.get(m.user_id, 0) >= policy.penalty_misses > 0
        out.append(
            Candidate(
                user_id=m.user_id,
                share=cut if penalised else Decimal(1),
                this_month=counts.get(m.user_id, 0),
                open_leads=loads.get(m.user_id, 0),
                capacity=m.capacity,
            )
        )
    return out


def pick(team: SalesTeam, candidates: list[Candidate], exclude: set[int]) -> int | None:
    free = [
        c
        for c in candidates
        if c.share > 0
        and c.user_id not in exclude
        and (c.capacity is None or c.open_leads < c.capacity)
    ]
    if not free:
        return None
    if team.method == AssignMethod.LEAST_LOADED:
        best = min(
            free,
            key=lambda c: (
                Decimal(c.open_leads) / c.capacity if c.capacity else Decimal(c.open_leads),
                c.user_id,
            ),
        )
    else:
        best = min(free, key=lambda c: ((c.this_month + 1) / c.share, c.this_month, c.user_id))
    return best.user_id


@dataclass
class Routed:
    user_id: int | None
    rule: AssignmentRule | None = None
    team: SalesTeam | None = None


def route(
    lead: Lead,
    role: str,
    *,
    policy: SlaPolicy,
    now: dt.datetime | None = None,
    exclude: set[int] | None = None,
) -> Routed:
    """Who should get ``lead`` for ``role`` ("sdr" or "sales"): the first active rule of the
    unit that matches and has someone free. ``Routed(None)`` when nobody."""
    now = now or timezone.now()
    exclude = exclude or set()
    rules = (
        AssignmentRule.objects.dangerously_unscoped()
        .filter(unit_id=lead.unit_id, role=role, is_active=True)
        .select_related("team")
        .order_by("position", "id")
    )
    for rule in rules:
        if not lead_matches(rule, lead):
            continue
        if rule.user_id is not None:
            if rule.user_id in exclude:
                continue
            return Routed(rule.user_id, rule)
        assert rule.team is not None
        user_id = pick(rule.team, team_candidates(rule.team, role, policy, now), exclude)
        if user_id is not None:
            return Routed(user_id, rule, rule.team)
    return Routed(None)


def record(lead: Lead, routed: Routed, role: str, now: dt.datetime | None = None) -> None:
    if routed.user_id is None:
        return
    Assignment.objects.create(
        lead=lead,
        unit_id=lead.unit_id,
        user_id=routed.user_id,
        role=role,
        rule=routed.rule,
        team=routed.team,
        at=now or timezone.now(),
    )
