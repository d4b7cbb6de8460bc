"""Reads for core pages and the API. Each starts from what the user may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, QuerySet

from apps.core.models import ApiToken, AuditLog, BusinessUnit, Membership, User
from apps.core.roles import LANDING_ORDER, ROLE_SURFACES, Role
from apps.core.scoping import unit_roles, visible_unit_ids


def user_roles(*, user: User) -> dict[int, str]:
    """unit id -> role, for the user's direct memberships (shares the scoping query)."""
    return {unit: role for unit, role, direct in unit_roles(user) if direct}


def user_surfaces(*, user: User) -> list[str]:
    """The surfaces a user may open, in landing order."""
    if not user.is_authenticated:
        return []
    held: set[str] = set()
    for role in user_roles(user=user).values():
        held.update(ROLE_SURFACES[role])
    if user.is_superuser:
        held.update(LANDING_ORDER)
    return [surface for surface in LANDING_ORDER if surface in held]


def landing_surface(*, user: User) -> str | None:
    """Where a user lands after login: front-line roles go to their own surface."""
    roles = set(user_roles(user=user).values())
    surfaces = user_surfaces(user=user)
    if not surfaces:
        return None
    for role in ("admin", "marketer", "viewer"):
        if role in roles:
            return "console"
    if "sdr" in roles:
        return "sdr"
    if roles & {"sales", "sales_manager"}:
        return "mobile"
    return surfaces[0]


def units_visible(*, user: User, permission: str = "core.view_unit") -> QuerySet[BusinessUnit]:
    return BusinessUnit.objects.visible_to(user, permission).select_related("parent")


def unit_choices(*, user: User) -> list[BusinessUnit]:
    """Units for the shell's unit switcher: groups first, then their units."""
    return list(units_visible(user=user).order_by("parent_id", "name"))


@dataclass(frozen=True)
class AuditFilters:
    action: str = ""
    actor: str = ""
    unit_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


def audit_log_list(
    *, user: User, filters: AuditFilters | None = None, unit_ids: set[int] | None = None
) -> QuerySet[AuditLog]:
    qs = AuditLog.objects.visible_to(user, "core.view_audit")
    if unit_ids is not None:
        qs = qs.filter(unit_id__in=unit_ids)
    f = filters or AuditFilters()
    if f.action:
        qs = qs.filter(action__startswith=f.action)
    if f.actor:
        qs = qs.filter(actor_label__istartswith=f.actor)
    if f.unit_id:
        qs = qs.filter(unit_id=f.unit_id)
    if f.since:
        qs = qs.filter(created_at__gte=f.since)
    if f.until:
        qs = qs.filter(created_at__lt=f.until)
    return qs.select_related("unit")


def audit_actions(*, user: User) -> list[str]:
    """Distinct action names for the filter box (a bounded list, not the whole table)."""
    return sorted(
        set(
            AuditLog.objects.visible_to(user, "core.view_audit")
            .order_by("-id")
            .values_list("action", flat=True)[:500]
        )
    )


def api_tokens_of(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.dangerously_unscoped().filter(user=user).order_by("-id")


def team_members(*, user: User, unit_ids: set[int] | None = None) -> QuerySet[Membership]:
    qs = Membership.objects.visible_to(user, "core.view_members").select_related("user", "unit")
    if unit_ids is not None:
        qs = qs.filter(unit_id__in=unit_ids)
    return qs.filter(user__is_active=True).order_by("unit__name", "role", "user__username")


def role_counts(*, user: User, unit_ids: set[int] | None = None) -> dict[str, int]:
    qs = Membership.objects.visible_to(user, "core.view_members").filter(user__is_active=True)
    if unit_ids is not None:
        qs = qs.filter(unit_id__in=unit_ids)
    return dict(qs.values_list("role").annotate(n=Count("id")).values_list("role", "n"))


def audit_count_since(*, user: User, since: datetime, unit_ids: set[int] | None = None) -> int:
    qs = AuditLog.objects.visible_to(user, "core.view_audit").filter(created_at__gte=since)
    if unit_ids is not None:
        qs = qs.filter(unit_id__in=unit_ids)
    # Bounded: the home card says "1000+" rather than counting a huge table.
    return qs.order_by()[:1001].count()


def active_token_count(*, user: User) -> int:
    return ApiToken.objects.dangerously_unscoped().filter(user=user).active().count()


def scoped_units(
    *, user: User, selected: int | None, permission: str = "core.view_unit"
) -> set[int]:
    """The units a page shows: the one picked in the unit switcher, or all visible ones."""
    visible = set(visible_unit_ids(user, permission))
    if selected is None:
        return visible
    # A group picked in the switcher stands for itself and its units.
    children = BusinessUnit.objects.visible_to(user, permission).filter(parent_id=selected)
    return visible & ({selected} | set(children.values_list("id", flat=True)))


def memberships_of(*, user: User) -> list[dict[str, Any]]:
    rows = (
        Membership.objects.dangerously_unscoped()
        .filter(user=user, unit__is_active=True)
        .select_related("unit")
        .order_by("unit__name")
    )
    return [
        {
            "unit": m.unit_id,
            "unit_code": m.unit.code,
            "unit_name": m.unit.name,
            "role": m.role,
            "role_label": str(Role(m.role).label),
            "is_group": m.unit.is_group,
        }
        for m in rows
    ]


def recent_audit(*, user: User, limit: int = 8) -> list[AuditLog]:
    return list(audit_log_list(user=user).order_by("-id")[:limit])
