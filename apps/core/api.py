from __future__ import annotations

from typing import Any

import django_filters
from django.db import models
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core import selectors, services
from apps.core.api_base import ScopedReadOnlyViewSet, ScopedViewSetMixin
from apps.core.models import ApiToken, AuditLog, BusinessUnit, User
from apps.core.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenSerializer,
    AuditLogSerializer,
    BusinessUnitSerializer,
    MeSerializer,
)


class MeView(APIView):
    """The calling user, their memberships and the surfaces they may open."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        user: User = request.user  # type: ignore[assignment]
        user.membership_rows = selectors.memberships_of(user=user)  # type: ignore[attr-defined]
        user.surface_keys = selectors.user_surfaces(user=user)  # type: ignore[attr-defined]
        return Response(MeSerializer(user).data)


class BusinessUnitViewSet(ScopedReadOnlyViewSet):
    """Business units the caller belongs to (a group membership includes its units)."""

    queryset = BusinessUnit.objects.all()
    serializer_class = BusinessUnitSerializer
    ordering = ("id",)
    filterset_fields = ["parent", "is_active"]


class AuditLogFilter(django_filters.FilterSet):
    action = django_filters.CharFilter(lookup_expr="startswith")
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditLog
        fields = ["action", "unit", "actor", "object_type", "object_id"]


class AuditLogViewSet(ScopedReadOnlyViewSet):
    """Every recorded change in the caller's units, newest first. Needs the admin or
    sales-manager role."""

    queryset = AuditLog.objects.all()
    serializer_class = AuditLogSerializer
    read_permission = "core.view_audit"
    filterset_class = AuditLogFilter
    ordering = ("-id",)


class ApiTokenViewSet(
    ScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,  # type: ignore[type-arg]
):
    """The caller's own API tokens. The secret is returned once, on creation."""

    queryset = ApiToken.objects.all()
    serializer_class = ApiTokenSerializer
    read_permission = "core.use_api"
    ordering = ("-id",)

    def scope_queryset(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        # A token is personal: even an administrator's API lists only their own.
        return queryset.filter(user=self.request.user)

    @extend_schema(request=ApiTokenSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = ApiTokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, raw = services.api_token_create(
            user=request.user,  # type: ignore[arg-type]
            name=serializer.validated_data["name"],
            expires_at=serializer.validated_data.get("expires_at"),
            acting_user=request.user,  # type: ignore[arg-type]
        )
        data = ApiTokenCreatedSerializer(token).data
        data["token"] = raw
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ApiTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        token = services.api_token_revoke(token=self.get_object(), acting_user=request.user)  # type: ignore[arg-type]
        return Response(ApiTokenSerializer(token).data)
