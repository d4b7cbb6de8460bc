"""Writes for a unit's contact configuration: tag groups and tags (manual and rule), custom
fields, channels and campaigns. Each takes ``acting_user`` and leaves an audit row in the
same transaction.

Bad input raises ``django.core.exceptions.ValidationError`` keyed by field, so a form
shows it next to the field and the API returns it in its error shape. Uniqueness is the
database's job (constraints); a clash is translated into the same kind of error, never
checked first and inserted second.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.contacts.models import (
    Campaign,
    Channel,
    ChannelKind,
    ContactTag,
    CustomField,
    CustomFieldType,
    Tag,
    TagGroup,
    TagKind,
)
from apps.contacts.selectors.config import COUNT_LIMIT, option_usage
from apps.contacts.services import tag_rules
from apps.core.audit_actions import register_action
from apps.core.models import BusinessUnit
from apps.core.services import Actor, audit_record

for _action, _label in (
    ("tag_group.create", gettext_lazy("Tag group created")),
    ("tag_group.update", gettext_lazy("Tag group changed")),
    ("tag_group.delete", gettext_lazy("Tag group deleted")),
    ("tag.create", gettext_lazy("Tag created")),
    ("tag.update", gettext_lazy("Tag changed")),
    ("tag.delete", gettext_lazy("Tag deleted")),
    ("tag.apply", gettext_lazy("Rule tag applied")),
    ("custom_field.create", gettext_lazy("Custom field created")),
    ("custom_field.update", gettext_lazy("Custom field changed")),
    ("custom_field.reorder", gettext_lazy("Custom fields reordered")),
    ("channel.create", gettext_lazy("Channel created")),
    ("channel.update", gettext_lazy("Channel changed")),
    ("campaign.create", gettext_lazy("Campaign created")),
    ("campaign.update", gettext_lazy("Campaign changed")),
):
    register_action(_action, _label)

MAX_OPTIONS = 200
OPTION_VALUE_MAX = 50
OPTION_LABEL_MAX = 100
CHOICE_TYPES = (CustomFieldType.CHOICE, CustomFieldType.MULTI_CHOICE)
COST_MAX = Decimal("999999999999.99")  # max_digits=14, decimal_places=2


def _clash_messages() -> dict[str, tuple[str, str]]:
    """Database constraint -> (field, message) for the clashes a person can cause."""
    return {
        "taggroup_name": ("name", _("A tag group with this name already exists in this unit.")),
        "tag_name": ("name", _("A tag with this name already exists in this unit.")),
        "customfield_key": ("key", _("Another field of this unit already uses this key.")),
        "channel_code": ("code", _("Another channel of this unit already uses this code.")),
        "campaign_code": ("code", _("Another campaign of this unit already uses this code.")),
        "campaign_cost_not_negative": ("cost", _("The cost cannot be negative.")),
    }


def _save(obj: models.Model, update_fields: Sequence[str] | None = None) -> None:
    """Save in a savepoint; a constraint clash becomes a ValidationError on its field."""
    try:
        with transaction.atomic():
            obj.save(update_fields=update_fields)
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
        known = _clash_messages().get(constraint or "")
        if known is None:
            raise
        raise ValidationError({known[0]: [known[1]]}) from None


def _name(value: str, *, field: str = "name", max_length: int) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationError({field: [_("This field is required.")]})
    if len(text) > max_length:
        raise ValidationError({field: [_("At most %(n)d characters, please.") % {"n": max_length}]})
    return text


def _same_unit(obj: models.Model | None, unit_id: int, field: str) -> None:
    if obj is not None and getattr(obj, "unit_id", None) != unit_id:
        raise ValidationError({field: [_("Pick one of this unit's own.")]})


# --- Tag groups ----------------------------------------------------------------------------


def _group_audit(group: TagGroup) -> dict[str, Any]:
    return {"name": group.name, "position": group.position}


@transaction.atomic
def tag_group_create(
    *, unit: BusinessUnit, name: str, position: int = 0, acting_user: Actor
) -> TagGroup:
    group = TagGroup(unit=unit, name=_name(name, max_length=60), position=max(0, position))
    _save(group)
    audit_record(
        actor=acting_user,
        action="tag_group.create",
        obj=group,
        unit=unit,
        after=_group_audit(group),
    )
    return group


@transaction.atomic
def tag_group_update(
    *, group: TagGroup, name: str, position: int | None = None, acting_user: Actor
) -> TagGroup:
    before = _group_audit(group)
    group.name = _name(name, max_length=60)
    if position is not None:
        group.position = max(0, position)
    _save(group, ["name", "position"])
    audit_record(
        actor=acting_user,
        action="tag_group.update",
        obj=group,
        unit=group.unit_id,
        before=before,
        after=_group_audit(group),
    )
    return group


@transaction.atomic
def tag_group_delete(*, group: TagGroup, acting_user: Actor) -> int:
    """Delete the group; its tags stay, ungrouped. Returns how many tags that was."""
    ungrouped = Tag.objects.dangerously_unscoped().filter(group=group).update(group=None)
    audit_record(
        actor=acting_user,
        action="tag_group.delete",
        obj=group,
        unit=group.unit_id,
        before={**_group_audit(group), "tags": ungrouped},
    )
    group.delete()
    return ungrouped


# --- Tags ----------------------------------------------------------------------------------


def _tag_audit(tag: Tag) -> dict[str, Any]:
    return {"name": tag.name, "kind": tag.kind, "group": tag.group_id, "rule": tag.rule}


def _check_rule(tag: Tag, rule: Any) -> Any:
    if tag.kind == TagKind.MANUAL:
        if rule not in (None, {}, ""):
            raise ValidationError({"rule": [_("A manual tag has no rule.")]})
        return None
    if rule in (None, {}, ""):
        raise ValidationError({"rule": [_("A rule tag needs a rule.")]})
    context = tag_rules.rule_context(unit_id=tag.unit_id, tag=tag)
    problems = tag_rules.rule_check(rule, context=context)
    if problems:
        raise ValidationError({"rule": problems})
    return rule


@transaction.atomic
def tag_create(
    *,
    unit: BusinessUnit,
    name: str,
    kind: str = TagKind.MANUAL,
    group: TagGroup | None = None,
    rule: Any = None,
    acting_user: Actor,
) -> Tag:
    """A new tag. A rule tag starts empty: apply it (``tag_rules.tag_rule_apply``) or wait
    for the periodic run."""
    if kind not in TagKind.values:
        raise ValidationError({"kind": [_("Choose manual or rule.")]})
    _same_unit(group, unit.pk, "group")
    tag = Tag(unit=unit, group=group, kind=kind, name=_name(name, max_length=60))
    tag.rule = _check_rule(tag, rule)
    _save(tag)
    audit_record(actor=acting_user, action="tag.create", obj=tag, unit=unit, after=_tag_audit(tag))
    return tag


@transaction.atomic
def tag_update(
    *,
    tag: Tag,
    name: str,
    group: TagGroup | None,
    rule: Any = None,
    kind: str | None = None,
    acting_user: Actor,
) -> Tag:
    if kind is not None and kind != tag.kind:
        # A manual tag's rows were put on by people; turning it into a rule would silently
        # take them off again. Create a rule tag next to it instead.
        raise ValidationError(
            {"kind": [_("A tag cannot switch between manual and rule; create a new tag.")]}
        )
    _same_unit(group, tag.unit_id, "group")
    before = _tag_audit(tag)
    tag.name = _name(name, max_length=60)
    tag.group = group
    tag.rule = _check_rule(tag, rule)
    _save(tag, ["name", "group", "rule"])
    audit_record(
        actor=acting_user,
        action="tag.update",
        obj=tag,
        unit=tag.unit_id,
        before=before,
        after=_tag_audit(tag),
    )
    return tag


@transaction.atomic
def tag_delete(*, tag: Tag, acting_user: Actor) -> None:
    """Delete a tag, its rows and its history. Refused while another rule refers to it."""
    users = [
        other.name
        for other in Tag.objects.dangerously_unscoped()
        .filter(unit_id=tag.unit_id, kind=TagKind.RULE)
        .exclude(pk=tag.pk)
        .order_by("name")
        if tag.pk in tag_rules.rule_tag_refs(other.rule)
    ]
    if users:
        raise ValidationError(
            _("The rules of %(tags)s refer to this tag; change them first.")
            % {"tags": "、".join(f"“{n}”" for n in users)}
        )
    carried = ContactTag.objects.dangerously_unscoped().filter(tag=tag).count()
    audit_record(
        actor=acting_user,
        action="tag.delete",
        obj=tag,
        unit=tag.unit_id,
        before={**_tag_audit(tag), "contacts": carried},
    )
    tag.delete()


@transaction.atomic
def tag_rule_apply_now(*, tag: Tag, acting_user: Actor) -> tag_rules.ApplyResult:
    """Apply a rule tag at someone's request (the periodic run does the same, unaudited)."""
    try:
        result = tag_rules.tag_rule_apply(tag=tag)
    except tag_rules.RuleError as exc:
        raise ValidationError({"rule": exc.problems}) from None
    audit_record(
        actor=acting_user,
        action="tag.apply",
        obj=tag,
        unit=tag.unit_id,
        after={"added": result.added, "removed": result.removed},
    )
    return result


