"""Scoring in the background: a model's full recompute, the incremental sweep of new
activities, and the nightly decay. Each loads by id and calls a service.

Beat (settings.CELERY_BEAT_SCHEDULE) runs ``nurture.scores_activity_sweep`` every minute
and ``nurture.scores_decay`` nightly.
"""

from __future__ import annotations

from celery import shared_task

from apps.nurture.models import RecomputeStatus, ScoringModel
from apps.nurture.services import scoring


@shared_task(name="nurture.recompute_scoring_model", ignore_result=True)
def recompute_scoring_model(model_id: int, version: int) -> dict[str, int]:
    model = ScoringModel.objects.dangerously_unscoped().filter(pk=model_id).first()
    if model is None or model.version != version:  # deleted or edited since it was queued
        return {"changed": 0, "superseded": 1}
    try:
        result = scoring.scoring_model_recompute(model=model, version=version)
    except Exception:
        # Shown on the model's page; the batches done so far are consistent on their own.
        ScoringModel.objects.dangerously_unscoped().filter(pk=model_id, version=version).update(
            recompute_status=RecomputeStatus.FAILED
        )
        raise
    return {"changed": result.changed, "superseded": int(result.superseded)}


@shared_task(name="nurture.scores_activity_sweep", ignore_result=True)
def scores_activity_sweep() -> dict[str, int]:
    result = scoring.scores_activity_sweep()
    return {"changed": result.changed, "batches": result.batches}


@shared_task(name="nurture.scores_for_contacts", ignore_result=True)
def scores_for_contacts(contact_ids: list[int]) -> dict[str, int]:
    """Re-score just these contacts (after an import batch, a merge, an attribute edit)."""
    result = scoring.scores_recompute_for(contact_ids=contact_ids)
    return {"changed": result.changed, "batches": result.batches}


@shared_task(name="nurture.scores_decay", ignore_result=True)
def scores_decay() -> dict[str, int]:
    result = scoring.scores_decay_all()
    return {"changed": result.changed, "batches": result.batches}
