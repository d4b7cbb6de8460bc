from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django.views.i18n import set_language

from apps.core import selectors, services
from apps.core.audit_actions import ACTION_LABELS
from apps.core.forms import ApiTokenForm, AuditFilterForm, LoginForm
from apps.core.health import health_report
from apps.core.models import Notification
from apps.core.navigation import cards_for
from apps.core.pagination import InvalidCursor, keyset_page
from apps.core.roles import Surface
from apps.core.scoping import visible_unit_ids
from apps.core.web import page_units, surface_context, surface_required, user_of

SURFACE_TEMPLATES = {
    Surface.CONSOLE: "core/console_home.html",
    Surface.SDR: "core/sdr_home.html",
    Surface.MOBILE: "core/mobile_home.html",
}


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    template_name = "core/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form: LoginForm) -> HttpResponse:  # type: ignore[override]
        response = super().form_valid(form)
        language = form.get_user().language
        if language:
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                language,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                secure=settings.LANGUAGE_COOKIE_SECURE,
                httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                samesite=settings.LANGUAGE_COOKIE_SAMESITE,  # type: ignore[arg-type]
            )
        return response

    def form_invalid(self, form: LoginForm) -> HttpResponse:  # type: ignore[override]
        response = super().form_invalid(form)
        if getattr(form, "locked", False):
            response.status_code = 429
        return response


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("core:login")
    landing = selectors.landing_surface(user=user_of(request))  # type: ignore[arg-type]
    if landing is None:
        return render(request, "core/no_role.html", status=200)
    return redirect(
        {"console": "core:console-home", "sdr": "core:sdr-home", "mobile": "core:mobile-home"}[
            landing
        ]
    )


def _surface_home(request: HttpRequest, surface: str) -> HttpResponse:
    unit_ids = page_units(request)
    context = surface_context(
        request,
        surface,
        cards=cards_for(surface, request, unit_ids),
        memberships=selectors.memberships_of(user=user_of(request)),  # type: ignore[arg-type]
    )
    if surface == Surface.CONSOLE and visible_unit_ids(request.user, "core.view_audit"):
        context["recent_audit"] = selectors.recent_audit(user=user_of(request))  # type: ignore[arg-type]
    return render(request, SURFACE_TEMPLATES[Surface(surface)], context)


@surface_required(Surface.CONSOLE)
def console_home(request: HttpRequest) -> HttpResponse:
    return _surface_home(request, Surface.CONSOLE)


@surface_required(Surface.SDR)
def sdr_home(request: HttpRequest) -> HttpResponse:
    return _surface_home(request, Surface.SDR)


@surface_required(Surface.MOBILE)
def mobile_home(request: HttpRequest) -> HttpResponse:
    return _surface_home(request, Surface.MOBILE)


@require_POST
def language_switch(request: HttpRequest) -> HttpResponse:
    """Django's set_language, plus: a signed-in user's choice follows them to every device."""
    response = set_language(request)
    language = request.POST.get("language", "")
    if request.user.is_authenticated and language in dict(settings.LANGUAGES):
        services.user_set_language(user=user_of(request), language=language)
    return response


@login_required
@require_POST
def unit_switch(request: HttpRequest) -> HttpResponse:
    raw = request.POST.get("unit", "")
    if raw in ("", "all"):
        request.session.pop("unit", None)
    else:
        try:
            unit_id = int(raw)
        except ValueError:
            raise Http404 from None
        if unit_id not in visible_unit_ids(request.user) and not request.user.is_superuser:
            raise Http404
        request.session["unit"] = unit_id
    target = request.POST.get("next") or reverse("core:home")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = reverse("core:home")
    return redirect(target)


def _day_start(day: dt.date | None) -> dt.datetime | None:
    if day is None:
        return None
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


@surface_required(Surface.CONSOLE)
def audit_list(request: HttpRequest) -> HttpResponse:
    if not (request.user.is_superuser or visible_unit_ids(request.user, "core.view_audit")):
        return render(request, "core/forbidden.html", {"surface": _("Audit log")}, status=403)
    form = AuditFilterForm(request.GET or None)
    filters = selectors.AuditFilters()
    if form.is_valid():
        until = form.cleaned_data["until"]
        filters = selectors.AuditFilters(
            action=form.cleaned_data["action"],
            actor=form.cleaned_data["actor"],
            since=_day_start(form.cleaned_data["since"]),
            until=_day_start(until + dt.timedelta(days=1)) if until else None,
        )
    qs = selectors.audit_log_list(
        user=user_of(request),
        filters=filters,
        unit_ids=page_units(request, "core.view_audit"),
    )
    try:
        page = keyset_page(qs, cursor=request.GET.get("cursor"), size=50)
    except InvalidCursor:
        messages.warning(
            request, _("That page link is no longer valid; showing the newest entries.")
        )
        page = keyset_page(qs, size=50)
    # Page links keep the filters; the cursor is added by the template.
    kept = request.GET.copy()
    kept.pop("cursor", None)
    filter_query = kept.urlencode() + "&" if kept else ""
    context = surface_context(
        request,
        Surface.CONSOLE,
        form=form,
        page=page,
        filter_query=filter_query,
        known_actions=sorted(ACTION_LABELS.items()),
    )
    template = "core/partials/_audit_rows.html" if request.htmx else "core/audit_list.html"  # type: ignore[attr-defined]
    return render(request, template, context)


