"""Entering a lead by hand (``/sdr/leads/new/``): an SDR or sales manager types who called
or whom they met, or opens a lead for a contact already known (``?contact=<id>``).

The person is found or created by identity resolution (phone, email) in the chosen unit;
then the lead opens through the same dedup as every other source (an existing open lead,
an open opportunity of the company, an existing customer), and the page says which.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.contacts.identity_keys import InvalidKey, make_key
from apps.contacts.models import Contact, IdentityKind
from apps.contacts.services.contacts import contact_upsert
from apps.core.models import BusinessUnit
from apps.core.roles import Role, Surface
from apps.core.scoping import unit_roles, visible_unit_ids
from apps.core.web import surface_context, surface_required, user_of
from apps.sales.models import LeadSource, LeadTemperature
from apps.sales.services.leads import lead_open

WORK = "sales.work"


class NewLeadForm(forms.Form):
    unit = forms.TypedChoiceField(label=gettext_lazy("Business unit"), coerce=int)
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100, required=False)
    phone = forms.CharField(label=gettext_lazy("Mobile phone"), max_length=40, required=False)
    email = forms.CharField(label=gettext_lazy("Email"), max_length=254, required=False)
    company_name = forms.CharField(label=gettext_lazy("Company"), max_length=200, required=False)
    title = forms.CharField(label=gettext_lazy("Job title"), max_length=100, required=False)
    province = forms.CharField(label=gettext_lazy("Province"), max_length=50, required=False)
    industry = forms.CharField(label=gettext_lazy("Industry"), max_length=100, required=False)
    temperature = forms.ChoiceField(
        label=gettext_lazy("Temperature"), choices=LeadTemperature.choices, initial="warm"
    )
    note = forms.CharField(
        label=gettext_lazy("How they came to us"),
        max_length=300,
        required=False,
        help_text=gettext_lazy("e.g. “called the hotline about single-cell sequencing”"),
    )

    def __init__(
        self, *args: Any, units: list[BusinessUnit], contact: Contact | None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.contact = contact
        self.fields["unit"].choices = [(u.pk, u.name) for u in units]  # type: ignore[attr-defined]
        if contact is not None:
            for name in ("name", "phone", "email", "company_name", "title", "province", "industry"):
                del self.fields[name]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.contact is not None:
            return data
        keys = []
        for kind, name in ((IdentityKind.PHONE, "phone"), (IdentityKind.EMAIL, "email")):
            raw = (data.get(name) or "").strip()
            if not raw:
                continue
            try:
                keys.append(make_key(kind, raw))
            except InvalidKey as exc:
                self.add_error(name, str(exc))
        if not keys and not self.errors:
            raise ValidationError(
                _("Give a mobile phone or an email: we need a way to reach them.")
            )
        data["keys"] = keys
        return data


def _units(request: HttpRequest) -> list[BusinessUnit]:
    user = user_of(request)
    ids = visible_unit_ids(user, WORK)
    return list(
        BusinessUnit.objects.dangerously_unscoped()
        .filter(pk__in=ids, is_active=True)
        .order_by("name")
    )


def _known_contact(request: HttpRequest) -> Contact | None:
    raw = request.GET.get("contact") or request.POST.get("contact") or ""
    if not raw:
        return None
    if not raw.isdigit():
        raise Http404
    contact = (
        Contact.objects.visible_to(user_of(request), "contacts.view")
        .filter(pk=int(raw), status="active")
        .first()
    )
    if contact is None:
        raise Http404
    return contact


def _is_sdr_in(request: HttpRequest, unit_id: int) -> bool:
    return any(u == unit_id and r == Role.SDR for u, r, _d in unit_roles(user_of(request)))


@surface_required(Surface.SDR)
def lead_new(request: HttpRequest) -> HttpResponse:
    units = _units(request)
    if not units:
        return render(request, "core/forbidden.html", {"surface": _("New lead")}, status=403)
    contact = _known_contact(request)
    form = NewLeadForm(request.POST or None, units=units, contact=contact)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        unit = next(u for u in units if u.pk == data["unit"])
        user = user_of(request)
        try:
            with transaction.atomic():
                if contact is None:
                    attributes = {
                        k: data[k].strip()
                        for k in ("name", "company_name", "title", "province", "industry")
                        if data.get(k, "").strip()
                    }
                    contact = contact_upsert(
                        unit=unit,
                        keys=data["keys"],
                        attributes=attributes,
                        custom={},
                        tags=[],
                        consents=[],
                        observed_at=None,
                        acting_user=user,
                    ).contact
                result = lead_open(
                    contact=contact,
                    unit=unit,
                    source=LeadSource.MANUAL,
                    actor=user,
                    temperature=data["temperature"],
                    reason=data.get("note") or "",
                    sdr=user if _is_sdr_in(request, unit.pk) else None,
                )
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
        else:
            if result.lead is None:
                messages.info(request, result.message)
                return redirect("sales:sdr-queue")
            if result.outcome == "opened":
                messages.success(request, _("Lead opened."))
            else:
                messages.warning(request, result.message)
            return redirect("sales:sdr-lead", result.lead.pk)
    context = surface_context(request, Surface.SDR, form=form, contact=contact)
    return render(request, "sales/intake/new.html", context, status=400 if form.errors else 200)


urlpatterns = [path("sdr/leads/new/", lead_new, name="lead-new")]
