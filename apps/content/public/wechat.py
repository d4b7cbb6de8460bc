"""The WeChat OAuth callback: ``/wx/oauth/<app_id>/callback``.

The unit's OAuth bridge redirects the visitor's browser here after WeChat authorised them,
with ``openid``, ``unionid`` (optional), ``ts``, ``next`` and ``sig`` (the recipe is in
``content.services.wechat``). A bad or expired signature is refused with a page saying so
and nothing is stored. A good one identifies the visitor at once, atomically (contact
resolution, their earlier anonymous activity attached, one activity), rather than storing
the callback for a worker: the page they go on to must already know them. Then the browser
goes to ``next`` when it is a path on this site, never elsewhere (no open redirect).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.contacts.collector.server import visitor_cookie_set, visitor_id
from apps.contacts.models import WeChatAccount
from apps.contacts.services.resolution import ErasedPerson
from apps.content.services import wechat as services

PARAM_MAX = 300
NEXT_MAX = 1000


def _refuse(request: HttpRequest, status: int, message: str) -> HttpResponse:
    return render(
        request, "content/wechat/public_refused.html", {"message": message}, status=status
    )


def safe_next(request: HttpRequest, target: str) -> str:
    """``target`` when it is a path on this site (``/p/spring/``), else ""."""
    if not target or len(target) > NEXT_MAX or not target.startswith("/"):
        return ""
    if target.startswith(("//", "/\\")) or any(ord(c) < 32 for c in target):
        return ""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return ""
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return ""
    return target


@never_cache
@require_GET
def wechat_oauth_callback(request: HttpRequest, app_id: str) -> HttpResponse:
    account = (
        WeChatAccount.objects.dangerously_unscoped()
        .select_related("unit")
        .filter(app_id=app_id[:40], is_active=True)
        .first()
    )
    if account is None:
        return _refuse(request, 404, _("This WeChat official account is not set up here."))
    query = request.GET
    openid, unionid = query.get("openid", ""), query.get("unionid", "")
    ts, target, signature = query.get("ts", ""), query.get("next", ""), query.get("sig", "")
    if not openid or not ts or not signature:
        return _refuse(
            request,
            400,
            _("This WeChat sign-in link is incomplete: it needs openid, ts and sig."),
        )
    if any(len(v) > PARAM_MAX for v in (openid, unionid, ts, signature)) or len(target) > NEXT_MAX:
        return _refuse(request, 400, _("This WeChat sign-in link is too long to be genuine."))
    params = services.callback_params(
        app_id=account.app_id, openid=openid, unionid=unionid, ts=ts, next_url=target
    )
    if not services.callback_verify(account.callback_secret, params, signature):
        return _refuse(request, 403, _("This WeChat sign-in link is not valid."))
    if not services.callback_fresh(ts):
        return _refuse(
            request,
            403,
            _("This WeChat sign-in link has expired. Open the page from WeChat again."),
        )
    anonymous_id, _new = visitor_id(request)
    try:
        services.wechat_identify(
            account=account, openid=openid, unionid=unionid, anonymous_id=anonymous_id, ts=ts
        )
    except ValidationError as exc:
        return _refuse(request, 400, " ".join(exc.messages))
    except ErasedPerson:
        pass  # they asked to be forgotten: let them browse, but record nothing about them
    destination = safe_next(request, target)
    response: HttpResponse
    if destination:
        response = redirect(destination)
    else:
        response = render(request, "content/wechat/public_done.html")
    visitor_cookie_set(response, anonymous_id, request)
    return response


urlpatterns = [
    path("wx/oauth/<str:app_id>/callback", wechat_oauth_callback, name="wechat-oauth-callback"),
]
