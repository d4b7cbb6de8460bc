"""Working time: the Chinese statutory calendar (holidays, make-up working days) from the
``CalendarDay`` table, plus a unit's working hours.

SLA clocks run only in working time: ``add_working_hours`` moves forward through working
hours of working days; ``add_working_days`` lands on the same clock time N working days
later. Days of a year with no calendar data count by weekday (Monday–Friday) and
``years_without_data`` lets pages warn about it; nothing here raises for a future year.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models.signals import post_delete, post_save

DEFAULT_START = dt.time(9, 0)
DEFAULT_END = dt.time(18, 0)
_MAX_DAYS = 3660  # ten years of searching is a misconfiguration, not a due date


@dataclass(frozen=True)
class WorkingHours:
    start: dt.time = DEFAULT_START
    end: dt.time = DEFAULT_END
    time_zone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("working hours must end after they start")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


# The calendar is small (a few hundred rows): each process keeps it for RELOAD_SECONDS,
# so an edit in the admin reaches the workers within minutes (at once in the process that
# saved it).
RELOAD_SECONDS = 300
_cache: dict[str, Any] = {}


def _exceptions() -> tuple[dict[dt.date, bool], frozenset[int]]:
    from apps.core.models import CalendarDay

    loaded = _cache.get("at")
    if loaded is None or time.monotonic() - loaded > RELOAD_SECONDS:
        days = dict(CalendarDay.objects.values_list("date", "is_workday"))
        _cache.update(days=days, years=frozenset(d.year for d in days), at=time.monotonic())
    return _cache["days"], _cache["years"]


def forget_calendar(**_kwargs: object) -> None:
    """Drop the cached calendar (edits in the admin and tests call this)."""
    _cache.clear()


def _connect() -> None:
    from apps.core.models import CalendarDay

    post_save.connect(forget_calendar, sender=CalendarDay, dispatch_uid="calendar-save")
    post_delete.connect(forget_calendar, sender=CalendarDay, dispatch_uid="calendar-delete")


def is_workday(day: dt.date) -> bool:
    days, _years = _exceptions()
    if day in days:
        return days[day]
    return day.weekday() < 5


def years_without_data(years: Iterable[int]) -> list[int]:
    """Which of ``years`` the calendar knows nothing about (holidays would be missed)."""
    _days, known = _exceptions()
    return sorted({y for y in years if y not in known})


def _bounds(day: dt.date, hours: WorkingHours) -> tuple[dt.datetime, dt.datetime]:
    tz = hours.tz
    return (
        dt.datetime.combine(day, hours.start, tzinfo=tz),
        dt.datetime.combine(day, hours.end, tzinfo=tz),
    )


def add_working_hours(start: dt.datetime, hours_: float, hours: WorkingHours) -> dt.datetime:
    """The moment ``hours_`` working hours after ``start`` (an aware datetime)."""
    remaining = dt.timedelta(hours=hours_)
    local = start.astimezone(hours.tz)
    day = local.date()
    for _ in range(_MAX_DAYS):
        if is_workday(day):
            opens, closes = _bounds(day, hours)
            begin = max(local, opens)
            if begin < closes:
                available = closes - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
        day += dt.timedelta(days=1)
        local = dt.datetime.combine(day, dt.time(0), tzinfo=hours.tz)
    raise ValueError("no working time found within ten years")


def next_working_moment(moment: dt.datetime, hours: WorkingHours) -> dt.datetime:
    """``moment`` if it falls in working time, else the next opening."""
    local = moment.astimezone(hours.tz)
    day = local.date()
    for _ in range(_MAX_DAYS):
        if is_workday(day):
            opens, closes = _bounds(day, hours)
            if local < closes:
                return max(local, opens)
        day += dt.timedelta(days=1)
        local = dt.datetime.combine(day, dt.time(0), tzinfo=hours.tz)
    raise ValueError("no working time found within ten years")


def add_working_days(start: dt.datetime, days: int, hours: WorkingHours) -> dt.datetime:
    """``days`` working days after ``start``: the same working-clock position that many
    working days on (a start outside working hours counts from the next opening)."""
    begin = next_working_moment(start, hours)
    day = begin.date()
    left = days
    for _ in range(_MAX_DAYS):
        if left == 0:
            return dt.datetime.combine(day, begin.timetz().replace(tzinfo=None), tzinfo=hours.tz)
        day += dt.timedelta(days=1)
        if is_workday(day):
            left -= 1
    raise ValueError("no working time found within ten years")


def working_seconds_between(start: dt.datetime, end: dt.datetime, hours: WorkingHours) -> float:
    """Working time between two moments, in seconds (0 when ``end`` is not after ``start``)."""
    if end <= start:
        return 0.0
    total = 0.0
    day = start.astimezone(hours.tz).date()
    last = end.astimezone(hours.tz).date()
    while day <= last:
        if is_workday(day):
            opens, closes = _bounds(day, hours)
            lo, hi = max(opens, start), min(closes, end)
            if hi > lo:
                total += (hi - lo).total_seconds()
        day += dt.timedelta(days=1)
    return total


def statutory_rows() -> list[tuple[dt.date, bool, str]]:
    """Every exception day the ``chinesecalendar`` package knows (for seeding)."""
    from chinese_calendar import constants

    rows: list[tuple[dt.date, bool, str]] = []
    for day, holiday in constants.holidays.items():
        if day.weekday() < 5:
            rows.append((day, False, str(holiday or "")))
    for day, holiday in constants.workdays.items():
        rows.append((day, True, str(holiday or "")))
    return sorted(rows)


# --- Reading the calendar for pages (it is one for every unit: nothing to scope) -------------


def calendar_years() -> list[dict[str, int]]:
    """Per year, newest first: how many holidays and make-up working days are known."""
    from django.db.models import Count, Q
    from django.db.models.functions import ExtractYear

    from apps.core.models import CalendarDay

    return list(
        CalendarDay.objects.annotate(year=ExtractYear("date"))
        .values("year")
        .annotate(
            holidays=Count("id", filter=Q(is_workday=False)),
            makeup=Count("id", filter=Q(is_workday=True)),
        )
        .order_by("-year")
    )


def calendar_days_from(year: int, limit: int = 60) -> list[Any]:
    """The exception days from ``year`` on, in date order."""
    from apps.core.models import CalendarDay

    return list(CalendarDay.objects.filter(date__year__gte=year).order_by("date")[:limit])


def seed_statutory(model: Any) -> int:
    """Add the package's exception days the table does not have yet (the data migration
    passes its historical model; tests on a flushed database pass the real one)."""
    known = set(model.objects.values_list("date", flat=True))
    rows = [
        model(date=day, is_workday=workday, name=name, source="chinesecalendar")
        for day, workday, name in statutory_rows()
        if day not in known
    ]
    model.objects.bulk_create(rows)
    return len(rows)
