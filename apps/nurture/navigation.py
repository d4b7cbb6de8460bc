"""Nurture's entries in the console navigation and its permissions (from AppConfig.ready)."""

from django.utils.translation import gettext_lazy as _

from apps.core.navigation import NavItem, register_nav
from apps.core.roles import Role, Surface, grant

# Reading scores and their explanations: marketing, the people who work the leads (API
# and their own surfaces for now), and viewers.
grant(
    "nurture.view",
    Role.ADMIN,
    Role.MARKETER,
    Role.SDR,
    Role.SALES,
    Role.SALES_MANAGER,
    Role.VIEWER,
)
# Editing scoring models and recomputing them.
grant("nurture.scoring", Role.ADMIN, Role.MARKETER)

register_nav(NavItem(Surface.CONSOLE, _("Scoring"), "nurture:scoring", "nurture.view", 17))
