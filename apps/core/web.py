"""What every app's pages share: who is asking, which surface, which units.

Views in any app use these, so a page cannot forget the surface check or the unit
switcher.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, cast

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import render

from apps.core import selectors
from apps.core.models import User
from apps.core.navigation import nav_for
from apps.core.roles import Surface
from apps.core.scoping import visible_unit_ids


def user_of(request: HttpRequest) -> User:
    """The signed-in user (views here are all behind login)."""
    return cast(User, request.user)


def surface_required(surface: str) -> Callable[..., Any]:
    """Log in, then allow only users whose roles open ``surface`` (others get 403)."""

    def decorator(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if surface not in selectors.user_surfaces(user=user_of(request)):  # type: ignore[arg-type]
                return render(
                    request,
                    "core/forbidden.html",
                    {"surface": Surface(surface).label},
                    status=403,
                )
            request.surface = surface  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def surfaces_required(
    *surfaces: str, permission: str | None = None, label: Any = None
) -> Callable[..., Any]:
    """Log in, then serve the page in the first of ``surfaces`` the user may open (a page
    for sales managers and marketers alike: the console for one, the lead queue for the
    other); 403 when none, or when ``permission`` is held in no unit."""

    def decorator(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            user = user_of(request)
            mine = selectors.user_surfaces(user=user)  # type: ignore[arg-type]
            surface = next((s for s in surfaces if s in mine), None)
            allowed = permission is None or user.is_superuser or visible_unit_ids(user, permission)
            if surface is None or not allowed:
                return render(
                    request,
                    "core/forbidden.html",
                    {"surface": label or Surface(surfaces[0]).label},
                    status=403,
                )
            request.surface = surface  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def page_units(request: HttpRequest, permission: str = "core.view_unit") -> set[int] | None:
    """Units the unit switcher narrows this page to; None when nothing is picked (the
    selectors' own scoping then shows every unit the user may see)."""
    if request.session.get("unit") is None:
        return None
    return selectors.scoped_units(
        user=user_of(request),
        selected=request.session.get("unit"),
        permission=permission,
    )


def surface_context(request: HttpRequest, surface: str, **extra: Any) -> dict[str, Any]:
    return {"surface": surface, "nav": nav_for(request, surface), **extra}