@surface_required(Surface.CONSOLE)
def team(request: HttpRequest) -> HttpResponse:
    members = selectors.team_members(
        user=user_of(request), unit_ids=page_units(request, "core.view_members")
    )  # type: ignore[arg-type]
    return render(
        request, "core/team.html", surface_context(request, Surface.CONSOLE, members=members)
    )


@surface_required(Surface.CONSOLE)
def token_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    new_secret = None
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        expires = form.cleaned_data["expires_at"]
        try:
            token, new_secret = services.api_token_create(
                user=user,  # type: ignore[arg-type]
                name=form.cleaned_data["name"],
                expires_at=_day_start(expires + dt.timedelta(days=1)) if expires else None,
                acting_user=user,  # type: ignore[arg-type]
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form = ApiTokenForm()
            messages.success(request, _("Token “%(name)s” created.") % {"name": token.name})
    tokens = selectors.api_tokens_of(user=user)  # type: ignore[arg-type]
    context = surface_context(
        request,
        Surface.CONSOLE,
        form=form,
        tokens=tokens,
        new_secret=new_secret,
        api_base=request.build_absolute_uri("/api/v1/"),
    )
    return render(request, "core/tokens.html", context, status=400 if form.errors else 200)


@surface_required(Surface.CONSOLE)
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    # Only your own tokens: anyone else's id is simply "not found".
    token = selectors.api_tokens_of(user=user_of(request)).filter(pk=pk).first()  # type: ignore[arg-type]
    if token is None:
        raise Http404
    services.api_token_revoke(token=token, acting_user=user_of(request))  # type: ignore[arg-type]
    messages.success(
        request, _("Token “%(name)s” revoked; it no longer works.") % {"name": token.name}
    )
    return redirect("core:tokens")


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    report, healthy = health_report()
    return JsonResponse(report, status=200 if healthy else 503)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        from apps.core.api_errors import api_not_found

        return api_not_found(request, exception)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        from apps.core.api_errors import json_error

        return json_error(request, 500, "server_error", _("Something went wrong on our side."))
    return render(request, "500.html", status=500)


# --- Notifications (the bell) ----------------------------------------------------------------

NOTIFICATIONS_PAGE_SIZE = 30


def _notifications_surface(request: HttpRequest) -> str | None:
    """The shell the list is shown in: the surface the bell was clicked in, if the user
    may open it, else where the user lands."""
    user = user_of(request)
    wanted = request.GET.get("surface") or request.POST.get("surface") or ""
    surfaces = selectors.user_surfaces(user=user)
    if wanted in surfaces:
        return wanted
    return selectors.landing_surface(user=user)


def _notifications_back(request: HttpRequest) -> HttpResponse:
    surface = _notifications_surface(request)
    url = reverse("core:notifications")
    query = [f"surface={surface}"] if surface else []
    if request.POST.get("unread") == "1":
        query.append("unread=1")
    return redirect(f"{url}?{'&'.join(query)}" if query else url)


@login_required
@require_GET
def notification_list(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    unread_only = request.GET.get("unread") == "1"
    qs = Notification.objects.visible_to(user)
    if unread_only:
        qs = qs.unread()
    try:
        page = keyset_page(qs, cursor=request.GET.get("cursor"), size=NOTIFICATIONS_PAGE_SIZE)
    except InvalidCursor:
        messages.warning(
            request, _("That page link is no longer valid; showing the newest notifications.")
        )
        page = keyset_page(qs, size=NOTIFICATIONS_PAGE_SIZE)
    surface = _notifications_surface(request)
    kept = {"surface": surface or "", "unread": "1" if unread_only else ""}
    filter_query = "".join(f"{k}={v}&" for k, v in kept.items() if v)
    context = (surface_context(request, surface) if surface else {"surface": None, "nav": []}) | {
        "page": page,
        "unread_only": unread_only,
        "filter_query": filter_query,
        "base_template": "mobile_shell.html" if surface == Surface.MOBILE else "shell.html",
    }
    return render(request, "core/notifications.html", context)


@login_required
@require_GET
def notification_open(request: HttpRequest, pk: int) -> HttpResponse:
    """Clicking a notification: mark it read and go where it points (a path on this site)."""
    user = user_of(request)
    notice = Notification.objects.visible_to(user).filter(pk=pk).first()
    if notice is None:
        raise Http404
    services.notifications_mark_read(user=user, ids=[notice.pk])
    target = notice.url
    if not target or not url_has_allowed_host_and_scheme(
        target, {request.get_host()}, request.is_secure()
    ):
        return _notifications_back(request)
    return redirect(target)


@login_required
@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    """Mark one (``id``) or every unread notification read."""
    user = user_of(request)
    raw = request.POST.get("id")
    if raw:
        try:
            ids: list[int] | None = [int(raw)]
        except ValueError:
            raise Http404 from None
    else:
        ids = None
    count = services.notifications_mark_read(user=user, ids=ids)
    if ids is None and count:
        messages.success(request, _("All notifications marked read."))
    return _notifications_back(request)
