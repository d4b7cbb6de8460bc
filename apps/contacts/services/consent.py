"""Consent: an append-only event log, and the current state derived from it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.contacts.models import (
    ConsentBasis,
    ConsentChannel,
    ConsentEvent,
    ConsentPurpose,
    ConsentState,
    Contact,
)
from apps.core.models import BusinessUnit


class ConsentError(ValueError):
    pass


def consent_states_refresh(contact_ids: Iterable[int]) -> None:
    """Recompute ConsentState from events for these contacts (newest event wins)."""
    ids = sorted(set(contact_ids))
    if not ids:
        return
    events = ConsentEvent._meta.db_table
    states = ConsentState._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {states} WHERE contact_id = ANY(%s)", [ids])  # noqa: S608
        cursor.execute(
            f"""
            INSERT INTO {states} (contact_id, channel, purpose, granted, since)
            SELECT DISTINCT ON (contact_id, channel, purpose)
                   contact_id, channel, purpose, granted, occurred_at
            FROM {events}
            WHERE contact_id = ANY(%s)
            ORDER BY contact_id, channel, purpose, occurred_at DESC, id DESC
            """,  # noqa: S608 - table names from model metadata
            [ids],
        )


@transaction.atomic
def consent_record(
    *,
    contact: Contact,
    unit: BusinessUnit,
    channel: str,
    granted: bool,
    source: str,
    purpose: str = ConsentPurpose.MARKETING,
    basis: str = "",
    wording_version: str = "",
    proof: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> ConsentEvent:
    """Record consent given or withdrawn, and update the contact's current state."""
    if channel not in ConsentChannel.values:
        raise ConsentError(f"unknown consent channel {channel!r}")
    if purpose not in ConsentPurpose.values:
        raise ConsentError(f"unknown consent purpose {purpose!r}")
    if basis and basis not in ConsentBasis.values:
        raise ConsentError(
            f"unknown consent basis {basis!r}; use one of {', '.join(ConsentBasis.values)}"
        )
    if granted and not basis:
        basis = ConsentBasis.CONSENT
    event = ConsentEvent.objects.create(
        contact=contact,
        unit=unit,
        channel=channel,
        purpose=purpose,
        granted=granted,
        basis=basis,
        source=source,
        wording_version=wording_version,
        proof=proof or {},
        occurred_at=occurred_at or timezone.now(),
    )
    consent_states_refresh([contact.pk])
    return event
