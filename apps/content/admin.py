"""Admin for content, scoped to the units a staff member administers.

What people build (assets, forms, landing pages, share links) is edited here with an
audit row, like the console's writes. What visitors sent (submissions, share-link views)
is read-only: it changes only through the services that process it.
"""

from __future__ import annotations

from django.contrib import admin

from apps.contacts.admin import AuditedAdmin, ReadOnlyAdmin, VisibleUnitFilter
from apps.content.models import (
    Asset,
    Form,
    FormSubmission,
    LandingPage,
    ShareLink,
    ShareView,
)


@admin.register(Asset)
class AssetAdmin(AuditedAdmin):
    list_display = ["title", "unit", "kind", "topic", "buying_stage", "is_gated", "is_active"]
    list_filter = ["kind", "buying_stage", "is_gated", "is_active", ("unit", VisibleUnitFilter)]
    search_fields = ["title", "topic", "key"]
    list_select_related = ["unit"]
    readonly_fields = ["key", "created_by", "created_at", "updated_at"]


@admin.register(Form)
class FormAdmin(AuditedAdmin):
    list_display = ["name", "unit", "progressive", "consent_required", "is_active", "created_at"]
    list_filter = ["progressive", "is_active", ("unit", VisibleUnitFilter)]
    search_fields = ["name", "key"]
    list_select_related = ["unit"]
    readonly_fields = ["key", "created_by", "created_at", "updated_at"]


@admin.register(FormSubmission)
class FormSubmissionAdmin(ReadOnlyAdmin):
    list_display = ["id", "form", "received_at", "status", "contact", "reason"]
    list_filter = ["status", ("unit", VisibleUnitFilter)]
    search_fields = ["form__name", "reason", "anonymous_id"]
    list_select_related = ["form", "contact"]
    show_full_result_count = False


@admin.register(LandingPage)
class LandingPageAdmin(AuditedAdmin):
    list_display = ["title", "slug", "unit", "status", "published_at", "updated_at"]
    list_filter = ["status", ("unit", VisibleUnitFilter)]
    search_fields = ["title", "slug"]
    list_select_related = ["unit"]
    readonly_fields = ["created_by", "created_at", "updated_at"]


@admin.register(ShareLink)
class ShareLinkAdmin(AuditedAdmin):
    list_display = ["token", "owner", "unit", "asset", "landing_page", "is_active", "created_at"]
    list_filter = ["is_active", ("unit", VisibleUnitFilter)]
    search_fields = ["token", "note", "owner__username"]
    list_select_related = ["owner", "unit", "asset", "landing_page"]
    readonly_fields = ["token", "created_at"]


@admin.register(ShareView)
class ShareViewAdmin(ReadOnlyAdmin):
    list_display = ["link", "opened_at", "contact", "seconds", "is_bot", "notified_at"]
    list_filter = ["is_bot", ("unit", VisibleUnitFilter)]
    search_fields = ["link__token", "anonymous_id"]
    list_select_related = ["link", "contact"]
    show_full_result_count = False
