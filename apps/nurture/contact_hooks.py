"""What nurture registers into contacts' hooks (from ``NurtureConfig.ready``).

The 360 page gets a "Scores" panel: every model's score for the person (one query, two
when there are scores: the latest changes). The explanation of each is loaded on demand
(htmx), so the page's query count does not grow with the number of models or rules.
"""

from __future__ import annotations

from typing import Any

from apps.contacts.hooks import register_contact_panel
from apps.core.scoping import visible_unit_ids
from apps.nurture import selectors


def _scores_panel(request: Any, contact: Any) -> tuple[str, dict[str, Any]] | None:
    user = request.user
    if not (user.is_superuser or visible_unit_ids(user, selectors.VIEW)):
        return None
    rows = selectors.contact_scores(user=user, contact=contact)
    return "nurture/partials/_contact_scores.html", {"rows": rows, "contact": contact}


register_contact_panel("nurture.scores", _scores_panel)
