"""The console's import forms: the upload, and the mapping (one select per column)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from apps.contacts.importing.files import max_file_bytes
from apps.contacts.importing.mapping import IGNORE, target_choices
from apps.contacts.models import ConsentBasis, ConsentChannel, CustomField, Tag
from apps.core.models import BusinessUnit


def _unit_choices(units: list[BusinessUnit]) -> list[tuple[int, str]]:
    return [(u.pk, f"— {u.name}" if u.parent_id else u.name) for u in units]


class UploadForm(forms.Form):
    unit = forms.TypedChoiceField(label=_("Business unit"), coerce=int)
    file = forms.FileField(label=_("File"))

    def __init__(self, *args: Any, units: list[BusinessUnit], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["unit"].choices = _unit_choices(units)  # type: ignore[attr-defined]
        self.fields["file"].help_text = _(
            "CSV (UTF-8 or GBK, as Excel saves it) or Excel workbook (.xlsx), up to %(limit)s."
        ) % {"limit": filesizeformat(max_file_bytes())}
        self.fields["file"].widget.attrs["accept"] = ".csv,.txt,.xlsx"


class MappingForm(forms.Form):
    """One target select and one "required" box per column, plus unit, tags and consent."""

    unit = forms.TypedChoiceField(label=_("Business unit"), coerce=int)
    wechat_app_id = forms.CharField(
        label=_("WeChat official account app id"),
        required=False,
        max_length=64,
        help_text=_("Needed when a column holds WeChat openids."),
    )
    tags = forms.TypedMultipleChoiceField(
        label=_("Tag every imported contact with"),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    consent_basis = forms.ChoiceField(label=_("Consent basis"), required=False)
    opens_lead = forms.ChoiceField(
        label=_("Create leads"),
        required=False,
        choices=[
            ("", _("No: contacts only")),
            ("warm", _("Warm leads for the SDRs")),
            ("hot", _("Hot leads for the SDRs")),
        ],
    )
    consent_channels = forms.MultipleChoiceField(
        label=_("Channels the consent covers"),
        choices=ConsentChannel.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(
        self,
        *args: Any,
        header: list[str],
        units: list[BusinessUnit],
        tags: list[Tag],
        custom_fields: list[CustomField],
        offer: dict[str, Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.header = header
        self.fields["unit"].choices = _unit_choices(units)  # type: ignore[attr-defined]
        self.fields["tags"].choices = [(t.pk, t.name) for t in tags]  # type: ignore[attr-defined]
        self.fields["consent_basis"].choices = [  # type: ignore[attr-defined]
            ("", _("None: record no consent")),
            *ConsentBasis.choices,
        ]
        self.fields["wechat_app_id"].initial = offer.get("wechat_app_id", "")
        groups = target_choices(custom_fields)
        choices: list[Any] = [(IGNORE, _("— ignore —")), *groups]
        valid = {value for _group, options in groups for value, _label in options} | {IGNORE}
        columns = offer.get("columns", {})
        required = set(offer.get("required", []))
        for i, name in enumerate(header):
            initial = columns.get(name, IGNORE)
            self.fields[f"col_{i}"] = forms.ChoiceField(
                label=name, choices=choices, initial=initial if initial in valid else IGNORE
            )
            self.fields[f"req_{i}"] = forms.BooleanField(
                label=_("required"), required=False, initial=name in required
            )

    def columns(self) -> list[tuple[str, forms.BoundField, forms.BoundField]]:
        return [(name, self[f"col_{i}"], self[f"req_{i}"]) for i, name in enumerate(self.header)]

    def mapping(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "columns": {name: data[f"col_{i}"] for i, name in enumerate(self.header)},
            "required": [name for i, name in enumerate(self.header) if data.get(f"req_{i}")],
            "wechat_app_id": data.get("wechat_app_id", ""),
        }

    def consent(self) -> dict[str, Any]:
        basis = self.cleaned_data.get("consent_basis") or ""
        return {"basis": basis, "channels": self.cleaned_data.get("consent_channels") or []}
