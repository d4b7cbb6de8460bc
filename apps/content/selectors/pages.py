"""Reads for landing pages: the list, one page, and per-page performance.

Performance over a period: *visits* are ``page_view`` activities of the page, *unique
visitors* the distinct people behind them (the contact when known, else the anonymous
visitor id), *submissions* the form submissions made on the page (spam and rejected ones
left out), and the *conversion rate* submissions ÷ unique visitors. Bots never become
activities, so they are not counted. Stats for a whole list page cost two queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Case, CharField, Count, Q, QuerySet, Value, When
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from apps.contacts.models import Activity, Campaign, Channel
from apps.content.models import Asset, Form, FormSubmission, LandingPage, SubmissionStatus
from apps.core.models import BusinessUnit, User

VIEW = "content.view"
EDIT = "content.edit"
PERIODS = (7, 30, 90)
DEFAULT_DAYS = 30
PAGE_SIZE = 50
# Submissions that are not real sign-ups.
NOT_COUNTED = (SubmissionStatus.SPAM, SubmissionStatus.REJECTED)


@dataclass(frozen=True)
class PageStats:
    visits: int = 0
    unique_visitors: int = 0
    submissions: int = 0

    @property
    def conversion_rate(self) -> float | None:
        """Percent, one decimal; None before anyone has visited."""
        if not self.unique_visitors:
            return None
        return round(100 * self.submissions / self.unique_visitors, 1)


def period_start(days: int) -> datetime:
    return timezone.now() - timedelta(days=days)


def person_key() -> Case:
    """Who did it: ``c<contact id>`` when known, else ``a<anonymous id>``; NULL when
    neither (COUNT DISTINCT skips it)."""
    return Case(
        When(
            contact_id__isnull=False,
            then=Concat(Value("c"), Cast("contact_id", CharField()), output_field=CharField()),
        ),
        When(
            ~Q(anonymous_id=""),
            then=Concat(Value("a"), "anonymous_id", output_field=CharField()),
        ),
        default=None,
        output_field=CharField(),
    )


def pages_of(
    *, user: User, unit_ids: set[int] | None = None, q: str = "", status: str = ""
) -> QuerySet[LandingPage]:
    qs = LandingPage.objects.visible_to(user, VIEW).select_related("unit")
    if unit_ids is not None:
        qs = qs.filter(unit_id__in=unit_ids)
    if q:
        qs = qs.filter(Q(title__icontains=q) | Q(slug__icontains=q))
    if status:
        qs = qs.filter(status=status)
    return qs


def page_get(*, user: User, pk: int, permission: str = VIEW) -> LandingPage | None:
    return (
        LandingPage.objects.visible_to(user, permission)
        .select_related("unit", "channel", "campaign")
        .filter(pk=pk)
        .first()
    )


def page_stats(*, user: User, page_ids: list[int], since: datetime) -> dict[int, PageStats]:
    """Stats of each page since ``since``: one query over activities, one over submissions."""
    if not page_ids:
        return {}
    views = (
        Activity.objects.visible_to(user, VIEW)
        .filter(
            object_type="landing_page",
            object_id__in=[str(pk) for pk in page_ids],
            type="page_view",
            occurred_at__gte=since,
        )
        .values("object_id")
        .annotate(visits=Count("id"), visitors=Count(person_key(), distinct=True))
        .order_by()
    )
    submissions = dict(
        FormSubmission.objects.visible_to(user, VIEW)
        .filter(landing_page_id__in=page_ids, received_at__gte=since)
        .exclude(status__in=NOT_COUNTED)
        .values("landing_page_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("landing_page_id", "n")
    )
    by_page: dict[int, tuple[int, int]] = {}
    for row in views:
        if row["object_id"].isdigit():
            by_page[int(row["object_id"])] = (row["visits"], row["visitors"])
    return {
        pk: PageStats(
            visits=by_page.get(pk, (0, 0))[0],
            unique_visitors=by_page.get(pk, (0, 0))[1],
            submissions=submissions.get(pk, 0),
        )
        for pk in page_ids
    }


def editable_units(*, user: User, narrowed: set[int] | None = None) -> list[BusinessUnit]:
    """Units where the user may build pages (and assets), narrowed by the unit switcher."""
    qs = BusinessUnit.objects.visible_to(user, EDIT).filter(is_active=True).order_by("name")
    if narrowed is not None:
        qs = qs.filter(pk__in=narrowed)
    return list(qs)


def unit_forms(*, user: User, unit_id: int) -> QuerySet[Form]:
    return (
        Form.objects.visible_to(user, VIEW)
        .filter(unit_id=unit_id, is_active=True)
        .order_by("name", "id")
    )


def unit_assets(*, user: User, unit_id: int) -> QuerySet[Asset]:
    return (
        Asset.objects.visible_to(user, VIEW)
        .filter(unit_id=unit_id, is_active=True)
        .order_by("title", "id")
    )


def unit_channels(*, user: User, unit_id: int) -> QuerySet[Channel]:
    return (
        Channel.objects.visible_to(user, VIEW)
        .filter(unit_id=unit_id, is_active=True)
        .order_by("name")
    )


def unit_campaigns(*, user: User, unit_id: int) -> QuerySet[Campaign]:
    return Campaign.objects.visible_to(user, VIEW).filter(unit_id=unit_id).order_by("-id")
