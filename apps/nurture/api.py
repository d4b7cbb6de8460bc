"""API: scoring models and rules, recompute, explanations, distributions, and the scores
of one contact.

Reading needs ``nurture.view`` in the model's unit, writing ``nurture.scoring``. Writes go
through ``services.config`` (audited; a change recomputes everyone in the background).
A model, rule or contact of another unit is a 404.
"""

from __future__ import annotations

from typing import Any, cast

import django_filters
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter
from rest_framework.views import APIView

from apps.contacts.api.tags import UnitFilter, UnitOnCreateMixin
from apps.core.api_base import ScopedModelViewSet, VisibleUnitField
from apps.core.models import User
from apps.nurture import selectors
from apps.nurture.models import RuleKind, ScoringModel, ScoringRule, Temperature, Tier
from apps.nurture.services import config as services
from apps.nurture.services.scoring import Explanation, score_explain


def explanation_data(explanation: Explanation) -> dict[str, Any]:
    """An explanation as JSON: every line, and totals that the lines add up to."""
    return {
        "model": explanation.model.pk,
        "as_of": explanation.now.isoformat(),
        "known": explanation.known,
        "fit": str(explanation.fit),
        "engagement": str(explanation.engagement),
        "total": str(explanation.total),
        "temperature": explanation.temperature,
        "stored_total": str(explanation.stored.total) if explanation.stored else None,
        "fit_lines": [
            {
                "rule": line.rule_id,
                "rule_name": line.rule,
                "points": str(line.points),
                "condition": line.description,
                "because": line.evidence,
            }
            for line in explanation.fit_lines
        ],
        "activity_lines": [
            {
                "rule": line.rule_id,
                "rule_name": line.rule,
                "activity": line.activity_id,
                "type": line.type,
                "occurred_at": line.occurred_at.isoformat(),
                "object_type": line.object_type,
                "object_id": line.object_id,
                "title": line.title,
                "points_per_occurrence": str(line.points),
                "points_after_cap": str(line.raw),
                "capped": line.capped,
                "decay_factor": str(round(line.factor, 6)),
                "points": str(line.scored),
            }
            for line in explanation.activity_lines
        ],
    }


class ScoringRuleSerializer(serializers.ModelSerializer[ScoringRule]):
    model: serializers.Field[Any, Any, Any, Any] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    kind = serializers.ChoiceField(choices=RuleKind.choices)
    condition = serializers.JSONField(
        allow_null=True,
        required=False,
        help_text=(
            'Fit rules: a condition in the tag-rule language, e.g. {"field": "industry", '
            '"op": "in", "value": ["生物医药"]}. Errors name the node ("condition.all[1].op: …").'
        ),
    )
    match = serializers.JSONField(
        allow_null=True,
        required=False,
        help_text=(
            'Engagement rules: {"type": "download", "object_type"?, "object_id"?, "channel"?, '
            '"campaign"?, "properties"?: {"topic": "单细胞"}}.'
        ),
    )
    points = serializers.DecimalField(max_digits=10, decimal_places=2, coerce_to_string=True)
    cap = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True, required=False)

    class Meta:
        model = ScoringRule
        fields = [
            "id",
            "model",
            "kind",
            "name",
            "condition",
            "match",
            "points",
            "cap",
            "cap_days",
            "position",
            "is_active",
        ]


class ScoringModelSerializer(UnitOnCreateMixin, serializers.ModelSerializer[ScoringModel]):
    unit = VisibleUnitField()
    tier = serializers.ChoiceField(choices=Tier.choices, default=Tier.ANY)
    bands = serializers.JSONField(
        required=False,
        help_text='Ascending thresholds: [{"min": 40, "temperature": "warm"}, '
        '{"min": 70, "temperature": "hot"}]; below the first, cold.',
    )
    rules = ScoringRuleSerializer(many=True, read_only=True)

    class Meta:
        model = ScoringModel
        fields = [
            "id",
            "unit",
            "name",
            "tier",
            "description",
            "is_active",
            "half_life_days",
            "bands",
            "version",
            "recompute_status",
            "recompute_progress",
            "recomputed_at",
            "created_at",
            "rules",
        ]
        read_only_fields = [
            "version",
            "recompute_status",
            "recompute_progress",
            "recomputed_at",
            "created_at",
        ]
        validators: list[Any] = []


class ScoringModelFilter(UnitFilter):
    class Meta:
        model = ScoringModel
        fields = ["unit", "tier", "is_active"]


class _Writes:
    @property
    def actor(self) -> User:
        return cast(User, self.request.user)  # type: ignore[attr-defined]

    def writable_model(self, model: ScoringModel) -> None:
        if model.unit_id not in self.writable_unit_ids():  # type: ignore[attr-defined]
            raise PermissionDenied(_("You may read this, but not change it."))


