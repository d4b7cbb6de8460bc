"""What the contacts API reads and writes.

Input serializers check everything a write needs before anything is stored: identity keys
are normalised (a malformed phone or email is refused with its position in the list),
custom-field values are checked against the fields of the unit the caller names, tags must
belong to that unit, consent needs a known channel and basis. The view then makes one
transactional write.

Output: a contact with its identities, and the units, tags and custom-field values of the
units the caller may see (see ``selectors.api.contacts_decorated``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from apps.contacts.identity_keys import SCOPED_KINDS, InvalidKey, Key, make_key
from apps.contacts.models import (
    STANDARD_FIELDS,
    Activity,
    Channel,
    ConsentBasis,
    ConsentChannel,
    ConsentEvent,
    ConsentPurpose,
    ConsentState,
    Contact,
    ContactTag,
    CustomField,
    IdentityKind,
)
from apps.contacts.selectors import api as selectors
from apps.contacts.services.fields import FieldValueError, clean_custom
from apps.core.api_base import VisibleUnitField

# Kinds an integrator may resolve people by. Anonymous visitor ids stay with the collector:
# a shared browser would otherwise merge different people.
API_IDENTITY_KINDS = [
    (kind.value, kind.label) for kind in IdentityKind if kind != IdentityKind.ANONYMOUS
]
# An observation time a little ahead of our clock is drift; further ahead is a mistake that
# would make the value win every later conflict.
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_IDENTITIES = 20
MAX_TAGS = 50
MAX_CONSENTS = 10


def _user(
    serializer: serializers.Field[Any, Any, Any, Any] | serializers.BaseSerializer[Any],
) -> Any:
    request = serializer.context.get("request")
    return getattr(request, "user", None)


# --- Reading ---------------------------------------------------------------------------------


class IdentitySerializer(serializers.Serializer[Any]):
    kind = serializers.CharField(read_only=True)
    scope = serializers.CharField(read_only=True)
    value = serializers.CharField(read_only=True)


class ContactTagSerializer(serializers.ModelSerializer[Any]):
    id = serializers.IntegerField(source="tag_id", read_only=True)
    name = serializers.CharField(source="tag.name", read_only=True)
    unit = serializers.IntegerField(source="tag.unit_id", read_only=True)

    class Meta:
        model = ContactTag
        fields = ["id", "name", "unit", "source", "added_at"]
        read_only_fields = fields


# Only describes the output of ContactSerializer.custom_fields (a field called "label"
# cannot be declared on a serializer class without shadowing Field.label).
CustomValueSerializer = inline_serializer(
    name="CustomValue",
    fields={
        "unit": serializers.IntegerField(),
        "key": serializers.CharField(),
        "label": serializers.CharField(),
        "type": serializers.CharField(),
        "value": serializers.JSONField(),
    },
)


class ContactSerializer(serializers.ModelSerializer[Contact]):
    """A person. Units, tags and custom-field values are those of the units you may see."""

    # The context's ``custom_fields`` (storage key -> CustomField) says which values show.

    identities = serializers.SerializerMethodField()
    units = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    custom_fields = serializers.SerializerMethodField()

    class Meta:
        model = Contact
        fields = [
            "id",
            "status",
            "merged_into",
            *STANDARD_FIELDS,
            "source_channel",
            "custom_fields",
            "identities",
            "units",
            "tags",
            "first_seen_at",
            "last_seen_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(IdentitySerializer(many=True))
    def get_identities(self, contact: Contact) -> list[dict[str, Any]]:
        rows = getattr(contact, "identity_rows", None)
        if rows is None:  # not decorated: the caller forgot contacts_decorated()
            raise RuntimeError("serialise contacts from selectors.api.contacts_decorated()")
        return [{"kind": i.kind, "scope": i.scope, "value": i.value} for i in rows]

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_units(self, contact: Contact) -> list[int]:
        return [row.unit_id for row in getattr(contact, "visible_units", [])]

    @extend_schema_field(ContactTagSerializer(many=True))
    def get_tags(self, contact: Contact) -> Any:
        return ContactTagSerializer(getattr(contact, "visible_tags", []), many=True).data

    @extend_schema_field(serializers.ListField(child=CustomValueSerializer))
    def get_custom_fields(self, contact: Contact) -> list[dict[str, Any]]:
        shown: dict[str, CustomField] = self.context.get("custom_fields") or {}
        values = contact.custom or {}
        out = []
        for storage_key, field in shown.items():
            if storage_key in values:
                out.append(
                    {
                        "unit": field.unit_id,
                        "key": field.key,
                        "label": field.label,
                        "type": field.type,
                        "value": values[storage_key],
                    }
                )
        return out


class UpsertResultSerializer(serializers.Serializer[Any]):
    outcome = serializers.ChoiceField(
        choices=[
            ("created", pgettext_lazy("upsert outcome", "created")),
            ("matched", pgettext_lazy("upsert outcome", "matched")),
            ("merged", pgettext_lazy("upsert outcome", "merged")),
        ],
        read_only=True,
        help_text="created: a new contact; matched: the keys found one contact; merged: "
        "they found several, merged into the oldest (merged_ids are the others).",
    )
    merged_ids = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    contact = ContactSerializer(read_only=True)


class ActivitySerializer(serializers.ModelSerializer[Activity]):
    class Meta:
        model = Activity
        fields = [
            "id",
            "type",
            "occurred_at",
            "unit",
            "channel",
            "campaign",
            "object_type",
            "object_id",
            "properties",
        ]
        read_only_fields = fields


class ConsentStateSerializer(serializers.ModelSerializer[ConsentState]):
    class Meta:
        model = ConsentState
        fields = ["channel", "purpose", "granted", "since"]
        read_only_fields = fields


class ConsentEventSerializer(serializers.ModelSerializer[ConsentEvent]):
    class Meta:
        model = ConsentEvent
        fields = [
            "id",
            "unit",
            "channel",
            "purpose",
            "granted",
            "basis",
            "source",
            "wording_version",
            "proof",
            "occurred_at",
        ]
        read_only_fields = fields


class ConsentOverviewSerializer(serializers.Serializer[Any]):
    states = ConsentStateSerializer(many=True, read_only=True)
    history = ConsentEventSerializer(many=True, read_only=True)


# --- Writing ---------------------------------------------------------------------------------


class VisibleChannelField(serializers.PrimaryKeyRelatedField):  # type: ignore[type-arg]
    """A channel of a unit the caller may see; any other id reads as "does not exist"."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", Channel.objects.all())
        super().__init__(**kwargs)

    def get_queryset(self) -> Any:
        return Channel.objects.visible_to(_user(self), selectors.VIEW)


class IdentityInSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=API_IDENTITY_KINDS)
    value = serializers.CharField(max_length=254, trim_whitespace=True)
    scope = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        default="",
        help_text="The official-account app id of a wechat_openid; ignored for other kinds.",
    )


def identity_error_message(kind: str, raw: str) -> str:
    if kind == IdentityKind.PHONE:
        return _("“%(value)s” is not a valid phone number.") % {"value": raw}
    if kind == IdentityKind.EMAIL:
        return _("“%(value)s” is not a valid email address.") % {"value": raw}
    return _("“%(value)s” is not a valid id (no spaces, at most 254 characters).") % {"value": raw}


def identities_to_keys(items: list[dict[str, Any]]) -> list[Key]:
    """Normalised keys, or ValidationError ``{"<index>": ["why"]}`` naming every bad one."""
    errors: dict[str, list[str]] = {}
    keys: list[Key] = []
    for index, item in enumerate(items):
        kind, raw, scope = item["kind"], item["value"], item.get("scope", "")
        if kind in SCOPED_KINDS and not scope.strip():
            errors[str(index)] = [_("A WeChat openid needs its official-account app id in scope.")]
            continue
        try:
            key = make_key(kind, raw, scope)
        except InvalidKey:
            errors[str(index)] = [identity_error_message(kind, raw)]
            continue
        if key not in keys:
            keys.append(key)
    if errors:
        raise serializers.ValidationError(errors)
    return keys


