from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ContentConfig(AppConfig):
    name = "apps.content"
    label = "content"
    verbose_name = _("Content")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registrations into core's registries: nav, permissions, home cards, demo data,
        # audit labels, beat schedule. Each area brings its own modules.
        from apps.content import contact_hooks, navigation  # noqa: F401
        from apps.content.areas import area_modules

        area_modules("apps.content.demo")
        area_modules("apps.content.home_cards")
        area_modules("apps.content.tasks")
