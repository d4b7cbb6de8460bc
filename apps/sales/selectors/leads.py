"""Reading leads for a person: always through ``Lead.objects.visible_to`` (units by role,
salespeople only their own), so an id in a URL or an API body is never enough."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from apps.core.models import User
from apps.sales.models import Lead


def leads_visible(*, user: User, permission: str = "sales.view") -> QuerySet[Lead]:
    return Lead.objects.visible_to(user, permission)


def lead_get(*, user: User, pk: Any, permission: str = "sales.view") -> Lead | None:
    """The lead if ``user`` may see it with ``permission``; None otherwise (callers 404)."""
    if not str(pk).isdigit():
        return None
    return (
        leads_visible(user=user, permission=permission)
        .select_related("contact", "unit", "sdr", "owner", "opportunity")
        .filter(pk=int(pk))
        .first()
    )
