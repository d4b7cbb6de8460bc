from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.models import ApiToken, AuditLog, BusinessUnit, User


class BusinessUnitSerializer(serializers.ModelSerializer[BusinessUnit]):
    is_group = serializers.BooleanField(read_only=True)

    class Meta:
        model = BusinessUnit
        fields = ["id", "code", "name", "parent", "is_group", "time_zone", "is_active"]
        read_only_fields = fields


class MembershipSerializer(serializers.Serializer[Any]):
    unit = serializers.IntegerField()
    unit_code = serializers.CharField()
    unit_name = serializers.CharField()
    role = serializers.CharField()
    role_label = serializers.CharField()
    is_group = serializers.BooleanField()


class MeSerializer(serializers.ModelSerializer[User]):
    # Filled in by the view from selectors (see MeView), not from the related manager.
    memberships = MembershipSerializer(many=True, read_only=True, source="membership_rows")
    surfaces = serializers.ListField(
        child=serializers.CharField(), read_only=True, source="surface_keys"
    )

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "display_name",
            "email",
            "language",
            "time_zone",
            "memberships",
            "surfaces",
        ]
        read_only_fields = fields


class AuditLogSerializer(serializers.ModelSerializer[AuditLog]):
    class Meta:
        model = AuditLog
        fields = [
            "id",
            "created_at",
            "actor",
            "actor_label",
            "action",
            "unit",
            "object_type",
            "object_id",
            "object_repr",
            "before",
            "after",
        ]
        read_only_fields = fields


class ApiTokenSerializer(serializers.ModelSerializer[ApiToken]):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "key_prefix",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
            "is_active",
        ]
        read_only_fields = [
            "id",
            "key_prefix",
            "created_at",
            "last_used_at",
            "revoked_at",
            "is_active",
        ]


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(
        read_only=True, help_text="The secret. Shown only in this response; store it now."
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
