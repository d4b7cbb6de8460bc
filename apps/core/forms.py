from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from apps.core import login_guard


class LoginForm(AuthenticationForm):
    """Django's login form plus a lock after repeated failures (see login_guard)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "locked": _(
            "Too many failed sign-ins for this account. Wait %(minutes)s minutes and try again, "
            "or ask an administrator to reset your password."
        ),
    }

    def clean(self) -> dict[str, Any]:
        username = self.data.get("username", "")
        if login_guard.is_locked(self.request, username):  # type: ignore[arg-type]
            self.locked = True
            raise forms.ValidationError(
                self.error_messages["locked"],
                code="locked",
                params={"minutes": login_guard.lockout_minutes()},
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            login_guard.record_failure(self.request, username)  # type: ignore[arg-type]
            raise
        login_guard.record_success(self.request, username)  # type: ignore[arg-type]
        return cleaned


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("What will use it, e.g. “Salesforce sync” or “website forms”."),
    )
    expires_at = forms.DateField(
        label=_("Expires on"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Leave empty for a token that lasts until revoked."),
    )


class AuditFilterForm(forms.Form):
    action = forms.CharField(
        label=_("Action"),
        required=False,
        max_length=80,
        widget=forms.TextInput(attrs={"list": "audit-actions", "placeholder": "membership."}),
    )
    actor = forms.CharField(label=_("Actor"), required=False, max_length=150)
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
