"""World fixtures: a group with two units and a person for every role.

``world.a`` and ``world.b`` are sibling units of ``world.group``; ``world.<role>`` holds
that role in unit A only, and ``world.group_admin`` administers the whole group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import translation
from rest_framework.test import APIClient

from apps.core.models import BusinessUnit, User
from apps.core.roles import Role
from tests.factories import GroupFactory, UnitFactory, UserFactory, member


@dataclass
class World:
    group: BusinessUnit
    a: BusinessUnit
    b: BusinessUnit
    admin: User
    marketer: User
    sdr: User
    sales: User
    sales_manager: User
    viewer: User
    group_admin: User
    b_marketer: User


def build_world() -> World:
    group = GroupFactory(code="acme", name="Acme 集团")
    a = UnitFactory(code="acme-a", name="A 事业部", parent=group)
    b = UnitFactory(code="acme-b", name="B 事业部", parent=group)
    people: dict[str, Any] = {}
    for role in Role.values:
        user = UserFactory(username=f"a-{role}", is_staff=role == Role.ADMIN)
        member(user, a, role)
        people[role] = user
    group_admin = UserFactory(username="group-admin", is_staff=True)
    member(group_admin, group, Role.ADMIN)
    b_marketer = UserFactory(username="b-marketer")
    member(b_marketer, b, Role.MARKETER)
    return World(
        group=group,
        a=a,
        b=b,
        admin=people[Role.ADMIN],
        marketer=people[Role.MARKETER],
        sdr=people[Role.SDR],
        sales=people[Role.SALES],
        sales_manager=people[Role.SALES_MANAGER],
        viewer=people[Role.VIEWER],
        group_admin=group_admin,
        b_marketer=b_marketer,
    )


@pytest.fixture
def world(db: None) -> World:
    return build_world()


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    """Login lockouts and throttles live in Redis; each test starts with none.

    Not ``cache.clear()``: that flushes the whole Redis database, which the broker and any
    other process on the same server share. Our keys carry this run's prefix (settings).
    """
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def _english_outside_requests() -> Any:
    """Messages raised by services read as their English source in assertions.

    Requests still pick their language as users' do (Accept-Language, cookie, default
    zh-hans), so page tests say which language they expect.
    """
    with translation.override("en"):
        yield


@pytest.fixture
def api() -> APIClient:
    # English messages, so assertions read as the source strings; zh-hans has its own tests.
    return APIClient(HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture(autouse=True)
def _holiday_calendar(request: pytest.FixtureRequest) -> Any:
    """The statutory calendar a migration seeds; tests on a flushed database (browser and
    concurrency tests flush every table after themselves) get it back, and every test
    reads it afresh."""
    from apps.core.workcalendar import forget_calendar

    forget_calendar()
    marker = request.node.get_closest_marker("django_db")
    transactional = (
        "transactional_db" in request.fixturenames
        or "live_server" in (request.fixturenames)
        or bool(marker and marker.kwargs.get("transaction"))
    )
    if transactional or marker or "db" in request.fixturenames:
        request.getfixturevalue("transactional_db" if transactional else "db")
        from apps.core.models import CalendarDay
        from apps.core.workcalendar import seed_statutory

        if not CalendarDay.objects.filter(source="chinesecalendar").exists():
            seed_statutory(CalendarDay)
    yield
    forget_calendar()
