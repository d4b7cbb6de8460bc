"""Writes for core: units, memberships, API tokens, and the audit trail they leave."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core.models import ApiToken, AuditLog, BusinessUnit, Membership, Notification, User
from apps.core.roles import Role
from apps.core.scoping import forget_visible_units, visible_unit_ids


class SystemActor:
    """Who acts when no person does (a periodic task, a data import, a migration)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return f"system: {self.name}"


Actor = User | SystemActor


def _actor_fields(actor: Actor | None) -> dict[str, Any]:
    if isinstance(actor, User):
        return {"actor": actor, "actor_label": actor.get_username()[:150]}
    return {"actor": None, "actor_label": str(actor or "system")[:150]}


def audit_record(
    *,
    actor: Actor | None,
    action: str,
    obj: models.Model | None = None,
    unit: BusinessUnit | int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditLog:
    """Write one audit row. Call it inside the transaction that makes the change."""
    unit_id = unit.pk if isinstance(unit, BusinessUnit) else unit
    return AuditLog.objects.create(
        **_actor_fields(actor),
        action=action,
        unit_id=unit_id,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        before=before,
        after=after,
    )


@transaction.atomic
def business_unit_create(
    *, name: str, code: str, parent: BusinessUnit | None = None, acting_user: Actor
) -> BusinessUnit:
    unit = BusinessUnit(name=name, code=code, parent=parent)
    unit.full_clean()
    unit.save()
    audit_record(
        actor=acting_user,
        action="business_unit.create",
        obj=unit,
        unit=unit,
        after={"name": name, "code": code, "parent": parent.code if parent else None},
    )
    return unit


def business_unit_ensure(
    *, code: str, name: str, parent: BusinessUnit | None = None, acting_user: Actor
) -> BusinessUnit:
    """The unit with ``code``, created (and audited) when it does not exist yet."""
    unit = BusinessUnit.objects.dangerously_unscoped().filter(code=code).first()
    if unit is None:
        unit = business_unit_create(name=name, code=code, parent=parent, acting_user=acting_user)
    return unit


@transaction.atomic
def membership_set(*, user: User, unit: BusinessUnit, role: str, acting_user: Actor) -> Membership:
    """Give ``user`` ``role`` in ``unit`` (one role per unit: a second call changes it)."""
    if role not in Role.values:
        raise ValidationError({"role": _("Unknown role %(role)s.") % {"role": role}})
    existing = Membership.objects.dangerously_unscoped().filter(user=user, unit=unit).first()
    before = {"role": existing.role} if existing else None
    membership, _created = Membership.objects.update_or_create(
        user=user, unit=unit, defaults={"role": role}
    )
    forget_visible_units(user)
    audit_record(
        actor=acting_user,
        action="membership.set",
        obj=membership,
        unit=unit,
        before=before,
        after={"user": user.get_username(), "role": role},
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, acting_user: Actor) -> None:
    audit_record(
        actor=acting_user,
        action="membership.remove",
        obj=membership,
        unit=membership.unit_id,
        before={"user": membership.user.get_username(), "role": membership.role},
    )
    membership.delete()
    forget_visible_units(membership.user)


def user_set_language(*, user: User, language: str) -> None:
    """Remember the user's UI language (a preference: not audited)."""
    if user.language != language:
        user.language = language
        user.save(update_fields=["language"])


def _token_unit(user: User) -> int | None:
    """The unit an API token's audit rows are filed under: the user's first visible unit."""
    ids = sorted(visible_unit_ids(user, "core.use_api"))
    return ids[0] if ids else None


@transaction.atomic
def api_token_create(
    *, user: User, name: str, expires_at: datetime | None = None, acting_user: Actor
) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret, which is never stored or shown again."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": _("Give the token a name, e.g. the system that uses it.")})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": _("The expiry date must be in the future.")})
    if isinstance(acting_user, User) and acting_user.pk != user.pk and not acting_user.is_superuser:
        raise PermissionDenied(_("You can only create tokens for yourself."))
    raw = ApiToken.PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        key_prefix=raw[:10],
        key_hash=ApiToken.hash_key(raw),
        expires_at=expires_at,
    )
    audit_record(
        actor=acting_user,
        action="api_token.create",
        obj=token,
        unit=_token_unit(user),
        after=token.as_audit(),
    )
    return token, raw


@transaction.atomic
def api_token_revoke(*, token: ApiToken, acting_user: Actor) -> ApiToken:
    # Lock the row so two revokes (console and admin at once) write one audit row.
    token = ApiToken.objects.dangerously_unscoped().select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        return token
    before = token.as_audit()
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(
        actor=acting_user,
        action="api_token.revoke",
        obj=token,
        unit=_token_unit(token.user),
        before=before,
        after=token.as_audit(),
    )
    return token


def api_token_authenticate(*, raw: str) -> ApiToken | None:
    """The active token for ``raw``, or None. Touches ``last_used_at`` at most once a minute."""
    if not raw.startswith(ApiToken.PREFIX):
        return None
    token = (
        ApiToken.objects.dangerously_unscoped()
        .active()
        .select_related("user")
        .filter(key_hash=ApiToken.hash_key(raw))
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        # Conditional UPDATE: concurrent requests don't pile writes onto the same row.
        ApiToken.objects.dangerously_unscoped().filter(pk=token.pk).exclude(
            last_used_at__gt=now - timedelta(seconds=60)
        ).update(last_used_at=now)
    return token


# --- Notifications ---------------------------------------------------------------------------


def notification_send(
    *,
    user_id: int,
    kind: str,
    title: str,
    body: str = "",
    url: str = "",
    unit_id: int | None = None,
    dedupe_key: str | None = None,
) -> Notification | None:
    """Tell one person something (the bell counts it). With ``dedupe_key`` a repeat of
    the same notice (a retried task) is ignored and None is returned."""
    try:
        with transaction.atomic():
            return Notification.objects.create(
                user_id=user_id,
                unit_id=unit_id,
                kind=kind[:40],
                title=title[:200],
                body=body,
                url=url[:500],
                dedupe_key=dedupe_key,
            )
    except IntegrityError:
        if dedupe_key is None:
            raise
        return None


def notifications_mark_read(*, user: User, ids: list[int] | None = None) -> int:
    """Mark the user's notifications read (all unread ones when ``ids`` is None)."""
    unread = Notification.objects.visible_to(user).unread()
    if ids is not None:
        unread = unread.filter(pk__in=ids)
    return unread.update(read_at=timezone.now())
