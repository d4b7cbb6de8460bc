"""Sales in the Django admin: every record, scoped to the units the staff user
administers (``ScopedAdmin``). Logs (history, webhook deliveries, missed SLAs) are
read-only; stage changes go through the services, so the lead's stage is read-only here."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import Http404, HttpRequest

from apps.core.admin_base import ScopedAdmin, is_unit_admin
from apps.core.scoping import visible_unit_ids
from apps.sales.models import (
    AlertDelivery,
    AlertSettings,
    Assignment,
    AssignmentRule,
    CrmInbound,
    FollowUp,
    IdempotencyRecord,
    Lead,
    LeadHistory,
    Opportunity,
    OpportunityContact,
    SalesTeam,
    SlaMiss,
    SlaPolicy,
    TeamMember,
    WebhookDelivery,
    WebhookEndpoint,
)


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LeadHistoryInline(ReadOnlyMixin, admin.TabularInline):  # type: ignore[type-arg]
    model = LeadHistory
    extra = 0
    fields = ("at", "kind", "from_value", "to_value", "actor_label", "reason")
    readonly_fields = ("at", "kind", "from_value", "to_value", "actor_label", "reason")
    ordering = ["-at", "-id"]
    can_delete = False
    show_change_link = False


@admin.register(Lead)
class LeadAdmin(ScopedAdmin):
    list_display = [
        "id",
        "contact",
        "unit",
        "stage",
        "temperature",
        "sdr",
        "owner",
        "needs_review",
        "sla_due_at",
        "created_at",
    ]
    list_filter = ["stage", "temperature", "is_open", "needs_review", "source", "unit"]
    search_fields = ["contact__name", "contact__company_name", "external_id"]
    list_select_related = ["contact", "unit", "sdr", "owner"]
    raw_id_fields = ["contact", "opportunity", "sdr", "owner"]
    readonly_fields = [
        "stage",
        "is_open",
        "sla_clock",
        "sla_due_at",
        "stage_changed_at",
        "closed_at",
        "handed_at",
        "accepted_at",
        "sql_at",
        "credit_status",
        "created_at",
        "updated_at",
    ]
    inlines = [LeadHistoryInline]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        # Moving a lead to another unit or person goes through the services (pool hand-over,
        # merge); here the unit and contact are fixed once the lead exists.
        return [*fields, "unit", "contact"] if obj is not None else fields

    def save_model(self, request: HttpRequest, obj: Lead, form: Any, change: bool) -> None:
        from apps.sales.models import HistoryKind
        from apps.sales.services.stages import history_add

        super().save_model(request, obj, form, change)
        if not change:
            return
        for field, kind in (("sdr", HistoryKind.SDR), ("owner", HistoryKind.OWNER)):
            if field in form.changed_data:
                history_add(
                    obj,
                    kind,
                    form.initial.get(field),
                    getattr(obj, f"{field}_id"),
                    actor=request.user,
                    reason="admin",
                )


@admin.register(Opportunity)
class OpportunityAdmin(ScopedAdmin):
    list_display = ["name", "unit", "company_name", "stage", "amount", "owner", "expected_close"]
    list_filter = ["stage", "unit"]
    search_fields = ["name", "company_name", "external_id"]
    list_select_related = ["unit", "owner"]
    raw_id_fields = ["contact", "owner"]
    readonly_fields = ["closed_at", "created_at", "updated_at"]


@admin.register(SlaPolicy)
class SlaPolicyAdmin(ScopedAdmin):
    list_display = ["unit", "work_start", "work_end", "accept_value", "accept_unit", "use_tql"]
    list_select_related = ["unit"]
    search_fields = ["unit__name", "unit__code"]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        from apps.sales.services.config import policy_problems

        form = super().get_form(request, obj, change, **kwargs)

        class PolicyForm(form):  # type: ignore[misc, valid-type]
            def _post_clean(self) -> None:
                super()._post_clean()
                problems = policy_problems(self.instance)
                for field, messages_ in problems.items():
                    self.add_error(field if field in self.fields else None, messages_)

        return PolicyForm


class TeamMemberInline(admin.TabularInline):  # type: ignore[type-arg]
    model = TeamMember
    extra = 0
    raw_id_fields = ["user"]
    fields = ["user", "capacity", "is_active", "penalised"]


@admin.register(SalesTeam)
class SalesTeamAdmin(ScopedAdmin):
    list_display = ["name", "unit", "method", "created_at"]
    list_filter = ["unit", "method"]
    search_fields = ["name"]
    list_select_related = ["unit"]
    inlines = [TeamMemberInline]


@admin.register(AssignmentRule)
class AssignmentRuleAdmin(ScopedAdmin):
    list_display = ["name", "unit", "role", "position", "user", "team", "is_active"]
    list_filter = ["unit", "role", "is_active"]
    search_fields = ["name"]
    list_select_related = ["unit", "user", "team"]
    raw_id_fields = ["user", "team"]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        from django.core.exceptions import ValidationError

        from apps.sales.services.assignment import rule_validate

        form = super().get_form(request, obj, change, **kwargs)

        class RuleForm(form):  # type: ignore[misc, valid-type]
            def _post_clean(self) -> None:
                super()._post_clean()
                if self.errors or not self.instance.is_active:
                    return
                try:
                    rule_validate(self.instance)
                except ValidationError as exc:
                    for field, messages_ in exc.message_dict.items():
                        self.add_error(field if field in self.fields else None, messages_)

        return RuleForm


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ScopedAdmin):
    list_display = ["name", "unit", "url", "is_active", "created_at"]
    list_filter = ["unit", "is_active"]
    search_fields = ["name", "url"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyMixin, ScopedAdmin):  # type: ignore[misc]
    list_display = ["event", "endpoint", "status", "attempts", "last_status_code", "created_at"]
    list_filter = ["status", "event", "unit"]
    search_fields = ["event_id"]
    list_select_related = ["endpoint"]
    show_full_result_count = False


@admin.register(SlaMiss)
class SlaMissAdmin(ReadOnlyMixin, ScopedAdmin):  # type: ignore[misc]
    list_display = ["lead", "unit", "user", "clock", "due_at", "missed_at"]
    list_filter = ["clock", "unit"]
    list_select_related = ["unit", "user"]
    search_fields = ["lead__contact__name", "user__username"]
    date_hierarchy = "due_at"
    show_full_result_count = False


@admin.register(AlertSettings)
class AlertSettingsAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Per person, not per unit: staff see the settings of people in units they administer."""

    list_display = ["user", "updated_at"]
    search_fields = ["user__username", "user__display_name"]
    raw_id_fields = ["user"]

    def get_queryset(self, request: HttpRequest) -> Any:
        qs = super().get_queryset(request).select_related("user")
        if request.user.is_superuser:
            return qs
        units = visible_unit_ids(request.user, "core.admin_unit")
        return qs.filter(user__memberships__unit_id__in=units).distinct()

    def _is_unit_admin(self, request: HttpRequest) -> bool:
        return is_unit_admin(request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._is_unit_admin(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_unit_admin(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_unit_admin(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> Any:
        if not request.user.is_superuser:
            try:
                found = self.get_queryset(request).filter(pk=object_id).exists()
            except (ValueError, TypeError):
                found = False
            if not found:
                raise Http404
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(LeadHistory)
class LeadHistoryAdmin(ReadOnlyMixin, ScopedAdmin):  # type: ignore[misc]
    list_display = ["lead", "kind", "from_value", "to_value", "actor_label", "at"]
    list_filter = ["kind", "unit"]
    search_fields = ["reason", "actor_label", "lead__contact__name"]
    list_select_related = ["lead__contact"]
    show_full_result_count = False


@admin.register(FollowUp)
class FollowUpAdmin(ReadOnlyMixin, ScopedAdmin):  # type: ignore[misc]
    list_display = ["lead", "kind", "user", "occurred_at", "next_step_at"]
    list_filter = ["kind", "unit"]
    search_fields = ["note", "next_step", "lead__contact__name"]
    list_select_related = ["lead__contact", "user"]
    show_full_result_count = False


@admin.register(TeamMember)
class TeamMemberAdmin(ScopedAdmin):
    list_display = ["team", "user", "capacity", "is_active", "penalised"]
    list_filter = ["is_active", "penalised"]
    search_fields = ["team__name", "user__username"]
    list_select_related = ["team", "user"]


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyMixin, ScopedAdmin):  # type: ignore[misc]
    list_display = ["lead", "user", "role", "rule", "team", "at"]
    list_filter = ["role", "unit"]
    search_fields = ["lead__contact__name", "user__username"]
    list_select_related = ["lead__contact", "user", "rule", "team"]
    show_full_result_count = False


@admin.register(OpportunityContact)
class OpportunityContactAdmin(ReadOnlyMixin, ScopedAdmin):  # type: ignore[misc]
    list_display = ["opportunity", "contact", "added_at", "reason"]
    search_fields = ["opportunity__name", "contact__name"]
    list_select_related = ["opportunity", "contact"]


@admin.register(CrmInbound)
class CrmInboundAdmin(ReadOnlyMixin, ScopedAdmin):  # type: ignore[misc]
    list_display = ["event_id", "unit", "kind", "status", "received_at", "processed_at"]
    list_filter = ["status", "kind", "unit"]
    search_fields = ["event_id"]
    show_full_result_count = False


class _PerPersonAdmin(ReadOnlyMixin, AlertSettingsAdmin):  # type: ignore[misc]
    """Rows that belong to a person, shown to admins of that person's units."""


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(_PerPersonAdmin):
    list_display = ["user", "channel", "kind", "status", "attempts", "created_at", "sent_at"]
    list_filter = ["channel", "kind", "status"]
    search_fields = ["user__username", "title"]


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(_PerPersonAdmin):
    list_display = ["key", "user", "method", "path", "status_code", "created_at"]
    search_fields = ["key", "path", "user__username"]
