"""API URLs for nurture (scoring): ``/api/v1/scoring-models/…``, ``/api/v1/scoring-rules/…``
and ``/api/v1/contacts/{id}/scores/``."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from apps.nurture import api

router = DefaultRouter(trailing_slash=True)
api.register(router)
urlpatterns: list = [
    path("contacts/<int:pk>/scores/", api.ContactScoresView.as_view(), name="contact-scores"),
    *router.urls,
]
