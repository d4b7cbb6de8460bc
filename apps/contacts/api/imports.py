"""``/api/v1/imports/``: import contacts from a CSV or XLSX file.

* ``POST /imports/`` (multipart): ``file``, ``unit``, and optionally ``mapping`` (JSON),
  ``tags``, ``consent_basis``, ``consent_channels``. With a mapping the import starts at
  once; without one it waits as a draft (``GET`` it to see the header and first rows,
  then ``POST /imports/{id}/start/``). A refused file or mapping stores nothing.
* ``GET /imports/{id}/``: status and counters, for polling.
* ``GET /imports/{id}/errors/``: the bad rows as JSON, a page at a time (``cursor`` is
  the line to continue after), or the CSV file itself with ``?download=1``.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.http import FileResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter
from rest_framework.utils.urls import replace_query_param

from apps.contacts.models import ConsentBasis, ConsentChannel, ContactImport
from apps.contacts.selectors import imports as selectors
from apps.contacts.services import imports as services
from apps.core.api_base import ScopedViewSetMixin, VisibleUnitField
from apps.core.pagination import MAX_PAGE_SIZE


@extend_schema_field(OpenApiTypes.OBJECT)
class JSONObjectField(serializers.Field):  # type: ignore[type-arg]
    """A JSON object, given as an object (JSON body) or as a string (multipart form)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            try:
                data = json.loads(data) if data.strip() else {}
            except ValueError:
                raise serializers.ValidationError(_("Not valid JSON.")) from None
        if not isinstance(data, dict):
            raise serializers.ValidationError(_("Must be a JSON object."))
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class ContactImportSerializer(serializers.ModelSerializer[ContactImport]):
    # A plain string: another "status" enum in the schema would otherwise collide.
    status = serializers.CharField(read_only=True, help_text="pending, running, done or failed")
    is_draft = serializers.SerializerMethodField()
    has_error_file = serializers.SerializerMethodField()

    class Meta:
        model = ContactImport
        fields = [
            "id",
            "unit",
            "original_name",
            "file_type",
            "encoding",
            "is_draft",
            "status",
            "mapping",
            "tag_ids",
            "consent",
            "total_rows",
            "processed_rows",
            "imported_rows",
            "error_rows",
            "created_contacts",
            "matched_contacts",
            "has_error_file",
            "failure",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_is_draft(self, obj: ContactImport) -> bool:
        return services.is_draft(obj)

    def get_has_error_file(self, obj: ContactImport) -> bool:
        return bool(obj.error_file)


class _StartFields(serializers.Serializer[Any]):
    mapping = JSONObjectField(
        help_text='{"columns": {"手机": "phone", "姓名": "name", …}, "required": [], '
        '"wechat_app_id": ""}, or just {"手机": "phone", …}'
    )
    tags = serializers.ListField(child=serializers.IntegerField(), required=False)
    # Plain strings: the service checks them and says what is allowed.
    consent_basis = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text=f"{', '.join(ConsentBasis.values)}, or none (the default)",
    )
    consent_channels = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text=f"any of {', '.join(ConsentChannel.values)}",
    )
    opens_lead = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="warm or hot: each imported contact gets a lead in the unit; empty: none",
    )

    def consent(self) -> dict[str, Any]:
        data = self.validated_data
        return {"basis": data.get("consent_basis", ""), "channels": data.get("consent_channels")}


class ContactImportCreateSerializer(_StartFields):
    file = serializers.FileField()
    unit = VisibleUnitField()
    mapping = JSONObjectField(required=False)


class ContactImportStartSerializer(_StartFields):
    unit = VisibleUnitField(required=False)


class ImportErrorSerializer(serializers.Serializer[Any]):
    line = serializers.IntegerField()
    row = serializers.IntegerField(allow_null=True)
    column = serializers.CharField()
    value = serializers.CharField()
    reason = serializers.CharField()


class ImportErrorPageSerializer(serializers.Serializer[Any]):
    next = serializers.URLField(allow_null=True)
    results = ImportErrorSerializer(many=True)


class ContactImportViewSet(
    ScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,  # type: ignore[type-arg]
):
    """Contact imports into the units where the caller may import contacts."""

    queryset = ContactImport.objects.all()
    serializer_class = ContactImportSerializer
    read_permission = services.IMPORT_PERMISSION
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    filterset_fields = ["unit", "status"]
    ordering = ("-id",)

    def scope_queryset(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        return queryset.select_related("unit")

    @extend_schema(
        request={"multipart/form-data": ContactImportCreateSerializer},
        responses={201: ContactImportSerializer},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = ContactImportCreateSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        contact_import = services.contact_import_submit(
            unit=data["unit"],
            upload=data["file"],
            mapping=data.get("mapping"),
            tag_ids=data.get("tags") or [],
            consent=serializer.consent(),
            opens_lead=data.get("opens_lead") or "",
            acting_user=request.user,  # type: ignore[arg-type]
        )
        return Response(
            ContactImportSerializer(contact_import).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=ContactImportStartSerializer, responses=ContactImportSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str | None = None) -> Response:
        """Start a draft import with a mapping (and tags, consent, another unit)."""
        contact_import = self.get_object()
        serializer = ContactImportStartSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            started = services.contact_import_start(
                contact_import=contact_import,
                mapping=data["mapping"],
                unit=data.get("unit"),
                tag_ids=data.get("tags") or [],
                consent=serializer.consent(),
                opens_lead=data.get("opens_lead") or "",
                acting_user=request.user,  # type: ignore[arg-type]
            )
        except DjangoValidationError as exc:
            if not hasattr(exc, "error_dict"):
                raise serializers.ValidationError({"non_field_errors": exc.messages}) from None
            raise
        return Response(ContactImportSerializer(started).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("cursor", int, description="The line to continue after."),
            OpenApiParameter("page_size", int, description="Lines per page, 1–200 (default 50)."),
            OpenApiParameter("download", bool, description="1: the CSV error file itself."),
        ],
        responses={200: ImportErrorPageSerializer},
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def errors(self, request: Request, pk: str | None = None) -> Response | FileResponse:
        """The rows that were not imported: row number, column, value and reason."""
        contact_import = self.get_object()
        if request.query_params.get("download") in ("1", "true"):
            if not contact_import.error_file:
                raise NotFound(_("This import has no error file."))
            return FileResponse(
                contact_import.error_file.open("rb"),
                as_attachment=True,
                filename=f"import-{contact_import.pk}-errors.csv",
                content_type="text/csv; charset=utf-8",
            )
        try:
            after = int(request.query_params.get("cursor") or 0)
            size = int(request.query_params.get("page_size") or 50)
        except ValueError:
            raise serializers.ValidationError(
                {"cursor": [_("Give the line number to continue after.")]}
            ) from None
        size = max(1, min(size, MAX_PAGE_SIZE))
        rows = list(
            selectors.import_errors(contact_import=contact_import, after=after, limit=size + 1)
        )
        more = len(rows) > size
        rows = rows[:size]
        next_url = None
        if more:
            next_url = replace_query_param(
                request.build_absolute_uri(), "cursor", str(rows[-1]["line"])
            )
        return Response({"next": next_url, "results": ImportErrorSerializer(rows, many=True).data})


def register(router: BaseRouter) -> None:
    router.register("imports", ContactImportViewSet, basename="contact-import")
