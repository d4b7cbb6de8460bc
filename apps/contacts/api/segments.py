"""API: segments ("smart groups") of the caller's units.

Read with ``contacts.segments``; create, change, archive, rebuild and edit static lists
with ``contacts.segments.edit`` in the segment's unit. ``DELETE`` archives. A definition
is the rule language of ``services.tag_rules``; errors name the node at fault
(``fields.definition: ["all[1].op: …"]``).

``POST /api/v1/segments/preview`` counts and samples what a definition (not saved) would
match, with the planner's cost; send the same ``editor`` token with each preview of one
open editor and a newer preview cancels the older one still running.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from apps.contacts.api.tags import ConfigViewSet, UnitFilter, UnitOnCreateMixin
from apps.contacts.models import Segment, SegmentKind
from apps.contacts.selectors import segments as selectors
from apps.contacts.services import segments as services
from apps.core.api_base import VisibleUnitField
from apps.core.api_pagination import KeysetPagination
from apps.core.models import User

DEFINITION_HELP = (
    'Nested {"all": [...]}, {"any": [...]}, {"not": {...}} over conditions such as '
    '{"field": "industry", "op": "eq", "value": "生物医药"}, {"tag": 7}, {"segment": 3}, '
    '{"consent": {"channel": "email", "state": "withdrawn"}}, '
    '{"activity": {"type": "content_view", "days": 7, "min_count": 3, '
    '"properties": {"topic": "单细胞"}}}. Null for a static list.'
)


class SegmentSerializer(UnitOnCreateMixin, serializers.ModelSerializer[Segment]):
    unit = VisibleUnitField()
    kind = serializers.ChoiceField(choices=SegmentKind.choices, default=SegmentKind.DYNAMIC)
    definition = serializers.JSONField(allow_null=True, required=False, help_text=DEFINITION_HELP)
    rebuild_every_minutes = serializers.IntegerField(required=False, default=60)

    class Meta:
        model = Segment
        fields = [
            "id",
            "unit",
            "name",
            "description",
            "kind",
            "definition",
            "version",
            "built_version",
            "status",
            "progress_done",
            "progress_total",
            "last_error",
            "rebuild_started_at",
            "rebuilt_at",
            "rebuild_every_minutes",
            "size",
            "is_active",
            "created_at",
        ]
        read_only_fields = [
            "version",
            "built_version",
            "status",
            "progress_done",
            "progress_total",
            "last_error",
            "rebuild_started_at",
            "rebuilt_at",
            "size",
            "is_active",
            "created_at",
        ]
        create_only = ("unit", "kind")
        validators: list[Any] = []


class SegmentFilter(UnitFilter):
    class Meta:
        model = Segment
        fields = ["unit", "kind", "is_active", "status"]


class ContactIdsSerializer(serializers.Serializer[Any]):
    contacts = serializers.ListField(child=serializers.JSONField(), allow_empty=False)


class ChangedSerializer(serializers.Serializer[Any]):
    changed = serializers.IntegerField()


class MemberSerializer(serializers.Serializer[Any]):
    contact = serializers.IntegerField(source="contact_id")
    name = serializers.CharField(source="contact.name")
    company = serializers.CharField(source="contact.company_name")
    since = serializers.DateTimeField()


class SizeSerializer(serializers.Serializer[Any]):
    at = serializers.DateTimeField()
    size = serializers.IntegerField()
    entered = serializers.IntegerField()
    left = serializers.IntegerField()


class SegmentViewSet(ConfigViewSet):
    """Segments: dynamic (conditions, rebuilt in the background) or static lists."""

    queryset = Segment.objects.all()
    serializer_class = SegmentSerializer
    filterset_class = SegmentFilter
    read_permission = selectors.SEGMENTS
    write_permission = selectors.EDIT

    def create_through_service(self, data: dict[str, Any]) -> Segment:
        return services.segment_create(
            unit=data["unit"],
            name=data["name"],
            kind=data.get("kind", SegmentKind.DYNAMIC),
            definition=data.get("definition"),
            description=data.get("description", ""),
            rebuild_every_minutes=data.get("rebuild_every_minutes", 60),
            acting_user=self.actor,
        )

    def update_through_service(self, obj: Segment, data: dict[str, Any]) -> Segment:
        return services.segment_update(
            segment=obj,
            name=data["name"],
            definition=data.get("definition"),
            description=data.get("description", ""),
            rebuild_every_minutes=data.get("rebuild_every_minutes"),
            acting_user=self.actor,
        )

    def perform_destroy(self, instance: Segment) -> None:
        self.writable(instance)
        services.segment_archive(segment=instance, acting_user=self.actor)

    @extend_schema(request=None, responses=SegmentSerializer)
    @action(detail=True, methods=["post"])
    def rebuild(self, request: Request, pk: str | None = None) -> Response:
        """Queue a rebuild of the segment's current version (progress shows on the row)."""
        segment = self.get_object()
        self.writable(segment)
        segment = services.segment_rebuild_request(segment=segment, acting_user=self.actor)
        return Response(SegmentSerializer(segment, context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses=MemberSerializer(many=True))
    @action(detail=True, methods=["get"])
    def members(self, request: Request, pk: str | None = None) -> Response:
        """Members with their name and company, keyset-paged (``cursor``)."""
        segment = self.get_object()
        paginator = KeysetPagination()
        rows = paginator.paginate_queryset(
            selectors.segment_members(user=self.actor, segment=segment), request, view=self
        )
        return paginator.get_paginated_response(MemberSerializer(rows, many=True).data)

    @extend_schema(request=ContactIdsSerializer, responses=ChangedSerializer)
    @action(detail=True, methods=["post"], url_path="members/add")
    def members_add(self, request: Request, pk: str | None = None) -> Response:
        """Static lists: add contacts by id (ones you cannot see are ignored)."""
        segment = self.get_object()
        self.writable(segment)
        body = ContactIdsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        added = services.segment_members_add(
            segment=segment, contact_ids=body.validated_data["contacts"], acting_user=self.actor
        )
        return Response({"changed": added})

    @extend_schema(request=ContactIdsSerializer, responses=ChangedSerializer)
    @action(detail=True, methods=["post"], url_path="members/remove")
    def members_remove(self, request: Request, pk: str | None = None) -> Response:
        """Static lists: remove contacts by id."""
        segment = self.get_object()
        self.writable(segment)
        body = ContactIdsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        removed = services.segment_members_remove(
            segment=segment, contact_ids=body.validated_data["contacts"], acting_user=self.actor
        )
        return Response({"changed": removed})

    @extend_schema(request=None, responses=SizeSerializer(many=True))
    @action(detail=True, methods=["get"])
    def sizes(self, request: Request, pk: str | None = None) -> Response:
        """Size after each rebuild, newest first, keyset-paged."""
        segment = self.get_object()
        paginator = KeysetPagination()
        rows = paginator.paginate_queryset(
            selectors.segment_sizes(user=self.actor, segment=segment), request, view=_Newest()
        )
        return paginator.get_paginated_response(SizeSerializer(rows, many=True).data)


class _Newest:
    ordering = ("-id",)


class PreviewIn(serializers.Serializer[Any]):
    unit = serializers.IntegerField()
    definition = serializers.JSONField()
    editor = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")


class SampleSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    company = serializers.CharField()


class PreviewOut(serializers.Serializer[Any]):
    count = serializers.IntegerField(allow_null=True)
    sample = SampleSerializer(many=True)
    cost = serializers.FloatField(allow_null=True)
    timed_out = serializers.BooleanField()
    cancelled = serializers.BooleanField()


@extend_schema(request=PreviewIn, responses=PreviewOut)
@api_view(["POST"])
@permission_classes([IsAuthenticated])
def segment_preview(request: Request) -> Response:
    """Count, a sample of 20 and the planner's cost of a definition, or 400 naming nodes."""
    body = PreviewIn(data=request.data)
    body.is_valid(raise_exception=True)
    user: User = request.user  # type: ignore[assignment]
    units = {u.pk: u for u in selectors.segment_units(user=user)}
    unit = units.get(body.validated_data["unit"])
    if unit is None:
        raise serializers.ValidationError({"unit": [_("No business unit with this id.")]})
    preview = selectors.segment_preview(
        user=user,
        unit=unit,
        definition=body.validated_data["definition"],
        editor=body.validated_data["editor"],
    )
    if preview.problems:
        raise serializers.ValidationError({"definition": preview.problems})
    return Response(
        PreviewOut(
            {
                "count": preview.count,
                "sample": preview.sample,
                "cost": preview.cost,
                "timed_out": preview.timed_out,
                "cancelled": preview.cancelled,
            }
        ).data
    )


@csrf_exempt  # the DRF view it hands over to checks CSRF for session logins itself
def segment_preview_slash(request: HttpRequest) -> HttpResponseBase:
    """The same, for clients that add the router's trailing slash (not in the schema)."""
    return segment_preview(request)  # type: ignore[no-any-return]


urlpatterns = [
    path("segments/preview", segment_preview, name="segment-preview"),
    path("segments/preview/", segment_preview_slash),
]


def register(router: BaseRouter) -> None:
    router.register("segments", SegmentViewSet, basename="segment")
