"""Rule tags ("模型标签"): tags that put themselves on contacts who meet a condition, and
take themselves off again when the contact stops meeting it.

A rule is JSON stored in ``Tag.rule``::

    {"all": [                                   # every child holds ("any": one of them)
        {"field": "industry", "op": "in", "value": ["生物医药", "制药"]},
        {"custom": 12, "op": "eq", "value": "ka"},           # custom field id 12
        {"activity": {"type": "download", "days": 30, "min_count": 3}},
        {"has_identity": "wechat_unionid"},
        {"tag": 7},                                          # carries tag 7
        {"not": {"field": "title", "op": "empty"}}
    ]}

``rule_check`` validates a rule against the tag's unit and names the node at fault
("all[1].op: unknown operator 'like'"). ``rule_condition`` compiles a valid rule to one
ORM condition over contacts: field names come only from an allowlist, custom fields only
by the id of a field of the unit, and every value is a query parameter.

``tag_rule_apply`` applies one rule tag set-based, in one SQL statement: an INSERT … ON
CONFLICT DO NOTHING for contacts that match now, a DELETE for rows whose contacts no longer
match, both writing TagHistory in the same statement (source "rule", actor
"rule: <tag name>"). ``tag_rules_apply_all`` runs every rule tag (the periodic task);
``tag_rules_apply_for`` re-checks just some contacts after they changed (imports,
identity resolution).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.expressions import Func
from django.db.models.fields.json import JSONField
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    LessThan,
    LessThanOrEqual,
)
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from apps.contacts.hooks import rule_conditions
from apps.contacts.models import (
    Activity,
    Campaign,
    Channel,
    ConsentChannel,
    ConsentPurpose,
    ConsentState,
    Contact,
    ContactStatus,
    ContactTag,
    ContactUnit,
    CustomField,
    CustomFieldType,
    Identity,
    IdentityKind,
    Segment,
    SegmentMember,
    Tag,
    TagHistory,
    TagKind,
)
from apps.core.models import BusinessUnit

# Standard contact fields a rule may test. Anything else is refused: a rule never names a
# column (or a lookup path) we did not choose.
RULE_FIELDS = ("name", "title", "department", "company_name", "province", "city", "industry")
FIELD_OPS = ("eq", "neq", "contains", "starts_with", "in", "not_in", "empty", "not_empty")
CUSTOM_OPS: dict[str, tuple[str, ...]] = {
    CustomFieldType.TEXT: ("eq", "neq", "contains", "empty", "not_empty"),
    CustomFieldType.NUMBER: ("eq", "neq", "gt", "gte", "lt", "lte", "empty", "not_empty"),
    CustomFieldType.DATE: ("eq", "gt", "gte", "lt", "lte", "empty", "not_empty"),
    CustomFieldType.CHOICE: ("eq", "neq", "in", "not_in", "empty", "not_empty"),
    CustomFieldType.MULTI_CHOICE: ("eq", "in", "all", "not_in", "empty", "not_empty"),
}
NO_VALUE_OPS = ("empty", "not_empty")
LIST_OPS = ("in", "not_in", "all")
ACTIVITY_KEYS = (
    "type",
    "days",
    "min_count",
    "object_type",
    "object_id",
    "channel",
    "campaign",
    "max_count",
    "properties",
)
# Activity type "*" means "any type". With nothing else narrowing it ("no activity in 30
# days"), it is answered from Contact.last_seen_at, which activities_record moves forward
# with every batch: that column counts activity in any unit of the group, and a contact
# created without activity counts as seen when created.
ANY_TYPE = "*"
MAX_PROPERTIES = 5
# Date columns of contacts and what may be asked of them.
DATE_FIELDS = ("first_seen_at", "last_seen_at")
DATE_OPS = ("before", "after", "within_days", "not_within_days")
CONSENT_STATES = ("granted", "withdrawn", "unknown")
# Bounds that keep one rule's SQL reasonable.
MAX_NODES = 60
MAX_DEPTH = 8
MAX_LIST = 500
MAX_DAYS = 3650
MAX_TEXT = 200
# Contacts per restricted application (tag_rules_apply_for): keeps the id array small.
BATCH_SIZE = 10_000


class RuleError(ValueError):
    """A rule that cannot be used. ``problems`` are "path: message" strings, first first."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class RuleContext:
    """What a rule of one unit may refer to (loaded once, then checked without queries)."""

    unit_id: int
    fields: dict[int, CustomField] = field(default_factory=dict)
    tags: dict[int, Tag] = field(default_factory=dict)
    channels: set[int] = field(default_factory=set)
    campaigns: set[int] = field(default_factory=set)
    tag_id: int | None = None  # the tag whose rule this is (None while creating it)
    # Segments a definition may refer to ({"segment": id}); None for rule tags, which
    # cannot (a segment is rebuilt from tags, so the reverse would make rebuild orders
    # circular). ``segment_id`` is the segment being edited.
    segments: dict[int, Segment] | None = None
    segment_id: int | None = None
    _group_units: set[int] | None = None

    def group_units(self) -> set[int]:
        """Units of this unit's group (itself, its parent, its siblings), loaded once."""
        if self._group_units is None:
            parent_id = (
                BusinessUnit.objects.filter(pk=self.unit_id)
                .values_list("parent_id", flat=True)
                .first()
            )
            root = parent_id or self.unit_id
            self._group_units = set(
                BusinessUnit.objects.filter(Q(pk=root) | Q(parent_id=root)).values_list(
                    "id", flat=True
                )
            )
        return self._group_units