# --- Custom fields -------------------------------------------------------------------------


def _field_audit(field: CustomField) -> dict[str, Any]:
    return {
        "key": field.key,
        "label": field.label,
        "type": field.type,
        "options": field.options,
        "position": field.position,
        "is_active": field.is_active,
    }


def clean_options(field_type: str, raw: Any) -> list[dict[str, str]]:
    """Options as stored: [{"value": …, "label": …}], values and labels unique."""
    if field_type not in CHOICE_TYPES:
        if raw:
            raise ValidationError({"options": [_("Only choice fields have options.")]})
        return []
    if not isinstance(raw, list) or not raw:
        raise ValidationError({"options": [_("A choice field needs at least one option.")]})
    if len(raw) > MAX_OPTIONS:
        raise ValidationError({"options": [_("At most %(n)d options.") % {"n": MAX_OPTIONS}]})
    options: list[dict[str, str]] = []
    values: set[str] = set()
    labels: set[str] = set()
    for i, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise ValidationError(
                {"options": [_("Option %(n)d: expected a value and a label.") % {"n": i}]}
            )
        value = str(item.get("value") or "").strip()
        label = str(item.get("label") or "").strip() or value
        if not value:
            raise ValidationError({"options": [_("Option %(n)d has no value.") % {"n": i}]})
        if len(value) > OPTION_VALUE_MAX or len(label) > OPTION_LABEL_MAX:
            raise ValidationError(
                {
                    "options": [
                        _("Option %(n)d: a value has at most %(v)d characters, a label %(l)d.")
                        % {"n": i, "v": OPTION_VALUE_MAX, "l": OPTION_LABEL_MAX}
                    ]
                }
            )
        if value in values or label in labels:
            raise ValidationError(
                {"options": [_("Option “%(label)s” appears twice.") % {"label": label}]}
            )
        values.add(value)
        labels.add(label)
        options.append({"value": value, "label": label})
    return options


