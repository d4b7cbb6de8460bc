"""One error shape for the whole API.

Every error body is ``{"error": {"status": 400, "code": "invalid", "message": "…",
"fields": {"name": ["…"]}}}``; ``fields`` appears only for validation errors.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for value in detail.values():
            return _first_message(value)
        return ""
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else ""
    return str(detail)


def _code(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    if isinstance(codes, str):
        return codes
    return exc.default_code


def error_body(status_code: int, code: str, message: str, fields: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"status": status_code, "code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        fields = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        message = _("Some fields are not valid: %(first)s") % {"first": _first_message(detail)}
        response.data = error_body(response.status_code, "invalid", message, fields)
    elif isinstance(exc, exceptions.APIException):
        response.data = error_body(response.status_code, _code(exc), _first_message(exc.detail))
    elif isinstance(exc, Http404):
        response.data = error_body(404, "not_found", _("Not found."))
    elif isinstance(exc, DjangoPermissionDenied):
        response.data = error_body(403, "permission_denied", str(exc) or _("Not allowed."))
    return response


def json_error(request: HttpRequest, status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(status_code, code, message), status=status_code)


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return json_error(request, status.HTTP_404_NOT_FOUND, "not_found", _("No such API endpoint."))
