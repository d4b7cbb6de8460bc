"""Console: tracked sites (websites that send events to the collector), their embed
snippet, and the signing secret their servers use for identify calls.

Only units where the user holds ``contacts.configure`` are offered; another unit's site is
"not found". A new or rotated signing secret is shown once, on the page the write
redirects to (it travels there in the session and is dropped as it is shown), like an API
token.
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

from apps.contacts.models import Site
from apps.contacts.selectors import config as config_selectors
from apps.contacts.selectors import sites as selectors
from apps.contacts.services import sites as services
from apps.contacts.views.tags import (
    add_errors,
    back_to,
    configurable_units,
    first_page,
    forbidden,
    pick_unit,
)
from apps.core.roles import Surface
from apps.core.web import surface_context, surface_required, user_of

# Where a new secret waits for the one page view that shows it.
SECRET_SESSION_KEY = "contacts.site_secret.%d"  # noqa: S105 - a key name, not a secret

# The embed snippet. The stub keeps calls made before t.js has loaded (it replays them).
SNIPPET = """<!-- LeadLoop -->
<script>
window.leadloop=window.leadloop||{{q:[],track:function(){{leadloop.q.push(["track",arguments])}},identify:function(){{leadloop.q.push(["identify",arguments])}}}};
</script>
<script async src="{script_url}" data-key="{public_key}"></script>"""


class OriginsField(forms.Field):
    """Allowed origins typed one per line (or separated by spaces or commas)."""

    widget = forms.Textarea(
        attrs={
            "rows": 3,
            "spellcheck": "false",
            "class": "code",
            "placeholder": "https://www.example.cn",
        }
    )

    def to_python(self, value: Any) -> list[str]:
        text = str(value or "")
        return [part for part in text.replace(",", " ").split() if part]

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(value)
        return value


class SiteForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    allowed_origins = OriginsField(
        label=gettext_lazy("Allowed origins"),
        required=False,
        help_text=gettext_lazy(
            "One per line, e.g. https://www.example.cn. Events from other origins are refused; "
            "leave empty to accept any origin."
        ),
    )
    max_events_per_batch = forms.IntegerField(
        label=gettext_lazy("Events per request, at most"),
        min_value=services.EVENTS_PER_BATCH[0],
        max_value=services.EVENTS_PER_BATCH[1],
        initial=100,
    )
    max_requests_per_minute = forms.IntegerField(
        label=gettext_lazy("Requests per minute per visitor, at most"),
        min_value=services.REQUESTS_PER_MINUTE[0],
        max_value=services.REQUESTS_PER_MINUTE[1],
        initial=120,
    )
    is_active = forms.BooleanField(
        label=gettext_lazy("Active"),
        required=False,
        initial=True,
        help_text=gettext_lazy("An inactive site's events are refused."),
    )

    def __init__(self, *args: Any, creating: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if creating:
            del self.fields["is_active"]


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return surface_context(request, Surface.CONSOLE, **extra)


def _remember_secret(request: HttpRequest, site: Site, secret: str) -> None:
    request.session[SECRET_SESSION_KEY % site.pk] = secret


def snippet_of(request: HttpRequest, site: Site) -> str:
    script_url = request.build_absolute_uri(reverse("tracker-script"))
    return SNIPPET.format(script_url=script_url, public_key=site.public_key)


@surface_required(Surface.CONSOLE)
def site_list(request: HttpRequest) -> HttpResponse:
    units = configurable_units(request)
    if not units and not config_selectors.configurable_units(user=user_of(request)):
        return forbidden(request, _("Tracked sites"))
    unit = pick_unit(request, units)
    context = _context(request, units=units, unit=unit)
    if unit is None:
        return render(request, "contacts/sites/list.html", context)
    form = SiteForm(request.POST if request.method == "POST" else None, creating=True)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            site = services.site_create(
                unit=unit,
                name=data["name"],
                allowed_origins=data["allowed_origins"],
                max_events_per_batch=data["max_events_per_batch"],
                max_requests_per_minute=data["max_requests_per_minute"],
                acting_user=user_of(request),
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            _remember_secret(request, site, site.signing_secret)
            messages.success(
                request,
                _("Site “%(name)s” created. Paste the snippet below into its pages.")
                % {"name": site.name},
            )
            return redirect("contacts:site-edit", site.pk)
    page = first_page(request, selectors.sites_of(user=user_of(request), unit_id=unit.pk), ("-id",))
    context.update(page=page, form=form, filter_query=f"unit={unit.pk}&")
    return render(request, "contacts/sites/list.html", context, status=400 if form.errors else 200)


def _site_or_404(request: HttpRequest, pk: int) -> Site:
    site = selectors.site_get(user=user_of(request), pk=pk)
    if site is None:
        raise Http404
    return site


@surface_required(Surface.CONSOLE)
def site_edit(request: HttpRequest, pk: int) -> HttpResponse:
    site = _site_or_404(request, pk)
    form = SiteForm(
        request.POST or None,
        initial={
            "name": site.name,
            "allowed_origins": site.allowed_origins,
            "max_events_per_batch": site.max_events_per_batch,
            "max_requests_per_minute": site.max_requests_per_minute,
            "is_active": site.is_active,
        },
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.site_update(
                site=site,
                name=data["name"],
                allowed_origins=data["allowed_origins"],
                max_events_per_batch=data["max_events_per_batch"],
                max_requests_per_minute=data["max_requests_per_minute"],
                is_active=data["is_active"],
                acting_user=user_of(request),
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(request, _("Site “%(name)s” saved.") % {"name": site.name})
            return back_to("contacts:sites", site.unit_id)
    # Shown once: taken out of the session as this page renders.
    new_secret = request.session.pop(SECRET_SESSION_KEY % site.pk, None)
    context = _context(
        request,
        unit=site.unit,
        site=site,
        form=form,
        new_secret=new_secret,
        snippet=snippet_of(request, site),
        collect_url=request.build_absolute_uri(reverse("api:collect")),
        secret_hint=site.signing_secret[-4:],
    )
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "contacts/sites/edit.html", context, status=status)


@surface_required(Surface.CONSOLE)
@require_POST
def site_rotate_secret(request: HttpRequest, pk: int) -> HttpResponse:
    site = _site_or_404(request, pk)
    secret = services.site_rotate_secret(site=site, acting_user=user_of(request))
    _remember_secret(request, site, secret)
    messages.success(
        request,
        _("New signing secret made for “%(name)s”; the old one no longer works.")
        % {"name": site.name},
    )
    return redirect("contacts:site-edit", site.pk)


urlpatterns = [
    path("sites/", site_list, name="sites"),
    path("sites/<int:pk>/", site_edit, name="site-edit"),
    path("sites/<int:pk>/rotate-secret/", site_rotate_secret, name="site-rotate-secret"),
]
