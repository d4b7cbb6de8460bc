"""The salesperson's phone pages (``/m/…``): the inbox, my leads, the lead 360 view with
its actions, and my deals. Another unit's or another salesperson's lead or deal is a 404."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.contacts.models import Activity, Contact, ContactTag, Identity, Tag
from apps.core.roles import Role
from apps.nurture.services.scoring import scoring_model_recompute
from apps.sales.models import FollowUp, Lead, LeadHistory, Opportunity, Stage
from apps.sales.selectors import mobile as selectors
from apps.sales.services import leads as services
from apps.sales.services.opportunities import opportunity_create
from tests.factories import UserFactory, member
from tests.nurture.helpers import NOW, act, engagement_rule, fit_rule, person, scoring_model

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _contact(world, name="王磊", company="华东生物", phone="+8613800000001"):
    contact = Contact.objects.create(
        group=world.group, name=name, company_name=company, title="采购经理"
    )
    Identity.objects.create(group=world.group, contact=contact, kind="phone", value=phone)
    Identity.objects.create(
        group=world.group, contact=contact, kind="email", value=f"{contact.pk}@example.cn"
    )
    return contact


def _handed(world, owner=None, unit=None, **kw) -> Lead:
    """An MQL the SDR handed to ``owner`` (world.sales by default)."""
    contact = _contact(world, **kw)
    lead = services.lead_open(
        contact=contact, unit=unit or world.a, source="manual", stage="mql"
    ).lead
    services.lead_handoff(lead=lead, actor=world.sdr, owner=owner or world.sales)
    lead.refresh_from_db()
    return lead


def _accepted(world, **kw) -> Lead:
    lead = _handed(world, **kw)
    services.lead_accept(lead=lead, actor=lead.owner)
    lead.refresh_from_db()
    return lead


def _sql(world, **kw) -> Lead:
    lead = _accepted(world, **kw)
    services.lead_move(lead=lead, to_stage=Stage.SQL, actor=lead.owner)
    lead.refresh_from_db()
    return lead


def _other_salesperson(world):
    other = UserFactory(username="a-sales-2")
    member(other, world.a, Role.SALES)
    return other


# --- Inbox ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_inbox_lists_my_handed_mqls_with_the_accept_by_time(world):
    # Given one MQL handed to me, one to a colleague, and one not handed yet
    mine = _handed(world, name="王磊")
    _handed(world, owner=_other_salesperson(world), name="李娜", phone="+8613800000002")
    services.lead_open(
        contact=_contact(world, name="张伟", phone="+8613800000003"),
        unit=world.a,
        source="manual",
        stage="mql",
    )
    # When I open the inbox
    response = _client(world.sales).get("/m/inbox/", **EN)
    # Then only mine is there, with its accept-by time
    html = response.content.decode()
    assert response.status_code == 200
    assert "王磊" in html
    assert "李娜" not in html
    assert "张伟" not in html
    due = timezone.localtime(mine.sla_due_at).strftime("%m-%d %H:%M")
    assert f"Accept by {due}" in html


@pytest.mark.django_db
def test_accept_moves_the_mql_to_sal_and_opens_the_lead(world):
    lead = _handed(world)
    response = _client(world.sales).post(f"/m/leads/{lead.pk}/accept/", **EN)
    assert response.status_code == 302
    assert response["Location"] == f"/m/leads/{lead.pk}/"
    lead.refresh_from_db()
    assert (lead.stage, lead.owner_id) == (Stage.SAL, world.sales.pk)
    step = LeadHistory.objects.filter(lead=lead, kind="stage").order_by("-id").first()
    assert (step.from_value, step.to_value, step.actor) == ("mql", "sal", world.sales)


@pytest.mark.django_db
def test_reject_without_a_reason_says_so_and_changes_nothing(world):
    lead = _handed(world)
    before = LeadHistory.objects.count()
    response = _client(world.sales).post(f"/m/leads/{lead.pk}/reject/", {"reason": "  "}, **EN)
    assert response.status_code == 400
    assert "Say why you reject it: the SDR needs to know." in response.content.decode()
    lead.refresh_from_db()
    assert (lead.stage, lead.owner_id) == (Stage.MQL, world.sales.pk)
    assert LeadHistory.objects.count() == before


@pytest.mark.django_db
def test_reject_with_a_reason_sends_it_back_to_the_sdr(world):
    lead = _handed(world)
    response = _client(world.sales).post(
        f"/m/leads/{lead.pk}/reject/", {"reason": "预算不足"}, **EN
    )
    assert response.status_code == 302
    lead.refresh_from_db()
    assert (lead.stage, lead.owner_id, lead.reason) == (Stage.MIL, None, "预算不足")


# --- My leads -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_my_leads_sort_by_what_is_due_first_and_filter_by_stage(world):
    # Given three accepted leads: one with a next step tomorrow, one in two hours
    late = _accepted(world, name="甲", phone="+8613800000011")
    soon = _accepted(world, name="乙", phone="+8613800000012")
    handed = _handed(world, name="丙", phone="+8613800000013")
    now = timezone.now()
    Lead.objects.filter(pk=late.pk).update(
        next_step_at=now + dt.timedelta(days=1), sla_due_at=now + dt.timedelta(days=2)
    )
    Lead.objects.filter(pk=soon.pk).update(
        next_step_at=None, sla_due_at=now + dt.timedelta(hours=2)
    )
    Lead.objects.filter(pk=handed.pk).update(sla_due_at=now + dt.timedelta(days=3))
    # When I list them, and then only SAL
    page = selectors.my_leads(user=world.sales)
    sal = selectors.my_leads(user=world.sales, stage=Stage.SAL)
    # Then the soonest comes first
    assert [lead.pk for lead in page.items] == [soon.pk, late.pk, handed.pk]
    assert [lead.pk for lead in sal.items] == [soon.pk, late.pk]
    response = _client(world.sales).get("/m/leads/?stage=sal", **EN)
    html = response.content.decode()
    assert response.status_code == 200
    assert "甲" in html
    assert "丙" not in html


@pytest.mark.django_db
def test_my_leads_page_with_a_cursor_and_a_bad_cursor(world):
    leads = [_accepted(world, name=f"客户{i}", phone=f"+86138000001{i:02d}") for i in range(3)]
    first = selectors.my_leads(user=world.sales, size=2)
    second = selectors.my_leads(user=world.sales, size=2, cursor=first.next_cursor)
    assert len(first.items) == 2
    assert first.next_cursor
    assert {lead.pk for lead in first.items + second.items} == {lead.pk for lead in leads}
    assert second.next_cursor is None
    response = _client(world.sales).get("/m/leads/?cursor=garbage", **EN)
    assert response.status_code == 200
    assert "That page link is no longer valid" in response.content.decode()


def _bulk_leads(world, owner, count: int) -> None:
    """``count`` open SAL leads owned by ``owner``, each with its own contact: one INSERT."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH c AS (
              INSERT INTO contacts_contact (group_id, status, name, title, department,
                company_name, province, city, industry, custom, field_sources, first_seen_at,
                last_seen_at, created_at, updated_at)
              SELECT %(group)s, 'active', '客户' || g, '', '', '公司' || g, '', '', '',
                '{}', '{}', now(), now(), now(), now()
              FROM generate_series(1, %(n)s) g
              RETURNING id
            )
            INSERT INTO sales_lead (unit_id, contact_id, stage, is_open, temperature, score,
              source, tier, product_interest, authority, need, timeline, needs_review,
              review_reason, reason, sla_clock, credit_status, stage_changed_at, created_at,
              updated_at, owner_id, next_step_at)
            SELECT %(unit)s, c.id, 'sal', true, 'warm', 0, 'manual', '', '', '', '', '',
              false, '', '', '', '', now(), now(), now(), %(owner)s,
              now() + (c.id %% 1000) * interval '1 hour'
            FROM c
            """,
            {"group": world.group.pk, "unit": world.a.pk, "owner": owner.pk, "n": count},
        )


@pytest.mark.django_db
@pytest.mark.parametrize("count", [3, 60, 100])
def test_my_leads_and_inbox_cost_a_fixed_number_of_queries(world, django_assert_num_queries, count):
    _bulk_leads(world, world.sales, count)
    _handed(world)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO sales_opportunity (unit_id, name, company_name, contact_id, owner_id,
              stage, amount, currency, products, lost_reason, created_at, updated_at,
              closed_at)
            SELECT %(unit)s, '商机' || g, '公司' || g, c.id, %(owner)s,
              CASE WHEN g %% 3 = 0 THEN 'won' ELSE 'proposal' END, g * 1000, 'CNY', '[]', '',
              now(), now(), CASE WHEN g %% 3 = 0 THEN now() END
            FROM generate_series(1, %(n)s) g
            CROSS JOIN (SELECT min(id) AS id FROM contacts_contact) c
            """,
            {"unit": world.a.pk, "owner": world.sales.pk, "n": count},
        )
    client = _client(world.sales)
    # session, user, memberships (nav + scoping), the page itself
    with django_assert_num_queries(5):
        assert client.get("/m/leads/", **EN).status_code == 200
    with django_assert_num_queries(5):
        assert client.get("/m/inbox/", **EN).status_code == 200
    with django_assert_num_queries(5):
        assert client.get("/m/deals/", **EN).status_code == 200


