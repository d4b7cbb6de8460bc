"""SDR credit for an SQL (seed 003): only if sales does not return it within 2 weeks of
the hand-off."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from apps.contacts.models import Contact, Identity
from apps.sales.models import CreditStatus, LeadHistory, Stage
from apps.sales.services import leads as services
from apps.sales.services import sla

SH = ZoneInfo("Asia/Shanghai")
HANDED = dt.datetime(2026, 11, 2, 10, 0, tzinfo=SH)


def _sql_lead(world, name):
    contact = Contact.objects.create(group=world.group, name=name, company_name="华东生物")
    Identity.objects.create(
        group=world.group, contact=contact, kind="email", value=f"{contact.pk}@example.cn"
    )
    lead = services.lead_open(
        contact=contact, unit=world.a, source="manual", stage="mql", sdr=world.sdr, now=HANDED
    ).lead
    services.lead_handoff(lead=lead, actor=world.sdr, owner=world.sales, now=HANDED)
    services.lead_accept(lead=lead, actor=world.sales, now=HANDED)
    services.lead_move(
        lead=lead, to_stage=Stage.SQL, actor=world.sales, now=HANDED + dt.timedelta(days=1)
    )
    lead.refresh_from_db()
    return lead


def _credit_history(lead):
    return list(
        LeadHistory.objects.filter(lead=lead, kind="credit").values_list("from_value", "to_value")
    )


@pytest.mark.django_db
def test_an_sql_becomes_pending_credit_for_two_weeks_after_handoff(world):
    lead = _sql_lead(world, "王磊")
    assert (lead.credit_status, lead.credit_sdr_id, lead.credit_due_at) == (
        CreditStatus.PENDING,
        world.sdr.pk,
        HANDED + dt.timedelta(days=14),
    )


@pytest.mark.django_db
def test_an_sql_returned_10_days_after_handoff_gives_the_sdr_no_credit(world):
    # Given an SQL handed over on Nov 2
    lead = _sql_lead(world, "王磊")
    # When sales returns it to the SDR 10 days after the hand-off
    services.lead_move(
        lead=lead,
        to_stage=Stage.MIL,
        actor=world.sales,
        reason="预算冻结",
        now=HANDED + dt.timedelta(days=10),
    )
    # Then the credit is revoked, and the credit sweep later does not bring it back
    lead.refresh_from_db()
    assert (lead.stage, lead.owner_id, lead.credit_status) == (
        Stage.MIL,
        None,
        CreditStatus.REVOKED,
    )
    assert sla.credit_sweep(now=HANDED + dt.timedelta(days=20)) == 0
    lead.refresh_from_db()
    assert lead.credit_status == CreditStatus.REVOKED
    assert _credit_history(lead) == [("pending", "revoked")]


@pytest.mark.django_db
def test_an_sql_returned_15_days_after_handoff_stays_credited(world):
    # Given an SQL handed over on Nov 2
    lead = _sql_lead(world, "李娜")
    # When sales returns it 15 days after the hand-off (past the 14-day window)
    services.lead_move(
        lead=lead,
        to_stage=Stage.MIL,
        actor=world.sales,
        reason="客户换了负责人",
        now=HANDED + dt.timedelta(days=15),
    )
    # Then the SDR keeps the credit
    lead.refresh_from_db()
    assert (lead.stage, lead.credit_status, lead.credit_sdr_id) == (
        Stage.MIL,
        CreditStatus.CREDITED,
        world.sdr.pk,
    )
    assert _credit_history(lead) == [("pending", "credited")]


@pytest.mark.django_db
def test_the_credit_sweep_credits_sqls_kept_past_the_window_once(world):
    # Given two SQLs still with sales
    kept, other = _sql_lead(world, "王磊"), _sql_lead(world, "李娜")
    # When the sweep runs inside the window, then after it, then again
    inside = sla.credit_sweep(now=HANDED + dt.timedelta(days=13))
    after = sla.credit_sweep(now=HANDED + dt.timedelta(days=14, minutes=1))
    again = sla.credit_sweep(now=HANDED + dt.timedelta(days=15))
    # Then both are credited once
    assert (inside, after, again) == (0, 2, 0)
    for lead in (kept, other):
        lead.refresh_from_db()
        assert lead.credit_status == CreditStatus.CREDITED
        assert _credit_history(lead) == [("pending", "credited")]
    # and a return after that changes nothing for the SDR
    services.lead_move(
        lead=kept,
        to_stage=Stage.MIL,
        actor=world.sales,
        reason="改期",
        now=HANDED + dt.timedelta(days=16),
    )
    kept.refresh_from_db()
    assert kept.credit_status == CreditStatus.CREDITED
    assert _credit_history(kept) == [("pending", "credited")]
