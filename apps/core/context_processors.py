from __future__ import annotations

from functools import cache
from typing import Any

from django.http import HttpRequest

from apps.core import selectors
from apps.core.models import Notification
from apps.core.roles import Surface

SURFACE_URLS = {
    Surface.CONSOLE: "core:console-home",
    Surface.SDR: "core:sdr-home",
    Surface.MOBILE: "core:mobile-home",
}


def shell(request: HttpRequest) -> dict[str, Any]:
    """What the shell (top bar, switchers) needs on every page. Lazy: costs nothing when unused."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def surfaces() -> list[dict[str, Any]]:
        from django.urls import reverse

        return [
            {"key": s, "label": Surface(s).label, "url": reverse(SURFACE_URLS[Surface(s)])}
            for s in selectors.user_surfaces(user=user)
        ]

    def units() -> list[Any]:
        return selectors.unit_choices(user=user)

    @cache
    def unread() -> int:
        # The bell: one COUNT served by the partial index of unread notifications.
        return Notification.objects.visible_to(user).unread().count()

    return {
        "shell_surfaces": surfaces,
        "shell_units": units,
        "shell_unit": request.session.get("unit"),
        "notifications_unread": unread,
    }