def rule_context(*, unit_id: int, tag: Tag | None = None) -> RuleContext:
    return RuleContext(
        unit_id=unit_id,
        fields={
            f.pk: f for f in CustomField.objects.dangerously_unscoped().filter(unit_id=unit_id)
        },
        tags={t.pk: t for t in Tag.objects.dangerously_unscoped().filter(unit_id=unit_id)},
        channels=set(
            Channel.objects.dangerously_unscoped()
            .filter(unit_id=unit_id)
            .values_list("id", flat=True)
        ),
        campaigns=set(
            Campaign.objects.dangerously_unscoped()
            .filter(unit_id=unit_id)
            .values_list("id", flat=True)
        ),
        tag_id=tag.pk if tag is not None and tag.pk else None,
    )


# --- Validation ----------------------------------------------------------------------------


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text_value(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_TEXT


class _Checker:
    def __init__(self, context: RuleContext) -> None:
        self.context = context
        self.problems: list[str] = []
        self.nodes = 0
        self.refs: set[int] = set()
        self.segment_refs: set[int] = set()

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path or 'rule'}: {message}")

    def node(self, node: Any, path: str, depth: int) -> None:
        self.nodes += 1
        if self.nodes == MAX_NODES + 1:
            self.fail(path, _("a rule may have at most %(n)d conditions") % {"n": MAX_NODES})
        if depth > MAX_DEPTH:
            self.fail(path, _("conditions may be nested at most %(n)d deep") % {"n": MAX_DEPTH})
            return
        if not isinstance(node, dict) or not node:
            self.fail(path, _('expected a condition object such as {"all": [...]}'))
            return
        kinds = [k for k in ("all", "any", "not", "field", "custom", "activity") if k in node]
        kinds += [k for k in ("has_identity", "tag", "segment", "consent", "unit") if k in node]
        extensions = rule_conditions()
        kinds += [k for k in extensions if k in node]
        if len(kinds) != 1:
            known = "all, any, not, field, custom, activity, has_identity, tag"
            known += ", segment, consent, unit"
            known += "".join(f", {k}" for k in extensions)
            if kinds:
                self.fail(
                    path, _("use one of %(kinds)s per condition") % {"kinds": ", ".join(kinds)}
                )
            else:
                self.fail(
                    path,
                    _("unknown condition; use one of: %(known)s") % {"known": known},
                )
            return
        if kinds[0] in extensions:
            self.extra_keys(node, (kinds[0],), path)
            for problem in extensions[kinds[0]].check(node[kinds[0]], self.context):
                self.fail(_at(path, kinds[0]), problem)
            return
        getattr(self, f"check_{kinds[0]}")(node, path, depth)

    def extra_keys(self, node: dict[str, Any], allowed: Iterable[str], path: str) -> None:
        for key in node:
            if key not in allowed:
                self.fail(_at(path, str(key)), _("unknown key '%(key)s'") % {"key": key})

    def check_all(self, node: dict[str, Any], path: str, depth: int, kind: str = "all") -> None:
        self.extra_keys(node, [kind], path)
        children = node[kind]
        here = _at(path, kind)
        if not isinstance(children, list) or not children:
            self.fail(here, _("expected a non-empty list of conditions"))
            return
        for i, child in enumerate(children):
            self.node(child, f"{here}[{i}]", depth + 1)

    def check_any(self, node: dict[str, Any], path: str, depth: int) -> None:
        self.check_all(node, path, depth, kind="any")

    def check_not(self, node: dict[str, Any], path: str, depth: int) -> None:
        self.extra_keys(node, ["not"], path)
        self.node(node["not"], _at(path, "not"), depth + 1)

    def check_op(self, node: dict[str, Any], path: str, ops: Sequence[str]) -> str | None:
        op = node.get("op")
        if op is None:
            self.fail(
                _at(path, "op"), _("missing operator; use one of %(ops)s") % {"ops": ", ".join(ops)}
            )
            return None
        if op not in ops:
            self.fail(
                _at(path, "op"),
                _("unknown operator '%(op)s'; use one of %(ops)s")
                % {"op": op, "ops": ", ".join(ops)},
            )
            return None
        if op in NO_VALUE_OPS:
            if "value" in node:
                self.fail(_at(path, "value"), _("'%(op)s' takes no value") % {"op": op})
            return None if "value" in node else op
        if "value" not in node:
            self.fail(_at(path, "value"), _("missing value"))
            return None
        return op

    def check_text_value(self, node: dict[str, Any], path: str, op: str) -> None:
        value, here = node["value"], _at(path, "value")
        if op in LIST_OPS:
            if not isinstance(value, list) or not value or len(value) > MAX_LIST:
                self.fail(here, _("expected a list of 1 to %(n)d texts") % {"n": MAX_LIST})
            elif not all(_text_value(v) for v in value):
                self.fail(here, _("every item must be a non-empty text"))
        elif not _text_value(value):
            self.fail(
                here, _("expected a non-empty text of at most %(n)d characters") % {"n": MAX_TEXT}
            )

    def check_field(self, node: dict[str, Any], path: str, depth: int) -> None:
        self.extra_keys(node, ["field", "op", "value"], path)
        name = node["field"]
        if isinstance(name, str) and name in DATE_FIELDS:
            self.check_date_field(node, path)
            return
        if not isinstance(name, str) or name not in RULE_FIELDS:
            self.fail(
                _at(path, "field"),
                _("unknown field '%(field)s'; use one of %(fields)s")
                % {"field": name, "fields": ", ".join(RULE_FIELDS + DATE_FIELDS)},
            )
            return
        op = self.check_op(node, path, FIELD_OPS)
        if op and op not in NO_VALUE_OPS:
            self.check_text_value(node, path, op)

    def check_date_field(self, node: dict[str, Any], path: str) -> None:
        op = self.check_op(node, path, DATE_OPS)
        if not op:
            return
        value, here = node["value"], _at(path, "value")
        if op in ("before", "after"):
            if _date(value) is None:
                self.fail(here, _("expected a date like 2026-11-30"))
        elif not _is_int(value) or not 1 <= value <= MAX_DAYS:
            self.fail(here, _("expected whole days from 1 to %(n)d") % {"n": MAX_DAYS})

    def check_custom(self, node: dict[str, Any], path: str, depth: int) -> None:
        self.extra_keys(node, ["custom", "op", "value"], path)
        field_id = node["custom"]
        custom = self.context.fields.get(field_id) if _is_int(field_id) else None
        if custom is None:
            self.fail(
                _at(path, "custom"),
                _("no custom field with id %(id)s in this business unit") % {"id": field_id},
            )
            return
        op = self.check_op(node, path, CUSTOM_OPS[custom.type])
        if not op or op in NO_VALUE_OPS:
            return
        value, here = node["value"], _at(path, "value")
        values = value if op in LIST_OPS else [value]
        if op in LIST_OPS and (not isinstance(value, list) or not value or len(value) > MAX_LIST):
            self.fail(here, _("expected a list of 1 to %(n)d values") % {"n": MAX_LIST})
            return
        if custom.type in (CustomFieldType.CHOICE, CustomFieldType.MULTI_CHOICE):
            allowed = custom.option_values()
            for v in values:
                if not isinstance(v, str) or v not in allowed:
                    self.fail(
                        here,
                        _("'%(value)s' is not an option of %(field)s (options: %(options)s)")
                        % {
                            "value": v,
                            "field": custom.label,
                            "options": ", ".join(sorted(allowed)),
                        },
                    )
                    return
        elif custom.type == CustomFieldType.NUMBER:
            if _number(value) is None:
                self.fail(here, _("expected a number"))
        elif custom.type == CustomFieldType.DATE:
            if _date(value) is None:
                self.fail(here, _("expected a date like 2026-11-30"))
        elif not _text_value(value):
            self.fail(
                here, _("expected a non-empty text of at most %(n)d characters") % {"n": MAX_TEXT}
            )

    def check_activity(self, node: dict[str, Any], path: str, depth: int) -> None:
        self.extra_keys(node, ["activity"], path)
        spec, here = node["activity"], _at(path, "activity")
        if not isinstance(spec, dict):
            self.fail(here, _('expected an object such as {"type": "download", "days": 30}'))
            return
        self.extra_keys(spec, ACTIVITY_KEYS, here)
        if not isinstance(spec.get("type"), str) or not 0 < len(spec["type"]) <= 40:
            self.fail(_at(here, "type"), _("expected an activity type such as 'download'"))
        days: Any = spec.get("days")
        if not _is_int(days) or not 1 <= days <= MAX_DAYS:
            self.fail(_at(here, "days"), _("expected whole days from 1 to %(n)d") % {"n": MAX_DAYS})
        count: Any = spec.get("min_count", 1)
        if not _is_int(count) or not 1 <= count <= 10_000:
            self.fail(_at(here, "min_count"), _("expected a whole number from 1 to 10000"))
        if "max_count" in spec:
            most: Any = spec["max_count"]
            least = count if _is_int(count) else 1
            if not _is_int(most) or not least <= most <= 10_000:
                self.fail(
                    _at(here, "max_count"),
                    _("expected a whole number from %(min)d to 10000") % {"min": least},
                )
        if "properties" in spec:
            props, at = spec["properties"], _at(here, "properties")
            if not isinstance(props, dict) or not 0 < len(props) <= MAX_PROPERTIES:
                self.fail(
                    at,
                    _('expected an object of 1 to %(n)d properties, such as {"topic": "单细胞"}')
                    % {"n": MAX_PROPERTIES},
                )
            else:
                for key, value in props.items():
                    if not (isinstance(key, str) and 0 < len(key) <= 40 and key.isidentifier()):
                        self.fail(_at(at, str(key)), _("expected a property name like 'topic'"))
                    elif not _text_value(value):
                        self.fail(
                            _at(at, key),
                            _("expected a non-empty text of at most %(n)d characters")
                            % {"n": MAX_TEXT},
                        )
        for key in ("object_type", "object_id"):
            if key in spec and not (isinstance(spec[key], str) and 0 < len(spec[key]) <= 64):
                self.fail(_at(here, key), _("expected a non-empty text"))
        if "channel" in spec and not (
            _is_int(spec["channel"]) and spec["channel"] in self.context.channels
        ):
            self.fail(
                _at(here, "channel"),
                _("no channel with id %(id)s in this business unit") % {"id": spec["channel"]},
            )
        if "campaign" in spec and not (
            _is_int(spec["campaign"]) and spec["campaign"] in self.context.campaigns
        ):
            self.fail(
                _at(here, "campaign"),
                _("no campaign with id %(id)s in this business unit") % {"id": spec["campaign"]},
            )

    def check_has_identity(self, node: dict[str, Any], path: str, depth: int) -> None:
        self.extra_keys(node, ["has_identity"], path)
        if node["has_identity"] not in IdentityKind.values:
            self.fail(
                _at(path, "has_identity"),
                _("unknown identity kind '%(kind)s'; use one of %(kinds)s")
                % {"kind": node["has_identity"], "kinds": ", ".join(IdentityKind.values)},
            )

    def check_segment(self, node: dict[str, Any], path: str, depth: int) -> None:
        self.extra_keys(node, ["segment"], path)
        segment_id, here = node["segment"], _at(path, "segment")
        segments = self.context.segments
        if segments is None:
            self.fail(here, _("only segments may refer to other segments"))
        elif not _is_int(segment_id) or segment_id not in segments:
            self.fail(
                here,
                _("no active segment with id %(id)s in this business unit") % {"id": segment_id},
            )
        elif segment_id == self.context.segment_id:
            self.fail(here, _("a segment cannot refer to itself"))
        else:
            self.segment_refs.add(segment_id)

    def check_consent(self, node: dict[str, Any], path: str, depth: int) -> None:
        self.extra_keys(node, ["consent"], path)
        spec, here = node["consent"], _at(path, "consent")
        if not isinstance(spec, dict):
            self.fail(
                here, _('expected an object such as {"channel": "email", "state": "withdrawn"}')
            )
            return
        self.extra_keys(spec, ["channel", "state"], here)
        if spec.get("channel") not in ConsentChannel.values:
            self.fail(
                _at(here, "channel"),
                _("unknown consent channel '%(channel)s'; use one of %(channels)s")
                % {"channel": spec.get("channel"), "channels": ", ".join(ConsentChannel.values)},
            )
        if spec.get("state") not in CONSENT_STATES:
            self.fail(
                _at(here, "state"),
                _("unknown consent state '%(state)s'; use one of %(states)s")
                % {"state": spec.get("state"), "states": ", ".join(CONSENT_STATES)},
            )

    def check_unit(self, node: dict[str, Any], path: str, depth: int) -> None:
        self.extra_keys(node, ["unit"], path)
        unit_id = node["unit"]
        if not _is_int(unit_id) or unit_id not in self.context.group_units():
            self.fail(
                _at(path, "unit"),
                _("no business unit with id %(id)s in this group") % {"id": unit_id},
            )

    def check_tag(self, node: dict[str, Any], path: str, depth: int) -> None:
        self.extra_keys(node, ["tag"], path)
        tag_id, here = node["tag"], _at(path, "tag")
        if not _is_int(tag_id) or tag_id not in self.context.tags:
            self.fail(here, _("no tag with id %(id)s in this business unit") % {"id": tag_id})
        elif tag_id == self.context.tag_id:
            self.fail(here, _("a rule cannot refer to its own tag"))
        else:
            self.refs.add(tag_id)

    def check_segment_cycles(self) -> None:
        """A segment may refer to another segment, but never (through others) itself."""
        me, segments = self.context.segment_id, self.context.segments
        if me is None or segments is None:
            return
        graph = {s.pk: rule_segment_refs(s.definition) for s in segments.values()}
        graph[me] = self.segment_refs
        seen: set[int] = set()
        stack = list(self.segment_refs)
        while stack:
            current = stack.pop()
            if current == me:
                self.fail(
                    "rule",
                    _("the segments this definition refers to lead back to this segment (a cycle)"),
                )
                return
            if current not in seen:
                seen.add(current)
                stack.extend(graph.get(current, ()))

    def check_cycles(self) -> None:
        """A rule tag may carry another rule tag, but never (through others) itself."""
        me = self.context.tag_id
        if me is None:
            return
        graph = {
            t.pk: rule_tag_refs(t.rule) for t in self.context.tags.values() if t.kind == "rule"
        }
        graph[me] = self.refs
        seen: set[int] = set()
        stack = list(self.refs)
        while stack:
            current = stack.pop()
            if current == me:
                self.fail(
                    "rule",
                    _("the tags this rule refers to lead back to this tag (a cycle)"),
                )
                return
            if current not in seen:
                seen.add(current)
                stack.extend(graph.get(current, ()))


