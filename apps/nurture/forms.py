"""Console forms for scoring models and rules. JSON fields are parsed here; what they mean
is checked by the services, whose errors name the bad node ("condition.all[1].op: …")."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from apps.nurture.models import RuleKind, Tier


class JSONText(forms.CharField):
    """A textarea holding JSON; empty is None."""

    widget = forms.Textarea(attrs={"rows": 5, "class": "mono", "spellcheck": "false"})

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if not text:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                _("Not valid JSON (line %(line)d, column %(col)d): %(msg)s"),
                params={"line": exc.lineno, "col": exc.colno, "msg": exc.msg},
            ) from exc

    def prepare_value(self, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False, indent=1)


class ScoringModelForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    tier = forms.ChoiceField(label=_("Customer tier"), choices=Tier.choices, initial=Tier.ANY)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    half_life_days = forms.IntegerField(
        label=_("Engagement half-life (days)"),
        required=False,
        min_value=1,
        max_value=3650,
        help_text=_("An activity counts half after this many days; empty means no decay."),
    )
    warm_from = forms.DecimalField(
        label=_("Warm from"), required=False, max_digits=10, decimal_places=2
    )
    hot_from = forms.DecimalField(
        label=_("Hot from"), required=False, max_digits=10, decimal_places=2
    )
    is_active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def bands(self) -> list[dict[str, Any]]:
        data = self.cleaned_data
        bands: list[dict[str, Any]] = []
        if data.get("warm_from") is not None:
            bands.append({"min": float(data["warm_from"]), "temperature": "warm"})
        if data.get("hot_from") is not None:
            bands.append({"min": float(data["hot_from"]), "temperature": "hot"})
        return bands

    def values(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "tier": data["tier"],
            "description": data.get("description") or "",
            "half_life_days": data.get("half_life_days"),
            "bands": self.bands(),
            "is_active": bool(data.get("is_active")),
        }

    @staticmethod
    def initial_of(model: Any) -> dict[str, Any]:
        bands = {b["temperature"]: b["min"] for b in model.bands or []}
        return {
            "name": model.name,
            "tier": model.tier,
            "description": model.description,
            "half_life_days": model.half_life_days,
            "warm_from": bands.get("warm"),
            "hot_from": bands.get("hot"),
            "is_active": model.is_active,
        }


class ScoringRuleForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=RuleKind.choices)
    name = forms.CharField(label=_("Name"), max_length=100)
    condition = JSONText(
        label=_("Condition (fit)"),
        required=False,
        help_text=_(
            'Same language as rule tags, e.g. {"all": [{"field": "industry", "op": "in", '
            '"value": ["生物医药"]}, {"not": {"field": "title", "op": "contains", '
            '"value": "学生"}}]}'
        ),
    )
    match = JSONText(
        label=_("Activity match (engagement)"),
        required=False,
        help_text=_(
            'e.g. {"type": "download", "properties": {"topic": "单细胞"}} or '
            '{"type": "page_view", "properties": {"url": "/pricing"}}'
        ),
    )
    points = forms.DecimalField(
        label=_("Points"),
        max_digits=10,
        decimal_places=2,
        help_text=_("Per occurrence for engagement; negative points lower the score."),
    )
    cap = forms.DecimalField(
        label=_("Cap"),
        required=False,
        max_digits=10,
        decimal_places=2,
        help_text=_("At most this many points from this rule per window."),
    )
    cap_days = forms.IntegerField(
        label=_("Cap window (days)"),
        required=False,
        min_value=1,
        max_value=3650,
        help_text=_("Empty with a cap: at most the cap, ever."),
    )
    position = forms.IntegerField(label=_("Position"), required=False, min_value=0, initial=0)
    is_active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["kind"].disabled = True

    def values(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["position"] = data.get("position") or 0
        data["is_active"] = bool(data.get("is_active"))
        return data

    @staticmethod
    def initial_of(rule: Any) -> dict[str, Any]:
        return {
            "kind": rule.kind,
            "name": rule.name,
            "condition": rule.condition,
            "match": rule.match,
            "points": rule.points,
            "cap": rule.cap,
            "cap_days": rule.cap_days,
            "position": rule.position,
            "is_active": rule.is_active,
        }


class TestContactForm(forms.Form):
    contact = forms.CharField(
        label=_("Test on this contact"),
        max_length=120,
        help_text=_("A contact id, mobile number or email address."),
    )
