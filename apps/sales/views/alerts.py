"""Alert settings: ``/sdr/alerts/`` (lead queue) and ``/m/alerts/`` (phone).

Each person chooses, per kind of alert, in the app / by email / by WeCom robot, and the
robot's webhook URL; "send me a test alert" checks the channels. The pages only ever read
and write the signed-in person's own settings.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.core.roles import Surface
from apps.core.web import surface_context, surface_required, user_of
from apps.sales.models import AlertChannel, AlertKind
from apps.sales.services import alert_settings as services

URL_NAMES: dict[str, str] = {
    Surface.SDR: "sales:alert-settings",
    Surface.MOBILE: "sales:m-alert-settings",
}
TEMPLATES: dict[str, str] = {
    Surface.SDR: "sales/alerts/settings.html",
    Surface.MOBILE: "sales/alerts/m_settings.html",
}


def _field(kind: str, channel: str) -> str:
    return f"{kind}__{channel}"


class AlertSettingsForm(forms.Form):
    wecom_webhook_url = forms.CharField(
        label=gettext_lazy("WeCom robot webhook URL"),
        required=False,
        max_length=500,
        widget=forms.URLInput(
            attrs={
                "placeholder": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…",
                "autocomplete": "off",
                "inputmode": "url",
            }
        ),
        help_text=gettext_lazy(
            "In the WeCom group: ⋯ → Group robots → Add → copy the webhook address. "
            "Anyone with it can post to the group, so keep it private."
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for kind in AlertKind:
            for channel in AlertChannel:
                self.fields[_field(kind.value, channel.value)] = forms.BooleanField(
                    label=f"{kind.label}: {channel.label}", required=False
                )

    def channels(self) -> dict[str, list[str]]:
        return {
            kind: [c for c in AlertChannel.values if self.cleaned_data.get(_field(kind, c))]
            for kind in AlertKind.values
        }

    def rows(self) -> list[dict[str, Any]]:
        """The table: one row per kind, one checkbox per channel."""
        return [
            {
                "kind": kind,
                "cells": [
                    (channel, self[_field(kind.value, channel.value)]) for channel in AlertChannel
                ],
            }
            for kind in AlertKind
        ]


def _initial(channels: dict[str, list[str]], url: str) -> dict[str, Any]:
    initial: dict[str, Any] = {"wecom_webhook_url": url}
    for kind in AlertKind.values:
        for channel in channels.get(kind, []):
            initial[_field(kind, channel)] = True
    return initial


def _page(request: HttpRequest, surface: str) -> HttpResponse:
    user = user_of(request)
    here = URL_NAMES[surface]
    if request.method == "POST" and "test" in request.POST:
        sent = services.alert_test_send(user=user)
        if not sent:
            messages.warning(request, _("A test alert just went out; wait half a minute."))
        else:
            labels = ", ".join(str(AlertChannel(c).label) for c in sent)
            messages.success(
                request,
                _("Test alert sent: %(channels)s. Email and WeCom arrive within a minute.")
                % {"channels": labels},
            )
        return redirect(here)
    if request.method == "POST":
        form = AlertSettingsForm(request.POST)
        if form.is_valid():
            try:
                services.alert_settings_save(
                    user=user,
                    channels=form.channels(),
                    wecom_webhook_url=form.cleaned_data["wecom_webhook_url"],
                    acting_user=user,
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, _("Your alert settings are saved."))
                return redirect(here)
        status = 400
    else:
        channels, url = services.alert_settings_of(user=user)
        form = AlertSettingsForm(initial=_initial(channels, url))
        status = 200
    context = surface_context(
        request,
        surface,
        form=form,
        rows=form.rows(),
        channels=list(AlertChannel),
        action=here,
        deliveries=services.recent_deliveries(user=user),
        has_email=bool(user.email),
        email=user.email,
    )
    return render(request, TEMPLATES[surface], context, status=status)


@surface_required(Surface.SDR)
def alert_settings(request: HttpRequest) -> HttpResponse:
    return _page(request, Surface.SDR)


@surface_required(Surface.MOBILE)
def m_alert_settings(request: HttpRequest) -> HttpResponse:
    return _page(request, Surface.MOBILE)


urlpatterns = [
    path("sdr/alerts/", alert_settings, name="alert-settings"),
    path("m/alerts/", m_alert_settings, name="m-alert-settings"),
]
