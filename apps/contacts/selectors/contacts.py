"""Reads for the contact list, the contact 360 page and the contacts home cards.

Everything starts from ``Contact.objects.visible_to(user, …)``: a contact is visible to
whoever sees one of the units that know the person (``ContactUnit``). What hangs off a
contact and belongs to a unit (tags, activities, custom fields, consent events) is shown
only for the user's own units.

Phone numbers and email addresses are shown in full to people who hold ``contacts.edit``
in a unit that knows the contact (they call and write to them); everyone else (viewers)
sees them masked, e.g. ``138****8000`` and ``z***@huawei.com``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.contacts.identity_keys import InvalidKey, normalize_email, normalize_phone
from apps.contacts.models import (
    Channel,
    ConsentEvent,
    Contact,
    ContactMerge,
    ContactStatus,
    ContactTag,
    ContactUnit,
    CustomField,
    CustomFieldType,
    Identity,
    IdentityKind,
    Tag,
)
from apps.contacts.services.fields import FieldValueError, clean_value
from apps.core.models import BusinessUnit, User
from apps.core.scoping import visible_unit_ids

VIEW = "contacts.view"
EDIT = "contacts.edit"
MERGE = "contacts.merge"
PAGE_SIZE = 50
# Home cards and confirmations count at most this many rows, then say "10 000+".
COUNT_LIMIT = 10_000
# Identity kinds a row of the list shows, and that make a contact "reachable".
SHOWN_KINDS = (IdentityKind.PHONE, IdentityKind.EMAIL)
REACHABLE_KINDS = (
    IdentityKind.PHONE,
    IdentityKind.WECHAT_OPENID,
    IdentityKind.WECHAT_UNIONID,
    IdentityKind.WECOM,
)
_PHONE_LIKE = re.compile(r"[+\d\s\-().·/]+")


# --- Filters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactFilters:
    q: str = ""
    tag_id: int | None = None
    source_channel_id: int | None = None
    unit_id: int | None = None
    field_id: int | None = None
    field_value: str = ""


@dataclass
class FilterOptions:
    """Everything the filter bar and the bulk-tag box offer, one query per kind."""

    tags: list[Tag]
    channels: list[Channel]
    units: list[BusinessUnit]
    fields: list[CustomField]
    edit_unit_ids: frozenset[int]

    @property
    def editable_tags(self) -> list[Tag]:
        """Manual tags of units where the user may edit contacts (bulk and 360 tagging)."""
        return [t for t in self.tags if t.unit_id in self.edit_unit_ids and t.kind == "manual"]


def filter_options(*, user: User) -> FilterOptions:
    units = list(
        BusinessUnit.objects.visible_to(user, VIEW)
        .filter(is_active=True)
        .order_by("parent_id", "name")
    )
    return FilterOptions(
        tags=list(Tag.objects.visible_to(user, VIEW).select_related("unit").order_by("name")),
        channels=list(
            Channel.objects.visible_to(user, VIEW).filter(is_active=True).order_by("name")
        ),
        units=units,
        fields=list(CustomField.objects.visible_to(user, VIEW).filter(is_active=True)),
        edit_unit_ids=visible_unit_ids(user, EDIT),
    )


def looks_like_phone(text: str) -> bool:
    """Digits and the punctuation people put in phone numbers, at least seven digits."""
    text = unicodedata.normalize("NFKC", text)
    return bool(_PHONE_LIKE.fullmatch(text)) and sum(c.isdigit() for c in text) >= 7


def _groups_of(user: User, permission: str) -> QuerySet[Any]:
    """The ids of the groups the user's units belong to, as a subquery (no round trip)."""
    return (
        BusinessUnit.objects.visible_to(user, permission)
        .annotate(group=Coalesce("parent_id", "id"))
        .values("group")
    )


def _identity_match(user: User, permission: str, kind: str, value: str) -> Q:
    owners = Identity.objects.visible_to(user, permission).filter(
        group_id__in=_groups_of(user, permission), kind=kind, scope="", value=value
    )
    return Q(pk__in=owners.values("contact_id"))


