"""Roles, what each may do, and which surface each lands on.

A user holds one role per business unit (``Membership``). A membership on a *group* unit
applies to the group and to every unit under it. Permissions are plain strings so that
higher apps can declare their own without core importing them.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    ADMIN = "admin", _("Administrator")
    MARKETER = "marketer", _("Marketer")
    SDR = "sdr", _("SDR")
    SALES = "sales", _("Sales")
    SALES_MANAGER = "sales_manager", _("Sales manager")
    VIEWER = "viewer", _("Viewer")


class Surface(models.TextChoices):
    CONSOLE = "console", _("Marketing console")
    SDR = "sdr", _("Lead queue")
    MOBILE = "mobile", _("Sales mobile")


# Which surfaces a role may open, first one is where the user lands after login.
ROLE_SURFACES: dict[str, tuple[str, ...]] = {
    Role.ADMIN: (Surface.CONSOLE, Surface.SDR, Surface.MOBILE),
    Role.MARKETER: (Surface.CONSOLE,),
    Role.SDR: (Surface.SDR, Surface.MOBILE),
    Role.SALES: (Surface.MOBILE,),
    Role.SALES_MANAGER: (Surface.MOBILE, Surface.SDR),
    Role.VIEWER: (Surface.CONSOLE,),
}

# Landing preference when a user holds several roles: the most specialised surface wins
# for front-line roles, the console for anyone who runs marketing.
LANDING_ORDER = (Surface.CONSOLE, Surface.SDR, Surface.MOBILE)

# permission -> roles that hold it. Higher apps add theirs with ``grant``.
PERMISSIONS: dict[str, set[str]] = {
    "core.view_unit": set(Role.values),
    "core.view_members": set(Role.values),
    "core.view_audit": {Role.ADMIN, Role.SALES_MANAGER},
    "core.use_api": set(Role.values),
    "core.admin_unit": {Role.ADMIN},
}


def grant(permission: str, *roles: str) -> None:
    """Let ``roles`` hold ``permission`` (called from an app's ``ready()``)."""
    PERMISSIONS.setdefault(permission, set()).update(roles)


def roles_with(permission: str) -> set[str]:
    try:
        return PERMISSIONS[permission]
    except KeyError:
        raise KeyError(f"Unknown permission {permission!r}; declare it in roles.py") from None
