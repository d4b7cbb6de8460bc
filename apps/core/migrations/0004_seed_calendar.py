"""Seed the holiday calendar from the chinesecalendar package (2004–2026)."""

from django.db import migrations


def seed(apps, schema_editor):
    from apps.core.workcalendar import seed_statutory

    seed_statutory(apps.get_model("core", "CalendarDay"))


def unseed(apps, schema_editor):
    apps.get_model("core", "CalendarDay").objects.filter(source="chinesecalendar").delete()


class Migration(migrations.Migration):
    dependencies = [("core", "0003_calendarday")]
    operations = [migrations.RunPython(seed, unseed)]
