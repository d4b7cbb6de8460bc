"""Content's permissions and navigation entries (registered from AppConfig.ready)."""

from django.utils.translation import gettext_lazy as _

from apps.core.navigation import NavItem, register_nav
from apps.core.roles import Role, Surface, grant

grant(
    "content.view",
    Role.ADMIN,
    Role.MARKETER,
    Role.SDR,
    Role.SALES,
    Role.SALES_MANAGER,
    Role.VIEWER,
)
# Build forms, landing pages and the content library.
grant("content.edit", Role.ADMIN, Role.MARKETER)
# Create personal share links (全员营销: everyone who talks to customers).
grant("content.share", Role.ADMIN, Role.MARKETER, Role.SDR, Role.SALES, Role.SALES_MANAGER)

register_nav(NavItem(Surface.CONSOLE, _("Content library"), "content:assets", "content.view", 80))
register_nav(NavItem(Surface.CONSOLE, _("Forms"), "content:forms", "content.view", 82))
register_nav(NavItem(Surface.CONSOLE, _("Landing pages"), "content:pages", "content.view", 84))
register_nav(NavItem(Surface.CONSOLE, _("Share links"), "content:shares", "content.share", 86))
register_nav(NavItem(Surface.SDR, _("Share content"), "content:sdr-shares", "content.share", 50))
register_nav(NavItem(Surface.MOBILE, _("Share"), "content:m-shares", "content.share", 50))
register_nav(
    NavItem(Surface.CONSOLE, _("WeChat accounts"), "content:wechat", "contacts.configure", 88)
)
