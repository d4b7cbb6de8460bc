"""Keyset pagination over a two-column ordering with ties."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.models import AuditLog
from apps.core.pagination import InvalidCursor, keyset_page
from tests.factories import UnitFactory

pytestmark = pytest.mark.django_db
ORDER = ("-created_at", "-id")


@pytest.fixture
def rows():
    unit = UnitFactory()
    t0 = timezone.now()
    # Five timestamps, three rows each: ties on created_at must not lose or repeat rows.
    AuditLog.objects.bulk_create(
        [
            AuditLog(
                actor_label="t",
                action=f"r{i}",
                unit=unit,
                created_at=t0 + timedelta(minutes=i // 3),
            )
            for i in range(15)
        ]
    )
    return list(AuditLog.objects.filter(unit=unit).order_by(*ORDER))


def test_walking_forward_visits_every_row_once_in_order(rows):
    qs = AuditLog.objects.filter(unit=rows[0].unit)
    seen, cursor = [], None
    while True:
        page = keyset_page(qs, ordering=ORDER, cursor=cursor, size=4)
        seen += page.items
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == rows


def test_walking_back_returns_the_same_pages(rows):
    qs = AuditLog.objects.filter(unit=rows[0].unit)
    first = keyset_page(qs, ordering=ORDER, size=4)
    second = keyset_page(qs, ordering=ORDER, cursor=first.next_cursor, size=4)
    back = keyset_page(qs, ordering=ORDER, cursor=second.previous_cursor, size=4)
    assert second.items == rows[4:8]
    assert back.items == first.items == rows[:4]
    assert back.previous_cursor is None


@pytest.mark.parametrize("cursor", ["garbage", "e30", "eyJ2IjpbMV0sImQiOiJ4In0"])
def test_a_bad_cursor_is_refused(rows, cursor):
    with pytest.raises(InvalidCursor):
        keyset_page(AuditLog.objects.all(), ordering=ORDER, cursor=cursor)


def test_mixed_directions_are_refused():
    with pytest.raises(ValueError, match="one direction"):
        keyset_page(AuditLog.objects.all(), ordering=("-created_at", "id"))
