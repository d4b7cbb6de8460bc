"""Sales setup (/console/sales/): SLA policy, teams, assignment rules, the route test and
the holiday calendar; bad input refused with nothing stored; other units' objects 404."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.contacts.models import Contact
from apps.core.models import AuditLog, CalendarDay
from apps.core.roles import Role
from apps.sales.models import (
    Assignment,
    AssignmentRule,
    LeadHistory,
    SalesTeam,
    SlaPolicy,
    TeamMember,
)
from apps.sales.services import config
from apps.sales.services import leads as lead_services
from tests.factories import UserFactory, member

pytestmark = pytest.mark.django_db
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
SH = ZoneInfo("Asia/Shanghai")

POLICY = {
    "action": "policy",
    "work_start": "09:00",
    "work_end": "18:00",
    "first_touch_value": "4",
    "first_touch_unit": "working_hours",
    "accept_value": "24",
    "accept_unit": "working_hours",
    "sql_value": "10",
    "sql_unit": "working_days",
    "follow_up_value": "48",
    "follow_up_unit": "hours",
    "warn_before_minutes": "120",
    "penalty_misses": "2",
    "penalty_share": "50",
    "sdr_credit_days": "14",
    "bant_required": ["authority", "need"],
}


def _url(unit, tab="policy", **extra):
    query = "&".join(f"{k}={v}" for k, v in {"unit": unit.pk, "tab": tab, **extra}.items())
    return f"/console/sales/?{query}"


def _team(world, unit=None, name="华东销售", people=()):
    team = config.sales_team_create(unit=unit or world.a, name=name, acting_user=world.admin)
    for person in people:
        config.team_member_add(team=team, user=person, acting_user=world.admin)
    return team


def test_a_sales_manager_opens_setup_from_the_lead_queue_and_an_admin_from_the_console(
    world, client
):
    client.force_login(world.sales_manager)
    page = client.get("/console/sales/", **EN)
    assert page.status_code == 200
    assert page.context["surface"] == "sdr"
    assert "SLA policy of A 事业部" in page.text
    assert "an MQL handed now would be due at" in page.text

    client.force_login(world.admin)
    page = client.get("/console/sales/", **EN)
    assert page.context["surface"] == "console"


def test_people_without_sales_configure_are_refused(world, client):
    for person in (world.marketer, world.sdr, world.viewer):
        client.force_login(person)
        assert client.get("/console/sales/", **EN).status_code == 403


def test_saving_the_policy_stores_it_audits_it_and_shows_the_new_due_time(world, client):
    client.force_login(world.sales_manager)

    response = client.post(
        _url(world.a), {**POLICY, "unit": world.a.pk, "accept_value": "8", "use_tql": "on"}, **EN
    )

    assert response.status_code == 302
    policy = SlaPolicy.objects.get(unit=world.a)
    assert (policy.accept_value, policy.use_tql) == (8, True)
    assert policy.bant_required == ["authority", "need"]
    log = AuditLog.objects.get(action="sla_policy.update")
    assert log.before == {
        "accept_value": 24,
        "bant_required": ["authority", "need", "timeline"],
        "use_tql": False,
    }
    assert log.after["accept_value"] == 8


def test_a_policy_whose_day_ends_before_it_starts_is_refused_and_nothing_changes(world, client):
    client.force_login(world.sales_manager)
    SlaPolicy.objects.create(unit=world.a)

    response = client.post(
        _url(world.a),
        {
            **POLICY,
            "unit": world.a.pk,
            "work_start": "18:00",
            "work_end": "09:00",
            "accept_value": "3",
        },
        **EN,
    )

    assert response.status_code == 400
    assert "The working day must end after it starts." in response.text
    policy = SlaPolicy.objects.get(unit=world.a)
    assert (policy.work_start, policy.work_end, policy.accept_value) == (
        dt.time(9),
        dt.time(18),
        24,
    )
    assert not AuditLog.objects.filter(action="sla_policy.update").exists()


def test_a_clock_of_zero_is_refused_with_its_field(world):
    with pytest.raises(ValidationError) as refused:
        config.sla_policy_update(unit=world.a, acting_user=world.admin, sql_value=0)
    assert refused.value.message_dict == {"sql_value": ["Give a time of at least 1."]}


def test_the_example_uses_the_calendar_over_national_day(world):
    from apps.sales.services.sla import due_after

    policy = SlaPolicy.objects.create(unit=world.a)
    handed = dt.datetime(2026, 9, 30, 17, 0, tzinfo=SH)
    assert due_after(handed, policy.accept_value, policy.accept_unit, policy) == dt.datetime(
        2026, 10, 10, 14, 0, tzinfo=SH
    )


def test_teams_show_each_members_month_misses_and_share(world, client):
    second = UserFactory(username="a-sales-2")
    member(second, world.a, Role.SALES)
    team = _team(world, people=[world.sales, second])
    TeamMember.objects.filter(team=team, user=second).update(penalised=True)
    client.force_login(world.sales_manager)

    page = client.get(_url(world.a, "teams"), **EN)

    assert page.status_code == 200
    rows = {m["member"].user_id: m for m in page.context["teams"][0]["members"]}
    assert (rows[world.sales.pk]["share"], rows[world.sales.pk]["this_month"]) == (100, 0)
    assert rows[second.pk]["share"] == 50
    assert "华东销售" in page.text


def test_adding_a_member_from_outside_the_unit_is_refused(world, client):
    team = _team(world)
    client.force_login(world.sales_manager)

    response = client.post(
        _url(world.a, "teams"),
        {
            "action": "member-add",
            "unit": world.a.pk,
            "team": team.pk,
            "user": world.b_marketer.pk,
            "is_active": "on",
        },
        **EN,
    )

    assert response.status_code == 400
    assert "Pick an SDR, salesperson or sales manager of this business unit." in response.text
    assert not TeamMember.objects.exists()


def test_a_rule_routing_to_an_empty_team_is_refused_and_nothing_is_stored(world, client):
    team = _team(world, name="空团队")
    client.force_login(world.sales_manager)

    response = client.post(
        _url(world.a, "rules"),
        {
            "action": "rule-save",
            "unit": world.a.pk,
            "name": "华东大客户",
            "role": "sales",
            "target": f"team:{team.pk}",
            "regions": "上海, 江苏",
            "is_active": "on",
        },
        **EN,
    )

    assert response.status_code == 400
    assert "This team has nobody taking leads: the rule would match nobody." in response.text
    assert not AssignmentRule.objects.exists()
    assert not AuditLog.objects.filter(action="assignment_rule.create").exists()


def test_a_rule_with_min_above_max_is_refused_and_nothing_is_stored(world, client):
    client.force_login(world.sales_manager)

    response = client.post(
        _url(world.a, "rules"),
        {
            "action": "rule-save",
            "unit": world.a.pk,
            "name": "大公司",
            "role": "sales",
            "target": f"user:{world.sales.pk}",
            "size_min": "500",
            "size_max": "100",
            "is_active": "on",
        },
        **EN,
    )

    assert response.status_code == 400
    assert "size_min is above size_max: the rule could never match" in response.text
    assert not AssignmentRule.objects.exists()


def test_rules_are_created_in_order_reordered_and_disabled(world, client):
    team = _team(world, people=[world.sales])
    client.force_login(world.sales_manager)
    for name, target in (("上海", f"team:{team.pk}"), ("其他", f"user:{world.sales.pk}")):
        response = client.post(
            _url(world.a, "rules"),
            {
                "action": "rule-save",
                "unit": world.a.pk,
                "name": name,
                "role": "sales",
                "target": target,
                "regions": "上海，江苏" if name == "上海" else "",
                "tiers": ["ka"],
                "score_min": "40",
                "is_active": "on",
            },
            **EN,
        )
        assert response.status_code == 302
    first, second = AssignmentRule.objects.order_by("position")
    assert (first.name, first.position, second.name, second.position) == ("上海", 0, "其他", 1)
    assert first.conditions == {"regions": ["上海", "江苏"], "tiers": ["ka"], "score_min": 40}

    client.post(
        _url(world.a, "rules"),
        {"action": "rule-move", "unit": world.a.pk, "rule": second.pk, "direction": "up"},
        **EN,
    )
    client.post(
        _url(world.a, "rules"),
        {"action": "rule-toggle", "unit": world.a.pk, "rule": first.pk},
        **EN,
    )

    assert list(AssignmentRule.objects.order_by("position").values_list("name", "is_active")) == [
        ("其他", True),
        ("上海", False),
    ]
    page = client.get(_url(world.a, "rules", edit=first.pk), **EN)
    assert page.context["rule_form"].initial["regions"] == "上海, 江苏"


def test_the_route_test_names_rule_and_person_without_recording(world, client):
    team = _team(world, people=[world.sales])
    config.assignment_rule_create(
        unit=world.a,
        name="上海大客户",
        role="sales",
        conditions={"regions": ["上海"]},
        team=team,
        acting_user=world.admin,
    )
    contact = Contact.objects.create(group=world.group, name="王磊", province="上海")
    lead = lead_services.lead_open(
        contact=contact, unit=world.a, source="manual", actor=world.sdr
    ).lead
    client.force_login(world.sales_manager)
    before = Assignment.objects.count()

    page = client.get(_url(world.a, "rules", test=1, lead=lead.pk, role="sales"), **EN)

    assert page.status_code == 200
    result = page.context["test_result"]
    assert (result["routed"].user_id, result["routed"].rule.name) == (world.sales.pk, "上海大客户")
    assert "上海大客户" in page.text
    assert Assignment.objects.count() == before


def test_another_units_lead_in_the_route_test_is_not_found(world, client):
    contact = Contact.objects.create(group=world.group, name="李娜")
    lead = lead_services.lead_open(
        contact=contact, unit=world.b, source="manual", actor=world.group_admin
    ).lead
    client.force_login(world.sales_manager)

    page = client.get(_url(world.a, "rules", test=1, lead=lead.pk, role="sales"), **EN)

    assert page.status_code == 400
    assert "No open lead with this id in this business unit." in page.text


def test_unit_b_objects_are_404_for_unit_a_people(world, client):
    b_manager = UserFactory(username="b-manager")
    member(b_manager, world.b, Role.SALES_MANAGER)
    team_b = SalesTeam.objects.create(unit=world.b, name="B 团队")
    TeamMember.objects.create(team=team_b, user=b_manager)
    rule_b = AssignmentRule.objects.create(unit=world.b, name="B 规则", team=team_b)
    client.force_login(world.sales_manager)

    assert client.get(_url(world.b), **EN).status_code == 404
    assert client.post(_url(world.b), {**POLICY, "unit": world.b.pk}, **EN).status_code == 404
    # B's rule and team through A's page: not found, nothing changes
    for data in (
        {"action": "rule-delete", "rule": rule_b.pk},
        {"action": "rule-toggle", "rule": rule_b.pk},
        {"action": "team-delete", "team": team_b.pk},
        {"action": "member-add", "team": team_b.pk, "user": world.sales.pk},
    ):
        response = client.post(_url(world.a), {**data, "unit": world.a.pk}, **EN)
        assert response.status_code == 404
    assert client.get(_url(world.a, "rules", edit=rule_b.pk), **EN).status_code == 404
    assert AssignmentRule.objects.filter(pk=rule_b.pk, is_active=True).exists()
    assert SalesTeam.objects.filter(pk=team_b.pk).exists()
    assert not SlaPolicy.objects.filter(unit=world.b).exists()


def test_the_calendar_warns_about_a_year_without_data_and_an_admin_adds_a_day(world, client):
    CalendarDay.objects.all().delete()
    year = timezone.localdate().year
    CalendarDay.objects.create(date=dt.date(year, 10, 1), is_workday=False, name="国庆节")
    client.force_login(world.group_admin)

    page = client.get(_url(world.a, "calendar"), **EN)

    assert page.status_code == 200
    assert page.context["calendar_missing"] == [year + 1]
    assert "The holiday calendar has no data for</strong>" not in page.text
    assert f"The holiday calendar has no data for {year + 1}." in page.text
    # A Saturday make-up working day next year
    saturday = dt.date(year + 1, 1, 1)
    while saturday.weekday() != 5:
        saturday += dt.timedelta(days=1)
    response = client.post(
        _url(world.a, "calendar"),
        {
            "action": "calendar-add",
            "unit": world.a.pk,
            "date": saturday.isoformat(),
            "is_workday": "1",
            "name": "调休上班",
        },
        **EN,
    )
    assert response.status_code == 302
    assert CalendarDay.objects.get(date=saturday).is_workday is True
    page = client.get(_url(world.a, "calendar"), **EN)
    assert page.context["calendar_missing"] == []


def test_a_make_up_day_on_a_weekday_is_refused(world, client):
    client.force_login(world.group_admin)
    monday = dt.date(2030, 1, 7)

    response = client.post(
        _url(world.a, "calendar"),
        {
            "action": "calendar-add",
            "unit": world.a.pk,
            "date": monday.isoformat(),
            "is_workday": "1",
            "name": "x",
        },
        **EN,
    )

    assert response.status_code == 400
    assert "a make-up working day falls on a weekend" in response.text
    assert not CalendarDay.objects.filter(date=monday).exists()


def test_only_group_administrators_add_calendar_days(world, client):
    client.force_login(world.sales_manager)
    page = client.get(_url(world.a, "calendar"), **EN)
    assert page.context["calendar_form"] is None

    response = client.post(
        _url(world.a, "calendar"),
        {
            "action": "calendar-add",
            "unit": world.a.pk,
            "date": "2030-01-07",
            "is_workday": "0",
            "name": "x",
        },
        **EN,
    )

    assert response.status_code == 403
    assert not CalendarDay.objects.filter(date=dt.date(2030, 1, 7)).exists()


def test_the_setup_page_renders_in_chinese(world, client):
    client.force_login(world.sales_manager)
    for tab in ("policy", "teams", "rules", "calendar"):
        page = client.get(_url(world.a, tab), HTTP_ACCEPT_LANGUAGE="zh-hans")
        assert page.status_code == 200


def test_the_admin_lists_every_sales_model(world, client):
    client.force_login(world.group_admin)
    for name in (
        "lead",
        "opportunity",
        "slapolicy",
        "salesteam",
        "assignmentrule",
        "webhookendpoint",
        "webhookdelivery",
        "slamiss",
        "alertsettings",
    ):
        assert client.get(f"/admin/sales/{name}/", **EN).status_code == 200, name
    assert client.get("/admin/core/calendarday/", **EN).status_code == 200


def test_the_admin_refuses_a_policy_ending_before_it_starts(world, client):
    policy = SlaPolicy.objects.create(unit=world.a)
    client.force_login(world.group_admin)
    data = {k: v for k, v in POLICY.items() if k != "action"}
    data.update(unit=world.a.pk, work_start="18:00", work_end="09:00", bant_required='["need"]')

    response = client.post(f"/admin/sales/slapolicy/{policy.pk}/change/", data, **EN)

    assert response.status_code == 200
    assert "The working day must end after it starts." in response.text
    policy.refresh_from_db()
    assert policy.work_end == dt.time(18)


def test_switching_off_the_last_member_a_rule_routes_to_is_refused(world, client):
    team = _team(world, people=[world.sales])
    config.assignment_rule_create(
        unit=world.a, name="全部", role="sales", conditions={}, team=team, acting_user=world.admin
    )
    only = TeamMember.objects.get(team=team)
    client.force_login(world.sales_manager)

    response = client.post(
        _url(world.a, "teams"),
        {"action": "member-update", "unit": world.a.pk, "member": only.pk,
         f"m{only.pk}-capacity": "10"},
        **EN,
    )  # fmt: skip

    assert response.status_code == 400
    assert "the rules would match nobody" in response.text
    only.refresh_from_db()
    assert (only.is_active, only.capacity) == (True, None)


def test_a_second_team_with_the_same_name_is_refused(world, client):
    _team(world, name="华东销售")
    client.force_login(world.sales_manager)

    response = client.post(
        _url(world.a, "teams"),
        {"action": "team-create", "unit": world.a.pk, "name": "华东销售", "method": "round_robin"},
        **EN,
    )

    assert response.status_code == 400
    assert "This business unit already has a team called “华东销售”." in response.text
    assert SalesTeam.objects.filter(unit=world.a).count() == 1


def test_the_calendar_banner_tag_warns_on_any_page(world):
    from django.template import Context, Template

    CalendarDay.objects.all().delete()
    year = timezone.localdate().year
    html = Template("{% load sales_calendar %}{% calendar_warning %}").render(Context({}))
    assert f"The holiday calendar has no data for {year}, {year + 1}." in html
    CalendarDay.objects.create(date=dt.date(year, 10, 1), is_workday=False, name="国庆节")
    CalendarDay.objects.create(date=dt.date(year + 1, 10, 1), is_workday=False, name="国庆节")
    html = Template("{% load sales_calendar %}{% calendar_warning %}").render(Context({}))
    assert "holiday calendar" not in html


def test_a_unit_administrator_sees_only_their_units_sales_records_in_the_admin(world, client):
    contact = Contact.objects.create(group=world.group, name="李娜")
    lead_a = lead_services.lead_open(
        contact=contact, unit=world.a, source="manual", actor=world.sdr
    ).lead
    lead_b = lead_services.lead_open(
        contact=contact, unit=world.b, source="manual", actor=world.group_admin
    ).lead
    policy_b = SlaPolicy.objects.get_or_create(unit=world.b)[0]
    client.force_login(world.admin)

    listing = client.get("/admin/sales/lead/", {"q": "李娜"}, **EN)

    assert listing.status_code == 200
    assert [lead.pk for lead in listing.context["cl"].result_list] == [lead_a.pk]
    assert client.get(f"/admin/sales/lead/{lead_a.pk}/change/", **EN).status_code == 200
    assert client.get(f"/admin/sales/lead/{lead_b.pk}/change/", **EN).status_code == 404
    assert client.get(f"/admin/sales/slapolicy/{policy_b.pk}/change/", **EN).status_code == 404
    # The calendar: unit administrators read it, only group administrators change it
    day = CalendarDay.objects.create(date=dt.date(2031, 1, 1), is_workday=False, name="元旦")
    assert client.get("/admin/core/calendarday/", **EN).status_code == 200
    response = client.post(
        f"/admin/core/calendarday/{day.pk}/change/",
        {"date": "2031-01-01", "is_workday": "on", "name": "x"},
        **EN,
    )
    assert response.status_code == 403
    day.refresh_from_db()
    assert (day.is_workday, day.name) == (False, "元旦")


def test_changing_the_sales_owner_in_the_admin_writes_a_history_row(world, client):
    contact = Contact.objects.create(group=world.group, name="李娜")
    lead = lead_services.lead_open(
        contact=contact, unit=world.a, source="manual", actor=world.sdr
    ).lead
    client.force_login(world.admin)
    page = client.get(f"/admin/sales/lead/{lead.pk}/change/", **EN)
    form = page.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None or value is False:
            continue
        data[name] = value.pk if hasattr(value, "pk") else value
    data["owner"] = world.sales.pk
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for name in management.fields:
            data[f"{management.prefix}-{name}"] = management.initial.get(name, 0)

    response = client.post(f"/admin/sales/lead/{lead.pk}/change/", data, **EN)

    assert response.status_code == 302, response.context["adminform"].form.errors
    lead.refresh_from_db()
    assert lead.owner_id == world.sales.pk
    row = LeadHistory.objects.filter(lead=lead, kind="owner").get()
    assert (row.from_value, row.to_value, row.actor, row.reason) == (
        "",
        str(world.sales.pk),
        world.admin,
        "admin",
    )
