"""Console sales reports (``/console/reports/sales/``): funnel and conversion, SLA
compliance per person, SDR metrics and lead velocity, for the units picked in the unit
switcher and a period (this month, last month, the last 90 days or from–to).

Needs ``sales.reports`` in at least one unit; the reports read only those units.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from apps.core.models import BusinessUnit
from apps.core.roles import Surface
from apps.core.scoping import visible_unit_ids
from apps.core.web import page_units, surface_context, surfaces_required, user_of
from apps.sales.models import SlaClock
from apps.sales.selectors import reports as selectors


@surfaces_required(Surface.CONSOLE, Surface.SDR)
@require_GET
def sales_reports(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    visible = set(visible_unit_ids(user, selectors.PERMISSION))
    if not visible:
        return render(request, "core/forbidden.html", {"surface": _("Sales reports")}, status=403)
    narrowed = page_units(request, selectors.PERMISSION)
    unit_ids = visible if narrowed is None else visible & narrowed
    errors: dict[str, list[str]] = {}
    try:
        period = selectors.period_parse(
            key=request.GET.get("period", ""),
            date_from=request.GET.get("from", ""),
            date_to=request.GET.get("to", ""),
        )
    except ValidationError as exc:
        errors = exc.message_dict
        period = selectors.period_parse(key="this_month")
    units = list(
        BusinessUnit.objects.visible_to(user, selectors.PERMISSION)
        .filter(pk__in=unit_ids)
        .order_by("name")
        .values_list("name", flat=True)
    )
    context = surface_context(
        request,
        request.surface,  # type: ignore[attr-defined]
        period=period,
        period_key="custom" if errors else period.key,
        # Bad dates are shown back as typed; otherwise the period's own first and last day.
        date_from=request.GET.get("from", "") if errors else period.first_day.isoformat(),
        date_to=request.GET.get("to", "") if errors else period.last_day.isoformat(),
        errors=errors,
        unit_names=units,
        funnel=selectors.sales_funnel(unit_ids=unit_ids, period=period),
        sla_people=selectors.sla_by_person(
            selectors.sla_compliance(unit_ids=unit_ids, period=period)
        ),
        sla_clocks=[SlaClock(c).label for c in selectors.CLOCKS],
        sdr_rows=selectors.sdr_metrics(unit_ids=unit_ids, period=period),
        velocity=selectors.lead_velocity(unit_ids=unit_ids, period=period),
    )
    return render(request, "sales/reports/sales.html", context)


urlpatterns = [path("console/reports/sales/", sales_reports, name="reports")]
