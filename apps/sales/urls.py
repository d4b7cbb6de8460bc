"""Sales pages: the lead queue (``/sdr/…``), the phone (``/m/…``) and the console
(``/console/…``). Each views module brings its own ``urlpatterns`` with full paths."""

from apps.sales.areas import area_modules

app_name = "sales"

urlpatterns: list = []
for _module in area_modules("apps.sales.views"):
    urlpatterns += _module.urlpatterns
