"""API: the CRM link. Updates in (``/api/v1/crm/updates/``) and webhook endpoints out
(``/api/v1/webhooks/``), both for sales ops (``sales.configure``) of the unit.

``POST /crm/updates/`` stores the update as it arrived and answers 202 with its id; a
task applies it (``services.crm``) and ``GET /crm/updates/{id}/`` tells how it went
(``done`` or ``rejected`` with the reason). The same ``event_id`` again with the same
body is answered 200 from the stored row; with another body it is a 409.

A webhook's signing secret is made by the server and shown once, in the answer to the
``POST`` that creates it.
"""

from __future__ import annotations

from typing import Any, cast

from django.db import models
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from apps.core.api_errors import error_body
from apps.core.api_pagination import KeysetPagination
from apps.core.models import ApiToken, User
from apps.sales import serializers as s
from apps.sales.idempotency import idempotent
from apps.sales.models import CrmInbound, WebhookEndpoint
from apps.sales.selectors import crm as selectors
from apps.sales.services import crm as services

CONFIGURE = "sales.configure"


class CrmUpdateViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,  # type: ignore[type-arg]
):
    """Status and opportunity updates from the CRM, newest first."""

    serializer_class = s.CrmInboundSerializer
    permission_classes = [IsAuthenticated]
    ordering = ("-id",)

    @property
    def actor(self) -> User:
        return cast(User, self.request.user)

    def get_queryset(self) -> models.QuerySet[CrmInbound]:
        return selectors.crm_inbound_visible(user=self.actor)

    def writable_unit_ids(self) -> frozenset[int]:
        return selectors.configurable_unit_ids(user=self.actor)

    @extend_schema(
        request=s.CrmUpdateInSerializer,
        responses={202: s.CrmInboundSerializer, 200: s.CrmInboundSerializer},
    )
    @idempotent
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        form = s.CrmUpdateInSerializer(data=request.data, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        data = form.validated_data
        token = request.auth if isinstance(request.auth, ApiToken) else None
        received = services.crm_inbound_receive(
            unit=data["unit"],
            event_id=data["event_id"],
            kind=data["kind"],
            payload=dict(request.data),
            actor=self.actor,
            token_id=token.pk if token is not None else None,
        )
        if received.conflict:
            message = _(
                "Event %(id)s was already received with a different body. Send a new "
                "event_id for a new update."
            ) % {"id": data["event_id"]}
            return Response(error_body(409, "conflict", message), status=status.HTTP_409_CONFLICT)
        body = s.CrmInboundSerializer(received.inbound).data
        code = status.HTTP_202_ACCEPTED if received.fresh else status.HTTP_200_OK
        return Response(body, status=code)


class WebhookEndpointViewSet(viewsets.ModelViewSet):  # type: ignore[type-arg]
    """Where lead events are posted, per unit. The secret is shown only on creation."""

    serializer_class = s.WebhookEndpointSerializer
    permission_classes = [IsAuthenticated]
    ordering = ("-id",)
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @property
    def actor(self) -> User:
        return cast(User, self.request.user)

    def get_queryset(self) -> models.QuerySet[WebhookEndpoint]:
        return selectors.webhook_endpoints(user=self.actor)

    def writable_unit_ids(self) -> frozenset[int]:
        return selectors.configurable_unit_ids(user=self.actor)

    @extend_schema(responses={201: s.WebhookEndpointCreatedSerializer})
    @idempotent
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        form = self.get_serializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        endpoint = services.webhook_endpoint_create(
            unit=data["unit"],
            name=data["name"],
            url=data["url"],
            events=data.get("events") or [],
            actor=self.actor,
        )
        return Response(
            s.WebhookEndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED
        )

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        endpoint = self.get_object()
        form = self.get_serializer(endpoint, data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        data = {k: v for k, v in form.validated_data.items() if k != "unit"}
        endpoint = services.webhook_endpoint_update(endpoint=endpoint, data=data, actor=self.actor)
        return Response(s.WebhookEndpointSerializer(endpoint).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.webhook_endpoint_delete(endpoint=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=s.WebhookDeliverySerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=KeysetPagination)
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        """The delivery log, newest first: status, attempts, last status code."""
        endpoint = self.get_object()
        rows = selectors.webhook_deliveries(user=self.actor, endpoint_id=endpoint.pk)
        page = self.paginate_queryset(rows) or []
        return self.get_paginated_response(s.WebhookDeliverySerializer(page, many=True).data)


def register(router: BaseRouter) -> None:
    router.register("crm/updates", CrmUpdateViewSet, basename="crm-update")
    router.register("webhooks", WebhookEndpointViewSet, basename="webhook")
