"""API: leads (``/api/v1/leads/``) and opportunities (``/api/v1/opportunities/``).

Reading needs ``sales.view`` (a salesperson sees only their own leads); a lead or
opportunity the caller may not see is a 404. Acting needs ``sales.work`` or
``sales.sell`` on the lead, per action. Every rule is a service's; a refusal is a 400
in the API's error shape with the service's message per field. Every POST honours an
``Idempotency-Key`` header (``apps.sales.idempotency``).
"""

from __future__ import annotations

from typing import Any, cast

import django_filters
from django.db import IntegrityError, models, transaction
from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from apps.contacts.identity_keys import InvalidKey, make_key
from apps.contacts.services.resolution import ErasedPerson, contact_resolve
from apps.core.api_base import ScopedViewSetMixin
from apps.core.models import BusinessUnit, User
from apps.core.scoping import visible_unit_ids
from apps.sales import serializers as s
from apps.sales.idempotency import idempotent
from apps.sales.models import Lead, LeadSource, Opportunity, Stage
from apps.sales.selectors import crm as crm_selectors
from apps.sales.selectors.leads import lead_get
from apps.sales.services import crm as crm_services
from apps.sales.services import leads as services
from apps.sales.services import opportunities as opp_services

VIEW = "sales.view"
WORK = "sales.work"
SELL = "sales.sell"
CREATED_OUTCOMES = ("opened", "flagged")
_CRM_ID_TAKEN = gettext_lazy("Another opportunity of this unit already has this CRM id.")


class LeadFilter(django_filters.FilterSet):
    stage = django_filters.MultipleChoiceFilter(choices=Stage.choices)
    temperature = django_filters.CharFilter()
    unit = django_filters.NumberFilter(field_name="unit_id")
    owner = django_filters.NumberFilter(field_name="owner_id")
    sdr = django_filters.NumberFilter(field_name="sdr_id")
    is_open = django_filters.BooleanFilter()
    updated_since = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Lead
        fields = ["stage", "temperature", "unit", "owner", "sdr", "is_open", "updated_since"]


class _ActsMixin:
    @property
    def actor(self) -> User:
        return cast(User, self.request.user)  # type: ignore[attr-defined]

    def writable_unit_ids(self) -> frozenset[int]:
        return visible_unit_ids(self.actor, WORK) | visible_unit_ids(self.actor, SELL)


def _lead_for(user: User, pk: Any, *permissions: str) -> Lead:
    """The lead if ``user`` may act on it with one of ``permissions``; 404 when they may not
    even see it, 403 when they see it but may not do this."""
    for permission in permissions:
        lead = lead_get(user=user, pk=pk, permission=permission)
        if lead is not None:
            return lead
    if lead_get(user=user, pk=pk, permission=VIEW) is None:
        raise Http404
    raise PermissionDenied(_("Your role may read this lead but not do this to it."))


def _detail(lead_id: int) -> dict[str, Any]:
    lead = (
        Lead.objects.dangerously_unscoped()  # the caller has just acted on it
        .select_related("contact")
        .prefetch_related("history")
        .get(pk=lead_id)
    )
    return s.LeadDetailSerializer(lead).data  # type: ignore[return-value]


