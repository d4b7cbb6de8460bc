"""Merging two contacts, and undoing it so both come back exactly."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from apps.contacts.identity_keys import make_key
from apps.contacts.models import (
    Activity,
    ConsentState,
    Contact,
    ContactMerge,
    ContactTag,
    ContactUnit,
    Identity,
    Tag,
)
from apps.contacts.services.consent import consent_record
from apps.contacts.services.merge import MergeError, contact_merge, contact_merge_undo
from apps.contacts.services.resolution import contact_resolve
from apps.core.models import AuditLog
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")


def _contact(unit, kind, raw, scope="", **attributes):
    return contact_resolve(
        unit=unit,
        keys=[make_key(kind, raw, scope)],
        attributes=attributes,
        source="api",
        acting_user=SYSTEM,
    ).contact


def _state(contact_id):
    """Everything we hold on one contact, comparable before and after."""
    contact = Contact.objects.get(pk=contact_id)
    fields = model_to_dict(contact, exclude=["id"])
    return {
        "fields": fields,
        "identities": sorted(
            Identity.objects.filter(contact_id=contact_id).values_list("kind", "scope", "value")
        ),
        "units": sorted(
            ContactUnit.objects.filter(contact_id=contact_id).values_list("unit_id", "source")
        ),
        "tags": sorted(
            ContactTag.objects.filter(contact_id=contact_id).values_list(
                "tag__name", "source", "added_by"
            )
        ),
        "activities": sorted(
            Activity.objects.filter(contact_id=contact_id).values_list("id", flat=True)
        ),
        "consent": sorted(
            ConsentState.objects.filter(contact_id=contact_id).values_list("channel", "granted")
        ),
    }


@pytest.fixture
def pair(world):
    """Two contacts with overlapping tags, units, activities and consent."""
    now = timezone.now()
    a = _contact(world.a, "phone", "13800138000", name="张伟", company_name="华澜")
    b = _contact(world.b, "wechat_openid", "oXYZ", "wxAPP", city="上海", title="采购经理")
    _contact(world.a, "wechat_openid", "oXYZ", "wxAPP")  # b is known to unit A too
    vip = Tag.objects.create(unit=world.a, name="VIP")
    expo = Tag.objects.create(unit=world.a, name="展会-2026")
    ContactTag.objects.create(contact=a, tag=vip, added_by="x")
    ContactTag.objects.create(contact=b, tag=vip, added_by="y")
    ContactTag.objects.create(contact=b, tag=expo, added_by="y")
    Activity.objects.bulk_create(
        [
            Activity(
                unit=world.a, contact=a, type="page_view", occurred_at=now - timedelta(hours=i)
            )
            for i in range(3)
        ]
        + [
            Activity(unit=world.b, contact=b, type="download", occurred_at=now - timedelta(days=i))
            for i in range(4)
        ]
    )
    consent_record(contact=a, unit=world.a, channel="email", granted=True, source="form")
    consent_record(contact=b, unit=world.b, channel="email", granted=False, source="unsubscribe")
    return a, b


def test_a_merge_moves_everything_to_the_kept_contact(world, pair):
    a, b = pair
    merge = contact_merge(kept=a, dropped=b, reason="same person", acting_user=SYSTEM)

    kept = _state(a.pk)
    assert kept["fields"]["name"] == "张伟"
    assert kept["fields"]["city"] == "上海"
    assert [i[0] for i in kept["identities"]] == ["phone", "wechat_openid"]
    assert len(kept["activities"]) == 7
    assert [t[0] for t in kept["tags"]] == ["VIP", "展会-2026"]
    assert {u[0] for u in kept["units"]} == {world.a.id, world.b.id}
    # b's withdrawal is the newest email answer, so it wins
    assert kept["consent"] == [("email", False)]
    assert Contact.objects.get(pk=b.pk).status == "merged"
    assert merge.snapshot["activity_count"] == 4
    assert AuditLog.objects.filter(action="contact.merge", object_id=str(a.pk)).count() == 1


def test_undoing_a_merge_restores_both_contacts_exactly(world, pair):
    a, b = pair
    before_a, before_b = _state(a.pk), _state(b.pk)
    merge = contact_merge(kept=a, dropped=b, reason="same person", acting_user=SYSTEM)

    contact_merge_undo(merge=merge, acting_user=SYSTEM)

    after_a, after_b = _state(a.pk), _state(b.pk)
    for state in (before_a, before_b, after_a, after_b):
        state["fields"].pop("updated_at", None)
    assert after_a == before_a
    assert after_b == before_b
    assert ContactMerge.objects.get().undone_at is not None


def test_what_arrived_after_the_merge_stays_with_the_kept_contact(world, pair):
    a, b = pair
    merge = contact_merge(kept=a, dropped=b, acting_user=SYSTEM)
    late = Activity.objects.create(
        unit=world.a, contact=a, type="form_submit", occurred_at=timezone.now()
    )
    contact_merge_undo(merge=merge, acting_user=SYSTEM)
    assert Activity.objects.get(pk=late.pk).contact_id == a.pk


def test_a_merge_cannot_be_undone_twice_or_out_of_order(world, pair):
    a, b = pair
    c = _contact(world.a, "email", "c@example.cn")
    first = contact_merge(kept=a, dropped=b, acting_user=SYSTEM)
    second = contact_merge(kept=a, dropped=c, acting_user=SYSTEM)

    with pytest.raises(MergeError, match="later merge"):
        contact_merge_undo(merge=first, acting_user=SYSTEM)
    contact_merge_undo(merge=second, acting_user=SYSTEM)
    contact_merge_undo(merge=first, acting_user=SYSTEM)
    with pytest.raises(MergeError, match="already undone"):
        contact_merge_undo(merge=first, acting_user=SYSTEM)
    assert Contact.objects.filter(status="active").count() == 3


def test_merging_into_itself_or_across_groups_is_refused(world, pair):
    from tests.factories import GroupFactory, UnitFactory

    a, _b = pair
    other_unit = UnitFactory(parent=GroupFactory())
    stranger = _contact(other_unit, "phone", "13700137000")
    with pytest.raises(MergeError):
        contact_merge(kept=a, dropped=a, acting_user=SYSTEM)
    with pytest.raises(MergeError):
        contact_merge(kept=a, dropped=stranger, acting_user=SYSTEM)
    assert ContactMerge.objects.count() == 0


def test_the_earliest_first_touch_and_the_latest_latest_touch_survive_a_merge(world, pair):
    from apps.contacts.models import Channel

    a, b = pair
    seo = Channel.objects.create(unit=world.a, code="seo", name="SEO", kind="seo")
    wechat = Channel.objects.create(unit=world.a, code="wechat", name="公众号", kind="wechat")
    now = timezone.now()
    Contact.objects.filter(pk=a.pk).update(
        first_touch_channel=wechat,
        first_touch_at=now - timedelta(days=1),
        latest_touch_channel=wechat,
        latest_touch_at=now - timedelta(days=1),
    )
    Contact.objects.filter(pk=b.pk).update(
        first_touch_channel=seo,
        first_touch_at=now - timedelta(days=30),
        latest_touch_channel=seo,
        latest_touch_at=now - timedelta(days=20),
    )
    a.refresh_from_db()
    b.refresh_from_db()
    merge = contact_merge(kept=a, dropped=b, acting_user=SYSTEM)
    kept = Contact.objects.get(pk=a.pk)
    assert (kept.first_touch_channel_id, kept.latest_touch_channel_id) == (seo.pk, wechat.pk)
    contact_merge_undo(merge=merge, acting_user=SYSTEM)
    restored = Contact.objects.get(pk=a.pk)
    assert (restored.first_touch_channel_id, restored.latest_touch_channel_id) == (
        wechat.pk,
        wechat.pk,
    )
