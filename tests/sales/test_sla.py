"""SLA clocks over the statutory calendar (fixed 2026 dates) and what the sweep does when
one runs out: warn once, hand an unaccepted MQL back to the SDR, record a first-touch miss
once."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from apps.contacts.models import Contact, Identity
from apps.core.models import CalendarDay, Notification
from apps.core.workcalendar import forget_calendar, years_without_data
from apps.sales.models import DurationUnit, LeadHistory, SlaMiss, SlaPolicy, Stage
from apps.sales.services import leads as services
from apps.sales.services import sla
from apps.sales.services.stages import policy_for

SH = ZoneInfo("Asia/Shanghai")


def _contact(world, name="王磊", company="华东生物"):
    contact = Contact.objects.create(group=world.group, name=name, company_name=company)
    Identity.objects.create(
        group=world.group, contact=contact, kind="email", value=f"{contact.pk}@example.cn"
    )
    return contact


def _accepted(world, at):
    lead = services.lead_open(
        contact=_contact(world), unit=world.a, source="manual", stage="mql", sdr=world.sdr, now=at
    ).lead
    services.lead_handoff(lead=lead, actor=world.sdr, owner=world.sales, now=at)
    services.lead_accept(lead=lead, actor=world.sales, now=at)
    lead.refresh_from_db()
    return lead


# --- Due times ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_24_working_hours_from_the_eve_of_national_day_end_on_the_makeup_saturday(world):
    # Given a 9:00-18:00 policy and 17:00 on Wed 2026-09-30 (Oct 1-7 off, Sat Oct 10 worked)
    policy = SlaPolicy(unit=world.a)
    start = dt.datetime(2026, 9, 30, 17, 0, tzinfo=SH)
    # When 24 working hours are added
    due = sla.due_after(start, 24, DurationUnit.WORKING_HOURS, policy)
    # Then 1 h on Sep 30, 9 h Oct 8, 9 h Oct 9, 5 h on the make-up Saturday Oct 10
    assert due == dt.datetime(2026, 10, 10, 14, 0, tzinfo=SH)


@pytest.mark.django_db
def test_round_the_clock_hours_ignore_the_calendar(world):
    policy = SlaPolicy(unit=world.a)
    start = dt.datetime(2026, 9, 30, 17, 0, tzinfo=SH)
    assert sla.due_after(start, 48, DurationUnit.HOURS, policy) == dt.datetime(
        2026, 10, 2, 17, 0, tzinfo=SH
    )


@pytest.mark.django_db
def test_sql_decision_counts_ten_working_days_over_spring_festival(world):
    # Given a lead accepted at 10:00 on Fri 2026-02-13; Spring Festival: Sat Feb 14 worked,
    # Feb 15-23 off, Sat Feb 28 worked
    accepted = dt.datetime(2026, 2, 13, 10, 0, tzinfo=SH)
    lead = _accepted(world, accepted)
    # When its clocks are computed
    clocks = sla.clocks_for(lead, policy_for(world.a.pk), accepted)
    # Then the SQL decision is due 10 working days on: Feb 14, 24-28, Mar 2-5 → Mar 5 10:00
    assert clocks["sql_decision"] == dt.datetime(2026, 3, 5, 10, 0, tzinfo=SH)
    # and the 48 h follow-up clock (round the clock) runs first
    assert clocks["follow_up"] == dt.datetime(2026, 2, 15, 10, 0, tzinfo=SH)
    assert (lead.sla_clock, lead.sla_due_at) == ("follow_up", clocks["follow_up"])


@pytest.mark.django_db
def test_first_touch_four_working_hours_from_friday_afternoon_lands_on_monday(world):
    # Given a lead assigned to an SDR at 16:00 on Fri 2026-11-06
    assigned = dt.datetime(2026, 11, 6, 16, 0, tzinfo=SH)
    # When it opens
    lead = services.lead_open(
        contact=_contact(world), unit=world.a, source="form", sdr=world.sdr, now=assigned
    ).lead
    lead.refresh_from_db()
    # Then the first touch is due after 2 h on Friday and 2 h on Monday: Mon 11:00
    assert lead.stage == Stage.MIL
    assert lead.sla_clock == "first_touch"
    assert lead.sla_due_at == dt.datetime(2026, 11, 9, 11, 0, tzinfo=SH)
    # and from 17:00 it would be Monday 12:00
    later = dt.datetime(2026, 11, 6, 17, 0, tzinfo=SH)
    assert sla.due_after(later, 4, DurationUnit.WORKING_HOURS, SlaPolicy(unit=world.a)) == (
        dt.datetime(2026, 11, 9, 12, 0, tzinfo=SH)
    )


@pytest.mark.django_db
def test_a_year_without_calendar_data_counts_weekdays_until_its_days_are_added(world):
    # Given no calendar rows for 2027
    CalendarDay.objects.filter(date__year=2027).delete()
    forget_calendar()
    assert years_without_data([2026, 2027]) == [2027]
    policy = SlaPolicy(unit=world.a)
    start = dt.datetime(2026, 12, 31, 17, 0, tzinfo=SH)
    # When 4 working hours run from 17:00 on Thu 2026-12-31
    # Then Fri 2027-01-01 counts as a plain Friday: 1 h + 3 h → Jan 1 12:00, no error
    assert sla.due_after(start, 4, DurationUnit.WORKING_HOURS, policy) == dt.datetime(
        2027, 1, 1, 12, 0, tzinfo=SH
    )
    assert sla.due_after(start, 2, DurationUnit.WORKING_DAYS, policy) == dt.datetime(
        2027, 1, 4, 17, 0, tzinfo=SH
    )
    # When an administrator adds New Year's Day 2027 and the calendar is re-read
    CalendarDay.objects.create(date=dt.date(2027, 1, 1), is_workday=False, name="元旦")
    forget_calendar()
    # Then it is honoured: the clock skips to Monday Jan 4
    assert years_without_data([2027]) == []
    assert sla.due_after(start, 4, DurationUnit.WORKING_HOURS, policy) == dt.datetime(
        2027, 1, 4, 12, 0, tzinfo=SH
    )
    assert sla.due_after(start, 2, DurationUnit.WORKING_DAYS, policy) == dt.datetime(
        2027, 1, 5, 17, 0, tzinfo=SH
    )


# --- The sweep ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_warning_goes_out_once_before_the_clock_runs_out(world):
    # Given an accepted lead: follow-up due 48 h on, warning 120 min before
    start = dt.datetime(2026, 11, 2, 10, 0, tzinfo=SH)
    lead = _accepted(world, start)
    assert lead.sla_warn_at == start + dt.timedelta(hours=46)
    # When the warning sweep runs before, at and twice after the warning time
    assert sla.sla_warn_sweep(now=start + dt.timedelta(hours=45)) == 0
    first = sla.sla_warn_sweep(now=start + dt.timedelta(hours=46, minutes=1))
    again = sla.sla_sweep(now=start + dt.timedelta(hours=47))
    # Then one warning reached the salesperson, and nothing was missed yet
    assert (first, again.warned, again.missed) == (1, 0, 0)
    warnings = Notification.objects.filter(kind="sla_warning")
    assert list(warnings.values_list("user_id", flat=True)) == [world.sales.pk]
    lead.refresh_from_db()
    assert (lead.sla_warn_at, lead.sla_clock) == (None, "follow_up")


@pytest.mark.django_db
def test_an_mql_not_accepted_in_time_goes_back_to_the_sdr_queue(world):
    # Given an MQL handed to sales at 10:00 on Mon 2026-11-02: accept by Wed 16:00
    handed = dt.datetime(2026, 11, 2, 10, 0, tzinfo=SH)
    lead = services.lead_open(
        contact=_contact(world),
        unit=world.a,
        source="manual",
        stage="mql",
        sdr=world.sdr,
        now=handed,
    ).lead
    services.lead_handoff(lead=lead, actor=world.sdr, owner=world.sales, now=handed)
    lead.refresh_from_db()
    due = dt.datetime(2026, 11, 4, 16, 0, tzinfo=SH)
    assert (lead.sla_clock, lead.sla_due_at) == ("accept", due)
    # When the sweep runs a minute after, and again later
    first = sla.sla_sweep(now=due + dt.timedelta(minutes=1))
    second = sla.sla_sweep(now=due + dt.timedelta(hours=1))
    # Then it is back with its SDR, no owner, still MQL; one miss on the salesperson
    assert (first.returned, first.missed, second.missed) == (1, 1, 0)
    lead.refresh_from_db()
    assert (lead.stage, lead.owner_id, lead.sdr_id, lead.handed_at) == (
        Stage.MQL,
        None,
        world.sdr.pk,
        None,
    )
    assert (lead.sla_clock, lead.sla_due_at) == ("", None)
    assert list(SlaMiss.objects.values_list("user_id", "clock", "due_at")) == [
        (world.sales.pk, "accept", due)
    ]
    owner_change = LeadHistory.objects.filter(lead=lead, kind="owner").order_by("-id").first()
    assert (owner_change.from_value, owner_change.to_value, owner_change.actor_label) == (
        str(world.sales.pk),
        "",
        "SLA",
    )
    assert Notification.objects.filter(kind="sla_breached", user=world.sales).count() == 1


@pytest.mark.django_db
def test_a_missed_first_touch_is_recorded_once_however_often_the_sweep_runs(world):
    # Given a lead assigned to the SDR at 10:00 on Mon 2026-11-02: first touch by 14:00
    assigned = dt.datetime(2026, 11, 2, 10, 0, tzinfo=SH)
    lead = services.lead_open(
        contact=_contact(world), unit=world.a, source="form", sdr=world.sdr, now=assigned
    ).lead
    due = dt.datetime(2026, 11, 2, 14, 0, tzinfo=SH)
    lead.refresh_from_db()
    assert (lead.sla_clock, lead.sla_due_at) == ("first_touch", due)
    # When the sweep runs every few minutes for a day
    missed = [
        sla.sla_sweep(now=due + dt.timedelta(minutes=m)).missed for m in (1, 2, 3, 60, 24 * 60)
    ]
    # Then one miss, on the SDR; the lead stays with them, its clock off
    assert missed == [1, 0, 0, 0, 0]
    assert list(SlaMiss.objects.values_list("user_id", "clock")) == [(world.sdr.pk, "first_touch")]
    assert LeadHistory.objects.filter(lead=lead, kind="sla").count() == 1
    lead.refresh_from_db()
    assert (lead.stage, lead.sdr_id, lead.sla_clock) == (Stage.MIL, world.sdr.pk, "")


@pytest.mark.django_db
def test_a_unit_that_recycles_to_the_sdr_gets_the_lead_back_in_the_sdr_queue(world):
    # Given a unit whose policy sends unattended leads back to the SDR, and an accepted lead
    policy = policy_for(world.a.pk)
    policy.recycle_to_sdr = True
    policy.save()
    start = dt.datetime(2026, 11, 2, 10, 0, tzinfo=SH)
    lead = _accepted(world, start)
    # When its 48 h follow-up clock runs out and the sweep runs twice
    first = sla.sla_sweep(now=start + dt.timedelta(hours=49))
    second = sla.sla_sweep(now=start + dt.timedelta(hours=50))
    # Then it is back at MIL with its SDR, no owner; one miss, one stage row, each told once
    assert (first.recycled, second.recycled) == (1, 0)
    lead.refresh_from_db()
    assert (lead.stage, lead.sdr_id, lead.owner_id, lead.handed_at, lead.accepted_at) == (
        Stage.MIL,
        world.sdr.pk,
        None,
        None,
        None,
    )
    assert list(SlaMiss.objects.values_list("user_id", "clock")) == [(world.sales.pk, "follow_up")]
    moves = LeadHistory.objects.filter(lead=lead, kind="stage", actor_label="SLA")
    assert list(moves.values_list("from_value", "to_value")) == [("sal", "mil")]
    told = Notification.objects.filter(kind="lead_recycled").values_list("user_id", flat=True)
    assert sorted(told) == sorted([world.sdr.pk, world.sales.pk])