class AttributesSerializer(serializers.Serializer[Any]):
    """The standard fields. Empty values never erase what is stored (upsert)."""

    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    title = serializers.CharField(max_length=100, required=False, allow_blank=True)
    department = serializers.CharField(max_length=100, required=False, allow_blank=True)
    company_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    province = serializers.CharField(max_length=50, required=False, allow_blank=True)
    city = serializers.CharField(max_length=50, required=False, allow_blank=True)
    industry = serializers.CharField(max_length=100, required=False, allow_blank=True)
    source_channel = VisibleChannelField(required=False, allow_null=True)


class ConsentInSerializer(serializers.Serializer[Any]):
    channel = serializers.ChoiceField(choices=ConsentChannel.choices)
    granted = serializers.BooleanField()
    basis = serializers.ChoiceField(
        choices=ConsentBasis.choices,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required in law for a grant; defaults to consent when granted.",
    )
    purpose = serializers.ChoiceField(
        choices=ConsentPurpose.choices, required=False, default=ConsentPurpose.MARKETING
    )
    wording_version = serializers.CharField(
        max_length=40, required=False, allow_blank=True, default=""
    )
    proof = serializers.DictField(
        required=False,
        default=dict,
        help_text="What shows the person said so: ip, user_agent, form id, page URL…",
    )
    occurred_at = serializers.DateTimeField(required=False)

    def validate_occurred_at(self, value: Any) -> Any:
        return _not_future(value)


class ConsentRecordSerializer(ConsentInSerializer):
    unit = VisibleUnitField(help_text="The unit that collected the answer.")


def _not_future(value: Any) -> Any:
    if value is not None and value > timezone.now() + FUTURE_TOLERANCE:
        raise serializers.ValidationError(_("This time is in the future."))
    return value


class _CustomMixin:
    """Cleans ``custom`` ({field key: value}) against the fields of ``unit``."""

    def clean_custom_for(self, unit_id: int | None, raw: dict[str, Any] | None) -> dict[str, Any]:
        if not raw:
            return {}
        if unit_id is None:
            raise serializers.ValidationError(
                {"unit": [_("Name the unit whose custom fields these are.")]}
            )
        user = _user(self)  # type: ignore[arg-type]
        fields = selectors.custom_fields_writable(user=user, unit_id=unit_id)
        cleaned: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for name, value in raw.items():
            try:
                cleaned.update(clean_custom(fields, {name: value}))
            except FieldValueError as exc:
                errors[str(name)] = [str(exc)]
        if errors:
            raise serializers.ValidationError({"custom": errors})
        return cleaned


