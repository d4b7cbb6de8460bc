"""What content registers into contacts' hooks (from ``ContentConfig.ready``).

- Merges: submissions and share-link views follow the person to the contact that survives
  a merge, and go back on undo (the ids moved are what undo needs).
- Data-subject rights: a person's submissions and share-link views are part of their
  export; on erasure the answers, addresses and browsers they left are wiped (the rows
  stay, without anything personal, so counts and conversion rates do not change).
"""

from __future__ import annotations

from typing import Any

from apps.contacts.hooks import register_merge_hooks, register_subject_hooks
from apps.content.models import FormSubmission, ShareView


def _merge(kept_id: int, dropped_id: int) -> dict[str, list[int]]:
    moved: dict[str, list[int]] = {}
    for name, model in (("submissions", FormSubmission), ("share_views", ShareView)):
        rows = model.objects.dangerously_unscoped().filter(contact_id=dropped_id)
        ids = sorted(rows.values_list("id", flat=True))
        rows.update(contact_id=kept_id)
        moved[name] = ids
    return moved


def _undo(kept_id: int, dropped_id: int, moved: Any) -> None:
    moved = moved or {}
    for name, model in (("submissions", FormSubmission), ("share_views", ShareView)):
        ids = moved.get(name) or []
        if ids:
            model.objects.dangerously_unscoped().filter(pk__in=ids, contact_id=kept_id).update(
                contact_id=dropped_id
            )


def _export(contact_id: int) -> dict[str, Any]:
    submissions = (
        FormSubmission.objects.dangerously_unscoped()
        .filter(contact_id=contact_id)
        .select_related("form")
        .order_by("received_at")
    )
    views = (
        ShareView.objects.dangerously_unscoped()
        .filter(contact_id=contact_id)
        .select_related("link")
        .order_by("opened_at")
    )
    return {
        "form_submissions": [
            {
                "form": s.form.name,
                "received_at": s.received_at.isoformat(),
                "answers": s.data,
                "consent": s.consent,
                "consent_version": s.consent_version,
                "page_url": s.page_url,
                "ip": s.ip,
            }
            for s in submissions
        ],
        "share_link_views": [
            {
                "link": v.link.token,
                "opened_at": v.opened_at.isoformat(),
                "seconds": v.seconds,
                "ip": v.ip,
                "user_agent": v.user_agent,
            }
            for v in views
        ],
    }


def _erase(contact_id: int) -> None:
    FormSubmission.objects.dangerously_unscoped().filter(contact_id=contact_id).update(
        data={}, ip=None, user_agent="", anonymous_id="", page_url="", referrer="", utm={}
    )
    ShareView.objects.dangerously_unscoped().filter(contact_id=contact_id).update(
        ip=None, user_agent="", anonymous_id="", referrer=""
    )


register_merge_hooks("content", _merge, _undo)
register_subject_hooks("content", _export, _erase)
