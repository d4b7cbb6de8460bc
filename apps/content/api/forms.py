"""API: forms of the caller's units, and each form's submissions (read only).

Reading needs ``content.view``; creating and changing need ``content.edit`` in the form's
unit. Writes go through ``content.services.forms`` (checked, audited); a problem is
reported on the field it concerns (``fields`` for the field list, with the entry named).
``DELETE`` archives the form (its page stops taking submissions; what was submitted
stays): ``PATCH {"is_active": true}`` puts it back.

``GET /api/v1/forms/{id}/submissions/`` lists what was submitted, newest first, keyset
paged, filtered by ``status`` and ``received_after`` / ``received_before``.
"""

from __future__ import annotations

from typing import Any, cast

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import Http404
from django.urls import path, reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from apps.contacts.models import Campaign, Channel
from apps.content.models import Asset, Form, FormSubmission, SubmissionStatus
from apps.content.selectors import forms as selectors
from apps.content.services import forms as services
from apps.core.api_base import ScopedModelViewSet, ScopedReadOnlyViewSet, VisibleUnitField
from apps.core.models import User

SETTINGS = tuple(services.DEFAULTS)


class _UnitRelated(serializers.PrimaryKeyRelatedField):  # type: ignore[type-arg]
    """An asset, channel or campaign the caller may see; that it is the form's own unit's
    is the service's check (with a message on this field)."""

    model: type[Any]

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", self.model._default_manager.none())
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Any]:
        request = self.context.get("request")
        return self.model.objects.visible_to(getattr(request, "user", None), selectors.READ)


class AssetRef(_UnitRelated):
    model = Asset


class ChannelRef(_UnitRelated):
    model = Channel


class CampaignRef(_UnitRelated):
    model = Campaign


# One entry of a form's field list, for the schema; the service checks the list.
FIELD_ENTRY = inline_serializer(
    name="FormFieldEntry",
    many=True,
    fields={
        "key": serializers.CharField(
            help_text="email, phone, name, company_name, title, department, province, city, "
            "industry, or custom:<custom field key>"
        ),
        "required": serializers.BooleanField(required=False, default=False),
        "label": serializers.CharField(
            required=False, allow_blank=True, help_text="Shown instead of the field's own label."
        ),
        "options": serializers.ListField(
            child=serializers.CharField(),
            required=False,
            help_text="Choice fields: the option values offered (empty: all).",
        ),
    },
)


@extend_schema_field(FIELD_ENTRY)
class FieldListField(serializers.JSONField):
    """The list as sent; the service checks it against the unit's catalogue."""


