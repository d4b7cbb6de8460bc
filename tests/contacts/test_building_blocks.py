"""Activities, tags and custom fields: the services everything else uses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.contacts.identity_keys import make_key
from apps.contacts.models import Activity, Contact, ContactTag, CustomField, Tag, TagHistory
from apps.contacts.services.activities import ActivityIn, activities_record
from apps.contacts.services.fields import FieldValueError, clean_custom
from apps.contacts.services.resolution import contact_resolve
from apps.contacts.services.tags import tags_add, tags_remove
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db


@pytest.fixture
def contact(world):
    return contact_resolve(
        unit=world.a,
        keys=[make_key("phone", "13800138000")],
        source="api",
        acting_user=SystemActor("t"),
    ).contact


def test_activities_land_once_per_dedupe_key_and_move_last_seen(world, contact):
    later = timezone.now() + timedelta(days=1)
    rows = [
        ActivityIn(
            unit_id=world.a.id,
            contact_id=contact.pk,
            type="page_view",
            occurred_at=later,
            dedupe_key="batch-1:0",
            properties={"url": "/定价"},
        ),
        ActivityIn(
            unit_id=world.a.id,
            contact_id=contact.pk,
            type="page_view",
            occurred_at=later - timedelta(hours=1),
            dedupe_key="batch-1:1",
        ),
        ActivityIn(unit_id=world.a.id, anonymous_id="anon-1", type="page_view", occurred_at=later),
    ]
    assert activities_record(rows) == 3
    assert activities_record(rows[:2]) == 0  # a second delivery adds nothing
    assert Activity.objects.count() == 3
    assert Activity.objects.get(dedupe_key="batch-1:0").properties == {"url": "/定价"}
    contact.refresh_from_db()
    assert contact.last_seen_at == later


def test_tags_are_added_and_removed_set_based_with_history(world, contact):
    vip = Tag.objects.create(unit=world.a, name="VIP")
    other = contact_resolve(
        unit=world.a,
        keys=[make_key("email", "x@example.cn")],
        source="api",
        acting_user=SystemActor("t"),
    ).contact
    ids = [contact.pk, other.pk]
    assert tags_add(contact_ids=ids, tags=[vip], source="manual", actor_label="a") == 2
    assert tags_add(contact_ids=ids, tags=[vip], source="manual", actor_label="a") == 0
    assert tags_remove(contact_ids=[other.pk], tags=[vip], source="manual", actor_label="b") == 1
    assert list(ContactTag.objects.values_list("contact_id", flat=True)) == [contact.pk]
    assert list(TagHistory.objects.order_by("id").values_list("contact_id", "action")) == [
        (contact.pk, "added"),
        (other.pk, "added"),
        (other.pk, "removed"),
    ] or sorted(TagHistory.objects.values_list("contact_id", "action")) == sorted(
        [(contact.pk, "added"), (other.pk, "added"), (other.pk, "removed")]
    )


def test_custom_values_are_checked_against_the_units_definition(world):
    tier = CustomField.objects.create(
        unit=world.a,
        key="tier",
        label="客户类型",
        type="choice",
        options=[{"value": "ka", "label": "大客户"}, {"value": "smb", "label": "中小客户"}],
    )
    lines = CustomField.objects.create(
        unit=world.a,
        key="lines",
        label="产品线",
        type="multi_choice",
        options=[{"value": "a", "label": "试剂"}, {"value": "b", "label": "仪器"}],
    )
    size = CustomField.objects.create(unit=world.a, key="size", label="员工数", type="number")
    day = CustomField.objects.create(unit=world.a, key="met", label="首次拜访", type="date")
    fields = [tier, lines, size, day]

    cleaned = clean_custom(
        fields, {"tier": "大客户", "lines": "仪器，试剂", "size": "1,200", "met": "2026/11/30"}
    )

    assert cleaned == {
        str(tier.pk): "ka",
        str(lines.pk): ["a", "b"],
        str(size.pk): 1200,
        str(day.pk): "2026-11-30",
    }
    with pytest.raises(FieldValueError, match=r"不是|not an option"):
        clean_custom(fields, {"tier": "政府"})
    with pytest.raises(FieldValueError):
        clean_custom(fields, {"size": "很多"})
    with pytest.raises(FieldValueError):
        clean_custom(fields, {"nope": "x"})
    assert Contact.objects.count() == 0


def test_rule_tags_cannot_be_changed_by_hand(world, contact):
    from apps.contacts.services.tags import RuleTagError

    hot = Tag.objects.create(
        unit=world.a, name="高意向", kind="rule", rule={"has_identity": "phone"}
    )
    with pytest.raises(RuleTagError):
        tags_add(contact_ids=[contact.pk], tags=[hot], source="manual", actor_label="a")
    assert ContactTag.objects.count() == 0
    assert tags_add(contact_ids=[contact.pk], tags=[hot], source="rule", actor_label="r") == 1
