"""Console URLs for contacts: each views module contributes its own ``urlpatterns``."""

import importlib

app_name = "contacts"

urlpatterns: list = []
for _name in ("contacts", "imports", "exports", "tags", "fields", "channels", "sites", "segments"):
    try:
        _module = importlib.import_module(f"apps.contacts.views.{_name}")
    except ModuleNotFoundError as _exc:  # an area not built yet
        if _exc.name != f"apps.contacts.views.{_name}":
            raise
        continue
    urlpatterns += _module.urlpatterns
