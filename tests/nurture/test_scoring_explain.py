"""Acceptance 4: a contact's score breakdown sums to its score, and each line names the
rule and the activity or attribute behind it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from apps.contacts.models import Contact, CustomField, Tag
from apps.contacts.services.tags import tags_add
from apps.nurture.models import ContactScore
from apps.nurture.services.scoring import score_explain, scoring_model_recompute
from tests.nurture.helpers import NOW, act, engagement_rule, fit_rule, person, scoring_model

pytestmark = pytest.mark.django_db


def test_the_breakdown_sums_exactly_to_the_stored_score_and_names_its_sources(world):
    # given a KA biotech director with a tag, and a mix of decayed and capped activities
    p = person(world.a, phone="13900000001", industry="生物医药", title="研发总监")
    tier = CustomField.objects.create(
        unit=world.a,
        key="customer_type",
        label="客户类型",
        type="choice",
        options=[{"value": "ka", "label": "KA客户"}, {"value": "small", "label": "小型客户"}],
    )
    Contact.objects.filter(pk=p.pk).update(custom={str(tier.pk): "ka"})
    expo = Tag.objects.create(unit=world.a, name="展会-2026")
    tags_add(contact_ids=[p.pk], tags=[expo], source="manual", actor_label="t")
    p.refresh_from_db()
    model = scoring_model(world.a, half_life_days=14)
    fit_rule(model, "KA 客户", {"custom": tier.pk, "op": "eq", "value": "ka"}, "20")
    fit_rule(
        model,
        "行业与展会",
        {
            "all": [
                {"field": "industry", "op": "in", "value": ["生物医药", "制药"]},
                {"tag": expo.pk},
            ]
        },
        "12.5",
    )
    fit_rule(model, "求职者", {"field": "title", "op": "contains", "value": "求职"}, "-40")
    engagement_rule(
        model,
        "单细胞下载",
        {"type": "download", "properties": {"topic": "单细胞"}},
        "9",
        cap="15",
        cap_days=30,
    )
    engagement_rule(model, "价格页", {"type": "page_view", "properties": {"url": "/pricing"}}, "3")
    d1 = act(world.a, p, "download", days_ago=3, properties={"topic": "单细胞", "title": "白皮书"})
    d2 = act(world.a, p, "download", days_ago=2.5, properties={"topic": "单细胞"})
    v1 = act(world.a, p, "page_view", days_ago=21, properties={"url": "/pricing"})

    # when the model is recomputed and the score explained
    scoring_model_recompute(model=model, now=NOW)
    stored = ContactScore.objects.get(model=model, contact=p)
    explained = score_explain(model=model, contact=p)

    # then the fit lines name the rules, their reading and the contact's values
    assert [(f.rule, f.points) for f in explained.fit_lines] == [
        ("KA 客户", Decimal("20.00")),
        ("行业与展会", Decimal("12.50")),
    ]
    assert explained.fit_lines[0].evidence == ["客户类型: KA客户"]
    assert explained.fit_lines[1].evidence == ["industry: 生物医药", "has tag “展会-2026”"]
    assert "展会-2026" in explained.fit_lines[1].description
    # and each activity line its rule, activity, decay and cap (2-decimal lines)
    lines = [
        (a.rule, a.activity_id, a.type, a.raw, round(a.factor, 6), a.scored, a.capped)
        for a in explained.activity_lines
    ]
    assert lines == [
        (
            "单细胞下载",
            d2.pk,
            "download",
            Decimal("6.00"),
            Decimal("0.883577"),
            Decimal("5.30"),
            True,
        ),
        (
            "单细胞下载",
            d1.pk,
            "download",
            Decimal("9.00"),
            Decimal("0.861973"),
            Decimal("7.76"),
            False,
        ),
        (
            "价格页",
            v1.pk,
            "page_view",
            Decimal("3.00"),
            Decimal("0.353553"),
            Decimal("1.06"),
            False,
        ),
    ]
    assert explained.activity_lines[1].title == "白皮书"
    # and everything adds up to the stored score exactly
    assert explained.fit + explained.engagement == explained.total
    assert (
        sum(f.points for f in explained.fit_lines) + sum(a.scored for a in explained.activity_lines)
        == stored.total
    )
    assert (stored.fit, stored.engagement, stored.total) == (
        Decimal("32.50"),
        Decimal("14.12"),
        Decimal("46.62"),
    )
    assert explained.temperature == stored.temperature == "warm"
    assert explained.now == NOW


def test_explaining_at_another_moment_decays_further_without_saving(world):
    p = person(world.a, phone="13900000002")
    model = scoring_model(world.a, half_life_days=1)
    engagement_rule(model, "浏览", {"type": "page_view"}, "8")
    act(world.a, p, "page_view", days_ago=0)
    scoring_model_recompute(model=model, now=NOW)

    later = score_explain(model=model, contact=p, now=NOW + dt.timedelta(days=2))

    assert later.total == Decimal("2.00")
    assert ContactScore.objects.get(model=model, contact=p).total == Decimal("8.00")


def test_a_contact_the_unit_does_not_know_explains_as_nothing(world):
    p = person(world.b, phone="13900000003", industry="生物医药")
    model = scoring_model(world.a)
    fit_rule(model, "行业", {"field": "industry", "op": "eq", "value": "生物医药"}, "10")

    explained = score_explain(model=model, contact=p, now=NOW)

    assert (explained.known, explained.total, explained.fit_lines) == (False, Decimal("0.00"), [])
