"""The fields a form can ask for, and the checks on what a form and a visitor send.

The catalogue of a unit is the contact's standard fields (name, email, phone, company,
job title, department, province, city, industry) plus the unit's active custom fields as
``custom:<key>``, each custom choice field with that unit's own options (seed 003: the same
客户类型 means different things per unit). A form stores an ordered list of entries
``{"key", "required", "label", "options"}`` (``Form.fields``): ``label`` overrides the
default label, ``options`` narrows a choice field to some of its options (empty: all).

Values are checked the way the contact will hold them: emails and phones normalised as
identity keys (phones to E.164 with ``phonenumbers``, default region CN), custom values
through ``contacts.services.fields``, so what a submission stores is already clean.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.contacts.identity_keys import InvalidKey, normalize_email, normalize_phone
from apps.contacts.models import CustomField, CustomFieldType, IdentityKind
from apps.contacts.services.fields import FieldValueError, clean_value

CUSTOM_PREFIX = "custom:"
LABEL_MAX = 100
# A form longer than this is a survey, not a lead form; it also bounds the POST we parse.
MAX_FIELDS = 30


class FieldType:
    EMAIL = "email"
    PHONE = "phone"
    TEXT = "text"
    NUMBER = CustomFieldType.NUMBER.value
    DATE = CustomFieldType.DATE.value
    CHOICE = CustomFieldType.CHOICE.value
    MULTI_CHOICE = CustomFieldType.MULTI_CHOICE.value


@dataclass(frozen=True)
class CatalogueField:
    """One field a form of the unit may use."""

    key: str
    label: str | Promise
    type: str
    max_length: int = 0
    options: tuple[tuple[str, str], ...] = ()
    # The identity kind the value is a key of (email, phone); "" for attributes.
    identity: str = ""
    autocomplete: str = ""
    custom: CustomField | None = field(default=None, compare=False, hash=False)

    @property
    def is_custom(self) -> bool:
        return self.custom is not None

    @property
    def is_choice(self) -> bool:
        return self.type in (FieldType.CHOICE, FieldType.MULTI_CHOICE)


# Lengths are the Contact columns'. Order is the catalogue's order in the builder.
STANDARD_FIELDS: tuple[CatalogueField, ...] = (
    CatalogueField("name", gettext_lazy("Name"), FieldType.TEXT, 100, autocomplete="name"),
    CatalogueField(
        "email",
        gettext_lazy("Email"),
        FieldType.EMAIL,
        254,
        identity=IdentityKind.EMAIL,
        autocomplete="email",
    ),
    CatalogueField(
        "phone",
        gettext_lazy("Mobile phone"),
        FieldType.PHONE,
        40,
        identity=IdentityKind.PHONE,
        autocomplete="tel",
    ),
    CatalogueField(
        "company_name", gettext_lazy("Company"), FieldType.TEXT, 200, autocomplete="organization"
    ),
    CatalogueField(
        "title", gettext_lazy("Job title"), FieldType.TEXT, 100, autocomplete="organization-title"
    ),
    CatalogueField("department", gettext_lazy("Department"), FieldType.TEXT, 100),
    CatalogueField(
        "province", gettext_lazy("Province"), FieldType.TEXT, 50, autocomplete="address-level1"
    ),
    CatalogueField("city", gettext_lazy("City"), FieldType.TEXT, 50, autocomplete="address-level2"),
    CatalogueField("industry", gettext_lazy("Industry"), FieldType.TEXT, 100),
)
IDENTITY_FIELDS = frozenset(f.key for f in STANDARD_FIELDS if f.identity)
# Standard fields that are Contact attributes (identity resolution fills them).
ATTRIBUTE_FIELDS = tuple(f.key for f in STANDARD_FIELDS if not f.identity)


def _custom_entry(custom: CustomField) -> CatalogueField:
    options = tuple(
        (str(o.get("value")), str(o.get("label") or o.get("value")))
        for o in custom.options
        if isinstance(o, dict) and o.get("value") not in (None, "")
    )
    return CatalogueField(
        key=f"{CUSTOM_PREFIX}{custom.key}",
        label=custom.label,
        type=custom.type,
        max_length=500 if custom.type == CustomFieldType.TEXT else 0,
        options=options,
        custom=custom,
    )


def catalogue_of(custom_fields: Iterable[CustomField]) -> dict[str, CatalogueField]:
    """The catalogue, given the unit's active custom fields (no query)."""
    entries = {f.key: f for f in STANDARD_FIELDS}
    for custom in custom_fields:
        entry = _custom_entry(custom)
        entries[entry.key] = entry
    return entries


