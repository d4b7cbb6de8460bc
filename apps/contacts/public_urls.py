"""Public, unauthenticated URLs of contacts (the tracker script)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
