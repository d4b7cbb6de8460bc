"""Reads for the contacts REST API. Each starts from what the caller may see.

A contact is group-level, but what hangs on it is not: units, tags, custom fields,
activities and consent history belong to a unit, and the API shows only those of units the
caller may see (``contacts.view``). Everything a page of contacts needs comes in a fixed
number of queries (prefetches), however many contacts the page holds.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, QuerySet

from apps.contacts.models import (
    ConsentEvent,
    Contact,
    ContactTag,
    ContactUnit,
    CustomField,
    Identity,
    Tag,
)
from apps.core.models import User

VIEW = "contacts.view"
EDIT = "contacts.edit"

# Consent events shown with a contact's consent, newest first; the state is always complete.
CONSENT_HISTORY_LIMIT = 100


def contacts_decorated(queryset: QuerySet[Contact], *, user: User | Any) -> QuerySet[Contact]:
    """``queryset`` (already scoped) with the identities, units and tags the API shows.

    Three prefetch queries per page, whatever its size. The rows land on
    ``identity_rows``, ``visible_units`` and ``visible_tags``.
    """
    return queryset.prefetch_related(
        Prefetch(
            "identities",
            queryset=Identity.objects.visible_to(user, VIEW).order_by("kind", "scope", "value"),
            to_attr="identity_rows",
        ),
        Prefetch(
            "units",
            queryset=ContactUnit.objects.visible_to(user, VIEW).order_by("unit_id"),
            to_attr="visible_units",
        ),
        Prefetch(
            "tags",
            queryset=ContactTag.objects.visible_to(user, VIEW)
            .select_related("tag")
            .order_by("tag__name", "tag_id"),
            to_attr="visible_tags",
        ),
    )


def contact_for_api(*, user: User | Any, contact_id: int) -> Contact | None:
    """One contact the caller may see, decorated for the API; None when they may not."""
    scoped = Contact.objects.visible_to(user, VIEW).filter(pk=contact_id)
    return contacts_decorated(scoped, user=user).first()


def contact_access(*, user: User | Any, contact_id: int) -> str | None:
    """ "edit" when the caller may change the contact, "view" when they may only read it,
    None when it is not theirs to know about (the API answers 404 then). One query."""
    readable = Contact.objects.visible_to(user, VIEW).filter(pk=contact_id)
    writable = Contact.objects.visible_to(user, EDIT).filter(pk=OuterRef("pk"))
    if not writable.query.is_empty():
        row = readable.values_list(Exists(writable), flat=True).first()
    else:
        row = False if readable.exists() else None
    if row is None:
        return None
    return "edit" if row else "view"


def custom_fields_shown(*, user: User | Any) -> dict[str, CustomField]:
    """storage key -> active custom field, for the units the caller may see. One query."""
    fields = CustomField.objects.visible_to(user, VIEW).filter(is_active=True)
    return {f.storage_key: f for f in fields.order_by("unit_id", "position", "id")}


def custom_fields_writable(*, user: User | Any, unit_id: int) -> list[CustomField]:
    """The active custom fields of ``unit_id``, if the caller may write to it."""
    return list(
        CustomField.objects.visible_to(user, EDIT)
        .filter(unit_id=unit_id, is_active=True)
        .order_by("position", "id")
    )


def tags_writable(*, user: User | Any, tag_ids: list[int], unit_id: int | None = None) -> list[Tag]:
    """The tags among ``tag_ids`` of units the caller may write to (of ``unit_id`` if given)."""
    tags = Tag.objects.visible_to(user, EDIT).filter(id__in=tag_ids)
    if unit_id is not None:
        tags = tags.filter(unit_id=unit_id)
    return list(tags.order_by("id"))


def contact_tags(*, user: User | Any, contact_id: int) -> list[ContactTag]:
    """The contact's tags of units the caller may see, by name."""
    return list(
        ContactTag.objects.visible_to(user, VIEW)
        .filter(contact_id=contact_id)
        .select_related("tag")
        .order_by("tag__name", "tag_id")
    )


def consent_history(*, user: User | Any, contact_id: int) -> list[ConsentEvent]:
    """Consent events recorded by units the caller may see, newest first (bounded)."""
    return list(
        ConsentEvent.objects.visible_to(user, VIEW)
        .filter(contact_id=contact_id)
        .order_by("-occurred_at", "-id")[:CONSENT_HISTORY_LIMIT]
    )
