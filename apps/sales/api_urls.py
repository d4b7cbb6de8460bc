"""API URLs for sales: each api module registers its viewsets on the shared router."""

from rest_framework.routers import DefaultRouter

from apps.sales.areas import area_modules

router = DefaultRouter(trailing_slash=True)
urlpatterns: list = []
for _module in area_modules("apps.sales.api"):
    _module.register(router)
    urlpatterns += getattr(_module, "urlpatterns", [])
urlpatterns += router.urls