class ScoringModelViewSet(_Writes, ScopedModelViewSet):
    """Scoring models of the caller's units, each with its rules."""

    queryset = ScoringModel.objects.all()
    serializer_class = ScoringModelSerializer
    filterset_class = ScoringModelFilter
    read_permission = selectors.VIEW
    write_permission = selectors.EDIT
    ordering = ("id",)

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.prefetch_related("rules")

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        data = dict(serializer.validated_data)
        serializer.instance = services.scoring_model_create(
            unit=data["unit"],
            name=data["name"],
            tier=data.get("tier", Tier.ANY),
            description=data.get("description", ""),
            is_active=data.get("is_active", True),
            half_life_days=data.get("half_life_days"),
            bands=data.get("bands", []),
            acting_user=self.actor,
        )

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        model = cast(ScoringModel, serializer.instance)
        self.writable_model(model)
        data = {k: v for k, v in serializer.validated_data.items() if k != "unit"}
        serializer.instance = services.scoring_model_update(
            model=model, acting_user=self.actor, **data
        )

    def perform_destroy(self, instance: ScoringModel) -> None:
        self.writable_model(instance)
        services.scoring_model_delete(model=instance, acting_user=self.actor)

    @extend_schema(request=None, responses=ScoringModelSerializer)
    @action(detail=True, methods=["post"])
    def recompute(self, request: Request, pk: str | None = None) -> Response:
        """Recompute every contact's score in the background; poll the model for progress."""
        model = self.get_object()
        self.writable_model(model)
        services.scoring_model_recompute_request(model=model, acting_user=self.actor)
        model.refresh_from_db()
        return Response(self.get_serializer(model).data, status=202)

    @extend_schema(
        parameters=[OpenApiParameter("contact", int, required=True)],
        responses={200: dict},
    )
    @action(detail=True, methods=["get"])
    def explain(self, request: Request, pk: str | None = None) -> Response:
        """Why a contact has its score: fit rules that hold and activities that counted."""
        model = self.get_object()
        raw = request.query_params.get("contact", "")
        if not raw.isdigit():
            raise ValidationError({"contact": [_("Give the id of a contact.")]})
        contact = selectors.contact_visible_for_scoring(user=self.actor, pk=int(raw))
        if contact is None:
            raise NotFound(_("No such contact."))
        return Response(explanation_data(score_explain(model=model, contact=contact)))

    @extend_schema(responses={200: dict})
    @action(detail=True, methods=["get"])
    def distribution(self, request: Request, pk: str | None = None) -> Response:
        """How many contacts score in each band of values, and per temperature."""
        model = self.get_object()
        dist = selectors.score_distributions(user=self.actor, models=[model])[model.pk]
        return Response(
            {
                "model": model.pk,
                "contacts": dist.total,
                "temperatures": {t: dist.temperatures.get(t, 0) for t in Temperature.values},
                "buckets": [
                    {"from": str(b.low), "to": str(b.high), "contacts": b.count}
                    for b in dist.buckets
                ],
            }
        )


class ScoringRuleFilter(django_filters.FilterSet):
    model = django_filters.NumberFilter(field_name="model_id")

    class Meta:
        model = ScoringRule
        fields = ["model", "kind"]


class ScoringRuleWriteSerializer(ScoringRuleSerializer):
    model = serializers.IntegerField(source="model_id")


class ScoringRuleViewSet(_Writes, ScopedModelViewSet):
    """Rules of the caller's scoring models. Any change recomputes the model's scores."""

    queryset = ScoringRule.objects.all()
    serializer_class = ScoringRuleSerializer
    filterset_class = ScoringRuleFilter
    read_permission = selectors.VIEW
    write_permission = selectors.EDIT
    ordering = ("id",)

    def get_serializer_class(self) -> Any:
        return ScoringRuleWriteSerializer if self.action == "create" else ScoringRuleSerializer

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("model")

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        data = dict(serializer.validated_data)
        model = selectors.scoring_model_visible(user=self.actor, pk=data.pop("model_id"))
        if model is None:
            raise ValidationError({"model": [_("No such scoring model.")]})
        self.writable_model(model)
        serializer.instance = services.scoring_rule_create(
            model=model, acting_user=self.actor, **data
        )

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        rule = cast(ScoringRule, serializer.instance)
        self.writable_model(rule.model)
        data = {k: v for k, v in serializer.validated_data.items() if k not in ("model_id", "kind")}
        serializer.instance = services.scoring_rule_update(
            rule=rule, acting_user=self.actor, **data
        )

    def perform_destroy(self, instance: ScoringRule) -> None:
        self.writable_model(instance.model)
        services.scoring_rule_delete(rule=instance, acting_user=self.actor)


class ContactScoresView(APIView):
    """Every scoring model's score for one contact, with the explanation of each."""

    @extend_schema(responses={200: dict})
    def get(self, request: Request, pk: int) -> Response:
        user = cast(User, request.user)
        contact = selectors.contact_visible_for_scoring(user=user, pk=pk)
        if contact is None:
            raise NotFound(_("No such contact."))
        rows = selectors.contact_scores(user=user, contact=contact)
        return Response(
            {
                "contact": contact.pk,
                "scores": [
                    {
                        "model": row.score.model_id,
                        "model_name": row.score.model.name,
                        "tier": row.score.model.tier,
                        "fit": str(row.score.fit),
                        "engagement": str(row.score.engagement),
                        "total": str(row.score.total),
                        "temperature": row.score.temperature,
                        "computed_at": row.score.computed_at.isoformat(),
                        "explanation": explanation_data(
                            score_explain(model=row.score.model, contact=contact)
                        ),
                    }
                    for row in rows
                ],
            }
        )


def register(router: BaseRouter) -> None:
    router.register("scoring-models", ScoringModelViewSet, basename="scoring-model")
    router.register("scoring-rules", ScoringRuleViewSet, basename="scoring-rule")
