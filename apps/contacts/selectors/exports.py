"""Reads for contact exports: which contacts a filtered export holds, its columns, and
which export jobs a user may see and download.

The filter vocabulary is the contact list's, as a JSON-friendly dict stored on the job::

    {"q": "search text", "tag": 12, "unit": 3, "source": 7, "custom": {"41": "ka"}}

``q`` finds a phone (any spelling) or an email by its identity key, and otherwise matches
the start of the name or the company, as the contact list does. Every other key names a
record the user must be able to see with ``contacts.export``; one they cannot see matches
nobody (the export service refuses such filters up front with a clear message).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.db.models.functions import Coalesce

from apps.contacts.identity_keys import InvalidKey, make_key
from apps.contacts.models import (
    Channel,
    Contact,
    ContactExport,
    ContactStatus,
    ContactTag,
    ContactUnit,
    CustomField,
    CustomFieldType,
    Identity,
    IdentityKind,
    SegmentMember,
    Tag,
)
from apps.contacts.services.fields import FieldValueError, clean_value
from apps.core.models import BusinessUnit, User
from apps.core.scoping import visible_unit_ids

VIEW = "contacts.view"
EXPORT = "contacts.export"
ADMIN = "core.admin_unit"
# Identity kinds an export writes out (the other keys are pseudonymous ids for machines).
EXPORTED_KINDS = (IdentityKind.PHONE, IdentityKind.EMAIL)


def _group_ids(user: User) -> QuerySet[Any]:
    return (
        BusinessUnit.objects.visible_to(user, EXPORT)
        .annotate(group=Coalesce("parent_id", "id"))
        .values("group")
    )


def _owners(user: User, kind: str, text: str) -> Q:
    key = make_key(kind, text)
    owners = Identity.objects.visible_to(user, EXPORT).filter(
        group_id__in=_group_ids(user), kind=key.kind, scope="", value=key.value
    )
    return Q(pk__in=owners.values("contact_id"))


def _search(user: User, text: str) -> Q:
    if "@" in text:
        try:
            return _owners(user, IdentityKind.EMAIL, text)
        except InvalidKey:
            return Q(pk__in=[])
    if sum(c.isdigit() for c in text) >= 7:
        try:
            return _owners(user, IdentityKind.PHONE, text)
        except InvalidKey:
            pass  # digits that are not a phone ("360 安全") are still a name prefix
    return Q(name__istartswith=text) | Q(company_name__istartswith=text)


def _as_int(raw: Any) -> int | None:
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        return -1  # matches nothing, rather than silently widening the export


def custom_condition(custom_field: CustomField, raw: Any) -> Q:
    """``custom @> {"<id>": value}`` (GIN-indexed); a multiple choice matches contacts
    whose list holds the value. FieldValueError when ``raw`` cannot be a value."""
    value = clean_value(custom_field, raw)
    if value is None:
        raise FieldValueError(custom_field.label)
    if custom_field.type == CustomFieldType.MULTI_CHOICE:
        value = list(value)
    return Q(custom__contains={custom_field.storage_key: value})


def export_queryset(user: User, filters: dict[str, Any]) -> QuerySet[Contact]:
    """The active contacts an export with ``filters`` holds for ``user`` (unordered)."""
    qs = Contact.objects.visible_to(user, EXPORT).filter(status=ContactStatus.ACTIVE)
    units = visible_unit_ids(user, EXPORT)
    text = str(filters.get("q") or "").strip()
    if text:
        qs = qs.filter(_search(user, text))
    tag_id = _as_int(filters.get("tag"))
    if tag_id is not None:
        tagged = ContactTag.objects.visible_to(user, EXPORT).filter(
            contact_id=OuterRef("pk"), tag_id=tag_id
        )
        qs = qs.filter(Exists(tagged))
    segment_id = _as_int(filters.get("segment"))
    if segment_id is not None:  # a segment's materialised members
        members = SegmentMember.objects.visible_to(user, EXPORT).filter(
            contact_id=OuterRef("pk"), segment_id=segment_id
        )
        qs = qs.filter(Exists(members))
    unit_id = _as_int(filters.get("unit"))
    if unit_id is not None:
        if unit_id not in units and not user.is_superuser:
            return qs.none()
        known = ContactUnit.objects.for_units([unit_id]).filter(contact_id=OuterRef("pk"))
        qs = qs.filter(Exists(known))
    source_id = _as_int(filters.get("source"))
    if source_id is not None:
        channels = Channel.objects.visible_to(user, EXPORT).filter(pk=source_id)
        qs = qs.filter(source_channel_id__in=channels.values("pk"))
    custom = filters.get("custom") or {}
    if custom:
        wanted = {str(k): v for k, v in custom.items()}
        fields = {
            f.storage_key: f
            for f in CustomField.objects.visible_to(user, EXPORT).filter(
                pk__in=[int(k) for k in wanted if k.isdigit()]
            )
        }
        for key, raw in wanted.items():
            if key not in fields:
                return qs.none()
            try:
                qs = qs.filter(custom_condition(fields[key], raw))
            except FieldValueError:
                return qs.none()
    return qs


def export_rows(user: User, filters: dict[str, Any]) -> QuerySet[Contact]:
    """``export_queryset`` in id order with what each row needs prefetched: phones and
    emails, and the tags of the user's units (two extra queries per chunk of rows)."""
    identities = (
        Identity.objects.visible_to(user, EXPORT)
        .filter(kind__in=EXPORTED_KINDS)
        .order_by("kind", "id")
    )
    tags = ContactTag.objects.visible_to(user, EXPORT).select_related("tag").order_by("tag__name")
    return (
        export_queryset(user, filters)
        .order_by("id")
        .prefetch_related(
            Prefetch("identities", queryset=identities, to_attr="export_identities"),
            Prefetch("tags", queryset=tags, to_attr="export_tags"),
        )
    )