def rule_check(rule: Any, *, context: RuleContext) -> list[str]:
    """Problems with ``rule`` as "path: message" strings; empty when it can be used."""
    checker = _Checker(context)
    checker.node(rule, "", 0)
    if not checker.problems:
        checker.check_cycles()
        checker.check_segment_cycles()
    return checker.problems


def rule_validate(rule: Any, *, context: RuleContext) -> None:
    problems = rule_check(rule, context=context)
    if problems:
        raise RuleError(problems)


def rule_tag_refs(rule: Any) -> set[int]:
    """Ids of the tags a (stored) rule refers to."""
    found: set[int] = set()
    stack = [rule]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if _is_int(node.get("tag")):
            found.add(node["tag"])
        for key in ("all", "any"):
            if isinstance(node.get(key), list):
                stack.extend(node[key])
        if "not" in node:
            stack.append(node["not"])
    return found


def rule_segment_refs(rule: Any) -> set[int]:
    """Ids of the segments a (stored) definition refers to."""
    found: set[int] = set()
    stack = [rule]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if _is_int(node.get("segment")):
            found.add(node["segment"])
        for key in ("all", "any"):
            if isinstance(node.get(key), list):
                stack.extend(node[key])
        if "not" in node:
            stack.append(node["not"])
    return found


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _date(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        return None


# --- Compilation ---------------------------------------------------------------------------


class CustomValue(Func):  # type: ignore[misc]
    """``custom -> '<field id>'``: one custom field's stored value, as jsonb.

    Django's key transforms read an all-digit key as an array index, so the key is passed
    as a text parameter here.
    """

    output_field = JSONField()

    def __init__(self, field_id: int, *, as_text: bool = False) -> None:
        super().__init__(models.F("custom"))
        self.field_key = str(field_id)
        self.as_text = as_text
        if as_text:
            self.output_field = models.TextField()

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple[Any, ...]]:  # type: ignore[override]
        sql, params = compiler.compile(self.source_expressions[0])
        operator = "->>" if self.as_text else "->"
        return f"({sql} {operator} %s)", (*params, self.field_key)