class LeadViewSet(
    _ActsMixin,
    ScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,  # type: ignore[type-arg]
):
    """Leads the caller may see, newest first; actions move them through the funnel."""

    queryset = Lead.objects.all()
    serializer_class = s.LeadSerializer
    permission_classes = [IsAuthenticated]
    read_permission = VIEW
    filterset_class = LeadFilter
    ordering = ("-id",)

    def scope_queryset(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        queryset = queryset.select_related("contact")
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("history")
        return queryset

    def get_serializer_class(self) -> Any:
        return s.LeadDetailSerializer if self.action == "retrieve" else s.LeadSerializer

    @extend_schema(request=s.LeadCreateSerializer, responses={201: s.LeadSerializer})
    @idempotent
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Open a lead (dedup first): ``outcome`` says opened, existing, attached or
        flagged (opened, but the contact may already be a customer)."""
        form = s.LeadCreateSerializer(data=request.data, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        data = form.validated_data
        unit: BusinessUnit = data["unit"]
        with transaction.atomic():
            contact = self._contact(data, unit)
            result = services.lead_open(
                contact=contact,
                unit=unit,
                source=LeadSource.API,
                actor=self.actor,
                stage=data.get("stage"),
                temperature=data.get("temperature"),
                external_id=(data.get("external_id") or "").strip() or None,
                reason=data.get("reason", ""),
            )
        lead = None
        if result.lead is not None and lead_get(user=self.actor, pk=result.lead.pk):
            lead = s.LeadSerializer(result.lead).data
        body = {
            "outcome": result.outcome,
            "message": result.message,
            "lead": lead,
            "opportunity": result.opportunity.pk if result.opportunity else None,
        }
        code = status.HTTP_201_CREATED if result.outcome in CREATED_OUTCOMES else status.HTTP_200_OK
        return Response(body, status=code)

    def _contact(self, data: dict[str, Any], unit: BusinessUnit) -> Any:
        if data.get("contact"):
            contact = crm_selectors.contact_for_lead(
                user=self.actor, contact_id=data["contact"], unit=unit
            )
            if contact is None:
                raise ValidationError({"contact": [_("No such contact in this unit's group.")]})
            return contact
        keys = []
        for i, identity in enumerate(data["identities"]):
            try:
                keys.append(make_key(identity["kind"], identity["value"]))
            except InvalidKey as exc:
                raise ValidationError({"identities": {str(i): {"value": [str(exc)]}}}) from None
        attributes = {
            k: data[k].strip() for k in ("name", "company_name") if (data.get(k) or "").strip()
        }
        try:
            return contact_resolve(
                unit=unit, keys=keys, attributes=attributes, source="api", acting_user=self.actor
            ).contact
        except ErasedPerson:
            raise ValidationError(
                {"identities": [_("This person asked to be erased; they cannot be added again.")]}
            ) from None

    @extend_schema(request=s.LeadUpdateSerializer, responses=s.LeadDetailSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """BANT, routing facts, temperature and the CRM id (``external_id``)."""
        lead = _lead_for(self.actor, kwargs["pk"], WORK, SELL)
        form = s.LeadUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        with transaction.atomic():
            if "external_id" in data:
                crm_services.lead_external_id_set(
                    lead=lead, external_id=data.pop("external_id"), actor=self.actor
                )
            if data:
                services.lead_update(lead=lead, data=data, actor=self.actor)
        return Response(_detail(lead.pk))

    @extend_schema(request=s.TransitionSerializer, responses=s.LeadDetailSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def transition(self, request: Request, pk: str | None = None) -> Response:
        """Move the lead to ``stage`` (the legal moves only; some need a ``reason``)."""
        lead = _lead_for(self.actor, pk, WORK, SELL)
        form = s.TransitionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.lead_move(
            lead=lead,
            to_stage=form.validated_data["stage"],
            actor=self.actor,
            reason=form.validated_data["reason"],
        )
        return Response(_detail(lead.pk))

    @extend_schema(request=s.HandoffSerializer, responses=s.LeadDetailSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def handoff(self, request: Request, pk: str | None = None) -> Response:
        """Hand an MQL to sales: to ``owner``, or to whom the unit's rules pick."""
        lead = _lead_for(self.actor, pk, WORK)
        form = s.HandoffSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        owner = None
        if form.validated_data.get("owner"):
            owner = crm_selectors.seller_get(
                unit_id=lead.unit_id,
                parent_id=lead.unit.parent_id,
                user_id=form.validated_data["owner"],
            )
            if owner is None:
                raise ValidationError({"owner": [_("Pick a salesperson of this unit.")]})
        services.lead_handoff(
            lead=lead, actor=self.actor, owner=owner, note=form.validated_data["note"]
        )
        return Response(_detail(lead.pk))

    @extend_schema(request=None, responses=s.LeadDetailSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def accept(self, request: Request, pk: str | None = None) -> Response:
        """The salesperson the lead was handed to accepts it (SAL)."""
        lead = _lead_for(self.actor, pk, SELL)
        services.lead_accept(lead=lead, actor=self.actor)
        return Response(_detail(lead.pk))

    @extend_schema(request=s.RejectSerializer, responses=s.LeadDetailSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def reject(self, request: Request, pk: str | None = None) -> Response:
        """Send the MQL back to the SDR, with the reason."""
        lead = _lead_for(self.actor, pk, SELL)
        form = s.RejectSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.lead_reject(lead=lead, actor=self.actor, reason=form.validated_data["reason"])
        return Response(_detail(lead.pk))

    @extend_schema(request=s.FollowUpInSerializer, responses={201: s.FollowUpSerializer})
    @action(detail=True, methods=["post"], url_path="follow-ups")
    @idempotent
    def follow_ups(self, request: Request, pk: str | None = None) -> Response:
        """Log a call, visit, chat, meeting, email or note."""
        lead = _lead_for(self.actor, pk, WORK, SELL)
        form = s.FollowUpInSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        follow = services.follow_up_log(
            lead=lead,
            actor=self.actor,
            kind=data["kind"],
            note=data["note"],
            next_step=data["next_step"],
            next_step_at=data.get("next_step_at"),
        )
        return Response(s.FollowUpSerializer(follow).data, status=status.HTTP_201_CREATED)


# --- Opportunities --------------------------------------------------------------------------


class OpportunityFilter(django_filters.FilterSet):
    unit = django_filters.NumberFilter(field_name="unit_id")
    owner = django_filters.NumberFilter(field_name="owner_id")
    stage = django_filters.MultipleChoiceFilter(choices=Opportunity.Stage.choices)
    external_id = django_filters.CharFilter()
    updated_since = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Opportunity
        fields = ["unit", "owner", "stage", "external_id", "updated_since"]


class OpportunityViewSet(
    _ActsMixin,
    ScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,  # type: ignore[type-arg]
):
    """Opportunities the caller may see (a salesperson: their own)."""

    queryset = Opportunity.objects.all()
    serializer_class = s.OpportunitySerializer
    permission_classes = [IsAuthenticated]
    read_permission = VIEW
    filterset_class = OpportunityFilter
    ordering = ("-id",)
    dangerously_unscoped = "reads through selectors.crm.opportunities_visible (owner rule)"

    def get_queryset(self) -> models.QuerySet[Any]:
        return crm_selectors.opportunities_visible(user=self.actor).prefetch_related("leads")

    def writable_unit_ids(self) -> frozenset[int]:
        return visible_unit_ids(self.actor, SELL) | visible_unit_ids(self.actor, WORK)

    def _opportunity_for(self, pk: Any) -> Opportunity:
        opp = self.get_queryset().filter(pk=pk).first() if str(pk).isdigit() else None
        if opp is None:
            raise Http404
        if (
            not crm_selectors.opportunities_visible(user=self.actor, permission=SELL)
            .filter(pk=opp.pk)
            .exists()
        ):
            raise PermissionDenied(_("Your role may read this opportunity but not change it."))
        return opp

    def _answer(self, opp_id: int, code: int = status.HTTP_200_OK) -> Response:
        opp = self.get_queryset().get(pk=opp_id)
        return Response(s.OpportunitySerializer(opp).data, status=code)

    @extend_schema(request=s.OpportunityCreateSerializer, responses={201: s.OpportunitySerializer})
    @idempotent
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Open an opportunity from an SQL lead (the lead moves to stage opportunity)."""
        form = s.OpportunityCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        lead = lead_get(user=self.actor, pk=data.pop("lead"), permission=SELL)
        if lead is None:
            raise ValidationError({"lead": [_("No such lead, or it is not yours to sell.")]})
        opp = opp_services.opportunity_create(lead=lead, actor=self.actor, data=data)
        return self._answer(opp.pk, status.HTTP_201_CREATED)

    @extend_schema(request=s.OpportunityInSerializer, responses=s.OpportunitySerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Stage, amount, products, expected close…; won or lost closes it."""
        opp = self._opportunity_for(kwargs["pk"])
        form = s.OpportunityInSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            opp_services.opportunity_update(
                opportunity=opp, actor=self.actor, data=dict(form.validated_data)
            )
        except IntegrityError:
            raise ValidationError({"external_id": [_CRM_ID_TAKEN]}) from None
        return self._answer(opp.pk)

    @extend_schema(request=s.OpportunityUpsertSerializer, responses=s.OpportunitySerializer)
    @action(
        detail=False,
        methods=["put"],
        url_path=r"by-external-id/(?P<external_id>[^/]+)",
        url_name="by-external-id",
    )
    def by_external_id(self, request: Request, external_id: str = "") -> Response:
        """Upsert by CRM id in ``unit``: update the unit's opportunity with this id, or
        open it from ``lead`` (an SQL). 201 when opened, 200 when updated."""
        form = s.OpportunityUpsertSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        unit = data.pop("unit")
        lead_id = data.pop("lead", None)
        data.pop("external_id", None)
        lead = None
        if lead_id:
            lead = lead_get(user=self.actor, pk=lead_id, permission=SELL)
            if lead is None or lead.unit_id != unit.pk:
                raise ValidationError({"lead": [_("No such lead in this unit, or not yours.")]})
        existing = crm_services.opportunity_by_external_id(unit_id=unit.pk, external_id=external_id)
        if existing is not None:
            # Someone else's opportunity reads as not there, as everywhere in the API.
            if not self.get_queryset().filter(pk=existing.pk).exists():
                raise Http404
            self._opportunity_for(existing.pk)
        try:
            result = crm_services.opportunity_upsert(
                unit=unit, external_id=external_id, data=data, actor=self.actor, lead=lead
            )
        except IntegrityError:  # opened by a concurrent request a moment ago
            raise ValidationError({"external_id": [_CRM_ID_TAKEN]}) from None
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return self._answer(result.opportunity.pk, code)


def register(router: BaseRouter) -> None:
    router.register("leads", LeadViewSet, basename="lead")
    router.register("opportunities", OpportunityViewSet, basename="opportunity")
