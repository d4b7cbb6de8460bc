"""Putting tags on contacts and taking them off, set-based, with history."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction
from django.utils.translation import gettext_lazy as _

from apps.contacts.models import ContactTag, Tag, TagHistory, TagKind
from apps.core.audit_actions import register_action
from apps.core.models import User
from apps.core.services import audit_record

register_action("contact.tags_bulk_add", _("Tag added to many contacts"))


class RuleTagError(ValueError):
    """Rule tags follow their rule; people cannot put them on or take them off."""


def _manual_only(tags: Iterable[Tag], source: str) -> list[Tag]:
    tags = list(tags)
    if source != "rule":
        ruled = [t.name for t in tags if t.kind == TagKind.RULE]
        if ruled:
            raise RuleTagError(
                _("%(tags)s follow a rule and cannot be changed by hand.")
                % {"tags": "、".join(ruled)}
            )
    return tags


@transaction.atomic
def tags_add(
    *, contact_ids: Iterable[int], tags: Iterable[Tag], source: str, actor_label: str
) -> int:
    """Tag every contact with every tag (already-tagged pairs are left alone).

    Returns how many (contact, tag) pairs were new. One INSERT per tag, not per contact.
    """
    ids = sorted(set(contact_ids))
    tags = _manual_only(tags, source)
    added = 0
    if not ids:
        return 0
    table, history = ContactTag._meta.db_table, TagHistory._meta.db_table
    with connection.cursor() as cursor:
        for tag in tags:
            cursor.execute(
                f"""
                WITH new AS (
                    INSERT INTO {table} (contact_id, tag_id, source, added_by, added_at)
                    SELECT c, %s, %s, %s, now() FROM unnest(%s::bigint[]) AS c
                    ON CONFLICT (contact_id, tag_id) DO NOTHING
                    RETURNING contact_id
                )
                INSERT INTO {history} (contact_id, tag_id, action, source, actor_label, at)
                SELECT contact_id, %s, 'added', %s, %s, now() FROM new
                """,  # noqa: S608 - table names from model metadata
                [tag.pk, source, actor_label[:150], ids, tag.pk, source, actor_label[:150]],
            )
            added += cursor.rowcount
    return added


@transaction.atomic
def tags_remove(
    *, contact_ids: Iterable[int], tags: Iterable[Tag], source: str, actor_label: str
) -> int:
    ids = sorted(set(contact_ids))
    tags = _manual_only(tags, source)
    removed = 0
    if not ids:
        return 0
    table, history = ContactTag._meta.db_table, TagHistory._meta.db_table
    with connection.cursor() as cursor:
        for tag in tags:
            cursor.execute(
                f"""
                WITH gone AS (
                    DELETE FROM {table} WHERE tag_id = %s AND contact_id = ANY(%s)
                    RETURNING contact_id
                )
                INSERT INTO {history} (contact_id, tag_id, action, source, actor_label, at)
                SELECT contact_id, %s, 'removed', %s, %s, now() FROM gone
                """,  # noqa: S608 - table names from model metadata
                [tag.pk, ids, tag.pk, source, actor_label[:150]],
            )
            removed += cursor.rowcount
    return removed


@transaction.atomic
def tags_bulk_add(*, acting_user: User, tag: Tag, chunks: Iterable[list[int]], scope: str) -> int:
    """Tag every contact id in ``chunks`` (one INSERT per chunk), with one audit row."""
    added = 0
    for ids in chunks:
        added += tags_add(
            contact_ids=ids, tags=[tag], source="manual", actor_label=acting_user.get_username()
        )
    audit_record(
        actor=acting_user,
        action="contact.tags_bulk_add",
        obj=tag,
        unit=tag.unit_id,
        after={"tag": tag.name, "added": added, "scope": scope},
    )
    return added
