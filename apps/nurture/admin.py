"""Scoring in the Django admin: looked at, not edited.

Models and rules are edited in the console, whose services bump the model's version and
recompute everyone; an admin edit would skip both and leave stored scores stale.
"""

from __future__ import annotations

from django.contrib import admin

from apps.contacts.admin import ReadOnlyAdmin, VisibleUnitFilter
from apps.nurture.models import ContactScore, ScoreChange, ScoringModel, ScoringRule


@admin.register(ScoringModel)
class ScoringModelAdmin(ReadOnlyAdmin):
    list_display = ["name", "unit", "tier", "is_active", "version", "recompute_status"]
    list_filter = ["tier", "is_active", ("unit", VisibleUnitFilter)]
    search_fields = ["name"]
    list_select_related = ["unit"]


@admin.register(ScoringRule)
class ScoringRuleAdmin(ReadOnlyAdmin):
    list_display = ["name", "model", "kind", "points", "cap", "cap_days", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "model__name"]
    list_select_related = ["model"]


@admin.register(ContactScore)
class ContactScoreAdmin(ReadOnlyAdmin):
    list_display = ["contact", "model", "fit", "engagement", "total", "temperature", "computed_at"]
    list_filter = ["temperature"]
    search_fields = ["model__name"]
    list_select_related = ["contact", "model"]
    raw_id_fields = ["contact"]
    show_full_result_count = False


@admin.register(ScoreChange)
class ScoreChangeAdmin(ReadOnlyAdmin):
    list_display = ["at", "contact", "model", "before", "after", "temperature_after", "reason"]
    list_filter = ["reason"]
    search_fields = ["model__name"]
    list_select_related = ["contact", "model"]
    raw_id_fields = ["contact"]
    show_full_result_count = False