class CustomNumber(CustomValue):
    """A custom field's value as numeric, NULL unless a JSON number is stored."""

    def __init__(self, field_id: int) -> None:
        super().__init__(field_id)
        self.output_field = models.DecimalField()

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple[Any, ...]]:  # type: ignore[override]
        sql, params = compiler.compile(self.source_expressions[0])
        key = self.field_key
        return (
            f"(CASE WHEN jsonb_typeof({sql} -> %s) = 'number' THEN ({sql} ->> %s)::numeric END)",
            (*params, key, *params, key),
        )


class IdIn(Func):  # type: ignore[misc]
    """``<column> = ANY(%s::bigint[])``: one array parameter however many ids (an ``IN``
    list of 10 k ids would be 10 k parameters, per subquery that repeats it)."""

    output_field = models.BooleanField()

    def __init__(self, column: str, ids: Sequence[int]) -> None:
        super().__init__(models.F(column))
        self.ids = list(ids)

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple[Any, ...]]:  # type: ignore[override]
        sql, params = compiler.compile(self.source_expressions[0])
        return f"{sql} = ANY(%s::bigint[])", (*params, self.ids)


_COMPARE = {
    "eq": Exact,
    "gt": GreaterThan,
    "gte": GreaterThanOrEqual,
    "lt": LessThan,
    "lte": LessThanOrEqual,
}


