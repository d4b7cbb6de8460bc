"""Reads for the import pages and API. Everything starts from what the user may import
into (``contacts.import``): an import, its file and its errors are seen only by people who
may import into its unit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from apps.contacts.importing.error_file import read_errors
from apps.contacts.importing.mapping import suggest_mapping
from apps.contacts.importing.readers import Preview, header_signature, stored_binary
from apps.contacts.models import ContactImport, CustomField, ImportMapping, Tag
from apps.contacts.services.imports import IMPORT_PERMISSION, read_stored_preview
from apps.core.models import BusinessUnit, User


def import_units(*, user: User) -> list[BusinessUnit]:
    """Units the user may import contacts into, groups first."""
    return list(
        BusinessUnit.objects.visible_to(user, IMPORT_PERMISSION)
        .filter(is_active=True)
        .order_by("parent_id", "name", "id")
    )


def import_list(*, user: User, unit_ids: set[int] | None = None) -> QuerySet[ContactImport]:
    """Imports in the user's units; order and page with keyset (``-created_at, -id``)."""
    qs = ContactImport.objects.visible_to(user, IMPORT_PERMISSION)
    if unit_ids is not None:
        qs = qs.filter(unit_id__in=unit_ids)
    return qs.select_related("unit", "created_by")


def import_get(*, user: User, pk: int) -> ContactImport | None:
    return (
        ContactImport.objects.visible_to(user, IMPORT_PERMISSION)
        .select_related("unit", "created_by")
        .filter(pk=pk)
        .first()
    )


def unit_tags(*, user: User, unit_id: int) -> list[Tag]:
    return list(
        Tag.objects.visible_to(user, IMPORT_PERMISSION)
        .filter(unit_id=unit_id, kind="manual")
        .order_by("name", "id")
    )


def unit_custom_fields(*, user: User, unit_id: int) -> list[CustomField]:
    return list(
        CustomField.objects.visible_to(user, IMPORT_PERMISSION).filter(
            unit_id=unit_id, is_active=True
        )
    )


def import_preview(*, contact_import: ContactImport) -> Preview:
    """The header and first rows of the import's file (the caller fetched it scoped)."""
    return read_stored_preview(contact_import)


@dataclass(frozen=True)
class MappingOffer:
    mapping: dict[str, Any]
    remembered: bool  # True: the unit used it for this header before; False: a guess


def mapping_offer(
    *, user: User, unit_id: int, header: list[str], custom_fields: list[CustomField]
) -> MappingOffer:
    """What to pre-fill the mapping form with: the unit's last mapping for this header,
    else a guess from the column names."""
    remembered = (
        ImportMapping.objects.visible_to(user, IMPORT_PERMISSION)
        .filter(unit_id=unit_id, header_signature=header_signature(header))
        .values_list("mapping", flat=True)
        .first()
    )
    if remembered:
        return MappingOffer(remembered, True)
    return MappingOffer(suggest_mapping(header, custom_fields), False)


def import_errors(
    *, contact_import: ContactImport, after: int = 0, limit: int = 50
) -> Iterator[dict[str, Any]]:
    """Lines of the import's error file after line ``after`` (the caller fetched the
    import scoped). Empty when the import found no errors."""
    if not contact_import.error_file:
        return
    with stored_binary(contact_import.error_file) as binary:
        yield from read_errors(binary, after=after, limit=limit)
