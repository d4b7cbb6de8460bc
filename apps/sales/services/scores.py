"""From scores to leads: the scoring engine's band hook (registered in ``apps.py``) queues
the contacts whose temperature changed; here a hot contact without an open lead gets one
(source "score threshold", routed to an SDR), and an open lead follows its contact's
temperature and score."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _

from apps.contacts.models import Contact
from apps.core.models import BusinessUnit
from apps.core.tasks import enqueue_on_commit
from apps.sales.models import Lead, LeadSource

if TYPE_CHECKING:
    from apps.nurture.models import ScoringModel

OPEN_ON = frozenset({"hot"})


def score_band_hook(model: ScoringModel, transitions: list[tuple[int, str | None, str]]) -> None:
    """Called by the scoring engine inside its batch transaction: queue the work."""
    if not transitions:
        return
    from apps.sales.tasks import leads_from_scores

    changes = [[contact_id, old, new] for contact_id, old, new in transitions]
    enqueue_on_commit(leads_from_scores, model.unit_id, model.pk, changes)


def leads_from_scores(*, unit_id: int, model_id: int, changes: list[list[Any]]) -> int:
    from apps.nurture.models import ContactScore
    from apps.sales.services.leads import lead_open

    unit = BusinessUnit.objects.filter(pk=unit_id, is_active=True).first()
    if unit is None:
        return 0
    ids = [int(c[0]) for c in changes]
    new_band = {int(c[0]): str(c[2]) for c in changes}
    totals = dict(
        ContactScore.objects.dangerously_unscoped()
        .filter(model_id=model_id, contact_id__in=ids)
        .values_list("contact_id", "total")
    )
    leads = {
        lead.contact_id: lead
        for lead in Lead.objects.dangerously_unscoped().filter(
            unit_id=unit_id, contact_id__in=ids, is_open=True
        )
    }
    opened = 0
    for contact_id in ids:
        band = new_band[contact_id]
        lead = leads.get(contact_id)
        if lead is not None:
            if lead.temperature != "high_value":
                lead.temperature = band
            lead.score = totals.get(contact_id, lead.score)
            lead.save(update_fields=["temperature", "score", "updated_at"])
            continue
        if band not in OPEN_ON:
            continue
        contact = (
            Contact.objects.dangerously_unscoped().filter(pk=contact_id, status="active").first()
        )
        if contact is None:
            continue
        result = lead_open(
            contact=contact,
            unit=unit,
            source=LeadSource.SCORING,
            temperature=band,
            score=totals.get(contact_id),
            reason=_("Score reached hot"),
        )
        opened += int(result.outcome in ("opened", "flagged"))
    return opened
