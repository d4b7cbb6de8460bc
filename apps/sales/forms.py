"""Forms for the sales setup page (policy, teams, rules, calendar) and the console lead
list filters. Forms only parse and check shapes; the services decide (and refuse)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.nurture.models import Tier
from apps.sales.models import (
    BANT_FIELDS,
    AssignmentRule,
    AssignMethod,
    LeadSource,
    LeadTemperature,
    SlaPolicy,
    Stage,
)
from apps.sales.services.config import POLICY_FIELDS

BANT_LABELS = {
    "budget": gettext_lazy("Budget"),
    "authority": gettext_lazy("Authority"),
    "need": gettext_lazy("Need"),
    "timeline": gettext_lazy("Timing"),
}


class SlaPolicyForm(forms.ModelForm):  # type: ignore[type-arg]
    bant_required = forms.MultipleChoiceField(
        label=gettext_lazy("BANT fields required to qualify"),
        choices=[(b, BANT_LABELS[b]) for b in BANT_FIELDS],
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    class Meta:
        model = SlaPolicy
        fields = list(POLICY_FIELDS)
        widgets = {
            "work_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "work_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }

    def values(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}

    def _post_clean(self) -> None:
        # The service validates the whole policy (and refuses with field messages); the
        # model's own full_clean would run only half of that here.
        pass


CLOCKS = (
    ("first_touch", gettext_lazy("SDR first touch within")),
    ("accept", gettext_lazy("Sales accepts or rejects an MQL within")),
    ("sql", gettext_lazy("SQL decision within")),
    ("follow_up", gettext_lazy("Recycled without a follow-up after")),
)


class TeamForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Team name"), max_length=100)
    method = forms.ChoiceField(
        label=gettext_lazy("How leads are shared"), choices=AssignMethod.choices
    )


class MemberForm(forms.Form):
    # A plain field with a select: an unknown person gets clean_user's message.
    user = forms.CharField(
        label=gettext_lazy("Person"),
        widget=forms.Select,
        error_messages={"required": gettext_lazy("Pick a person.")},
    )
    capacity = forms.IntegerField(
        label=gettext_lazy("Capacity (open leads)"),
        required=False,
        min_value=1,
        help_text=gettext_lazy("Empty: no limit."),
    )
    is_active = forms.BooleanField(label=gettext_lazy("Takes leads"), required=False, initial=True)
    penalised = forms.BooleanField(label=gettext_lazy("Penalised"), required=False)

    def __init__(self, *args: Any, people: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.people = {p.pk: p for p in people}
        self.fields["user"].widget.choices = [("", _("— pick a person —"))] + [
            (str(p.pk), str(p)) for p in people
        ]

    def clean_user(self) -> Any:
        raw = self.cleaned_data.get("user") or ""
        person = self.people.get(int(raw)) if raw.isdigit() else None
        if person is None:
            raise forms.ValidationError(
                _("Pick an SDR, salesperson or sales manager of this business unit.")
            )
        return person


class MemberEditForm(forms.Form):
    capacity = forms.IntegerField(label=gettext_lazy("Capacity"), required=False, min_value=1)
    is_active = forms.BooleanField(label=gettext_lazy("Takes leads"), required=False)
    penalised = forms.BooleanField(label=gettext_lazy("Penalised"), required=False)


def _names(raw: str) -> list[str]:
    parts = raw.replace("，", ",").replace("、", ",").split(",")
    out: list[str] = []
    for part in parts:
        name = part.strip()
        if name and name not in out:
            out.append(name)
    return out


class RuleForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Rule name"), max_length=100)
    role = forms.ChoiceField(label=gettext_lazy("Assigns"), choices=AssignmentRule.Role.choices)
    target = forms.CharField(
        label=gettext_lazy("Route to"),
        widget=forms.Select,
        error_messages={"required": gettext_lazy("Pick a person or a team.")},
    )
    regions = forms.CharField(
        label=gettext_lazy("Regions (provinces)"),
        required=False,
        help_text=gettext_lazy("Comma-separated, e.g. 上海, 江苏. Empty: any."),
    )
    industries = forms.CharField(label=gettext_lazy("Industries"), required=False)
    tiers = forms.MultipleChoiceField(
        label=gettext_lazy("Customer tiers"),
        # "Any customer" is what an empty condition already means.
        choices=[(value, label) for value, label in Tier.choices if value != "any"],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    products = forms.CharField(label=gettext_lazy("Product interest"), required=False)
    size_min = forms.IntegerField(label=gettext_lazy("Employees from"), required=False, min_value=0)
    size_max = forms.IntegerField(label=gettext_lazy("Employees to"), required=False, min_value=0)
    score_min = forms.DecimalField(
        label=gettext_lazy("Score from"), required=False, min_value=0, decimal_places=2
    )
    score_max = forms.DecimalField(
        label=gettext_lazy("Score to"), required=False, min_value=0, decimal_places=2
    )
    is_active = forms.BooleanField(label=gettext_lazy("Active"), required=False, initial=True)

    def __init__(self, *args: Any, people: list[Any], teams: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.people = {p.pk: p for p in people}
        self.teams = {t.pk: t for t in teams}
        groups: list[Any] = [("", _("— pick a person or a team —"))]
        if teams:
            groups.append((_("Teams"), [(f"team:{t.pk}", t.name) for t in teams]))
        if people:
            groups.append((_("People"), [(f"user:{p.pk}", str(p)) for p in people]))
        self.fields["target"].widget.choices = groups

    def clean_target(self) -> tuple[Any, Any]:
        kind, _sep, raw = (self.cleaned_data.get("target") or "").partition(":")
        if raw.isdigit():
            if kind == "team" and int(raw) in self.teams:
                return None, self.teams[int(raw)]
            if kind == "user" and int(raw) in self.people:
                return self.people[int(raw)], None
        raise forms.ValidationError(_("Pick a person or a team of this business unit."))

    def conditions(self) -> dict[str, Any]:
        data = self.cleaned_data
        out: dict[str, Any] = {}
        for key in ("regions", "industries", "products"):
            names = _names(data.get(key) or "")
            if names:
                out[key] = names
        if data.get("tiers"):
            out["tiers"] = list(data["tiers"])
        for key in ("size_min", "size_max"):
            if data.get(key) is not None:
                out[key] = int(data[key])
        for key in ("score_min", "score_max"):
            value = data.get(key)
            if value is not None:
                out[key] = int(value) if value == value.to_integral() else float(value)
        return out

    def values(self) -> dict[str, Any]:
        user, team = self.cleaned_data["target"]
        return {
            "name": self.cleaned_data["name"],
            "role": self.cleaned_data["role"],
            "conditions": self.conditions(),
            "user": user,
            "team": team,
            "is_active": self.cleaned_data["is_active"],
        }

    @staticmethod
    def initial_for(rule: AssignmentRule) -> dict[str, Any]:
        c = rule.conditions or {}
        initial: dict[str, Any] = {
            "name": rule.name,
            "role": rule.role,
            "target": f"team:{rule.team_id}" if rule.team_id else f"user:{rule.user_id}",
            "is_active": rule.is_active,
            "tiers": c.get("tiers", []),
        }
        for key in ("regions", "industries", "products"):
            initial[key] = ", ".join(c.get(key, []))
        for key in ("size_min", "size_max", "score_min", "score_max"):
            if c.get(key) is not None:
                initial[key] = c[key] if "size" in key else Decimal(str(c[key]))
        return initial


# Condition keys as the service names them, mapped to form fields for error messages.
CONDITION_FIELDS = {
    "regions": "regions",
    "industries": "industries",
    "tiers": "tiers",
    "products": "products",
    "size_min": "size_min",
    "size_max": "size_max",
    "score_min": "score_min",
    "score_max": "score_max",
}


class RouteTestForm(forms.Form):
    lead = forms.IntegerField(
        label=gettext_lazy("Lead id"),
        min_value=1,
        error_messages={"required": gettext_lazy("Give the id of an open lead of this unit.")},
    )
    role = forms.ChoiceField(label=gettext_lazy("Route for"), choices=AssignmentRule.Role.choices)


class CalendarDayForm(forms.Form):
    date = forms.DateField(
        label=gettext_lazy("Date"), widget=forms.DateInput(attrs={"type": "date"})
    )
    is_workday = forms.TypedChoiceField(
        label=gettext_lazy("This day is"),
        choices=[
            ("0", gettext_lazy("a holiday (day off on a weekday)")),
            ("1", gettext_lazy("a make-up working day (on a weekend)")),
        ],
        coerce=lambda v: v == "1",
        widget=forms.RadioSelect,
    )
    name = forms.CharField(label=gettext_lazy("Name"), max_length=60, required=False)


class LeadFilterForm(forms.Form):
    unit = forms.TypedChoiceField(
        label=gettext_lazy("Business unit"), required=False, coerce=int, empty_value=None
    )
    stage = forms.ChoiceField(label=gettext_lazy("Stage"), required=False)
    temperature = forms.ChoiceField(label=gettext_lazy("Temperature"), required=False)
    owner = forms.TypedChoiceField(
        label=gettext_lazy("Sales owner"), required=False, coerce=int, empty_value=None
    )
    sdr = forms.TypedChoiceField(
        label=gettext_lazy("SDR"), required=False, coerce=int, empty_value=None
    )
    source = forms.ChoiceField(label=gettext_lazy("Source"), required=False)
    review = forms.BooleanField(label=gettext_lazy("Needs review"), required=False)
    open = forms.ChoiceField(
        label=gettext_lazy("Open or closed"),
        required=False,
        choices=[
            ("", gettext_lazy("Any")),
            ("1", gettext_lazy("Open")),
            ("0", gettext_lazy("Closed")),
        ],
    )

    def __init__(self, *args: Any, units: list[Any], people: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        anyone = [("", _("Any"))]
        self.fields["unit"].choices = anyone + [(str(u.pk), u.name) for u in units]  # type: ignore[attr-defined]
        self.fields["stage"].choices = anyone + list(Stage.choices)  # type: ignore[attr-defined]
        self.fields["temperature"].choices = anyone + list(LeadTemperature.choices)  # type: ignore[attr-defined]
        self.fields["source"].choices = anyone + list(LeadSource.choices)  # type: ignore[attr-defined]
        person_choices = [(str(p.pk), str(p)) for p in people]
        self.fields["owner"].choices = anyone + person_choices  # type: ignore[attr-defined]
        self.fields["sdr"].choices = anyone + person_choices  # type: ignore[attr-defined]