# Rough cost of testing one contact against a condition: a column, an indexed lookup
# (tags, identities, consent, units, segments), a subquery over activities.
_COST_RANK = {"field": 0, "custom": 0, "activity": 2}


def _cost_rank(node: dict[str, Any]) -> int:
    if "all" in node or "any" in node:
        return max(_cost_rank(child) for child in node.get("all") or node["any"])
    if "not" in node:
        return _cost_rank(node["not"])
    for key, extension in rule_conditions().items():
        if key in node:
            return extension.cost
    return next((rank for kind, rank in _COST_RANK.items() if kind in node), 1)


class _Compiler:
    def __init__(
        self, context: RuleContext, now: dt.datetime, contact_ids: Sequence[int] | None = None
    ) -> None:
        self.context = context
        self.now = now
        # When only some contacts are re-checked, activity subqueries read just theirs
        # (through the activity_timeline index) instead of aggregating the whole window.
        self.contact_ids = None if contact_ids is None else list(contact_ids)

    def node(self, node: dict[str, Any]) -> Q:
        if "all" in node or "any" in node:
            # Cheap tests first: PostgreSQL evaluates an OR's branches in the order written,
            # so a column test that already decides a row spares it a per-row subquery.
            ordered = sorted(node.get("all") or node["any"], key=_cost_rank)
            children = [self.node(child) for child in ordered]
            combined = children[0]
            for child in children[1:]:
                combined = (combined & child) if "all" in node else (combined | child)
            return combined
        if "not" in node:
            return ~self.node(node["not"])
        if "field" in node:
            return self.field(node)
        if "custom" in node:
            return self.custom(node)
        if "activity" in node:
            return self.activity(node["activity"])
        if "segment" in node:
            return Q(
                Exists(
                    SegmentMember.objects.dangerously_unscoped().filter(
                        contact_id=OuterRef("pk"), segment_id=node["segment"]
                    )
                )
            )
        if "consent" in node:
            return self.consent(node["consent"])
        if "unit" in node:
            return Q(
                Exists(
                    ContactUnit.objects.dangerously_unscoped().filter(
                        contact_id=OuterRef("pk"), unit_id=node["unit"]
                    )
                )
            )
        for key, extension in rule_conditions().items():
            if key in node:
                return Q(extension.compile(node[key], self.context))
        if "has_identity" in node:
            return Q(
                Exists(
                    Identity.objects.dangerously_unscoped().filter(
                        contact_id=OuterRef("pk"), kind=node["has_identity"]
                    )
                )
            )
        return Q(
            Exists(
                ContactTag.objects.dangerously_unscoped().filter(
                    contact_id=OuterRef("pk"), tag_id=node["tag"]
                )
            )
        )

    def field(self, node: dict[str, Any]) -> Q:
        name, op = node["field"], node["op"]
        value: Any = node.get("value")
        if name in DATE_FIELDS:
            return self.date_field(name, op, value)
        if name not in RULE_FIELDS:  # validated already; a second guard at the SQL edge
            raise RuleError([f"field: unknown field {name!r}"])
        if op == "eq":
            return Q(**{name: value})
        if op == "neq":
            return ~Q(**{name: value})
        if op == "contains":
            return Q(**{f"{name}__icontains": value})
        if op == "starts_with":
            return Q(**{f"{name}__istartswith": value})
        if op == "in":
            return Q(**{f"{name}__in": list(value)})
        if op == "not_in":
            return ~Q(**{f"{name}__in": list(value)})
        if op == "empty":
            return Q(**{name: ""})
        return ~Q(**{name: ""})

    def custom(self, node: dict[str, Any]) -> Q:
        custom = self.context.fields[node["custom"]]
        key, op = custom.storage_key, node["op"]
        value: Any = node.get("value")
        if op == "empty":
            return ~Q(custom__has_key=key)
        if op == "not_empty":
            return Q(custom__has_key=key)
        if custom.type in (CustomFieldType.CHOICE, CustomFieldType.MULTI_CHOICE):
            # custom @> {"12": "ka"} (or {"12": ["ka"]}): answered by the GIN index.
            def has(v: str) -> Q:
                stored = [v] if custom.type == CustomFieldType.MULTI_CHOICE else v
                return Q(custom__contains={key: stored})

            values = list(value) if op in LIST_OPS else [value]
            if op == "all":
                return Q(custom__contains={key: sorted(values)})
            combined = has(values[0])
            for v in values[1:]:
                combined |= has(v)
            return ~combined if op in ("neq", "not_in") else combined
        if custom.type == CustomFieldType.NUMBER:
            number = _number(value)
            compared: Any = _COMPARE["eq" if op == "neq" else op](CustomNumber(custom.pk), number)
            return ~Q(compared) if op == "neq" else Q(compared)
        if custom.type == CustomFieldType.DATE:
            # ISO dates compare correctly as text.
            return Q(_COMPARE[op](CustomValue(custom.pk, as_text=True), _date(value)))
        if op == "contains":
            return Q(IContains(CustomValue(custom.pk, as_text=True), value))
        equal = Q(custom__contains={key: value})
        return ~equal if op == "neq" else equal

    def date_field(self, name: str, op: str, value: Any) -> Q:
        if name not in DATE_FIELDS:  # a second guard at the SQL edge
            raise RuleError([f"field: unknown field {name!r}"])
        if op in ("before", "after"):
            # Whole days in the server's zone: "before 2026-11-01" is before its midnight.
            day = dt.date.fromisoformat(value)
            start = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
            if op == "before":
                return Q(**{f"{name}__lt": start})
            return Q(**{f"{name}__gte": start + dt.timedelta(days=1)})
        since = self.now - dt.timedelta(days=value)
        if op == "within_days":
            return Q(**{f"{name}__gte": since})
        return Q(**{f"{name}__lt": since})

    def consent(self, spec: dict[str, Any]) -> Q:
        states = ConsentState.objects.filter(
            contact_id=OuterRef("pk"),
            channel=spec["channel"],
            purpose=ConsentPurpose.MARKETING,
        )
        if spec["state"] == "unknown":
            return ~Q(Exists(states))
        return Q(Exists(states.filter(granted=spec["state"] == "granted")))

    def activity(self, spec: dict[str, Any]) -> Q:
        narrowing = {"object_type", "object_id", "channel", "campaign", "properties"}
        if (
            spec["type"] == ANY_TYPE
            and not narrowing & spec.keys()
            and spec.get("min_count", 1) <= 1
            and "max_count" not in spec
        ):
            return Q(last_seen_at__gte=self.now - dt.timedelta(days=spec["days"]))
        acts = Activity.objects.dangerously_unscoped().filter(
            unit_id=self.context.unit_id,
            occurred_at__gte=self.now - dt.timedelta(days=spec["days"]),
        )
        if self.contact_ids is not None:
            acts = acts.filter(IdIn("contact_id", self.contact_ids))
        if spec["type"] != ANY_TYPE:
            acts = acts.filter(type=spec["type"])
        if "properties" in spec:
            # properties @> {"topic": "单细胞"}: text values only, compared whole.
            acts = acts.filter(properties__contains=dict(spec["properties"]))
        for key, column in (
            ("object_type", "object_type"),
            ("object_id", "object_id"),
            ("channel", "channel_id"),
            ("campaign", "campaign_id"),
        ):
            if key in spec:
                acts = acts.filter(**{column: spec[key]})
        min_count = spec.get("min_count", 1)
        max_count = spec.get("max_count")
        if min_count <= 1 and max_count is None:
            return Q(Exists(acts.filter(contact_id=OuterRef("pk"))))
        counted = (
            acts.filter(contact_id__isnull=False)
            .values("contact_id")
            .annotate(n=Count("id"))
            .filter(n__gte=min_count)
        )
        if max_count is not None:
            counted = counted.filter(n__lte=max_count)
        return Q(pk__in=counted.values("contact_id"))


