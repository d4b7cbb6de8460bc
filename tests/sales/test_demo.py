"""The sales demo: leads in every funnel stage with history, SLA countdowns, teams and
rules per unit, and a second run changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.contacts.demo import seed_contacts
from apps.core.demo import seed_core
from apps.sales.demo import seed_sales
from apps.sales.models import (
    FUNNEL,
    Assignment,
    AssignmentRule,
    FollowUp,
    Lead,
    LeadHistory,
    Opportunity,
    SalesTeam,
    SlaMiss,
    SlaPolicy,
    TeamMember,
    WebhookEndpoint,
)

pytestmark = pytest.mark.django_db

MODELS = (
    Lead,
    LeadHistory,
    FollowUp,
    SlaMiss,
    Opportunity,
    SalesTeam,
    TeamMember,
    AssignmentRule,
    Assignment,
    SlaPolicy,
    WebhookEndpoint,
)


def _counts():
    return {model.__name__: model.objects.count() for model in MODELS}


def test_the_demo_fills_every_stage_and_a_second_run_changes_nothing():
    # Given the core world and its contacts
    seed_core()
    seed_contacts()
    # When the sales step runs
    seed_sales()
    # Then every funnel stage has leads, and so do recycled and disqualified
    stages = set(Lead.objects.values_list("stage", flat=True))
    assert set(FUNNEL) | {"recycled", "disqualified"} <= stages
    assert 120 <= Lead.objects.exclude(unit__code="hualan").count() <= 170
    # every lead has its stage history, and the story times are in the past
    now = timezone.now()
    assert not Lead.objects.exclude(history__kind="stage").exists()
    assert not LeadHistory.objects.filter(at__gt=now).exists()
    # a few leads wait in the group pool
    assert Lead.objects.filter(unit__code="hualan", is_open=True).count() == 4
    # some SLAs run out in the next hours, a few are overdue, some were missed
    soon = Lead.objects.filter(sla_due_at__gt=now, sla_due_at__lt=now + dt.timedelta(hours=6))
    assert soon.count() >= 5
    assert 1 <= Lead.objects.filter(sla_due_at__lt=now).count() <= 10
    assert SlaMiss.objects.exclude(user=None).count() >= 5
    # opportunities won and lost, SDR credit of every kind
    assert {"won", "lost", "proposal"} <= set(Opportunity.objects.values_list("stage", flat=True))
    credits = set(Lead.objects.values_list("credit_status", flat=True))
    assert {"pending", "credited", "revoked"} <= credits
    # one round-robin team per unit with two rules, the medical unit runs TQL
    assert SalesTeam.objects.filter(method="round_robin").count() == 3
    assert AssignmentRule.objects.filter(role="sales").count() == 6
    assert SlaPolicy.objects.get(unit__code="hualan-med").use_tql
    hook = WebhookEndpoint.objects.get()
    assert (hook.url, hook.is_active) == ("http://127.0.0.1:9/", False)
    first = _counts()

    # When it runs again
    seed_sales()

    # Then nothing changed
    assert _counts() == first
