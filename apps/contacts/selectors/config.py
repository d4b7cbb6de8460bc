"""Reads for the configuration pages and API: tags, custom fields, channels, campaigns.

Every list starts from ``Model.objects.visible_to(user, permission)``. Counts of contacts
are bounded (``COUNT_LIMIT``): a page says "10000+" rather than counting a huge table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet

from apps.contacts.models import (
    Campaign,
    Channel,
    Contact,
    ContactTag,
    CustomField,
    CustomFieldType,
    Tag,
    TagGroup,
    TagHistory,
)
from apps.core.models import BusinessUnit, User

CONFIGURE = "contacts.configure"
# Counting stops here; beyond it the number is shown as "10000+".
COUNT_LIMIT = 10_000


def configurable_units(*, user: User, narrowed: set[int] | None = None) -> list[BusinessUnit]:
    """Units whose tags, fields and channels ``user`` may change (narrowed by the unit
    switcher when given). A group with units of its own is configured per unit."""
    qs = (
        BusinessUnit.objects.visible_to(user, CONFIGURE)
        .filter(is_active=True)
        .filter(Q(parent__isnull=False) | Q(units__isnull=True))
        .distinct()
        .order_by("parent_id", "code", "id")
    )
    units = list(qs)
    if narrowed is not None:
        units = [u for u in units if u.pk in narrowed]
    return units


# --- Tags ----------------------------------------------------------------------------------


def tag_groups_of(*, user: User, unit_id: int, permission: str = CONFIGURE) -> QuerySet[TagGroup]:
    return (
        TagGroup.objects.visible_to(user, permission)
        .filter(unit_id=unit_id)
        .order_by("position", "name", "id")
    )


def tags_of(
    *,
    user: User,
    unit_id: int,
    group_id: int | None = None,
    ungrouped: bool = False,
    kind: str = "",
    permission: str = CONFIGURE,
) -> QuerySet[Tag]:
    qs = Tag.objects.visible_to(user, permission).filter(unit_id=unit_id).select_related("group")
    if ungrouped:
        qs = qs.filter(group__isnull=True)
    elif group_id is not None:
        qs = qs.filter(group_id=group_id)
    if kind:
        qs = qs.filter(kind=kind)
    return qs


def tag_get(*, user: User, pk: int, permission: str = CONFIGURE) -> Tag | None:
    return (
        Tag.objects.visible_to(user, permission)
        .select_related("unit", "group")
        .filter(pk=pk)
        .first()
    )


def tag_group_get(*, user: User, pk: int, permission: str = CONFIGURE) -> TagGroup | None:
    return (
        TagGroup.objects.visible_to(user, permission).select_related("unit").filter(pk=pk).first()
    )


def tag_contact_counts(*, tag_ids: Iterable[int]) -> dict[int, int]:
    """tag id -> contacts carrying it, each count stopping at COUNT_LIMIT + 1.

    One query for the whole page; each count reads at most COUNT_LIMIT + 1 index entries.
    The ids must come from a scoped queryset (the caller's page).
    """
    ids = sorted(set(tag_ids))
    if not ids:
        return {}
    table = ContactTag._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT t.id, (
                SELECT count(*) FROM (
                    SELECT 1 FROM {table} ct WHERE ct.tag_id = t.id LIMIT %s
                ) AS capped
            )
            FROM unnest(%s::bigint[]) AS t(id)
            """,  # noqa: S608 - table name from model metadata
            [COUNT_LIMIT + 1, ids],
        )
        return {int(row[0]): int(row[1]) for row in cursor.fetchall()}


def tag_group_sizes(*, group_ids: Iterable[int]) -> dict[int, int]:
    """group id -> number of tags in it (one query; ids from a scoped queryset)."""
    ids = list(group_ids)
    if not ids:
        return {}
    rows = (
        Tag.objects.dangerously_unscoped()
        .filter(group_id__in=ids)
        .values_list("group_id")
        .annotate(n=Count("id"))
    )
    return {int(group_id): int(n) for group_id, n in rows}


