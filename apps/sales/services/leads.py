"""Leads: opening one (with 客户查重 dedup), assigning people, qualifying, handing to
sales, accepting and rejecting, follow-ups, and the group pool's hand-over to units.

Every function takes the acting user (``None`` for the system), runs in one transaction,
locks the lead row it changes, and leaves a ``LeadHistory`` row per change. Scoping is the
caller's job (views and the API fetch the lead through the selectors first).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import CharField, Func, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.contacts.models import Contact, IdentityKind
from apps.contacts.services.activities import ActivityIn, activities_record
from apps.core.models import BusinessUnit
from apps.sales.models import (
    BANT_FIELDS,
    TEMPERATURE_RANK,
    AssignmentRule,
    Authority,
    FollowUp,
    FollowUpKind,
    HistoryKind,
    Lead,
    LeadSource,
    LeadTemperature,
    Opportunity,
    OpportunityContact,
    SlaPolicy,
    Stage,
    Timeline,
)
from apps.sales.services import alerts, assignment, sla, webhooks
from apps.sales.services.stages import actor_label, history_add, lead_transition, policy_for

REACHABLE = (IdentityKind.EMAIL, IdentityKind.PHONE, IdentityKind.WECOM)
NOTE_MAX = 4000


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or timezone.now()


def _locked(lead: Lead) -> Lead:
    fresh = Lead.objects.dangerously_unscoped().select_for_update().get(pk=lead.pk)
    fresh.contact = lead.contact if lead.contact_id == fresh.contact_id else fresh.contact
    return fresh


def company_key(name: str) -> str:
    """Company names compared the way people type them: case, spaces (full-width too) and
    full-width brackets do not matter. ``CompanyKey`` is the same rule in SQL."""
    return "".join(name.split()).lower().replace("（", "(").replace("）", ")")


class CompanyKey(Func):  # type: ignore[misc]
    """``company_key`` in SQL, so a lookup is one query, not a loop over a unit's deals."""

    template = (
        "lower(translate(regexp_replace(%(expressions)s, '[[:space:]　]+', '', 'g'), '（）', '()'))"
    )
    output_field = CharField()


# --- Opening a lead -------------------------------------------------------------------------


@dataclass
class OpenResult:
    """``outcome``: opened · existing (an open lead in the unit already) · attached (to an
    open opportunity, no new lead) · flagged (opened, but may be an existing customer)."""

    outcome: str
    lead: Lead | None = None
    opportunity: Opportunity | None = None
    message: str = ""


def _open_opportunity(unit_id: int, contact: Contact, external_id: str | None) -> Any:
    qs = Opportunity.objects.dangerously_unscoped().filter(unit_id=unit_id, closed_at__isnull=True)
    match = Q(contact=contact)
    if external_id:
        match |= Q(external_id=external_id)
    found = qs.filter(match).order_by("id").first()
    if found is None and contact.company_name.strip():
        found = (
            qs.annotate(company_key=CompanyKey("company_name"))
            .filter(company_key=company_key(contact.company_name))
            .order_by("id")
            .first()
        )
    return found


def _existing_customer(unit_id: int, contact: Contact) -> str:
    if contact.customer_since:
        return _("The contact is already a customer (since %(d)s).") % {
            "d": timezone.localtime(contact.customer_since).date()
        }
    if (
        Lead.objects.dangerously_unscoped()
        .filter(unit_id=unit_id, contact=contact, stage=Stage.CUSTOMER)
        .exists()
    ):
        return _("An earlier lead of this contact became a customer.")
    if (
        contact.company_name.strip()
        and Opportunity.objects.dangerously_unscoped()
        .filter(unit_id=unit_id, stage=Opportunity.Stage.WON)
        .annotate(company_key=CompanyKey("company_name"))
        .filter(company_key=company_key(contact.company_name))
        .exists()
    ):
        return _("%(company)s is already a customer.") % {"company": contact.company_name}
    return ""


def _initial_stage(contact: Contact) -> str:
    return Stage.MIL if contact.identities.filter(kind__in=REACHABLE).exists() else Stage.MAL


