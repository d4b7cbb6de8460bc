"""API: WeChat official accounts, and follow/unfollow events pushed by the unit's WeChat
bridge.

``/wechat/accounts/`` needs ``contacts.configure`` in the account's unit. The callback
secret is returned once, when the account is made (and by ``rotate-secret``); afterwards
only its last four characters. Accounts are not deleted (openids are scoped by their app
id): switch one off with ``is_active``.

``POST /wechat/events`` takes one event, a list, or ``{"events": [...]}`` (at most
``MAX_EVENTS``), each ``{app_id, openid, unionid?, event: follow|unfollow,
occurred_at}``. Events are recorded independently and idempotently (the same app id,
openid, event and time is recorded once); the answer says per item ``created``,
``duplicate`` or ``error`` with the reasons. It needs ``contacts.edit`` in the account's
unit. A request where no event is valid is a 400.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.urls import path, reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter
from rest_framework.views import APIView

from apps.contacts.models import WeChatAccount
from apps.contacts.services.resolution import ErasedPerson
from apps.content.services import wechat as services
from apps.core.api_base import ScopedModelViewSet, VisibleUnitField
from apps.core.api_errors import error_body
from apps.core.models import User

CONFIGURE = "contacts.configure"
EDIT = "contacts.edit"
MAX_EVENTS = 500


class WeChatAccountSerializer(serializers.ModelSerializer[WeChatAccount]):
    unit = VisibleUnitField()
    secret_hint = serializers.SerializerMethodField(
        help_text="The callback secret's last four characters."
    )
    callback_url = serializers.SerializerMethodField(
        help_text="Where the OAuth bridge redirects the visitor's browser."
    )

    class Meta:
        model = WeChatAccount
        fields = [
            "id",
            "unit",
            "name",
            "app_id",
            "is_active",
            "created_at",
            "secret_hint",
            "callback_url",
        ]
        read_only_fields = ["created_at"]
        # The unique app id is checked by the service, with a clear message.
        extra_kwargs: ClassVar[dict[str, Any]] = {"app_id": {"validators": []}}

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        if self.instance is not None:  # unit and app id are chosen once
            fields["unit"].read_only = True
            fields["app_id"].read_only = True
        return fields

    def get_secret_hint(self, obj: WeChatAccount) -> str:
        return f"…{obj.callback_secret[-4:]}"

    def get_callback_url(self, obj: WeChatAccount) -> str:
        url = reverse("wechat-oauth-callback", args=[obj.app_id])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


class WeChatAccountCreatedSerializer(WeChatAccountSerializer):
    callback_secret = serializers.CharField(read_only=True, help_text="Shown this once.")

    class Meta(WeChatAccountSerializer.Meta):
        fields = [*WeChatAccountSerializer.Meta.fields, "callback_secret"]


class WeChatAccountViewSet(ScopedModelViewSet):
    """A unit's WeChat official accounts (their app ids scope the openids they issue)."""

    queryset = WeChatAccount.objects.all()
    serializer_class = WeChatAccountSerializer
    read_permission = CONFIGURE
    write_permission = CONFIGURE
    ordering = ("id",)
    http_method_names = ["get", "post", "put", "patch", "head", "options"]
    filterset_fields = ["unit", "is_active", "app_id"]

    @property
    def actor(self) -> User:
        return cast(User, self.request.user)

    @extend_schema(request=WeChatAccountSerializer, responses={201: WeChatAccountCreatedSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        account = services.wechat_account_create(
            unit=data["unit"], name=data["name"], app_id=data["app_id"], acting_user=self.actor
        )
        body = WeChatAccountCreatedSerializer(account, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        account = cast(WeChatAccount, serializer.instance)
        data = serializer.validated_data  # type: ignore[attr-defined]
        serializer.instance = services.wechat_account_update(
            account=account,
            name=data.get("name", account.name),
            is_active=data.get("is_active", account.is_active),
            acting_user=self.actor,
        )

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "WeChatSecretRotated", {"callback_secret": serializers.CharField()}
        ),
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        account = self.get_object()
        if account.unit_id not in self.writable_unit_ids():
            raise PermissionDenied(_("You may read this, but not change it."))
        secret = services.wechat_account_rotate_secret(account=account, acting_user=self.actor)
        return Response({"callback_secret": secret})


# --- Follow / unfollow events ----------------------------------------------------------------


class WeChatEventSerializer(serializers.Serializer[Any]):
    app_id = serializers.CharField(max_length=40)
    openid = serializers.CharField(max_length=254)
    unionid = serializers.CharField(max_length=254, required=False, allow_blank=True, default="")
    event = serializers.ChoiceField(choices=services.EVENTS)
    occurred_at = serializers.DateTimeField(
        help_text="ISO 8601; without a zone the unit's time (Asia/Shanghai) is assumed."
    )


# For the schema only; the view builds its answer as plain data.
WeChatEventsAnswerSerializer = inline_serializer(
    "WeChatEventsAnswer",
    {
        "created": serializers.IntegerField(),
        "duplicates": serializers.IntegerField(),
        "errors": serializers.IntegerField(),
        "results": inline_serializer(
            "WeChatEventResult",
            {
                "index": serializers.IntegerField(),
                "status": serializers.ChoiceField(choices=["created", "duplicate", "error"]),
                "contact": serializers.IntegerField(required=False),
                "errors": serializers.DictField(required=False),
            },
            many=True,
        ),
    },
)


def _items(data: Any) -> list[Any] | None:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        if "events" in data:
            return data["events"] if isinstance(data["events"], list) else None
        return [data]
    return None


class WeChatEventsView(APIView):
    """Follow and unfollow events of the caller's units' official accounts."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=WeChatEventSerializer(many=True),
        responses={200: WeChatEventsAnswerSerializer, 400: WeChatEventsAnswerSerializer},
    )
    def post(self, request: Request) -> Response:
        items = _items(request.data)
        if items is None or not items:
            return Response(
                error_body(
                    400,
                    "invalid",
                    _('Send an event, a list of events, or {"events": [...]}.'),
                ),
                status=400,
            )
        if len(items) > MAX_EVENTS:
            return Response(
                error_body(
                    400, "too_many", _("At most %(n)d events per request.") % {"n": MAX_EVENTS}
                ),
                status=400,
            )
        app_ids = {i.get("app_id") for i in items if isinstance(i, dict)}
        accounts = {
            a.app_id: a
            for a in WeChatAccount.objects.visible_to(request.user, EDIT)
            .select_related("unit")
            .filter(app_id__in=[a for a in app_ids if isinstance(a, str)], is_active=True)
        }
        results = [self._one(index, item, accounts) for index, item in enumerate(items)]
        counts = {
            "created": sum(r["status"] == "created" for r in results),
            "duplicates": sum(r["status"] == "duplicate" for r in results),
            "errors": sum(r["status"] == "error" for r in results),
        }
        body = {**counts, "results": results}
        if counts["errors"] == len(results):
            failed = error_body(
                400,
                "invalid",
                _("No event in the request was valid; see results for each one's reasons."),
            )
            return Response({**failed, **body}, status=400)
        return Response(body)

    def _one(self, index: int, item: Any, accounts: dict[str, WeChatAccount]) -> dict[str, Any]:
        serializer = WeChatEventSerializer(data=item)
        if not serializer.is_valid():
            return {"index": index, "status": "error", "errors": serializer.errors}
        data = serializer.validated_data
        account = accounts.get(data["app_id"])
        if account is None:
            return {
                "index": index,
                "status": "error",
                "errors": {
                    "app_id": [_("No active official account of your units has this app id.")]
                },
            }
        try:
            with transaction.atomic():
                outcome = services.wechat_follow_record(
                    account=account,
                    openid=data["openid"],
                    unionid=data["unionid"],
                    event=data["event"],
                    occurred_at=data["occurred_at"],
                    acting_user=cast(User, self.request.user),
                )
        except DjangoValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else {"event": exc.messages}
            return {"index": index, "status": "error", "errors": errors}
        except ErasedPerson:
            return {
                "index": index,
                "status": "error",
                "errors": {"openid": [_("This person asked to be erased.")]},
            }
        return {
            "index": index,
            "status": "created" if outcome.created else "duplicate",
            "contact": outcome.contact.pk,
        }


def register(router: BaseRouter) -> None:
    router.register("wechat/accounts", WeChatAccountViewSet, basename="wechat-account")


urlpatterns = [path("wechat/events", WeChatEventsView.as_view(), name="wechat-events")]
