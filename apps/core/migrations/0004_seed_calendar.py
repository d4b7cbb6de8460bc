"""Seed the holiday calendar from the chinesecalendar package (2004–2026)."""

from django.db import migrations


def seed(apps, schema_editor):
    from apps.core.workcalendar import statutory_rows

    CalendarDay = apps.get_model("core", "CalendarDay")
    known = set(CalendarDay.objects.values_list("date", flat=True))
    CalendarDay.objects.bulk_create(
        [
            CalendarDay(date=day, is_workday=workday, name=name, source="chinesecalendar")
            for day, workday, name in statutory_rows()
            if day not in known
        ]
    )


def unseed(apps, schema_editor):
    apps.get_model("core", "CalendarDay").objects.filter(source="chinesecalendar").delete()


class Migration(migrations.Migration):
    dependencies = [("core", "0003_calendarday")]
    operations = [migrations.RunPython(seed, unseed)]