class ContactCreateSerializer(_CustomMixin, AttributesSerializer):
    unit = VisibleUnitField(
        help_text="The unit that knows this person; its custom fields apply to custom."
    )
    identities = serializers.ListField(
        child=IdentityInSerializer(), min_length=1, max_length=MAX_IDENTITIES
    )
    custom = serializers.DictField(
        required=False, default=dict, help_text="{custom field key of unit: value}"
    )

    def validate_identities(self, value: list[dict[str, Any]]) -> list[Key]:
        return identities_to_keys(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["custom"] = self.clean_custom_for(attrs["unit"].pk, attrs.get("custom"))
        return attrs


class ContactUpsertSerializer(_CustomMixin, serializers.Serializer[Any]):
    unit = VisibleUnitField(
        help_text="The unit that knows this person; its custom fields and tags apply."
    )
    identities = serializers.ListField(
        child=IdentityInSerializer(), min_length=1, max_length=MAX_IDENTITIES
    )
    attributes = AttributesSerializer(required=False)
    custom = serializers.DictField(
        required=False, default=dict, help_text="{custom field key of unit: value}"
    )
    tags = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        default=list,
        max_length=MAX_TAGS,
        help_text="Ids of tags of unit to put on the contact.",
    )
    consent = serializers.ListField(
        child=ConsentInSerializer(), required=False, default=list, max_length=MAX_CONSENTS
    )
    observed_at = serializers.DateTimeField(
        required=False, help_text="When these details were true (default: now)."
    )

    def validate_identities(self, value: list[dict[str, Any]]) -> list[Key]:
        return identities_to_keys(value)

    def validate_observed_at(self, value: Any) -> Any:
        return _not_future(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unit = attrs["unit"]
        attrs["custom"] = self.clean_custom_for(unit.pk, attrs.get("custom"))
        wanted = list(dict.fromkeys(attrs.get("tags") or []))
        tags = selectors.tags_writable(user=_user(self), tag_ids=wanted, unit_id=unit.pk)
        unknown = sorted(set(wanted) - {t.pk for t in tags})
        if unknown:
            raise serializers.ValidationError({"tags": [_unknown_tags(unknown)]})
        attrs["tags"] = tags
        return attrs


def _unknown_tags(ids: list[int]) -> str:
    return _("Unknown tag: %(ids)s.") % {"ids": ", ".join(str(i) for i in ids)}


class ContactUpdateSerializer(_CustomMixin, AttributesSerializer):
    """PATCH: the fields sent change; an empty string clears a field; ``custom`` values of
    null clear that custom field."""

    unit = VisibleUnitField(
        required=False, help_text="Whose custom fields custom names; required with custom."
    )
    custom = serializers.DictField(
        required=False, default=dict, help_text="{custom field key of unit: value or null}"
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        raw = dict(attrs.get("custom") or {})
        unit = attrs.get("unit")
        cleared = [name for name, value in raw.items() if value in (None, "", [])]
        present = {name: value for name, value in raw.items() if name not in cleared}
        attrs["custom"] = self.clean_custom_for(unit.pk if unit else None, present)
        if cleared:
            if unit is None:
                raise serializers.ValidationError(
                    {"unit": [_("Name the unit whose custom fields these are.")]}
                )
            fields = selectors.custom_fields_writable(user=_user(self), unit_id=unit.pk)
            by_name = {f.key: f for f in fields} | {str(f.pk): f for f in fields}
            missing = [name for name in cleared if name not in by_name]
            if missing:
                raise serializers.ValidationError(
                    {
                        "custom": {
                            name: [_("unknown custom field “%(name)s”") % {"name": name}]
                            for name in missing
                        }
                    }
                )
            attrs["custom_cleared"] = [by_name[name].storage_key for name in cleared]
        return attrs


class TagChangeSerializer(serializers.Serializer[Any]):
    add = serializers.ListField(
        child=serializers.IntegerField(), required=False, default=list, max_length=MAX_TAGS
    )
    remove = serializers.ListField(
        child=serializers.IntegerField(), required=False, default=list, max_length=MAX_TAGS
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        wanted = list(dict.fromkeys([*attrs["add"], *attrs["remove"]]))
        if not wanted:
            raise serializers.ValidationError(_("Name tags to add or remove."))
        both = sorted(set(attrs["add"]) & set(attrs["remove"]))
        if both:
            raise serializers.ValidationError(
                {
                    "remove": [
                        _("Tag %(ids)s cannot be both added and removed.")
                        % {"ids": ", ".join(str(i) for i in both)}
                    ]
                }
            )
        tags = {t.pk: t for t in selectors.tags_writable(user=_user(self), tag_ids=wanted)}
        errors: dict[str, list[str]] = {}
        for name in ("add", "remove"):
            unknown = sorted(set(attrs[name]) - set(tags))
            if unknown:
                errors[name] = [_unknown_tags(unknown)]
        if errors:
            raise serializers.ValidationError(errors)
        attrs["add"] = [tags[i] for i in dict.fromkeys(attrs["add"])]
        attrs["remove"] = [tags[i] for i in dict.fromkeys(attrs["remove"])]
        return attrs
