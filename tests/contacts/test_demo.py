"""The contacts demo: merges happen, everyone belongs to a unit, and a second run adds nothing."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from apps.contacts.demo import seed_contacts
from apps.contacts.models import (
    Activity,
    Campaign,
    Channel,
    ConsentEvent,
    ConsentState,
    Contact,
    ContactMerge,
    ContactTag,
    ContactUnit,
    CustomField,
    Identity,
    Tag,
    TagHistory,
)
from apps.core.demo import seed_core
from apps.core.models import AuditLog

pytestmark = pytest.mark.django_db

MODELS = (
    Contact,
    ContactUnit,
    Identity,
    ContactMerge,
    Activity,
    ConsentEvent,
    ConsentState,
    Channel,
    Campaign,
    CustomField,
    Tag,
    ContactTag,
    TagHistory,
    AuditLog,
)


def _counts():
    return {model.__name__: model.objects.count() for model in MODELS}


def test_seed_demo_builds_contacts_with_merges_activities_tags_and_consent():
    # The contacts step alone: later steps (forms, share links…) bring people of their own.
    seed_core()
    seed_contacts()

    counts = _counts()
    active = Contact.objects.filter(status="active")
    assert active.count() == 300  # one contact per demo person, after the merges
    assert counts["ContactMerge"] > 0
    assert Contact.objects.filter(status="merged").count() == counts["ContactMerge"]
    assert not active.exclude(id__in=ContactUnit.objects.values("contact_id")).exists()
    assert counts["Activity"] > 1000
    assert ConsentState.objects.filter(granted=False).exists()
    assert ConsentState.objects.filter(granted=True).count() > 200
    high_intent = Tag.objects.get(unit__code="hualan-ls", name="高意向")
    assert ContactTag.objects.filter(tag=high_intent, source="rule").count() > 10
    assert ContactTag.objects.filter(source="manual").count() > 30


def test_seed_demo_twice_adds_nothing():
    call_command("seed_demo", verbosity=0)
    first = _counts()

    call_command("seed_demo", verbosity=0)

    assert _counts() == first