def _facts(contact: Contact) -> dict[str, Any]:
    custom = contact.custom or {}
    size = custom.get("company_size") or custom.get("employees")
    try:
        size = int(str(size)) if size not in (None, "") else None
    except (TypeError, ValueError):
        size = None
    tier = str(custom.get("tier") or "")
    return {
        "company_size": size,
        "tier": tier if tier in ("ka", "mid", "small") else "",
        "product_interest": str(custom.get("product_interest") or "")[:100],
    }


@transaction.atomic
def lead_open(
    *,
    contact: Contact,
    unit: BusinessUnit,
    source: str,
    actor: Any = None,
    stage: str | None = None,
    temperature: str | None = None,
    score: Decimal | None = None,
    channel_id: int | None = None,
    campaign_id: int | None = None,
    external_id: str | None = None,
    sdr: Any = None,
    reason: str = "",
    now: dt.datetime | None = None,
    **facts: Any,
) -> OpenResult:
    """Open a lead for ``contact`` in ``unit`` unless dedup says otherwise (see OpenResult)."""
    now = _now(now)
    if source not in LeadSource.values:
        raise ValidationError({"source": _("Unknown lead source “%(s)s”.") % {"s": source}})
    if stage is not None and stage not in (Stage.MAL, Stage.MIL, Stage.MQL):
        raise ValidationError({"stage": _("A new lead starts as MAL, MIL or MQL.")})
    if temperature is not None and temperature not in LeadTemperature.values:
        raise ValidationError({"temperature": _("Unknown temperature.")})
    existing = (
        Lead.objects.dangerously_unscoped().filter(contact=contact, unit=unit, is_open=True).first()
    )
    if existing is None and external_id:
        existing = (
            Lead.objects.dangerously_unscoped().filter(unit=unit, external_id=external_id).first()
        )
    if existing is not None:
        if temperature and _warmer(temperature, existing.temperature):
            existing.temperature = temperature
            existing.save(update_fields=["temperature", "updated_at"])
        return OpenResult(
            "existing",
            lead=existing,
            message=_("This contact already has an open lead in the unit."),
        )
    opportunity = _open_opportunity(unit.pk, contact, external_id)
    if opportunity is not None:
        _link, added = OpportunityContact.objects.get_or_create(
            opportunity=opportunity,
            contact=contact,
            defaults={
                "reason": _("New lead from %(source)s") % {"source": LeadSource(source).label}
            },
        )
        if added and opportunity.owner_id:
            alerts.alert(
                alerts.AlertIn(
                    user_id=opportunity.owner_id,
                    kind="lead_assigned",
                    unit_id=unit.pk,
                    title=_("%(name)s joined opportunity %(opp)s")
                    % {"name": str(contact), "opp": opportunity.name},
                    body=_("A new lead from the same company attached to your open opportunity."),
                    dedupe_key=f"opp-attach:{opportunity.pk}:{contact.pk}",
                )
            )
        return OpenResult(
            "attached",
            opportunity=opportunity,
            message=_("Attached to the open opportunity “%(opp)s”.") % {"opp": opportunity.name},
        )
    review = _existing_customer(unit.pk, contact)
    values = {**_facts(contact), **{k: v for k, v in facts.items() if v not in (None, "")}}
    lead = Lead(
        unit=unit,
        contact=contact,
        source=source,
        stage=stage or _initial_stage(contact),
        temperature=temperature or LeadTemperature.COLD,
        score=score or Decimal(0),
        source_channel_id=channel_id or contact.source_channel_id,
        source_campaign_id=campaign_id or contact.first_touch_campaign_id,
        external_id=external_id or None,
        needs_review=bool(review),
        review_reason=review,
        stage_changed_at=now,
        created_at=now,
        **values,
    )
    try:
        with transaction.atomic():
            lead.save()
    except IntegrityError:
        # Someone opened it a moment ago (the one-open-lead constraint): use theirs.
        lead = Lead.objects.dangerously_unscoped().get(contact=contact, unit=unit, is_open=True)
        return OpenResult(
            "existing", lead=lead, message=_("This contact already has an open lead in the unit.")
        )
    history_add(
        lead,
        HistoryKind.STAGE,
        "",
        lead.stage,
        actor=actor,
        reason=reason or str(LeadSource(source).label),
        at=now,
    )
    if review:
        history_add(lead, HistoryKind.REVIEW, "", "needed", actor=actor, reason=review, at=now)
    policy = policy_for(unit.pk)
    if sdr is not None:
        _set_sdr(lead, sdr.pk, actor=actor, now=now)
    elif lead.stage in (Stage.MAL, Stage.MIL, Stage.MQL):
        _route_sdr(lead, policy=policy, now=now)
    sla.clock_restart(lead, policy=policy, now=now)
    lead.save()
    webhooks.emit_lead_event(lead, "lead.created")
    return OpenResult("flagged" if review else "opened", lead=lead, message=review)


