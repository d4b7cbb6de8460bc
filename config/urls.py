from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

admin.site.site_header = "LeadLoop"
admin.site.site_title = _("LeadLoop admin")
admin.site.index_title = _("Administration")

api_v1 = [
    path("", include("apps.core.api_urls")),
    path("", include("apps.contacts.api_urls")),
    path("", include("apps.content.api_urls")),
    path("", include("apps.nurture.api_urls")),
    path("", include("apps.sales.api_urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("console/", include("apps.contacts.urls")),
    path("", include("apps.content.urls")),
    path("console/", include("apps.nurture.urls")),
    path("", include("apps.sales.urls")),
    path("", include("apps.contacts.public_urls")),
    path("", include("apps.content.public_urls")),
    path("", include("apps.core.urls")),
]

handler404 = "apps.core.views.not_found"
handler500 = "apps.core.views.server_error"

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
