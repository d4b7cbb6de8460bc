"""Where each column of a file goes: a contact field, an identifier, a custom field, or
nowhere.

A mapping, as stored on ``ContactImport.mapping`` and remembered per unit in
``ImportMapping``::

    {"columns": {"姓名": "name", "手机": "phone", "客户类型": "custom:customer_type",
                 "备注": "ignore"},
     "required": ["公司"],           # columns a row must fill, besides an identifier
     "wechat_app_id": "wx1234…",     # the official account, when a column holds openids
     "header": ["姓名", "手机", …]}  # stored: the file's column order

Targets are a standard field (``name``, ``title``, ``department``, ``company_name``,
``province``, ``city``, ``industry``), an identity kind (``phone``, ``email``,
``wechat_openid``, ``wechat_unionid``, ``wecom``, ``douyin``, ``crm``), ``custom:<key>``
for one of the unit's custom fields, or ``ignore``. Columns the mapping does not name are
ignored. ``plan_mapping`` checks a mapping against the file's header and the unit's
fields and returns a ``Plan`` the row checks run on; every mistake is a ``MappingError``
naming the column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.text import capfirst
from django.utils.translation import gettext as _

from apps.contacts.models import STANDARD_FIELDS, Contact, CustomField, IdentityKind

IGNORE = "ignore"
CUSTOM_PREFIX = "custom:"
# Anonymous visitor ids come from the website tracker, never from a file.
IDENTITY_KINDS = tuple(k for k in IdentityKind.values if k != IdentityKind.ANONYMOUS)
APP_ID_MAX = 64  # Identity.scope

# Header spellings we recognise, to pre-fill a mapping nobody has made yet.
_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "名字", "联系人", "联系人姓名", "客户姓名", "name", "full name", "contact"),
    "title": ("职位", "职务", "头衔", "title", "job title", "position"),
    "department": ("部门", "department", "dept"),
    "company_name": ("公司", "公司名称", "单位", "企业", "企业名称", "company", "company name"),
    "province": ("省份", "省", "province", "state"),
    "city": ("城市", "市", "city"),
    "industry": ("行业", "所属行业", "industry"),
    "phone": ("手机", "手机号", "手机号码", "电话", "联系电话", "mobile", "phone", "tel"),
    "email": ("邮箱", "电子邮箱", "邮件", "email", "e-mail", "mail"),
    "wechat_openid": ("openid",),
    "wechat_unionid": ("unionid",),
    "wecom": ("企业微信", "企微id", "external_userid", "wecom"),
    "douyin": ("抖音", "抖音号", "douyin"),
    "crm": ("crm", "crm id", "crm编号", "客户编号"),
}


class MappingError(ValueError):
    """The mapping cannot be used; ``str()`` says which column and why."""


@dataclass(frozen=True)
class Column:
    index: int
    header: str
    target: str
    required: bool = False
    custom_field: CustomField | None = None

    @property
    def is_identity(self) -> bool:
        return self.target in IDENTITY_KINDS

    @property
    def is_standard(self) -> bool:
        return self.target in STANDARD_FIELDS

    @property
    def max_length(self) -> int | None:
        if self.is_standard:
            return Contact._meta.get_field(self.target).max_length  # type: ignore[union-attr]
        return None


@dataclass(frozen=True)
class Plan:
    columns: list[Column]  # mapped columns only, in file order
    required: list[Column]  # required columns that are not mapped (must still be filled)
    wechat_app_id: str = ""
    mapping: dict[str, Any] = field(default_factory=dict)  # the canonical form

    @property
    def identity_columns(self) -> list[Column]:
        return [c for c in self.columns if c.is_identity]


def target_label(target: str, custom_fields: Sequence[CustomField] = ()) -> str:
    if target in STANDARD_FIELDS:
        return capfirst(str(Contact._meta.get_field(target).verbose_name))  # type: ignore[union-attr]
    if target in IDENTITY_KINDS:
        return capfirst(str(IdentityKind(target).label))
    if target.startswith(CUSTOM_PREFIX):
        key = target[len(CUSTOM_PREFIX) :]
        for f in custom_fields:
            if f.key == key:
                return f.label
        return key
    return _("Ignore")


def target_choices(custom_fields: Sequence[CustomField]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Grouped choices for a column's select box."""
    groups = [
        (_("Identifier"), [(k, target_label(k)) for k in IDENTITY_KINDS]),
        (_("Contact field"), [(f, target_label(f)) for f in STANDARD_FIELDS]),
    ]
    if custom_fields:
        groups.append(
            (_("Custom field"), [(f"{CUSTOM_PREFIX}{f.key}", f.label) for f in custom_fields])
        )
    return groups