def tag_history_recent(*, user: User, tag: Tag, limit: int = 20) -> list[TagHistory]:
    """The latest changes to who carries ``tag`` (bounded)."""
    return list(
        TagHistory.objects.visible_to(user, CONFIGURE)
        .filter(tag=tag)
        .select_related("contact")
        .order_by("-id")[:limit]
    )


def rule_tags_referring_to(*, user: User, tag: Tag) -> list[Tag]:
    from apps.contacts.services.tag_rules import rule_tag_refs

    rules = Tag.objects.visible_to(user, CONFIGURE).filter(unit_id=tag.unit_id, kind="rule")
    return [t for t in rules.exclude(pk=tag.pk) if tag.pk in rule_tag_refs(t.rule)]


# --- Custom fields -------------------------------------------------------------------------


def custom_fields_of(
    *, user: User, unit_id: int, permission: str = CONFIGURE, active_only: bool = False
) -> QuerySet[CustomField]:
    qs = CustomField.objects.visible_to(user, permission).filter(unit_id=unit_id)
    if active_only:
        qs = qs.filter(is_active=True)
    return qs.order_by("position", "id")


def custom_field_get(*, user: User, pk: int, permission: str = CONFIGURE) -> CustomField | None:
    return (
        CustomField.objects.visible_to(user, permission)
        .select_related("unit")
        .filter(pk=pk)
        .first()
    )


def options_usage(*, fields: Sequence[CustomField]) -> dict[tuple[int, str], int]:
    """(field id, option value) -> contacts holding it, bounded at COUNT_LIMIT + 1.

    One query for every option of every field given; each count is answered by the GIN
    index (``custom @> {"<field id>": value}``). Fields must come from the caller's scope.
    """
    keys: list[tuple[int, str]] = []
    probes: list[str] = []
    for field in fields:
        if field.type not in (CustomFieldType.CHOICE, CustomFieldType.MULTI_CHOICE):
            continue
        for value in sorted(field.option_values()):
            stored: Any = [value] if field.type == CustomFieldType.MULTI_CHOICE else value
            keys.append((field.pk, value))
            probes.append(json.dumps({field.storage_key: stored}, ensure_ascii=False))
    if not probes:
        return {}
    table = Contact._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT p.n, (
                SELECT count(*) FROM (
                    SELECT 1 FROM {table} c WHERE c.custom @> p.probe LIMIT %s
                ) AS capped
            )
            FROM unnest(%s::jsonb[]) WITH ORDINALITY AS p(probe, n)
            """,  # noqa: S608 - table name from model metadata; probes are parameters
            [COUNT_LIMIT + 1, probes],
        )
        counts = {int(n): int(count) for n, count in cursor.fetchall()}
    return {key: counts.get(i + 1, 0) for i, key in enumerate(keys)}


def option_usage(*, field: CustomField, values: Sequence[str] | None = None) -> dict[str, int]:
    """option value -> contacts holding it in ``field`` (bounded; see options_usage)."""
    usage = options_usage(fields=[field])
    wanted = set(values) if values is not None else field.option_values()
    return {value: n for (_id, value), n in usage.items() if value in wanted}


# --- Channels and campaigns ----------------------------------------------------------------


def channels_of(*, user: User, unit_id: int, permission: str = CONFIGURE) -> QuerySet[Channel]:
    return Channel.objects.visible_to(user, permission).filter(unit_id=unit_id)


def channel_get(*, user: User, pk: int, permission: str = CONFIGURE) -> Channel | None:
    return Channel.objects.visible_to(user, permission).select_related("unit").filter(pk=pk).first()


def campaigns_of(
    *, user: User, unit_id: int, channel_id: int | None = None, permission: str = CONFIGURE
) -> QuerySet[Campaign]:
    qs = Campaign.objects.visible_to(user, permission).filter(unit_id=unit_id)
    if channel_id is not None:
        qs = qs.filter(channel_id=channel_id)
    return qs.select_related("channel")


def campaign_get(*, user: User, pk: int, permission: str = CONFIGURE) -> Campaign | None:
    return (
        Campaign.objects.visible_to(user, permission)
        .select_related("unit", "channel")
        .filter(pk=pk)
        .first()
    )
