"""Rule tags in the background: the periodic run, one tag, and a re-check of some contacts.

Beat runs ``contacts.apply_tag_rules`` (see settings.CELERY_BEAT_SCHEDULE). Code that
changes contacts in bulk (imports, identity resolution) queues
``apply_tag_rules_for_contacts`` with ``enqueue_on_commit`` and the changed ids.
"""

from __future__ import annotations

from celery import shared_task

from apps.contacts.models import Tag, TagKind
from apps.contacts.services import tag_rules

# Contact ids per queued re-check: the task runs one statement per rule tag per chunk.
CHUNK = tag_rules.BATCH_SIZE


@shared_task(name="contacts.apply_tag_rules", ignore_result=True)
def apply_tag_rules() -> dict[str, int]:
    """Every rule tag, against every contact its unit knows (set-based, per tag)."""
    result = tag_rules.tag_rules_apply_all()
    return {"added": result.added, "removed": result.removed}


@shared_task(name="contacts.apply_tag_rule", ignore_result=True)
def apply_tag_rule(tag_id: int) -> dict[str, int]:
    tag = Tag.objects.dangerously_unscoped().filter(pk=tag_id, kind=TagKind.RULE).first()
    if tag is None or tag.rule is None:  # deleted or changed since it was queued
        return {"added": 0, "removed": 0}
    try:
        result = tag_rules.tag_rule_apply(tag=tag)
    except tag_rules.RuleError:
        return {"added": 0, "removed": 0}
    return {"added": result.added, "removed": result.removed}


@shared_task(name="contacts.apply_tag_rules_for", ignore_result=True)
def apply_tag_rules_for_contacts(contact_ids: list[int]) -> dict[str, int]:
    """Re-check the rule tags of these contacts only (after an import batch, a merge…)."""
    result = tag_rules.tag_rules_apply_for(contact_ids=contact_ids)
    return {"added": result.added, "removed": result.removed}
