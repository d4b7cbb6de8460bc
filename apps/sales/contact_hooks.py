"""What sales registers into contacts' hooks (from ``SalesConfig.ready``).

- The contact 360 page gets a "Leads" panel: the person's leads in the units the user may
  see (one query), with stage, owner and the running SLA clock.
- Merges: the dropped contact's leads (and the opportunities naming them) follow the
  person to the kept contact. Where both have an open lead in the same unit, the kept
  contact's lead stays and the dropped one is closed as disqualified, reason
  ``merged duplicate`` (a history row, as for any stage change), so the one-open-lead-per
  unit constraint holds. Undo moves the leads back and reopens what the merge closed.
- Data-subject rights: a person's leads, their history and follow-ups are part of their
  export; erasure blanks the free text people wrote about them (need, reasons, notes).
  The lead rows stay, so funnel counts do not change.
- Retention: a contact with an open lead keeps their name, phone and email (sales is
  working them).
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from apps.contacts.hooks import (
    register_contact_panel,
    register_merge_hooks,
    register_retention_guard,
    register_subject_hooks,
)
from apps.core.roles import Surface
from apps.core.scoping import visible_unit_ids
from apps.core.selectors import user_surfaces
from apps.sales.models import (
    FollowUp,
    HistoryKind,
    Lead,
    LeadHistory,
    Opportunity,
    OpportunityContact,
    Stage,
)

MERGE_REASON = "merged duplicate"
MERGE_LABEL = "merge"
PANEL_LIMIT = 20
VIEW = "sales.view"


# --- The 360 panel --------------------------------------------------------------------------


def _leads_panel(request: Any, contact: Any) -> tuple[str, dict[str, Any]] | None:
    user = request.user
    if not (user.is_superuser or visible_unit_ids(user, VIEW)):
        return None
    rows = list(
        Lead.objects.visible_to(user, VIEW)
        .filter(contact_id=contact.pk)
        .select_related("unit", "owner", "sdr")
        .order_by("-is_open", "unit__name", "-id")[:PANEL_LIMIT]
    )
    return "sales/partials/_contact_leads_panel.html", {
        "rows": rows,
        "contact": contact,
        # The lead page is a console page; the contact page is too.
        "link": True,
        # People who work leads may open one here (the page lives in the lead queue).
        "may_open": bool(user.is_superuser or visible_unit_ids(user, "sales.work"))
        and Surface.SDR in user_surfaces(user=user),
    }


# --- Merge ----------------------------------------------------------------------------------

_RESTORE = (
    "stage",
    "is_open",
    "reason",
    "closed_at",
    "stage_changed_at",
    "sla_clock",
    "sla_due_at",
    "sla_warn_at",
    "owner_id",
    "sdr_id",
)


def _state(lead: Lead) -> dict[str, Any]:
    out: dict[str, Any] = {"id": lead.pk}
    for name in _RESTORE:
        value = getattr(lead, name)
        out[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


def _merge(kept_id: int, dropped_id: int) -> dict[str, Any]:
    from apps.sales.services.stages import lead_transition

    leads = list(
        Lead.objects.dangerously_unscoped()
        .select_for_update()
        .filter(contact_id__in=[kept_id, dropped_id])
        .order_by("id")
    )
    kept_open = {
        lead.unit_id: lead for lead in leads if lead.contact_id == kept_id and lead.is_open
    }
    dropped = [lead for lead in leads if lead.contact_id == dropped_id]
    closed = []
    now = timezone.now()
    for lead in dropped:
        if lead.is_open and lead.unit_id in kept_open:
            before = _state(lead)
            lead_transition(
                lead=lead,
                to_stage=Stage.DISQUALIFIED,
                reason=MERGE_REASON,
                label=MERGE_LABEL,
                now=now,
            )
            closed.append({**before, "kept_lead": kept_open[lead.unit_id].pk})
    moved = [lead.pk for lead in dropped]
    if moved:
        Lead.objects.dangerously_unscoped().filter(pk__in=moved).update(contact_id=kept_id)

    opportunities = Opportunity.objects.dangerously_unscoped().filter(contact_id=dropped_id)
    opportunity_ids = sorted(opportunities.values_list("id", flat=True))
    opportunities.update(contact_id=kept_id)
    people = OpportunityContact.objects.filter(contact_id=dropped_id)
    both = set(
        OpportunityContact.objects.filter(contact_id=kept_id).values_list(
            "opportunity_id", flat=True
        )
    )
    removed = [
        {"opportunity_id": p.opportunity_id, "reason": p.reason, "added_at": p.added_at.isoformat()}
        for p in people.filter(opportunity_id__in=both)
    ]
    people.filter(opportunity_id__in=both).delete()
    moved_people = sorted(people.values_list("id", flat=True))
    people.update(contact_id=kept_id)
    return {
        "leads": moved,
        "closed": closed,
        "opportunities": opportunity_ids,
        "opportunity_people": moved_people,
        "opportunity_people_removed": removed,
    }


def _undo(kept_id: int, dropped_id: int, data: Any) -> None:
    from apps.sales.services.stages import history_add

    data = data or {}
    lead_ids = data.get("leads") or []
    if lead_ids:
        Lead.objects.dangerously_unscoped().filter(pk__in=lead_ids, contact_id=kept_id).update(
            contact_id=dropped_id
        )
    closed = {row["id"]: row for row in data.get("closed") or []}
    if closed:
        now = timezone.now()
        open_units = set(
            Lead.objects.dangerously_unscoped()
            .filter(contact_id=dropped_id, is_open=True)
            .values_list("unit_id", flat=True)
        )
        for lead in (
            Lead.objects.dangerously_unscoped()
            .select_for_update()
            .filter(pk__in=list(closed), contact_id=dropped_id, stage=Stage.DISQUALIFIED)
        ):
            row = closed[lead.pk]
            if lead.unit_id in open_units or lead.reason != MERGE_REASON:
                continue  # reopened or changed since: leave it
            field_map = {f.attname: f for f in Lead._meta.concrete_fields}
            for name in _RESTORE:
                setattr(lead, name, field_map[name].to_python(row[name]))
            lead.save(update_fields=[field_map[n].name for n in _RESTORE])
            history_add(
                lead,
                HistoryKind.STAGE,
                Stage.DISQUALIFIED,
                lead.stage,
                label=MERGE_LABEL,
                reason="merge undone",
                at=now,
            )
            open_units.add(lead.unit_id)
    if data.get("opportunities"):
        Opportunity.objects.dangerously_unscoped().filter(
            pk__in=data["opportunities"], contact_id=kept_id
        ).update(contact_id=dropped_id)
    if data.get("opportunity_people"):
        OpportunityContact.objects.filter(
            pk__in=data["opportunity_people"], contact_id=kept_id
        ).update(contact_id=dropped_id)
    removed = data.get("opportunity_people_removed") or []
    if removed:
        OpportunityContact.objects.bulk_create(
            [
                OpportunityContact(
                    opportunity_id=row["opportunity_id"],
                    contact_id=dropped_id,
                    reason=row["reason"],
                    added_at=row["added_at"],
                )
                for row in removed
            ],
            ignore_conflicts=True,
        )


# --- Data-subject rights --------------------------------------------------------------------


def _export(contact_id: int) -> dict[str, Any]:
    leads = list(
        Lead.objects.dangerously_unscoped()
        .filter(contact_id=contact_id)
        .select_related("unit")
        .order_by("id")
    )
    ids = [lead.pk for lead in leads]
    history: dict[int, list[dict[str, Any]]] = {}
    for h in (
        LeadHistory.objects.dangerously_unscoped().filter(lead_id__in=ids).order_by("at", "id")
    ):
        history.setdefault(h.lead_id, []).append(
            {
                "at": h.at.isoformat(),
                "what": h.kind,
                "from": h.from_value,
                "to": h.to_value,
                "by": h.actor_label,
                "why": h.reason,
            }
        )
    follow_ups: dict[int, list[dict[str, Any]]] = {}
    for f in (
        FollowUp.objects.dangerously_unscoped()
        .filter(lead_id__in=ids)
        .order_by("occurred_at", "id")
    ):
        follow_ups.setdefault(f.lead_id, []).append(
            {
                "at": f.occurred_at.isoformat(),
                "kind": f.kind,
                "note": f.note,
                "next_step": f.next_step,
            }
        )
    return {
        "leads": [
            {
                "unit": lead.unit.name,
                "stage": lead.stage,
                "temperature": lead.temperature,
                "source": lead.source,
                "budget": str(lead.budget) if lead.budget is not None else None,
                "authority": lead.authority,
                "need": lead.need,
                "timeline": lead.timeline,
                "created_at": lead.created_at.isoformat(),
                "closed_at": lead.closed_at.isoformat() if lead.closed_at else None,
                "history": history.get(lead.pk, []),
                "follow_ups": follow_ups.get(lead.pk, []),
            }
            for lead in leads
        ]
    }


def _erase(contact_id: int) -> None:
    leads = Lead.objects.dangerously_unscoped().filter(contact_id=contact_id)
    leads.update(need="", reason="", review_reason="")
    LeadHistory.objects.dangerously_unscoped().filter(lead__contact_id=contact_id).update(reason="")
    FollowUp.objects.dangerously_unscoped().filter(lead__contact_id=contact_id).update(
        note="", next_step=""
    )


# --- Retention ------------------------------------------------------------------------------


def _open_lead_guard(contact_ids: list[int]) -> set[int]:
    return set(
        Lead.objects.dangerously_unscoped()
        .filter(contact_id__in=contact_ids, is_open=True)
        .values_list("contact_id", flat=True)
    )


register_contact_panel("sales.leads", _leads_panel)
register_merge_hooks("sales", _merge, _undo)
register_subject_hooks("sales", _export, _erase)
register_retention_guard("sales.open_leads", _open_lead_guard)
