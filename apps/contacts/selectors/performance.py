"""How channels and campaigns perform over a period: visits, unique people, form
submissions, conversion, and new contacts (first touch) with cost per new contact.

Two queries for a whole page of channels or campaigns, whatever their traffic: one over
activities (partial indexes on channel/campaign and time) and one over contacts' first
touch. Callers pass ids they have already read through the scoping layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from django.db import connection

from apps.contacts.models import Activity, Contact

Kind = Literal["channel", "campaign"]


@dataclass(frozen=True)
class Performance:
    visits: int = 0
    visitors: int = 0
    submissions: int = 0
    new_contacts: int = 0

    @property
    def conversion(self) -> float | None:
        """Submissions per unique visitor, as a fraction; None without visitors."""
        return self.submissions / self.visitors if self.visitors else None

    def cost_per_contact(self, cost: Decimal | None) -> Decimal | None:
        if not cost or not self.new_contacts:
            return None
        return (cost / self.new_contacts).quantize(Decimal("0.01"))


def touch_performance(kind: Kind, ids: Iterable[int], *, since: datetime) -> dict[int, Performance]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    column = {"channel": "channel_id", "campaign": "campaign_id"}[kind]
    activities = Activity._meta.db_table
    contacts = Contact._meta.db_table
    found: dict[int, dict[str, int]] = {pk: {} for pk in wanted}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT {column},
                   count(*) FILTER (WHERE type = 'page_view'),
                   count(DISTINCT coalesce(contact_id::text, nullif(anonymous_id, ''))),
                   count(*) FILTER (WHERE type = 'form_submit')
            FROM {activities}
            WHERE {column} = ANY(%s) AND occurred_at >= %s
            GROUP BY 1
            """,  # noqa: S608 - identifiers come from model metadata and a fixed map
            [wanted, since],
        )
        for pk, visits, visitors, submissions in cursor.fetchall():
            found[pk].update(visits=visits, visitors=visitors, submissions=submissions)
        cursor.execute(
            f"""
            SELECT first_touch_{column}, count(*)
            FROM {contacts}
            WHERE first_touch_{column} = ANY(%s) AND first_touch_at >= %s
              AND status <> 'merged'
            GROUP BY 1
            """,  # noqa: S608 - as above
            [wanted, since],
        )
        for pk, new_contacts in cursor.fetchall():
            found[pk]["new_contacts"] = new_contacts
    return {pk: Performance(**values) for pk, values in found.items()}
