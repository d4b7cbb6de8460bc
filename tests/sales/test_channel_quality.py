"""Source quality per channel (seed 003) and the conditions sales adds to the rule and
segment language."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.contacts.models import Channel, Contact, ContactUnit
from apps.contacts.services.tag_rules import (
    RuleError,
    rule_check,
    rule_context,
    rule_describe,
    rule_matches,
)
from apps.sales.models import Lead, LeadHistory
from apps.sales.services.channel_quality import channel_quality_compute


def _lead(world, channel, reached: list[str], name: str) -> Lead:
    contact = Contact.objects.create(group=world.group, name=name, source_channel=channel)
    ContactUnit.objects.create(contact=contact, unit=world.a)
    final = reached[-1]
    lead = Lead.objects.create(
        unit=world.a,
        contact=contact,
        source="manual",
        stage=final,
        is_open=final not in ("customer", "disqualified"),
        source_channel=channel,
    )
    previous = ""
    for stage in reached:
        LeadHistory.objects.create(
            lead=lead,
            unit=world.a,
            kind="stage",
            from_value=previous,
            to_value=stage,
            actor_label="test",
        )
        previous = stage
    return lead


@pytest.fixture
def channels(world):
    fair = Channel.objects.create(unit=world.a, code="expo", name="展会", kind="event")
    ads = Channel.objects.create(unit=world.a, code="baidu", name="百度", kind="search")
    idle = Channel.objects.create(unit=world.a, code="idle", name="闲置", kind="other")
    _lead(world, fair, ["mil", "mql", "sal", "sql", "opportunity", "customer"], "甲")
    _lead(world, fair, ["mil", "mql", "sal", "sql", "opportunity", "customer"], "乙")
    _lead(world, fair, ["mil", "mql", "sal", "sql", "mil"], "丙")  # reached SQL, returned
    _lead(world, fair, ["mil"], "丁")
    _lead(world, ads, ["mil"], "戊")
    _lead(world, ads, ["mil", "disqualified"], "己")
    return fair, ads, idle


@pytest.mark.django_db
def test_quality_is_the_smoothed_conversion_value_of_past_leads(world, channels):
    fair, ads, idle = channels
    # When the nightly job runs
    rated = channel_quality_compute()
    # Then: unit rate (1 + 1 + 0.6 + 0 + 0 + 0) / 6; each channel pulled towards it by 10
    fair.refresh_from_db()
    ads.refresh_from_db()
    idle.refresh_from_db()
    unit_rate = Decimal("2.6") / 6
    expected_fair = (Decimal("2.6") + unit_rate * 10) / 14 * 100
    expected_ads = (unit_rate * 10) / 12 * 100
    assert rated == 2
    assert fair.quality == expected_fair.quantize(Decimal("0.01"))  # 49.52
    assert ads.quality == expected_ads.quantize(Decimal("0.01"))  # 36.11
    assert (fair.quality_leads, ads.quality_leads, idle.quality, idle.quality_leads) == (
        4,
        2,
        None,
        0,
    )
    assert fair.quality_detail == {
        "leads": 4,
        "mql": 3,
        "sql": 3,
        "customers": 2,
        "unit_rate": 43.33,
    }


@pytest.mark.django_db
def test_segments_select_by_lead_stage_and_source_quality(world, channels):
    channel_quality_compute()
    context = rule_context(unit_id=world.a.pk)
    by_stage = {"lead": {"stage": ["mil"], "open": True}}
    good_source = {
        "all": [
            {"source_quality": {"op": "gte", "value": 45}},
            {"not": {"lead": {"stage": ["customer"], "open": False}}},
        ]
    }
    assert sorted(rule_matches(by_stage, context=context).values_list("name", flat=True)) == [
        "丁",
        "丙",
        "戊",
    ]
    assert sorted(rule_matches(good_source, context=context).values_list("name", flat=True)) == [
        "丁",
        "丙",
    ]
    assert rule_describe(by_stage, context=context).text == "has an open lead (MIL · identified)"


@pytest.mark.django_db
def test_bad_sales_conditions_name_the_node(world):
    context = rule_context(unit_id=world.a.pk)
    bad = {"all": [{"lead": {"stage": ["won"]}}, {"source_quality": {"op": "like", "value": 500}}]}
    assert rule_check(bad, context=context) == [
        "all[0].lead: stage: unknown value 'won'; use mal, mil, mql, tql, sal, sql, "
        "opportunity, customer, recycled, disqualified",
        "all[1].source_quality: op: use one of gt, gte, lt, lte",
        "all[1].source_quality: value: expected a number from 0 to 100",
    ]
    with pytest.raises(RuleError):
        rule_matches(bad, context=context).count()