def suggest_mapping(header: Sequence[str], custom_fields: Sequence[CustomField] = ()) -> dict:
    """A first guess from the header's wording, for a file nobody has mapped yet."""
    lookup = {alias: target for target, aliases in _ALIASES.items() for alias in aliases}
    for f in custom_fields:
        lookup.setdefault(f.label.strip().lower(), f"{CUSTOM_PREFIX}{f.key}")
        lookup.setdefault(f.key.lower(), f"{CUSTOM_PREFIX}{f.key}")
    columns: dict[str, str] = {}
    taken: set[str] = set()
    for name in header:
        target = lookup.get(name.strip().lower(), IGNORE)
        if target != IGNORE and target not in IDENTITY_KINDS and target in taken:
            target = IGNORE  # a field takes one column; identifiers may take several
        taken.add(target)
        columns[name] = target
    return {"columns": columns, "required": [], "wechat_app_id": ""}


def normalise(raw: Any) -> dict[str, Any]:
    """Accept ``{"columns": {...}, ...}`` or a bare ``{header: target}`` (handy in the API)."""
    if not isinstance(raw, dict):
        raise MappingError(_("The mapping must be an object of column name → target."))
    if "columns" in raw and isinstance(raw["columns"], dict):
        columns = raw["columns"]
        required = raw.get("required") or []
        app_id = raw.get("wechat_app_id") or ""
    else:
        columns, required, app_id = raw, [], ""
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise MappingError(_("“required” must be a list of column names."))
    if not isinstance(app_id, str):
        raise MappingError(_("The WeChat app id must be text."))
    return {
        "columns": {str(k): str(v or IGNORE).strip() for k, v in columns.items()},
        "required": list(dict.fromkeys(required)),
        "wechat_app_id": app_id.strip(),
    }


def plan_mapping(header: Sequence[str], raw: Any, custom_fields: Sequence[CustomField]) -> Plan:
    """Check ``raw`` against the file's ``header`` and the unit's ``custom_fields``."""
    mapping = normalise(raw)
    positions = {name: i for i, name in enumerate(header)}
    available = "、".join(header)
    for name in [*mapping["columns"], *mapping["required"]]:
        if name not in positions:
            raise MappingError(
                _("Column “%(column)s” is not in the file; its columns are: %(columns)s.")
                % {"column": name, "columns": available}
            )
    fields_by_key = {f.key: f for f in custom_fields if f.is_active}
    required = set(mapping["required"])
    columns: list[Column] = []
    used: dict[str, str] = {}
    for name in header:
        target = mapping["columns"].get(name, IGNORE) or IGNORE
        if target == IGNORE:
            continue
        custom = None
        if target.startswith(CUSTOM_PREFIX):
            custom = fields_by_key.get(target[len(CUSTOM_PREFIX) :])
            if custom is None:
                raise MappingError(
                    _(
                        "Column “%(column)s” is mapped to custom field “%(key)s”, which this "
                        "business unit does not have."
                    )
                    % {"column": name, "key": target[len(CUSTOM_PREFIX) :]}
                )
        elif target not in STANDARD_FIELDS and target not in IDENTITY_KINDS:
            raise MappingError(
                _("Column “%(column)s”: “%(target)s” is not a field a column can be imported into.")
                % {"column": name, "target": target}
            )
        if target in used and target not in IDENTITY_KINDS:
            raise MappingError(
                _("Columns “%(first)s” and “%(second)s” both go to %(target)s; map only one.")
                % {
                    "first": used[target],
                    "second": name,
                    "target": target_label(target, custom_fields),
                }
            )
        used.setdefault(target, name)
        columns.append(Column(positions[name], name, target, name in required, custom))
    if not any(c.is_identity for c in columns):
        raise MappingError(
            _(
                "Map at least one column to an identifier (mobile phone, email, WeChat, WeCom, "
                "Douyin or CRM id): without one no row can become a contact."
            )
        )
    app_id = mapping["wechat_app_id"]
    if any(c.target == IdentityKind.WECHAT_OPENID for c in columns):
        if not app_id:
            raise MappingError(
                _(
                    "A column holds WeChat openids: give the official account's app id, since an "
                    "openid means nothing without it."
                )
            )
        if len(app_id) > APP_ID_MAX or any(ch.isspace() for ch in app_id):
            raise MappingError(_("The WeChat app id is not valid."))
    else:
        app_id = ""
    mapped = {c.header for c in columns}
    unmapped_required = [
        Column(positions[name], name, IGNORE, True)
        for name in header
        if name in required and name not in mapped
    ]
    canonical = {
        # The file's column order: JSON objects stored in PostgreSQL do not keep it.
        "header": list(header),
        "columns": {name: mapping["columns"].get(name, IGNORE) or IGNORE for name in header},
        "required": [name for name in header if name in required],
        "wechat_app_id": app_id,
    }
    return Plan(columns, unmapped_required, app_id, canonical)