def _warmer(new: str, old: str) -> bool:
    # TEMPERATURE_RANK: the queue's order, hottest lowest.
    if new not in TEMPERATURE_RANK or old not in TEMPERATURE_RANK:
        return False
    return TEMPERATURE_RANK[new] < TEMPERATURE_RANK[old]


def _set_sdr(lead: Lead, user_id: int, *, actor: Any, now: dt.datetime, label: str = "") -> None:
    old = lead.sdr_id
    lead.sdr_id = user_id
    history_add(lead, HistoryKind.SDR, old or "", user_id, actor=actor, label=label, at=now)
    if user_id != getattr(actor, "pk", None):
        alerts.alert(
            alerts.AlertIn(
                user_id=user_id,
                kind="lead_assigned",
                unit_id=lead.unit_id,
                lead_id=lead.pk,
                title=_("New lead: %(name)s") % {"name": str(lead.contact)},
                body=str(Stage(lead.stage).label),
                dedupe_key=f"assigned:{lead.pk}:sdr:{user_id}:{now.timestamp():.0f}",
            )
        )


def _route_sdr(lead: Lead, *, policy: SlaPolicy, now: dt.datetime) -> None:
    """The unit's SDR rules pick the lead's SDR (recorded for round robin); none: unassigned."""
    routed = assignment.route(lead, AssignmentRule.Role.SDR, policy=policy, now=now)
    if routed.user_id:
        _set_sdr(lead, routed.user_id, actor=None, now=now, label=_("assignment rule"))
        assignment.record(lead, routed, AssignmentRule.Role.SDR, now)


def _set_owner(
    lead: Lead,
    user_id: int | None,
    *,
    actor: Any,
    now: dt.datetime,
    reason: str = "",
    label: str = "",
) -> None:
    old = lead.owner_id
    lead.owner_id = user_id
    history_add(
        lead,
        HistoryKind.OWNER,
        old or "",
        user_id or "",
        actor=actor,
        label=label,
        reason=reason,
        at=now,
    )
    if user_id and user_id != getattr(actor, "pk", None):
        alerts.alert(
            alerts.AlertIn(
                user_id=user_id,
                kind="lead_assigned",
                unit_id=lead.unit_id,
                url=alerts.lead_url(lead.pk, mobile=True),
                title=_("New MQL to accept: %(name)s") % {"name": str(lead.contact)},
                body=reason,
                dedupe_key=f"assigned:{lead.pk}:owner:{user_id}:{now.timestamp():.0f}",
            )
        )


# --- People ---------------------------------------------------------------------------------


@transaction.atomic
def lead_assign_sdr(
    *,
    lead: Lead,
    sdr: Any,
    actor: Any,
    only_if_unassigned: bool = False,
    now: dt.datetime | None = None,
) -> Lead:
    """Make ``sdr`` the lead's SDR. ``only_if_unassigned``: "take it" from the unassigned
    list, refused when someone took it first (checked under the row lock)."""
    now = _now(now)
    lead = _locked(lead)
    if not lead.is_open:
        raise ValidationError(_("The lead is closed."))
    if only_if_unassigned and lead.sdr_id is not None:
        raise ValidationError(_("Someone else took this lead already."))
    _set_sdr(lead, sdr.pk, actor=actor, now=now)
    sla.clock_restart(lead, policy=policy_for(lead.unit_id), now=now)
    lead.save()
    return lead


# --- BANT and qualification -----------------------------------------------------------------