@transaction.atomic
def custom_field_create(
    *,
    unit: BusinessUnit,
    key: str,
    label: str,
    field_type: str,
    options: Any = None,
    position: int | None = None,
    acting_user: Actor,
) -> CustomField:
    if field_type not in CustomFieldType.values:
        raise ValidationError({"type": [_("Choose a field type.")]})
    key = _name(key, field="key", max_length=50)
    if not key.replace("_", "").replace("-", "").isalnum() or not key.isascii():
        raise ValidationError(
            {"key": [_("Use letters, digits, - and _ only (it names the field in imports).")]}
        )
    if position is None:
        last = (
            CustomField.objects.dangerously_unscoped()
            .filter(unit=unit)
            .aggregate(m=models.Max("position"))["m"]
        )
        position = 0 if last is None else last + 1
    field = CustomField(
        unit=unit,
        key=key,
        label=_name(label, field="label", max_length=100),
        type=field_type,
        options=clean_options(field_type, options),
        position=position,
    )
    _save(field)
    audit_record(
        actor=acting_user,
        action="custom_field.create",
        obj=field,
        unit=unit,
        after=_field_audit(field),
    )
    return field


@transaction.atomic
def custom_field_update(
    *,
    field: CustomField,
    label: str,
    options: Any = None,
    is_active: bool | None = None,
    field_type: str | None = None,
    acting_user: Actor,
) -> CustomField:
    """Change a field's label, options or active flag. Its key and type stay: stored values
    are read by them. Removing an option some contact still holds is refused (with how many
    hold it), so no stored value is silently orphaned."""
    field = CustomField.objects.dangerously_unscoped().select_for_update().get(pk=field.pk)
    if field_type is not None and field_type != field.type:
        raise ValidationError(
            {"type": [_("A field's type cannot change; stored values depend on it.")]}
        )
    before = _field_audit(field)
    new_options = clean_options(field.type, options if options is not None else field.options)
    removed = field.option_values() - {o["value"] for o in new_options}
    if removed:
        # Values are written without locking the field, so an import running right now
        # could still store a removed value; the usage check catches all that committed.
        used = {v: n for v, n in option_usage(field=field, values=sorted(removed)).items() if n}
        if used:
            labels = {str(o.get("value")): str(o.get("label")) for o in field.options}
            raise ValidationError(
                {
                    "options": [
                        _(
                            "Option “%(label)s” is still used by %(count)s contacts; "
                            "keep it (you may rename its label) until no contact holds it."
                        )
                        % {"label": labels.get(v, v), "count": _count_text(n)}
                        for v, n in sorted(used.items())
                    ]
                }
            )
    field.label = _name(label, field="label", max_length=100)
    field.options = new_options
    if is_active is not None:
        field.is_active = is_active
    _save(field, ["label", "options", "is_active"])
    audit_record(
        actor=acting_user,
        action="custom_field.update",
        obj=field,
        unit=field.unit_id,
        before=before,
        after=_field_audit(field),
    )
    return field


