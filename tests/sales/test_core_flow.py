"""The heart of the lead lifecycle: the transition table, the working-time SLA clock and
the sweep, on the real database."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from apps.contacts.models import Contact, Identity
from apps.sales.models import Lead, LeadHistory, SlaMiss, Stage
from apps.sales.services import leads as services
from apps.sales.services import sla

SH = ZoneInfo("Asia/Shanghai")


def _contact(world, name="王磊", company="华东生物"):
    contact = Contact.objects.create(group=world.group, name=name, company_name=company)
    Identity.objects.create(
        group=world.group, contact=contact, kind="email", value=f"{contact.pk}@example.cn"
    )
    return contact


@pytest.mark.django_db
def test_mil_cannot_skip_to_sql_and_each_step_records_who_and_why(world):
    # Given an identified lead
    result = services.lead_open(
        contact=_contact(world), unit=world.a, source="manual", actor=world.sdr
    )
    lead = result.lead
    assert (result.outcome, lead.stage) == ("opened", Stage.MIL)
    # When the SDR tries to jump to SQL
    with pytest.raises(ValidationError) as refused:
        services.lead_move(lead=lead, to_stage=Stage.SQL, actor=world.sdr)
    # Then it is refused with the legal moves named, and nothing changed
    assert "cannot move from MIL" in str(refused.value)
    lead.refresh_from_db()
    assert lead.stage == Stage.MIL
    assert LeadHistory.objects.filter(lead=lead, kind="stage").count() == 1
    # When BANT is complete and the SDR qualifies it
    services.lead_update(
        lead=lead,
        data={"authority": "decision_maker", "need": "单细胞测序", "timeline": "3m"},
        actor=world.sdr,
    )
    services.lead_qualify(lead=lead, actor=world.sdr, reason="BANT ok")
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    step = LeadHistory.objects.filter(lead=lead, kind="stage").order_by("-id").first()
    assert (step.from_value, step.to_value, step.actor, step.reason) == (
        "mil",
        "mql",
        world.sdr,
        "BANT ok",
    )


@pytest.mark.django_db
def test_accept_by_over_national_day_uses_the_makeup_working_day(world):
    # Given an MQL handed to sales at 17:00 on 2026-09-30, the last working day before
    # National Day (Oct 1-7 off, Sat Oct 10 a make-up working day), hours 9:00-18:00
    contact = _contact(world)
    handed = dt.datetime(2026, 9, 30, 17, 0, tzinfo=SH)
    lead = services.lead_open(
        contact=contact, unit=world.a, source="manual", stage="mql", now=handed
    ).lead
    # When it is handed to a salesperson
    services.lead_handoff(lead=lead, actor=world.sdr, owner=world.sales, now=handed)
    lead.refresh_from_db()
    # Then 24 working hours: 1 h on Sep 30, 9 h Oct 8, 9 h Oct 9, 5 h on Sat Oct 10
    assert lead.sla_clock == "accept"
    assert lead.sla_due_at == dt.datetime(2026, 10, 10, 14, 0, tzinfo=SH)


@pytest.mark.django_db
def test_sweep_recycles_a_lead_without_follow_up_once(world):
    # Given an accepted lead whose 48 h follow-up clock ran out
    start = dt.datetime(2026, 11, 2, 10, 0, tzinfo=SH)
    lead = services.lead_open(
        contact=_contact(world), unit=world.a, source="manual", stage="mql", now=start
    ).lead
    services.lead_handoff(lead=lead, actor=world.sdr, owner=world.sales, now=start)
    services.lead_accept(lead=lead, actor=world.sales, now=start)
    lead.refresh_from_db()
    assert lead.sla_clock == "follow_up"
    assert lead.sla_due_at == start + dt.timedelta(hours=48)
    later = start + dt.timedelta(hours=49)
    # When the sweep runs twice
    first = sla.sla_sweep(now=later)
    second = sla.sla_sweep(now=later)
    # Then the lead is recycled once, with one miss on the salesperson
    lead.refresh_from_db()
    assert (first.recycled, second.recycled) == (1, 0)
    assert (lead.stage, lead.owner_id, lead.sla_clock) == (Stage.RECYCLED, None, "")
    assert list(SlaMiss.objects.values_list("user_id", "clock")) == [(world.sales.pk, "follow_up")]
    assert Lead.objects.count() == 1


@pytest.mark.django_db
def test_sweep_writes_history_alerts_per_preference_and_signed_webhooks(world):
    from apps.core.models import Notification
    from apps.sales.models import AlertDelivery, AlertSettings, WebhookDelivery, WebhookEndpoint

    # Given an accepted lead of the SDR and the salesperson, whose follow-up clock ran out;
    # the salesperson wants recycles by email only, and the unit has a webhook
    start = dt.datetime(2026, 11, 2, 10, 0, tzinfo=SH)
    WebhookEndpoint.objects.create(
        unit=world.a,
        name="CRM",
        url="https://crm.example.cn/h",
        secret="s3cret",
        events=["lead.stage_changed"],
    )
    AlertSettings.objects.create(
        user=world.sales, channels={"lead_recycled": ["email"], "sla_breached": ["in_app"]}
    )
    lead = services.lead_open(
        contact=_contact(world, name="周芷若"),
        unit=world.a,
        source="manual",
        stage="mql",
        sdr=world.sdr,
        now=start,
    ).lead
    services.lead_handoff(lead=lead, actor=world.sdr, owner=world.sales, now=start)
    services.lead_accept(lead=lead, actor=world.sales, now=start)
    WebhookDelivery.objects.all().delete()
    # When the sweep runs after the 48 h
    sla.sla_sweep(now=start + dt.timedelta(hours=50))
    # Then the history names the miss and the recycle
    rows = list(
        LeadHistory.objects.filter(lead=lead, actor_label="SLA")
        .order_by("id")
        .values_list("kind", "from_value", "to_value", "reason")
    )
    assert rows == [
        (
            "stage",
            "sal",
            "recycled",
            "Recycled: no follow-up in time · Follow-up was due 2026-11-04 10:00",
        ),
    ]
    # and each person is told once, per their choice: the SDR in the app, the
    # salesperson (who chose email for recycles) by email
    notices = sorted(
        Notification.objects.filter(kind__in=["sla_breached", "lead_recycled"]).values_list(
            "user__username", "kind", "title", "url"
        )
    )
    assert notices == [
        ("a-sdr", "lead_recycled", "Lead recycled: 周芷若", f"/sdr/leads/{lead.pk}/"),
    ]
    assert list(AlertDelivery.objects.values_list("user__username", "channel", "kind")) == [
        ("a-sales", "email", "lead_recycled")
    ]
    # and the CRM gets one stage-change event for the lead
    hook = WebhookDelivery.objects.get()
    assert (hook.event, hook.payload["data"]["from"], hook.payload["data"]["to"]) == (
        "lead.stage_changed",
        "sal",
        "recycled",
    )
    assert hook.payload["data"]["lead"]["id"] == lead.pk
