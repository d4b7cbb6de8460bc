from django.urls import path
from rest_framework.routers import DefaultRouter

from apps.core import api

router = DefaultRouter(trailing_slash=True)
router.register("business-units", api.BusinessUnitViewSet, basename="business-unit")
router.register("audit-log", api.AuditLogViewSet, basename="audit-log")
router.register("tokens", api.ApiTokenViewSet, basename="api-token")
router.register("notifications", api.NotificationViewSet, basename="notification")

urlpatterns = [
    path("me/", api.MeView.as_view(), name="me"),
    *router.urls,
]