def bant_clean(data: dict[str, Any]) -> dict[str, Any]:
    """Validate BANT values (raises ``ValidationError`` per field); returns clean values
    for the keys present in ``data``."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    if "budget" in data:
        raw = data["budget"]
        if raw in (None, ""):
            out["budget"] = None
        else:
            try:
                value = Decimal(str(raw))
            except (InvalidOperation, ValueError):
                errors["budget"] = _("Enter the budget as a number of yuan, e.g. 500000.")
            else:
                if not value.is_finite() or value < 0 or value >= Decimal("1e12"):
                    errors["budget"] = _("The budget must be between 0 and 999,999,999,999 yuan.")
                else:
                    out["budget"] = value.quantize(Decimal("0.01"))
    if "authority" in data:
        if (data["authority"] or "") not in Authority.values:
            errors["authority"] = _("Pick one of: %(v)s.") % {
                "v": ", ".join(v for v in Authority.values if v)
            }
        else:
            out["authority"] = data["authority"] or ""
    if "timeline" in data:
        if (data["timeline"] or "") not in Timeline.values:
            errors["timeline"] = _("Pick one of: %(v)s.") % {
                "v": ", ".join(v for v in Timeline.values if v)
            }
        else:
            out["timeline"] = data["timeline"] or ""
    if "need" in data:
        need = str(data["need"] or "").strip()
        if len(need) > 2000:
            errors["need"] = _("Keep the need under 2000 characters.")
        out["need"] = need
    if errors:
        raise ValidationError(errors)
    return out


def bant_missing(lead: Lead, policy: SlaPolicy) -> list[str]:
    values = lead.bant()
    required = [f for f in policy.bant_required if f in BANT_FIELDS]
    return [f for f in required if values[f] in (None, "")]


@transaction.atomic
def lead_update(*, lead: Lead, data: dict[str, Any], actor: Any) -> Lead:
    """BANT and routing facts (tier, size, product interest, temperature)."""
    lead = _locked(lead)
    clean = bant_clean(data)
    errors = {}
    if "temperature" in data:
        if data["temperature"] not in LeadTemperature.values:
            errors["temperature"] = _("Unknown temperature.")
        else:
            clean["temperature"] = data["temperature"]
    if "tier" in data:
        if (data["tier"] or "") not in ("", "ka", "mid", "small"):
            errors["tier"] = _("Tier is ka, mid or small.")
        else:
            clean["tier"] = data["tier"] or ""
    if "company_size" in data:
        raw = data["company_size"]
        if raw in (None, ""):
            clean["company_size"] = None
        elif not str(raw).isdigit() or int(raw) > 10_000_000:
            errors["company_size"] = _("Employees: a whole number from 0 to 10,000,000.")
        else:
            clean["company_size"] = int(raw)
    if "product_interest" in data:
        clean["product_interest"] = str(data["product_interest"] or "")[:100]
    if errors:
        raise ValidationError(errors)
    for key, value in clean.items():
        setattr(lead, key, value)
    lead.save()
    return lead


@transaction.atomic
def lead_move(
    *, lead: Lead, to_stage: str, actor: Any, reason: str = "", now: dt.datetime | None = None
) -> Lead:
    """A plain stage move (disqualify, recycle, back to MIL…), checked by the table."""
    lead = _locked(lead)
    policy = policy_for(lead.unit_id)
    if to_stage == Stage.MQL:
        missing = bant_missing(lead, policy)
        if missing:
            raise ValidationError(
                {
                    "stage": _("Qualify needs these BANT answers first: %(fields)s.")
                    % {"fields": ", ".join(missing)}
                }
            )
    return lead_transition(
        lead=lead, to_stage=to_stage, actor=actor, reason=reason, policy=policy, now=now
    )


def lead_qualify(
    *, lead: Lead, actor: Any, reason: str = "", now: dt.datetime | None = None
) -> Lead:
    return lead_move(lead=lead, to_stage=Stage.MQL, actor=actor, reason=reason, now=now)


@transaction.atomic
def lead_handoff(
    *, lead: Lead, actor: Any, owner: Any = None, note: str = "", now: dt.datetime | None = None
) -> Lead:
    """SDR hands an MQL (or TQL) to sales: the given salesperson or the unit's rules pick
    one; the accept clock starts."""
    now = _now(now)
    lead = _locked(lead)
    policy = policy_for(lead.unit_id)
    ready = Stage.TQL if policy.use_tql else Stage.MQL
    if lead.stage != ready:
        raise ValidationError(
            {
                "stage": _("Only a lead at %(stage)s can go to sales.")
                % {"stage": Stage(ready).label}
            }
        )
    if lead.unit.is_group:
        raise ValidationError(
            {"unit": _("This lead is in the group pool: hand it to a business unit first.")}
        )
    if len(note) > NOTE_MAX:
        raise ValidationError({"note": _("Keep the note under 4000 characters.")})
    if owner is None:
        routed = assignment.route(
            lead,
            AssignmentRule.Role.SALES,
            policy=policy,
            now=now,
            exclude={lead.owner_id} if lead.owner_id else set(),
        )
        if routed.user_id is None:
            raise ValidationError(
                {
                    "owner": _(
                        "No assignment rule matched this lead and nobody is free: "
                        "pick a salesperson or ask sales ops to add a rule."
                    )
                }
            )
        assignment.record(lead, routed, AssignmentRule.Role.SALES, now)
        owner_id = routed.user_id
    else:
        owner_id = owner.pk
    lead.handed_at = now
    _set_owner(lead, owner_id, actor=actor, now=now, reason=note)
    sla.clock_restart(lead, policy=policy, now=now)
    lead.save()
    if note.strip():
        _follow_up(lead, actor, FollowUpKind.NOTE, note, now=now)
    webhooks.emit_lead_event(lead, "lead.assigned", {"owner": owner_id})
    return lead


@transaction.atomic
def lead_accept(*, lead: Lead, actor: Any, now: dt.datetime | None = None) -> Lead:
    lead = _locked(lead)
    if lead.owner_id != getattr(actor, "pk", None) and not getattr(actor, "is_superuser", False):
        raise ValidationError(_("Only the salesperson the lead was handed to can accept it."))
    return lead_transition(lead=lead, to_stage=Stage.SAL, actor=actor, now=now)


@transaction.atomic
def lead_reject(*, lead: Lead, actor: Any, reason: str, now: dt.datetime | None = None) -> Lead:
    """Sales sends an MQL back to the SDR; a reason is required."""
    lead = _locked(lead)
    if lead.stage not in (Stage.MQL, Stage.TQL) or not lead.owner_id:
        raise ValidationError({"stage": _("Only an MQL handed to sales can be rejected.")})
    if not reason.strip():
        raise ValidationError({"reason": _("Say why you reject it: the SDR needs to know.")})
    return lead_transition(lead=lead, to_stage=Stage.MIL, actor=actor, reason=reason, now=now)


# --- Follow-ups -----------------------------------------------------------------------------


def _follow_up(
    lead: Lead,
    user: Any,
    kind: str,
    note: str,
    *,
    now: dt.datetime,
    next_step: str = "",
    next_step_at: dt.datetime | None = None,
) -> FollowUp:
    follow = FollowUp.objects.create(
        lead=lead,
        unit_id=lead.unit_id,
        user=user,
        kind=kind,
        note=note,
        next_step=next_step,
        next_step_at=next_step_at,
        occurred_at=now,
    )
    activities_record(
        [
            ActivityIn(
                unit_id=lead.unit_id,
                contact_id=lead.contact_id,
                type=f"sales.{kind}",
                occurred_at=now,
                object_type="lead",
                object_id=str(lead.pk),
                properties={"by": actor_label(user), "note": note[:200]},
                dedupe_key=f"followup:{follow.pk}",
            )
        ]
    )
    return follow


@transaction.atomic
def follow_up_log(
    *,
    lead: Lead,
    actor: Any,
    kind: str,
    note: str = "",
    next_step: str = "",
    next_step_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> FollowUp:
    """Log a call, visit, chat, meeting or note. The SDR's first one stops the first-touch
    clock; a salesperson's resets the follow-up clock."""
    now = _now(now)
    lead = _locked(lead)
    errors = {}
    if kind not in FollowUpKind.values:
        errors["kind"] = _("Pick call, visit, WeCom chat, meeting, email or note.")
    if len(note) > NOTE_MAX:
        errors["note"] = _("Keep the note under 4000 characters.")
    if kind == FollowUpKind.NOTE and not note.strip():
        errors["note"] = _("Write the note.")
    if next_step_at is not None and next_step_at < now - dt.timedelta(minutes=5):
        errors["next_step_at"] = _("The next step cannot be in the past.")
    if not lead.is_open:
        errors["lead"] = _("The lead is closed.")
    if errors:
        raise ValidationError(errors)
    follow = _follow_up(
        lead,
        actor,
        kind,
        note.strip(),
        now=now,
        next_step=next_step[:300],
        next_step_at=next_step_at,
    )
    if kind != FollowUpKind.NOTE:
        if lead.first_touched_at is None:
            lead.first_touched_at = now
        lead.last_follow_up_at = now
    if next_step_at is not None:
        lead.next_step_at = next_step_at
    sla.clock_restart(lead, policy=policy_for(lead.unit_id), now=now)
    lead.save()
    return follow


