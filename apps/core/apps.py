from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = _("Core")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.core import (
            home_cards,  # noqa: F401  (registers the core home cards)
            workcalendar,
        )

        workcalendar._connect()