def _search(user: User, permission: str, text: str) -> Q:
    """A phone in any spelling or an email finds the person by their identity key; other
    text is a prefix of the name or the company.

    Prefix matching keeps to what a B-tree can serve on ``company_name``; a trigram index
    (pg_trgm) would allow matching inside names once the table is large enough to need it.
    """
    if "@" in text:
        try:
            return _identity_match(user, permission, IdentityKind.EMAIL, normalize_email(text))
        except InvalidKey:
            return Q(pk__in=[])
    if looks_like_phone(text):
        try:
            return _identity_match(user, permission, IdentityKind.PHONE, normalize_phone(text))
        except InvalidKey:
            pass  # digits that are not a phone: a company like "360" is still a prefix
    return Q(name__istartswith=text) | Q(company_name__istartswith=text)


def custom_field_condition(custom_field: CustomField, raw: str) -> Q:
    """``custom @> {"<id>": value}`` (GIN-indexed); a multiple choice matches any contact
    whose list holds the value. Raises FieldValueError when ``raw`` cannot be a value."""
    value = clean_value(custom_field, raw)
    if value is None:
        raise FieldValueError(_("Enter a value to filter by."))
    if custom_field.type == CustomFieldType.MULTI_CHOICE:
        value = list(value)
    return Q(custom__contains={custom_field.storage_key: value})


def contact_list(
    *,
    user: User,
    filters: ContactFilters,
    unit_ids: Iterable[int] | None = None,
    permission: str = VIEW,
    custom_field: CustomField | None = None,
) -> QuerySet[Contact]:
    """Active contacts the user may see, narrowed by the filters (unordered; page it with
    ``contact_page``). ``unit_ids`` is the unit switcher's narrowing. ``custom_field`` is
    the visible field ``filters.field_id`` names (the caller looked it up)."""
    qs = Contact.objects.visible_to(user, permission).active()
    if unit_ids is not None:
        qs = qs.filter(pk__in=ContactUnit.objects.for_units(unit_ids).values("contact_id"))
    if filters.q.strip():
        qs = qs.filter(_search(user, permission, filters.q.strip()))
    if filters.tag_id is not None:
        tagged = ContactTag.objects.visible_to(user, permission).filter(
            contact_id=OuterRef("pk"), tag_id=filters.tag_id
        )
        qs = qs.filter(Exists(tagged))
    if filters.source_channel_id is not None:
        qs = qs.filter(source_channel_id=filters.source_channel_id)
    if filters.unit_id is not None:
        if filters.unit_id not in visible_unit_ids(user, permission) and not user.is_superuser:
            return qs.none()
        known = ContactUnit.objects.for_units([filters.unit_id]).filter(contact_id=OuterRef("pk"))
        qs = qs.filter(Exists(known))
    if filters.field_id is not None:
        if custom_field is None or custom_field.pk != filters.field_id:
            return qs.none()
        qs = qs.filter(custom_field_condition(custom_field, filters.field_value))
    return qs


# --- Rows of the list ----------------------------------------------------------------------


def mask_phone(value: str) -> str:
    """``+8613800138000`` -> ``138****8000``; other numbers keep their ends."""
    local = value[3:] if value.startswith("+86") else value
    if len(local) <= 7:
        return local[:2] + "****"
    return f"{local[:3]}****{local[-4:]}"


def show_phone(value: str) -> str:
    """``+8613800138000`` -> ``138 0013 8000``; other countries stay in E.164."""
    if value.startswith("+86") and len(value) == 14:
        local = value[3:]
        return f"{local[:3]} {local[3:7]} {local[7:]}"
    return value


def mask_email(value: str) -> str:
    name, _at, domain = value.partition("@")
    return f"{name[:1]}***@{domain}"


def show_identity(kind: str, value: str, *, full: bool) -> str:
    if kind == IdentityKind.PHONE:
        return show_phone(value) if full else mask_phone(value)
    if kind == IdentityKind.EMAIL:
        return value if full else mask_email(value)
    return value


@dataclass
class ContactRow:
    contact: Contact
    phone: str = ""
    email: str = ""
    tags: list[Tag] = field(default_factory=list)
    units: list[BusinessUnit] = field(default_factory=list)
    source: Channel | None = None
    masked: bool = True


