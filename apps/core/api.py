from __future__ import annotations

from typing import Any

import django_filters
from django.db import models
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core import selectors, services
from apps.core.api_base import ScopedReadOnlyViewSet, ScopedViewSetMixin
from apps.core.models import ApiToken, AuditLog, BusinessUnit, Notification, User
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


class NotificationSerializer(serializers.ModelSerializer[Notification]):
    class Meta:
        model = Notification
        fields = ["id", "kind", "title", "body", "url", "unit", "created_at", "read_at"]
        read_only_fields = fields


class NotificationReadSerializer(serializers.Serializer[Any]):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=500,
        help_text="The notifications to mark read; leave out to mark every unread one.",
    )


class NotificationFilter(django_filters.FilterSet):
    unread = django_filters.BooleanFilter(field_name="read_at", lookup_expr="isnull")

    class Meta:
        model = Notification
        fields = ["unread", "kind"]


class NotificationViewSet(ScopedReadOnlyViewSet):
    """The caller's own notifications, newest first (nobody reads anyone else's)."""

    queryset = Notification.objects.all()
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilter
    ordering = ("-id",)

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        notice = self.get_object()
        services.notifications_mark_read(user=request.user, ids=[notice.pk])  # type: ignore[arg-type]
        notice.refresh_from_db()
        return Response(NotificationSerializer(notice).data)

    @extend_schema(
        operation_id="notifications_read_many",
        request=NotificationReadSerializer,
        responses={
            200: inline_serializer("NotificationsRead", {"marked": serializers.IntegerField()})
        },
    )
    @action(detail=False, methods=["post"], url_path="read", url_name="read-many")
    def read_many(self, request: Request) -> Response:
        serializer = NotificationReadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ids = serializer.validated_data.get("ids")
        marked = services.notifications_mark_read(user=request.user, ids=ids)  # type: ignore[arg-type]
        return Response({"marked": marked})
