"""Reads for the scoring pages, the API and the contact 360 panel.

Everything starts from ``visible_to(user, …)``: a model of another unit is simply not
there (a 404). Reading scores needs ``nurture.view``; editing models ``nurture.scoring``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import QuerySet

from apps.contacts.identity_keys import InvalidKey, make_key
from apps.contacts.models import Contact, ContactStatus
from apps.core.models import User
from apps.nurture.models import ContactScore, ScoreChange, ScoringModel, ScoringRule

VIEW = "nurture.view"
EDIT = "nurture.scoring"
CONTACT_VIEW = "contacts.view"
BUCKETS = 10
HISTORY_SHOWN = 5


def scoring_models(*, user: User, unit_ids: Iterable[int] | None = None) -> QuerySet[ScoringModel]:
    qs = ScoringModel.objects.visible_to(user, VIEW).select_related("unit")
    if unit_ids is not None:
        qs = qs.filter(unit_id__in=list(unit_ids))
    return qs.order_by("unit_id", "name", "id")


def scoring_model_visible(*, user: User, pk: int, permission: str = VIEW) -> ScoringModel | None:
    return (
        ScoringModel.objects.visible_to(user, permission)
        .select_related("unit")
        .filter(pk=pk)
        .first()
    )


def scoring_rules(*, user: User, model: ScoringModel) -> list[ScoringRule]:
    return list(
        ScoringRule.objects.visible_to(user, VIEW).filter(model=model).order_by("position", "id")
    )


def scoring_rule_visible(*, user: User, pk: int, permission: str = VIEW) -> ScoringRule | None:
    return (
        ScoringRule.objects.visible_to(user, permission)
        .select_related("model")
        .filter(pk=pk)
        .first()
    )


def contact_for_scoring(*, user: User, text: str) -> Contact | None:
    """A contact the user may see, by id, phone or email (the "test on this contact" box)."""
    text = text.strip()
    if not text:
        return None
    contacts = Contact.objects.visible_to(user, CONTACT_VIEW).filter(status=ContactStatus.ACTIVE)
    if text.isdigit() and len(text) < 11:
        return contacts.filter(pk=int(text)).first()
    kind = "email" if "@" in text else "phone"
    try:
        key = make_key(kind, text)
    except InvalidKey:
        return None
    return contacts.filter(identities__kind=key.kind, identities__value=key.value).first()


def contact_visible_for_scoring(*, user: User, pk: int) -> Contact | None:
    return Contact.objects.visible_to(user, CONTACT_VIEW).filter(pk=pk).first()


@dataclass
class ContactScoreRow:
    score: ContactScore
    history: list[ScoreChange] = field(default_factory=list)


def contact_scores(*, user: User, contact: Contact) -> list[ContactScoreRow]:
    """Every active model's score for ``contact`` that the user may see, with the latest
    changes. Two queries, however many models."""
    scores = list(
        ContactScore.objects.visible_to(user, VIEW)
        .filter(contact=contact, model__is_active=True)
        .select_related("model", "model__unit")
        .order_by("model__unit_id", "model__name", "model_id")
    )
    if not scores:
        return []
    rows = {s.model_id: ContactScoreRow(s) for s in scores}
    changes = (
        ScoreChange.objects.visible_to(user, VIEW)
        .filter(contact=contact, model_id__in=list(rows))
        .order_by("model_id", "-at", "-id")
    )
    for change in changes[: HISTORY_SHOWN * len(rows) * 4]:
        row = rows[change.model_id]
        if len(row.history) < HISTORY_SHOWN:
            row.history.append(change)
    return list(rows.values())


@dataclass
class Bucket:
    low: Decimal
    high: Decimal
    count: int
    height: int = 0  # percent of the fullest bucket, for the bars
    index: int = 0

    @property
    def x(self) -> int:  # in the chart's viewBox: 10 units per bucket
        return self.index * 10 + 1

    @property
    def y(self) -> int:
        return 100 - self.height


@dataclass
class Distribution:
    total: int = 0
    buckets: list[Bucket] = field(default_factory=list)
    temperatures: dict[str, int] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return max(len(self.buckets), 1) * 10

    @property
    def by_temperature(self) -> list[tuple[str, int]]:
        return [(t, self.temperatures.get(t, 0)) for t in ("hot", "warm", "cold")]


def score_distributions(
    *, user: User, models: list[ScoringModel], buckets: int = BUCKETS
) -> dict[int, Distribution]:
    """Histogram of totals per model (``buckets`` equal, whole-number-wide bins from the
    lowest to the highest score) and counts per temperature. Two queries for all models."""
    visible = (
        set(
            ScoringModel.objects.visible_to(user, VIEW)
            .filter(pk__in=[m.pk for m in models])
            .values_list("pk", flat=True)
        )
        if models
        else set()
    )
    found: dict[int, Distribution] = {pk: Distribution() for pk in visible}
    if not visible:
        return found
    table = ContactScore._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH s AS (SELECT model_id, total, temperature FROM {table}
                       WHERE model_id = ANY(%s)),
            r AS (SELECT model_id, floor(min(total)) AS lo,
                         greatest(ceil((max(total) - floor(min(total)) + 0.01) / %s), 1) AS w
                  FROM s GROUP BY model_id)
            SELECT s.model_id, r.lo, r.w, floor((s.total - r.lo) / r.w)::int AS k,
                   s.temperature, count(*)
            FROM s JOIN r USING (model_id)
            GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 4
            """,  # noqa: S608 - table name from model metadata
            [sorted(visible), buckets],
        )
        rows = cursor.fetchall()
    counts: dict[int, dict[int, int]] = {}
    bounds: dict[int, tuple[Decimal, Decimal]] = {}
    for model_id, lo, width, k, temperature, n in rows:
        dist = found[model_id]
        dist.total += n
        dist.temperatures[temperature] = dist.temperatures.get(temperature, 0) + n
        counts.setdefault(model_id, {})
        counts[model_id][k] = counts[model_id].get(k, 0) + n
        bounds[model_id] = (Decimal(lo), Decimal(width))
    for model_id, per_bucket in counts.items():
        lo, width = bounds[model_id]
        last = max(per_bucket)
        peak = max(per_bucket.values())
        dist = found[model_id]
        for k in range(last + 1):
            n = per_bucket.get(k, 0)
            dist.buckets.append(
                Bucket(
                    low=lo + width * k,
                    high=lo + width * (k + 1),
                    count=n,
                    height=math.ceil(100 * n / peak) if n else 0,
                    index=k,
                )
            )
    return found