def with_row_data(qs: QuerySet[Contact], *, user: User) -> QuerySet[Contact]:
    """What a row shows, in three extra queries per page whatever its length."""
    return qs.select_related("source_channel").prefetch_related(
        Prefetch(
            "identities",
            queryset=Identity.objects.visible_to(user, VIEW)
            .filter(kind__in=SHOWN_KINDS)
            .order_by("id"),
            to_attr="shown_identities",
        ),
        Prefetch(
            "tags",
            queryset=ContactTag.objects.visible_to(user, VIEW)
            .select_related("tag")
            .order_by("tag__name", "id"),
            to_attr="visible_tags",
        ),
        Prefetch(
            "units",
            queryset=ContactUnit.objects.visible_to(user, VIEW)
            .select_related("unit")
            .order_by("unit__name", "id"),
            to_attr="visible_units",
        ),
    )


def contact_rows(*, user: User, contacts: Iterable[Contact]) -> list[ContactRow]:
    """Rows from contacts loaded through ``with_row_data`` (no queries)."""
    view_ids, edit_ids = visible_unit_ids(user, VIEW), visible_unit_ids(user, EDIT)
    rows = []
    for contact in contacts:
        units = [cu.unit for cu in getattr(contact, "visible_units", [])]
        full = user.is_superuser or any(u.pk in edit_ids for u in units)
        row = ContactRow(
            contact=contact,
            tags=[ct.tag for ct in getattr(contact, "visible_tags", [])],
            units=units,
            masked=not full,
        )
        for identity in getattr(contact, "shown_identities", []):
            if identity.kind == IdentityKind.PHONE and not row.phone:
                row.phone = show_identity(identity.kind, identity.value, full=full)
            elif identity.kind == IdentityKind.EMAIL and not row.email:
                row.email = show_identity(identity.kind, identity.value, full=full)
        channel = contact.source_channel
        if channel is not None and (user.is_superuser or channel.unit_id in view_ids):
            row.source = channel
        rows.append(row)
    return rows


def contact_ids_in_chunks(qs: QuerySet[Contact], *, chunk: int, limit: int) -> Iterable[list[int]]:
    """The ids ``qs`` matches, newest first, ``chunk`` at a time and ``limit`` at most:
    walked by keyset on the primary key, so each chunk is one indexed query."""
    last: int | None = None
    seen = 0
    while seen < limit:
        page = qs.order_by("-pk")
        if last is not None:
            page = page.filter(pk__lt=last)
        ids = list(page.values_list("pk", flat=True)[: min(chunk, limit - seen)])
        if not ids:
            return
        yield ids
        seen += len(ids)
        last = ids[-1]


def bounded_count(qs: QuerySet[Any], limit: int = COUNT_LIMIT) -> int:
    """How many rows, counting no further than ``limit`` + 1 (never a full COUNT(*))."""
    return qs.order_by().values("pk")[: limit + 1].count()


# --- The 360 page --------------------------------------------------------------------------


def contact_visible(*, user: User, pk: int, permission: str = VIEW) -> Contact | None:
    return (
        Contact.objects.visible_to(user, permission)
        .select_related("source_channel")
        .filter(pk=pk)
        .first()
    )


def contact_merged_target(*, user: User, pk: int) -> Contact | None:
    """For a contact merged into another: the contact that holds the person now, if the
    user may see it. A merged contact's units moved to the survivor, so this is the only
    way to find where an old link should go."""
    from apps.contacts.services.resolution import contact_of

    merged = (
        Contact.objects.dangerously_unscoped()
        .filter(pk=pk, status=ContactStatus.MERGED)
        .values_list("pk", flat=True)
        .first()
    )
    if merged is None:
        return None
    target = contact_of(merged)
    if target.pk == merged:
        return None
    return contact_visible(user=user, pk=target.pk)


@dataclass
class IdentityRow:
    kind: str
    kind_label: str
    scope: str
    value: str
    source: str
    created_at: Any


@dataclass
class CustomValue:
    field: CustomField
    value: str


