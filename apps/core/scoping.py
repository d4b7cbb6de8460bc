"""Scoping by business unit, built into every queryset a user touches.

Every model that belongs to a unit gets ``objects = ScopedQuerySet.as_manager()`` (or a
subclass). Reads for people go through ``Model.objects.visible_to(user, permission)``;
selectors and the API base viewset do that for you. Background jobs that must see
everything say so with ``dangerously_unscoped()``, a name that stands out in review;
``tests/core/test_conventions.py`` fails when a selector, view or API module reads a model
any other way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from django.db import connection, models
from django.db.models import Q

if TYPE_CHECKING:
    from apps.core.models import User

_M = TypeVar("_M", bound=models.Model)

DEFAULT_PERMISSION = "core.view_unit"


def unit_roles(user: Any) -> list[tuple[int, str, bool]]:
    """Every (unit id, role, direct) the user holds, groups expanded to their units.

    One query per request whatever the number of permissions asked about afterwards;
    cached on the user object (a request loads a fresh one).
    """
    from apps.core.models import BusinessUnit, Membership

    cached: list[tuple[int, str, bool]] | None = user.__dict__.get("_unit_roles")
    if cached is not None:
        return cached
    units = BusinessUnit._meta.db_table
    memberships = Membership._meta.db_table
    sql = f"""
        SELECT u.id, m.role, u.id = g.id
        FROM {memberships} m
        JOIN {units} g ON g.id = m.unit_id AND g.is_active
        JOIN {units} u ON (u.id = g.id OR u.parent_id = g.id) AND u.is_active
        WHERE m.user_id = %s
    """  # noqa: S608 - table names come from model metadata, the value is a parameter
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk])
        rows = [(int(r[0]), str(r[1]), bool(r[2])) for r in cursor.fetchall()]
    user.__dict__["_unit_roles"] = rows
    return rows


def visible_unit_ids(user: Any, permission: str = DEFAULT_PERMISSION) -> frozenset[int]:
    """The ids of the units whose records ``user`` may read with ``permission``.

    A membership on a group covers the group and every unit under it. Superusers see every
    unit.
    """
    from apps.core.models import BusinessUnit
    from apps.core.roles import roles_with

    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cache: dict[str, frozenset[int]] = user.__dict__.setdefault("_visible_units", {})
    if permission in cache:
        return cache[permission]
    if user.is_superuser:
        if "*" not in cache:
            cache["*"] = frozenset(BusinessUnit.objects.values_list("id", flat=True))
        ids = cache["*"]
    else:
        roles = roles_with(permission)
        ids = frozenset(unit for unit, role, _direct in unit_roles(user) if role in roles)
    cache[permission] = ids
    return ids


def forget_visible_units(user: Any) -> None:
    """Drop the cached unit ids (after memberships change within a request or test)."""
    for key in ("_visible_units", "_unit_roles", "_roles"):
        user.__dict__.pop(key, None)


class ScopedQuerySet(models.QuerySet[_M], Generic[_M]):
    """A queryset that knows how to restrict itself to what a user may see."""

    def scope_q(self, unit_ids: Iterable[int]) -> Q:
        """The condition that keeps rows in ``unit_ids``; override for indirect ownership."""
        field = getattr(self.model, "scope_field", "unit")
        return Q(**{f"{field}__in": list(unit_ids)})

    def for_units(self, unit_ids: Iterable[int]) -> Self:
        return self.filter(self.scope_q(unit_ids))

    def visible_to(self, user: User | Any, permission: str = DEFAULT_PERMISSION) -> Self:
        if getattr(user, "is_superuser", False) and user.is_active:
            return self.all()
        ids = visible_unit_ids(user, permission)
        if not ids:
            return self.none()
        return self.for_units(ids)

    def dangerously_unscoped(self) -> Self:
        """Every row, whoever asks. For system jobs and migrations, never for a person."""
        return self.all()
