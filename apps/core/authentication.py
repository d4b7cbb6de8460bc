from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from apps.core import services
from apps.core.models import ApiToken, User


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer ll_…`` with a personal token created in the console."""

    keywords = ("bearer", "token")

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                _("Send the token as 'Authorization: Bearer <token>'.")
            )
        token = services.api_token_authenticate(raw=header[1])
        if token is None:
            raise exceptions.AuthenticationFailed(
                _("This API token is not valid: it may be mistyped, expired or revoked.")
            )
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        # A WWW-Authenticate header makes DRF answer 401 (not 403) to bad credentials.
        return 'Bearer realm="api"'


def _register_schema_extension() -> Any:
    from drf_spectacular.extensions import OpenApiAuthenticationExtension

    class ApiTokenAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
        target_class = "apps.core.authentication.ApiTokenAuthentication"
        name = "apiToken"

        def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
            return {
                "type": "http",
                "scheme": "bearer",
                "description": "A personal API token from Console → API tokens.",
            }

    return ApiTokenAuthenticationScheme


_register_schema_extension()
