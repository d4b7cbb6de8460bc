"""REST endpoints for exports and data-subject requests.

* ``GET/POST /contact-exports/``: the caller's export jobs (and, for unit administrators,
  their units' jobs); a POST with ``file_type`` and ``filters`` (``q``, ``unit``, ``tag``,
  ``source``, ``segment``, ``custom``) starts one in the background. ``GET /contact-exports/{id}/``
  shows progress; ``GET /contact-exports/{id}/download/`` returns the file when done.
* ``GET /contacts/{id}/subject-export/``: everything held on the person, as JSON
  (``contacts.export``; audited).
* ``POST /contacts/{id}/erase/`` with ``{"confirm": true}``: erase the person
  (administrators only; irreversible). Erasing an erased contact answers 200 again.

A job or contact outside the caller's scope is 404.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter
from rest_framework.views import APIView

from apps.contacts.models import ContactExport, JobStatus
from apps.contacts.selectors.exports import ADMIN, EXPORT, VIEW, contact_for_subject_request
from apps.contacts.services.exports import FILE_TYPES, contact_export_create
from apps.contacts.services.subject import (
    ErasureError,
    contact_erase,
    contact_subject_export_record,
    contact_subject_export_stream,
)
from apps.core.api_base import ScopedViewSetMixin
from apps.core.models import User
from apps.core.scoping import visible_unit_ids


class ExportFiltersSerializer(serializers.Serializer):  # type: ignore[type-arg]
    q = serializers.CharField(required=False, allow_blank=True, max_length=200)
    unit = serializers.IntegerField(required=False, allow_null=True)
    tag = serializers.IntegerField(required=False, allow_null=True)
    # DRF's metaclass collects declared fields, so a field may be called "source" even
    # though Field has an attribute of that name; mypy sees only the attribute.
    source = serializers.IntegerField(required=False, allow_null=True)  # type: ignore[assignment]
    segment = serializers.IntegerField(
        required=False, allow_null=True, help_text="members of this segment only"
    )
    custom = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        help_text='custom field id -> value, e.g. {"41": "ka"}',
    )


class ContactExportSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ContactExport
        fields = [
            "id",
            "unit",
            "created_by",
            "file_type",
            "filters",
            "status",
            "total_rows",
            "processed_rows",
            "failure",
            "created_at",
            "finished_at",
            "download_url",
        ]
        read_only_fields = fields

    def get_download_url(self, obj: ContactExport) -> str | None:
        if obj.status != JobStatus.DONE or not obj.file:
            return None
        request = self.context.get("request")
        url = reverse("api:contact-export-download", args=[obj.pk])
        return request.build_absolute_uri(url) if request else url


class ContactExportCreateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    file_type = serializers.ChoiceField(choices=list(FILE_TYPES))
    filters = ExportFiltersSerializer(required=False)


class ContactExportViewSet(
    ScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,  # type: ignore[type-arg]
):
    """Contact exports: your own, and every export of the units you administer."""

    queryset = ContactExport.objects.all()
    serializer_class = ContactExportSerializer
    read_permission = EXPORT
    ordering = ("-id",)
    filterset_fields = ["status", "file_type"]

    def scope_queryset(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        user = self.request.user
        admin_units = visible_unit_ids(user, ADMIN)
        return queryset.filter(Q(created_by=user) | Q(unit_id__in=admin_units)).select_related(
            "created_by"
        )

    @extend_schema(request=ContactExportCreateSerializer, responses={201: ContactExportSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = ContactExportCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        filters = {
            k: v
            for k, v in (serializer.validated_data.get("filters") or {}).items()
            if v not in (None, "", {})
        }
        # A DjangoValidationError (bad filter) becomes a 400 naming the field;
        # PermissionDenied (no export role anywhere) a 403.
        export = contact_export_create(
            acting_user=request.user,  # type: ignore[arg-type]
            filters=filters,
            file_type=serializer.validated_data["file_type"],
        )
        data = ContactExportSerializer(export, context={"request": request}).data
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None) -> FileResponse:
        export = self.get_object()
        if export.status != JobStatus.DONE or not export.file:
            raise exceptions.NotFound(_("This export has no file yet."))
        name = f"contacts-{export.pk}.{export.file_type}"
        return FileResponse(export.file.open("rb"), as_attachment=True, filename=name)


class SubjectExportView(APIView):
    """Everything held on one person, as JSON (data-subject access request)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(description="Not found")}
    )
    def get(self, request: Request, pk: int) -> StreamingHttpResponse:
        user: User = request.user  # type: ignore[assignment]
        contact = contact_for_subject_request(user=user, pk=pk, permission=EXPORT)
        if contact is None:
            raise Http404
        contact_subject_export_record(contact=contact, acting_user=user)
        response = StreamingHttpResponse(
            contact_subject_export_stream(contact), content_type="application/json; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="contact-{contact.pk}-data.json"'
        return response


class EraseRequestSerializer(serializers.Serializer):  # type: ignore[type-arg]
    confirm = serializers.BooleanField(help_text="Must be true: erasure cannot be undone.")


class ErasureSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    status = serializers.CharField()
    identities = serializers.IntegerField()
    activities = serializers.IntegerField()
    merged_contacts = serializers.IntegerField()
    already_erased = serializers.BooleanField()


class EraseView(APIView):
    """Erase a person at their request: PII blanked, identifiers replaced by tombstones so
    they are not imported again, tags and activities deleted. Administrators only."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=EraseRequestSerializer, responses={200: ErasureSerializer})
    def post(self, request: Request, pk: int) -> Response:
        user: User = request.user  # type: ignore[assignment]
        contact = contact_for_subject_request(user=user, pk=pk, permission=ADMIN)
        if contact is None:
            if contact_for_subject_request(user=user, pk=pk, permission=VIEW) is None:
                raise Http404
            raise exceptions.PermissionDenied(_("Only administrators may erase a person."))
        serializer = EraseRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not serializer.validated_data["confirm"]:
            raise exceptions.ValidationError(
                {"confirm": [_('Send "confirm": true; erasure cannot be undone.')]}
            )
        try:
            result = contact_erase(contact=contact, acting_user=user)
        except ErasureError as exc:
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from None
        body = {
            "id": result.contact.pk,
            "status": result.contact.status,
            "identities": result.identities,
            "activities": result.activities,
            "merged_contacts": result.merged_contacts,
            "already_erased": result.already_erased,
        }
        return Response(ErasureSerializer(body).data)


def register(router: BaseRouter) -> None:
    router.register("contact-exports", ContactExportViewSet, basename="contact-export")


urlpatterns = [
    path(
        "contacts/<int:pk>/subject-export/",
        SubjectExportView.as_view(),
        name="contact-subject-export",
    ),
    path("contacts/<int:pk>/erase/", EraseView.as_view(), name="contact-erase"),
]
