"""The consent selector sending uses: withdrawn people are never reachable."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.contacts.identity_keys import make_key
from apps.contacts.selectors.consent import consent_allows, contacts_reachable
from apps.contacts.services.consent import consent_record
from apps.contacts.services.merge import contact_merge
from apps.contacts.services.resolution import contact_resolve
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")


def _contact(unit, *pairs):
    keys = [make_key(kind, raw, *scope) for kind, raw, *scope in pairs]
    return contact_resolve(unit=unit, keys=keys, source="api", acting_user=SYSTEM).contact


def _ids(qs):
    return sorted(qs.values_list("id", flat=True))


def test_a_contact_who_withdrew_email_consent_is_excluded(world):
    # Given two contacts with email consent, one of whom later withdrew it …
    earlier = timezone.now() - timedelta(days=3)
    stays = _contact(world.a, ("email", "stays@example.cn"))
    leaves = _contact(world.a, ("email", "leaves@example.cn"))
    for c in (stays, leaves):
        consent_record(
            contact=c,
            unit=world.a,
            channel="email",
            granted=True,
            source="form",
            occurred_at=earlier,
        )
    consent_record(contact=leaves, unit=world.a, channel="email", granted=False, source="unsub")

    # … sending selects exactly the one who still agrees.
    assert _ids(contacts_reachable(channel="email", unit_ids=[world.a.pk])) == [stays.pk]
    assert consent_allows(stays, "email") is True
    assert consent_allows(leaves, "email") is False


def test_a_withdrawal_in_another_unit_counts_everywhere(world):
    # Consent is the person's, not a unit's: withdrawing via unit B stops unit A too.
    person = _contact(world.a, ("email", "p@example.cn"))
    _contact(world.b, ("email", "p@example.cn"))
    consent_record(
        contact=person,
        unit=world.a,
        channel="email",
        granted=True,
        source="form",
        occurred_at=timezone.now() - timedelta(hours=1),
    )
    consent_record(contact=person, unit=world.b, channel="email", granted=False, source="unsub")

    assert _ids(contacts_reachable(channel="email", unit_ids=[world.a.pk])) == []


def test_consent_is_per_channel_and_needs_a_reachable_identity(world):
    phone_only = _contact(world.a, ("phone", "13800138000"))
    wechat = _contact(world.a, ("wechat_openid", "oABC", "wxAPP"))
    for c in (phone_only, wechat):
        for channel in ("email", "sms", "wechat"):
            consent_record(contact=c, unit=world.a, channel=channel, granted=True, source="form")

    # Granted email consent but no email address: not reachable by email.
    assert _ids(contacts_reachable(channel="email")) == []
    assert _ids(contacts_reachable(channel="sms")) == [phone_only.pk]
    assert _ids(contacts_reachable(channel="wechat")) == [wechat.pk]
    # Phone calls are their own channel: no answer there means no.
    assert _ids(contacts_reachable(channel="phone")) == []
    assert consent_allows(phone_only, "phone") is False


def test_unit_ids_narrow_to_the_units_that_know_the_person(world):
    in_a = _contact(world.a, ("email", "a@example.cn"))
    in_b = _contact(world.b, ("email", "b@example.cn"))
    for c, unit in ((in_a, world.a), (in_b, world.b)):
        consent_record(contact=c, unit=unit, channel="email", granted=True, source="form")

    assert _ids(contacts_reachable(channel="email", unit_ids=[world.a.pk])) == [in_a.pk]
    assert _ids(contacts_reachable(channel="email", unit_ids=[world.b.pk])) == [in_b.pk]
    assert _ids(contacts_reachable(channel="email")) == sorted([in_a.pk, in_b.pk])


def test_merged_away_contacts_are_never_selected(world):
    kept = _contact(world.a, ("email", "k@example.cn"))
    dropped = _contact(world.a, ("phone", "13900139000"))
    consent_record(contact=dropped, unit=world.a, channel="sms", granted=True, source="form")
    contact_merge(kept=kept, dropped=dropped, acting_user=SYSTEM)

    # The consent moved with the phone to the kept contact; the old row is out.
    assert _ids(contacts_reachable(channel="sms")) == [kept.pk]
    assert consent_allows(dropped, "sms") is False


def test_an_unknown_channel_is_an_error_not_an_empty_audience(world):
    with pytest.raises(ValueError, match="unknown consent channel"):
        contacts_reachable(channel="fax")
