"""Sales reports: exact funnel counts and conversions, SLA compliance, SDR metrics and
median days per stage from leads whose history happened at fixed times; one query per
report; scoping by unit and permission; bad periods answered with a message."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from apps.contacts.models import Contact, Identity
from apps.sales.models import LeadHistory, SlaMiss
from apps.sales.selectors import reports
from apps.sales.services import leads as services
from apps.sales.services import sla

SH = ZoneInfo("Asia/Shanghai")
NOVEMBER = {"period": "custom", "from": "2026-11-01", "to": "2026-11-30"}
BANT = {"authority": "decision_maker", "need": "单细胞测序", "timeline": "3m"}

pytestmark = pytest.mark.django_db


def at(day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=SH)


def _contact(world, n: int) -> Contact:
    contact = Contact.objects.create(group=world.group, name=f"客户{n}", company_name=f"公司{n}")
    Identity.objects.create(
        group=world.group, contact=contact, kind="email", value=f"c{n}@example.cn"
    )
    return contact


def _open(world, n, when, stage=None, unit=None):
    return services.lead_open(
        contact=_contact(world, n),
        unit=unit or world.a,
        source="manual",
        actor=world.sdr,
        sdr=world.sdr,
        stage=stage,
        now=when,
    ).lead


def _to_sales(world, lead, when):
    services.lead_handoff(lead=lead, actor=world.sdr, owner=world.sales, now=when)


@pytest.fixture
def november(world):
    """Five leads in unit A, in time order (the sweep acts on the state of the moment).

    L1 MIL 2nd → touched 2nd 11:00 → MQL 4th → handed, accepted 5th → follow-up 6th → SQL 9th
    L2 MIL 2nd → touched 2nd 12:00 → MQL 6th → handed, rejected by sales 8th
    L3 MIL 3rd → first touch missed (due 14:00, swept 15:00) → touched late 16:00
    L4 opened at MQL on the 10th
    L5 opened at MQL 12th → handed, accepted 11:00 → SQL 13th → returned to MIL 16th
    """
    l1, l2 = _open(world, 1, at(2)), _open(world, 2, at(2))
    services.follow_up_log(lead=l1, actor=world.sdr, kind="call", now=at(2, 11))
    services.follow_up_log(lead=l2, actor=world.sdr, kind="call", now=at(2, 12))
    l3 = _open(world, 3, at(3))
    sla.sla_sweep(now=at(3, 15))
    services.follow_up_log(lead=l3, actor=world.sdr, kind="call", now=at(3, 16))
    for lead in (l1, l2):
        services.lead_update(lead=lead, data=BANT, actor=world.sdr)
    services.lead_qualify(lead=l1, actor=world.sdr, now=at(4))
    _to_sales(world, l1, at(4))
    services.lead_accept(lead=l1, actor=world.sales, now=at(5))
    services.follow_up_log(lead=l1, actor=world.sales, kind="visit", now=at(6))
    services.lead_qualify(lead=l2, actor=world.sdr, now=at(6))
    _to_sales(world, l2, at(6))
    services.lead_reject(lead=l2, actor=world.sales, reason="预算不在今年", now=at(8))
    services.lead_move(lead=l1, to_stage="sql", actor=world.sales, now=at(9))
    _open(world, 4, at(10), stage="mql")
    l5 = _open(world, 5, at(12), stage="mql")
    _to_sales(world, l5, at(12))
    services.lead_accept(lead=l5, actor=world.sales, now=at(12, 11))
    services.lead_move(lead=l5, to_stage="sql", actor=world.sales, now=at(13))
    services.lead_move(
        lead=l5, to_stage="mil", actor=world.sales, reason="客户冻结采购", now=at(16)
    )
    return [l1, l2, l3, l5]


def _period():
    return reports.period_parse(key="custom", date_from="2026-11-01", date_to="2026-11-30")


def test_funnel_counts_each_lead_once_per_stage_and_converts_as_a_cohort(world, november):
    # When the funnel of November is read
    funnel = reports.sales_funnel(unit_ids={world.a.pk}, period=_period())
    # Then MIL 4 (L2 and L5 came back to it, counted once), MQL 4, SAL 2, SQL 2; TQL hidden
    got = [(s.stage, s.count, s.converted, s.conversion) for s in funnel.steps]
    assert got == [
        ("mal", 0, 0, None),
        ("mil", 4, 0, None),  # nothing reached MAL: no rate
        ("mql", 4, 3, Decimal("75.0")),  # L1, L2, L5 of the 4 that reached MIL
        ("sal", 2, 2, Decimal("50.0")),  # L1, L5 of L1, L2, L4, L5
        ("sql", 2, 2, Decimal("100.0")),
        ("opportunity", 0, 0, Decimal("0.0")),
        ("customer", 0, 0, None),
    ]
    assert funnel.total == 5
    assert [s.width for s in funnel.steps] == [0, 360, 360, 180, 180, 0, 0]


def test_funnel_outside_the_period_and_in_another_unit_is_empty(world, november):
    october = reports.period_parse(key="custom", date_from="2026-10-01", date_to="2026-10-31")
    assert reports.sales_funnel(unit_ids={world.a.pk}, period=october).total == 0
    assert reports.sales_funnel(unit_ids={world.b.pk}, period=_period()).total == 0


def test_velocity_is_the_median_of_the_stays_that_ended_in_the_period(world, november):
    velocity = reports.lead_velocity(unit_ids={world.a.pk}, period=_period())
    got = [(r.stage, r.stays, r.median_days) for r in velocity.rows]
    assert got == [
        ("mil", 2, Decimal("3.0")),  # L1 2 d, L2 4 d (L3 and the returned ones still there)
        ("mql", 3, Decimal("1.0")),  # L1 1 d, L2 2 d, L5 1 h
        ("sal", 2, Decimal("2.5")),  # L1 4 d, L5 23 h: (4 + 0.9583) / 2
        ("sql", 1, Decimal("3.0")),  # L5 13th → 16th
    ]


def test_sla_compliance_counts_kept_and_missed_clocks_per_person(world, november):
    rows = reports.sla_compliance(unit_ids={world.a.pk}, period=_period())
    got = {(r.user_id, r.clock): (r.kept, r.missed, r.rate) for r in rows}
    assert got == {
        # L1 and L2 touched in time; L3's touch came after its recorded miss
        (world.sdr.pk, "first_touch"): (2, 1, Decimal("66.7")),
        # accepted L1 and L5, sent L2 back
        (world.sales.pk, "accept"): (3, 0, Decimal("100.0")),
        (world.sales.pk, "sql_decision"): (2, 0, Decimal("100.0")),
        # the visit on L1 after accepting it
        (world.sales.pk, "follow_up"): (1, 0, Decimal("100.0")),
    }
    assert list(SlaMiss.objects.values_list("user_id", "clock")) == [(world.sdr.pk, "first_touch")]
    # and pivoted to a line per person (clocks: first touch, accept, SQL decision, follow-up),
    # the one with misses first
    people = reports.sla_by_person(rows)
    got = [
        (p.user_id, [(c.kept, c.missed) if c else None for c in p.cells], p.kept, p.missed, p.rate)
        for p in people
    ]
    assert got == [
        (world.sdr.pk, [(2, 1), None, None, None], 2, 1, Decimal("66.7")),
        (world.sales.pk, [None, (3, 0), (2, 0), (1, 0)], 6, 0, Decimal("100.0")),
    ]


def test_sdr_metrics_count_touches_mqls_and_sql_credit(world, november):
    rows = reports.sdr_metrics(unit_ids={world.a.pk}, period=_period())
    got = [(r.user_id, r.touches, r.mqls, r.credited, r.pending, r.returned) for r in rows]
    # 3 calls; L1, L2 qualified, L4, L5 opened as MQL; L1 pending, L5 returned in 3 days
    assert got == [(world.sdr.pk, 3, 4, 0, 1, 1)]


def test_each_report_is_one_query(world, november, django_assert_num_queries):
    period = _period()
    for report in (
        reports.sales_funnel,
        reports.sla_compliance,
        reports.sdr_metrics,
        reports.lead_velocity,
    ):
        with django_assert_num_queries(1):
            report(unit_ids={world.a.pk, world.b.pk}, period=period)


def test_the_page_shows_the_reports_with_a_fixed_number_of_queries(
    world, november, client, django_assert_num_queries
):
    client.force_login(world.viewer)
    url = reverse("sales:reports")
    client.get(url, NOVEMBER, HTTP_ACCEPT_LANGUAGE="en")  # warm the session
    with django_assert_num_queries(10):
        response = client.get(url, NOVEMBER, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    page = response.content.decode()
    assert "2026-11-01 – 2026-11-30" in page
    assert '<svg class="hbar"' in page
    assert "75.0%" in page
    assert "66.7%" in page
    assert "A 事业部" in page
    assert "B 事业部" not in page


def test_the_page_renders_in_chinese(world, november, client):
    client.force_login(world.marketer)
    response = client.get(reverse("sales:reports"), NOVEMBER, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200
    assert 'lang="zh-hans"' in response.content.decode()


def test_another_units_marketer_sees_none_of_unit_a(world, november, client):
    client.force_login(world.b_marketer)
    response = client.get(reverse("sales:reports"), NOVEMBER, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert response.context["funnel"].total == 0
    assert response.context["sla_people"] == []
    assert response.context["sdr_rows"] == []
    assert response.context["unit_names"] == ["B 事业部"]


def test_people_without_the_reports_permission_are_refused(world, client):
    for user in (world.sdr, world.sales):
        client.force_login(user)
        response = client.get(reverse("sales:reports"), HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 403


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"period": "custom", "from": "2026-11-31", "to": "2026-12-01"},
            "“2026-11-31” is not a date: enter it as YYYY-MM-DD.",
        ),
        (
            {"period": "custom", "from": "2026-11-30", "to": "2026-11-01"},
            "The end date is before the start date.",
        ),
        (
            {"period": "custom", "from": "2025-01-01", "to": "2026-11-30"},
            "A report covers at most 366 days.",
        ),
        ({"period": "custom", "from": "", "to": "2026-11-30"}, "Enter the date as YYYY-MM-DD."),
        ({"period": "decade"}, "Pick this month, last month, the last 90 days or a custom"),
    ],
)
def test_a_bad_period_gets_a_clear_message_and_changes_nothing(
    world, november, client, params, message
):
    client.force_login(world.viewer)
    before = LeadHistory.objects.count()
    response = client.get(reverse("sales:reports"), params, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert message in response.content.decode()
    assert "Showing this month instead." in response.content.decode()
    assert LeadHistory.objects.count() == before


def test_preset_periods_follow_the_calendar():
    today = dt.date(2026, 3, 15)
    got = {
        key: (p.first_day, p.last_day)
        for key in ("this_month", "last_month", "90d")
        for p in [reports.period_parse(key=key, today=today)]
    }
    assert got == {
        "this_month": (dt.date(2026, 3, 1), dt.date(2026, 3, 31)),
        "last_month": (dt.date(2026, 2, 1), dt.date(2026, 2, 28)),
        "90d": (dt.date(2025, 12, 16), dt.date(2026, 3, 15)),
    }
    p = reports.period_parse(key="custom", date_from="2026-11-01", date_to="2026-11-30")
    assert (p.start, p.end) == (at(1, 0), dt.datetime(2026, 12, 1, tzinfo=SH))


def test_with_tql_the_stage_after_it_converts_from_mql(world):
    # Given unit A runs the TQL step: L1 goes MQL → TQL → SAL, L2 stops at MQL
    from apps.sales.services.stages import policy_for

    policy = policy_for(world.a.pk)
    policy.use_tql = True
    policy.save()
    l1, l2 = _open(world, 1, at(2), stage="mql"), _open(world, 2, at(2), stage="mql")
    services.lead_move(lead=l1, to_stage="tql", actor=world.sdr, now=at(3))
    _to_sales(world, l1, at(3, 11))
    services.lead_accept(lead=l1, actor=world.sales, now=at(4))
    # When the funnel is read
    funnel = reports.sales_funnel(unit_ids={world.a.pk}, period=_period())
    # Then TQL shows and converts from MQL, and SAL converts from MQL too
    got = {s.stage: (s.count, s.converted, s.conversion) for s in funnel.steps}
    assert got["tql"] == (1, 1, Decimal("50.0"))
    assert got["sal"] == (1, 1, Decimal("50.0"))
    assert l2.stage == "mql"
