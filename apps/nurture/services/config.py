"""Writes for scoring models and their rules (console and API), audited.

Every change that can move a score bumps the model's ``version`` and queues a full
recompute of that version after the transaction commits; a recompute still running for
an older version stops at its next batch.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from apps.contacts.services.tag_rules import RuleContext, rule_check, rule_context
from apps.core.audit_actions import register_action
from apps.core.models import BusinessUnit, User
from apps.core.services import Actor, audit_record
from apps.core.tasks import enqueue_on_commit
from apps.nurture.models import (
    RecomputeStatus,
    RuleKind,
    ScoringModel,
    ScoringRule,
)

for _code, _label in (
    ("scoring_model.create", _lazy("Scoring model created")),
    ("scoring_model.update", _lazy("Scoring model changed")),
    ("scoring_model.delete", _lazy("Scoring model deleted")),
    ("scoring_model.recompute", _lazy("Scores recomputed")),
    ("scoring_rule.create", _lazy("Scoring rule added")),
    ("scoring_rule.update", _lazy("Scoring rule changed")),
    ("scoring_rule.delete", _lazy("Scoring rule removed")),
):
    register_action(_code, _label)

MATCH_KEYS = ("type", "object_type", "object_id", "channel", "campaign", "properties")
MAX_POINTS = Decimal("10000")
MAX_PROPERTIES = 10


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def match_problems(match: Any, *, context: RuleContext) -> list[str]:
    """Problems with an engagement rule's activity match, as "path: message" strings."""
    if not isinstance(match, dict):
        return [_('match: expected an object such as {"type": "download"}')]
    problems = [
        f"match.{key}: " + _("unknown key '%(key)s'") % {"key": key}
        for key in match
        if key not in MATCH_KEYS
    ]
    if not isinstance(match.get("type"), str) or not 0 < len(match["type"]) <= 40:
        problems.append("match.type: " + _("expected an activity type such as 'download'"))
    for key in ("object_type", "object_id"):
        if key in match and not (isinstance(match[key], str) and 0 < len(match[key]) <= 64):
            problems.append(f"match.{key}: " + _("expected a non-empty text"))
    for key, known in (("channel", context.channels), ("campaign", context.campaigns)):
        if key in match and not (_is_int(match[key]) and match[key] in known):
            problems.append(
                f"match.{key}: "
                + _("no %(kind)s with id %(id)s in this business unit")
                % {"kind": key, "id": match[key]}
            )
    if "properties" in match:
        props = match["properties"]
        if not isinstance(props, dict) or not 0 < len(props) <= MAX_PROPERTIES:
            problems.append(
                "match.properties: "
                + _('expected an object of 1 to %(n)d keys such as {"topic": "单细胞"}')
                % {"n": MAX_PROPERTIES}
            )
        else:
            for key, value in props.items():
                if not (0 < len(key) <= 64) or not isinstance(value, str | int | float | bool):
                    problems.append(
                        f"match.properties.{key}: " + _("expected a text, number or true/false")
                    )
    return problems


def _decimal(value: Any, path: str, problems: list[str], *, positive: bool = False) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        problems.append(f"{path}: " + _("expected a number"))
        return Decimal(0)
    if not number.is_finite() or abs(number) > MAX_POINTS or number != round(number, 2):
        problems.append(
            f"{path}: " + _("use a number from -10000 to 10000 with at most 2 decimals")
        )
    elif positive and number <= 0:
        problems.append(f"{path}: " + _("must be more than 0"))
    return number


