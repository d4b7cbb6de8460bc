"""Writes for forms: create, change, archive and restore, each audited in its transaction.

Everything a form holds is checked here (the console and the API both call these): the
field list against the unit's catalogue (``content.form_fields``), consent wording and its
version, the redirect (http/https only), and that the asset, channel and campaign belong
to the form's unit. Rich text (introduction, thank-you message, consent wording) is
sanitised with nh3 as it is saved, and again when a page renders it.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.contacts.models import Campaign, Channel
from apps.content.form_fields import field_catalogue, form_definition_clean
from apps.content.html import clean_html
from apps.content.models import Asset, Form
from apps.core.audit_actions import register_action
from apps.core.models import BusinessUnit, User
from apps.core.services import Actor, audit_record

for _action, _label in (
    ("form.create", gettext_lazy("Form created")),
    ("form.change", gettext_lazy("Form changed")),
    ("form.archive", gettext_lazy("Form archived")),
    ("form.restore", gettext_lazy("Form restored")),
):
    register_action(_action, _label)

# Settings a caller may pass, with their defaults for a new form.
DEFAULTS: dict[str, Any] = {
    "title": "",
    "intro": "",
    "submit_label": "",
    "progressive": False,
    "progressive_max": 3,
    "consent_required": True,
    "consent_text": "",
    "consent_version": "",
    "success_message": "",
    "redirect_url": "",
    "opens_lead": "",
    "asset": None,
    "channel": None,
    "campaign": None,
}
RICH_TEXT = ("intro", "success_message", "consent_text")
LENGTHS = {
    "name": 150,
    "title": 200,
    "submit_label": 60,
    "consent_version": 40,
    "redirect_url": 1000,
}
PROGRESSIVE_MAX_LIMIT = 30


def _snapshot(form: Form) -> dict[str, Any]:
    return {
        "name": form.name,
        "title": form.title,
        "intro": form.intro,
        "fields": form.fields,
        "submit_label": form.submit_label,
        "progressive": form.progressive,
        "progressive_max": form.progressive_max,
        "consent_required": form.consent_required,
        "consent_text": form.consent_text,
        "consent_version": form.consent_version,
        "success_message": form.success_message,
        "redirect_url": form.redirect_url,
        "opens_lead": form.opens_lead,
        "asset": form.asset_id,
        "channel": form.channel_id,
        "campaign": form.campaign_id,
        "is_active": form.is_active,
    }


def _check_related(
    unit: BusinessUnit, values: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    """The asset, channel and campaign must be the form's unit's own."""
    for name, model, message in (
        ("asset", Asset, _("Pick an asset of this unit.")),
        ("channel", Channel, _("Pick a channel of this unit.")),
        ("campaign", Campaign, _("Pick a campaign of this unit.")),
    ):
        value = values.get(name)
        if value is None:
            continue
        if not isinstance(value, model) or value.unit_id != unit.pk:
            errors.setdefault(name, []).append(message)
    asset = values.get("asset")
    if isinstance(asset, Asset) and not asset.is_active and "asset" not in errors:
        errors.setdefault("asset", []).append(_("This asset is archived; pick an active one."))


def _clean(unit: BusinessUnit, values: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise a form's full settings; ValidationError keyed by field."""
    errors: dict[str, list[str]] = {}
    values = dict(values)
    values["name"] = str(values.get("name") or "").strip()
    if not values["name"]:
        errors["name"] = [_("Give the form a name (only your team sees it).")]
    for name in ("title", "submit_label", "consent_version", "redirect_url"):
        values[name] = str(values.get(name) or "").strip()
    for name, limit in LENGTHS.items():
        if len(values[name]) > limit:
            errors.setdefault(name, []).append(
                _("At most %(max)d characters (this has %(count)d).")
                % {"max": limit, "count": len(values[name])}
            )
    for name in RICH_TEXT:
        values[name] = clean_html(str(values.get(name) or "")).strip()
    values["opens_lead"] = str(values.get("opens_lead") or "")
    if values["opens_lead"] not in ("", "warm", "hot"):
        errors["opens_lead"] = [_("Opens a lead: use warm, hot or leave it empty.")]
    progressive_max = values.get("progressive_max")
    if isinstance(progressive_max, int) and progressive_max > PROGRESSIVE_MAX_LIMIT:
        errors["progressive_max"] = [
            _("At most %(max)d new fields per visit.") % {"max": PROGRESSIVE_MAX_LIMIT}
        ]
    _check_related(unit, values, errors)
    try:
        values["fields"] = form_definition_clean(
            fields=values.get("fields"),
            catalogue=field_catalogue(unit.pk),
            progressive_max=progressive_max,
            consent_required=bool(values.get("consent_required")),
            consent_text=values["consent_text"],
            consent_version=values["consent_version"],
            redirect_url=values["redirect_url"],
        )
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            errors.setdefault(name, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    values["progressive"] = bool(values.get("progressive"))
    values["consent_required"] = bool(values.get("consent_required"))
    return values


@transaction.atomic
def form_create(
    *,
    unit: BusinessUnit,
    name: str,
    fields: list[dict[str, Any]],
    acting_user: Actor,
    **settings: Any,
) -> Form:
    """A new, active form of ``unit``. ``settings`` are ``DEFAULTS``' keys."""
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown form settings: {sorted(unknown)}")
    values = _clean(unit, {**DEFAULTS, **settings, "name": name, "fields": fields})
    created_by = acting_user if isinstance(acting_user, User) else None
    form = Form(unit=unit, created_by=created_by, **values)
    form.save()
    audit_record(
        actor=acting_user, action="form.create", obj=form, unit=unit, after=_snapshot(form)
    )
    return form


@transaction.atomic
def form_update(*, form: Form, acting_user: Actor, **changes: Any) -> Form:
    """Change some settings of ``form`` (the others stay as they are)."""
    unknown = set(changes) - set(DEFAULTS) - {"name", "fields"}
    if unknown:
        raise TypeError(f"unknown form settings: {sorted(unknown)}")
    locked = Form.objects.dangerously_unscoped().select_for_update().get(pk=form.pk)
    before = _snapshot(locked)
    current = {name: getattr(locked, name) for name in DEFAULTS}
    current.update({"name": locked.name, "fields": locked.fields, **changes})
    values = _clean(locked.unit, current)
    for name, value in values.items():
        setattr(locked, name, value)
    locked.save()
    after = _snapshot(locked)
    changed = {k: v for k, v in after.items() if before.get(k) != v}
    if changed:
        audit_record(
            actor=acting_user,
            action="form.change",
            obj=locked,
            unit=locked.unit_id,
            before={k: before[k] for k in changed},
            after=changed,
        )
    form.refresh_from_db()
    return locked


@transaction.atomic
def form_archive(*, form: Form, acting_user: Actor) -> Form:
    """Take the form off the web: its page answers "no longer available"; submissions stay."""
    updated = (
        Form.objects.dangerously_unscoped()
        .filter(pk=form.pk, is_active=True)
        .update(is_active=False)
    )
    form.is_active = False
    if updated:
        audit_record(actor=acting_user, action="form.archive", obj=form, unit=form.unit_id)
    return form


@transaction.atomic
def form_restore(*, form: Form, acting_user: Actor) -> Form:
    updated = (
        Form.objects.dangerously_unscoped()
        .filter(pk=form.pk, is_active=False)
        .update(is_active=True)
    )
    form.is_active = True
    if updated:
        audit_record(actor=acting_user, action="form.restore", obj=form, unit=form.unit_id)
    return form
