from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ContactsConfig(AppConfig):
    name = "apps.contacts"
    label = "contacts"
    verbose_name = _("Contacts")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registrations into core's registries: nav, permissions, home cards, demo data.
        from apps.contacts import demo, demo_segments, home_cards, navigation  # noqa: F401
        from apps.contacts.services import (  # noqa: F401  (their audit action labels)
            exports,
            retention,
            subject,
        )
