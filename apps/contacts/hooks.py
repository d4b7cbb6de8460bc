"""Where higher apps plug into contacts without contacts importing them.

``sales`` registers a merge handler from its ``AppConfig.ready()`` so that a merge moves
leads too, and undoing it moves them back. Handlers are called explicitly by the merge
service, inside its transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# (kept_id, dropped_id) -> whatever the handler needs to undo (JSON-serialisable)
MergeHandler = Callable[[int, int], Any]
# (kept_id, dropped_id, what the merge handler returned)
UndoHandler = Callable[[int, int, Any], None]


@dataclass(frozen=True)
class MergeHooks:
    name: str
    merge: MergeHandler
    undo: UndoHandler


_MERGE_HOOKS: dict[str, MergeHooks] = {}


def register_merge_hooks(name: str, merge: MergeHandler, undo: UndoHandler) -> None:
    _MERGE_HOOKS[name] = MergeHooks(name, merge, undo)


def merge_hooks() -> list[MergeHooks]:
    return list(_MERGE_HOOKS.values())


# Data-subject rights: higher apps add what they hold on a person to the export, and
# delete it on erasure. Both receive the contact id; export returns JSON-ready data.
SubjectExporter = Callable[[int], Any]
SubjectEraser = Callable[[int], None]
_SUBJECT_EXPORTERS: dict[str, SubjectExporter] = {}
_SUBJECT_ERASERS: dict[str, SubjectEraser] = {}


def register_subject_hooks(name: str, export: SubjectExporter, erase: SubjectEraser) -> None:
    _SUBJECT_EXPORTERS[name] = export
    _SUBJECT_ERASERS[name] = erase


def subject_exporters() -> dict[str, SubjectExporter]:
    return dict(_SUBJECT_EXPORTERS)


def subject_erasers() -> dict[str, SubjectEraser]:
    return dict(_SUBJECT_ERASERS)


# contact ids -> the subset whose PII must be kept (e.g. they have an open lead).
RetentionGuard = Callable[[list[int]], set[int]]
_RETENTION_GUARDS: dict[str, RetentionGuard] = {}


def register_retention_guard(name: str, guard: RetentionGuard) -> None:
    _RETENTION_GUARDS[name] = guard


def retention_guards() -> list[RetentionGuard]:
    return list(_RETENTION_GUARDS.values())


# The contact 360 page: higher apps add a panel (e.g. nurture's scores). ``fn(request,
# contact)`` returns (template name, context) or None to show nothing; the detail view
# renders the panels in registration order. Keep each to a fixed number of queries.
ContactPanel = Callable[[Any, Any], tuple[str, dict[str, Any]] | None]
_CONTACT_PANELS: dict[str, ContactPanel] = {}


@dataclass(frozen=True)
class RenderedPanel:
    name: str
    template: str
    context: dict[str, Any]


def register_contact_panel(name: str, fn: ContactPanel) -> None:
    _CONTACT_PANELS[name] = fn


def contact_panels(request: Any, contact: Any) -> list[RenderedPanel]:
    found = []
    for name, fn in _CONTACT_PANELS.items():
        result = fn(request, contact)
        if result is not None:
            found.append(RenderedPanel(name, result[0], result[1]))
    return found


# Imports that open leads: (unit id, contact ids of one batch, temperature, import id).
# Called inside the batch's transaction; a hook that does slow work queues it on commit.
ImportHook = Callable[[int, list[int], str, int], None]
_IMPORT_HOOKS: dict[str, ImportHook] = {}


def register_import_hook(name: str, fn: ImportHook) -> None:
    _IMPORT_HOOKS[name] = fn


def import_hooks() -> list[ImportHook]:
    return list(_IMPORT_HOOKS.values())


# Rule conditions that higher apps add to the rule and segment language (sales adds
# ``{"lead": {...}}`` and ``{"source_quality": {...}}``). ``check`` returns problems as
# "message" strings for the node's value (the checker prefixes the path); ``compile``
# returns a Q over contacts (an Exists over the app's table, values as parameters);
# ``describe`` a readable line. ``cost``: 0 a column, 1 an indexed lookup, 2 a subquery.
@dataclass(frozen=True)
class RuleCondition:
    key: str
    check: Callable[[Any, Any], list[str]]
    compile: Callable[[Any, Any], Any]
    describe: Callable[[Any, Any], str]
    cost: int = 1
    # For the segment editor: a label and ``editor()`` → {"fresh": <a new node's value>,
    # "fields": [{"key", "label", "type": "list" | "select" | "number" | "bool",
    # "choices": [[value, label], …]}]}. A "list" field edits a one-item list ("" = any).
    label: Any = ""
    editor: Callable[[], dict[str, Any]] | None = None


_RULE_CONDITIONS: dict[str, RuleCondition] = {}


def register_rule_condition(condition: RuleCondition) -> None:
    _RULE_CONDITIONS[condition.key] = condition


def rule_conditions() -> dict[str, RuleCondition]:
    return dict(_RULE_CONDITIONS)
