"""``Idempotency-Key`` for the sales API's POSTs.

A POST sent with an ``Idempotency-Key`` header runs once per (user, key). The record is
inserted first, inside the request's transaction, so a concurrent duplicate waits on the
unique index until the first one commits and then answers from what it stored:

- same key, same method, path and body → the stored status and body, with
  ``Idempotent-Replayed: true``, and nothing runs again;
- same key, anything else different → 422 with a clear message.

A request that fails with an exception (a validation error, a 404) rolls back with its
record, so a corrected retry under the same key runs. Requests without the header run as
usual.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any, cast

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api_errors import error_body
from apps.core.models import User
from apps.sales.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEY_MAX = 200


def body_hash(method: str, path: str, data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def _plain(data: Any) -> Any:
    """Response data as plain JSON values (Decimals, dates… as the API renders them)."""
    if data is None:
        return None
    return json.loads(JSONRenderer().render(data))


def _replay(record: IdempotencyRecord) -> Response:
    response = Response(record.response, status=record.status_code or status.HTTP_200_OK)
    response[REPLAYED] = "true"
    return response


def _mismatch() -> Response:
    message = _(
        "This Idempotency-Key was already used for a different request. Send a new key "
        "for a new request, or repeat the first request exactly."
    )
    return Response(
        error_body(422, "idempotency_key_reused", message),
        status=status.HTTP_422_UNPROCESSABLE_ENTITY,
    )


def idempotent(handler: Callable[..., Response]) -> Callable[..., Response]:
    """Decorate a viewset POST handler (``create`` or an ``@action``)."""

    @functools.wraps(handler)
    def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = (request.headers.get(HEADER) or "").strip()
        if not key:
            return handler(self, request, *args, **kwargs)
        if len(key) > KEY_MAX:
            raise ValidationError(
                {HEADER: [_("Keep the Idempotency-Key under %(n)d characters.") % {"n": KEY_MAX}]}
            )
        user = cast(User, request.user)
        digest = body_hash(request.method or "POST", request.path, request.data)
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        key=key,
                        user=user,
                        method=request.method or "POST",
                        path=request.path[:300],
                        body_hash=digest,
                    )
            except IntegrityError:
                # Taken: by a finished request, or by one that just committed (the insert
                # waited for it on the unique index).
                found = (
                    IdempotencyRecord.objects.select_for_update().filter(user=user, key=key).first()
                )
                if found is None:  # the other request failed and rolled back: run
                    record = IdempotencyRecord.objects.create(
                        key=key,
                        user=user,
                        method=request.method or "POST",
                        path=request.path[:300],
                        body_hash=digest,
                    )
                elif found.body_hash != digest:
                    return _mismatch()
                else:
                    return _replay(found)
            response = handler(self, request, *args, **kwargs)
            record.status_code = response.status_code
            record.response = _plain(response.data)
            record.save(update_fields=["status_code", "response"])
        return response

    return wrapper
