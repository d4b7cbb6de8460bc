"""Merging two contacts into one, and undoing it exactly.

A merge moves everything of ``dropped`` to ``kept``: identities, the units that know the
person, tags (and their history), consent events, activities and, through the hooks,
whatever higher apps hang on a contact (leads). It records the ids it moved and the rows
it had to delete (a tag both carried), plus both contacts' fields before, in a
``ContactMerge`` row. Undo moves exactly those rows back and restores the fields the merge
changed; anything that arrived after the merge stays with the kept contact.

A merge can be undone while no later merge involves either contact (undo that first).
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.contacts.hooks import merge_hooks
from apps.contacts.models import (
    STANDARD_FIELDS,
    Activity,
    ConsentEvent,
    Contact,
    ContactMerge,
    ContactStatus,
    ContactTag,
    ContactUnit,
    Identity,
    MergeMovedActivities,
    TagHistory,
)
from apps.contacts.services.consent import consent_states_refresh
from apps.core.audit_actions import register_action
from apps.core.services import Actor, audit_record

register_action("contact.merge", gettext_lazy("Contacts merged"))
register_action("contact.merge_undo", gettext_lazy("Merge undone"))

TOUCH_FIELDS = ("first_touch", "latest_touch")

# Activity ids per MergeMovedActivities row: keeps each JSON value small.
ACTIVITY_CHUNK = 10_000


class MergeError(ValueError):
    pass


def _fields(contact: Contact) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(contact, name) for name in STANDARD_FIELDS}
    data["custom"] = dict(contact.custom or {})
    data["field_sources"] = dict(contact.field_sources or {})
    data["source_channel_id"] = contact.source_channel_id
    data["first_seen_at"] = contact.first_seen_at.isoformat()
    data["last_seen_at"] = contact.last_seen_at.isoformat()
    for touch in TOUCH_FIELDS:
        data[f"{touch}_channel_id"] = getattr(contact, f"{touch}_channel_id")
        data[f"{touch}_campaign_id"] = getattr(contact, f"{touch}_campaign_id")
        at = getattr(contact, f"{touch}_at")
        data[f"{touch}_at"] = at.isoformat() if at else None
    return data


def _set_fields(contact: Contact, data: dict[str, Any]) -> None:
    from datetime import datetime

    for name in STANDARD_FIELDS:
        setattr(contact, name, data[name])
    contact.custom = data["custom"]
    contact.field_sources = data["field_sources"]
    contact.source_channel_id = data["source_channel_id"]
    contact.first_seen_at = datetime.fromisoformat(data["first_seen_at"])
    contact.last_seen_at = datetime.fromisoformat(data["last_seen_at"])
    for touch in TOUCH_FIELDS:
        if f"{touch}_at" not in data:  # a snapshot from before touches existed
            continue
        setattr(contact, f"{touch}_channel_id", data[f"{touch}_channel_id"])
        setattr(contact, f"{touch}_campaign_id", data[f"{touch}_campaign_id"])
        at = data[f"{touch}_at"]
        setattr(contact, f"{touch}_at", datetime.fromisoformat(at) if at else None)


def _merge_fields(kept: Contact, dropped: Contact) -> None:
    """Per field, the newer non-empty value wins (as in identity resolution)."""
    k_sources, d_sources = kept.field_sources or {}, dropped.field_sources or {}
    sources = dict(k_sources)
    for name in STANDARD_FIELDS:
        theirs = getattr(dropped, name)
        if not theirs:
            continue
        mine = getattr(kept, name)
        newer = d_sources.get(name, {}).get("at", "") > k_sources.get(name, {}).get("at", "")
        if not mine or newer:
            setattr(kept, name, theirs)
            if name in d_sources:
                sources[name] = d_sources[name]
    custom = dict(kept.custom or {})
    for key, value in (dropped.custom or {}).items():
        marker = f"custom:{key}"
        newer = d_sources.get(marker, {}).get("at", "") > k_sources.get(marker, {}).get("at", "")
        if key not in custom or newer:
            custom[key] = value
            if marker in d_sources:
                sources[marker] = d_sources[marker]
    kept.custom = custom
    kept.field_sources = sources
    kept.source_channel_id = kept.source_channel_id or dropped.source_channel_id
    kept.first_seen_at = min(kept.first_seen_at, dropped.first_seen_at)
    kept.last_seen_at = max(kept.last_seen_at, dropped.last_seen_at)
    # The earlier first touch and the later latest touch win.
    for touch, earlier_wins in (("first_touch", True), ("latest_touch", False)):
        mine, theirs = getattr(kept, f"{touch}_at"), getattr(dropped, f"{touch}_at")
        if theirs is None or (mine is not None and (theirs >= mine) == earlier_wins):
            continue
        for part in ("channel_id", "campaign_id", "at"):
            setattr(kept, f"{touch}_{part}", getattr(dropped, f"{touch}_{part}"))


def _move(model: type, ids_from: int, to: int, *, column: str = "contact_id") -> list[int]:
    table = model._meta.db_table  # type: ignore[attr-defined]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = %s WHERE {column} = %s RETURNING id",  # noqa: S608
            [to, ids_from],
        )
        return sorted(row[0] for row in cursor.fetchall())


def _move_back(model: type, ids: list[int], to: int, *, column: str = "contact_id") -> None:
    if not ids:
        return
    table = model._meta.db_table  # type: ignore[attr-defined]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = %s WHERE id = ANY(%s)",  # noqa: S608
            [to, ids],
        )


def _lock(*contacts: Contact) -> list[Contact]:
    ids = sorted(c.pk for c in contacts)
    locked = {
        c.pk: c
        for c in Contact.objects.dangerously_unscoped().select_for_update().filter(pk__in=ids)
    }
    return [locked[c.pk] for c in contacts]


@transaction.atomic
def contact_merge(
    *, kept: Contact, dropped: Contact, reason: str = "", acting_user: Actor
) -> ContactMerge:
    if kept.pk == dropped.pk:
        raise MergeError(_("A contact cannot be merged into itself."))
    kept, dropped = _lock(kept, dropped)
    if kept.group_id != dropped.group_id:
        raise MergeError(_("Contacts of different groups cannot be merged."))
    if not (kept.is_active and dropped.is_active):
        raise MergeError(_("Only active contacts can be merged."))
    before = {"kept_fields": _fields(kept), "dropped_fields": _fields(dropped)}

    moved: dict[str, Any] = {}
    deleted: dict[str, list[dict[str, Any]]] = {}
    moved["identity"] = _move(Identity, dropped.pk, kept.pk)

    # Units and tags both contacts have: drop the duplicate row, remember it for undo.
    shared_units = ContactUnit.objects.dangerously_unscoped().filter(
        contact=dropped, unit_id__in=ContactUnit.objects.filter(contact=kept).values("unit_id")
    )
    deleted["contact_unit"] = [
        {"unit_id": u.unit_id, "first_seen_at": u.first_seen_at.isoformat(), "source": u.source}
        for u in shared_units
    ]
    shared_units.delete()
    moved["contact_unit"] = _move(ContactUnit, dropped.pk, kept.pk)

    shared_tags = ContactTag.objects.dangerously_unscoped().filter(
        contact=dropped, tag_id__in=ContactTag.objects.filter(contact=kept).values("tag_id")
    )
    deleted["contact_tag"] = [
        {
            "tag_id": t.tag_id,
            "source": t.source,
            "added_by": t.added_by,
            "added_at": t.added_at.isoformat(),
        }
        for t in shared_tags
    ]
    shared_tags.delete()
    moved["contact_tag"] = _move(ContactTag, dropped.pk, kept.pk)
    moved["tag_history"] = _move(TagHistory, dropped.pk, kept.pk)
    moved["consent_event"] = _move(ConsentEvent, dropped.pk, kept.pk)

    merge = ContactMerge.objects.create(
        group_id=kept.group_id,
        kept=kept,
        dropped=dropped,
        reason=reason[:200],
        snapshot={},
        actor_label=_actor_label(acting_user),
    )
    activity_ids = _move(Activity, dropped.pk, kept.pk)
    MergeMovedActivities.objects.bulk_create(
        [
            MergeMovedActivities(merge=merge, activity_ids=activity_ids[i : i + ACTIVITY_CHUNK])
            for i in range(0, len(activity_ids), ACTIVITY_CHUNK)
        ]
    )
    hooks = {hook.name: hook.merge(kept.pk, dropped.pk) for hook in merge_hooks()}

    _merge_fields(kept, dropped)
    kept.save()
    dropped.status = ContactStatus.MERGED
    dropped.merged_into = kept
    dropped.save(update_fields=["status", "merged_into", "updated_at"])
    consent_states_refresh([kept.pk, dropped.pk])

    merge.snapshot = {
        **before,
        "merged_fields": _fields(kept),
        "moved": moved,
        "deleted": deleted,
        "activity_count": len(activity_ids),
        "hooks": hooks,
    }
    merge.save(update_fields=["snapshot"])
    audit_record(
        actor=acting_user,
        action="contact.merge",
        obj=kept,
        unit=kept.group_id,
        before={"dropped": dropped.pk, "kept": kept.pk},
        after={
            "reason": reason,
            "identities": len(moved["identity"]),
            "activities": len(activity_ids),
        },
    )
    return merge


def _actor_label(actor: Actor) -> str:
    from apps.core.models import User

    return actor.get_username() if isinstance(actor, User) else str(actor)


def merge_blocker(merge: ContactMerge) -> str | None:
    """Why ``merge`` cannot be undone now, or None."""
    if merge.undone_at is not None:
        return _("This merge was already undone.")
    if merge.snapshot.get("erased_at") or "moved" not in merge.snapshot:
        return _("The person was erased; this merge can no longer be undone.")
    later = (
        ContactMerge.objects.dangerously_unscoped()
        .filter(id__gt=merge.pk, undone_at__isnull=True)
        .filter(_involving(merge.kept_id) | _involving(merge.dropped_id))
        .order_by("id")
        .first()
    )
    if later is not None:
        return _("Contact #%(kept)s took part in a later merge (#%(merge)s); undo that first.") % {
            "kept": merge.kept_id,
            "merge": later.pk,
        }
    return None


def _involving(contact_id: int) -> Q:
    return Q(kept_id=contact_id) | Q(dropped_id=contact_id)


@transaction.atomic
def contact_merge_undo(*, merge: ContactMerge, acting_user: Actor) -> ContactMerge:
    merge = ContactMerge.objects.dangerously_unscoped().select_for_update().get(pk=merge.pk)
    blocker = merge_blocker(merge)
    if blocker:
        raise MergeError(blocker)
    kept, dropped = _lock(merge.kept, merge.dropped)
    snap = merge.snapshot
    moved, deleted = snap["moved"], snap["deleted"]

    for hook in reversed(merge_hooks()):
        if hook.name in snap.get("hooks", {}):
            hook.undo(kept.pk, dropped.pk, snap["hooks"][hook.name])
    for chunk in MergeMovedActivities.objects.filter(merge=merge):
        _move_back(Activity, chunk.activity_ids, dropped.pk)
    _move_back(Identity, moved["identity"], dropped.pk)
    _move_back(ContactUnit, moved["contact_unit"], dropped.pk)
    _move_back(ContactTag, moved["contact_tag"], dropped.pk)
    _move_back(TagHistory, moved["tag_history"], dropped.pk)
    _move_back(ConsentEvent, moved["consent_event"], dropped.pk)
    ContactUnit.objects.bulk_create(
        [ContactUnit(contact=dropped, **row) for row in deleted["contact_unit"]],
        ignore_conflicts=True,
    )
    ContactTag.objects.bulk_create(
        [ContactTag(contact=dropped, **row) for row in deleted["contact_tag"]],
        ignore_conflicts=True,
    )

    # Restore the kept contact's fields the merge changed, unless edited since.
    current, after, before = _fields(kept), snap["merged_fields"], snap["kept_fields"]
    restored = dict(current)
    for name, value in after.items():
        if current.get(name) == value:
            restored[name] = before[name]
    _set_fields(kept, restored)
    kept.save()
    _set_fields(dropped, snap["dropped_fields"])
    dropped.status = ContactStatus.ACTIVE
    dropped.merged_into = None
    dropped.save()
    consent_states_refresh([kept.pk, dropped.pk])

    merge.undone_at = timezone.now()
    merge.undone_by = _actor_label(acting_user)
    merge.save(update_fields=["undone_at", "undone_by"])
    audit_record(
        actor=acting_user,
        action="contact.merge_undo",
        obj=kept,
        unit=kept.group_id,
        before={"kept": kept.pk},
        after={"restored": dropped.pk},
    )
    return merge
