"""Console: a unit's WeChat official accounts (``/console/wechat/``), their callback
address for the OAuth bridge, and the callback secret the bridge signs with.

Only units where the user holds ``contacts.configure`` are offered; another unit's account
is "not found". A new or rotated secret is shown once, on the page the write redirects to
(it travels there in the session and is dropped as it is shown), like an API token.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from apps.contacts.models import WeChatAccount
from apps.contacts.selectors.config import configurable_units
from apps.content.services import wechat as services
from apps.core.models import BusinessUnit
from apps.core.pagination import InvalidCursor, keyset_page
from apps.core.roles import Surface
from apps.core.web import page_units, surface_context, surface_required, user_of

CONFIGURE = "contacts.configure"
PAGE_SIZE = 50
SECRET_SESSION_KEY = "content.wechat_secret.%d"  # noqa: S105 - a key name, not a secret


class AccountForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=services.NAME_MAX)
    app_id = forms.CharField(
        label=gettext_lazy("App id"),
        max_length=40,
        help_text=gettext_lazy(
            "From the official account's settings (开发 › 基本配置), e.g. wx5f3c1a2b4d6e8f01."
        ),
    )
    is_active = forms.BooleanField(
        label=gettext_lazy("Active"),
        required=False,
        initial=True,
        help_text=gettext_lazy("Callbacks for an inactive account are refused."),
    )

    def __init__(self, *args: Any, creating: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if creating:
            del self.fields["is_active"]
        else:
            del self.fields["app_id"]


def _units(request: HttpRequest) -> list[BusinessUnit]:
    return configurable_units(user=user_of(request), narrowed=page_units(request, CONFIGURE))


def _pick(request: HttpRequest, units: list[BusinessUnit]) -> BusinessUnit | None:
    raw = request.GET.get("unit") or request.POST.get("unit")
    if not raw:
        return units[0] if units else None
    for unit in units:
        if str(unit.pk) == raw:
            return unit
    raise Http404


def _add_errors(form: forms.Form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "core/forbidden.html", {"surface": _("WeChat accounts")}, status=403)


@surface_required(Surface.CONSOLE)
def wechat_list(request: HttpRequest) -> HttpResponse:
    units = _units(request)
    if not units and not configurable_units(user=user_of(request)):
        return _forbidden(request)
    unit = _pick(request, units)
    context = surface_context(request, Surface.CONSOLE, units=units, unit=unit)
    if unit is None:
        return render(request, "content/wechat/list.html", context)
    form = AccountForm(request.POST if request.method == "POST" else None, creating=True)
    if request.method == "POST" and form.is_valid():
        try:
            account = services.wechat_account_create(
                unit=unit,
                name=form.cleaned_data["name"],
                app_id=form.cleaned_data["app_id"],
                acting_user=user_of(request),
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            request.session[SECRET_SESSION_KEY % account.pk] = account.callback_secret
            messages.success(
                request,
                _(
                    "Official account “%(name)s” added. Give its callback address and secret "
                    "to your WeChat bridge."
                )
                % {"name": account.name},
            )
            return redirect("content:wechat-edit", account.pk)
    qs = WeChatAccount.objects.visible_to(user_of(request), CONFIGURE).filter(unit=unit)
    try:
        page = keyset_page(qs, ordering=("-id",), cursor=request.GET.get("cursor"), size=PAGE_SIZE)
    except InvalidCursor:
        page = keyset_page(qs, ordering=("-id",), size=PAGE_SIZE)
    context.update(page=page, form=form, filter_query=f"unit={unit.pk}&")
    return render(request, "content/wechat/list.html", context, status=400 if form.errors else 200)


def _account_or_404(request: HttpRequest, pk: int) -> WeChatAccount:
    account = (
        WeChatAccount.objects.visible_to(user_of(request), CONFIGURE)
        .select_related("unit")
        .filter(pk=pk)
        .first()
    )
    if account is None:
        raise Http404
    return account


@surface_required(Surface.CONSOLE)
def wechat_edit(request: HttpRequest, pk: int) -> HttpResponse:
    account = _account_or_404(request, pk)
    form = AccountForm(
        request.POST or None, initial={"name": account.name, "is_active": account.is_active}
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.wechat_account_update(
                account=account,
                name=form.cleaned_data["name"],
                is_active=form.cleaned_data["is_active"],
                acting_user=user_of(request),
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(
                request, _("Official account “%(name)s” saved.") % {"name": account.name}
            )
            return redirect(f"{reverse('content:wechat')}?unit={account.unit_id}")
    new_secret = request.session.pop(SECRET_SESSION_KEY % account.pk, None)
    context = surface_context(
        request,
        Surface.CONSOLE,
        account=account,
        unit=account.unit,
        form=form,
        new_secret=new_secret,
        secret_hint=account.callback_secret[-4:],
        callback_url=request.build_absolute_uri(
            reverse("wechat-oauth-callback", args=[account.app_id])
        ),
        events_url=request.build_absolute_uri(reverse("api:wechat-events")),
    )
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "content/wechat/edit.html", context, status=status)


@surface_required(Surface.CONSOLE)
@require_POST
def wechat_rotate_secret(request: HttpRequest, pk: int) -> HttpResponse:
    account = _account_or_404(request, pk)
    secret = services.wechat_account_rotate_secret(account=account, acting_user=user_of(request))
    request.session[SECRET_SESSION_KEY % account.pk] = secret
    messages.success(
        request,
        _("New callback secret made for “%(name)s”; links signed with the old one no longer work.")
        % {"name": account.name},
    )
    return redirect("content:wechat-edit", account.pk)


urlpatterns = [
    path("console/wechat/", wechat_list, name="wechat"),
    path("console/wechat/<int:pk>/", wechat_edit, name="wechat-edit"),
    path(
        "console/wechat/<int:pk>/rotate-secret/", wechat_rotate_secret, name="wechat-rotate-secret"
    ),
]
