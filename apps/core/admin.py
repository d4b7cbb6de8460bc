from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.core import services
from apps.core.admin_base import ScopedAdmin, is_unit_admin
from apps.core.models import (
    ApiToken,
    AuditLog,
    BusinessUnit,
    CalendarDay,
    Membership,
    Notification,
    User,
)


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Membership
    extra = 0
    autocomplete_fields = ["unit"]
    fk_name = "user"


@admin.register(BusinessUnit)
class BusinessUnitAdmin(ScopedAdmin):
    list_display = ["name", "code", "parent", "time_zone", "is_active", "created_at"]
    list_filter = ["is_active", "parent"]
    search_fields = ["name", "code"]
    autocomplete_fields = ["parent"]
    list_select_related = ["parent"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # New units change the shape of the group: superusers only.
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def save_model(self, request: HttpRequest, obj: BusinessUnit, form: Any, change: bool) -> None:
        before = None
        if change:
            old = BusinessUnit.objects.dangerously_unscoped().get(pk=obj.pk)
            before = {f: str(getattr(old, f)) for f in form.changed_data}
        super().save_model(request, obj, form, change)
        services.audit_record(
            actor=request.user,  # type: ignore[arg-type]
            action="business_unit.change" if change else "business_unit.create",
            obj=obj,
            unit=obj,
            before=before,
            after={f: str(getattr(obj, f)) for f in form.changed_data},
        )


@admin.register(User)
class UserAdmin(ScopedAdmin, DjangoUserAdmin):  # type: ignore[misc]
    list_display = ["username", "display_name", "email", "is_active", "is_staff", "last_login"]
    list_filter = ["is_active", "is_staff", "is_superuser", "memberships__role"]
    search_fields = ["username", "display_name", "email", "first_name", "last_name", "phone"]
    inlines = [MembershipInline]
    fieldsets = (
        *DjangoUserAdmin.fieldsets,  # type: ignore[misc]
        (_("LeadLoop"), {"fields": ("display_name", "phone", "time_zone", "language")}),
    )

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Any]:
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.distinct()

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            # A unit administrator cannot mint superusers or hand out Django permissions.
            readonly += ["is_superuser", "user_permissions", "groups"]
        return readonly


@admin.register(Membership)
class MembershipAdmin(ScopedAdmin):
    list_display = ["user", "unit", "role", "created_at"]
    list_filter = ["role", "unit"]
    search_fields = ["user__username", "user__display_name", "unit__name", "unit__code"]
    autocomplete_fields = ["user", "unit"]
    list_select_related = ["user", "unit"]

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        services.membership_set(
            user=obj.user,
            unit=obj.unit,
            role=obj.role,
            acting_user=request.user,  # type: ignore[arg-type]
        )

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        services.membership_remove(membership=obj, acting_user=request.user)  # type: ignore[arg-type]


@admin.register(AuditLog)
class AuditLogAdmin(ScopedAdmin):
    list_display = ["created_at", "actor_label", "action", "unit", "object_type", "object_repr"]
    list_filter = ["action", "unit", "object_type"]
    search_fields = ["actor_label", "action", "object_repr", "object_id"]
    list_select_related = ["unit"]
    date_hierarchy = "created_at"
    # The audit log is append-only: nobody edits or deletes history, not even superusers.
    readonly_fields = [f.name for f in AuditLog._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(ScopedAdmin):
    list_display = [
        "name",
        "user",
        "key_prefix",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["name", "key_prefix", "user__username"]
    autocomplete_fields = ["user"]
    list_select_related = ["user"]
    actions = ["revoke_tokens"]

    shown_fields = [
        "user",
        "name",
        "key_prefix",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["user", "name", "expires_at"] if obj is None else self.shown_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A token is never edited, only revoked (the action above).
        return [] if obj is None else self.shown_fields

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "user" and not request.user.is_superuser:
            # A token acts as its owner: only superusers may mint one for someone else.
            kwargs["queryset"] = User.objects.filter(pk=request.user.pk or 0)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            return
        token, raw = services.api_token_create(
            user=obj.user,
            name=obj.name,
            expires_at=obj.expires_at,
            acting_user=request.user,  # type: ignore[arg-type]
        )
        obj.pk, obj.key_prefix, obj.created_at = token.pk, token.key_prefix, token.created_at
        self.message_user(
            request,
            _("Copy the new token now; it is shown only once: %(token)s") % {"token": raw},
            messages.WARNING,
        )

    @admin.action(description=_("Revoke selected tokens"))
    def revoke_tokens(self, request: HttpRequest, queryset: models.QuerySet[ApiToken]) -> None:
        count = 0
        for token in queryset.filter(revoked_at__isnull=True):
            services.api_token_revoke(token=token, acting_user=request.user)  # type: ignore[arg-type]
            count += 1
        text = ngettext("%(n)d token revoked.", "%(n)d tokens revoked.", count) % {"n": count}
        self.message_user(request, text, messages.SUCCESS)


@admin.register(Notification)
class NotificationAdmin(ScopedAdmin):
    """Each person's own notifications (nobody reads another's, superusers aside)."""

    list_display = ["title", "user", "kind", "created_at", "read_at"]
    list_filter = ["kind"]
    search_fields = ["title", "body"]
    list_select_related = ["user"]
    readonly_fields = ["user", "unit", "kind", "title", "body", "url", "dedupe_key", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(CalendarDay)
class CalendarDayAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The statutory holiday calendar (one for the whole group). Unit administrators see
    it; superusers and group administrators add next year's days when the State Council
    publishes them. Saving drops the cached calendar (``workcalendar``)."""

    list_display = ["date", "is_workday", "name", "source"]
    list_filter = ["is_workday", "source"]
    search_fields = ["name"]
    date_hierarchy = "date"
    ordering = ["-date"]
    readonly_fields = ["source"]

    def _is_unit_admin(self, request: HttpRequest) -> bool:
        return is_unit_admin(request)

    def _may_edit(self, request: HttpRequest) -> bool:
        from apps.core.scoping import visible_unit_ids

        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        if user.is_superuser:
            return True
        ids = visible_unit_ids(user, "core.admin_unit")
        return BusinessUnit.objects.filter(pk__in=ids, parent__isnull=True).exists()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._is_unit_admin(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_unit_admin(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._may_edit(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request)
