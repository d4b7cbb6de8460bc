"""The lead queue pages (/sdr/): the hot-first queue, a lead's page with the SDR's actions,
and the group pool. Who sees which lead, what a refusal looks like, what each costs."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.contacts.models import Contact, ContactUnit, Identity
from apps.core.models import User
from apps.core.roles import Role
from apps.sales.models import (
    AssignmentRule,
    FollowUp,
    HistoryKind,
    Lead,
    LeadHistory,
)
from apps.sales.services import leads as services
from tests.factories import UserFactory, member

pytestmark = pytest.mark.django_db
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}


def signed_in(user) -> Client:
    client = Client()
    client.force_login(User.objects.get(pk=user.pk))
    return client


def make_lead(
    world,
    name,
    *,
    unit=None,
    sdr=None,
    temperature="cold",
    due_in=None,
    stage="mil",
    company="华东生物",
    **fields,
):
    unit = unit or world.a
    contact = Contact.objects.create(
        group=world.group, name=name, company_name=company, title="采购经理"
    )
    Identity.objects.create(
        group=world.group, contact=contact, kind="email", value=f"c{contact.pk}@example.cn"
    )
    ContactUnit.objects.create(contact=contact, unit=unit)
    lead = services.lead_open(
        contact=contact, unit=unit, source="manual", stage=stage, sdr=sdr
    ).lead
    now = timezone.now()
    Lead.objects.filter(pk=lead.pk).update(
        temperature=temperature,
        sla_due_at=None if due_in is None else now + due_in,
        **fields,
    )
    lead.refresh_from_db()
    return lead


def names(html: str) -> list[str]:
    return re.findall(r'class="lead-name" href="[^"]+">([^<]+)</a>', html)


def lead_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'class="lead-name" href="/sdr/leads/(\d+)/"', html)]


def snapshot(lead):
    lead.refresh_from_db()
    return (
        lead.stage,
        lead.unit_id,
        lead.sdr_id,
        lead.owner_id,
        lead.budget,
        lead.need,
        LeadHistory.objects.filter(lead=lead).count(),
        FollowUp.objects.filter(lead=lead).count(),
    )


H = dt.timedelta(hours=1)
S = dt.timedelta(seconds=1)


# --- The queue ------------------------------------------------------------------------------


def test_queue_is_hot_first_then_oldest_due_then_no_clock(world):
    # Given five leads of mine and one of someone else's
    make_lead(world, "冷-早", sdr=world.sdr, temperature="cold", due_in=1 * H)
    make_lead(world, "热-无钟", sdr=world.sdr, temperature="hot", due_in=None)
    make_lead(world, "热-晚", sdr=world.sdr, temperature="hot", due_in=5 * H)
    make_lead(world, "热-早", sdr=world.sdr, temperature="hot", due_in=-2 * H)
    make_lead(world, "温", sdr=world.sdr, temperature="warm", due_in=2 * H)
    make_lead(world, "高价值", sdr=world.sdr, temperature="high_value", due_in=30 * H)
    make_lead(world, "别人的", sdr=world.sales_manager, temperature="hot", due_in=1 * H)
    # When the SDR opens the queue
    response = signed_in(world.sdr).get("/sdr/", **EN)
    # Then only theirs, hot first, then the clock that runs out first, no clock last
    assert response.status_code == 200
    assert names(response.text) == ["热-早", "热-晚", "热-无钟", "高价值", "温", "冷-早"]
    assert "overdue 2 h" in response.text or "overdue 1 h 59 min" in response.text
    assert "due in 4 h 59 min" in response.text or "due in 5 h" in response.text


def test_queue_filters(world):
    make_lead(world, "热-MQL", sdr=world.sdr, temperature="hot", stage="mql", due_in=30 * H)
    make_lead(world, "热-MIL", sdr=world.sdr, temperature="hot", due_in=3 * H)
    make_lead(
        world,
        "温-复核",
        sdr=world.sdr,
        temperature="warm",
        due_in=50 * H,
        needs_review=True,
        review_reason="已是客户",
    )
    make_lead(world, "冷-逾期", sdr=world.sdr, temperature="cold", due_in=-1 * H)
    sdr = signed_in(world.sdr)
    assert names(sdr.get("/sdr/?stage=mql", **EN).text) == ["热-MQL"]
    assert names(sdr.get("/sdr/?temperature=hot", **EN).text) == ["热-MIL", "热-MQL"]
    assert names(sdr.get("/sdr/?due=24h", **EN).text) == ["热-MIL", "冷-逾期"]
    assert names(sdr.get("/sdr/?review=1", **EN).text) == ["温-复核"]
    assert names(sdr.get("/sdr/?stage=bogus&temperature=nope", **EN).text) == [
        "热-MIL",
        "热-MQL",
        "温-复核",
        "冷-逾期",
    ]
    # The unit switcher narrows to one unit: B's lead of mine does not show under A
    member(world.sdr, world.b, Role.SDR)
    make_lead(world, "B-热", unit=world.b, sdr=world.sdr, temperature="hot", due_in=H)
    sdr = signed_in(world.sdr)
    assert names(sdr.get("/sdr/?temperature=hot", **EN).text) == ["B-热", "热-MIL", "热-MQL"]
    session = sdr.session
    session["unit"] = world.a.pk
    session.save()
    assert names(sdr.get("/sdr/?temperature=hot", **EN).text) == ["热-MIL", "热-MQL"]


def test_keyset_paging_walks_the_whole_queue_in_order(world):
    for i in range(60):
        make_lead(
            world,
            f"L{i:02d}",
            sdr=world.sdr,
            temperature=("hot", "cold")[i % 2],
            due_in=(i - 30) * H if i % 3 else None,
        )
    sdr = signed_in(world.sdr)
    first = sdr.get("/sdr/", **EN).text
    cursor = re.search(r'cursor=([^"&]+)" rel="next"', first).group(1)
    second = sdr.get(f"/sdr/?cursor={cursor}", **EN).text
    seen = names(first) + names(second)
    expected = [
        lead.contact.name
        for lead in sorted(
            Lead.objects.filter(sdr=world.sdr).select_related("contact"),
            key=lambda x: (
                0 if x.temperature == "hot" else 3,
                x.sla_due_at or dt.datetime.max.replace(tzinfo=dt.UTC),
                x.pk,
            ),
        )
    ]
    assert len(names(first)) == 50
    assert seen == expected
    assert 'rel="next"' not in second
    back = re.search(r'cursor=([^"&]+)" rel="prev"', second).group(1)
    assert names(sdr.get(f"/sdr/?cursor={back}", **EN).text) == expected[:50]
    assert "no longer valid" in sdr.get("/sdr/?cursor=garbage", **EN).text


def test_a_manager_lists_unassigned_leads_and_takes_one(world):
    lead = make_lead(world, "无人", sdr=None, temperature="warm", due_in=H)
    make_lead(world, "有人", sdr=world.sdr, temperature="hot", due_in=H)
    manager = signed_in(world.sales_manager)
    page = manager.get("/sdr/?view=unassigned", **EN)
    assert names(page.text) == ["无人"]
    assert "Take it" in page.text
    # An SDR cannot widen to unassigned leads: the switch is ignored
    assert names(signed_in(world.sdr).get("/sdr/?view=unassigned", **EN).text) == ["有人"]
    response = manager.post(f"/sdr/leads/{lead.pk}/take/", **EN)
    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.sdr_id == world.sales_manager.pk
    assert names(manager.get("/sdr/", **EN).text) == ["无人"]


def _insert_parts(model, overrides):
    """Column list, SELECT expressions and parameters for an INSERT … SELECT of ``model``:
    the given expressions, ``now()`` for timestamps Django would fill, NULL where allowed,
    and the model's default otherwise (Django's defaults live in Python, not the table)."""
    cols, exprs, params = [], [], []
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        cols.append(f'"{f.column}"')
        if f.column in overrides:
            expr, *values = overrides[f.column]
            exprs.append(expr)
            params += values
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            exprs.append("now()")
        elif f.null:
            exprs.append("NULL")
        else:
            exprs.append("%s")
            params.append(f.get_db_prep_save(f.get_default(), connection))
    return ", ".join(cols), ", ".join(exprs), params


def _bulk_queue(world, *, contacts=1000, units=100):
    """An SDR of the whole group with ``contacts × units`` open leads (100 000 by default),
    written by one INSERT … SELECT generate_series statement.

    A contact has at most one open lead per unit, so the leads spread over ``units`` units
    of the group: the SDR's queue holds all of them.
    """
    from apps.core.models import BusinessUnit

    BusinessUnit.objects.bulk_create(
        BusinessUnit(code=f"bulk-{i}", name=f"批量事业部{i}", parent=world.group)
        for i in range(units - 2)
    )
    sdr = UserFactory(username="group-sdr")
    member(sdr, world.group, Role.SDR)
    c_cols, c_exprs, c_params = _insert_parts(
        Contact,
        {
            "group_id": ("%s", world.group.pk),
            "name": ("'批量' || g",),
            "company_name": ("'批量公司'",),
        },
    )
    l_cols, l_exprs, l_params = _insert_parts(
        Lead,
        {
            "unit_id": ("u.id",),
            "contact_id": ("c.id",),
            "sdr_id": ("%s", sdr.pk),
            "source": ("'import'",),
            "temperature": ("(ARRAY['cold','warm','hot','high_value'])[1 + (c.id + u.id) %% 4]",),
            # clocks spread from 2 days overdue to 5 days ahead; every tenth lead has none
            "sla_due_at": (
                "CASE WHEN (c.id + u.id) %% 10 = 0 THEN NULL "
                "ELSE %s + ((c.id * 7919 + u.id * 31) %% 10080 - 2880) * interval '1 minute' END",
                timezone.now(),
            ),
        },
    )
    sql = f"""
        WITH c AS (
            INSERT INTO {Contact._meta.db_table} ({c_cols})
            SELECT {c_exprs} FROM generate_series(1, %s) g RETURNING id
        ), u AS (
            SELECT id FROM {BusinessUnit._meta.db_table} WHERE parent_id = %s
        )
        INSERT INTO {Lead._meta.db_table} ({l_cols}) SELECT {l_exprs} FROM c CROSS JOIN u
    """
    with connection.cursor() as cursor:
        # The rows point at a group, units and a user that exist: skip the queued
        # foreign-key checks (they would run at the end of the test and take seconds).
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, [*c_params, contacts, world.group.pk, *l_params])
        cursor.execute("SET LOCAL session_replication_role = origin")
        cursor.execute(f"ANALYZE {Lead._meta.db_table}")
    return sdr


# session, user, units and roles, the page of leads (contact, unit and channel joined),
# the unit switcher, the bell
QUEUE_QUERIES = 6
# the shell (session, user, units and roles, unit switcher, bell), the lead, its policy, its
# history and the people and units named there, the pool check, the unit's salespeople, the
# contact's scores, the 360 (units, identities, custom fields, tags, consents, consent
# events, merges), the timeline, the follow-ups
LEAD_PAGE_QUERIES = 22


def test_the_queue_costs_the_same_at_3_60_and_100_leads(world, django_assert_num_queries):
    for i in range(3):
        make_lead(world, f"Q{i}", sdr=world.sdr, temperature="hot", due_in=i * H)
    sdr = signed_in(world.sdr)
    sdr.get("/sdr/", **EN)
    with django_assert_num_queries(QUEUE_QUERIES):
        sdr.get("/sdr/", **EN)
    for i in range(57):
        make_lead(world, f"R{i}", sdr=world.sdr, temperature="warm", due_in=i * H)
    with django_assert_num_queries(QUEUE_QUERIES):
        first = sdr.get("/sdr/", **EN)
    cursor = re.search(r'cursor=([^"&]+)" rel="next"', first.text).group(1)
    with django_assert_num_queries(QUEUE_QUERIES):
        second = sdr.get(f"/sdr/?cursor={cursor}", **EN)
    assert (len(names(first.text)), len(names(second.text))) == (50, 10)
    for i in range(40):
        make_lead(world, f"S{i}", sdr=world.sdr, temperature="cold", due_in=i * H)
    with django_assert_num_queries(QUEUE_QUERIES):
        at_100 = sdr.get("/sdr/", **EN)
    assert len(names(at_100.text)) == 50


def test_the_queue_costs_the_same_at_100000_leads(world, django_assert_num_queries):
    sdr_user = _bulk_queue(world)
    assert Lead.objects.filter(sdr=sdr_user, is_open=True).count() == 100_000
    sdr = signed_in(sdr_user)
    with django_assert_num_queries(QUEUE_QUERIES):
        first = sdr.get("/sdr/?due=24h", **EN)
    hot_first = Lead.objects.filter(sdr=sdr_user, temperature="hot", sla_due_at__isnull=False)
    expected = list(hot_first.order_by("sla_due_at", "id").values_list("id", flat=True)[:50])
    assert lead_ids(first.text) == expected
    cursor = re.search(r'cursor=([^"&]+)" rel="next"', first.text).group(1)
    with django_assert_num_queries(QUEUE_QUERIES):
        assert len(names(sdr.get(f"/sdr/?due=24h&cursor={cursor}", **EN).text)) == 50


# --- The lead page ----------------------------------------------------------------------------


def test_the_lead_page_shows_the_contact_bant_history_and_clock(world):
    lead = make_lead(
        world,
        "王磊",
        sdr=world.sdr,
        temperature="hot",
        due_in=3 * H + 20 * 60 * S,
        needs_review=True,
        review_reason="华东生物 is already a customer",
    )
    response = signed_in(world.sdr).get(f"/sdr/leads/{lead.pk}/", **EN)
    assert response.status_code == 200
    text = response.text
    assert f"c{lead.contact_id}@example.cn" in text  # identities
    assert "华东生物" in text
    assert "采购经理" in text
    assert "华东生物 is already a customer" in text  # the review banner
    assert re.search(r"due in 3 h (19|20) min", text)
    # the unit's policy asks for authority, need and timing; none answered yet
    assert re.findall(r'<span class="tag warn">(\w+) · missing</span>', text) == [
        "Authority",
        "Need",
        "Timing",
    ]
    assert "Qualify → MQL" in text
    assert "Disqualify" in text
    assert "Recycle to nurturing" in text
    assert "Hand off to sales" not in text  # not an MQL yet
    assert "MIL · identified" in text  # the first history row


def test_another_units_lead_is_not_found_and_no_action_touches_it(world):
    b_sdr = UserFactory(username="b-sdr")
    member(b_sdr, world.b, Role.SDR)
    lead = make_lead(
        world,
        "B 的线索",
        unit=world.b,
        sdr=b_sdr,
        stage="mql",
        authority="decision_maker",
        need="测序",
        timeline="3m",
    )
    before = snapshot(lead)
    sdr = signed_in(world.sdr)
    assert sdr.get(f"/sdr/leads/{lead.pk}/", **EN).status_code == 404
    for action, data in [
        ("log", {"kind": "call", "note": "x"}),
        ("bant", {"budget": "1"}),
        ("qualify", {}),
        ("disqualify", {"reason": "x"}),
        ("recycle", {"reason": "x"}),
        ("handoff", {"owner": str(world.sales.pk)}),
        ("decline", {"reason": "x"}),
        ("take", {}),
    ]:
        assert sdr.post(f"/sdr/leads/{lead.pk}/{action}/", data, **EN).status_code == 404
    assert snapshot(lead) == before
    assert lead.pk not in lead_ids(sdr.get("/sdr/", **EN).text)


def test_qualify_without_bant_is_refused_with_the_missing_fields(world):
    lead = make_lead(world, "王磊", sdr=world.sdr, temperature="hot")
    before = snapshot(lead)
    sdr = signed_in(world.sdr)
    response = sdr.post(f"/sdr/leads/{lead.pk}/qualify/", {"reason": "看着不错"}, **EN)
    assert response.status_code == 400
    assert "Qualify needs these BANT answers first: authority, need, timeline." in response.text
    assert 'value="看着不错"' in response.text  # what was typed stays
    assert snapshot(lead) == before
    # When the SDR fills BANT and qualifies again
    response = sdr.post(
        f"/sdr/leads/{lead.pk}/bant/",
        {
            "budget": "500000",
            "authority": "decision_maker",
            "need": "单细胞测序",
            "timeline": "3m",
            "temperature": "hot",
        },
        **EN,
    )
    assert response.status_code == 302
    response = sdr.post(f"/sdr/leads/{lead.pk}/qualify/", {"reason": "BANT ok"}, follow=True, **EN)
    assert "Qualified: the lead is an MQL now." in response.text
    lead.refresh_from_db()
    assert (lead.stage, lead.budget, lead.need) == ("mql", Decimal("500000.00"), "单细胞测序")
    step = LeadHistory.objects.filter(lead=lead, kind="stage").order_by("-id").first()
    assert (step.from_value, step.to_value, step.actor_id, step.reason) == (
        "mil",
        "mql",
        world.sdr.pk,
        "BANT ok",
    )


def test_bad_bant_and_empty_reasons_say_what_is_wrong_and_change_nothing(world):
    lead = make_lead(world, "王磊", sdr=world.sdr)
    before = snapshot(lead)
    sdr = signed_in(world.sdr)
    cases = [
        (
            "bant",
            {"budget": "五十万", "authority": "decision_maker"},
            "Enter the budget as a number of yuan, e.g. 500000.",
        ),
        ("bant", {"budget": "-1"}, "The budget must be between 0 and 999,999,999,999 yuan."),
        ("disqualify", {"reason": "  "}, "Say why: this move needs a reason."),
        ("recycle", {"reason": ""}, "Say why: this move needs a reason."),
        ("log", {"kind": "note", "note": ""}, "Write the note."),
        (
            "log",
            {"kind": "call", "next_step_at": "2020-01-01T09:00"},
            "The next step cannot be in the past.",
        ),
        (
            "log",
            {"kind": "call", "next_step_at": "tomorrow"},
            "Enter the date and time as YYYY-MM-DD HH:MM.",
        ),
        ("handoff", {}, "Only a lead at MQL · marketing-qualified can go to sales."),
    ]
    for action, data, message in cases:
        response = sdr.post(f"/sdr/leads/{lead.pk}/{action}/", data, **EN)
        assert (action, response.status_code) == (action, 400)
        assert message in response.text, action
    assert snapshot(lead) == before


def test_log_a_call_disqualify_and_recycle(world):
    lead = make_lead(world, "王磊", sdr=world.sdr)
    sdr = signed_in(world.sdr)
    response = sdr.post(
        f"/sdr/leads/{lead.pk}/log/",
        {
            "kind": "call",
            "note": "约了下周演示",
            "next_step": "演示",
            "next_step_at": "2030-01-02T10:00",
        },
        follow=True,
        **EN,
    )
    assert "Logged." in response.text
    assert "约了下周演示" in response.text
    follow = FollowUp.objects.get(lead=lead)
    assert (follow.kind, follow.user_id, follow.next_step) == ("call", world.sdr.pk, "演示")
    lead.refresh_from_db()
    assert lead.first_touched_at is not None
    other = make_lead(world, "李娜", sdr=world.sdr)
    sdr.post(f"/sdr/leads/{other.pk}/recycle/", {"reason": "暂无预算"}, **EN)
    sdr.post(f"/sdr/leads/{lead.pk}/disqualify/", {"reason": "学生"}, **EN)
    lead.refresh_from_db()
    other.refresh_from_db()
    assert (lead.stage, lead.reason, lead.is_open) == ("disqualified", "学生", False)
    assert (other.stage, other.reason) == ("recycled", "暂无预算")


def test_hand_off_without_a_matching_rule_says_so_then_to_a_chosen_salesperson(world):
    lead = make_lead(world, "王磊", sdr=world.sdr, stage="mql")
    before = snapshot(lead)
    sdr = signed_in(world.sdr)
    page = sdr.get(f"/sdr/leads/{lead.pk}/", **EN).text
    assert f'<option value="{world.sales.pk}"' in page  # the unit's salespeople
    assert f'<option value="{world.sdr.pk}"' not in page
    response = sdr.post(f"/sdr/leads/{lead.pk}/handoff/", {"owner": "", "note": "急"}, **EN)
    assert response.status_code == 400
    assert (
        "No assignment rule matched this lead and nobody is free: pick a salesperson or "
        "ask sales ops to add a rule."
    ) in response.text
    assert snapshot(lead) == before
    # someone outside the unit's sales people is refused too
    response = sdr.post(f"/sdr/leads/{lead.pk}/handoff/", {"owner": str(world.marketer.pk)}, **EN)
    assert "Pick a salesperson of this unit from the list." in response.text
    assert snapshot(lead) == before
    response = sdr.post(
        f"/sdr/leads/{lead.pk}/handoff/",
        {"owner": str(world.sales.pk), "note": "客户很急，今天回电"},
        **EN,
    )
    assert response.status_code == 302
    lead.refresh_from_db()
    assert (lead.owner_id, lead.sla_clock) == (world.sales.pk, "accept")
    assert FollowUp.objects.get(lead=lead).note == "客户很急，今天回电"


def test_hand_off_follows_the_units_rule_when_nobody_is_picked(world):
    AssignmentRule.objects.create(unit=world.a, name="全部", role="sales", user=world.sales)
    lead = make_lead(world, "王磊", sdr=world.sdr, stage="mql")
    response = signed_in(world.sdr).post(
        f"/sdr/leads/{lead.pk}/handoff/", {"owner": ""}, follow=True, **EN
    )
    lead.refresh_from_db()
    assert lead.owner_id == world.sales.pk
    assert f"Handed to {world.sales}." in response.text


# --- The group pool ---------------------------------------------------------------------------


def test_the_pool_hands_an_mql_to_a_unit_and_the_unit_declines_it_back(world):
    group_sdr = UserFactory(username="group-sdr")
    member(group_sdr, world.group, Role.SDR)
    lead = make_lead(world, "池中人", unit=world.group, stage="mql", temperature="hot")
    make_lead(world, "未确认", unit=world.group, stage="mil")
    pool = signed_in(group_sdr)
    page = pool.get("/sdr/pool/", **EN)
    assert names(page.text) == ["池中人", "未确认"]
    assert page.text.count("Hand to unit</button>") == 1  # only the MQL
    # A unit that is not the group's is refused, nothing changes
    before = snapshot(lead)
    response = pool.post(
        f"/sdr/leads/{lead.pk}/hand-to-unit/", {"unit": "999999", "from": "pool"}, **EN
    )
    assert response.status_code == 400
    assert "Pick a business unit of this group from the list." in response.text
    assert snapshot(lead) == before
    # When the group SDR hands it to unit A
    response = pool.post(
        f"/sdr/leads/{lead.pk}/hand-to-unit/",
        {"unit": str(world.a.pk), "from": "pool"},
        follow=True,
        **EN,
    )
    assert f"Handed to {world.a.name}." in response.text
    assert names(response.text) == ["未确认"]
    lead.refresh_from_db()
    assert lead.unit_id == world.a.pk
    # Then A's SDR sees the decline form; an empty reason is refused
    a_sdr = signed_in(world.sdr)
    assert "Decline back to the pool" in a_sdr.get(f"/sdr/leads/{lead.pk}/", **EN).text
    before = snapshot(lead)
    response = a_sdr.post(f"/sdr/leads/{lead.pk}/decline/", {"reason": " "}, **EN)
    assert response.status_code == 400
    assert "Say why the unit declines it." in response.text
    assert snapshot(lead) == before
    response = a_sdr.post(f"/sdr/leads/{lead.pk}/decline/", {"reason": "不在我们区域"}, **EN)
    assert response.status_code == 302
    assert response.url == "/sdr/"
    lead.refresh_from_db()
    assert (lead.unit_id, lead.reason) == (world.group.pk, "不在我们区域")
    assert a_sdr.get(f"/sdr/leads/{lead.pk}/", **EN).status_code == 404
    # And the pool lists it again, and among the declined with A's reason
    page = pool.get("/sdr/pool/", **EN).text
    assert names(page) == ["池中人", "未确认"]
    declined = page.split('id="declined"')[1]
    assert world.a.name in declined
    assert "不在我们区域" in declined
    back = LeadHistory.objects.filter(lead=lead, kind=HistoryKind.UNIT).order_by("-id").first()
    assert (back.from_value, back.to_value, back.actor_id) == (
        str(world.a.pk),
        str(world.group.pk),
        world.sdr.pk,
    )


def test_a_unit_sdr_has_no_pool(world):
    make_lead(world, "池中人", unit=world.group, stage="mql")
    page = signed_in(world.sdr).get("/sdr/pool/", **EN)
    assert page.status_code == 200
    assert names(page.text) == []
    assert "You do not work the leads of a group" in page.text


def test_pages_render_in_chinese(world):
    lead = make_lead(world, "王磊", sdr=world.sdr, stage="mql", due_in=H)
    sdr = signed_in(world.sdr)
    for url in ("/sdr/", f"/sdr/leads/{lead.pk}/", "/sdr/pool/"):
        response = sdr.get(url, **ZH)
        assert response.status_code == 200
        assert '<html lang="zh-hans">' in response.text


def test_the_lead_page_costs_the_same_with_a_long_history(world, django_assert_num_queries):
    lead = make_lead(world, "王磊", sdr=world.sdr, temperature="hot")
    sdr = signed_in(world.sdr)
    sdr.get(f"/sdr/leads/{lead.pk}/", **EN)
    with django_assert_num_queries(LEAD_PAGE_QUERIES):
        sdr.get(f"/sdr/leads/{lead.pk}/", **EN)
    for i in range(30):
        services.follow_up_log(lead=lead, actor=world.sdr, kind="call", note=f"第{i}次")
    services.lead_assign_sdr(lead=lead, sdr=world.sales_manager, actor=world.sales_manager)
    with django_assert_num_queries(LEAD_PAGE_QUERIES):
        page = sdr.get(f"/sdr/leads/{lead.pk}/", **EN)
    assert "第29次" in page.text
