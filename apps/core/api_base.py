"""The base every API viewset builds on: scoping cannot be forgotten.

``ScopedViewSet.get_queryset`` is final: it starts from
``Model.objects.visible_to(request.user, read_permission)`` (the class ``queryset`` only
names the model) and hands that to ``scope_queryset`` for narrowing and select_related.
A subclass that overrides ``get_queryset`` fails at import time, unless it names its
reason ``dangerously_unscoped = "why"``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from rest_framework import permissions, serializers, viewsets

from apps.core.models import BusinessUnit
from apps.core.scoping import DEFAULT_PERMISSION, visible_unit_ids


class ScopedViewSetMixin:
    read_permission: ClassVar[str] = DEFAULT_PERMISSION
    # Units a user may write to; defaults to the read permission.
    write_permission: ClassVar[str | None] = None
    dangerously_unscoped: ClassVar[str] = ""
    queryset: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__ and not cls.dangerously_unscoped:
            raise TypeError(
                f"{cls.__name__} overrides get_queryset; narrow rows in scope_queryset() "
                "instead, or set dangerously_unscoped = '<reason>'."
            )

    def get_queryset(self) -> models.QuerySet[Any]:
        model = self.queryset.model
        scoped = model.objects.visible_to(self.request.user, self.read_permission)  # type: ignore[attr-defined]
        return self.scope_queryset(scoped)

    def scope_queryset(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        """Narrow or decorate (select_related, annotate) the already-scoped rows."""
        return queryset

    def writable_unit_ids(self) -> frozenset[int]:
        user = self.request.user  # type: ignore[attr-defined]
        return visible_unit_ids(user, self.write_permission or self.read_permission)


class ScopedReadOnlyViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):  # type: ignore[misc]
    permission_classes = [permissions.IsAuthenticated]


class ScopedModelViewSet(ScopedViewSetMixin, viewsets.ModelViewSet):  # type: ignore[misc]
    permission_classes = [permissions.IsAuthenticated]


class VisibleUnitField(serializers.PrimaryKeyRelatedField):  # type: ignore[type-arg]
    """A ``unit`` field that only accepts units the caller may write to.

    An id the caller cannot see reads as "does not exist", the same as a made-up one.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", BusinessUnit.objects.all())
        super().__init__(**kwargs)

    def get_queryset(self) -> models.QuerySet[BusinessUnit]:
        view = self.context.get("view")
        request = self.context.get("request")
        if view is not None and hasattr(view, "writable_unit_ids"):
            ids = view.writable_unit_ids()
        else:
            ids = visible_unit_ids(getattr(request, "user", None))
        return BusinessUnit.objects.filter(id__in=ids)
