"""Admin that respects business units.

Staff who are not superusers see only rows of their units, pick only their units in
forms, and get a 404 (not a redirect that confirms the row exists) for anyone else's.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse

from apps.core.scoping import visible_unit_ids


def is_unit_admin(request: HttpRequest, permission: str = "core.admin_unit") -> bool:
    """Staff holding the admin role in some unit (or superusers)."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return False
    return user.is_superuser or bool(visible_unit_ids(user, permission))


class ScopedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    # Staff administer units they hold the admin role in.
    admin_permission = "core.admin_unit"

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Any]:
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.visible_to(request.user, self.admin_permission)  # type: ignore[attr-defined]

    def _is_unit_admin(self, request: HttpRequest) -> bool:
        return is_unit_admin(request, self.admin_permission)

    # Admin rights follow the admin role in a unit, not Django's per-model permissions:
    # a unit administrator manages their units' records and nothing else.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._is_unit_admin(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_unit_admin(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._is_unit_admin(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_unit_admin(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_unit_admin(request)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        from apps.core.models import BusinessUnit

        if db_field.related_model is BusinessUnit and not request.user.is_superuser:
            kwargs["queryset"] = BusinessUnit.objects.filter(
                id__in=visible_unit_ids(request.user, self.admin_permission)
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _check_visible(self, request: HttpRequest, object_id: str | None) -> None:
        if object_id is None or request.user.is_superuser:
            return
        try:
            exists = self.get_queryset(request).filter(pk=object_id).exists()
        except (ValueError, TypeError):
            exists = False
        if not exists:
            raise Http404

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        self._check_visible(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        self._check_visible(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        self._check_visible(request, object_id)
        return super().history_view(request, object_id, extra_context)
