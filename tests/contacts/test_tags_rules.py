"""Rule tags: the condition language, its checks, and set-based application with history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from apps.contacts.identity_keys import make_key
from apps.contacts.models import Contact, ContactTag, CustomField, Tag, TagHistory
from apps.contacts.services import tag_rules
from apps.contacts.services.activities import ActivityIn, activities_record
from apps.contacts.services.resolution import contact_resolve
from apps.contacts.services.tag_rules import (
    RuleError,
    rule_check,
    rule_context,
    rule_matches,
    tag_rule_apply,
    tag_rules_apply_all,
    tag_rules_apply_for,
)
from apps.contacts.services.tags import tags_add
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def _contact(unit, phone, **attributes):
    return contact_resolve(
        unit=unit,
        keys=[make_key("phone", phone)],
        attributes=attributes,
        source="api",
        acting_user=SYSTEM,
    ).contact


def _rule_tag(unit, name, rule):
    return Tag.objects.create(unit=unit, name=name, kind="rule", rule=rule)


def _carriers(tag):
    return sorted(ContactTag.objects.filter(tag=tag).values_list("contact_id", flat=True))


def _downloads(unit, contact, count, days_ago=1):
    now = timezone.now()
    activities_record(
        [
            ActivityIn(
                unit_id=unit.pk,
                contact_id=contact.pk,
                type="download",
                occurred_at=now - timedelta(days=days_ago, minutes=i),
                object_type="asset",
                object_id=str(i),
            )
            for i in range(count)
        ]
    )


@pytest.fixture
def people(world):
    return {
        "bio": _contact(world.a, "13800000001", industry="生物医药", title="研发总监"),
        "pharma": _contact(world.a, "13800000002", industry="制药", title=""),
        "steel": _contact(world.a, "13800000003", industry="钢铁", title="采购经理"),
        "b_bio": _contact(world.b, "13800000004", industry="生物医药"),  # unit B only
    }


# --- Compile and apply --------------------------------------------------------------------


def test_a_field_rule_tags_exactly_the_matching_contacts_of_its_unit(world, people):
    tag = _rule_tag(
        world.a, "生物医药行业", {"field": "industry", "op": "in", "value": ["生物医药", "制药"]}
    )

    result = tag_rule_apply(tag=tag)

    assert result == tag_rules.ApplyResult(added=2, removed=0)
    assert _carriers(tag) == sorted([people["bio"].pk, people["pharma"].pk])
    rows = ContactTag.objects.filter(tag=tag).values_list("source", "added_by").distinct()
    assert list(rows) == [("rule", "rule: 生物医药行业")]
    history = TagHistory.objects.filter(tag=tag).values_list(
        "contact_id", "action", "source", "actor_label"
    )
    assert sorted(history) == sorted(
        [
            (people["bio"].pk, "added", "rule", "rule: 生物医药行业"),
            (people["pharma"].pk, "added", "rule", "rule: 生物医药行业"),
        ]
    )
    tag.refresh_from_db()
    assert tag.rule_applied_at is not None


def test_applying_twice_changes_nothing_the_second_time(world, people):
    tag = _rule_tag(world.a, "有职位", {"field": "title", "op": "not_empty"})
    assert tag_rule_apply(tag=tag) == tag_rules.ApplyResult(added=2, removed=0)

    assert tag_rule_apply(tag=tag) == tag_rules.ApplyResult(added=0, removed=0)
    assert TagHistory.objects.filter(tag=tag).count() == 2


def test_a_contact_that_stops_matching_loses_the_tag_with_a_history_row(world, people):
    tag = _rule_tag(world.a, "生物医药", {"field": "industry", "op": "eq", "value": "生物医药"})
    tag_rule_apply(tag=tag)
    assert _carriers(tag) == [people["bio"].pk]

    Contact.objects.filter(pk=people["bio"].pk).update(industry="化工")
    result = tag_rule_apply(tag=tag)

    assert result == tag_rules.ApplyResult(added=0, removed=1)
    assert _carriers(tag) == []
    assert list(
        TagHistory.objects.filter(tag=tag).order_by("id").values_list("action", "actor_label")
    ) == [("added", "rule: 生物医药"), ("removed", "rule: 生物医药")]


def test_application_is_one_statement_whatever_the_number_of_contacts(world, people):
    for i in range(20):
        _contact(world.a, f"1390000{i:04d}", industry="生物医药")
    tag = _rule_tag(world.a, "生物医药", {"field": "industry", "op": "eq", "value": "生物医药"})
    context = rule_context(unit_id=world.a.pk, tag=tag)

    with CaptureQueriesContext(connection) as queries:
        result = tag_rule_apply(tag=tag, context=context)

    assert result.added == 21
    # advisory lock, the apply statement, the applied-at stamp (plus the savepoint pair)
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == 3


def test_activity_rule_counts_downloads_in_the_window_of_the_tags_unit(world, people):
    _downloads(world.a, people["bio"], 3)
    _downloads(world.a, people["pharma"], 2)
    _downloads(world.a, people["steel"], 3, days_ago=40)  # too long ago
    _downloads(world.b, people["pharma"], 5)  # another unit's activity does not count
    tag = _rule_tag(
        world.a, "高意向", {"activity": {"type": "download", "days": 30, "min_count": 3}}
    )

    tag_rule_apply(tag=tag)

    assert _carriers(tag) == [people["bio"].pk]


def test_activity_rule_with_a_single_occurrence_and_an_object_filter(world, people):
    _downloads(world.a, people["bio"], 1)
    _downloads(world.a, people["pharma"], 3)
    rule = {"activity": {"type": "download", "days": 7, "object_type": "asset", "object_id": "2"}}
    tag = _rule_tag(world.a, "下载了白皮书2", rule)

    tag_rule_apply(tag=tag)

    assert _carriers(tag) == [people["pharma"].pk]


def test_custom_choice_and_number_conditions(world, people):
    tier = CustomField.objects.create(
        unit=world.a,
        key="tier",
        label="客户类型",
        type="choice",
        options=[{"value": "ka", "label": "KA"}, {"value": "mid", "label": "中型"}],
    )
    lines = CustomField.objects.create(
        unit=world.a,
        key="lines",
        label="研究方向",
        type="multi_choice",
        options=[{"value": "cell", "label": "细胞"}, {"value": "mol", "label": "分子"}],
    )
    budget = CustomField.objects.create(unit=world.a, key="budget", label="预算", type="number")
    Contact.objects.filter(pk=people["bio"].pk).update(
        custom={str(tier.pk): "ka", str(lines.pk): ["cell", "mol"], str(budget.pk): 80}
    )
    Contact.objects.filter(pk=people["pharma"].pk).update(
        custom={str(tier.pk): "mid", str(lines.pk): ["mol"], str(budget.pk): 120}
    )
    Contact.objects.filter(pk=people["steel"].pk).update(custom={str(budget.pk): "很多"})
    context = rule_context(unit_id=world.a.pk)

    def matching(rule):
        return sorted(rule_matches(rule, context=context).values_list("pk", flat=True))

    bio, pharma = people["bio"].pk, people["pharma"].pk
    assert matching({"custom": tier.pk, "op": "eq", "value": "ka"}) == [bio]
    assert matching({"custom": tier.pk, "op": "in", "value": ["ka", "mid"]}) == sorted(
        [bio, pharma]
    )
    assert matching({"custom": tier.pk, "op": "neq", "value": "ka"}) == sorted(
        [pharma, people["steel"].pk]
    )
    assert matching({"custom": lines.pk, "op": "eq", "value": "mol"}) == sorted([bio, pharma])
    assert matching({"custom": lines.pk, "op": "all", "value": ["mol", "cell"]}) == [bio]
    assert matching({"custom": budget.pk, "op": "gte", "value": 100}) == [pharma]
    assert matching({"custom": budget.pk, "op": "lt", "value": 100}) == [bio]  # "很多" is no number
    assert matching({"custom": tier.pk, "op": "empty"}) == [people["steel"].pk]


def test_nested_any_all_not_identity_and_tag_conditions(world, people):
    contact_resolve(
        unit=world.a,
        keys=[make_key("phone", "13800000003"), make_key("wechat_unionid", "u-steel")],
        source="wechat",
        acting_user=SYSTEM,
    )
    vip = Tag.objects.create(unit=world.a, name="VIP")
    tags_add(contact_ids=[people["pharma"].pk], tags=[vip], source="manual", actor_label="t")
    rule = {
        "any": [
            {
                "all": [
                    {"field": "industry", "op": "contains", "value": "生物"},
                    {"not": {"tag": vip.pk}},
                ]
            },
            {"has_identity": "wechat_unionid"},
        ]
    }

    matched = rule_matches(rule, context=rule_context(unit_id=world.a.pk))

    assert sorted(matched.values_list("pk", flat=True)) == sorted(
        [people["bio"].pk, people["steel"].pk]
    )


def test_a_rule_tag_that_carries_another_rule_tag_is_applied_after_it(world, people):
    bio = _rule_tag(world.a, "生物医药", {"field": "industry", "op": "eq", "value": "生物医药"})
    # Created first (lower id) but depends on "生物医药": the order follows the references.
    senior = _rule_tag(
        world.a, "A 高管", {"all": [{"tag": bio.pk}, {"field": "title", "op": "not_empty"}]}
    )
    Tag.objects.filter(pk=senior.pk).update(id=bio.pk - 1000)
    senior = Tag.objects.get(pk=bio.pk - 1000)

    total = tag_rules_apply_all(unit_ids=[world.a.pk])

    assert _carriers(bio) == [people["bio"].pk]
    assert _carriers(senior) == [people["bio"].pk]
    assert total == tag_rules.ApplyResult(added=2, removed=0)


def test_apply_for_rechecks_only_the_named_contacts(world, people):
    tag = _rule_tag(world.a, "生物医药", {"field": "industry", "op": "eq", "value": "生物医药"})
    tag_rule_apply(tag=tag)
    Contact.objects.filter(pk__in=[people["bio"].pk, people["steel"].pk]).update(
        industry="生物医药"
    )
    Contact.objects.filter(pk=people["bio"].pk).update(industry="化工")

    result = tag_rules_apply_for(contact_ids=[people["steel"].pk])

    assert result == tag_rules.ApplyResult(added=1, removed=0)
    # bio stopped matching but was not among the contacts re-checked: still tagged for now.
    assert _carriers(tag) == sorted([people["bio"].pk, people["steel"].pk])
    assert tag_rules_apply_for(contact_ids=[people["bio"].pk]) == tag_rules.ApplyResult(0, 1)


def test_contacts_another_unit_knows_only_are_never_tagged(world, people):
    tag = _rule_tag(world.a, "生物医药", {"field": "industry", "op": "eq", "value": "生物医药"})

    tag_rule_apply(tag=tag)

    assert people["b_bio"].pk not in _carriers(tag)


# --- Validation ---------------------------------------------------------------------------


def _problems(world, rule, tag=None):
    return rule_check(rule, context=rule_context(unit_id=world.a.pk, tag=tag))


def test_an_unknown_operator_is_reported_at_its_node(world):
    rule = {
        "all": [
            {"field": "industry", "op": "eq", "value": "生物医药"},
            {"field": "title", "op": "like", "value": "%总%"},
        ]
    }
    problems = _problems(world, rule)
    assert problems == [
        "all[1].op: unknown operator 'like'; use one of "
        "eq, neq, contains, starts_with, in, not_in, empty, not_empty"
    ]
    with pytest.raises(RuleError, match=r"^all\[1\]\.op: unknown operator 'like'"):
        tag_rules.rule_validate(rule, context=rule_context(unit_id=world.a.pk))


@pytest.mark.parametrize(
    "field_name",
    [
        "name; DROP TABLE contacts_contact; --",
        "group__parent__name",
        "custom",
        'industry" OR 1=1 --',
        "pk",
    ],
)
def test_a_field_outside_the_allowlist_is_refused_and_never_reaches_sql(world, people, field_name):
    rule = {"any": [{"field": field_name, "op": "eq", "value": "x"}]}

    problems = _problems(world, rule)

    assert len(problems) == 1
    assert problems[0].startswith(f"any[0].field: unknown field '{field_name}'")
    with pytest.raises(RuleError):
        rule_matches(rule, context=rule_context(unit_id=world.a.pk))
    assert Contact.objects.count() == 4


def test_values_are_parameters_not_sql(world, people):
    tag = _rule_tag(world.a, "注入", {"field": "industry", "op": "eq", "value": "x' OR '1'='1"})
    assert tag_rule_apply(tag=tag) == tag_rules.ApplyResult(0, 0)
    assert Contact.objects.count() == 4


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ([], "rule: expected a condition object"),
        ({"all": []}, "all: expected a non-empty list of conditions"),
        ({"all": [{"bogus": 1}]}, "all[0]: unknown condition"),
        ({"field": "city", "op": "eq"}, "value: missing value"),
        ({"field": "city", "op": "empty", "value": "x"}, "value: 'empty' takes no value"),
        ({"field": "city", "op": "in", "value": "上海"}, "value: expected a list"),
        ({"field": "city", "op": "eq", "value": "上海", "extra": 1}, "extra: unknown key 'extra'"),
        ({"custom": 999999, "op": "eq", "value": "a"}, "custom: no custom field with id 999999"),
        ({"activity": {"type": "download"}}, "activity.days: expected whole days"),
        (
            {"activity": {"type": "download", "days": 30, "channel": [1]}},
            "activity.channel: no channel",
        ),
        ({"not": {"has_identity": "fax"}}, "not.has_identity: unknown identity kind 'fax'"),
        ({"tag": 999999}, "tag: no tag with id 999999"),
        ({"field": "city", "tag": 1}, "rule: use one of field, tag per condition"),
    ],
)
def test_bad_rules_name_the_node_at_fault(world, rule, expected):
    problems = _problems(world, rule)
    assert problems, rule
    assert problems[0].startswith(expected), problems


def test_a_choice_condition_must_use_one_of_the_fields_options(world):
    tier = CustomField.objects.create(
        unit=world.a,
        key="tier",
        label="客户类型",
        type="choice",
        options=[{"value": "ka", "label": "KA"}],
    )
    assert _problems(world, {"all": [{"custom": tier.pk, "op": "eq", "value": "gov"}]}) == [
        "all[0].value: 'gov' is not an option of 客户类型 (options: ka)"
    ]
    assert _problems(world, {"custom": tier.pk, "op": "gte", "value": "ka"})[0].startswith(
        "op: unknown operator 'gte'"
    )


def test_a_custom_field_of_another_unit_is_unknown(world):
    other = CustomField.objects.create(unit=world.b, key="x", label="X", type="text")
    assert _problems(world, {"custom": other.pk, "op": "eq", "value": "a"}) == [
        f"custom: no custom field with id {other.pk} in this business unit"
    ]


def test_a_rule_cannot_refer_to_itself_or_close_a_cycle(world):
    first = _rule_tag(world.a, "一", {"field": "city", "op": "eq", "value": "上海"})
    second = _rule_tag(world.a, "二", {"tag": first.pk})

    assert _problems(world, {"tag": first.pk}, tag=first) == [
        "tag: a rule cannot refer to its own tag"
    ]
    assert _problems(world, {"tag": second.pk}, tag=first) == [
        "rule: the tags this rule refers to lead back to this tag (a cycle)"
    ]


def test_too_many_conditions_are_refused(world):
    rule = {"any": [{"field": "city", "op": "eq", "value": str(i)} for i in range(100)]}
    assert "rule may have at most 60 conditions" in _problems(world, rule)[0]


# --- Tasks --------------------------------------------------------------------------------


def test_the_periodic_task_and_the_recheck_task_apply_rules(world, people):
    from apps.contacts.tasks.tag_rules import (
        apply_tag_rule,
        apply_tag_rules,
        apply_tag_rules_for_contacts,
    )

    tag = _rule_tag(world.a, "生物医药", {"field": "industry", "op": "eq", "value": "生物医药"})

    assert apply_tag_rules() == {"added": 1, "removed": 0}
    Contact.objects.filter(pk=people["bio"].pk).update(industry="化工")
    assert apply_tag_rules_for_contacts([people["bio"].pk]) == {"added": 0, "removed": 1}
    assert apply_tag_rule(tag.pk) == {"added": 0, "removed": 0}
    tag.delete()
    assert apply_tag_rule(tag.pk) == {"added": 0, "removed": 0}  # gone since it was queued


def test_a_rule_that_no_longer_validates_is_skipped_by_the_periodic_run(world, people):
    field = CustomField.objects.create(unit=world.a, key="k", label="K", type="text")
    tag = _rule_tag(world.a, "K", {"custom": field.pk, "op": "eq", "value": "x"})
    good = _rule_tag(world.a, "有职位", {"field": "title", "op": "not_empty"})
    field.delete()

    result = tag_rules_apply_all(unit_ids=[world.a.pk])

    assert result == tag_rules.ApplyResult(added=2, removed=0)
    assert _carriers(tag) == []
    assert len(_carriers(good)) == 2
