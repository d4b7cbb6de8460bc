"""What sales adds to the rule and segment language (registered from ``apps.py``):

- ``{"lead": {"stage": ["mql", "sal"], "temperature": ["hot"], "open": true}}``: the
  contact has a lead in the rule's unit in one of those stages / temperatures (each key
  optional; ``open`` defaults to true).
- ``{"source_quality": {"op": "gte", "value": 60}}``: the contact's source channel's lead
  quality (0–100, ``services/channel_quality.py``) compares so; fit rules of scoring
  models use it to score a lead by where it came from.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l

from apps.contacts.hooks import RuleCondition, register_rule_condition
from apps.sales.models import Lead, LeadTemperature, Stage

LEAD_KEYS = ("stage", "temperature", "open")
QUALITY_OPS = {"gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}


def _check_lead(value: Any, _context: Any) -> list[str]:
    if not isinstance(value, dict):
        return [_('expected {"stage": [...], "temperature": [...], "open": true}')]
    problems = [
        _("unknown key '%(key)s'; use %(keys)s") % {"key": k, "keys": ", ".join(LEAD_KEYS)}
        for k in value
        if k not in LEAD_KEYS
    ]
    for key, allowed in (("stage", Stage.values), ("temperature", LeadTemperature.values)):
        if key not in value:
            continue
        items = value[key]
        if not isinstance(items, list) or not items:
            problems.append(_("%(key)s: expected a non-empty list") % {"key": key})
            continue
        for item in items:
            if item not in allowed:
                problems.append(
                    _("%(key)s: unknown value '%(value)s'; use %(allowed)s")
                    % {"key": key, "value": item, "allowed": ", ".join(allowed)}
                )
    if "open" in value and not isinstance(value["open"], bool):
        problems.append(_("open: expected true or false"))
    return problems


def _compile_lead(value: dict[str, Any], context: Any) -> Any:
    leads = Lead.objects.dangerously_unscoped().filter(
        contact_id=OuterRef("pk"), unit_id=context.unit_id
    )
    if value.get("open", True):
        leads = leads.filter(is_open=True)
    if value.get("stage"):
        leads = leads.filter(stage__in=value["stage"])
    if value.get("temperature"):
        leads = leads.filter(temperature__in=value["temperature"])
    return Exists(leads)


def _describe_lead(value: dict[str, Any], _context: Any) -> str:
    parts = []
    if value.get("stage"):
        parts.append("、".join(str(Stage(s).label) for s in value["stage"]))
    if value.get("temperature"):
        parts.append("、".join(str(LeadTemperature(t).label) for t in value["temperature"]))
    what = " · ".join(parts) or _("any stage")
    if value.get("open", True):
        return _("has an open lead (%(what)s)") % {"what": what}
    return _("has or had a lead (%(what)s)") % {"what": what}


def _check_quality(value: Any, _context: Any) -> list[str]:
    if not isinstance(value, dict) or set(value) != {"op", "value"}:
        return [_('expected {"op": "gte", "value": 60}')]
    problems = []
    if value["op"] not in QUALITY_OPS:
        problems.append(_("op: use one of %(ops)s") % {"ops": ", ".join(QUALITY_OPS)})
    number = value["value"]
    if isinstance(number, bool) or not isinstance(number, int | float) or not 0 <= number <= 100:
        problems.append(_("value: expected a number from 0 to 100"))
    return problems


def _compile_quality(value: dict[str, Any], _context: Any) -> Any:
    lookup = f"source_channel__quality__{QUALITY_OPS[value['op']]}"
    return Q(**{lookup: Decimal(str(value["value"]))})


def _describe_quality(value: dict[str, Any], _context: Any) -> str:
    signs = {"gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}
    return _("source channel quality %(op)s %(value)s") % {
        "op": signs[value["op"]],
        "value": value["value"],
    }


def _lead_editor() -> dict[str, Any]:
    return {
        "fresh": {"stage": [Stage.MQL], "open": True},
        "fields": [
            {
                "key": "stage",
                "label": str(_("stage")),
                "type": "list",
                "choices": [[v, str(label)] for v, label in Stage.choices],
            },
            {
                "key": "temperature",
                "label": str(_("temperature")),
                "type": "list",
                "choices": [[v, str(label)] for v, label in LeadTemperature.choices],
            },
            {"key": "open", "label": str(_("open")), "type": "bool"},
        ],
    }


def _quality_editor() -> dict[str, Any]:
    return {
        "fresh": {"op": "gte", "value": 60},
        "fields": [
            {
                "key": "op",
                "label": "",
                "type": "select",
                "choices": [["gte", "≥"], ["gt", ">"], ["lte", "≤"], ["lt", "<"]],
            },
            {"key": "value", "label": "", "type": "number"},
        ],
    }


def register() -> None:
    register_rule_condition(
        RuleCondition(
            "lead",
            _check_lead,
            _compile_lead,
            _describe_lead,
            1,
            label=_l("lead in this unit"),
            editor=_lead_editor,
        )
    )
    register_rule_condition(
        RuleCondition(
            "source_quality",
            _check_quality,
            _compile_quality,
            _describe_quality,
            0,
            label=_l("source channel quality"),
            editor=_quality_editor,
        )
    )
