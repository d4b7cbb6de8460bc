from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SalesConfig(AppConfig):
    name = "apps.sales"
    label = "sales"
    verbose_name = _("Sales")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registrations into lower apps' registries: permissions and navigation, the
        # score-band hook (hot contacts become leads), contact panels, demo data.
        import importlib

        from apps.nurture.hooks import register_score_band_hook
        from apps.sales import navigation, rule_conditions  # noqa: F401
        from apps.sales.services import scores

        register_score_band_hook("sales.leads", scores.score_band_hook)
        from apps.content.hooks import register_submission_hook
        from apps.sales.services import intake

        register_submission_hook("sales.leads", intake.leads_from_submissions)
        from apps.contacts.hooks import register_import_hook

        register_import_hook("sales.leads", intake.import_hook)
        rule_conditions.register()
        for module in ("contact_hooks", "demo", "home_cards"):
            try:
                importlib.import_module(f"apps.sales.{module}")
            except ModuleNotFoundError as exc:  # not built yet
                if exc.name != f"apps.sales.{module}":
                    raise