class FormSerializer(serializers.ModelSerializer[Form]):
    unit = VisibleUnitField()
    # Named like the model's column; DRF's metaclass takes it off the class.
    fields = FieldListField()  # type: ignore[assignment]
    asset = AssetRef()
    channel = ChannelRef()
    campaign = CampaignRef()
    public_url = serializers.SerializerMethodField()
    embed_script_url = serializers.SerializerMethodField()

    class Meta:
        model = Form
        fields = [
            "id",
            "unit",
            "name",
            "key",
            "title",
            "intro",
            "fields",
            "submit_label",
            "progressive",
            "progressive_max",
            "consent_required",
            "consent_text",
            "opens_lead",
            "consent_version",
            "success_message",
            "redirect_url",
            "asset",
            "channel",
            "campaign",
            "is_active",
            "public_url",
            "embed_script_url",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["key", "created_at", "updated_at"]

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        if self.instance is not None:
            fields["unit"].read_only = True  # a form never moves to another unit
        return fields

    def _url(self, obj: Form, name: str) -> str:
        request = self.context.get("request")
        url = reverse(name, args=[obj.key])
        return request.build_absolute_uri(url) if request is not None else url

    def get_public_url(self, obj: Form) -> str:
        return self._url(obj, "form-public")

    def get_embed_script_url(self, obj: Form) -> str:
        return self._url(obj, "form-embed-script")


class FormFilter(django_filters.FilterSet):
    unit = django_filters.NumberFilter(field_name="unit_id")

    class Meta:
        model = Form
        fields = ["unit", "is_active"]


def _raise(exc: DjangoValidationError) -> None:
    raise ValidationError(exc.message_dict) from None


class FormViewSet(ScopedModelViewSet):
    """Forms: fields from the unit's catalogue, consent wording and version, progressive
    profiling, thank-you or redirect, gated asset, channel and campaign."""

    queryset = Form.objects.all()
    serializer_class = FormSerializer
    filterset_class = FormFilter
    read_permission = selectors.READ
    write_permission = selectors.EDIT
    ordering = ("-id",)

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.select_related("unit")

    @property
    def actor(self) -> User:
        return cast(User, self.request.user)

    def _writable(self, form: Form) -> None:
        if form.unit_id not in self.writable_unit_ids():
            raise PermissionDenied(_("You may read this form, but not change it."))

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        data = dict(serializer.validated_data)
        unit = data.pop("unit")
        name = data.pop("name")
        fields = data.pop("fields", [])
        active = data.pop("is_active", True)
        settings = {k: v for k, v in data.items() if k in SETTINGS}
        try:
            form = services.form_create(
                unit=unit, name=name, fields=fields, acting_user=self.actor, **settings
            )
            if not active:
                form = services.form_archive(form=form, acting_user=self.actor)
        except DjangoValidationError as exc:
            _raise(exc)
        serializer.instance = form

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        form = cast(Form, serializer.instance)
        self._writable(form)
        data = dict(serializer.validated_data)
        active = data.pop("is_active", None)
        changes = {k: v for k, v in data.items() if k in (*SETTINGS, "name", "fields")}
        try:
            if changes:
                form = services.form_update(form=form, acting_user=self.actor, **changes)
            if active is False:
                form = services.form_archive(form=form, acting_user=self.actor)
            elif active is True:
                form = services.form_restore(form=form, acting_user=self.actor)
        except DjangoValidationError as exc:
            _raise(exc)
        form.refresh_from_db()
        serializer.instance = form

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        form = cast(Form, self.get_object())
        self._writable(form)
        services.form_archive(form=form, acting_user=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Submissions ---------------------------------------------------------------------------


class FormSubmissionSerializer(serializers.ModelSerializer[FormSubmission]):
    status = serializers.ChoiceField(choices=SubmissionStatus.choices, read_only=True)

    class Meta:
        model = FormSubmission
        fields = [
            "id",
            "form",
            "unit",
            "received_at",
            "status",
            "reason",
            "data",
            "consent",
            "consent_version",
            "contact",
            "landing_page",
            "share_link",
            "page_url",
            "referrer",
            "utm",
            "processed_at",
        ]
        read_only_fields = fields


class SubmissionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=SubmissionStatus.choices)
    received_after = django_filters.IsoDateTimeFilter(field_name="received_at", lookup_expr="gte")
    received_before = django_filters.IsoDateTimeFilter(field_name="received_at", lookup_expr="lt")

    class Meta:
        model = FormSubmission
        fields = ["status", "received_after", "received_before"]


class FormSubmissionViewSet(ScopedReadOnlyViewSet):
    """What visitors submitted to one form, newest first. The IP address and browser are
    kept as consent proof but not listed."""

    queryset = FormSubmission.objects.all()
    serializer_class = FormSubmissionSerializer
    filterset_class = SubmissionFilter
    read_permission = selectors.READ
    ordering = selectors.SUBMISSION_ORDER

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        form_pk = self.kwargs.get("form_pk")
        user = cast(User, self.request.user)
        if selectors.form_get(user=user, pk=int(form_pk or 0)) is None:
            raise Http404
        return queryset.filter(form_id=form_pk)


def register(router: BaseRouter) -> None:
    router.register("forms", FormViewSet, basename="form")


urlpatterns = [
    path(
        "forms/<int:form_pk>/submissions/",
        FormSubmissionViewSet.as_view({"get": "list"}),
        name="form-submission-list",
    ),
]