def rule_problems(
    *,
    kind: str,
    condition: Any,
    match: Any,
    points: Any,
    cap: Any,
    cap_days: Any,
    context: RuleContext,
) -> list[str]:
    problems: list[str] = []
    if kind == RuleKind.FIT:
        problems += [f"condition.{p}" for p in rule_check(condition, context=context)]
    elif kind == RuleKind.ENGAGEMENT:
        problems += match_problems(match, context=context)
    else:
        problems.append("kind: " + _("use fit or engagement"))
    _decimal(points, "points", problems)
    if kind == RuleKind.ENGAGEMENT:
        if cap is not None:
            _decimal(cap, "cap", problems, positive=True)
        if cap_days is not None and (not _is_int(cap_days) or not 1 <= cap_days <= 3650):
            problems.append("cap_days: " + _("use whole days from 1 to 3650, or leave empty"))
        if cap_days is not None and cap is None:
            problems.append("cap: " + _("a cap window needs a cap"))
    return problems


def problems_by_field(problems: list[str]) -> dict[str, list[str]]:
    """ "condition.all[1].op: …" → {"condition": ["condition.all[1].op: …"]}: each
    message keeps the path of the bad node, grouped under the field it belongs to."""
    grouped: dict[str, list[str]] = {}
    for problem in problems:
        head = problem.split(":", 1)[0].split(".", 1)[0].split("[", 1)[0]
        grouped.setdefault(head, []).append(problem)
    return grouped


def _snapshot(model: ScoringModel) -> dict[str, Any]:
    return {
        "name": model.name,
        "tier": model.tier,
        "is_active": model.is_active,
        "half_life_days": model.half_life_days,
        "bands": model.bands,
        "version": model.version,
    }


def _rule_snapshot(rule: ScoringRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "kind": rule.kind,
        "condition": rule.condition,
        "match": rule.match,
        "points": str(rule.points),
        "cap": None if rule.cap is None else str(rule.cap),
        "cap_days": rule.cap_days,
        "is_active": rule.is_active,
    }


def _bump_and_queue(model: ScoringModel) -> None:
    """New version; recompute everyone for it once this transaction commits."""
    from apps.nurture.tasks import recompute_scoring_model

    ScoringModel.objects.dangerously_unscoped().filter(pk=model.pk).update(
        version=F("version") + 1, recompute_status=RecomputeStatus.QUEUED, recompute_progress=0
    )
    model.refresh_from_db(fields=["version", "recompute_status", "recompute_progress"])
    enqueue_on_commit(recompute_scoring_model, model.pk, model.version)


def _check_model(model: ScoringModel) -> None:
    try:
        model.full_clean(exclude=["unit", "created_by"])
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from exc


@transaction.atomic
def scoring_model_create(
    *,
    unit: BusinessUnit,
    name: str,
    tier: str = "any",
    description: str = "",
    is_active: bool = True,
    half_life_days: int | None = None,
    bands: list[dict[str, Any]] | None = None,
    acting_user: Actor,
) -> ScoringModel:
    model = ScoringModel(
        unit=unit,
        name=name,
        tier=tier,
        description=description,
        is_active=is_active,
        half_life_days=half_life_days,
        bands=bands if bands is not None else [],
        created_by=acting_user if isinstance(acting_user, User) else None,
    )
    _check_model(model)
    try:
        with transaction.atomic():
            model.save()
    except IntegrityError as exc:
        raise ValidationError(
            {"name": [_("A scoring model with this name already exists in this unit.")]}
        ) from exc
    audit_record(
        actor=acting_user, action="scoring_model.create", obj=model, unit=unit.pk,
        after=_snapshot(model),
    )  # fmt: skip
    _bump_and_queue(model)
    return model