# --- The group pool -------------------------------------------------------------------------


@transaction.atomic
def lead_hand_to_unit(
    *, lead: Lead, unit: BusinessUnit, actor: Any, reason: str = "", now: dt.datetime | None = None
) -> Lead:
    """The group team hands a qualified lead (MQL) from the pool to one of its units."""
    now = _now(now)
    lead = _locked(lead)
    if not lead.unit.is_group:
        raise ValidationError({"unit": _("Only a lead in the group pool can be handed to a unit.")})
    if unit.parent_id != lead.unit_id or not unit.is_active:
        raise ValidationError({"unit": _("Pick an active unit of this group.")})
    if lead.stage != Stage.MQL:
        raise ValidationError({"stage": _("Qualify the lead (MQL) before handing it to a unit.")})
    if (
        Lead.objects.dangerously_unscoped()
        .filter(contact_id=lead.contact_id, unit=unit, is_open=True)
        .exists()
    ):
        raise ValidationError(
            {
                "unit": _("%(unit)s already works an open lead for this contact.")
                % {"unit": unit.name}
            }
        )
    old = lead.unit_id
    lead.unit = unit
    lead.owner = None
    lead.sdr = None
    history_add(lead, HistoryKind.UNIT, old, unit.pk, actor=actor, reason=reason, at=now)
    policy = policy_for(unit.pk)
    _route_sdr(lead, policy=policy, now=now)
    sla.clock_restart(lead, policy=policy, now=now)
    lead.save()
    webhooks.emit_lead_event(lead, "lead.assigned", {"unit": unit.pk})
    return lead


