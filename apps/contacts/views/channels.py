"""Console: a unit's channels (where touches come from, by utm_source) and campaigns (by
utm_campaign, with dates and cost in CNY, for attribution and ROI), each with how it
performed over a period: visits, unique visitors, submissions, conversion, new contacts
and (campaigns) cost per new contact."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.contacts.models import Campaign, Channel, ChannelKind
from apps.contacts.selectors import config as selectors
from apps.contacts.selectors.performance import Performance, touch_performance
from apps.contacts.services import config as services
from apps.contacts.views.tags import (
    add_errors,
    back_to,
    configurable_units,
    first_page,
    forbidden,
    pick_unit,
)
from apps.core.models import BusinessUnit, User
from apps.core.roles import Surface
from apps.core.web import surface_context, surface_required, user_of

# Periods the performance columns cover, in days (the list's "days" parameter).
PERIODS = ("7", "30", "90")
DEFAULT_PERIOD = 30


class ChannelForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    code = forms.CharField(
        label=gettext_lazy("Code (utm_source)"),
        max_length=50,
        help_text=gettext_lazy("Lowercase letters, digits, - and _, e.g. baidu-sem."),
    )
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=ChannelKind.choices)
    is_active = forms.BooleanField(label=gettext_lazy("Active"), required=False, initial=True)


class CampaignForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    code = forms.CharField(
        label=gettext_lazy("Code (utm_campaign)"),
        max_length=80,
        help_text=gettext_lazy("Lowercase letters, digits, - and _, e.g. 2026-spring-expo."),
    )
    channel: forms.ModelChoiceField[Channel] = forms.ModelChoiceField(
        label=gettext_lazy("Channel"),
        queryset=None,
        required=False,
        empty_label=gettext_lazy("(no channel)"),
    )
    starts_on = forms.DateField(
        label=gettext_lazy("Starts"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    ends_on = forms.DateField(
        label=gettext_lazy("Ends"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    # Text, not a DecimalField: the service gives the one clear message for every bad cost.
    cost = forms.CharField(
        label=gettext_lazy("Cost (CNY)"),
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "0.00"}),
    )

    def __init__(self, *args: Any, user: User, unit: BusinessUnit, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        channel_field: Any = self.fields["channel"]
        channel_field.queryset = selectors.channels_of(user=user, unit_id=unit.pk).order_by(
            "name", "id"
        )


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return surface_context(request, Surface.CONSOLE, **extra)


@surface_required(Surface.CONSOLE)
def channel_list(request: HttpRequest) -> HttpResponse:
    units = configurable_units(request)
    if not units and not selectors.configurable_units(user=user_of(request)):
        return forbidden(request, _("Channels & campaigns"))
    unit = pick_unit(request, units)
    tab = "campaigns" if request.GET.get("tab") == "campaigns" else "channels"
    context = _context(request, units=units, unit=unit, tab=tab)
    if unit is None:
        return render(request, "contacts/channels/list.html", context)
    user = user_of(request)
    posted = request.POST if request.method == "POST" else None
    channel_form = ChannelForm(posted if tab == "channels" else None)
    campaign_form = CampaignForm(posted if tab == "campaigns" else None, user=user, unit=unit)
    if request.method == "POST":
        saved = (
            _create_channel(request, unit, channel_form)
            if tab == "channels"
            else _create_campaign(request, unit, campaign_form)
        )
        if saved:
            return back_to("contacts:channels", unit.pk, tab=tab)
    channel_filter = request.GET.get("channel", "")
    if tab == "channels":
        qs: Any = selectors.channels_of(user=user, unit_id=unit.pk).annotate(
            campaigns=Count("campaign")
        )
        page = first_page(request, qs, ("code", "id"))
    else:
        channel_id = int(channel_filter) if channel_filter.isdigit() else None
        qs = selectors.campaigns_of(user=user, unit_id=unit.pk, channel_id=channel_id)
        page = first_page(request, qs, ("-id",))
    days = int(request.GET["days"]) if request.GET.get("days") in PERIODS else DEFAULT_PERIOD
    since = timezone.now() - timedelta(days=days)
    performance = touch_performance(
        "channel" if tab == "channels" else "campaign",
        [item.pk for item in page.items],
        since=since,
    )
    for item in page.items:
        item.performance = performance.get(item.pk, Performance())
        if tab == "campaigns":
            item.cost_per_contact = item.performance.cost_per_contact(item.cost)
    context.update(
        page=page,
        days=days,
        periods=PERIODS,
        channel_form=channel_form,
        campaign_form=campaign_form,
        channels=list(campaign_form.fields["channel"].queryset[:200]),  # type: ignore[attr-defined]
        channel_filter=channel_filter,
        filter_query=f"unit={unit.pk}&tab={tab}&channel={channel_filter}&days={days}&",
    )
    bad = bool(channel_form.errors) or bool(campaign_form.errors)
    return render(request, "contacts/channels/list.html", context, status=400 if bad else 200)


def _create_channel(request: HttpRequest, unit: BusinessUnit, form: ChannelForm) -> bool:
    if not form.is_valid():
        return False
    data = form.cleaned_data
    try:
        channel = services.channel_create(
            unit=unit,
            code=data["code"],
            name=data["name"],
            kind=data["kind"],
            is_active=data["is_active"],
            acting_user=user_of(request),
        )
    except ValidationError as exc:
        add_errors(form, exc)
        return False
    messages.success(request, _("Channel “%(name)s” created.") % {"name": channel.name})
    return True


def _create_campaign(request: HttpRequest, unit: BusinessUnit, form: CampaignForm) -> bool:
    if not form.is_valid():
        return False
    data = form.cleaned_data
    try:
        campaign = services.campaign_create(
            unit=unit,
            code=data["code"],
            name=data["name"],
            channel=data["channel"],
            starts_on=data["starts_on"],
            ends_on=data["ends_on"],
            cost=data["cost"],
            acting_user=user_of(request),
        )
    except ValidationError as exc:
        add_errors(form, exc)
        return False
    messages.success(request, _("Campaign “%(name)s” created.") % {"name": campaign.name})
    return True


def _channel_or_404(request: HttpRequest, pk: int) -> Channel:
    channel = selectors.channel_get(user=user_of(request), pk=pk)
    if channel is None:
        raise Http404
    return channel


def _campaign_or_404(request: HttpRequest, pk: int) -> Campaign:
    campaign = selectors.campaign_get(user=user_of(request), pk=pk)
    if campaign is None:
        raise Http404
    return campaign


@surface_required(Surface.CONSOLE)
def channel_edit(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _channel_or_404(request, pk)
    form = ChannelForm(
        request.POST or None,
        initial={
            "name": channel.name,
            "code": channel.code,
            "kind": channel.kind,
            "is_active": channel.is_active,
        },
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.channel_update(
                channel=channel,
                code=data["code"],
                name=data["name"],
                kind=data["kind"],
                is_active=data["is_active"],
                acting_user=user_of(request),
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(request, _("Channel “%(name)s” saved.") % {"name": data["name"]})
            return back_to("contacts:channels", channel.unit_id)
    context = _context(request, unit=channel.unit, obj=channel, form=form, what="channel")
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "contacts/channels/form.html", context, status=status)


@surface_required(Surface.CONSOLE)
def campaign_edit(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(request, pk)
    form = CampaignForm(
        request.POST or None,
        user=user_of(request),
        unit=campaign.unit,
        initial={
            "name": campaign.name,
            "code": campaign.code,
            "channel": campaign.channel_id,
            "starts_on": campaign.starts_on,
            "ends_on": campaign.ends_on,
            "cost": campaign.cost,
        },
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.campaign_update(
                campaign=campaign,
                code=data["code"],
                name=data["name"],
                channel=data["channel"],
                starts_on=data["starts_on"],
                ends_on=data["ends_on"],
                cost=data["cost"],
                acting_user=user_of(request),
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(request, _("Campaign “%(name)s” saved.") % {"name": data["name"]})
            return back_to("contacts:channels", campaign.unit_id, tab="campaigns")
    context = _context(request, unit=campaign.unit, obj=campaign, form=form, what="campaign")
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "contacts/channels/form.html", context, status=status)


urlpatterns = [
    path("channels/", channel_list, name="channels"),
    path("channels/<int:pk>/edit/", channel_edit, name="channel-edit"),
    path("campaigns/<int:pk>/edit/", campaign_edit, name="campaign-edit"),
]
