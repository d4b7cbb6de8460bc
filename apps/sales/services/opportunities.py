"""Opportunities (商机): opened from an SQL, moved through their stages, won or lost.

Won → every open lead on it becomes a customer and the contact is marked customer
(``Contact.customer_since``, which ABM reads later). Lost needs a reason and sends the
leads back to the pool (recycled).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.contacts.models import Contact
from apps.sales.models import Lead, Opportunity, Stage
from apps.sales.services import webhooks
from apps.sales.services.stages import lead_transition, policy_for

OPEN_STAGES = (
    Opportunity.Stage.DISCOVERY,
    Opportunity.Stage.PROPOSAL,
    Opportunity.Stage.NEGOTIATION,
)
PRODUCTS_MAX = 20


def opportunity_clean(data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    if "name" in data or creating:
        name = str(data.get("name") or "").strip()
        if not name:
            errors["name"] = _("Give the opportunity a name.")
        elif len(name) > 200:
            errors["name"] = _("Keep the name under 200 characters.")
        out["name"] = name
    if "amount" in data:
        try:
            amount = Decimal(str(data["amount"] if data["amount"] not in (None, "") else 0))
        except (InvalidOperation, ValueError):
            errors["amount"] = _("Enter the amount as a number, e.g. 120000.")
        else:
            if not amount.is_finite() or amount < 0 or amount >= Decimal("1e12"):
                errors["amount"] = _("The amount must be between 0 and 999,999,999,999.")
            else:
                out["amount"] = amount.quantize(Decimal("0.01"))
    if "stage" in data:
        if data["stage"] not in Opportunity.Stage.values:
            errors["stage"] = _("Unknown opportunity stage.")
        else:
            out["stage"] = data["stage"]
    if "expected_close" in data:
        value = data["expected_close"]
        if value in (None, ""):
            out["expected_close"] = None
        elif isinstance(value, dt.date):
            out["expected_close"] = value
        else:
            try:
                out["expected_close"] = dt.date.fromisoformat(str(value))
            except ValueError:
                errors["expected_close"] = _("Enter the date as YYYY-MM-DD.")
    if "products" in data:
        products = data["products"]
        if isinstance(products, str):
            products = [p.strip() for p in products.replace("，", ",").split(",") if p.strip()]
        if not isinstance(products, list) or not all(isinstance(p, str) for p in products):
            errors["products"] = _("List products as names.")
        elif len(products) > PRODUCTS_MAX:
            errors["products"] = _("At most 20 products.")
        else:
            out["products"] = [p[:100] for p in products]
    if "lost_reason" in data:
        out["lost_reason"] = str(data["lost_reason"] or "").strip()[:300]
    if "external_id" in data:
        out["external_id"] = str(data["external_id"] or "").strip()[:100] or None
    if out.get("stage") == Opportunity.Stage.LOST and not out.get("lost_reason"):
        errors["lost_reason"] = _("Say why it was lost.")
    if errors:
        raise ValidationError(errors)
    return out


@transaction.atomic
def opportunity_create(
    *, lead: Lead, actor: Any, data: dict[str, Any], now: dt.datetime | None = None
) -> Opportunity:
    """Open an opportunity from an SQL (the lead moves to stage opportunity)."""
    now = now or timezone.now()
    lead = Lead.objects.dangerously_unscoped().select_for_update().get(pk=lead.pk)
    if lead.stage != Stage.SQL:
        raise ValidationError({"stage": _("Open an opportunity from an SQL lead.")})
    clean = opportunity_clean(data, creating=True)
    if clean.get("stage") in (Opportunity.Stage.WON, Opportunity.Stage.LOST):
        raise ValidationError({"stage": _("A new opportunity starts open; win or lose it after.")})
    opp = Opportunity.objects.create(
        unit_id=lead.unit_id,
        contact_id=lead.contact_id,
        company_name=lead.contact.company_name,
        owner_id=lead.owner_id or getattr(actor, "pk", None),
        created_at=now,
        **clean,
    )
    lead.opportunity = opp
    lead_transition(
        lead=lead, to_stage=Stage.OPPORTUNITY, actor=actor, now=now, policy=policy_for(lead.unit_id)
    )
    webhooks.emit(opp.unit_id, "opportunity.changed", opportunity_payload(opp))
    return opp


@transaction.atomic
def opportunity_update(
    *,
    opportunity: Opportunity,
    actor: Any,
    data: dict[str, Any],
    now: dt.datetime | None = None,
    label: str = "",
) -> Opportunity:
    now = now or timezone.now()
    opp = Opportunity.objects.dangerously_unscoped().select_for_update().get(pk=opportunity.pk)
    if opp.closed_at is not None:
        raise ValidationError(
            {"stage": _("The opportunity is closed (%(s)s).") % {"s": opp.get_stage_display()}}
        )
    clean = opportunity_clean(data, creating=False)
    if clean.get("stage") == Opportunity.Stage.LOST and not clean.get("lost_reason"):
        raise ValidationError({"lost_reason": _("Say why it was lost.")})
    for key, value in clean.items():
        setattr(opp, key, value)
    if opp.stage in (Opportunity.Stage.WON, Opportunity.Stage.LOST):
        opp.closed_at = now
    opp.save()
    if opp.stage == Opportunity.Stage.WON:
        _won(opp, actor, now, label)
    elif opp.stage == Opportunity.Stage.LOST:
        _lost(opp, actor, now, label)
    webhooks.emit(opp.unit_id, "opportunity.changed", opportunity_payload(opp))
    return opp


def _leads_of(opp: Opportunity) -> list[Lead]:
    return list(
        Lead.objects.dangerously_unscoped()
        .select_for_update()
        .filter(opportunity=opp, is_open=True)
        .select_related("contact", "unit")
    )


def _won(opp: Opportunity, actor: Any, now: dt.datetime, label: str) -> None:
    contact_ids = {opp.contact_id} - {None}
    for lead in _leads_of(opp):
        contact_ids.add(lead.contact_id)
        if lead.stage != Stage.OPPORTUNITY:
            continue
        lead_transition(
            lead=lead,
            to_stage=Stage.CUSTOMER,
            actor=actor,
            label=label,
            now=now,
            reason=_("Won: %(name)s") % {"name": opp.name},
        )
    contact_ids |= set(opp.people.values_list("contact_id", flat=True))
    Contact.objects.dangerously_unscoped().filter(
        pk__in=contact_ids, customer_since__isnull=True
    ).update(customer_since=now)


def _lost(opp: Opportunity, actor: Any, now: dt.datetime, label: str) -> None:
    for lead in _leads_of(opp):
        lead_transition(
            lead=lead,
            to_stage=Stage.RECYCLED,
            actor=actor,
            label=label,
            now=now,
            reason=_("Lost: %(r)s") % {"r": opp.lost_reason},
        )


def opportunity_payload(opp: Opportunity) -> dict[str, Any]:
    return {
        "opportunity": {
            "id": opp.pk,
            "external_id": opp.external_id,
            "unit": opp.unit_id,
            "name": opp.name,
            "stage": opp.stage,
            "amount": str(opp.amount),
            "currency": opp.currency,
            "expected_close": opp.expected_close.isoformat() if opp.expected_close else None,
            "products": opp.products,
            "lost_reason": opp.lost_reason,
            "owner": opp.owner_id,
        }
    }
