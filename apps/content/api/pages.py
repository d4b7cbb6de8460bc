"""API: landing pages (``/api/v1/landing-pages/``).

Read with ``content.view``; write with ``content.edit`` in the page's unit. ``blocks`` is
the ordered list described in ``apps.content.blocks`` (heading, text, image, form, asset,
cta, spacer, divider); a bad block is refused with its index and field
(``blocks.2.level``). ``POST …/publish/``, ``…/unpublish/``, ``…/duplicate/`` act on a
page, ``GET …/preview/`` hands out an hour-long preview address. Each page carries
``stats`` over the last ``?days=`` (7, 30 or 90; 30 by default).
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlencode

import django_filters
from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from apps.contacts.models import Campaign, Channel
from apps.content.api.assets import ContentViewSet, StatsField, UnitRelatedField
from apps.content.models import LandingPage, PageStatus
from apps.content.selectors import pages as selectors
from apps.content.services import pages as services
from apps.core.api_base import VisibleUnitField


class ChannelField(UnitRelatedField):
    model = Channel


class CampaignField(UnitRelatedField):
    model = Campaign


class LandingPageSerializer(serializers.ModelSerializer[LandingPage]):
    unit = VisibleUnitField()
    # Checked by the service (lowercase a–z, 0–9, hyphens; not reserved; not taken).
    slug = serializers.CharField(max_length=services.SLUG_MAX)
    blocks = serializers.JSONField(
        required=False,
        help_text='Ordered blocks, e.g. [{"type": "heading", "text": "…", "level": 1}, '
        '{"type": "text", "html": "<p>…</p>"}, {"type": "form", "form": 12}].',
    )
    channel = ChannelField(allow_null=True, required=False)
    campaign = CampaignField(allow_null=True, required=False)
    public_url = serializers.SerializerMethodField()
    stats = StatsField(
        help_text="Over the last ?days= (default 30): visits, unique_visitors, submissions, "
        "conversion_rate (percent, null before any visit)."
    )

    class Meta:
        model = LandingPage
        fields = [
            "id",
            "unit",
            "title",
            "slug",
            "seo_title",
            "seo_description",
            "blocks",
            "status",
            "published_at",
            "channel",
            "campaign",
            "public_url",
            "created_at",
            "updated_at",
            "stats",
        ]
        read_only_fields = ["status", "published_at", "created_at", "updated_at"]

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        if self.instance is not None and not isinstance(self.instance, list):
            fields["unit"].read_only = True
        return fields

    def get_public_url(self, obj: LandingPage) -> str:
        request = self.context.get("request")
        path = reverse("page-public", args=[obj.slug])
        return request.build_absolute_uri(path) if request is not None else path

    @staticmethod
    def stats_dict(stats: selectors.PageStats) -> dict[str, Any]:
        return {
            "visits": stats.visits,
            "unique_visitors": stats.unique_visitors,
            "submissions": stats.submissions,
            "conversion_rate": stats.conversion_rate,
        }


class LandingPageFilter(django_filters.FilterSet):
    unit = django_filters.NumberFilter(field_name="unit_id")
    status = django_filters.ChoiceFilter(choices=PageStatus.choices)

    class Meta:
        model = LandingPage
        fields = ["unit", "status", "slug"]


class LandingPageViewSet(ContentViewSet):
    """Landing pages built from blocks, published at ``/p/<slug>/``."""

    queryset = LandingPage.objects.all()
    serializer_class = LandingPageSerializer
    filterset_class = LandingPageFilter

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("unit")

    def stats_for(self, ids: list[int]) -> dict[int, Any]:
        return selectors.page_stats(
            user=self.actor, page_ids=ids, since=selectors.period_start(self.days())
        )

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        data = dict(serializer.validated_data)
        serializer.instance = services.page_create(
            unit=data["unit"],
            title=data["title"],
            slug=data["slug"],
            seo_title=data.get("seo_title", ""),
            seo_description=data.get("seo_description", ""),
            blocks=data.get("blocks") or [],
            channel=data.get("channel"),
            campaign=data.get("campaign"),
            acting_user=self.actor,
        )

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        page = cast(LandingPage, serializer.instance)
        self.writable(page)
        data = self.merged(serializer)
        data.pop("unit", None)
        serializer.instance = services.page_update(page=page, acting_user=self.actor, **data)

    def perform_destroy(self, instance: LandingPage) -> None:
        self.writable(instance)
        services.page_delete(page=instance, acting_user=self.actor)

    def _act(self, verb: Any) -> Response:
        page = self.get_object()
        self.writable(page)
        result = verb(page=page, acting_user=self.actor)
        return Response(self.get_serializer(result).data)

    @extend_schema(request=None, responses=LandingPageSerializer)
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        """Put the page live at its public address (``published_at`` is set)."""
        return self._act(services.page_publish)

    @extend_schema(request=None, responses=LandingPageSerializer)
    @action(detail=True, methods=["post"])
    def unpublish(self, request: Request, pk: str | None = None) -> Response:
        """Take the page down: its public address answers 404."""
        return self._act(services.page_unpublish)

    @extend_schema(request=None, responses={201: LandingPageSerializer})
    @action(detail=True, methods=["post"])
    def duplicate(self, request: Request, pk: str | None = None) -> Response:
        """A draft copy in the same unit at ``<slug>-copy``."""
        page = self.get_object()
        self.writable(page)
        copy = services.page_duplicate(page=page, acting_user=self.actor)
        return Response(self.get_serializer(copy).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "LandingPagePreview",
            {"url": serializers.URLField(), "expires_in": serializers.IntegerField()},
        ),
    )
    @action(detail=True, methods=["get"])
    def preview(self, request: Request, pk: str | None = None) -> Response:
        """An address that shows the page, draft or not, for an hour (editors only)."""
        page = self.get_object()
        self.writable(page)
        token = services.page_preview_token(page=page, user_id=self.actor.pk)
        path = reverse("page-public", args=[page.slug])
        return Response(
            {
                "url": request.build_absolute_uri(f"{path}?{urlencode({'preview': token})}"),
                "expires_in": services.PREVIEW_MAX_AGE,
            }
        )


def register(router: BaseRouter) -> None:
    router.register("landing-pages", LandingPageViewSet, basename="landing-page")
