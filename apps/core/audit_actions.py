"""Human names for audit actions. Each app registers the actions its services record."""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

ACTION_LABELS: dict[str, str | Promise] = {}


def register_action(code: str, label: str | Promise) -> None:
    ACTION_LABELS[code] = label


def action_label(code: str) -> str | Promise:
    return ACTION_LABELS.get(code, code)


register_action("business_unit.create", _("Business unit created"))
register_action("business_unit.change", _("Business unit changed"))
register_action("membership.set", _("Role given"))
register_action("membership.remove", _("Role removed"))
register_action("api_token.create", _("API token created"))
register_action("api_token.revoke", _("API token revoked"))
