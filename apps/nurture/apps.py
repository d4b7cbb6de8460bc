from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NurtureConfig(AppConfig):
    name = "apps.nurture"
    label = "nurture"
    verbose_name = _("Nurture")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registrations into lower apps' registries: nav and permissions, the contact 360
        # panel, demo data, audit labels.
        from apps.nurture import contact_hooks, demo, navigation  # noqa: F401
        from apps.nurture.services import config  # noqa: F401  (audit action labels)
