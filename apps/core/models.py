from __future__ import annotations

import hashlib
from typing import Any, ClassVar, Self

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.roles import Role
from apps.core.scoping import DEFAULT_PERMISSION, ScopedQuerySet


class BusinessUnit(models.Model):
    """A business unit, or a group (``parent`` is empty) that owns several units.

    Records carry the unit they belong to; a record on the group itself lives in the
    group pool (leads qualified centrally before a unit takes them).
    """

    name = models.CharField(_("name"), max_length=120)
    code = models.SlugField(_("code"), max_length=40, unique=True)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("group"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="units",
        help_text=_("Empty for a group; the group this unit belongs to otherwise."),
    )
    time_zone = models.CharField(_("time zone"), max_length=64, default="Asia/Shanghai")
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    objects = ScopedQuerySet.as_manager()
    scope_field = "id"

    class Meta:
        verbose_name = _("business unit")
        verbose_name_plural = _("business units")
        ordering = ["parent_id", "name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(parent=models.F("id")), name="business_unit_not_own_parent"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_group(self) -> bool:
        return self.parent_id is None

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.parent is not None and self.parent.parent_id is not None:
            raise ValidationError(
                {"parent": _("A unit's group must be a group (one without a group of its own).")}
            )


class UserQuerySet(ScopedQuerySet["User"]):
    def scope_q(self, unit_ids: Any) -> Q:
        # A user is visible to whoever sees a unit they belong to. Group-level people are
        # not visible to a single unit's administrators (they must not edit their bosses).
        # People with no role anywhere yet (just created) are visible too, so a unit
        # administrator can give them one; superusers never are.
        ids = list(unit_ids)
        return Q(id__in=Membership.objects.filter(unit_id__in=ids).values("user_id")) | (
            ~Q(id__in=Membership.objects.values("user_id")) & Q(is_superuser=False)
        )

    def visible_to(self, user: Any, permission: str = "core.view_members") -> Any:
        if getattr(user, "is_superuser", False) and user.is_active:
            return self.all()
        return super().visible_to(user, permission)


class LeadLoopUserManager(UserManager["User"]):
    def get_queryset(self) -> UserQuerySet:
        return UserQuerySet(self.model, using=self._db)

    def visible_to(self, user: Any, permission: str = "core.view_members") -> Any:
        return self.get_queryset().visible_to(user, permission)

    def dangerously_unscoped(self) -> UserQuerySet:
        return self.get_queryset()


class User(AbstractUser):
    display_name = models.CharField(_("display name"), max_length=150, blank=True)
    phone = models.CharField(_("mobile phone"), max_length=32, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    language = models.CharField(
        _("language"), max_length=10, blank=True, choices=settings.LANGUAGES
    )

    objects: ClassVar[LeadLoopUserManager] = LeadLoopUserManager()  # type: ignore[assignment]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    @property
    def label(self) -> str:
        return str(self)


class MembershipQuerySet(ScopedQuerySet["Membership"]):
    pass


class Membership(models.Model):
    """One role for one user in one unit. A membership on a group covers its units."""

    user = models.ForeignKey(
        User, verbose_name=_("user"), on_delete=models.CASCADE, related_name="memberships"
    )
    unit = models.ForeignKey(
        BusinessUnit,
        verbose_name=_("business unit"),
        on_delete=models.CASCADE,
        related_name="memberships",
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(_("since"), default=timezone.now, editable=False)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "unit"], name="membership_one_role_per_unit")
        ]
        indexes = [models.Index(fields=["unit", "role"], name="membership_unit_role")]

    def __str__(self) -> str:
        # Role code, not its label: this text is stored in the audit log, in no language.
        return f"{self.user} · {self.unit} · {self.role}"