def rule_condition(
    rule: Any,
    *,
    context: RuleContext,
    now: dt.datetime | None = None,
    contact_ids: Sequence[int] | None = None,
) -> Q:
    """The condition a contact meets when ``rule`` holds for them (validates first).

    With ``contact_ids``, the result is only right for those contacts (the caller
    restricts to them): subqueries over activities read theirs alone."""
    rule_validate(rule, context=context)
    return _Compiler(context, now or timezone.now(), contact_ids).node(rule)


def rule_matches(
    rule: Any,
    *,
    context: RuleContext,
    now: dt.datetime | None = None,
    contact_ids: Sequence[int] | None = None,
) -> models.QuerySet[Contact]:
    """Active contacts known to the unit that meet ``rule`` (among ``contact_ids``)."""
    unit_id = context.unit_id
    known = ContactUnit.objects.dangerously_unscoped().filter(
        contact_id=OuterRef("pk"), unit_id=unit_id
    )
    contacts = Contact.objects.dangerously_unscoped().filter(status=ContactStatus.ACTIVE)
    if contact_ids is not None:
        contacts = contacts.filter(IdIn("id", contact_ids))
    return contacts.filter(Exists(known)).filter(
        rule_condition(rule, context=context, now=now, contact_ids=contact_ids)
    )


