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

from django.db import models
from django.db.models import Q

if TYPE_CHECKING:
    from apps.core.models import User

_M = TypeVar("_M", bound=models.Model)

DEFAULT_PERMISSION = "core.view_unit"


def visible_unit_ids(user: Any, permission: str = DEFAULT_PERMISSION) -> frozenset[int]:
    """The ids of the units whose records ``user`` may read with ``permission``.

    A membership on a group covers the group and every unit under it. Superusers see every
    unit. Cached on the user object, so a request pays for it once per permission.
    """
    from apps.core.models import BusinessUnit, Membership
    from apps.core.roles import roles_with

    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cache: dict[str, frozenset[int]] = user.__dict__.setdefault("_visible_units", {})
    if permission in cache:
        return cache[permission]
    roles = roles_with(permission)
    if user.is_superuser:
        ids = frozenset(BusinessUnit.objects.values_list("id", flat=True))
    else:
        direct = Membership.objects.filter(user=user, role__in=roles, unit__is_active=True)
        ids = frozenset(
            BusinessUnit.objects.filter(is_active=True)
            .filter(Q(id__in=direct.values("unit_id")) | Q(parent_id__in=direct.values("unit_id")))
            .values_list("id", flat=True)
        )
    cache[permission] = ids
    return ids


def forget_visible_units(user: Any) -> None:
    """Drop the cached unit ids (after memberships change within a request or test)."""
    user.__dict__.pop("_visible_units", None)


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
