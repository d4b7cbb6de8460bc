"""API: tag groups and tags (manual and rule) of the caller's units.

Anyone who may view contacts may read them; writing needs ``contacts.configure`` in the
object's unit. Writes go through ``services.config`` (audited). A rule tag saved here is
applied in the background right after the transaction commits; ``POST
/tags/{id}/apply/`` applies it at once.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import django_filters
from django.db import models
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from apps.contacts.models import Tag, TagGroup, TagKind
from apps.contacts.services import config as services
from apps.contacts.tasks.tag_rules import apply_tag_rule
from apps.core.api_base import ScopedModelViewSet, VisibleUnitField
from apps.core.models import User
from apps.core.tasks import enqueue_on_commit

CONFIGURE = "contacts.configure"


# --- Shared by the configuration APIs (tags, custom fields, channels, campaigns) -----------


class ConfigViewSet(ScopedModelViewSet):
    """Read with ``contacts.view``; write with ``contacts.configure`` in the row's unit."""

    read_permission = "contacts.view"
    write_permission = CONFIGURE
    ordering = ("id",)

    @property
    def actor(self) -> User:
        return cast(User, self.request.user)

    def writable(self, obj: Any) -> None:
        if getattr(obj, "unit_id", None) not in self.writable_unit_ids():
            raise PermissionDenied(_("You may read this, but not change it."))

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        self.writable(serializer.instance)
        serializer.instance = self.update_through_service(
            serializer.instance, self.merged(serializer)
        )

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        serializer.instance = self.create_through_service(dict(serializer.validated_data))

    def merged(self, serializer: serializers.BaseSerializer[Any]) -> dict[str, Any]:
        """What the row should hold after this (possibly partial) update."""
        data: dict[str, Any] = dict(serializer.validated_data)
        for name, field in serializer.fields.items():  # type: ignore[attr-defined]
            if name not in data and not field.read_only:
                data[field.source] = getattr(serializer.instance, field.source)
        return data

    def create_through_service(self, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def update_through_service(self, obj: Any, data: dict[str, Any]) -> Any:
        raise NotImplementedError


class UnitOnCreateMixin:
    """``unit`` is chosen when a row is created and never moves afterwards."""

    instance: Any

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()  # type: ignore[misc]
        if self.instance is not None:
            for name in getattr(self.Meta, "create_only", ("unit",)):  # type: ignore[attr-defined]
                fields[name].read_only = True
        return fields


class UnitFilter(django_filters.FilterSet):
    # A plain number, not a choice of every unit: an id the caller cannot see simply
    # matches nothing (no "does not exist" oracle).
    unit = django_filters.NumberFilter(field_name="unit_id")


class ScopedRelatedField(serializers.PrimaryKeyRelatedField):  # type: ignore[type-arg]
    """A related row of the caller's writable units (others read as "does not exist")."""

    model: ClassVar[type[models.Model]]

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", self.model._default_manager.none())
        super().__init__(**kwargs)

    def get_queryset(self) -> models.QuerySet[Any]:
        request = self.context.get("request")
        return self.model.objects.visible_to(getattr(request, "user", None), CONFIGURE)  # type: ignore[attr-defined]


# --- Tag groups ----------------------------------------------------------------------------


class TagGroupSerializer(UnitOnCreateMixin, serializers.ModelSerializer[TagGroup]):
    unit = VisibleUnitField()

    class Meta:
        model = TagGroup
        fields = ["id", "unit", "name", "position"]
        # Uniqueness is the database's; the service reports a clash clearly.
        validators: list[Any] = []


class TagGroupFilter(UnitFilter):
    class Meta:
        model = TagGroup
        fields = ["unit"]


class TagGroupViewSet(ConfigViewSet):
    """Tag groups ("Industry", "Intent"…) of the caller's units."""

    queryset = TagGroup.objects.all()
    serializer_class = TagGroupSerializer
    filterset_class = TagGroupFilter

    def create_through_service(self, data: dict[str, Any]) -> TagGroup:
        return services.tag_group_create(
            unit=data["unit"],
            name=data["name"],
            position=data.get("position") or 0,
            acting_user=self.actor,
        )

    def update_through_service(self, obj: TagGroup, data: dict[str, Any]) -> TagGroup:
        return services.tag_group_update(
            group=obj, name=data["name"], position=data["position"], acting_user=self.actor
        )

    def perform_destroy(self, instance: TagGroup) -> None:
        self.writable(instance)
        services.tag_group_delete(group=instance, acting_user=self.actor)


# --- Tags ----------------------------------------------------------------------------------


class TagGroupRefField(ScopedRelatedField):
    model = TagGroup


class TagSerializer(UnitOnCreateMixin, serializers.ModelSerializer[Tag]):
    unit = VisibleUnitField()
    group = TagGroupRefField(allow_null=True, required=False)
    kind = serializers.ChoiceField(choices=TagKind.choices, default=TagKind.MANUAL)
    rule = serializers.JSONField(
        allow_null=True,
        required=False,
        help_text=(
            'For rule tags: the condition, e.g. {"activity": {"type": "download", "days": 30, '
            '"min_count": 3}}. Errors name the node at fault ("all[1].op: …").'
        ),
    )

    class Meta:
        model = Tag
        fields = ["id", "unit", "group", "name", "kind", "rule", "rule_applied_at", "created_at"]
        read_only_fields = ["rule_applied_at", "created_at"]
        create_only = ("unit", "kind")
        validators: list[Any] = []


class ApplyResultSerializer(serializers.Serializer[Any]):
    added = serializers.IntegerField()
    removed = serializers.IntegerField()


class TagFilter(UnitFilter):
    group = django_filters.NumberFilter(field_name="group_id")

    class Meta:
        model = Tag
        fields = ["unit", "group", "kind"]


class TagViewSet(ConfigViewSet):
    """Tags of the caller's units. Rule tags put themselves on matching contacts."""

    queryset = Tag.objects.all()
    serializer_class = TagSerializer
    filterset_class = TagFilter

    def scope_queryset(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        return queryset.select_related("group")

    def create_through_service(self, data: dict[str, Any]) -> Tag:
        tag = services.tag_create(
            unit=data["unit"],
            name=data["name"],
            kind=data.get("kind", TagKind.MANUAL),
            group=data.get("group"),
            rule=data.get("rule"),
            acting_user=self.actor,
        )
        if tag.kind == TagKind.RULE:
            enqueue_on_commit(apply_tag_rule, tag.pk)
        return tag

    def update_through_service(self, obj: Tag, data: dict[str, Any]) -> Tag:
        rule_before = obj.rule
        tag = services.tag_update(
            tag=obj,
            name=data["name"],
            group=data.get("group"),
            rule=data.get("rule"),
            acting_user=self.actor,
        )
        if tag.kind == TagKind.RULE and tag.rule != rule_before:
            enqueue_on_commit(apply_tag_rule, tag.pk)
        return tag

    def perform_destroy(self, instance: Tag) -> None:
        self.writable(instance)
        services.tag_delete(tag=instance, acting_user=self.actor)

    @extend_schema(request=None, responses=ApplyResultSerializer)
    @action(detail=True, methods=["post"])
    def apply(self, request: Request, pk: str | None = None) -> Response:
        """Apply a rule tag now: tag the contacts that match, untag those that stopped."""
        tag = self.get_object()
        self.writable(tag)
        if tag.kind != TagKind.RULE:
            raise serializers.ValidationError({"kind": [_("Only a rule tag can be applied.")]})
        result = services.tag_rule_apply_now(tag=tag, acting_user=request.user)  # type: ignore[arg-type]
        return Response(ApplyResultSerializer(result).data)


def register(router: BaseRouter) -> None:
    router.register("tag-groups", TagGroupViewSet, basename="tag-group")
    router.register("tags", TagViewSet, basename="tag")