def _count_text(n: int) -> str:
    return f"{COUNT_LIMIT}+" if n > COUNT_LIMIT else str(n)


@transaction.atomic
def custom_fields_reorder(
    *, unit: BusinessUnit, field_ids: Sequence[int], acting_user: Actor
) -> list[CustomField]:
    """Put the unit's fields in this order (fields not named keep their order, after)."""
    fields = list(
        CustomField.objects.dangerously_unscoped()
        .select_for_update()
        .filter(unit=unit)
        .order_by("position", "id")
    )
    by_id = {f.pk: f for f in fields}
    if any(i not in by_id for i in field_ids):
        raise ValidationError({"fields": [_("Only this unit's fields can be ordered here.")]})
    ordered = [by_id[i] for i in dict.fromkeys(field_ids)]
    ordered += [f for f in fields if f.pk not in set(field_ids)]
    before = [f.pk for f in fields]
    for position, f in enumerate(ordered):
        f.position = position
    CustomField.objects.bulk_update(ordered, ["position"])
    audit_record(
        actor=acting_user,
        action="custom_field.reorder",
        unit=unit,
        before={"order": before},
        after={"order": [f.pk for f in ordered]},
    )
    return ordered


def custom_field_move(*, field: CustomField, offset: int, acting_user: Actor) -> None:
    """Move one field up (-1) or down (+1) in its unit's order."""
    ids = list(
        CustomField.objects.dangerously_unscoped()
        .filter(unit_id=field.unit_id)
        .order_by("position", "id")
        .values_list("id", flat=True)
    )
    at = ids.index(field.pk)
    to = min(max(at + offset, 0), len(ids) - 1)
    if to == at:
        return
    ids.insert(to, ids.pop(at))
    custom_fields_reorder(unit=field.unit, field_ids=ids, acting_user=acting_user)


# --- Channels and campaigns ----------------------------------------------------------------


def _code(value: str, max_length: int) -> str:
    code = _name(value, field="code", max_length=max_length).lower()
    if not code.isascii() or not code.replace("-", "").replace("_", "").isalnum():
        raise ValidationError(
            {"code": [_("Use lowercase letters, digits, - and _ only, e.g. baidu-sem.")]}
        )
    return code


def _channel_audit(channel: Channel) -> dict[str, Any]:
    return {
        "code": channel.code,
        "name": channel.name,
        "kind": channel.kind,
        "is_active": channel.is_active,
    }


@transaction.atomic
def channel_create(
    *,
    unit: BusinessUnit,
    code: str,
    name: str,
    kind: str,
    is_active: bool = True,
    acting_user: Actor,
) -> Channel:
    if kind not in ChannelKind.values:
        raise ValidationError({"kind": [_("Choose a kind of channel.")]})
    channel = Channel(
        unit=unit,
        code=_code(code, 50),
        name=_name(name, max_length=100),
        kind=kind,
        is_active=is_active,
    )
    _save(channel)
    audit_record(
        actor=acting_user,
        action="channel.create",
        obj=channel,
        unit=unit,
        after=_channel_audit(channel),
    )
    return channel


