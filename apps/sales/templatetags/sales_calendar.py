"""``{% load sales_calendar %}{% calendar_warning %}``: the holiday-calendar banner for any
page (nothing when this and next year have data). Reads the cached calendar, so it costs
no query once the process has loaded it."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from apps.core.workcalendar import years_without_data

register = template.Library()


@register.inclusion_tag("sales/partials/_calendar_warning.html")
def calendar_warning() -> dict[str, Any]:
    year = timezone.localdate().year
    return {"missing_years": years_without_data([year, year + 1])}