# --- Application ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyResult:
    added: int = 0
    removed: int = 0

    def __add__(self, other: ApplyResult) -> ApplyResult:
        return ApplyResult(self.added + other.added, self.removed + other.removed)


def rule_actor_label(tag: Tag) -> str:
    return f"rule: {tag.name}"[:150]


def _lock_tag(tag_id: int) -> None:
    # One application of a tag at a time: the periodic run and a re-check after an import
    # would otherwise both compute "who matches" and write history twice.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"tag-rule|{tag_id}"]
        )


@transaction.atomic
def tag_rule_apply(
    *,
    tag: Tag,
    contact_ids: Sequence[int] | None = None,
    context: RuleContext | None = None,
) -> ApplyResult:
    """Bring ``tag``'s rows in line with its rule (for ``contact_ids`` only, when given).

    One statement: the contacts that match are computed once, the new ones tagged, the
    ones that stopped matching untagged, and both changes written to TagHistory.
    """
    if tag.kind != TagKind.RULE or tag.rule is None:
        raise RuleError([_("rule: “%(tag)s” is not a rule tag") % {"tag": tag.name}])
    context = context or rule_context(unit_id=tag.unit_id, tag=tag)
    context.tag_id = tag.pk
    _lock_tag(tag.pk)
    restrict_sql, restrict_params = "", []
    ids: list[int] | None = None
    if contact_ids is not None:
        ids = sorted(set(contact_ids))
        if not ids:
            return ApplyResult()
        restrict_sql, restrict_params = "AND ct.contact_id = ANY(%s)", [ids]
    matches = rule_matches(tag.rule, context=context, contact_ids=ids)
    select_sql, select_params = matches.values("pk").query.sql_with_params()
    table, history = ContactTag._meta.db_table, TagHistory._meta.db_table
    label = rule_actor_label(tag)
    sql = f"""
        WITH matching (id) AS MATERIALIZED ({select_sql}),
        added AS (
            INSERT INTO {table} (contact_id, tag_id, source, added_by, added_at)
            SELECT m.id, %s, 'rule', %s, now() FROM matching m
            ON CONFLICT (contact_id, tag_id) DO NOTHING
            RETURNING contact_id
        ),
        removed AS (
            DELETE FROM {table} ct
            WHERE ct.tag_id = %s {restrict_sql}
              AND NOT EXISTS (SELECT 1 FROM matching m WHERE m.id = ct.contact_id)
            RETURNING ct.contact_id
        ),
        logged AS (
            INSERT INTO {history} (contact_id, tag_id, action, source, actor_label, at)
            SELECT contact_id, %s, 'added', 'rule', %s, now() FROM added
            UNION ALL
            SELECT contact_id, %s, 'removed', 'rule', %s, now() FROM removed
        )
        SELECT (SELECT count(*) FROM added), (SELECT count(*) FROM removed)
    """  # noqa: S608 - table names from model metadata; the rule's SQL is compiled by the ORM
    params = [
        *select_params,
        tag.pk,
        label,
        tag.pk,
        *restrict_params,
        tag.pk,
        label,
        tag.pk,
        label,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        added, removed = cursor.fetchone()
    if contact_ids is None:
        tag.rule_applied_at = timezone.now()
        Tag.objects.dangerously_unscoped().filter(pk=tag.pk).update(
            rule_applied_at=tag.rule_applied_at
        )
    return ApplyResult(int(added), int(removed))


def rule_tags_in_order(tags: Iterable[Tag]) -> list[Tag]:
    """Rule tags ordered so that a tag another rule refers to is applied before it."""
    by_id = {t.pk: t for t in tags}
    ordered: list[Tag] = []
    done: set[int] = set()
    visiting: set[int] = set()

    def visit(tag: Tag) -> None:
        if tag.pk in done or tag.pk in visiting:  # a cycle cannot be saved; be safe anyway
            return
        visiting.add(tag.pk)
        for ref in sorted(rule_tag_refs(tag.rule)):
            if ref in by_id:
                visit(by_id[ref])
        visiting.discard(tag.pk)
        done.add(tag.pk)
        ordered.append(tag)

    for tag in sorted(by_id.values(), key=lambda t: t.pk):
        visit(tag)
    return ordered


def _rule_tags(unit_ids: Iterable[int] | None = None) -> dict[int, list[Tag]]:
    qs = Tag.objects.dangerously_unscoped().filter(kind=TagKind.RULE, rule__isnull=False)
    if unit_ids is not None:
        qs = qs.filter(unit_id__in=list(unit_ids))
    per_unit: dict[int, list[Tag]] = {}
    for tag in qs.order_by("unit_id", "id"):
        per_unit.setdefault(tag.unit_id, []).append(tag)
    return per_unit


def _apply_unit(tags: list[Tag], contact_ids: Sequence[int] | None) -> ApplyResult:
    total = ApplyResult()
    context = rule_context(unit_id=tags[0].unit_id)
    for tag in rule_tags_in_order(tags):
        try:
            total += tag_rule_apply(tag=tag, contact_ids=contact_ids, context=context)
        except RuleError:
            # A rule that no longer validates (its custom field or channel was removed)
            # is skipped, not half-applied; the tags page shows the problem.
            continue
    return total


def tag_rules_apply_all(*, unit_ids: Iterable[int] | None = None) -> ApplyResult:
    """Apply every rule tag (of ``unit_ids``), each in its own transaction."""
    total = ApplyResult()
    for tags in _rule_tags(unit_ids).values():
        total += _apply_unit(tags, None)
    return total


def tag_rules_apply_for(*, contact_ids: Iterable[int]) -> ApplyResult:
    """Re-check the rule tags of the units that know these contacts, for them only.

    Call it after contacts changed in ways a rule can see (an import batch, a merge, an
    attribute or custom-field edit). Set-based: one statement per rule tag per
    BATCH_SIZE contacts, never one per contact.
    """
    ids = sorted(set(contact_ids))
    total = ApplyResult()
    for start in range(0, len(ids), BATCH_SIZE):
        batch = ids[start : start + BATCH_SIZE]
        units = set(
            ContactUnit.objects.dangerously_unscoped()
            .filter(contact_id__in=batch)
            .values_list("unit_id", flat=True)
            .distinct()
        )
        if not units:
            continue
        for tags in _rule_tags(units).values():
            total += _apply_unit(tags, batch)
    return total


# --- Reading a rule back to people ---------------------------------------------------------


@dataclass
class RuleLine:
    text: str
    children: list[RuleLine] = field(default_factory=list)


def _op_text(op: str) -> str:
    return {
        "eq": _("is"),
        "neq": _("is not"),
        "contains": _("contains"),
        "starts_with": _("starts with"),
        "in": _("is one of"),
        "not_in": _("is none of"),
        "all": _("has all of"),
        "gt": _("is more than"),
        "gte": _("is at least"),
        "lt": _("is less than"),
        "lte": _("is at most"),
        "empty": _("is empty"),
        "not_empty": _("is not empty"),
        "before": _("is before"),
        "after": _("is after"),
    }.get(op, op)


def _field_label(name: str) -> str:
    return str(capfirst(getattr(Contact._meta.get_field(name), "verbose_name", name)))


def rule_describe(rule: Any, *, context: RuleContext) -> RuleLine:
    """A readable tree of a (valid) rule, for the editor's preview and the tags list."""
    node = rule
    if "all" in node or "any" in node:
        kind = "all" if "all" in node else "any"
        head = _("All of these") if kind == "all" else _("Any of these")
        return RuleLine(head, [rule_describe(c, context=context) for c in node[kind]])
    if "not" in node:
        return RuleLine(_("Not"), [rule_describe(node["not"], context=context)])
    if "field" in node or "custom" in node:
        if "field" in node:
            label = _field_label(node["field"])
            options: dict[str, str] = {}
        else:
            custom = context.fields[node["custom"]]
            label = custom.label
            options = {str(o.get("value")): str(o.get("label")) for o in custom.options}
        op = node["op"]
        text = f"{label} {_op_text(op)}"
        if op in ("within_days", "not_within_days"):
            template = (
                _("%(field)s within the last %(n)d days")
                if op == "within_days"
                else _("%(field)s not within the last %(n)d days")
            )
            return RuleLine(template % {"field": label, "n": node["value"]})
        if op not in NO_VALUE_OPS:
            values = node["value"] if isinstance(node["value"], list) else [node["value"]]
            text += " " + "、".join(options.get(str(v), str(v)) for v in values)
        return RuleLine(text)
    if "activity" in node:
        spec = node["activity"]
        text = _("did “%(type)s” at least %(n)d times in the last %(days)d days") % {
            "type": _("anything") if spec["type"] == ANY_TYPE else spec["type"],
            "n": spec.get("min_count", 1),
            "days": spec["days"],
        }
        if "max_count" in spec:
            text += " " + _("(at most %(n)d)") % {"n": spec["max_count"]}
        extras = [f"{k}={spec[k]}" for k in ACTIVITY_KEYS[3:7] if k in spec]
        extras += [f"{k}={v}" for k, v in (spec.get("properties") or {}).items()]
        if extras:
            text += f" ({', '.join(extras)})"
        return RuleLine(text)
    if "has_identity" in node:
        return RuleLine(_("has a %(kind)s") % {"kind": IdentityKind(node["has_identity"]).label})
    if "segment" in node:
        segment = (context.segments or {}).get(node["segment"])
        name = segment.name if segment else node["segment"]
        return RuleLine(_("is in segment “%(segment)s”") % {"segment": name})
    if "consent" in node:
        spec = node["consent"]
        return RuleLine(
            _("%(channel)s consent is %(state)s")
            % {
                "channel": ConsentChannel(spec["channel"]).label,
                "state": {
                    "granted": _("granted"),
                    "withdrawn": _("withdrawn"),
                    "unknown": _("unknown"),
                }[spec["state"]],
            }
        )
    if "unit" in node:
        return RuleLine(_("is known to business unit %(id)s") % {"id": node["unit"]})
    for key, extension in rule_conditions().items():
        if key in node:
            return RuleLine(extension.describe(node[key], context))
    tag = context.tags.get(node["tag"])
    return RuleLine(_("carries tag “%(tag)s”") % {"tag": tag.name if tag else node["tag"]})