class AuditLog(models.Model):
    """Who changed what, with the before and after, written in the change's transaction."""

    actor = models.ForeignKey(
        User,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Kept even when the user row goes, and names system actors ("system: sla-sweeper").
    actor_label = models.CharField(_("actor name"), max_length=150)
    action = models.CharField(_("action"), max_length=80)
    unit = models.ForeignKey(
        BusinessUnit,
        verbose_name=_("business unit"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    object_type = models.CharField(_("object type"), max_length=100, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    object_repr = models.CharField(_("object"), max_length=200, blank=True)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=False)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log")
        indexes = [
            # Lists page newest-first by id; the unit index serves scoped lists.
            models.Index(fields=["unit", "-id"], name="auditlog_unit_id"),
            models.Index(fields=["object_type", "object_id"], name="auditlog_object"),
            models.Index(fields=["actor", "-id"], name="auditlog_actor_id"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.object_repr}"

    @property
    def action_label(self) -> Any:
        from apps.core.audit_actions import action_label

        return action_label(self.action)

    @property
    def changes(self) -> list[tuple[str, Any, Any]]:
        """(field, before, after) for every field either side mentions, in a stable order."""
        before, after = self.before or {}, self.after or {}
        keys = list(dict.fromkeys([*before, *after]))
        return [(key, before.get(key), after.get(key)) for key in keys]


class ApiTokenQuerySet(ScopedQuerySet["ApiToken"]):
    def scope_q(self, unit_ids: Any) -> Q:
        # Tokens belong to people; an administrator sees the tokens of their units' people.
        ids = list(unit_ids)
        return Q(user_id__in=Membership.objects.filter(unit_id__in=ids).values("user_id"))

    def active(self) -> ApiTokenQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A personal API token. Only a SHA-256 of the secret is stored; the secret is shown once."""

    PREFIX = "ll_"

    user = models.ForeignKey(
        User, verbose_name=_("user"), on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(_("name"), max_length=100)
    # The first characters of the token, shown in lists so people can tell tokens apart.
    key_prefix = models.CharField(_("key prefix"), max_length=16, db_index=True)
    key_hash = models.CharField(_("key hash"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @staticmethod
    def hash_key(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()

    def as_audit(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key_prefix": self.key_prefix,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


class NotificationQuerySet(ScopedQuerySet["Notification"]):
    def visible_to(self, user: Any, permission: str = DEFAULT_PERMISSION) -> Self:
        # A notification is addressed to one person: nobody else reads it, whatever role.
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        return self.filter(user_id=user.pk)

    def unread(self) -> NotificationQuerySet:
        return self.filter(read_at__isnull=True)


class Notification(models.Model):
    """Something one person should know now (a contact opened their share link, a lead
    was assigned…): the bell in every surface counts the unread ones."""

    # notification_user (user, -id) serves lookups by user: no second index to write.
    user = models.ForeignKey(
        User,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="notifications",
        db_index=False,
    )
    # Never looked up by unit (only deleted with it, which is rare): no index to write.
    unit = models.ForeignKey(
        BusinessUnit,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    kind = models.CharField(_("kind"), max_length=40)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"), blank=True)
    url = models.CharField(_("link"), max_length=500, blank=True)
    # Producers that may run twice (a retried task) set this; the second is ignored.
    dedupe_key = models.CharField(max_length=100, null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [
            models.Index(fields=["user", "-id"], name="notification_user"),
            models.Index(
                fields=["user"], name="notification_unread", condition=Q(read_at__isnull=True)
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"],
                name="notification_dedupe",
                condition=Q(dedupe_key__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return self.title


class CalendarDay(models.Model):
    """A day the statutory calendar treats differently from its weekday: a holiday on a
    weekday (``is_workday`` false) or a make-up working day on a weekend (true).

    Seeded from the ``chinesecalendar`` package (2004–2026); administrators add the next
    year in the admin when the State Council publishes it. A year with no row at all has
    no data: working time then falls back to Monday–Friday and the console warns.
    """

    date = models.DateField(_("date"), unique=True)
    is_workday = models.BooleanField(_("working day"))
    name = models.CharField(_("name"), max_length=60, blank=True)
    source = models.CharField(_("source"), max_length=20, default="admin", editable=False)

    class Meta:
        verbose_name = _("calendar day")
        verbose_name_plural = _("holiday calendar")
        ordering = ["-date"]

    def __str__(self) -> str:
        return f"{self.date} {self.name}".strip()