def _bulk_closed_leads(world, owner, count: int) -> None:
    """``count`` closed leads (half mine) on one contact: one INSERT … SELECT."""
    contact = _contact(world, name="老客户", phone="+8613899999999")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO sales_lead (unit_id, contact_id, stage, is_open, temperature, score,
              source, tier, product_interest, authority, need, timeline, needs_review,
              review_reason, reason, sla_clock, credit_status, stage_changed_at, created_at,
              updated_at, owner_id, closed_at)
            SELECT %(unit)s, %(contact)s, 'disqualified', false, 'cold', 0, 'manual', '', '',
              '', '', '', false, '', '', '', '', now(), now(), now(),
              CASE WHEN g %% 2 = 0 THEN %(owner)s END, now()
            FROM generate_series(1, %(n)s) g
            """,
            {"unit": world.a.pk, "contact": contact.pk, "owner": owner.pk, "n": count},
        )
        cursor.execute("ANALYZE sales_lead")


@pytest.mark.django_db
def test_my_leads_cost_the_same_at_100_000_lead_rows(world, django_assert_num_queries):
    # Given 100 000 lead rows: 300 open leads of mine, the rest closed (half of them mine)
    _bulk_leads(world, world.sales, 300)
    _bulk_closed_leads(world, world.sales, 99_700)
    assert Lead.objects.count() == 100_000
    client = _client(world.sales)
    # When I page through my leads
    with django_assert_num_queries(5):
        first = client.get("/m/leads/", **EN)
    cursor = first.context["page"].next_cursor
    with django_assert_num_queries(5):
        second = client.get(f"/m/leads/?cursor={cursor}", **EN)
    # Then each page is 30 open leads, in due order, costing the same
    items = first.context["page"].items + second.context["page"].items
    keys = [(lead.sort_key, lead.pk) for lead in items]
    assert len(items) == 60
    assert keys == sorted(keys)
    assert all(lead.is_open for lead in items)


# --- The lead 360 view --------------------------------------------------------------------


@pytest.mark.django_db
def test_lead_page_shows_identities_behaviour_and_history(world):
    # Given an accepted lead whose contact viewed pricing 3× today and opened my link twice
    lead = _accepted(world)
    now = timezone.now()
    for minutes in (1, 2, 3):
        Activity.objects.create(
            unit=world.a,
            contact=lead.contact,
            type="page_view",
            occurred_at=now - dt.timedelta(minutes=minutes),
            properties={"url": "https://acme.cn/pricing", "title": "价格"},
        )
    for days in (2, 3):
        Activity.objects.create(
            unit=world.a,
            contact=lead.contact,
            type="share_open",
            occurred_at=now - dt.timedelta(days=days),
            object_type="share_link",
            object_id="7",
            properties={"title": "白皮书"},
        )
    Activity.objects.create(  # older than a week: left out
        unit=world.a,
        contact=lead.contact,
        type="download",
        occurred_at=now - dt.timedelta(days=9),
        properties={"title": "旧手册"},
    )
    # When I open the lead
    response = _client(world.sales).get(f"/m/leads/{lead.pk}/", **EN)
    html = response.content.decode()
    # Then
    assert response.status_code == 200
    assert 'href="tel:+8613800000001"' in html
    assert "华东生物 · 采购经理" in html
    assert "viewed 《价格》 3× today" in html
    assert "opened your link 《白皮书》 2× in 7 days" in html
    assert "旧手册" not in html
    assert "MQL · marketing-qualified → SAL · sales-accepted" in html


@pytest.mark.django_db
def test_recent_behaviour_is_one_grouped_query(world, django_assert_num_queries):
    lead = _accepted(world)
    now = timezone.now()
    Activity.objects.bulk_create(
        [
            Activity(
                unit=world.a,
                contact=lead.contact,
                type="page_view",
                occurred_at=now - dt.timedelta(hours=i),
                properties={"url": f"https://acme.cn/p{i % 3}", "title": f"页{i % 3}"},
            )
            for i in range(30)
        ]
    )
    with django_assert_num_queries(2):  # the memberships, then the grouped read
        lines = selectors.recent_behaviour(user=world.sales, lead=lead, now=now)
    assert sorted(line.count for line in lines) == [10, 10, 10]


@pytest.mark.django_db
def test_log_a_follow_up_with_a_next_step(world):
    lead = _accepted(world)
    when = (timezone.localtime() + dt.timedelta(days=2)).replace(second=0, microsecond=0)
    response = _client(world.sales).post(
        f"/m/leads/{lead.pk}/follow-up/",
        {
            "kind": "visit",
            "note": "现场演示",
            "next_step": "发报价",
            "next_step_at": when.strftime("%Y-%m-%dT%H:%M"),
        },
        **EN,
    )
    assert response.status_code == 302
    follow = FollowUp.objects.get(lead=lead)
    assert (follow.kind, follow.note, follow.next_step, follow.next_step_at) == (
        "visit",
        "现场演示",
        "发报价",
        when,
    )
    lead.refresh_from_db()
    assert lead.next_step_at == when


@pytest.mark.django_db
def test_follow_up_in_the_past_is_refused_and_nothing_is_logged(world):
    lead = _accepted(world)
    past = timezone.localtime() - dt.timedelta(days=1)
    response = _client(world.sales).post(
        f"/m/leads/{lead.pk}/follow-up/",
        {"kind": "call", "next_step_at": past.strftime("%Y-%m-%dT%H:%M")},
        **EN,
    )
    assert response.status_code == 400
    assert "The next step cannot be in the past." in response.content.decode()
    assert FollowUp.objects.filter(lead=lead).count() == 0


@pytest.mark.django_db
def test_move_sal_to_sql_and_return_to_sdr_needs_a_reason(world):
    lead = _accepted(world)
    client = _client(world.sales)
    response = client.post(f"/m/leads/{lead.pk}/move/", {"to": "sql"}, **EN)
    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.stage == Stage.SQL
    # Returning to the SDR without a reason: refused, nothing changes
    response = client.post(f"/m/leads/{lead.pk}/move/", {"to": "mil", "reason": ""}, **EN)
    assert response.status_code == 400
    assert "Say why: this move needs a reason." in response.content.decode()
    lead.refresh_from_db()
    assert (lead.stage, lead.owner_id) == (Stage.SQL, world.sales.pk)
    # With a reason it goes back
    response = client.post(f"/m/leads/{lead.pk}/move/", {"to": "mil", "reason": "不是决策人"}, **EN)
    assert response.status_code == 302
    lead.refresh_from_db()
    assert (lead.stage, lead.owner_id) == (Stage.MIL, None)


@pytest.mark.django_db
def test_tags_of_the_unit_go_on_and_off_and_another_units_tag_is_refused(world):
    lead = _accepted(world)
    mine = Tag.objects.create(unit=world.a, name="重点客户")
    theirs = Tag.objects.create(unit=world.b, name="B 标签")
    client = _client(world.sales)
    client.post(f"/m/leads/{lead.pk}/tags/", {"add": mine.pk}, **EN)
    assert list(ContactTag.objects.values_list("contact_id", "tag_id")) == [
        (lead.contact_id, mine.pk)
    ]
    response = client.post(f"/m/leads/{lead.pk}/tags/", {"add": theirs.pk}, **EN)
    assert response.status_code == 302
    assert ContactTag.objects.filter(tag=theirs).count() == 0
    client.post(f"/m/leads/{lead.pk}/tags/", {"remove": mine.pk}, **EN)
    assert ContactTag.objects.count() == 0


@pytest.mark.django_db
def test_open_an_opportunity_from_an_sql_and_update_it(world):
    lead = _sql(world)
    client = _client(world.sales)
    # A bad amount: a clear message, nothing made
    response = client.post(
        f"/m/leads/{lead.pk}/opportunity/",
        {"name": "华东生物 测序平台", "amount": "很多", "stage": "discovery"},
        **EN,
    )
    assert response.status_code == 400
    assert "Enter the amount as a number, e.g. 120000." in response.content.decode()
    assert Opportunity.objects.count() == 0
    response = client.post(
        f"/m/leads/{lead.pk}/opportunity/",
        {
            "name": "华东生物 测序平台",
            "amount": "120000",
            "stage": "discovery",
            "expected_close": "2027-03-31",
            "products": "测序仪，试剂",
        },
        **EN,
    )
    opp = Opportunity.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/m/deals/{opp.pk}/"
    assert (opp.amount, opp.products, opp.owner_id, opp.expected_close) == (
        Decimal("120000.00"),
        ["测序仪", "试剂"],
        world.sales.pk,
        dt.date(2027, 3, 31),
    )
    lead.refresh_from_db()
    assert (lead.stage, lead.opportunity_id) == (Stage.OPPORTUNITY, opp.pk)
    # Update it on the deal page
    response = client.post(
        f"/m/deals/{opp.pk}/",
        {"amount": "150000", "stage": "proposal", "expected_close": "", "products": "测序仪"},
        **EN,
    )
    assert response.status_code == 302
    opp.refresh_from_db()
    assert (opp.amount, opp.stage, opp.expected_close, opp.products) == (
        Decimal("150000.00"),
        "proposal",
        None,
        ["测序仪"],
    )


@pytest.mark.django_db
def test_lost_needs_a_reason_and_won_makes_a_customer(world):
    lead = _sql(world)
    opp = opportunity_create(lead=lead, actor=world.sales, data={"name": "X", "amount": "10"})
    client = _client(world.sales)
    response = client.post(
        f"/m/deals/{opp.pk}/", {"amount": "10", "stage": "lost", "lost_reason": ""}, **EN
    )
    assert response.status_code == 400
    assert "Say why it was lost." in response.content.decode()
    opp.refresh_from_db()
    assert (opp.stage, opp.closed_at) == ("discovery", None)
    response = client.post(f"/m/deals/{opp.pk}/", {"amount": "10", "stage": "won"}, **EN)
    assert response.status_code == 302
    opp.refresh_from_db()
    lead.refresh_from_db()
    assert opp.stage == "won"
    assert opp.closed_at is not None
    assert lead.stage == Stage.CUSTOMER


@pytest.mark.django_db
def test_deals_list_shows_open_ones_first(world):
    closed = opportunity_create(
        lead=_sql(world, name="甲", phone="+8613800000021"),
        actor=world.sales,
        data={"name": "已赢", "amount": "1"},
    )
    Opportunity.objects.filter(pk=closed.pk).update(stage="won", closed_at=timezone.now())
    open_ = opportunity_create(
        lead=_sql(world, name="乙", phone="+8613800000022"),
        actor=world.sales,
        data={"name": "进行中", "amount": "2"},
    )
    page = selectors.my_opportunities(user=world.sales)
    assert [o.pk for o in page.items] == [open_.pk, closed.pk]


# --- Scoping --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_another_salespersons_and_another_units_lead_and_deal_are_404(world):
    # Given a colleague's SQL lead with a deal in my unit, and a lead in unit B
    colleague = _other_salesperson(world)
    theirs = _sql(world, owner=colleague)
    deal = opportunity_create(lead=theirs, actor=colleague, data={"name": "他们的", "amount": "5"})
    theirs.refresh_from_db()
    b_sales = UserFactory(username="b-sales")
    member(b_sales, world.b, Role.SALES)
    b_lead = _handed(world, owner=b_sales, unit=world.b, name="B 客户", phone="+8613800000031")
    tag = Tag.objects.create(unit=world.a, name="重点")
    client = _client(world.sales)
    # When I try to read or act on them
    for lead in (theirs, b_lead):
        assert client.get(f"/m/leads/{lead.pk}/", **EN).status_code == 404
        for action, data in (
            ("accept", {}),
            ("reject", {"reason": "x"}),
            ("follow-up", {"kind": "call", "note": "x"}),
            ("move", {"to": "disqualified", "reason": "x"}),
            ("tags", {"add": tag.pk}),
            ("opportunity", {"name": "x", "stage": "discovery"}),
        ):
            response = client.post(f"/m/leads/{lead.pk}/{action}/", data, **EN)
            assert response.status_code == 404, action
    assert client.get(f"/m/deals/{deal.pk}/", **EN).status_code == 404
    assert client.post(f"/m/deals/{deal.pk}/", {"stage": "won"}, **EN).status_code == 404
    # Then nothing changed
    theirs.refresh_from_db()
    b_lead.refresh_from_db()
    deal.refresh_from_db()
    assert (theirs.stage, b_lead.stage, deal.stage) == (Stage.OPPORTUNITY, Stage.MQL, "discovery")
    assert FollowUp.objects.count() == 0
    assert ContactTag.objects.count() == 0
    assert Opportunity.objects.count() == 1
    # And my lists do not show them
    assert "B 客户" not in client.get("/m/inbox/", **EN).content.decode()
    assert "他们的" not in client.get("/m/deals/", **EN).content.decode()


@pytest.mark.django_db
def test_home_cards_count_my_leads(world):
    _handed(world, name="甲", phone="+8613800000041")
    _accepted(world, name="乙", phone="+8613800000042")
    response = _client(world.sales).get("/m/", **EN)
    html = response.content.decode()
    assert response.status_code == 200
    assert "MQLs to accept" in html
    assert "My open leads" in html
    assert "SLA due today" in html
    counts = selectors.my_lead_counts(user=world.sales)
    assert (counts.to_accept, counts.open) == (1, 2)


@pytest.mark.django_db
def test_pages_render_in_chinese(world):
    lead = _accepted(world)
    client = _client(world.sales)
    for url in ("/m/inbox/", "/m/leads/", f"/m/leads/{lead.pk}/", "/m/deals/"):
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans")
        assert response.status_code == 200, url
        assert '<html lang="zh-hans">' in response.content.decode()


@pytest.mark.django_db
def test_lead_page_shows_the_score_with_its_biggest_reasons(world):
    # Given a biotech contact who downloaded once, scored by unit A's model
    contact = person(world.a, phone="13800000099", name="周杰", industry="生物医药")
    model = scoring_model(world.a, name="A 评分")
    fit_rule(model, "生物医药行业", {"field": "industry", "op": "eq", "value": "生物医药"}, "15")
    engagement_rule(model, "下载资料", {"type": "download"}, "8")
    act(world.a, contact, "download", days_ago=0)
    scoring_model_recompute(model=model, now=NOW)
    lead = services.lead_open(contact=contact, unit=world.a, source="manual", stage="mql").lead
    services.lead_handoff(lead=lead, actor=world.sdr, owner=world.sales)
    lead.refresh_from_db()
    # When I read the score summary
    summary = selectors.lead_score(user=world.sales, lead=lead)
    # Then the total and its reasons, biggest first
    assert summary is not None
    assert (summary.total, summary.reasons) == (
        Decimal("23.00"),
        [("生物医药行业", Decimal("15")), ("下载资料", Decimal("8.00"))],
    )
    html = _client(world.sales).get(f"/m/leads/{lead.pk}/", **EN).content.decode()
    assert "生物医药行业" in html
    assert "+15" in html