@transaction.atomic
def channel_update(
    *,
    channel: Channel,
    code: str,
    name: str,
    kind: str,
    is_active: bool,
    acting_user: Actor,
) -> Channel:
    if kind not in ChannelKind.values:
        raise ValidationError({"kind": [_("Choose a kind of channel.")]})
    before = _channel_audit(channel)
    channel.code = _code(code, 50)
    channel.name = _name(name, max_length=100)
    channel.kind = kind
    channel.is_active = is_active
    _save(channel, ["code", "name", "kind", "is_active"])
    audit_record(
        actor=acting_user,
        action="channel.update",
        obj=channel,
        unit=channel.unit_id,
        before=before,
        after=_channel_audit(channel),
    )
    return channel


def clean_cost(raw: Any) -> Decimal:
    if raw in (None, ""):
        return Decimal("0.00")
    try:
        cost = Decimal(str(raw).strip().replace(",", ""))
    except InvalidOperation:
        raise ValidationError({"cost": [_("Enter the cost as a number, e.g. 12000.50.")]}) from None
    if not cost.is_finite():
        raise ValidationError({"cost": [_("Enter the cost as a number, e.g. 12000.50.")]})
    if cost < 0:
        raise ValidationError({"cost": [_("The cost cannot be negative.")]})
    if cost > COST_MAX:
        raise ValidationError({"cost": [_("The cost is too large.")]})
    if cost != cost.quantize(Decimal("0.01")):
        raise ValidationError({"cost": [_("At most two decimal places (fen).")]})
    return cost.quantize(Decimal("0.01"))


def _campaign_audit(campaign: Campaign) -> dict[str, Any]:
    return {
        "code": campaign.code,
        "name": campaign.name,
        "channel": campaign.channel_id,
        "starts_on": campaign.starts_on.isoformat() if campaign.starts_on else None,
        "ends_on": campaign.ends_on.isoformat() if campaign.ends_on else None,
        "cost": str(campaign.cost),
        "currency": campaign.currency,
    }


def _campaign_fields(
    campaign: Campaign,
    *,
    channel: Channel | None,
    code: str,
    name: str,
    starts_on: date | None,
    ends_on: date | None,
    cost: Any,
) -> None:
    _same_unit(channel, campaign.unit_id, "channel")
    if starts_on and ends_on and ends_on < starts_on:
        raise ValidationError({"ends_on": [_("The campaign cannot end before it starts.")]})
    campaign.channel = channel
    campaign.code = _code(code, 80)
    campaign.name = _name(name, max_length=200)
    campaign.starts_on = starts_on
    campaign.ends_on = ends_on
    campaign.cost = clean_cost(cost)
    # Costs are in CNY: reports add them up, and mixing currencies would make ROI wrong.
    campaign.currency = "CNY"


@transaction.atomic
def campaign_create(
    *,
    unit: BusinessUnit,
    code: str,
    name: str,
    channel: Channel | None = None,
    starts_on: date | None = None,
    ends_on: date | None = None,
    cost: Any = None,
    acting_user: Actor,
) -> Campaign:
    campaign = Campaign(unit=unit)
    _campaign_fields(
        campaign,
        channel=channel,
        code=code,
        name=name,
        starts_on=starts_on,
        ends_on=ends_on,
        cost=cost,
    )
    _save(campaign)
    audit_record(
        actor=acting_user,
        action="campaign.create",
        obj=campaign,
        unit=unit,
        after=_campaign_audit(campaign),
    )
    return campaign


@transaction.atomic
def campaign_update(
    *,
    campaign: Campaign,
    code: str,
    name: str,
    channel: Channel | None,
    starts_on: date | None,
    ends_on: date | None,
    cost: Any,
    acting_user: Actor,
) -> Campaign:
    before = _campaign_audit(campaign)
    _campaign_fields(
        campaign,
        channel=channel,
        code=code,
        name=name,
        starts_on=starts_on,
        ends_on=ends_on,
        cost=cost,
    )
    _save(campaign, ["channel", "code", "name", "starts_on", "ends_on", "cost", "currency"])
    audit_record(
        actor=acting_user,
        action="campaign.update",
        obj=campaign,
        unit=campaign.unit_id,
        before=before,
        after=_campaign_audit(campaign),
    )
    return campaign
