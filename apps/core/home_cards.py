"""Core's entries in the surface registries: navigation and home-page counts."""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core import selectors
from apps.core.navigation import Card, NavItem, register_card, register_nav
from apps.core.roles import Role, Surface
from apps.core.scoping import visible_unit_ids
from apps.core.web import user_of

register_nav(NavItem(Surface.CONSOLE, _("Home"), "core:console-home", order=0, icon="home"))
register_nav(NavItem(Surface.CONSOLE, _("Team"), "core:team", "core.view_members", 900, "team"))
register_nav(NavItem(Surface.CONSOLE, _("Audit log"), "core:audit", "core.view_audit", 910, "log"))
register_nav(NavItem(Surface.CONSOLE, _("API tokens"), "core:tokens", "core.use_api", 920, "key"))
register_nav(NavItem(Surface.MOBILE, _("Home"), "core:mobile-home", order=0, icon="home"))


@register_card(Surface.CONSOLE, order=900)
def team_card(request: HttpRequest, unit_ids: set[int] | None) -> Card:
    counts = selectors.role_counts(user=user_of(request), unit_ids=unit_ids)
    return Card(
        title=_("Team members"),
        value=sum(counts.values()),
        hint=_("People with a role in the units shown"),
        url=reverse("core:team"),
        empty=_(
            "Nobody has a role in these units yet. "
            "An administrator adds people in Admin → Memberships."
        ),
        action_label=_("Open admin"),
        action_url="/admin/core/membership/",
        breakdown=[(Role(role).label, n) for role, n in sorted(counts.items())],
    )


@register_card(Surface.CONSOLE, order=910)
def audit_card(request: HttpRequest, unit_ids: set[int] | None) -> Card | None:
    user = user_of(request)
    if not (user.is_superuser or visible_unit_ids(user, "core.view_audit")):
        return None
    since = timezone.now() - timedelta(days=7)
    count = selectors.audit_count_since(user=user, since=since, unit_ids=unit_ids)
    return Card(
        title=_("Changes in the last 7 days"),
        value="1000+" if count > 1000 else count,
        hint=_("Every change is recorded with who made it"),
        url=reverse("core:audit"),
        empty=_("Nothing has changed in these units in the last 7 days."),
    )


@register_card(Surface.CONSOLE, order=920)
def token_card(request: HttpRequest, unit_ids: set[int] | None) -> Card:
    return Card(
        title=_("Your API tokens"),
        value=selectors.active_token_count(user=user_of(request)),
        hint=_("Active tokens that connect other systems to LeadLoop"),
        url=reverse("core:tokens"),
        empty=_("No API tokens yet. Create one to connect your CRM, website or data warehouse."),
        action_label=_("Create a token"),
        action_url=reverse("core:tokens"),
    )


def _role_card(
    request: HttpRequest,
    unit_ids: set[int] | None,
    roles: tuple[str, ...],
    title: object,
    hint: object,
    empty: object,
) -> Card:
    counts = selectors.role_counts(user=user_of(request), unit_ids=unit_ids)
    return Card(
        title=title,  # type: ignore[arg-type]
        value=sum(counts.get(r, 0) for r in roles),
        hint=hint,  # type: ignore[arg-type]
        empty=empty,  # type: ignore[arg-type]
        breakdown=[(Role(r).label, counts.get(r, 0)) for r in roles if len(roles) > 1],
    )


@register_card(Surface.SDR, order=900)
def sdr_team_card(request: HttpRequest, unit_ids: set[int] | None) -> Card:
    return _role_card(
        request,
        unit_ids,
        (Role.SDR,),
        _("SDRs in your units"),
        _("Colleagues who share the qualification work"),
        _("You are the only SDR here; every lead handed to these units comes to you."),
    )


@register_card(Surface.SDR, order=910)
def sdr_sales_card(request: HttpRequest, unit_ids: set[int] | None) -> Card:
    return _role_card(
        request,
        unit_ids,
        (Role.SALES, Role.SALES_MANAGER),
        _("Sales you hand off to"),
        _("Salespeople and managers who accept your MQLs"),
        _(
            "No salesperson has a role in these units yet, so qualified leads have nobody "
            "to go to. Ask an administrator to add one."
        ),
    )


@register_card(Surface.MOBILE, order=900)
def mobile_team_card(request: HttpRequest, unit_ids: set[int] | None) -> Card:
    return _role_card(
        request,
        unit_ids,
        (Role.SALES, Role.SALES_MANAGER),
        _("Your sales team"),
        _("Salespeople and managers in your units"),
        _("No salespeople in these units yet."),
    )


@register_card(Surface.MOBILE, order=910)
def mobile_sdr_card(request: HttpRequest, unit_ids: set[int] | None) -> Card:
    return _role_card(
        request,
        unit_ids,
        (Role.SDR,),
        _("SDRs who qualify for you"),
        _("They call, qualify and hand MQLs to you"),
        _("No SDR in these units: leads reach you straight from marketing."),
    )
