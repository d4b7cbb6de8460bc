"""Building blocks for the scoring tests: people, activities, models and rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from apps.contacts.identity_keys import make_key
from apps.contacts.models import Activity, Contact
from apps.contacts.services.resolution import contact_resolve
from apps.core.services import SystemActor
from apps.nurture.models import ScoringModel, ScoringRule

SYSTEM = SystemActor("tests")
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def person(unit: Any, *, phone: str, **attributes: Any) -> Contact:
    return contact_resolve(
        unit=unit,
        keys=[make_key("phone", phone)],
        attributes=attributes,
        source="import",
        acting_user=SYSTEM,
    ).contact


def act(unit: Any, contact: Contact, type: str, *, days_ago: float, **fields: Any) -> Activity:
    return Activity.objects.create(
        unit=unit,
        contact=contact,
        type=type,
        occurred_at=NOW - dt.timedelta(days=days_ago),
        **fields,
    )


def scoring_model(unit: Any, name: str = "KA 客户评分", **fields: Any) -> ScoringModel:
    fields.setdefault(
        "bands", [{"min": 20, "temperature": "warm"}, {"min": 50, "temperature": "hot"}]
    )
    return ScoringModel.objects.create(unit=unit, name=name, **fields)


def fit_rule(
    model: ScoringModel, name: str, condition: Any, points: str, **fields: Any
) -> ScoringRule:
    return ScoringRule.objects.create(
        model=model, kind="fit", name=name, condition=condition, points=Decimal(points), **fields
    )


def engagement_rule(
    model: ScoringModel, name: str, match: dict[str, Any], points: str, **fields: Any
) -> ScoringRule:
    if "cap" in fields and fields["cap"] is not None:
        fields["cap"] = Decimal(fields["cap"])
    return ScoringRule.objects.create(
        model=model, kind="engagement", name=name, match=match, points=Decimal(points), **fields
    )
