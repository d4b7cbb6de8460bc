"""Reads for the sales API and the webhook console: opportunities, webhooks and their
deliveries, CRM updates, and the people a lead may be handed to. Everything starts from
what the asking person may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from apps.contacts.models import Contact
from apps.core.models import BusinessUnit, Membership, User
from apps.core.roles import roles_with
from apps.core.scoping import unit_roles, visible_unit_ids
from apps.sales.models import (
    SEES_ALL_LEADS,
    CrmInbound,
    Opportunity,
    WebhookDelivery,
    WebhookEndpoint,
)

CONFIGURE = "sales.configure"


def opportunities_visible(*, user: User, permission: str = "sales.view") -> QuerySet[Opportunity]:
    """Units by role; a salesperson (role ``sales`` only) sees the opportunities they own."""
    qs = Opportunity.objects.visible_to(user, permission)
    if user.is_superuser:
        return qs
    allowed = roles_with(permission)
    everything: set[int] = set()
    own: set[int] = set()
    for unit_id, role, _direct in unit_roles(user):
        if role in allowed:
            (everything if role in SEES_ALL_LEADS else own).add(unit_id)
    own -= everything
    q = Q(unit_id__in=sorted(everything)) if everything else Q(pk__in=[])
    if own:
        q |= Q(unit_id__in=sorted(own), owner_id=user.pk)
    return qs.filter(q)


def contact_for_lead(*, user: User, contact_id: int, unit: BusinessUnit) -> Contact | None:
    """A contact the person sees, of the unit's group."""
    return (
        Contact.objects.visible_to(user, "sales.view")
        .filter(pk=contact_id, group_id=unit.parent_id or unit.pk)
        .first()
    )


def seller_get(*, unit_id: int, parent_id: int | None, user_id: Any) -> User | None:
    """``user_id`` if they sell in the unit (or its group); None otherwise."""
    if not str(user_id).isdigit():
        return None
    membership = (
        Membership.objects.for_units([u for u in (unit_id, parent_id) if u])
        .filter(user_id=int(user_id), role__in=roles_with("sales.sell"), user__is_active=True)
        .select_related("user")
        .first()
    )
    return membership.user if membership is not None else None


def webhook_endpoints(*, user: User) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.visible_to(user, CONFIGURE).select_related("unit")


def webhook_deliveries(*, user: User, endpoint_id: int | None = None) -> QuerySet[WebhookDelivery]:
    qs = WebhookDelivery.objects.visible_to(user, CONFIGURE).select_related("endpoint")
    if endpoint_id is not None:
        qs = qs.filter(endpoint_id=endpoint_id)
    return qs


def crm_inbound_visible(*, user: User) -> QuerySet[CrmInbound]:
    return CrmInbound.objects.visible_to(user, CONFIGURE)


def configurable_unit_ids(*, user: User) -> frozenset[int]:
    return visible_unit_ids(user, CONFIGURE)


def units_configurable(*, user: User, unit_ids: set[int] | None = None) -> list[BusinessUnit]:
    """Active units where the person may add webhooks (narrowed to the switcher's pick)."""
    qs = BusinessUnit.objects.visible_to(user, CONFIGURE).filter(is_active=True)
    if unit_ids is not None:
        qs = qs.filter(pk__in=unit_ids)
    return list(qs.order_by("name"))
