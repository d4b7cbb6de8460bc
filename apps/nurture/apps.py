from django.apps import AppConfig


class NurtureConfig(AppConfig):
    name = "apps.nurture"
    label = "nurture"
    default_auto_field = "django.db.models.BigAutoField"