def field_catalogue(unit_id: int) -> dict[str, CatalogueField]:
    """Everything a form of the unit may ask for, key → field: one query."""
    customs = (
        CustomField.objects.dangerously_unscoped()
        .filter(unit_id=unit_id, is_active=True)
        .order_by("position", "id")
    )
    return catalogue_of(customs)


# --- A form's fields, resolved against the catalogue ------------------------------------------


@dataclass(frozen=True)
class FormField:
    """One field as a form asks for it."""

    spec: CatalogueField
    required: bool
    label_override: str = ""
    # The options offered (a subset of the field's own); all of them when not narrowed.
    options: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def label(self) -> str:
        return self.label_override or str(self.spec.label)

    @property
    def input_name(self) -> str:
        """The HTML name: prefixed so no field can collide with the page's own inputs."""
        return f"f-{self.key}"

    @property
    def input_id(self) -> str:
        return "f-" + self.key.replace(":", "-")

    @property
    def type(self) -> str:
        return self.spec.type


def form_fields(
    definition: Sequence[Mapping[str, Any]], catalogue: Mapping[str, CatalogueField]
) -> list[FormField]:
    """A stored definition's fields, in order. Entries the catalogue no longer has (a custom
    field switched off since) are skipped: the form keeps working without them."""
    fields: list[FormField] = []
    for entry in definition:
        if not isinstance(entry, Mapping):
            continue
        spec = catalogue.get(str(entry.get("key", "")))
        if spec is None:
            continue
        options = spec.options
        wanted = entry.get("options") or []
        if spec.is_choice and wanted:
            narrowed = tuple(o for o in spec.options if o[0] in {str(v) for v in wanted})
            options = narrowed or spec.options
        fields.append(
            FormField(
                spec=spec,
                required=bool(entry.get("required")),
                label_override=str(entry.get("label") or "")[:LABEL_MAX],
                options=options,
            )
        )
    return fields


# --- Checking a form definition (console and API) ---------------------------------------------


def _http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def redirect_url_check(url: str) -> str:
    """A redirect after submit goes to an http(s) page, nothing else (no javascript:)."""
    url = (url or "").strip()
    if url and not _http_url(url):
        raise ValidationError(
            {"redirect_url": _("Use an http:// or https:// address, e.g. https://www.example.cn/.")}
        )
    return url


