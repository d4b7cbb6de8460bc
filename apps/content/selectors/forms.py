"""Reads for the form pages and API: forms, their submissions, and per-form performance.

Every read starts from ``Model.objects.visible_to(user, permission)``; a form of another
unit is simply not found. Performance over a period costs two aggregate queries for a
whole page of forms, whatever the traffic:

- views and unique visitors: ``page_view`` activities of object type "form" (recorded by
  the public page, bots excluded by the collector), counted and distinct by anonymous id,
  served by the ``activity_object`` index (object_type, object_id, occurred_at);
- submissions: the form's submissions received in the period, spam and rejected ones not
  counted;
- conversion: submissions ÷ unique visitors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet

from apps.contacts.models import Activity, Campaign, Channel
from apps.content.models import Asset, Form, FormSubmission, SubmissionStatus
from apps.core.models import BusinessUnit, User
from apps.core.scoping import visible_unit_ids

READ = "content.view"
EDIT = "content.edit"
COUNTED = (SubmissionStatus.PENDING, SubmissionStatus.PROCESSED)
# A form's submissions newest first, keyset-paged on the (form, -received_at) index.
SUBMISSION_ORDER = ("-received_at", "-id")


def form_units(
    *, user: User, permission: str = READ, narrowed: set[int] | None = None
) -> list[BusinessUnit]:
    """Units whose forms ``user`` may see (narrowed by the unit switcher when given). A
    group with units of its own has its forms in those units."""
    qs = (
        BusinessUnit.objects.visible_to(user, permission)
        .filter(is_active=True)
        .filter(Q(parent__isnull=False) | Q(units__isnull=True))
        .distinct()
        .order_by("parent_id", "code", "id")
    )
    units = list(qs)
    if narrowed is not None:
        units = [u for u in units if u.pk in narrowed]
    return units


def can_edit(*, user: User, unit_id: int) -> bool:
    return bool(user.is_superuser) or unit_id in visible_unit_ids(user, EDIT)


def forms_of(*, user: User, unit_id: int, archived: bool = False) -> QuerySet[Form]:
    return Form.objects.visible_to(user, READ).filter(unit_id=unit_id, is_active=not archived)


def form_get(*, user: User, pk: int, permission: str = READ) -> Form | None:
    return (
        Form.objects.visible_to(user, permission)
        .select_related("unit", "asset", "channel", "campaign")
        .filter(pk=pk)
        .first()
    )


@dataclass(frozen=True)
class Performance:
    views: int = 0
    visitors: int = 0
    submissions: int = 0

    @property
    def conversion(self) -> float | None:
        """Submissions per unique visitor, as a percentage; None without visitors."""
        if not self.visitors:
            return None
        return round(100 * self.submissions / self.visitors, 1)


def forms_performance(
    *, user: User, form_ids: list[int], since: datetime, until: datetime
) -> dict[int, Performance]:
    """Views, unique visitors and submissions per form in [since, until): two queries."""
    if not form_ids:
        return {}
    views = (
        Activity.objects.visible_to(user, READ)
        .filter(
            type="page_view",
            object_type="form",
            object_id__in=[str(pk) for pk in form_ids],
            occurred_at__gte=since,
            occurred_at__lt=until,
        )
        .values("object_id")
        .annotate(
            views=Count("id"),
            visitors=Count("anonymous_id", distinct=True, filter=~Q(anonymous_id="")),
        )
        .order_by()
    )
    submissions = dict(
        FormSubmission.objects.visible_to(user, READ)
        .filter(
            form_id__in=form_ids,
            received_at__gte=since,
            received_at__lt=until,
            status__in=COUNTED,
        )
        .values("form_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("form_id", "n")
    )
    seen: dict[int, dict[str, Any]] = {}
    for row in views:
        try:
            seen[int(row["object_id"])] = row
        except ValueError:
            continue
    return {
        pk: Performance(
            views=seen.get(pk, {}).get("views", 0),
            visitors=seen.get(pk, {}).get("visitors", 0),
            submissions=submissions.get(pk, 0),
        )
        for pk in form_ids
    }


def form_submissions(
    *,
    user: User,
    form_id: int,
    status: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[FormSubmission]:
    qs = (
        FormSubmission.objects.visible_to(user, READ)
        .filter(form_id=form_id)
        .select_related("contact")
    )
    if status:
        qs = qs.filter(status=status)
    if since is not None:
        qs = qs.filter(received_at__gte=since)
    if until is not None:
        qs = qs.filter(received_at__lt=until)
    return qs


# --- Choices for the editor --------------------------------------------------------------------


def unit_assets(*, user: User, unit_id: int) -> QuerySet[Asset]:
    return (
        Asset.objects.visible_to(user, READ).filter(unit_id=unit_id, is_active=True).order_by("-id")
    )


def unit_channels(*, user: User, unit_id: int) -> QuerySet[Channel]:
    return (
        Channel.objects.visible_to(user, READ)
        .filter(unit_id=unit_id, is_active=True)
        .order_by("name", "id")
    )


def unit_campaigns(*, user: User, unit_id: int) -> QuerySet[Campaign]:
    return Campaign.objects.visible_to(user, READ).filter(unit_id=unit_id).order_by("-id")
