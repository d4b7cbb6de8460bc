"""API: personal share links (``/api/v1/share-links/``) and who opened them.

A caller sees their own links; with ``content.edit`` in a unit, every link of that unit.
``POST`` makes a link in the caller's own name to an active asset or a published landing
page of a unit where they hold ``content.share``. Links are not deleted (their views are
the history): ``POST …/deactivate/`` switches one off. Each link carries its ``totals``
(opens, unique viewers, known contacts, seconds read; bots never count), and
``GET …/views/`` lists its opens newest first, keyset-paged.
"""

from __future__ import annotations

from typing import Any, cast

import django_filters
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from apps.contacts.models import Campaign
from apps.content.models import Asset, LandingPage, ShareLink, ShareView
from apps.content.selectors import shares as selectors
from apps.content.services import shares as services
from apps.core.api_base import ScopedViewSetMixin
from apps.core.api_pagination import KeysetPagination
from apps.core.models import User
from apps.core.scoping import visible_unit_ids


class _ShareableField(serializers.PrimaryKeyRelatedField):  # type: ignore[type-arg]
    """Content of a unit the caller may share in (other ids read as "does not exist")."""

    model: type[models.Model]

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", self.model._default_manager.none())
        super().__init__(**kwargs)

    def get_queryset(self) -> models.QuerySet[Any]:
        request = self.context.get("request")
        return self.model.objects.visible_to(getattr(request, "user", None), selectors.SHARE)  # type: ignore[attr-defined]


class AssetRefField(_ShareableField):
    model = Asset


class PageRefField(_ShareableField):
    model = LandingPage


class CampaignRefField(_ShareableField):
    model = Campaign


class TotalsSerializer(serializers.Serializer[Any]):
    opens = serializers.IntegerField()
    viewers = serializers.IntegerField()
    contacts = serializers.IntegerField()
    seconds = serializers.IntegerField()
    last_opened_at = serializers.DateTimeField(allow_null=True)


class ShareLinkSerializer(serializers.ModelSerializer[ShareLink]):
    asset = AssetRefField(required=False, allow_null=True)
    landing_page = PageRefField(required=False, allow_null=True)
    campaign = CampaignRefField(required=False, allow_null=True)
    url = serializers.SerializerMethodField(help_text="The link to send.")
    title = serializers.SerializerMethodField(help_text="The shared content's title.")
    totals = serializers.SerializerMethodField()

    class Meta:
        model = ShareLink
        fields = [
            "id",
            "unit",
            "owner",
            "asset",
            "landing_page",
            "title",
            "note",
            "campaign",
            "token",
            "url",
            "is_active",
            "created_at",
            "totals",
        ]
        read_only_fields = ["unit", "owner", "token", "is_active", "created_at"]

    def get_url(self, obj: ShareLink) -> str:
        path = reverse("share-public", args=[obj.token])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_title(self, obj: ShareLink) -> str:
        return services.link_title(obj)

    @extend_schema_field(TotalsSerializer)
    def get_totals(self, obj: ShareLink) -> dict[str, Any]:
        totals = self.context.get("totals", {}).get(obj.pk, selectors.LinkTotals())
        return TotalsSerializer(totals).data  # type: ignore[return-value]


class ShareViewSerializer(serializers.ModelSerializer[ShareView]):
    contact = serializers.SerializerMethodField()
    device = serializers.SerializerMethodField()

    class Meta:
        model = ShareView
        fields = ["id", "opened_at", "seconds", "contact", "ip", "device", "referrer"]
        read_only_fields = fields

    def get_contact(self, obj: ShareView) -> dict[str, Any] | None:
        if obj.contact is None:
            return None  # an anonymous visitor
        return {
            "id": obj.contact.pk,
            "name": obj.contact.name,
            "company_name": obj.contact.company_name,
        }

    def get_device(self, obj: ShareView) -> str:
        return selectors.device_label(obj.user_agent)


class ShareLinkFilter(django_filters.FilterSet):
    owner = django_filters.NumberFilter(field_name="owner_id")
    unit = django_filters.NumberFilter(field_name="unit_id")
    asset = django_filters.NumberFilter(field_name="asset_id")
    landing_page = django_filters.NumberFilter(field_name="landing_page_id")
    mine = django_filters.BooleanFilter(method="filter_mine")

    class Meta:
        model = ShareLink
        fields = ["owner", "unit", "asset", "landing_page", "is_active", "mine"]

    def filter_mine(self, queryset: Any, name: str, value: bool) -> Any:
        user = self.request.user  # type: ignore[union-attr]
        return queryset.filter(owner_id=user.pk) if value else queryset.exclude(owner_id=user.pk)


class ShareLinkViewSet(
    ScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,  # type: ignore[type-arg]
):
    """Share links: your own, and (with ``content.edit``) your units' people's."""

    queryset = ShareLink.objects.all()
    serializer_class = ShareLinkSerializer
    permission_classes = [IsAuthenticated]
    read_permission = selectors.VIEW
    filterset_class = ShareLinkFilter
    ordering = ("-id",)

    @property
    def actor(self) -> User:
        return cast(User, self.request.user)

    def scope_queryset(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        user = self.actor
        if not user.is_superuser:
            edit = visible_unit_ids(user, selectors.EDIT)
            queryset = queryset.filter(Q(owner_id=user.pk) | Q(unit_id__in=edit))
        return queryset.select_related("asset", "landing_page")

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context.setdefault("totals", {})
        return context

    def _with_totals(self, links: list[ShareLink]) -> dict[str, Any]:
        context = self.get_serializer_context()
        context["totals"] = selectors.share_links_totals(user=self.actor, links=links)
        return context

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset) or []
        serializer = ShareLinkSerializer(page, many=True, context=self._with_totals(page))
        return self.get_paginated_response(serializer.data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        link = self.get_object()
        return Response(ShareLinkSerializer(link, context=self._with_totals([link])).data)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        link = services.share_link_create(
            owner=self.actor,
            asset=data.get("asset"),
            landing_page=data.get("landing_page"),
            note=data.get("note", ""),
            campaign=data.get("campaign"),
            acting_user=self.actor,
        )
        body = ShareLinkSerializer(link, context=self._with_totals([link])).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ShareLinkSerializer)
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, pk: str | None = None) -> Response:
        link = self.get_object()
        if not services.share_link_may_manage(user=self.actor, link=link):
            raise PermissionDenied(_("Only the link's owner or the unit's marketers may do this."))
        link = services.share_link_deactivate(link=link, acting_user=self.actor)
        return Response(ShareLinkSerializer(link, context=self._with_totals([link])).data)

    @extend_schema(request=None, responses=ShareViewSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=KeysetPagination)
    def views(self, request: Request, pk: str | None = None) -> Response:
        """Who opened the link, newest first (bots left out)."""
        link = self.get_object()
        views = selectors.share_views_list(user=self.actor, link=link)
        self.ordering = ("-opened_at", "-id")  # type: ignore[assignment]
        page = self.paginate_queryset(views) or []
        return self.get_paginated_response(ShareViewSerializer(page, many=True).data)


def register(router: BaseRouter) -> None:
    router.register("share-links", ShareLinkViewSet, basename="share-link")
