"""The demo's acceptance segment equals the hand-written SQL on the demo data."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.contacts.demo import seed_contacts
from apps.contacts.demo_segments import ACCEPTANCE_NAME, TRADE_SHOW_TAG, seed_segments
from apps.contacts.models import Segment, SegmentMember, Tag
from apps.core.demo import seed_core
from tests.contacts.test_segments import HAND_WRITTEN

pytestmark = pytest.mark.django_db


def test_the_demo_acceptance_segment_matches_hand_written_sql_and_reruns_add_nothing():
    # given the demo world with its segments
    seed_core()
    seed_contacts()
    seed_segments()
    segment = Segment.objects.get(name=ACCEPTANCE_NAME)
    tag = Tag.objects.get(unit=segment.unit, name=TRADE_SHOW_TAG)

    # when the hand-written query runs on the same data
    with connection.cursor() as cursor:
        cursor.execute(HAND_WRITTEN, {"unit": segment.unit_id, "tag": tag.pk})
        expected = [row[0] for row in cursor.fetchall()]

    # then both agree, on a non-trivial set, and a second seeding adds no segment
    members = sorted(
        SegmentMember.objects.filter(segment=segment).values_list("contact_id", flat=True)
    )
    assert members == expected
    assert len(expected) >= 5
    assert Segment.objects.filter(unit=segment.unit).count() == 5
    seed_segments()
    assert Segment.objects.filter(unit=segment.unit).count() == 5
