from django.apps import AppConfig


class AbmConfig(AppConfig):
    name = "apps.abm"
    label = "abm"
    default_auto_field = "django.db.models.BigAutoField"
