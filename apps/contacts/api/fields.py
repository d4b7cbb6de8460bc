"""API: custom fields of the caller's units (客户类型 with each unit's own options).

A field's key and type are set when it is created. Fields are deactivated, not deleted:
contacts keep their stored values. Removing an option contacts still hold is refused.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.routers import BaseRouter

from apps.contacts.api.tags import ConfigViewSet, UnitFilter, UnitOnCreateMixin
from apps.contacts.models import CustomField, CustomFieldType
from apps.contacts.services import config as services
from apps.core.api_base import VisibleUnitField


class OptionSerializer(serializers.Serializer[Any]):
    value = serializers.CharField(max_length=50, help_text="What is stored, e.g. ka.")
    label = serializers.CharField(  # type: ignore[assignment]
        max_length=100, required=False, help_text="What people see."
    )


class CustomFieldSerializer(UnitOnCreateMixin, serializers.ModelSerializer[CustomField]):
    unit = VisibleUnitField()
    type = serializers.ChoiceField(choices=CustomFieldType.choices)
    options = OptionSerializer(many=True, required=False)
    position = serializers.IntegerField(min_value=0, max_value=32767, required=False)

    class Meta:
        model = CustomField
        fields = [
            "id",
            "unit",
            "key",
            "label",
            "type",
            "options",
            "position",
            "is_active",
            "created_at",
        ]
        read_only_fields = ["created_at"]
        create_only = ("unit", "key", "type")


class CustomFieldFilter(UnitFilter):
    class Meta:
        model = CustomField
        fields = ["unit", "is_active"]


class CustomFieldViewSet(ConfigViewSet):
    """Custom contact fields. Values are stored on contacts under the field's id."""

    queryset = CustomField.objects.all()
    serializer_class = CustomFieldSerializer
    filterset_class = CustomFieldFilter
    # Deactivate instead of deleting: a deleted field would orphan every stored value.
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def create_through_service(self, data: dict[str, Any]) -> CustomField:
        return services.custom_field_create(
            unit=data["unit"],
            key=data["key"],
            label=data["label"],
            field_type=data["type"],
            options=[dict(o) for o in data.get("options") or []],
            position=data.get("position"),
            acting_user=self.actor,
        )

    def update_through_service(self, obj: CustomField, data: dict[str, Any]) -> CustomField:
        field = services.custom_field_update(
            field=obj,
            label=data["label"],
            options=[dict(o) for o in data.get("options") or []],
            is_active=data["is_active"],
            acting_user=self.actor,
        )
        if data.get("position") is not None and data["position"] != field.position:
            ids = list(
                CustomField.objects.visible_to(self.request.user, "contacts.configure")
                .filter(unit_id=field.unit_id)
                .exclude(pk=field.pk)
                .order_by("position", "id")
                .values_list("id", flat=True)
            )
            ids.insert(min(data["position"], len(ids)), field.pk)
            services.custom_fields_reorder(unit=field.unit, field_ids=ids, acting_user=self.actor)
            field.refresh_from_db()
        return field


def register(router: BaseRouter) -> None:
    router.register("custom-fields", CustomFieldViewSet, basename="custom-field")
