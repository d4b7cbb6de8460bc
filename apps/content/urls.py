"""Console URLs for content (``/console/…``): each views module brings ``urlpatterns``."""

from apps.content.areas import area_modules

app_name = "content"

urlpatterns: list = []
for _module in area_modules("apps.content.views"):
    urlpatterns += _module.urlpatterns