@dataclass
class MergeRow:
    merge: ContactMerge
    blocker: str | None

    @property
    def undoable(self) -> bool:
        return self.blocker is None


@dataclass
class ContactProfile:
    contact: Contact
    identities: list[IdentityRow]
    units: list[ContactUnit]
    custom: list[CustomValue]
    tags: list[ContactTag]
    consents: list[Any]
    consent_events: list[ConsentEvent]
    merges: list[MergeRow]
    source: Channel | None
    full_pii: bool
    can_edit: bool
    can_merge: bool
    tag_choices: list[Tag]


def _custom_display(custom_field: CustomField, raw: Any) -> str:
    labels = {str(o.get("value")): str(o.get("label")) for o in custom_field.options or []}
    if isinstance(raw, list):
        return "、".join(labels.get(str(v), str(v)) for v in raw)
    if custom_field.type == CustomFieldType.CHOICE:
        return labels.get(str(raw), str(raw))
    return str(raw)


def merge_history(*, user: User, contact: Contact, limit: int = 20) -> list[MergeRow]:
    """Merges the contact took part in, newest first, each with why it cannot be undone
    (the rule of ``services.merge.merge_blocker``, for the whole list in one query)."""
    merges = list(
        ContactMerge.objects.visible_to(user, VIEW)
        .filter(Q(kept_id=contact.pk) | Q(dropped_id=contact.pk))
        .select_related("kept", "dropped")
        .order_by("-id")[:limit]
    )
    if not merges:
        return []
    people = {m.kept_id for m in merges} | {m.dropped_id for m in merges}
    # Any later merge blocks an undo, whoever may see it: the undo would be wrong otherwise.
    later = list(
        ContactMerge.objects.dangerously_unscoped()
        .filter(undone_at__isnull=True, id__gt=min(m.pk for m in merges))
        .filter(Q(kept_id__in=people) | Q(dropped_id__in=people))
        .order_by("id")
        .values_list("id", "kept_id", "dropped_id")
    )
    rows = []
    for m in merges:
        blocker: str | None = None
        if m.undone_at is not None:
            blocker = _("This merge was already undone.")
        elif (m.snapshot or {}).get("erased_at") or "moved" not in (m.snapshot or {}):
            blocker = _("The person was erased; this merge can no longer be undone.")
        else:
            pair = {m.kept_id, m.dropped_id}
            first = next((x for x in later if x[0] > m.pk and pair & {x[1], x[2]}), None)
            if first is not None:
                blocker = _(
                    "Contact #%(kept)s took part in a later merge (#%(merge)s); undo that first."
                ) % {"kept": m.kept_id, "merge": first[0]}
        rows.append(MergeRow(merge=m, blocker=blocker))
    return rows


def contact_tag_panel(
    *, user: User, contact: Contact, can_edit: bool = True
) -> tuple[list[ContactTag], list[Tag]]:
    """The contact's tags the user may see, and the manual tags they could still add."""
    tags = list(
        ContactTag.objects.visible_to(user, VIEW)
        .filter(contact=contact)
        .select_related("tag")
        .order_by("tag__name", "id")
    )
    if not can_edit:
        return tags, []
    carried = {ct.tag_id for ct in tags}
    choices = [
        t
        for t in Tag.objects.visible_to(user, EDIT).filter(kind="manual").order_by("name")
        if t.pk not in carried
    ]
    return tags, choices


def tag_for_editing(*, user: User, pk: int) -> Tag | None:
    """A manual tag of a unit where the user may edit contacts (rule tags follow rules)."""
    return Tag.objects.visible_to(user, EDIT).filter(pk=pk, kind="manual").first()


def timeline_channels(*, user: User) -> list[Channel]:
    return list(Channel.objects.visible_to(user, VIEW).order_by("name", "id"))


def merge_visible(*, user: User, pk: int) -> ContactMerge | None:
    """A merge the user may undo: its surviving contact is in a unit where they merge."""
    return ContactMerge.objects.visible_to(user, MERGE).filter(pk=pk).first()