def export_custom_fields(user: User, filters: dict[str, Any]) -> list[CustomField]:
    """The custom-field columns: every active field of the exported units, in each unit's
    order (the unit filter narrows them to that unit's fields)."""
    qs = CustomField.objects.visible_to(user, EXPORT).filter(is_active=True)
    unit_id = _as_int(filters.get("unit"))
    if unit_id is not None:
        qs = qs.filter(unit_id=unit_id)
    return list(qs.select_related("unit").order_by("unit__name", "unit_id", "position", "id"))


# --- Export jobs ---------------------------------------------------------------------------


def exports_visible(*, user: User) -> QuerySet[ContactExport]:
    """Export jobs ``user`` may see and download: their own, plus every export of a unit
    they administer. Files hold personal data, so fellow marketers do not see each
    other's."""
    admin_units = visible_unit_ids(user, ADMIN)
    return (
        ContactExport.objects.visible_to(user, EXPORT)
        .filter(Q(created_by=user) | Q(unit_id__in=admin_units))
        .select_related("created_by", "unit")
    )


@dataclass
class ExportFilterOptions:
    """What the export form offers, one query per kind."""

    units: list[BusinessUnit]
    tags: list[Tag]
    channels: list[Channel]
    fields: list[CustomField]


def export_filter_options(*, user: User) -> ExportFilterOptions:
    return ExportFilterOptions(
        units=list(
            BusinessUnit.objects.visible_to(user, EXPORT)
            .filter(is_active=True)
            .order_by("parent_id", "name")
        ),
        tags=list(Tag.objects.visible_to(user, EXPORT).select_related("unit").order_by("name")),
        channels=list(
            Channel.objects.visible_to(user, EXPORT).filter(is_active=True).order_by("name")
        ),
        fields=list(
            CustomField.objects.visible_to(user, EXPORT)
            .filter(is_active=True)
            .select_related("unit")
            .order_by("unit__name", "position", "id")
        ),
    )


def contact_for_subject_request(*, user: User, pk: int, permission: str) -> Contact | None:
    """The contact ``pk`` if ``user`` may act on them with ``permission`` (else None).

    Erased and merged contacts are found too: an erasure must be answerable twice, and a
    merged contact points at the one that holds the data now."""
    return Contact.objects.visible_to(user, permission).filter(pk=pk).first()
