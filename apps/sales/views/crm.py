"""Console: the CRM link's webhooks (``/console/sales/webhooks/``).

Sales ops (``sales.configure``) see their units' webhook endpoints, add one (the signing
secret is shown once, right after), switch one off or on again, and read the delivery
log: each event's status, attempts and the receiver's last status code. Another unit's
endpoint is "not found".
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from apps.core.models import BusinessUnit
from apps.core.pagination import InvalidCursor, KeysetPage, keyset_page
from apps.core.roles import Surface
from apps.core.web import page_units, surface_context, surfaces_required, user_of
from apps.sales.selectors import crm as selectors
from apps.sales.services import crm as services
from apps.sales.services.webhooks import EVENTS

PAGE_SIZE = 30
SECRET_KEY = "sales_webhook_secret"  # noqa: S105 - a session key name
EVENT_LABELS = {
    "lead.created": gettext_lazy("A lead is opened"),
    "lead.stage_changed": gettext_lazy("A lead changes stage"),
    "lead.assigned": gettext_lazy("A lead is assigned"),
    "opportunity.changed": gettext_lazy("An opportunity changes"),
}


class WebhookForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    url = forms.URLField(
        label=gettext_lazy("URL"),
        max_length=500,
        assume_scheme="https",
        help_text=gettext_lazy("The CRM's address that receives the POSTs (https://…)."),
    )
    unit = forms.TypedChoiceField(label=gettext_lazy("Business unit"), coerce=int)
    events = forms.MultipleChoiceField(
        label=gettext_lazy("Events"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("None ticked: every event."),
    )

    def __init__(self, *args: Any, units: list[BusinessUnit], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.units = {u.pk: u for u in units}
        self.fields["unit"].choices = [(u.pk, u.name) for u in units]  # type: ignore[attr-defined]
        self.fields["events"].choices = [(e, EVENT_LABELS.get(e, e)) for e in EVENTS]  # type: ignore[attr-defined]
        if len(units) == 1:
            self.fields["unit"].initial = units[0].pk


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "core/forbidden.html", {"surface": _("Webhooks")}, status=403)


# The console or the lead queue (sales managers work in the latter, as on the sales setup
# page); ``sales.configure`` somewhere.
configure_required = surfaces_required(
    Surface.CONSOLE, Surface.SDR, permission="sales.configure", label=gettext_lazy("Webhooks")
)


def _page(request: HttpRequest, qs: Any) -> KeysetPage[Any]:
    try:
        return keyset_page(qs, ordering=("-id",), cursor=request.GET.get("cursor"), size=PAGE_SIZE)
    except InvalidCursor:
        messages.warning(request, _("That page link is no longer valid; showing the first page."))
        return keyset_page(qs, ordering=("-id",), size=PAGE_SIZE)


def _create(request: HttpRequest, form: WebhookForm) -> Any:
    if not form.is_valid():
        return None
    try:
        return services.webhook_endpoint_create(
            unit=form.units[form.cleaned_data["unit"]],
            name=form.cleaned_data["name"],
            url=form.cleaned_data["url"],
            events=form.cleaned_data["events"],
            actor=user_of(request),
        )
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return None


@configure_required
def webhooks_page(request: HttpRequest) -> HttpResponseBase:
    user = user_of(request)
    unit_ids = page_units(request, selectors.CONFIGURE)
    units = selectors.units_configurable(user=user, unit_ids=unit_ids)
    form = WebhookForm(request.POST if request.method == "POST" else None, units=units)
    if request.method == "POST":
        endpoint = _create(request, form)
        if endpoint is not None:
            request.session[SECRET_KEY] = {"id": endpoint.pk, "secret": endpoint.secret}
            messages.success(request, _("Webhook added. Copy its signing secret now."))
            return redirect(reverse("sales:webhooks") + "#secret")
    endpoints = selectors.webhook_endpoints(user=user)
    if unit_ids is not None:
        endpoints = endpoints.filter(unit_id__in=unit_ids)
    endpoints_list = list(endpoints.order_by("unit__name", "name", "id"))
    shown = {e.pk: e for e in endpoints_list}
    raw = request.GET.get("endpoint", "")
    picked = shown.get(int(raw)) if raw.isdigit() else None
    deliveries = selectors.webhook_deliveries(
        user=user, endpoint_id=picked.pk if picked else None
    ).filter(endpoint_id__in=list(shown))
    page = _page(request, deliveries)
    fresh = request.session.pop(SECRET_KEY, None)
    context = surface_context(
        request,
        request.surface,  # type: ignore[attr-defined]
        endpoints=endpoints_list,
        form=form,
        page=page,
        picked=picked,
        filter_query=f"endpoint={picked.pk}&" if picked else "",
        fresh_secret=fresh,
        event_labels=EVENT_LABELS,
    )
    return render(request, "sales/crm/webhooks.html", context, status=400 if form.errors else 200)


@configure_required
@require_POST
def webhook_active(request: HttpRequest, pk: int) -> HttpResponseBase:
    user = user_of(request)
    endpoint = selectors.webhook_endpoints(user=user).filter(pk=pk).first()
    if endpoint is None:
        raise Http404
    active = request.POST.get("active") == "1"
    services.webhook_endpoint_set_active(endpoint=endpoint, active=active, actor=user)
    if active:
        messages.success(request, _("%(name)s is on again.") % {"name": endpoint.name})
    else:
        messages.success(
            request,
            _("%(name)s is switched off: nothing more is sent to it.") % {"name": endpoint.name},
        )
    return redirect("sales:webhooks")


urlpatterns = [
    path("console/sales/webhooks/", webhooks_page, name="webhooks"),
    path("console/sales/webhooks/<int:pk>/active/", webhook_active, name="webhook-active"),
]