def contact_profile(*, user: User, contact: Contact) -> ContactProfile:
    """Everything the 360 page shows except the timeline, in a fixed number of queries."""
    view_ids = visible_unit_ids(user, VIEW)
    units = list(
        ContactUnit.objects.visible_to(user, VIEW)
        .filter(contact=contact)
        .select_related("unit")
        .order_by("first_seen_at", "id")
    )
    known = {cu.unit_id for cu in units}
    can_edit = user.is_superuser or bool(known & visible_unit_ids(user, EDIT))
    can_merge = user.is_superuser or bool(known & visible_unit_ids(user, MERGE))
    full = can_edit
    identities = [
        IdentityRow(
            kind=i.kind,
            kind_label=str(i.get_kind_display()),
            scope=i.scope,
            value=show_identity(i.kind, i.value, full=full),
            source=i.source,
            created_at=i.created_at,
        )
        for i in Identity.objects.visible_to(user, VIEW)
        .filter(contact=contact)
        .order_by("kind", "id")
    ]
    stored = contact.custom or {}
    custom = [
        CustomValue(field=f, value=_custom_display(f, stored[f.storage_key]))
        for f in CustomField.objects.visible_to(user, VIEW)
        .filter(is_active=True)
        .select_related("unit")
        if f.storage_key in stored
    ]
    tags, tag_choices = contact_tag_panel(user=user, contact=contact, can_edit=can_edit)
    channel = contact.source_channel
    return ContactProfile(
        contact=contact,
        identities=identities,
        units=units,
        custom=custom,
        tags=tags,
        consents=list(contact.consents.order_by("channel", "purpose")),
        consent_events=list(
            ConsentEvent.objects.visible_to(user, VIEW)
            .filter(contact=contact)
            .select_related("unit")
            .order_by("-occurred_at", "-id")[:20]
        ),
        merges=merge_history(user=user, contact=contact),
        source=channel
        if channel is not None and (user.is_superuser or channel.unit_id in view_ids)
        else None,
        full_pii=full,
        can_edit=can_edit,
        can_merge=can_merge,
        tag_choices=tag_choices,
    )


def merge_candidate(*, user: User, contact: Contact, text: str) -> Contact | None:
    """The other contact a person means by ``text``: an id (``123`` or ``#123``), a phone
    in any spelling or an email; only active contacts the user may merge."""
    text = text.strip()
    qs = Contact.objects.visible_to(user, MERGE).active().exclude(pk=contact.pk)
    bare = text.lstrip("#")
    if bare.isdigit() and not looks_like_phone(bare):
        return qs.filter(pk=int(bare)).first()
    if "@" in text or looks_like_phone(text):
        return qs.filter(_search(user, MERGE, text)).order_by("pk").first()
    return None


# --- Home cards ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactCounts:
    total: int
    new_this_week: int
    reachable: int


def contact_counts(*, user: User, unit_ids: Iterable[int] | None = None) -> ContactCounts:
    """Three bounded counts (up to COUNT_LIMIT + 1 each) in a single query."""
    qs = Contact.objects.visible_to(user, VIEW).active()
    if unit_ids is not None:
        qs = qs.filter(pk__in=ContactUnit.objects.for_units(unit_ids).values("contact_id"))
    reachable = Identity.objects.visible_to(user, VIEW).filter(
        contact_id=OuterRef("pk"), kind__in=REACHABLE_KINDS
    )
    parts = [
        qs,
        qs.filter(first_seen_at__gte=timezone.now() - timedelta(days=7)),
        qs.filter(Exists(reachable)),
    ]
    selects: list[str] = []
    params: list[Any] = []
    for part in parts:
        if part.query.is_empty():
            selects.append("0")
            continue
        sql, part_params = part.order_by().values("pk")[: COUNT_LIMIT + 1].query.sql_with_params()
        # The inner SQL is Django's own compilation; every value stays a parameter.
        selects.append(f"(SELECT count(*) FROM ({sql}) AS s)")  # noqa: S608
        params.extend(part_params)
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(selects), params)
        total, new, reach = cursor.fetchone()
    return ContactCounts(total=int(total), new_this_week=int(new), reachable=int(reach))