@transaction.atomic
def lead_decline_to_pool(
    *, lead: Lead, actor: Any, reason: str, now: dt.datetime | None = None
) -> Lead:
    """A unit declines a lead the group handed it: back to the pool, with the reason."""
    now = _now(now)
    lead = _locked(lead)
    group_id = lead.unit.parent_id
    if group_id is None:
        raise ValidationError({"unit": _("The lead is already in the group pool.")})
    if not lead.history.filter(kind=HistoryKind.UNIT, from_value=str(group_id)).exists():
        raise ValidationError({"unit": _("This lead did not come from the group pool.")})
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the unit declines it.")})
    if (
        Lead.objects.dangerously_unscoped()
        .filter(contact_id=lead.contact_id, unit_id=group_id, is_open=True)
        .exists()
    ):
        raise ValidationError({"unit": _("The group pool already has an open lead for them.")})
    old = lead.unit_id
    lead.unit_id = group_id
    lead.owner = None
    lead.sdr = None
    lead.handed_at = None
    lead.reason = reason.strip()[:300]
    history_add(lead, HistoryKind.UNIT, old, group_id, actor=actor, reason=reason, at=now)
    sla.clock_restart(lead, policy=policy_for(group_id), now=now)
    lead.save()
    return lead


__all__ = [
    "OpenResult",
    "actor_label",
    "bant_clean",
    "bant_missing",
    "company_key",
    "follow_up_log",
    "lead_accept",
    "lead_assign_sdr",
    "lead_decline_to_pool",
    "lead_hand_to_unit",
    "lead_handoff",
    "lead_move",
    "lead_open",
    "lead_qualify",
    "lead_reject",
    "lead_update",
]
