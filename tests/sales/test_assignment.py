"""Lead routing: ordered rules, weighted round robin with penalised shares (seed 003 rule
5), capacity, least loaded, and rules that match nobody."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from apps.contacts.models import Contact, Identity
from apps.core.roles import Role
from apps.sales.models import (
    Assignment,
    AssignmentRule,
    Lead,
    LeadHistory,
    SalesTeam,
    SlaMiss,
    Stage,
    TeamMember,
)
from apps.sales.services import assignment
from apps.sales.services import leads as services
from apps.sales.services.stages import policy_for
from tests.factories import UserFactory, member

SH = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 10, 10, 0, tzinfo=SH)  # "this month" is November 2026


def _people(world, n=3):
    people = []
    for i in range(n):
        user = UserFactory(username=f"sales-{i}")
        member(user, world.a, Role.SALES)
        people.append(user)
    return people


def _team(world, people, method="round_robin", extra=None):
    team = SalesTeam.objects.create(unit=world.a, name="华东销售", method=method)
    for user in people:
        TeamMember.objects.create(team=team, user=user, **(extra or {}).get(user.pk, {}))
    return team


def _mql(world, i, **facts):
    contact = Contact.objects.create(group=world.group, name=f"客户{i}", company_name=f"公司{i}")
    Identity.objects.create(
        group=world.group, contact=contact, kind="email", value=f"{contact.pk}@example.cn"
    )
    return services.lead_open(
        contact=contact,
        unit=world.a,
        source="manual",
        stage="mql",
        sdr=world.sdr,
        now=NOW,
        **facts,
    ).lead


def _hand_out(world, count, start=0):
    owners = []
    for i in range(start, start + count):
        lead = services.lead_handoff(lead=_mql(world, i), actor=world.sdr, now=NOW)
        owners.append(lead.owner_id)
    return Counter(owners)


def _two_misses_last_month(world, user):
    lead = _mql(world, "旧")
    Lead.objects.filter(pk=lead.pk).update(stage=Stage.DISQUALIFIED, is_open=False)
    for day in (5, 20):
        SlaMiss.objects.create(
            lead=lead,
            unit=world.a,
            user=user,
            clock="follow_up",
            due_at=dt.datetime(2026, 10, day, 12, 0, tzinfo=SH),
        )


@pytest.mark.django_db
def test_two_sla_misses_last_month_halve_the_round_robin_share(world):
    # Given a team of three; the third missed two SLAs in October
    a, b, c = _people(world)
    team = _team(world, [a, b, c])
    AssignmentRule.objects.create(unit=world.a, name="全部", team=team)
    _two_misses_last_month(world, c)
    # When 30 MQLs are handed to sales in November without naming a salesperson
    got = _hand_out(world, 30)
    # Then the penalised one gets half as many (penalty_share 50 %)
    assert got == {a.pk: 12, b.pk: 12, c.pk: 6}
    assert Assignment.objects.filter(team=team, role="sales").count() == 30


@pytest.mark.django_db
def test_misses_this_month_or_before_last_month_do_not_cut_the_share(world):
    a, b, c = _people(world)
    team = _team(world, [a, b, c])
    AssignmentRule.objects.create(unit=world.a, name="全部", team=team)
    lead = _mql(world, "旧")
    for due in (dt.datetime(2026, 9, 30, 12, tzinfo=SH), dt.datetime(2026, 11, 2, 12, tzinfo=SH)):
        SlaMiss.objects.create(lead=lead, unit=world.a, user=c, clock="accept", due_at=due)
    assert _hand_out(world, 30) == {a.pk: 10, b.pk: 10, c.pk: 10}


@pytest.mark.django_db
def test_a_member_marked_penalised_gets_half_the_leads(world):
    a, b, c = _people(world)
    team = _team(world, [a, b, c], extra={b.pk: {"penalised": True}})
    AssignmentRule.objects.create(unit=world.a, name="全部", team=team)
    assert _hand_out(world, 30) == {a.pk: 12, b.pk: 6, c.pk: 12}


@pytest.mark.django_db
def test_capacity_is_respected(world):
    # Given a team where the first member can hold 2 open leads
    a, b, c = _people(world)
    team = _team(world, [a, b, c], extra={a.pk: {"capacity": 2}})
    AssignmentRule.objects.create(unit=world.a, name="全部", team=team)
    # When 12 leads are handed out
    got = _hand_out(world, 12)
    # Then they get 2 and the others share the rest
    assert got == {a.pk: 2, b.pk: 5, c.pk: 5}
    assert Lead.objects.filter(owner=a, is_open=True).count() == 2


@pytest.mark.django_db
def test_a_team_at_full_capacity_routes_nobody(world):
    (a,) = _people(world, 1)
    team = _team(world, [a], extra={a.pk: {"capacity": 1}})
    AssignmentRule.objects.create(unit=world.a, name="全部", team=team)
    assert _hand_out(world, 1) == {a.pk: 1}
    lead = _mql(world, 99)
    routed = assignment.route(lead, "sales", policy=policy_for(world.a.pk), now=NOW)
    assert routed.user_id is None


@pytest.mark.django_db
def test_least_loaded_picks_the_emptiest(world):
    # Given a least-loaded team holding 3, 1 and 2 open leads
    a, b, c = _people(world)
    team = _team(world, [a, b, c], method="least_loaded")
    for i, (owner, n) in enumerate(((a, 3), (b, 1), (c, 2))):
        for j in range(n):
            lead = _mql(world, f"{i}-{j}")
            Lead.objects.filter(pk=lead.pk).update(owner=owner)
    AssignmentRule.objects.create(unit=world.a, name="全部", team=team)
    # When three more leads are handed out
    picked = [
        services.lead_handoff(lead=_mql(world, f"new-{i}"), actor=world.sdr, now=NOW).owner_id
        for i in range(3)
    ]
    # Then the emptiest gets each one: b (1→2), then b or c at 2 (lowest id first), ...
    assert picked == [b.pk, b.pk, c.pk]


@pytest.mark.django_db
def test_rules_apply_in_order_ka_before_the_catch_all(world):
    # Given a KA rule at position 0 and a catch-all at position 1 (created first)
    ka_owner, general = _people(world, 2)
    AssignmentRule.objects.create(unit=world.a, name="其他", position=1, user=general)
    AssignmentRule.objects.create(
        unit=world.a, name="大客户", position=0, user=ka_owner, conditions={"tiers": ["ka"]}
    )
    # When a KA lead and a small one are handed to sales
    ka = services.lead_handoff(lead=_mql(world, 1, tier="ka"), actor=world.sdr, now=NOW)
    small = services.lead_handoff(lead=_mql(world, 2, tier="small"), actor=world.sdr, now=NOW)
    # Then each goes to its rule's person
    assert (ka.owner_id, small.owner_id) == (ka_owner.pk, general.pk)
    rules = dict(Assignment.objects.values_list("lead_id", "rule__name"))
    assert rules == {ka.pk: "大客户", small.pk: "其他"}


@pytest.mark.django_db
def test_a_lead_no_rule_matches_is_refused_and_nothing_changes(world):
    # Given only a KA rule
    (ka_owner,) = _people(world, 1)
    AssignmentRule.objects.create(
        unit=world.a, name="大客户", user=ka_owner, conditions={"tiers": ["ka"]}
    )
    lead = _mql(world, 1, tier="small")
    history_before = LeadHistory.objects.filter(lead=lead).count()
    # When the SDR hands a small-tier lead to sales without naming anyone
    with pytest.raises(ValidationError) as refused:
        services.lead_handoff(lead=lead, actor=world.sdr, now=NOW)
    # Then it is refused with a clear message and nothing changed
    assert refused.value.message_dict == {
        "owner": [
            "No assignment rule matched this lead and nobody is free: pick a salesperson "
            "or ask sales ops to add a rule."
        ]
    }
    lead.refresh_from_db()
    assert (lead.stage, lead.owner_id, lead.handed_at) == (Stage.MQL, None, None)
    assert LeadHistory.objects.filter(lead=lead).count() == history_before
    assert Assignment.objects.count() == 0


@pytest.mark.django_db
def test_rule_validate_refuses_an_empty_team_and_min_above_max(world):
    empty = SalesTeam.objects.create(unit=world.a, name="空团队")
    with pytest.raises(ValidationError) as no_one:
        assignment.rule_validate(AssignmentRule(unit=world.a, name="x", team=empty))
    assert no_one.value.message_dict == {
        "team": ["This team has nobody taking leads: the rule would match nobody."]
    }
    (person,) = _people(world, 1)
    with pytest.raises(ValidationError) as never:
        assignment.rule_validate(
            AssignmentRule(
                unit=world.a, name="y", user=person, conditions={"size_min": 500, "size_max": 100}
            )
        )
    assert never.value.message_dict == {
        "conditions": ["size_min is above size_max: the rule could never match"]
    }
    other_unit_team = SalesTeam.objects.create(unit=world.b, name="B 团队")
    with pytest.raises(ValidationError) as foreign:
        assignment.rule_validate(AssignmentRule(unit=world.a, name="z", team=other_unit_team))
    assert foreign.value.message_dict == {"team": ["Pick a team of the same business unit."]}
    assert AssignmentRule.objects.count() == 0
