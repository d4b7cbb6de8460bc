"""API URLs for contacts: each api module registers its viewsets on the shared router."""

import importlib

from rest_framework.routers import DefaultRouter

router = DefaultRouter(trailing_slash=True)
urlpatterns: list = []
for _name in (
    "contacts",
    "imports",
    "exports",
    "tags",
    "fields",
    "channels",
    "collector",
    "segments",
):
    try:
        _module = importlib.import_module(f"apps.contacts.api.{_name}")
    except ModuleNotFoundError as _exc:  # an area not built yet
        if _exc.name != f"apps.contacts.api.{_name}":
            raise
        continue
    _module.register(router)
    urlpatterns += getattr(_module, "urlpatterns", [])
urlpatterns += router.urls
