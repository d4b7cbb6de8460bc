"""Contacts' entries in the console navigation (registered from AppConfig.ready)."""

from django.utils.translation import gettext_lazy as _

from apps.core.navigation import NavItem, register_nav
from apps.core.roles import Role, Surface, grant

grant(
    "contacts.view",
    Role.ADMIN,
    Role.MARKETER,
    Role.SDR,
    Role.SALES,
    Role.SALES_MANAGER,
    Role.VIEWER,
)
grant("contacts.edit", Role.ADMIN, Role.MARKETER, Role.SDR, Role.SALES, Role.SALES_MANAGER)
grant("contacts.import", Role.ADMIN, Role.MARKETER)
grant("contacts.export", Role.ADMIN, Role.MARKETER)
grant("contacts.merge", Role.ADMIN, Role.MARKETER)
grant("contacts.configure", Role.ADMIN, Role.MARKETER)  # tags, custom fields, channels
grant("contacts.segments", Role.ADMIN, Role.MARKETER, Role.SDR, Role.SALES_MANAGER)
grant("contacts.segments.edit", Role.ADMIN, Role.MARKETER)

register_nav(NavItem(Surface.CONSOLE, _("Contacts"), "contacts:list", "contacts.view", 10))
register_nav(NavItem(Surface.CONSOLE, _("Segments"), "contacts:segments", "contacts.segments", 15))
register_nav(NavItem(Surface.CONSOLE, _("Imports"), "contacts:imports", "contacts.import", 20))
register_nav(NavItem(Surface.CONSOLE, _("Exports"), "contacts:exports", "contacts.export", 30))
register_nav(NavItem(Surface.CONSOLE, _("Tags"), "contacts:tags", "contacts.configure", 40))
register_nav(
    NavItem(Surface.CONSOLE, _("Custom fields"), "contacts:fields", "contacts.configure", 50)
)
register_nav(
    NavItem(
        Surface.CONSOLE, _("Channels & campaigns"), "contacts:channels", "contacts.configure", 60
    )
)
register_nav(
    NavItem(Surface.CONSOLE, _("Tracked sites"), "contacts:sites", "contacts.configure", 70)
)