@transaction.atomic
def scoring_model_update(
    *, model: ScoringModel, acting_user: Actor, **changes: Any
) -> ScoringModel:
    """Change name, tier, description, is_active, half_life_days or bands."""
    allowed = {"name", "tier", "description", "is_active", "half_life_days", "bands"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({k: [_("This cannot be changed.")] for k in sorted(unknown)})
    before = _snapshot(model)
    for key, value in changes.items():
        setattr(model, key, value)
    _check_model(model)
    try:
        with transaction.atomic():
            model.save(update_fields=[*changes, "updated_at"])
    except IntegrityError as exc:
        raise ValidationError(
            {"name": [_("A scoring model with this name already exists in this unit.")]}
        ) from exc
    scoring = {"is_active", "half_life_days", "bands"}
    if any(before[k] != getattr(model, k) for k in scoring if k in changes):
        _bump_and_queue(model)
    audit_record(
        actor=acting_user, action="scoring_model.update", obj=model, unit=model.unit_id,
        before=before, after=_snapshot(model),
    )  # fmt: skip
    return model


@transaction.atomic
def scoring_model_delete(*, model: ScoringModel, acting_user: Actor) -> None:
    audit_record(
        actor=acting_user, action="scoring_model.delete", obj=model, unit=model.unit_id,
        before=_snapshot(model),
    )  # fmt: skip
    # Bump first so a recompute still running for it stops at its next batch.
    ScoringModel.objects.dangerously_unscoped().filter(pk=model.pk).update(version=F("version") + 1)
    model.delete()


def _clean_rule(
    model: ScoringModel, data: dict[str, Any], context: RuleContext | None = None
) -> dict[str, Any]:
    context = context or rule_context(unit_id=model.unit_id)
    kind = data.get("kind")
    problems = rule_problems(
        kind=str(kind),
        condition=data.get("condition"),
        match=data.get("match"),
        points=data.get("points"),
        cap=data.get("cap"),
        cap_days=data.get("cap_days"),
        context=context,
    )
    name = str(data.get("name") or "").strip()
    if not name or len(name) > 100:
        problems.insert(0, "name: " + _("expected a name of 1 to 100 characters"))
    if problems:
        raise ValidationError(problems_by_field(problems))
    engagement = kind == RuleKind.ENGAGEMENT
    return {
        "kind": kind,
        "name": name,
        "condition": None if engagement else data.get("condition"),
        "match": data.get("match") if engagement else None,
        "points": Decimal(str(data["points"])),
        "cap": Decimal(str(data["cap"])) if engagement and data.get("cap") is not None else None,
        "cap_days": data.get("cap_days") if engagement else None,
        "position": int(data.get("position") or 0),
        "is_active": bool(data.get("is_active", True)),
    }


@transaction.atomic
def scoring_rule_create(*, model: ScoringModel, acting_user: Actor, **data: Any) -> ScoringRule:
    clean = _clean_rule(model, data)
    rule = ScoringRule.objects.dangerously_unscoped().create(model=model, **clean)
    audit_record(
        actor=acting_user, action="scoring_rule.create", obj=rule, unit=model.unit_id,
        after=_rule_snapshot(rule),
    )  # fmt: skip
    _bump_and_queue(model)
    return rule


@transaction.atomic
def scoring_rule_update(*, rule: ScoringRule, acting_user: Actor, **data: Any) -> ScoringRule:
    before = _rule_snapshot(rule)
    merged = {**before, "position": rule.position, **data, "kind": rule.kind}
    clean = _clean_rule(rule.model, merged)
    for key, value in clean.items():
        setattr(rule, key, value)
    rule.save()
    audit_record(
        actor=acting_user, action="scoring_rule.update", obj=rule, unit=rule.model.unit_id,
        before=before, after=_rule_snapshot(rule),
    )  # fmt: skip
    if before != _rule_snapshot(rule):
        _bump_and_queue(rule.model)
    return rule


@transaction.atomic
def scoring_rule_delete(*, rule: ScoringRule, acting_user: Actor) -> None:
    model = rule.model
    audit_record(
        actor=acting_user, action="scoring_rule.delete", obj=rule, unit=model.unit_id,
        before=_rule_snapshot(rule),
    )  # fmt: skip
    rule.delete()
    _bump_and_queue(model)


def scoring_model_recompute_request(*, model: ScoringModel, acting_user: Actor) -> ScoringModel:
    """Recompute now (a button): a new version, so a stale run in progress stops."""
    with transaction.atomic():
        _bump_and_queue(model)
        audit_record(
            actor=acting_user, action="scoring_model.recompute", obj=model, unit=model.unit_id
        )
    return model
