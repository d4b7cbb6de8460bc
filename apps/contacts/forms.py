"""Forms for the contact list and the contact 360 page.

Choices are built from lists the view already loaded (``FilterOptions``), so a form never
runs a query of its own: the pages keep a fixed query count.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from apps.contacts.models import Channel, CustomField, Tag
from apps.contacts.selectors.contacts import ContactFilters, FilterOptions, custom_field_condition
from apps.contacts.selectors.timeline import type_choices
from apps.contacts.services.fields import FieldValueError

# At most this many ticked rows in one "tag selected" request (a page holds 50).
MAX_SELECTED = 1_000


ANY = _("Any")


def _int_choices(items: Iterable[Any], label: Any, empty: Any = ANY) -> list[tuple[int | str, str]]:
    return [("", str(empty)), *((item.pk, label(item)) for item in items)]


def _tag_label(tag: Tag, several_units: bool) -> str:
    return f"{tag.name} · {tag.unit.name}" if several_units else tag.name


def _choice_field(form: forms.Form, name: str) -> forms.ChoiceField:
    return cast(forms.ChoiceField, form.fields[name])


class IdListField(forms.Field):
    """A list of positive ids from repeated inputs (``ids=1&ids=2``)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[int]:
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        if len(values) > MAX_SELECTED:
            raise ValidationError(
                _("Select at most %(max)d contacts at a time, or tag all that match."),
                params={"max": MAX_SELECTED},
            )
        try:
            ids = sorted({int(v) for v in values})
        except (TypeError, ValueError):
            raise ValidationError(_("The selection is not valid; reload the page.")) from None
        if any(i <= 0 for i in ids):
            raise ValidationError(_("The selection is not valid; reload the page."))
        return ids


class ContactFilterForm(forms.Form):
    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=100,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": _("Name, company, phone or email")}
        ),
    )
    tag = forms.TypedChoiceField(label=_("Tag"), required=False, coerce=int, empty_value=None)
    source = forms.TypedChoiceField(
        label=_("Source channel"), required=False, coerce=int, empty_value=None
    )
    unit = forms.TypedChoiceField(
        label=_("Business unit"), required=False, coerce=int, empty_value=None
    )
    field = forms.TypedChoiceField(
        label=_("Custom field"), required=False, coerce=int, empty_value=None
    )
    value = forms.CharField(label=_("Value"), required=False, max_length=200)

    def __init__(self, *args: Any, options: FilterOptions, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.options = options
        several = len({t.unit_id for t in options.tags}) > 1
        tag_choices = _int_choices(options.tags, lambda t: _tag_label(t, several))
        _choice_field(self, "tag").choices = tag_choices
        _choice_field(self, "source").choices = _int_choices(options.channels, lambda c: c.name)
        _choice_field(self, "unit").choices = _int_choices(
            options.units, lambda u: u.name, _("All my units")
        )
        _choice_field(self, "field").choices = _int_choices(
            options.fields, lambda f: f.label, _("Choose a field")
        )
        self.custom_field: CustomField | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        field_id, value = data.get("field"), (data.get("value") or "").strip()
        if field_id is not None:
            custom = next((f for f in self.options.fields if f.pk == field_id), None)
            if custom is None:  # the choice list holds visible fields only
                raise ValidationError(_("Choose a field from the list."))
            if not value:
                self.add_error("value", _("Enter the value to look for."))
            else:
                try:
                    custom_field_condition(custom, value)
                except FieldValueError as exc:
                    self.add_error("value", str(exc))
            self.custom_field = custom
        return data

    def filters(self) -> ContactFilters:
        """The filters to apply (none when the form is invalid: the page says why)."""
        if not self.is_bound or not self.is_valid():
            return ContactFilters()
        data = self.cleaned_data
        return ContactFilters(
            q=data["q"].strip(),
            tag_id=data["tag"],
            source_channel_id=data["source"],
            unit_id=data["unit"],
            field_id=data["field"],
            field_value=data["value"].strip(),
        )

    @property
    def is_filtered(self) -> bool:
        return self.filters() != ContactFilters()


class BulkTagForm(forms.Form):
    SELECTED, MATCHING = "selected", "matching"

    # Not "tag": the list's filters ride along in the same POST, and one of them is "tag".
    add_tag = forms.TypedChoiceField(label=_("Tag"), coerce=int)
    ids = IdListField(required=False)
    scope = forms.ChoiceField(
        choices=[(SELECTED, _("Selected contacts")), (MATCHING, _("All matching contacts"))],
        initial=SELECTED,
    )
    confirmed = forms.BooleanField(required=False)

    def __init__(self, *args: Any, tags: list[Tag], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        several = len({t.unit_id for t in tags}) > 1
        self.tags = {t.pk: t for t in tags}
        _choice_field(self, "add_tag").choices = [(t.pk, _tag_label(t, several)) for t in tags]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("scope") == self.SELECTED and not data.get("ids") and "ids" not in self.errors:
            raise ValidationError(_("Tick the contacts to tag first."))
        return data

    @property
    def chosen_tag(self) -> Tag:
        return self.tags[self.cleaned_data["add_tag"]]


class TagAddForm(forms.Form):
    tag = forms.TypedChoiceField(label=_("Add a tag"), coerce=int)

    def __init__(self, *args: Any, tags: list[Tag], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tags = {t.pk: t for t in tags}
        _choice_field(self, "tag").choices = [(t.pk, t.name) for t in tags]

    @property
    def chosen_tag(self) -> Tag:
        return self.tags[self.cleaned_data["tag"]]


class TimelineFilterForm(forms.Form):
    type = forms.ChoiceField(label=_("Type"), required=False)
    channel = forms.TypedChoiceField(
        label=_("Channel"), required=False, coerce=int, empty_value=None
    )

    def __init__(self, *args: Any, channels: list[Channel], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choice_field(self, "type").choices = [("", str(_("All types"))), *type_choices()]
        _choice_field(self, "channel").choices = _int_choices(channels, lambda c: c.name, _("All"))

    def values(self) -> tuple[list[str], int | None]:
        if not self.is_bound or not self.is_valid():
            return [], None
        kind = self.cleaned_data["type"]
        return ([kind] if kind else []), self.cleaned_data["channel"]


class MergeFindForm(forms.Form):
    other = forms.CharField(
        label=_("Merge with"),
        max_length=254,
        widget=forms.TextInput(attrs={"placeholder": _("Contact id, phone or email")}),
    )


class MergeConfirmForm(forms.Form):
    THIS, OTHER = "this", "other"

    other = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    keep = forms.ChoiceField(
        label=_("Keep"),
        choices=[(THIS, _("this contact")), (OTHER, _("the other contact"))],
        widget=forms.RadioSelect,
        initial=THIS,
    )
    reason = forms.CharField(label=_("Reason"), required=False, max_length=200)

    def __init__(self, *args: Any, names: tuple[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if names is not None:
            this, other = names
            _choice_field(self, "keep").choices = [
                (self.THIS, _("this contact: %(name)s") % {"name": this}),
                (self.OTHER, _("the other contact: %(name)s") % {"name": other}),
            ]
