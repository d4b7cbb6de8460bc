"""The one table of legal stage moves, and the function every stage change goes through.

``lead_transition`` refuses an illegal move with a message naming the legal ones, writes
the history row (from, to, who, when, why), restarts the SLA clocks for the new stage,
and tells CRM webhooks. Callers hold the lead row locked (``select_for_update``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.sales.models import (
    CLOSED_STAGES,
    CreditStatus,
    HistoryKind,
    Lead,
    LeadHistory,
    SlaPolicy,
    Stage,
)

S = Stage
# from -> the stages a lead may move to. TQL is legal only where the unit enables it, and
# then it is the only way from MQL towards sales (seed 004: MQL → TQL → SQL).
TRANSITIONS: dict[str, frozenset[str]] = {
    S.MAL: frozenset({S.MIL, S.DISQUALIFIED, S.RECYCLED}),
    S.MIL: frozenset({S.MQL, S.DISQUALIFIED, S.RECYCLED}),
    S.MQL: frozenset({S.TQL, S.SAL, S.MIL, S.DISQUALIFIED, S.RECYCLED}),
    S.TQL: frozenset({S.SAL, S.MIL, S.DISQUALIFIED, S.RECYCLED}),
    S.SAL: frozenset({S.SQL, S.MIL, S.DISQUALIFIED, S.RECYCLED}),
    S.SQL: frozenset({S.OPPORTUNITY, S.MIL, S.DISQUALIFIED, S.RECYCLED}),
    S.OPPORTUNITY: frozenset({S.CUSTOMER, S.RECYCLED, S.DISQUALIFIED}),
    S.RECYCLED: frozenset({S.MIL, S.MQL, S.DISQUALIFIED}),
    S.CUSTOMER: frozenset(),
    S.DISQUALIFIED: frozenset(),
}
# Moves that need a reason: leaving the funnel, or going back to the SDR (a rejection or
# a return by sales).
NEEDS_REASON = frozenset({S.DISQUALIFIED, S.RECYCLED})
BACKWARD_TO_SDR = frozenset({S.MQL, S.TQL, S.SAL, S.SQL})
REASON_MAX = 300


def policy_for(unit_id: int) -> SlaPolicy:
    """The unit's SLA policy (made with seed 003's defaults the first time it is asked)."""
    policy, _created = SlaPolicy.objects.get_or_create(unit_id=unit_id)
    return policy


def allowed_moves(lead: Lead, policy: SlaPolicy | None = None) -> list[str]:
    """The stages ``lead`` may move to now, in funnel order."""
    policy = policy or policy_for(lead.unit_id)
    moves = set(TRANSITIONS[lead.stage])
    if lead.stage == S.MQL:
        # With TQL on, MQL goes through it; without, TQL does not exist.
        moves.discard(S.SAL if policy.use_tql else S.TQL)
    return [s for s in Stage.values if s in moves]


def needs_reason(from_stage: str, to_stage: str) -> bool:
    return to_stage in NEEDS_REASON or (to_stage == S.MIL and from_stage in BACKWARD_TO_SDR)


def check_move(lead: Lead, to_stage: str, reason: str, policy: SlaPolicy | None = None) -> None:
    """Raise ``ValidationError`` (field ``stage`` or ``reason``) unless the move is legal."""
    if to_stage not in Stage.values:
        raise ValidationError({"stage": _("“%(stage)s” is not a stage.") % {"stage": to_stage}})
    legal = allowed_moves(lead, policy)
    if to_stage not in legal:
        names = ", ".join(str(Stage(s).label) for s in legal) or _("none: the lead is closed")
        raise ValidationError(
            {
                "stage": _(
                    "A lead cannot move from %(from)s to %(to)s. From %(from)s it may go to: "
                    "%(legal)s."
                )
                % {"from": Stage(lead.stage).label, "to": Stage(to_stage).label, "legal": names}
            }
        )
    if needs_reason(lead.stage, to_stage) and not reason.strip():
        raise ValidationError({"reason": _("Say why: this move needs a reason.")})
    if len(reason) > REASON_MAX:
        raise ValidationError(
            {"reason": _("Keep the reason under %(n)d characters.") % {"n": REASON_MAX}}
        )


def actor_label(actor: Any, fallback: str = "system") -> str:
    if actor is None:
        return fallback
    return str(actor.get_full_name() or actor.get_username())


def history_add(
    lead: Lead,
    kind: str,
    from_value: Any,
    to_value: Any,
    *,
    actor: Any = None,
    label: str = "",
    reason: str = "",
    at: Any = None,
) -> LeadHistory:
    return LeadHistory.objects.create(
        lead=lead,
        unit_id=lead.unit_id,
        kind=kind,
        from_value="" if from_value is None else str(from_value),
        to_value="" if to_value is None else str(to_value),
        actor=actor,
        actor_label=label or actor_label(actor),
        reason=reason[:500],
        at=at or timezone.now(),
    )


def lead_transition(
    *,
    lead: Lead,
    to_stage: str,
    actor: Any = None,
    reason: str = "",
    label: str = "",
    policy: SlaPolicy | None = None,
    now: Any = None,
) -> Lead:
    """Move ``lead`` to ``to_stage`` (refused with a message when illegal) and save it."""
    from apps.sales.services import sla, webhooks

    policy = policy or policy_for(lead.unit_id)
    reason = reason.strip()
    check_move(lead, to_stage, reason, policy)
    now = now or timezone.now()
    from_stage = lead.stage
    lead.stage = to_stage
    lead.is_open = to_stage not in CLOSED_STAGES
    lead.stage_changed_at = now
    if reason:
        lead.reason = reason[:REASON_MAX]
    if not lead.is_open:
        lead.closed_at = now
    if to_stage == S.SAL:
        lead.accepted_at = now
    if to_stage == S.SQL:
        lead.sql_at = now
        if lead.sdr_id and lead.credit_status in ("", CreditStatus.REVOKED):
            start = lead.handed_at or now
            lead.credit_sdr_id = lead.sdr_id
            lead.credit_status = CreditStatus.PENDING
            lead.credit_due_at = start + dt.timedelta(days=policy.sdr_credit_days)
    if to_stage == S.MIL and from_stage in BACKWARD_TO_SDR:
        # Rejected or returned by sales: back in the SDR's queue, no sales owner.
        _credit_on_return(lead, actor=actor, now=now)
        lead.owner = None
        lead.handed_at = None
        lead.accepted_at = None
    if to_stage == S.RECYCLED:
        _credit_on_return(lead, actor=actor, now=now)
        lead.owner = None
        lead.sdr = None
    sla.clock_restart(lead, policy=policy, now=now)
    lead.save()
    history_add(
        lead,
        HistoryKind.STAGE,
        from_stage,
        to_stage,
        actor=actor,
        label=label,
        reason=reason,
        at=now,
    )
    webhooks.emit_lead_event(
        lead, "lead.stage_changed", {"from": from_stage, "to": to_stage, "reason": reason}
    )
    return lead


def _credit_on_return(lead: Lead, *, actor: Any, now: Any) -> None:
    """Sales sends the lead back: within the credit window the SDR loses the SQL credit;
    after it, the credit stands (seed 003)."""
    if lead.credit_status != CreditStatus.PENDING:
        return
    if lead.credit_due_at is not None and now < lead.credit_due_at:
        lead.credit_status = CreditStatus.REVOKED
        reason = _("Returned by sales within the credit window")
    else:
        lead.credit_status = CreditStatus.CREDITED
        reason = _("Returned after the credit window: the credit stands")
    history_add(
        lead,
        HistoryKind.CREDIT,
        CreditStatus.PENDING,
        lead.credit_status,
        actor=actor,
        reason=reason,
        at=now,
    )