def _entry_clean(
    index: int, entry: Any, catalogue: Mapping[str, CatalogueField], errors: list[str]
) -> dict[str, Any] | None:
    position = index + 1
    if not isinstance(entry, Mapping):
        errors.append(
            _('Field %(n)d: expected an object with a key, e.g. {"key": "email"}.')
            % {"n": position}
        )
        return None
    key = entry.get("key")
    if not isinstance(key, str) or not key.strip():
        errors.append(_("Field %(n)d: give the key of a field, e.g. “email”.") % {"n": position})
        return None
    key = key.strip()
    spec = catalogue.get(key)
    if spec is None:
        errors.append(
            _("Field %(n)d “%(key)s”: this unit has no such field (or it is switched off).")
            % {"n": position, "key": key[:60]}
        )
        return None
    unknown = sorted(set(entry) - {"key", "required", "label", "options"})
    if unknown:
        errors.append(
            _("Field “%(key)s”: unknown setting %(names)s (use required, label, options).")
            % {"key": key, "names": "、".join(str(u)[:30] for u in unknown)}
        )
    required = entry.get("required", False)
    if not isinstance(required, bool):
        errors.append(_("Field “%(key)s”: required must be true or false.") % {"key": key})
        required = False
    label = entry.get("label") or ""
    if not isinstance(label, str):
        errors.append(_("Field “%(key)s”: the label must be text.") % {"key": key})
        label = ""
    label = label.strip()
    if len(label) > LABEL_MAX:
        errors.append(
            _("Field “%(key)s”: the label is longer than %(max)d characters.")
            % {"key": key, "max": LABEL_MAX}
        )
    options = entry.get("options") or []
    if not isinstance(options, list) or not all(isinstance(o, str | int) for o in options):
        errors.append(_("Field “%(key)s”: options must be a list of option values.") % {"key": key})
        options = []
    options = [str(o) for o in options]
    if options and not spec.is_choice:
        errors.append(
            _("Field “%(key)s”: only choice fields have options to narrow.") % {"key": key}
        )
        options = []
    allowed = [value for value, _label in spec.options]
    strangers = [o for o in options if o not in allowed]
    if strangers:
        errors.append(
            _("Field “%(key)s”: “%(value)s” is not one of its options (%(allowed)s).")
            % {"key": key, "value": strangers[0][:60], "allowed": "、".join(allowed)}
        )
    # Stored in the field's own order, without repeats.
    options = [value for value in allowed if value in options]
    return {"key": key, "required": required, "label": label, "options": options}


def form_definition_clean(
    *,
    fields: Any,
    catalogue: Mapping[str, CatalogueField],
    progressive_max: Any = 1,
    consent_required: bool = False,
    consent_text: str = "",
    consent_version: str = "",
    redirect_url: str = "",
) -> list[dict[str, Any]]:
    """The definition as it is stored, or ValidationError naming each problem's field."""
    errors: dict[str, list[str]] = {}
    field_errors: list[str] = []
    cleaned: list[dict[str, Any]] = []
    if not isinstance(fields, list):
        field_errors.append(_('Fields must be a list, e.g. [{"key": "email"}].'))
        fields = []
    if len(fields) > MAX_FIELDS:
        field_errors.append(
            _("A form asks for at most %(max)d fields; this one has %(count)d.")
            % {"max": MAX_FIELDS, "count": len(fields)}
        )
    seen: set[str] = set()
    for index, entry in enumerate(fields[:MAX_FIELDS]):
        item = _entry_clean(index, entry, catalogue, field_errors)
        if item is None:
            continue
        if item["key"] in seen:
            field_errors.append(
                _("Field “%(key)s” is in the form twice; keep one.") % {"key": item["key"]}
            )
            continue
        seen.add(item["key"])
        cleaned.append(item)
    if not seen & IDENTITY_FIELDS and not field_errors:
        field_errors.append(
            _(
                "Add an “email” or a “phone” field: without one a submission cannot be "
                "matched to a person."
            )
        )
    if field_errors:
        errors["fields"] = field_errors
    if isinstance(progressive_max, bool) or not isinstance(progressive_max, int):
        errors["progressive_max"] = [_("Give a whole number of fields, 1 or more.")]
    elif progressive_max < 1:
        errors["progressive_max"] = [_("Ask at least 1 new field per visit.")]
    if consent_required and not (consent_text or "").strip():
        errors["consent_text"] = [
            _("Write the consent wording the visitor agrees to, or make consent optional.")
        ]
    if (consent_text or "").strip() and not (consent_version or "").strip():
        errors["consent_version"] = [
            _(
                "Give the wording a version (e.g. 2026-03), so each consent records what the "
                "person saw."
            )
        ]
    try:
        redirect_url_check(redirect_url)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    return cleaned


# --- Checking a visitor's answers -------------------------------------------------------------


