"""The CRM link, inbound: status and opportunity updates the CRM sends us.

An update is stored first (``CrmInbound``, unique per unit and the CRM's event id) and
answered 202; ``crm_inbound_process`` applies it later (a task, and a sweep for rows left
pending). A replay of the same event id with the same body is answered from the row and
changes nothing; the same id with another body is refused. Whatever cannot be applied (an
unknown lead, an illegal stage move) leaves the row ``rejected`` with the reason in
``result["message"]``.

The person who sent the update (their API token's user) is the actor of every change;
their id is kept in ``result["by"]`` from the moment the row is stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.core.audit_actions import register_action
from apps.core.models import BusinessUnit, User
from apps.core.services import audit_record
from apps.sales.models import CrmInbound, Lead, Opportunity, Stage, WebhookEndpoint
from apps.sales.services import leads as lead_services
from apps.sales.services import opportunities as opp_services

register_action("webhook.create", gettext_lazy("Webhook added"))
register_action("webhook.change", gettext_lazy("Webhook switched on or off"))
register_action("webhook.delete", gettext_lazy("Webhook removed"))

KINDS = ("lead_status", "opportunity")
SWEEP_BATCH = 100
# A row the task should have taken by now: the sweep picks it up.
SWEEP_AFTER = dt.timedelta(minutes=1)


def body_hash(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def messages_of(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return " ".join(str(m) for msgs in exc.message_dict.values() for m in msgs)
    return " ".join(str(m) for m in exc.messages)


# --- Lead CRM ids ---------------------------------------------------------------------------


@transaction.atomic
def lead_external_id_set(*, lead: Lead, external_id: str | None, actor: Any) -> Lead:
    """Set (or clear with ``None``/"") the lead's CRM id; unique per unit."""
    value = (external_id or "").strip() or None
    if value is not None and len(value) > 100:
        raise ValidationError({"external_id": _("Keep the CRM id under 100 characters.")})
    lead = Lead.objects.dangerously_unscoped().select_for_update().get(pk=lead.pk)
    if lead.external_id == value:
        return lead
    if (
        value is not None
        and Lead.objects.dangerously_unscoped()
        .filter(unit_id=lead.unit_id, external_id=value)
        .exclude(pk=lead.pk)
        .exists()
    ):
        raise ValidationError(
            {
                "external_id": _("Another lead of this unit already has CRM id “%(id)s”.")
                % {"id": value}
            }
        )
    lead.external_id = value
    try:
        with transaction.atomic():
            lead.save(update_fields=["external_id", "updated_at"])
    except IntegrityError:
        raise ValidationError(
            {
                "external_id": _("Another lead of this unit already has CRM id “%(id)s”.")
                % {"id": value}
            }
        ) from None
    return lead


# --- Opportunities by CRM id ----------------------------------------------------------------


def opportunity_by_external_id(*, unit_id: int, external_id: str) -> Opportunity | None:
    """The unit's opportunity with this CRM id (callers check the person may see it)."""
    return (
        Opportunity.objects.dangerously_unscoped()
        .filter(unit_id=unit_id, external_id=external_id)
        .first()
    )


@dataclass
class UpsertResult:
    opportunity: Opportunity
    created: bool


@transaction.atomic
def opportunity_upsert(
    *,
    unit: BusinessUnit,
    external_id: str,
    data: dict[str, Any],
    actor: Any,
    lead: Lead | None = None,
    now: dt.datetime | None = None,
) -> UpsertResult:
    """Update the unit's opportunity with this CRM id, or open it from ``lead`` (an SQL of
    the same unit). The caller has checked the person may act on the unit and the lead."""
    external_id = (external_id or "").strip()
    if not external_id or len(external_id) > 100:
        raise ValidationError({"external_id": _("Give the CRM id (up to 100 characters).")})
    fields = {k: v for k, v in data.items() if k != "external_id"}
    found = (
        Opportunity.objects.dangerously_unscoped()
        .select_for_update()
        .filter(unit_id=unit.pk, external_id=external_id)
        .first()
    )
    if found is not None:
        opp = opp_services.opportunity_update(
            opportunity=found, actor=actor, data=fields, now=now, label="CRM"
        )
        return UpsertResult(opp, created=False)
    if lead is None:
        raise ValidationError(
            {
                "lead": _(
                    "No opportunity of this unit has CRM id “%(id)s”; to open one, name the "
                    "SQL lead it comes from."
                )
                % {"id": external_id}
            }
        )
    if lead.unit_id != unit.pk:
        raise ValidationError({"lead": _("The lead belongs to another business unit.")})
    opp = opp_services.opportunity_create(
        lead=lead, actor=actor, data={**fields, "external_id": external_id}, now=now
    )
    return UpsertResult(opp, created=True)


# --- Inbound updates ------------------------------------------------------------------------


@dataclass
class Received:
    """``fresh``: stored now (202); else a replay of ``inbound`` (200) or, with
    ``conflict``, the same event id with another body (409)."""

    inbound: CrmInbound
    fresh: bool
    conflict: bool = False


