"""Reads for the content library: the filtered list, one asset, and per-asset performance.

Performance over a period: *downloads* (files delivered) and *views* (articles, videos
and pages by URL opened) are activities on the asset; *people* the distinct people behind
them (the contact when known, else the anonymous visitor id); *known contacts* the
distinct contacts among them. Stats for a whole list page cost one query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Q, QuerySet

from apps.contacts.models import Activity, Contact
from apps.content.models import Asset, Form
from apps.content.selectors.pages import VIEW, person_key
from apps.core.models import User

TOPIC_OPTIONS_MAX = 200


@dataclass(frozen=True)
class AssetFilters:
    q: str = ""
    kind: str = ""
    topic: str = ""
    buying_stage: str = ""
    persona: str = ""
    gated: bool | None = None
    archived: bool = False


@dataclass(frozen=True)
class AssetStats:
    downloads: int = 0
    views: int = 0
    people: int = 0
    known_contacts: int = 0


def assets_of(
    *, user: User, filters: AssetFilters = AssetFilters(), unit_ids: set[int] | None = None
) -> QuerySet[Asset]:
    qs = Asset.objects.visible_to(user, VIEW).select_related("unit", "gate_form")
    if unit_ids is not None:
        qs = qs.filter(unit_id__in=unit_ids)
    qs = qs.filter(is_active=not filters.archived)
    if filters.q:
        qs = qs.filter(Q(title__icontains=filters.q) | Q(summary__icontains=filters.q))
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.topic:
        qs = qs.filter(topic=filters.topic)
    if filters.buying_stage:
        qs = qs.filter(buying_stage=filters.buying_stage)
    if filters.persona:
        qs = qs.filter(personas__contains=[filters.persona])
    if filters.gated is not None:
        qs = qs.filter(is_gated=filters.gated)
    return qs


def asset_get(*, user: User, pk: int, permission: str = VIEW) -> Asset | None:
    return (
        Asset.objects.visible_to(user, permission)
        .select_related("unit", "gate_form")
        .filter(pk=pk)
        .first()
    )


def topic_options(*, user: User, unit_ids: set[int] | None = None) -> list[str]:
    qs = Asset.objects.visible_to(user, VIEW).exclude(topic="")
    if unit_ids is not None:
        qs = qs.filter(unit_id__in=unit_ids)
    return list(qs.order_by("topic").values_list("topic", flat=True).distinct()[:TOPIC_OPTIONS_MAX])


def gate_forms(*, user: User, unit_ids: set[int] | list[int]) -> QuerySet[Form]:
    return (
        Form.objects.visible_to(user, VIEW)
        .filter(unit_id__in=unit_ids, is_active=True)
        .select_related("unit")
        .order_by("name", "id")
    )


def _activities(*, user: User, asset_ids: list[int], since: datetime) -> QuerySet[Activity]:
    return Activity.objects.visible_to(user, VIEW).filter(
        object_type="asset",
        object_id__in=[str(pk) for pk in asset_ids],
        type__in=("download", "content_view"),
        occurred_at__gte=since,
    )


def asset_stats(*, user: User, asset_ids: list[int], since: datetime) -> dict[int, AssetStats]:
    if not asset_ids:
        return {}
    rows = (
        _activities(user=user, asset_ids=asset_ids, since=since)
        .values("object_id")
        .annotate(
            downloads=Count("id", filter=Q(type="download")),
            views=Count("id", filter=Q(type="content_view")),
            people=Count(person_key(), distinct=True),
            known=Count("contact_id", distinct=True),
        )
        .order_by()
    )
    found = {
        int(r["object_id"]): AssetStats(r["downloads"], r["views"], r["people"], r["known"])
        for r in rows
        if r["object_id"].isdigit()
    }
    return {pk: found.get(pk, AssetStats()) for pk in asset_ids}


@dataclass(frozen=True)
class RecentContact:
    contact: Contact
    last_at: datetime
    times: int


def asset_recent_contacts(
    *, user: User, asset: Asset, since: datetime, limit: int = 10
) -> list[RecentContact]:
    """The known contacts who took the asset most recently (that the user may see)."""
    latest = list(
        _activities(user=user, asset_ids=[asset.pk], since=since)
        .filter(contact_id__isnull=False)
        .values("contact_id")
        .annotate(last_at=Max("occurred_at"), times=Count("id"))
        .order_by("-last_at")[:limit]
    )
    contacts = Contact.objects.visible_to(user, "contacts.view").in_bulk(
        [row["contact_id"] for row in latest]
    )
    return [
        RecentContact(contacts[row["contact_id"]], row["last_at"], row["times"])
        for row in latest
        if row["contact_id"] in contacts
    ]
