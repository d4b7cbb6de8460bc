"""Lead scoring: models per business unit (one per customer tier, seed 003 case 4), their
fit and engagement rules, the score each contact holds per model, and how it changed.

Scores are ``numeric(10, 2)``. Each activity's contribution is rounded to 2 decimals
*before* it is summed (``round(points × decay, 2)``), so the lines of an explanation add up
to the stored total to the cent. The engine lives in ``services/scoring.py``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.contacts.models import Contact
from apps.core.models import BusinessUnit
from apps.core.scoping import ScopedQuerySet


class Tier(models.TextChoices):
    ANY = "any", _("Any customer")
    KA = "ka", _("Key accounts")
    MID = "mid", _("Mid-market")
    SMALL = "small", _("Small customers")


class Temperature(models.TextChoices):
    COLD = "cold", _("Cold")
    WARM = "warm", _("Warm")
    HOT = "hot", _("Hot")


TEMPERATURE_ORDER = (Temperature.COLD, Temperature.WARM, Temperature.HOT)


class RecomputeStatus(models.TextChoices):
    IDLE = "idle", _("Not computed yet")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Up to date")
    SUPERSEDED = "superseded", _("Superseded by a newer edit")
    FAILED = "failed", _("Failed")


def bands_problems(bands: Any) -> list[str]:
    """Problems with a bands list ``[{"min": 40, "temperature": "warm"}, …]``.

    Thresholds ascend strictly and so do temperatures (warm above cold, hot above warm);
    below the first threshold a contact is cold.
    """
    if not isinstance(bands, list):
        return [str(_('bands: expected a list such as [{"min": 40, "temperature": "warm"}]'))]
    problems: list[str] = []
    last_min: Decimal | None = None
    last_rank = 0
    for i, band in enumerate(bands):
        at = f"bands[{i}]"
        if not isinstance(band, dict) or set(band) != {"min", "temperature"}:
            problems.append(f"{at}: " + str(_('expected {"min": <number>, "temperature": …}')))
            continue
        value = band["min"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{at}.min: " + str(_("expected a number")))
            continue
        number = Decimal(str(value))
        if band["temperature"] not in (Temperature.WARM, Temperature.HOT):
            problems.append(f"{at}.temperature: " + str(_("use warm or hot")))
            continue
        rank = TEMPERATURE_ORDER.index(band["temperature"])
        if last_min is not None and number <= last_min:
            problems.append(f"{at}.min: " + str(_("thresholds must ascend")))
        if rank <= last_rank:
            problems.append(f"{at}.temperature: " + str(_("temperatures must ascend")))
        last_min, last_rank = number, rank
    return problems


class ScoringModel(models.Model):
    """One way of scoring a unit's contacts. Editing it (or a rule) bumps ``version`` and
    recomputes everyone in the background; a recompute of an older version stops."""

    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(_("name"), max_length=100)
    tier = models.CharField(_("customer tier"), max_length=10, choices=Tier.choices, default="any")
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    half_life_days = models.PositiveIntegerField(
        _("engagement half-life (days)"),
        null=True,
        blank=True,
        help_text=_("An activity counts half after this many days; empty means no decay."),
    )
    bands = models.JSONField(_("temperature bands"), default=list, blank=True)
    version = models.PositiveIntegerField(_("version"), default=1)
    recompute_status = models.CharField(
        _("recompute"), max_length=12, choices=RecomputeStatus.choices, default="idle"
    )
    recompute_version = models.PositiveIntegerField(_("recomputing version"), default=0)
    recompute_progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    recomputed_at = models.DateTimeField(_("last recomputed"), null=True, blank=True)
    # High-water mark of Activity.recorded_at already folded in by the incremental sweep.
    activities_seen_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("scoring model")
        verbose_name_plural = _("scoring models")
        constraints = [
            models.UniqueConstraint(fields=["unit", "name"], name="scoringmodel_unit_name"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        problems = bands_problems(self.bands)
        if problems:
            raise ValidationError({"bands": problems})
        if self.half_life_days is not None and not 1 <= self.half_life_days <= 3650:
            raise ValidationError({"half_life_days": _("Use 1 to 3650 days, or leave empty.")})

    def temperature_of(self, total: Decimal) -> str:
        found = Temperature.COLD
        for band in self.bands or []:
            if total >= Decimal(str(band["min"])):
                found = band["temperature"]
        return str(found)


class RuleKind(models.TextChoices):
    FIT = "fit", _("Fit (who they are)")
    ENGAGEMENT = "engagement", _("Engagement (what they did)")


class ScoringRuleQuerySet(ScopedQuerySet["ScoringRule"]):
    pass


class ScoringRule(models.Model):
    """Fit: ``condition`` in the tag-rule language, ``points`` when it holds.
    Engagement: ``match`` an activity ``{"type", "object_type"?, "object_id"?, "channel"?,
    "campaign"?, "properties"?}``, ``points`` per occurrence (negative allowed), at most
    ``cap`` points (in absolute value) per ``cap_days`` window (all time when empty)."""

    scope_field = "model__unit"

    model = models.ForeignKey(ScoringModel, on_delete=models.CASCADE, related_name="rules")
    kind = models.CharField(_("kind"), max_length=12, choices=RuleKind.choices)
    name = models.CharField(_("name"), max_length=100)
    condition = models.JSONField(_("condition"), null=True, blank=True)
    match = models.JSONField(_("activity match"), null=True, blank=True)
    points = models.DecimalField(_("points"), max_digits=10, decimal_places=2)
    cap = models.DecimalField(_("cap"), null=True, blank=True, max_digits=10, decimal_places=2)
    cap_days = models.PositiveIntegerField(_("cap window (days)"), null=True, blank=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ScoringRuleQuerySet.as_manager()

    class Meta:
        verbose_name = _("scoring rule")
        verbose_name_plural = _("scoring rules")
        ordering = ("position", "id")
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="fit", condition__isnull=False)
                | Q(kind="engagement", match__isnull=False),
                name="scoringrule_kind_payload",
            ),
            models.CheckConstraint(
                condition=Q(cap__isnull=True) | Q(cap__gt=0), name="scoringrule_cap_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ContactScoreQuerySet(ScopedQuerySet["ContactScore"]):
    pass


class ContactScore(models.Model):
    scope_field = "model__unit"

    # Both served by the unique (model, contact) and the contact index below: no extra
    # per-column indexes to maintain on every upsert.
    model = models.ForeignKey(
        ScoringModel, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+", db_index=False)
    fit = models.DecimalField(_("fit"), max_digits=10, decimal_places=2)
    engagement = models.DecimalField(_("engagement"), max_digits=10, decimal_places=2)
    total = models.DecimalField(_("score"), max_digits=10, decimal_places=2)
    temperature = models.CharField(_("temperature"), max_length=4, choices=Temperature.choices)
    # The "now" the values were computed at (decay is relative to it); kept when a
    # recompute finds nothing changed.
    computed_at = models.DateTimeField(_("computed"))

    objects = ContactScoreQuerySet.as_manager()

    class Meta:
        verbose_name = _("contact score")
        verbose_name_plural = _("contact scores")
        constraints = [
            models.UniqueConstraint(fields=["model", "contact"], name="contactscore_model_contact")
        ]
        indexes = [
            models.Index(fields=["model", "-total"], name="contactscore_model_total"),
            models.Index(fields=["contact"], name="contactscore_contact"),
        ]

    def __str__(self) -> str:
        return f"{self.total}"


class ChangeReason(models.TextChoices):
    RECOMPUTE = "recompute", _("Recompute")
    ACTIVITY = "activity", _("New activity")
    DECAY = "decay", _("Decay")
    EDIT = "edit", _("Model edited")


class ScoreChangeQuerySet(ScopedQuerySet["ScoreChange"]):
    pass


class ScoreChange(models.Model):
    scope_field = "model__unit"

    model = models.ForeignKey(ScoringModel, on_delete=models.CASCADE, related_name="+")
    # Served by the (contact, model, -at) index below.
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+", db_index=False)
    before = models.DecimalField(
        _("before"), null=True, blank=True, max_digits=10, decimal_places=2
    )
    after = models.DecimalField(_("after"), null=True, blank=True, max_digits=10, decimal_places=2)
    temperature_before = models.CharField(
        _("temperature before"), max_length=4, choices=Temperature.choices, blank=True
    )
    temperature_after = models.CharField(
        _("temperature after"), max_length=4, choices=Temperature.choices, blank=True
    )
    reason = models.CharField(_("reason"), max_length=10, choices=ChangeReason.choices)
    at = models.DateTimeField(_("time"), default=timezone.now)

    objects = ScoreChangeQuerySet.as_manager()

    class Meta:
        verbose_name = _("score change")
        verbose_name_plural = _("score changes")
        indexes = [
            models.Index(fields=["contact", "model", "-at"], name="scorechange_contact"),
        ]

    def __str__(self) -> str:
        return f"{self.before} → {self.after}"