def crm_inbound_receive(
    *,
    unit: BusinessUnit,
    event_id: str,
    kind: str,
    payload: dict[str, Any],
    actor: User,
    token_id: int | None = None,
) -> Received:
    """Store an update as it arrived (or find the earlier one with this event id)."""
    digest = body_hash(payload)
    try:
        with transaction.atomic():
            inbound = CrmInbound.objects.create(
                unit=unit,
                event_id=event_id,
                kind=kind,
                payload=payload,
                body_hash=digest,
                token_id=token_id,
                result={"by": actor.pk},
            )
    except IntegrityError:
        earlier = CrmInbound.objects.dangerously_unscoped().get(unit=unit, event_id=event_id)
        return Received(earlier, fresh=False, conflict=earlier.body_hash != digest)
    from apps.core.tasks import enqueue_on_commit
    from apps.sales.crm_tasks import crm_inbound_process as task

    enqueue_on_commit(task, inbound.pk)
    return Received(inbound, fresh=True)


def _find_lead(row: CrmInbound) -> Lead:
    body = row.payload
    external_id = str(body.get("external_id") or "").strip()
    lead_id = body.get("lead")
    leads = Lead.objects.dangerously_unscoped().select_related("contact", "unit")
    if external_id:
        found = leads.filter(unit_id=row.unit_id, external_id=external_id).first()
        if found is None:
            raise ValidationError(
                _("No lead of this unit has CRM id “%(id)s”.") % {"id": external_id}
            )
        return found
    if lead_id is not None and str(lead_id).isdigit():
        found = leads.filter(pk=int(lead_id), unit_id=row.unit_id).first()
        if found is None:
            raise ValidationError(_("No lead %(id)s in this unit.") % {"id": lead_id})
        return found
    raise ValidationError(_("Name the lead: its CRM id (external_id) or our id (lead)."))


def _actor(row: CrmInbound) -> User | None:
    user_id = (row.result or {}).get("by")
    if not user_id:
        return None
    return User.objects.filter(pk=user_id, is_active=True).first()


def _may_act(actor: User | None, row: CrmInbound) -> bool:
    """The sender still holds ``sales.configure`` on the row's unit."""
    from apps.core.scoping import visible_unit_ids

    return actor is not None and row.unit_id in visible_unit_ids(actor, "sales.configure")


def _apply(row: CrmInbound, actor: User) -> dict[str, Any]:
    data = row.payload.get("data") or {}
    if not isinstance(data, dict):
        raise ValidationError(_("“data” must be an object."))
    if row.kind == "lead_status":
        lead = _find_lead(row)
        stage = str(data.get("stage") or "")
        if stage not in Stage.values:
            raise ValidationError(_("“%(stage)s” is not a stage.") % {"stage": stage})
        if lead.stage == stage:
            return {"lead": lead.pk, "stage": stage, "changed": False}
        lead = lead_services.lead_move(
            lead=lead, to_stage=stage, actor=actor, reason=str(data.get("reason") or "")
        )
        return {"lead": lead.pk, "stage": lead.stage, "changed": True}
    # opportunity
    external_id = str(row.payload.get("external_id") or "").strip()
    source: Lead | None = None
    if row.payload.get("lead") is not None:
        source = _find_lead(
            CrmInbound(unit_id=row.unit_id, payload={"lead": row.payload.get("lead")})
        )
    result = opportunity_upsert(
        unit=row.unit, external_id=external_id, data=data, actor=actor, lead=source
    )
    return {
        "opportunity": result.opportunity.pk,
        "stage": result.opportunity.stage,
        "created": result.created,
    }


def crm_inbound_process(inbound_id: int) -> str:
    """Apply one stored update, once: the row is locked, and only a pending row is taken.
    Returns the row's status afterwards ("" when it was not pending or is locked)."""
    with transaction.atomic():
        row = (
            CrmInbound.objects.dangerously_unscoped()
            .select_for_update(skip_locked=True)
            .select_related("unit")
            .filter(pk=inbound_id, status=CrmInbound.Status.PENDING)
            .first()
        )
        if row is None:
            return ""
        by = (row.result or {}).get("by")
        actor = _actor(row)
        result: dict[str, Any]
        if not _may_act(actor, row):
            status = CrmInbound.Status.REJECTED
            result = {
                "message": _("The sender may no longer change this unit's leads (sales.configure).")
            }
        else:
            assert actor is not None
            try:
                with transaction.atomic():
                    result = _apply(row, actor)
                status = CrmInbound.Status.DONE
            except ValidationError as exc:
                status = CrmInbound.Status.REJECTED
                result = {"message": messages_of(exc)}
        row.status = status
        row.result = {"by": by, **result}
        row.processed_at = timezone.now()
        row.save(update_fields=["status", "result", "processed_at"])
        return str(status)


