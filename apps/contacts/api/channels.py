"""API: channels (utm_source) and campaigns (utm_campaign, with cost in CNY).

Channels and campaigns are not deleted through the API: activities and contacts point at
them for attribution. Deactivate a channel instead.
"""

from __future__ import annotations

from typing import Any

import django_filters
from rest_framework import serializers
from rest_framework.routers import BaseRouter

from apps.contacts.api.tags import ConfigViewSet, ScopedRelatedField, UnitFilter, UnitOnCreateMixin
from apps.contacts.models import Campaign, Channel, ChannelKind
from apps.contacts.services import config as services
from apps.core.api_base import VisibleUnitField

NO_DELETE = ["get", "post", "put", "patch", "head", "options"]


class ChannelSerializer(UnitOnCreateMixin, serializers.ModelSerializer[Channel]):
    unit = VisibleUnitField()
    kind = serializers.ChoiceField(choices=ChannelKind.choices)

    class Meta:
        model = Channel
        fields = ["id", "unit", "code", "name", "kind", "is_active", "created_at"]
        read_only_fields = ["created_at"]
        # The database's unique (unit, code) is checked by the service, with a clear message.
        validators: list[Any] = []


class ChannelFilter(UnitFilter):
    class Meta:
        model = Channel
        fields = ["unit", "kind", "is_active", "code"]


class ChannelViewSet(ConfigViewSet):
    """Where contacts come from: SEM, SEO, WeChat, Douyin, trade shows, media, partners…"""

    queryset = Channel.objects.all()
    serializer_class = ChannelSerializer
    filterset_class = ChannelFilter
    http_method_names = NO_DELETE

    def create_through_service(self, data: dict[str, Any]) -> Channel:
        return services.channel_create(
            unit=data["unit"],
            code=data["code"],
            name=data["name"],
            kind=data["kind"],
            is_active=data.get("is_active", True),
            acting_user=self.actor,
        )

    def update_through_service(self, obj: Channel, data: dict[str, Any]) -> Channel:
        return services.channel_update(
            channel=obj,
            code=data["code"],
            name=data["name"],
            kind=data["kind"],
            is_active=data["is_active"],
            acting_user=self.actor,
        )


class ChannelRefField(ScopedRelatedField):
    model = Channel


class CampaignSerializer(UnitOnCreateMixin, serializers.ModelSerializer[Campaign]):
    unit = VisibleUnitField()
    channel = ChannelRefField(allow_null=True, required=False)
    cost = serializers.DecimalField(
        max_digits=14, decimal_places=2, required=False, help_text="In CNY; 0 or more."
    )

    class Meta:
        model = Campaign
        fields = [
            "id",
            "unit",
            "channel",
            "code",
            "name",
            "starts_on",
            "ends_on",
            "cost",
            "currency",
            "created_at",
        ]
        read_only_fields = ["currency", "created_at"]
        validators: list[Any] = []


class CampaignFilter(UnitFilter):
    channel = django_filters.NumberFilter(field_name="channel_id")

    class Meta:
        model = Campaign
        fields = ["unit", "channel", "code"]


class CampaignViewSet(ConfigViewSet):
    """Campaigns with dates and cost, for attribution and ROI."""

    queryset = Campaign.objects.all()
    serializer_class = CampaignSerializer
    filterset_class = CampaignFilter
    http_method_names = NO_DELETE

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("channel")

    def create_through_service(self, data: dict[str, Any]) -> Campaign:
        return services.campaign_create(
            unit=data["unit"],
            code=data["code"],
            name=data["name"],
            channel=data.get("channel"),
            starts_on=data.get("starts_on"),
            ends_on=data.get("ends_on"),
            cost=data.get("cost"),
            acting_user=self.actor,
        )

    def update_through_service(self, obj: Campaign, data: dict[str, Any]) -> Campaign:
        return services.campaign_update(
            campaign=obj,
            code=data["code"],
            name=data["name"],
            channel=data.get("channel"),
            starts_on=data.get("starts_on"),
            ends_on=data.get("ends_on"),
            cost=data.get("cost"),
            acting_user=self.actor,
        )


def register(router: BaseRouter) -> None:
    router.register("channels", ChannelViewSet, basename="channel")
    router.register("campaigns", CampaignViewSet, basename="campaign")
