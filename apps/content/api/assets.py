"""API: the content library (``/api/v1/assets/``).

Read with ``content.view``; write with ``content.edit`` in the asset's unit. Files are
uploaded as ``multipart/form-data`` (field ``upload``) and checked before anything is
stored (type, size, contents). ``DELETE`` archives: the asset stops being delivered and
leaves the library, its history stays; ``POST …/restore/`` brings it back. Each asset
carries ``stats`` over the last ``?days=`` (7, 30 or 90; 30 by default).
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import django_filters
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from apps.content.models import Asset, AssetKind, BuyingStage, Form
from apps.content.selectors import assets as selectors
from apps.content.selectors import pages as page_selectors
from apps.content.services import assets as services
from apps.core.api_base import ScopedModelViewSet, VisibleUnitField
from apps.core.models import User

VIEW = page_selectors.VIEW
EDIT = page_selectors.EDIT


# --- Shared by the content APIs (assets, landing pages) ------------------------------------


class UnitRelatedField(serializers.PrimaryKeyRelatedField):  # type: ignore[type-arg]
    """A related row of a unit the caller may edit content in (others read as "does not
    exist"); the service checks it is of the object's own unit."""

    model: ClassVar[type[models.Model]]

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", self.model._default_manager.none())
        super().__init__(**kwargs)

    def get_queryset(self) -> models.QuerySet[Any]:
        request = self.context.get("request")
        return self.model.objects.visible_to(getattr(request, "user", None), EDIT)  # type: ignore[attr-defined]


class ContentViewSet(ScopedModelViewSet):
    """Read with ``content.view``; write with ``content.edit`` in the row's unit. Writes
    go through services; ``stats`` for a whole list page cost one or two queries."""

    read_permission = VIEW
    write_permission = EDIT
    ordering = ("-id",)

    @property
    def actor(self) -> User:
        return cast(User, self.request.user)

    def writable(self, obj: Any) -> None:
        if obj.unit_id not in self.writable_unit_ids():
            raise PermissionDenied(_("You may read this, but not change it."))

    def days(self) -> int:
        raw = self.request.query_params.get("days", "")
        return (
            int(raw)
            if raw.isdigit() and int(raw) in page_selectors.PERIODS
            else page_selectors.DEFAULT_DAYS
        )

    def stats_for(self, ids: list[int]) -> dict[int, Any]:
        raise NotImplementedError

    def paginate_queryset(self, queryset: Any) -> Any:
        page = super().paginate_queryset(queryset)
        if page is not None:
            self._stats = self.stats_for([obj.pk for obj in page])
        return page

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["stats"] = getattr(self, "_stats", None)
        context["stats_for"] = self.stats_for
        return context

    def merged(self, serializer: serializers.BaseSerializer[Any]) -> dict[str, Any]:
        """Only the fields sent (PATCH) or all writable ones (PUT)."""
        return dict(serializer.validated_data)


@extend_schema_field(OpenApiTypes.OBJECT)
class StatsField(serializers.Field):  # type: ignore[type-arg]
    """Performance over the period, from the view's per-page lookup (or one for this row)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.update(source="*", read_only=True)
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> Any:
        context = self.parent.context
        stats = context.get("stats")
        if stats is None or value.pk not in stats:
            stats = context["stats_for"]([value.pk])
        return self.parent.stats_dict(stats[value.pk])  # type: ignore[attr-defined]


# --- Assets --------------------------------------------------------------------------------


class GateFormField(UnitRelatedField):
    model = Form


class AssetSerializer(serializers.ModelSerializer[Asset]):
    unit = VisibleUnitField()
    kind = serializers.ChoiceField(choices=AssetKind.choices)
    buying_stage = serializers.ChoiceField(
        choices=BuyingStage.choices, required=False, allow_blank=True
    )
    personas = serializers.ListField(
        child=serializers.CharField(max_length=services.PERSONA_MAX),
        required=False,
        max_length=services.PERSONAS_MAX,
    )
    gate_form = GateFormField(allow_null=True, required=False)
    upload = serializers.FileField(
        write_only=True,
        required=False,
        help_text="The file (multipart/form-data): PDF, PPTX, DOCX, XLSX, PNG, JPG or MP4, "
        "at most 50 MB.",
    )
    file_name = serializers.SerializerMethodField()
    public_url = serializers.SerializerMethodField()
    stats = StatsField(
        help_text="Over the last ?days= (default 30): downloads, views, people, known_contacts."
    )

    class Meta:
        model = Asset
        fields = [
            "id",
            "unit",
            "title",
            "kind",
            "summary",
            "upload",
            "file_name",
            "url",
            "body",
            "topic",
            "buying_stage",
            "personas",
            "is_gated",
            "gate_form",
            "key",
            "public_url",
            "is_active",
            "created_at",
            "updated_at",
            "stats",
        ]
        read_only_fields = ["key", "is_active", "created_at", "updated_at"]
        extra_kwargs = {"body": {"help_text": "Articles: HTML, sanitised when saved."}}

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        if self.instance is not None and not isinstance(self.instance, list | models.QuerySet):
            fields["unit"].read_only = True
        return fields

    def get_file_name(self, obj: Asset) -> str:
        return obj.file.name.rsplit("/", 1)[-1] if obj.file else ""

    def get_public_url(self, obj: Asset) -> str:
        request = self.context.get("request")
        path = reverse("asset-public", args=[obj.key])
        return request.build_absolute_uri(path) if request is not None else path

    @staticmethod
    def stats_dict(stats: selectors.AssetStats) -> dict[str, int]:
        return {
            "downloads": stats.downloads,
            "views": stats.views,
            "people": stats.people,
            "known_contacts": stats.known_contacts,
        }


class AssetFilter(django_filters.FilterSet):
    # Plain numbers: an id the caller cannot see simply matches nothing.
    unit = django_filters.NumberFilter(field_name="unit_id")
    topic = django_filters.CharFilter(field_name="topic")
    persona = django_filters.CharFilter(method="by_persona")
    q = django_filters.CharFilter(method="by_text")

    class Meta:
        model = Asset
        fields = ["unit", "kind", "topic", "buying_stage", "is_gated", "is_active"]

    def by_persona(self, queryset: Any, name: str, value: str) -> Any:
        return queryset.filter(personas__contains=[value]) if value else queryset

    def by_text(self, queryset: Any, name: str, value: str) -> Any:
        if not value:
            return queryset
        return queryset.filter(
            models.Q(title__icontains=value) | models.Q(summary__icontains=value)
        )


class AssetViewSet(ContentViewSet):
    """The content library: files, videos by URL and articles, gated or open."""

    queryset = Asset.objects.all()
    serializer_class = AssetSerializer
    filterset_class = AssetFilter
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("unit", "gate_form")

    def stats_for(self, ids: list[int]) -> dict[int, Any]:
        return selectors.asset_stats(
            user=self.actor, asset_ids=ids, since=page_selectors.period_start(self.days())
        )

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        data = dict(serializer.validated_data)
        serializer.instance = services.asset_create(
            unit=data["unit"],
            title=data["title"],
            kind=data["kind"],
            summary=data.get("summary", ""),
            upload=data.get("upload"),
            url=data.get("url", ""),
            body=data.get("body", ""),
            topic=data.get("topic", ""),
            buying_stage=data.get("buying_stage", ""),
            personas=data.get("personas", []),
            is_gated=data.get("is_gated", False),
            gate_form=data.get("gate_form"),
            acting_user=self.actor,
        )

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        asset = cast(Asset, serializer.instance)
        self.writable(asset)
        data = self.merged(serializer)
        data.pop("unit", None)
        serializer.instance = services.asset_update(asset=asset, acting_user=self.actor, **data)

    def perform_destroy(self, instance: Asset) -> None:
        self.writable(instance)
        services.asset_archive(asset=instance, acting_user=self.actor)

    @extend_schema(request=None, responses=AssetSerializer)
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str | None = None) -> Response:
        """Bring an archived asset back to the library and its link back to life."""
        asset = self.get_object()
        self.writable(asset)
        services.asset_restore(asset=asset, acting_user=self.actor)
        return Response(self.get_serializer(asset).data)


def register(router: BaseRouter) -> None:
    router.register("assets", AssetViewSet, basename="asset")
