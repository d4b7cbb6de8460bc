"""REST endpoints for contacts (``/api/v1/contacts/…``).

* ``GET /contacts/`` — active contacts the caller's units know, newest first, keyset-paged;
  filters ``status``, ``unit``, ``tag``, ``phone``, ``email``, ``updated_after``.
* ``POST /contacts/`` — create a contact from at least one identity. A create never
  duplicates a person: when any identity already belongs to a contact, nothing is written
  and the answer is **409** ``exists`` (with ``contact`` when the caller may see it); use
  ``POST /contacts/upsert/`` to match or merge instead.
* ``GET/PATCH /contacts/{id}/`` — read or change attributes and custom fields.
* ``POST /contacts/upsert/`` — identity resolution: find, create or merge, then apply
  attributes, custom fields, tags and consent, all in one transaction.
* ``GET /contacts/{id}/timeline/`` — the contact's activities, newest first.
* ``GET/POST /contacts/{id}/tags/`` and ``GET/POST /contacts/{id}/consent/``.

A contact the caller's units do not know is 404, whatever the verb; one they may read but
not change (``contacts.edit``) is 403 on writes. Every input is checked before anything is
written; a bad identity, custom value, tag or consent basis is a 400 naming the field.

The writes behind these endpoints are in ``apps.contacts.services.contacts``.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db import models
from django.http import Http404
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, status
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from apps.contacts import serializers as s
from apps.contacts.identity_keys import InvalidKey, make_key
from apps.contacts.models import (
    Activity,
    Contact,
    ContactStatus,
    IdentityKind,
)
from apps.contacts.selectors import api as selectors
from apps.contacts.services.contacts import (
    ContactExists,
    contact_consent_add,
    contact_create,
    contact_tags_change,
    contact_update,
    contact_upsert,
)
from apps.contacts.services.merge import MergeError
from apps.contacts.services.resolution import (
    ErasedPerson,
)
from apps.core.api_base import ScopedModelViewSet, ScopedViewSetMixin
from apps.core.api_errors import error_body
from apps.core.scoping import visible_unit_ids


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = gettext_lazy("The request conflicts with what is stored.")


def _erased() -> Conflict:
    return Conflict(
        _("This person asked to be erased; their details cannot be added again."), code="erased"
    )


def _not_active(contact: Contact) -> Conflict:
    if contact.status == ContactStatus.MERGED:
        return Conflict(
            _("This contact was merged into #%(id)s; change that one.")
            % {"id": contact.merged_into_id},
            code="merged",
        )
    return Conflict(_("This contact was erased and cannot be changed."), code="erased")


ERROR_RESPONSES: dict[int | str, Any] = {
    400: OpenApiResponse(description="Invalid input; error.fields names each bad field."),
    404: OpenApiResponse(description="No such contact among those the caller may see."),
}
WRITE_ERRORS: dict[int | str, Any] = {
    **ERROR_RESPONSES,
    403: OpenApiResponse(description="The caller may read this contact but not change it."),
    409: OpenApiResponse(
        description="The contact was merged or erased, or a key belongs to an erased person."
    ),
}


# --- Filters ------------------------------------------------------------------------------------


class ContactFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        choices=ContactStatus.choices, help_text="Default: active contacts only."
    )
    unit = django_filters.NumberFilter(
        method="filter_unit", help_text="Contacts this unit knows (a unit you may see)."
    )
    tag = django_filters.NumberFilter(method="filter_tag", help_text="Contacts with this tag.")
    phone = django_filters.CharFilter(
        method="filter_phone", help_text="Any spelling; normalised like identities."
    )
    email = django_filters.CharFilter(method="filter_email")
    updated_after = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Contact
        fields = ["status"]

    def _visible(self) -> frozenset[int]:
        return visible_unit_ids(self.request.user, selectors.VIEW)  # type: ignore[union-attr]

    def filter_unit(self, queryset: models.QuerySet[Contact], name: str, value: Any) -> Any:
        if int(value) not in self._visible():
            return queryset.none()
        return queryset.filter(units__unit_id=int(value))

    def filter_tag(self, queryset: models.QuerySet[Contact], name: str, value: Any) -> Any:
        return queryset.filter(tags__tag_id=int(value), tags__tag__unit_id__in=self._visible())

    def _by_key(self, queryset: models.QuerySet[Contact], kind: str, raw: str) -> Any:
        try:
            key = make_key(kind, raw)
        except InvalidKey:
            message = s.identity_error_message(kind, raw)
            raise exceptions.ValidationError({kind: [message]}) from None
        return queryset.filter(identities__kind=key.kind, identities__value=key.value)

    def filter_phone(self, queryset: models.QuerySet[Contact], name: str, value: str) -> Any:
        return self._by_key(queryset, IdentityKind.PHONE, value)

    def filter_email(self, queryset: models.QuerySet[Contact], name: str, value: str) -> Any:
        return self._by_key(queryset, IdentityKind.EMAIL, value)


class CharInFilter(django_filters.BaseInFilter, django_filters.CharFilter):  # type: ignore[misc]
    pass


class TimelineFilter(django_filters.FilterSet):
    type = CharInFilter(help_text="One or more activity types, comma-separated.")
    channel = django_filters.NumberFilter(field_name="channel_id", help_text="Channel id.")
    since = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Activity
        fields: list[str] = []


# --- Views --------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(responses=s.ContactSerializer(many=True)),
    retrieve=extend_schema(responses={200: s.ContactSerializer, **ERROR_RESPONSES}),
)
class ContactViewSet(ScopedModelViewSet):
    """People your units know: one profile per person across the group's units.

    Identities, units, tags and custom-field values show as far as your units may see them.
    A contact your units do not know is 404; changing one needs the contacts.edit role.
    """

    queryset = Contact.objects.all()
    serializer_class = s.ContactSerializer
    read_permission = selectors.VIEW
    write_permission = selectors.EDIT
    filterset_class = ContactFilter
    ordering = ("-id",)
    http_method_names = ["get", "post", "patch", "head", "options"]

    def scope_queryset(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        if self.action == "list" and "status" not in self.request.query_params:
            queryset = queryset.filter(status=ContactStatus.ACTIVE)
        return selectors.contacts_decorated(queryset, user=self.request.user)

    def get_serializer_context(self) -> dict[str, Any]:
        context: dict[str, Any] = super().get_serializer_context()
        if self.action in {"list", "retrieve"}:
            context["custom_fields"] = selectors.custom_fields_shown(user=self.request.user)
        return context

    # helpers

    def _contact_data(self, contact_id: int) -> Any:
        contact = selectors.contact_for_api(user=self.request.user, contact_id=contact_id)
        if contact is None:  # pragma: no cover - we just wrote it and the caller's unit knows it
            raise Http404
        context = {
            **super().get_serializer_context(),
            "custom_fields": selectors.custom_fields_shown(user=self.request.user),
        }
        return s.ContactSerializer(contact, context=context).data

    def _access(self, *, write: bool) -> Contact:
        """The contact in the URL, checked: 404 when unknown to the caller, 403 when they
        may only read it and ``write`` is asked."""
        try:
            contact_id = int(self.kwargs["pk"])
        except (TypeError, ValueError):
            raise Http404 from None
        access = selectors.contact_access(user=self.request.user, contact_id=contact_id)
        if access is None:
            raise Http404
        if write and access != "edit":
            raise exceptions.PermissionDenied(_("You may read this contact but not change it."))
        contact = Contact.objects.dangerously_unscoped().get(pk=contact_id)  # checked above
        if write and not contact.is_active:
            raise _not_active(contact)
        return contact

    def _audit_unit(self, contact: Contact) -> int:
        """A unit the caller may write to that knows the contact (audit rows need one)."""
        writable = self.writable_unit_ids()
        known = sorted(
            unit_id
            for unit_id in contact.units.values_list("unit_id", flat=True)
            if unit_id in writable
        )
        return known[0] if known else contact.group_id

    # endpoints

    @extend_schema(
        request=s.ContactCreateSerializer,
        responses={201: s.ContactSerializer, **WRITE_ERRORS},
        description="Create a contact. 409 `exists` when an identity already belongs to a "
        "contact (nothing is written; `error.contact` is its id when you may see it): "
        "use /contacts/upsert/ to match or merge instead.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = s.ContactCreateSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        try:
            contact = contact_create(
                unit=data.pop("unit"),
                keys=data.pop("identities"),
                custom=data.pop("custom"),
                attributes=data,
                acting_user=request.user,  # type: ignore[arg-type]
            )
        except ErasedPerson:
            raise _erased() from None
        except ContactExists as exists:
            body = error_body(
                409,
                "exists",
                _(
                    "A contact with these details already exists; "
                    "use /api/v1/contacts/upsert/ to update it."
                ),
            )
            if selectors.contact_access(user=request.user, contact_id=exists.contact_id):
                body["error"]["contact"] = exists.contact_id
            return Response(body, status=status.HTTP_409_CONFLICT)
        return Response(self._contact_data(contact.pk), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=s.ContactUpdateSerializer,
        responses={200: s.ContactSerializer, **WRITE_ERRORS},
        description="Change attributes and custom fields. Sent values replace what is "
        'stored; "" clears a field, and a custom value of null clears it.',
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        contact = self._access(write=True)
        serializer = s.ContactUpdateSerializer(
            data=request.data, context=self.get_serializer_context(), partial=True
        )
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        unit = data.pop("unit", None)
        contact_update(
            contact=contact,
            custom=data.pop("custom", {}),
            custom_cleared=data.pop("custom_cleared", []),
            attributes=data,
            unit_id=unit.pk if unit is not None else self._audit_unit(contact),
            acting_user=request.user,  # type: ignore[arg-type]
        )
        return Response(self._contact_data(contact.pk))

    @extend_schema(
        request=s.ContactUpsertSerializer,
        responses={
            200: s.UpsertResultSerializer,
            201: s.UpsertResultSerializer,
            400: ERROR_RESPONSES[400],
            409: OpenApiResponse(
                description="`erased`: a key belongs to a person who asked to be erased."
            ),
        },
        description="Identity resolution: the contact these identities belong to is "
        "found (`matched`, 200), created (`created`, 201) or, when they belong to several, "
        "merged into the oldest (`merged`, 200, with `merged_ids`). Attributes follow the "
        "newest-non-empty rule; custom fields and tags are those of `unit`. Everything is "
        "checked first and written in one transaction: a bad value stores nothing.",
    )
    @action(detail=False, methods=["post"])
    def upsert(self, request: Request) -> Response:
        serializer = s.ContactUpsertSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            result = contact_upsert(
                unit=data["unit"],
                keys=data["identities"],
                attributes=data.get("attributes") or {},
                custom=data["custom"],
                tags=data["tags"],
                consents=data["consent"],
                observed_at=data.get("observed_at"),
                acting_user=request.user,  # type: ignore[arg-type]
            )
        except ErasedPerson:
            raise _erased() from None
        except MergeError as exc:
            raise Conflict(str(exc), code="merge_refused") from None
        body = {
            "outcome": result.outcome,
            "merged_ids": result.merged_ids,
            "contact": self._contact_data(result.contact.pk),
        }
        code = status.HTTP_201_CREATED if result.outcome == "created" else status.HTTP_200_OK
        return Response(body, status=code)

    @extend_schema(
        methods=["GET"],
        request=None,
        responses={200: s.ContactTagSerializer(many=True), **ERROR_RESPONSES},
        description="The contact's tags, of the units you may see.",
    )
    @extend_schema(
        methods=["POST"],
        request=s.TagChangeSerializer,
        responses={200: s.ContactTagSerializer(many=True), **WRITE_ERRORS},
        description="Add and remove tags (of units you may write to); returns the tags now.",
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[], pagination_class=None)
    def tags(self, request: Request, pk: str | None = None) -> Response:
        contact = self._access(write=request.method == "POST")
        if request.method == "POST":
            serializer = s.TagChangeSerializer(
                data=request.data, context=self.get_serializer_context()
            )
            serializer.is_valid(raise_exception=True)
            contact_tags_change(
                contact=contact,
                add=serializer.validated_data["add"],
                remove=serializer.validated_data["remove"],
                acting_user=request.user,  # type: ignore[arg-type]
            )
        rows = selectors.contact_tags(user=request.user, contact_id=contact.pk)
        return Response(s.ContactTagSerializer(rows, many=True).data)

    @extend_schema(
        methods=["GET"],
        request=None,
        responses={200: s.ConsentOverviewSerializer, **ERROR_RESPONSES},
        description="Current consent per channel and purpose, and the newest "
        f"{selectors.CONSENT_HISTORY_LIMIT} events your units recorded.",
    )
    @extend_schema(
        methods=["POST"],
        request=s.ConsentRecordSerializer,
        responses={201: s.ConsentOverviewSerializer, **WRITE_ERRORS},
        description="Record consent given or withdrawn (with its proof); returns the consent now.",
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[], pagination_class=None)
    def consent(self, request: Request, pk: str | None = None) -> Response:
        contact = self._access(write=request.method == "POST")
        code: int = status.HTTP_200_OK
        if request.method == "POST":
            serializer = s.ConsentRecordSerializer(
                data=request.data, context=self.get_serializer_context()
            )
            serializer.is_valid(raise_exception=True)
            data = dict(serializer.validated_data)
            contact_consent_add(
                contact=contact,
                unit=data.pop("unit"),
                consent=data,
                acting_user=request.user,  # type: ignore[arg-type]
            )
            code = status.HTTP_201_CREATED
        body = {
            "states": s.ConsentStateSerializer(
                contact.consents.order_by("channel", "purpose"), many=True
            ).data,
            "history": s.ConsentEventSerializer(
                selectors.consent_history(user=request.user, contact_id=contact.pk), many=True
            ).data,
        }
        return Response(body, status=code)


class ContactTimelineView(ScopedViewSetMixin, generics.ListAPIView):  # type: ignore[type-arg]
    """The contact's activities newest first, keyset-paged; only those of units you may
    see. 404 when the contact is not known to your units."""

    queryset = Activity.objects.all()
    serializer_class = s.ActivitySerializer
    permission_classes = [IsAuthenticated]
    read_permission = selectors.VIEW
    filterset_class = TimelineFilter
    ordering = ("-occurred_at", "-id")

    def scope_queryset(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        return queryset.filter(contact_id=self.kwargs["contact_id"])

    @extend_schema(responses={200: s.ActivitySerializer(many=True), **ERROR_RESPONSES})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if selectors.contact_access(user=request.user, contact_id=kwargs["contact_id"]) is None:
            raise Http404
        return self.list(request, *args, **kwargs)


def register(router: BaseRouter) -> None:
    router.register("contacts", ContactViewSet, basename="contact")


urlpatterns = [
    path(
        "contacts/<int:contact_id>/timeline/",
        ContactTimelineView.as_view(),
        name="contact-timeline",
    ),
]
