"""Sales' permissions and navigation entries (from AppConfig.ready)."""

from django.utils.translation import gettext_lazy as _

from apps.core.navigation import NavItem, register_nav
from apps.core.roles import Role, Surface, grant

# Reading leads. Salespeople see only their own (LeadQuerySet.visible_to).
grant(
    "sales.view",
    Role.ADMIN,
    Role.MARKETER,
    Role.SDR,
    Role.SALES,
    Role.SALES_MANAGER,
    Role.VIEWER,
)
# Working the queue: qualify, log calls, hand to sales, recycle, disqualify (and the group
# pool's hand-over to units for people with this role on the group).
grant("sales.work", Role.ADMIN, Role.SDR, Role.SALES_MANAGER)
# Selling: accept or reject MQLs, follow-ups, opportunities (on leads one owns).
grant("sales.sell", Role.ADMIN, Role.SALES, Role.SALES_MANAGER)
# Sales ops: SLA policy, assignment rules and teams, webhooks, the CRM link.
grant("sales.configure", Role.ADMIN, Role.SALES_MANAGER)
# Funnel, SLA and SDR reports.
grant("sales.reports", Role.ADMIN, Role.MARKETER, Role.SALES_MANAGER, Role.VIEWER)

register_nav(NavItem(Surface.SDR, _("My queue"), "sales:sdr-queue", "sales.work", 1))
register_nav(NavItem(Surface.SDR, _("Group pool"), "sales:sdr-pool", "sales.work", 5))
register_nav(NavItem(Surface.MOBILE, _("To accept"), "sales:m-inbox", "sales.sell", 1))
register_nav(NavItem(Surface.MOBILE, _("My leads"), "sales:m-leads", "sales.sell", 2))
register_nav(NavItem(Surface.MOBILE, _("Deals"), "sales:m-opportunities", "sales.sell", 3))
register_nav(NavItem(Surface.CONSOLE, _("Leads"), "sales:leads", "sales.view", 25))
register_nav(NavItem(Surface.CONSOLE, _("Sales reports"), "sales:reports", "sales.reports", 60))
register_nav(NavItem(Surface.CONSOLE, _("Sales setup"), "sales:setup", "sales.configure", 70))
register_nav(NavItem(Surface.SDR, _("Sales setup"), "sales:setup", "sales.configure", 70))
register_nav(NavItem(Surface.SDR, _("Alerts"), "sales:alert-settings", "sales.view", 80))
register_nav(NavItem(Surface.MOBILE, _("Alerts"), "sales:m-alert-settings", "sales.sell", 90))
register_nav(NavItem(Surface.CONSOLE, _("Webhooks"), "sales:webhooks", "sales.configure", 75))
register_nav(NavItem(Surface.SDR, _("Webhooks"), "sales:webhooks", "sales.configure", 75))
register_nav(NavItem(Surface.SDR, _("Sales reports"), "sales:reports", "sales.reports", 60))
