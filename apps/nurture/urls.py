"""Console URLs for nurture (``/console/scoring/…``); the views module holds the list."""

from apps.nurture.views import urlpatterns

app_name = "nurture"

__all__ = ["app_name", "urlpatterns"]