def value_clean(form_field: FormField, raw: Any) -> Any:
    """The stored value of one answer; None when empty. FieldValueError says what is wrong,
    in words for the visitor."""
    spec = form_field.spec
    if isinstance(raw, list):
        values = [str(v).strip() for v in raw if str(v).strip()]
        if not spec.is_choice or spec.type == FieldType.CHOICE:
            raw = values[0] if values else ""
        else:
            raw = values
    if raw is None or raw == "" or raw == [] or (isinstance(raw, str) and not raw.strip()):
        return None
    if spec.type == FieldType.EMAIL:
        try:
            return normalize_email(str(raw))
        except InvalidKey:
            raise FieldValueError(
                _("Enter a valid email address, e.g. li.lei@example.cn.")
            ) from None
    if spec.type == FieldType.PHONE:
        try:
            return normalize_phone(str(raw), "CN")
        except InvalidKey:
            raise FieldValueError(
                _(
                    "Enter a valid phone number, e.g. 138 0013 8000, or with the country "
                    "code, e.g. +852 9123 4567."
                )
            ) from None
    if spec.custom is not None:
        value = clean_value(spec.custom, raw)
        allowed = {v for v, _label in form_field.options}
        chosen = value if isinstance(value, list) else [value]
        if spec.is_choice and any(v not in allowed for v in chosen):
            raise FieldValueError(_("Pick one of the options offered."))
        return value
    text = str(raw).strip()
    if spec.max_length and len(text) > spec.max_length:
        raise FieldValueError(
            _("Use at most %(max)d characters (this has %(count)d).")
            % {"max": spec.max_length, "count": len(text)}
        )
    return text


def answers_clean(
    fields: Sequence[FormField], raw: Mapping[str, Any], *, identity_needed: bool = True
) -> tuple[dict[str, Any], dict[str, str]]:
    """(cleaned answers keyed like the form's fields, errors keyed the same way).

    ``raw`` maps a field key to what was sent (a string, or a list for multi-choice).
    Required fields must be filled. With ``identity_needed`` (the visitor is not recognised)
    and an email or phone field shown, at least one of them must be filled, so the
    submission can be matched to a person.
    """
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for form_field in fields:
        try:
            value = value_clean(form_field, raw.get(form_field.key))
        except FieldValueError as exc:
            errors[form_field.key] = str(exc)
            continue
        if value is None:
            if form_field.required:
                errors[form_field.key] = _("This field is required.")
            continue
        data[form_field.key] = value
    identity_fields = [f for f in fields if f.spec.identity]
    if (
        identity_needed
        and identity_fields
        and not any(f.key in data or f.key in errors for f in identity_fields)
    ):
        errors[identity_fields[0].key] = _("Enter your email or mobile number so we can reply.")
    return data, errors


# --- Progressive profiling ----------------------------------------------------------------------


def known_keys(
    *,
    attributes: Mapping[str, Any],
    custom: Mapping[str, Any],
    identity_kinds: Iterable[str],
    fields: Iterable[FormField],
) -> set[str]:
    """The keys among ``fields`` we already know for a contact: a non-empty standard field,
    a custom value present, an identity of that kind present."""
    kinds = set(identity_kinds)
    known: set[str] = set()
    for form_field in fields:
        spec = form_field.spec
        if spec.identity:
            if spec.identity in kinds:
                known.add(spec.key)
        elif spec.custom is not None:
            if custom.get(spec.custom.storage_key) not in (None, "", []):
                known.add(spec.key)
        elif str(attributes.get(spec.key) or "").strip():
            known.add(spec.key)
    return known


def fields_to_ask(
    fields: Sequence[FormField],
    *,
    known: set[str],
    recognised: bool,
    max_new: int,
) -> list[FormField]:
    """Progressive profiling: the fields to show, in form order.

    Known fields are hidden; of the unknown ones at most ``max_new`` are asked, required
    ones first (in form order). A visitor we do not recognise is always asked an email or
    phone field, else their answers could not be matched to anybody.
    """
    unknown = [f for f in fields if f.key not in known]
    position = {f.key: i for i, f in enumerate(fields)}
    ordered = sorted(unknown, key=lambda f: (not f.required, position[f.key]))
    picked = ordered[: max(max_new, 1)]
    if not recognised and not any(f.spec.identity for f in picked):
        identity = next((f for f in ordered if f.spec.identity), None)
        if identity is not None:
            picked = [identity, *picked[: max(max_new, 1) - 1]]
    chosen = {f.key for f in picked}
    return [f for f in fields if f.key in chosen]
