"""Given a group with units A and B, who sees which unit's rows."""

from __future__ import annotations

import pytest

from apps.core.models import AuditLog, BusinessUnit
from apps.core.scoping import forget_visible_units, visible_unit_ids
from tests.factories import AuditLogFactory, UserFactory, member

pytestmark = pytest.mark.django_db


def test_a_unit_member_sees_only_that_unit(world):
    assert visible_unit_ids(world.marketer) == {world.a.id}


def test_a_group_member_sees_the_group_and_every_unit_in_it(world):
    assert visible_unit_ids(world.group_admin) == {world.group.id, world.a.id, world.b.id}


def test_a_role_without_the_permission_sees_nothing_for_it(world):
    # Marketers may not read the audit log; admins and sales managers may.
    assert visible_unit_ids(world.marketer, "core.view_audit") == frozenset()
    assert visible_unit_ids(world.admin, "core.view_audit") == {world.a.id}
    assert visible_unit_ids(world.sales_manager, "core.view_audit") == {world.a.id}


def test_an_inactive_unit_drops_out_of_view(world):
    world.a.is_active = False
    world.a.save(update_fields=["is_active"])
    forget_visible_units(world.marketer)
    assert visible_unit_ids(world.marketer) == frozenset()


def test_a_user_without_memberships_sees_nothing(world):
    loner = UserFactory(username="loner")
    AuditLogFactory(unit=world.a)
    assert list(AuditLog.objects.visible_to(loner, "core.view_audit")) == []
    assert list(BusinessUnit.objects.visible_to(loner)) == []


def test_visible_to_filters_rows_by_unit(world):
    in_a = AuditLogFactory(unit=world.a, action="in.a")
    in_b = AuditLogFactory(unit=world.b, action="in.b")
    admin_rows = set(
        AuditLog.objects.visible_to(world.admin, "core.view_audit").filter(action__startswith="in.")
    )
    group_rows = set(
        AuditLog.objects.visible_to(world.group_admin, "core.view_audit").filter(
            action__startswith="in."
        )
    )
    assert admin_rows == {in_a}
    assert group_rows == {in_a, in_b}


def test_superuser_sees_every_row_including_unitless_ones(world):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    system_row = AuditLogFactory(unit=None, action="system.event")
    assert AuditLog.objects.visible_to(root, "core.view_audit").filter(pk=system_row.pk).exists()
    assert (
        not AuditLog.objects.visible_to(world.group_admin, "core.view_audit")
        .filter(pk=system_row.pk)
        .exists()
    )


def test_users_are_visible_only_through_shared_units(world):
    from apps.core.models import User

    seen_by_a_admin = set(User.objects.visible_to(world.admin).values_list("username", flat=True))
    assert "b-marketer" not in seen_by_a_admin
    assert "group-admin" not in seen_by_a_admin
    assert {"a-admin", "a-marketer", "a-sdr", "a-sales"} <= seen_by_a_admin


def test_membership_change_is_seen_after_forgetting_the_cache(world):
    assert visible_unit_ids(world.b_marketer) == {world.b.id}
    member(world.b_marketer, world.a, "marketer")
    assert visible_unit_ids(world.b_marketer) == {world.a.id, world.b.id}