def crm_inbound_sweep(*, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """Process rows still pending a minute after they arrived (a lost task, a restart)."""
    now = now or timezone.now()
    done = 0
    while done < limit:
        ids = list(
            CrmInbound.objects.dangerously_unscoped()
            .filter(status=CrmInbound.Status.PENDING, received_at__lte=now - SWEEP_AFTER)
            .order_by("received_at", "id")
            .values_list("id", flat=True)[:SWEEP_BATCH]
        )
        if not ids:
            break
        progressed = 0
        for inbound_id in ids:
            if crm_inbound_process(inbound_id):
                progressed += 1
        done += progressed
        if progressed == 0:  # all locked by another worker
            break
    return done


# --- Webhook endpoints ----------------------------------------------------------------------


def webhook_secret_new() -> str:
    import secrets

    return "whsec_" + secrets.token_urlsafe(32)


def webhook_events_clean(events: Any) -> list[str]:
    from apps.sales.services.webhooks import EVENTS

    if events in (None, ""):
        return []
    if isinstance(events, str):
        events = [events]
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise ValidationError(
            {
                "events": _("Unknown events: %(e)s. Known: %(k)s.")
                % {"e": ", ".join(map(str, unknown)), "k": ", ".join(EVENTS)}
            }
        )
    return sorted(set(events))


@transaction.atomic
def webhook_endpoint_create(
    *, unit: BusinessUnit, name: str, url: str, events: Any = None, actor: Any
) -> WebhookEndpoint:
    """A new endpoint with a fresh signing secret (shown to the person once)."""
    errors: dict[str, str] = {}
    name = (name or "").strip()
    url = (url or "").strip()
    if not name or len(name) > 100:
        errors["name"] = _("Give the webhook a name (up to 100 characters).")
    if not url.lower().startswith(("https://", "http://")) or len(url) > 500:
        errors["url"] = _("Use an http:// or https:// address (up to 500 characters).")
    try:
        clean_events = webhook_events_clean(events)
    except ValidationError as exc:
        errors.update({k: v[0] for k, v in exc.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    endpoint = WebhookEndpoint.objects.create(
        unit=unit, name=name, url=url, events=clean_events, secret=webhook_secret_new()
    )
    audit_record(
        actor=actor,
        action="webhook.create",
        obj=endpoint,
        unit=unit,
        after={"name": name, "url": url, "events": clean_events},
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_set_active(
    *, endpoint: WebhookEndpoint, active: bool, actor: Any
) -> WebhookEndpoint:
    endpoint = (
        WebhookEndpoint.objects.dangerously_unscoped().select_for_update().get(pk=endpoint.pk)
    )
    if endpoint.is_active != active:
        endpoint.is_active = active
        endpoint.save(update_fields=["is_active"])
        audit_record(
            actor=actor,
            action="webhook.change",
            obj=endpoint,
            unit=endpoint.unit_id,
            after={"is_active": active},
        )
    return endpoint


@transaction.atomic
def webhook_endpoint_update(
    *, endpoint: WebhookEndpoint, data: dict[str, Any], actor: Any
) -> WebhookEndpoint:
    """Name, URL, events and on/off; the secret and the unit stay."""
    endpoint = (
        WebhookEndpoint.objects.dangerously_unscoped().select_for_update().get(pk=endpoint.pk)
    )
    errors: dict[str, str] = {}
    before = {
        "name": endpoint.name,
        "url": endpoint.url,
        "events": endpoint.events,
        "is_active": endpoint.is_active,
    }
    if "name" in data:
        name = str(data["name"] or "").strip()
        if not name or len(name) > 100:
            errors["name"] = _("Give the webhook a name (up to 100 characters).")
        endpoint.name = name
    if "url" in data:
        url = str(data["url"] or "").strip()
        if not url.lower().startswith(("https://", "http://")) or len(url) > 500:
            errors["url"] = _("Use an http:// or https:// address (up to 500 characters).")
        endpoint.url = url
    if "events" in data:
        try:
            endpoint.events = webhook_events_clean(data["events"])
        except ValidationError as exc:
            errors.update({k: v[0] for k, v in exc.message_dict.items()})
    if "is_active" in data:
        endpoint.is_active = bool(data["is_active"])
    if errors:
        raise ValidationError(errors)
    endpoint.save()
    after = {
        "name": endpoint.name,
        "url": endpoint.url,
        "events": endpoint.events,
        "is_active": endpoint.is_active,
    }
    audit_record(
        actor=actor,
        action="webhook.change",
        obj=endpoint,
        unit=endpoint.unit_id,
        before=before,
        after=after,
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: Any) -> None:
    """Remove it with its delivery log (switching it off keeps the log)."""
    audit_record(
        actor=actor,
        action="webhook.delete",
        obj=endpoint,
        unit=endpoint.unit_id,
        before={"name": endpoint.name, "url": endpoint.url},
    )
    WebhookEndpoint.objects.dangerously_unscoped().filter(pk=endpoint.pk).delete()
