"""API: leads and opportunities (``/api/v1/leads/``, ``/api/v1/opportunities/``)."""

from __future__ import annotations

import pytest

from apps.contacts.models import Contact, ContactUnit, Identity
from apps.core.models import User
from apps.sales.models import FollowUp, IdempotencyRecord, Lead, LeadHistory, Opportunity, Stage
from apps.sales.services import leads as services
from tests.factories import UserFactory, member

pytestmark = pytest.mark.django_db
LEADS = "/api/v1/leads/"
OPPS = "/api/v1/opportunities/"


def make_contact(world, unit=None, name="王磊", company="华东生物", email=None):
    unit = unit or world.a
    contact = Contact.objects.create(group=world.group, name=name, company_name=company)
    Identity.objects.create(
        group=world.group, contact=contact, kind="email", value=email or f"{contact.pk}@example.cn"
    )
    ContactUnit.objects.create(contact=contact, unit=unit)
    return contact


def make_lead(world, unit=None, stage=None, **kwargs):
    unit = unit or world.a
    contact = make_contact(world, unit, name=kwargs.pop("name", "王磊"))
    return services.lead_open(
        contact=contact, unit=unit, source="manual", stage=stage, **kwargs
    ).lead


def qualified(world, **kwargs):
    """An MQL with complete BANT."""
    lead = make_lead(world, **kwargs)
    services.lead_update(
        lead=lead,
        data={"authority": "decision_maker", "need": "单细胞测序", "timeline": "3m"},
        actor=world.sdr,
    )
    return services.lead_qualify(lead=lead, actor=world.sdr, reason="BANT ok")


def sql_lead(world):
    lead = qualified(world)
    services.lead_handoff(lead=lead, actor=world.sdr, owner=world.sales)
    services.lead_accept(lead=lead, actor=world.sales)
    return services.lead_move(lead=lead, to_stage=Stage.SQL, actor=world.sales)


# --- Reading --------------------------------------------------------------------------------


def test_the_list_filters_and_pages_by_cursor(world, api):
    hot = make_lead(world, name="甲", temperature="hot")
    make_lead(world, name="乙")
    third = make_lead(world, name="丙", temperature="hot")
    api.force_authenticate(world.sdr)

    first = api.get(LEADS, {"temperature": "hot", "page_size": 1}).json()
    second = api.get(first["next"]).json()

    assert [r["id"] for r in first["results"]] == [third.pk]
    assert [r["id"] for r in second["results"]] == [hot.pk]
    assert second["next"] is None
    assert first["results"][0]["contact_name"] == "丙"
    assert api.get(LEADS, {"stage": "mal"}).json()["results"] == []
    assert len(api.get(LEADS, {"stage": "mil", "unit": world.a.pk}).json()["results"]) == 3


def test_a_bad_filter_is_a_clear_400(world, api):
    api.force_authenticate(world.sdr)

    response = api.get(LEADS, {"updated_since": "yesterday"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "updated_since" in response.json()["error"]["fields"]


def test_the_detail_carries_the_stage_history(world, api):
    lead = qualified(world)
    api.force_authenticate(world.sdr)

    body = api.get(f"{LEADS}{lead.pk}/").json()

    assert body["stage"] == "mql"
    assert [(h["from_value"], h["to_value"], h["reason"]) for h in body["history"]] == [
        ("", "mil", "Entered by hand"),
        ("mil", "mql", "BANT ok"),
    ]
    assert body["history"][1]["actor"] == world.sdr.pk


def test_the_list_costs_the_same_at_any_size(world, api, django_assert_num_queries):
    make_lead(world)
    api.force_authenticate(User.objects.get(pk=world.sdr.pk))
    # the user's units and roles, the page of leads with their contacts
    with django_assert_num_queries(2):
        api.get(LEADS)
    for i in range(20):
        make_lead(world, name=f"客户{i}")
    api.force_authenticate(User.objects.get(pk=world.sdr.pk))
    with django_assert_num_queries(2):
        assert len(api.get(LEADS).json()["results"]) == 21


# --- Scoping --------------------------------------------------------------------------------


def test_another_units_lead_is_404_for_reading_and_acting_and_nothing_changes(world, api):
    # Given a lead of unit B and an SDR of unit A
    theirs = make_lead(world, unit=world.b)
    before = LeadHistory.objects.count()
    api.force_authenticate(world.sdr)

    # When the SDR reads and tries every action on it
    answers = [
        api.get(f"{LEADS}{theirs.pk}/").status_code,
        api.patch(f"{LEADS}{theirs.pk}/", {"need": "x"}).status_code,
        api.post(
            f"{LEADS}{theirs.pk}/transition/", {"stage": "disqualified", "reason": "x"}
        ).status_code,
        api.post(f"{LEADS}{theirs.pk}/handoff/", {}).status_code,
        api.post(f"{LEADS}{theirs.pk}/accept/").status_code,
        api.post(f"{LEADS}{theirs.pk}/reject/", {"reason": "x"}).status_code,
        api.post(f"{LEADS}{theirs.pk}/follow-ups/", {"kind": "call"}).status_code,
    ]

    # Then every answer is 404, the list leaves it out and nothing changed
    assert answers == [404] * 7
    assert api.get(LEADS).json()["results"] == []
    theirs.refresh_from_db()
    assert (theirs.stage, theirs.need) == ("mil", "")
    assert LeadHistory.objects.count() == before
    assert FollowUp.objects.count() == 0


def test_a_salesperson_sees_only_their_own_leads(world, api):
    mine = qualified(world, name="甲")
    services.lead_handoff(lead=mine, actor=world.sdr, owner=world.sales)
    colleague = UserFactory(username="a-sales-2")
    member(colleague, world.a, "sales")
    theirs = qualified(world, name="乙")
    services.lead_handoff(lead=theirs, actor=world.sdr, owner=colleague)
    make_lead(world, name="丙")
    api.force_authenticate(world.sales)

    listed = [r["id"] for r in api.get(LEADS).json()["results"]]

    assert listed == [mine.pk]
    assert api.get(f"{LEADS}{theirs.pk}/").status_code == 404
    assert api.post(f"{LEADS}{theirs.pk}/accept/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.stage == "mql"


def test_a_viewer_reads_but_may_not_act(world, api):
    lead = make_lead(world)
    api.force_authenticate(world.viewer)

    assert api.get(f"{LEADS}{lead.pk}/").status_code == 200
    response = api.post(f"{LEADS}{lead.pk}/follow-ups/", {"kind": "call"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert FollowUp.objects.count() == 0


# --- Creating -------------------------------------------------------------------------------


def test_creating_a_lead_for_a_known_contact(world, api):
    contact = make_contact(world)
    api.force_authenticate(world.sdr)

    response = api.post(
        LEADS, {"unit": world.a.pk, "contact": contact.pk, "temperature": "warm"}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    lead = Lead.objects.get()
    assert (body["outcome"], body["message"], body["lead"]["id"]) == ("opened", "", lead.pk)
    assert (lead.source, lead.stage, lead.temperature) == ("api", "mil", "warm")


def test_creating_again_answers_the_existing_lead_with_200(world, api):
    contact = make_contact(world)
    api.force_authenticate(world.sdr)
    api.post(LEADS, {"unit": world.a.pk, "contact": contact.pk}, format="json")

    response = api.post(LEADS, {"unit": world.a.pk, "contact": contact.pk}, format="json")

    assert response.status_code == 200
    assert response.json()["outcome"] == "existing"
    assert response.json()["message"] == "This contact already has an open lead in the unit."
    assert Lead.objects.count() == 1


def test_creating_by_identity_finds_or_makes_the_contact(world, api):
    known = make_contact(world, email="wang@huadong.cn")
    api.force_authenticate(world.sdr)

    found = api.post(
        LEADS,
        {"unit": world.a.pk, "identities": [{"kind": "email", "value": "Wang@HuaDong.cn"}]},
        format="json",
    )
    made = api.post(
        LEADS,
        {
            "unit": world.a.pk,
            "identities": [{"kind": "phone", "value": "138 0013 8000"}],
            "name": "李娜",
            "company_name": "西湖医药",
        },
        format="json",
    )

    assert (found.status_code, made.status_code) == (201, 201)
    assert Lead.objects.get(pk=found.json()["lead"]["id"]).contact_id == known.pk
    new = Lead.objects.get(pk=made.json()["lead"]["id"]).contact
    assert (new.name, new.company_name) == ("李娜", "西湖医药")


def test_a_lead_attaches_to_an_open_opportunity_with_200(world, api):
    lead = sql_lead(world)
    opp = Opportunity.objects.create(
        unit=world.a, name="华东生物 测序平台", company_name="华东生物", owner=world.sales
    )
    lead.opportunity = opp
    lead.save()
    colleague = make_contact(world, name="张伟", company="华东 生物")
    api.force_authenticate(world.sdr)

    response = api.post(LEADS, {"unit": world.a.pk, "contact": colleague.pk}, format="json")

    assert response.status_code == 200
    assert response.json()["outcome"] == "attached"
    assert response.json()["opportunity"] == opp.pk
    assert Lead.objects.filter(contact=colleague).count() == 0


@pytest.mark.parametrize("case", ["other unit", "unknown contact", "neither", "bad phone"])
def test_a_lead_that_may_not_be_made_is_a_clear_400(world, api, case):
    api.force_authenticate(world.sdr)
    data = {
        "other unit": {"unit": world.b.pk, "contact": make_contact(world, world.b).pk},
        "unknown contact": {"unit": world.a.pk, "contact": make_contact(world, world.b).pk},
        "neither": {"unit": world.a.pk},
        "bad phone": {"unit": world.a.pk, "identities": [{"kind": "phone", "value": "12"}]},
    }[case]
    field = {
        "other unit": "unit",
        "unknown contact": "contact",
        "neither": "contact",
        "bad phone": "identities",
    }[case]

    response = api.post(LEADS, data, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert field in response.json()["error"]["fields"]
    assert Lead.objects.count() == 0


# --- Changing and acting --------------------------------------------------------------------


def test_patch_sets_bant_and_a_bad_value_changes_nothing(world, api):
    lead = make_lead(world)
    api.force_authenticate(world.sdr)

    bad = api.patch(f"{LEADS}{lead.pk}/", {"budget": "lots", "need": "测序"}, format="json")
    good = api.patch(
        f"{LEADS}{lead.pk}/", {"budget": "500000", "authority": "influencer"}, format="json"
    )

    assert bad.status_code == 400
    assert bad.json()["error"]["fields"] == {
        "budget": ["Enter the budget as a number of yuan, e.g. 500000."]
    }
    assert good.status_code == 200
    assert (good.json()["budget"], good.json()["authority"], good.json()["need"]) == (
        "500000.00",
        "influencer",
        "",
    )


def test_patch_refuses_fields_it_does_not_change(world, api):
    lead = make_lead(world)
    api.force_authenticate(world.sdr)

    response = api.patch(f"{LEADS}{lead.pk}/", {"stage": "sql"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"stage": ["This field cannot be changed here."]}
    lead.refresh_from_db()
    assert lead.stage == "mil"


def test_the_crm_id_is_unique_per_unit(world, api):
    first = make_lead(world, name="甲")
    second = make_lead(world, name="乙")
    other_unit = make_lead(world, unit=world.b, name="丙")
    api.force_authenticate(world.sdr)

    ok = api.patch(f"{LEADS}{first.pk}/", {"external_id": "SF-1"}, format="json")
    clash = api.patch(f"{LEADS}{second.pk}/", {"external_id": "SF-1", "need": "x"}, format="json")
    api.force_authenticate(world.group_admin)
    elsewhere = api.patch(f"{LEADS}{other_unit.pk}/", {"external_id": "SF-1"}, format="json")

    assert ok.status_code == 200
    assert ok.json()["external_id"] == "SF-1"
    assert elsewhere.status_code == 200  # unit B may use the same CRM id
    assert clash.status_code == 400
    assert clash.json()["error"]["fields"] == {
        "external_id": ["Another lead of this unit already has CRM id “SF-1”."]
    }
    second.refresh_from_db()
    assert (second.external_id, second.need) == (None, "")


def test_an_illegal_transition_is_400_with_the_legal_moves(world, api):
    lead = make_lead(world)
    api.force_authenticate(world.sdr)

    response = api.post(f"{LEADS}{lead.pk}/transition/", {"stage": "sql"}, format="json")

    assert response.status_code == 400
    message = response.json()["error"]["fields"]["stage"][0]
    assert message.startswith("A lead cannot move from MIL · identified to SQL")
    lead.refresh_from_db()
    assert lead.stage == "mil"


def test_the_funnel_through_the_api(world, api):
    lead = make_lead(world)
    api.force_authenticate(world.sdr)
    api.patch(
        f"{LEADS}{lead.pk}/",
        {"authority": "decision_maker", "need": "测序", "timeline": "3m"},
        format="json",
    )

    mql = api.post(f"{LEADS}{lead.pk}/transition/", {"stage": "mql", "reason": "ok"})
    call = api.post(f"{LEADS}{lead.pk}/follow-ups/", {"kind": "call", "note": "聊了需求"})
    handed = api.post(f"{LEADS}{lead.pk}/handoff/", {"owner": world.sales.pk, "note": "急"})
    api.force_authenticate(world.sales)
    accepted = api.post(f"{LEADS}{lead.pk}/accept/")

    assert (mql.status_code, call.status_code, handed.status_code) == (200, 201, 200)
    assert call.json()["kind"] == "call"
    assert handed.json()["owner"] == world.sales.pk
    assert accepted.status_code == 200
    assert accepted.json()["stage"] == "sal"


def test_handoff_to_someone_who_does_not_sell_here_is_400(world, api):
    lead = qualified(world)
    api.force_authenticate(world.sdr)

    response = api.post(f"{LEADS}{lead.pk}/handoff/", {"owner": world.b_marketer.pk})

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"owner": ["Pick a salesperson of this unit."]}
    lead.refresh_from_db()
    assert lead.owner_id is None


def test_reject_needs_a_reason(world, api):
    lead = qualified(world)
    services.lead_handoff(lead=lead, actor=world.sdr, owner=world.sales)
    api.force_authenticate(world.sales)

    empty = api.post(f"{LEADS}{lead.pk}/reject/", {"reason": " "})
    done = api.post(f"{LEADS}{lead.pk}/reject/", {"reason": "预算不在今年"})

    assert empty.status_code == 400
    assert empty.json()["error"]["fields"] == {
        "reason": ["Say why you reject it: the SDR needs to know."]
    }
    assert done.status_code == 200
    assert (done.json()["stage"], done.json()["owner"]) == ("mil", None)


# --- Idempotency-Key ------------------------------------------------------------------------


def test_a_retry_with_the_same_key_is_answered_from_the_record(world, api):
    lead = make_lead(world)
    api.force_authenticate(world.sdr)
    url = f"{LEADS}{lead.pk}/follow-ups/"

    first = api.post(url, {"kind": "call", "note": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = api.post(url, {"kind": "call", "note": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    other = api.post(url, {"kind": "call", "note": "b"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert FollowUp.objects.count() == 1
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert "different request" in other.json()["error"]["message"]


def test_a_failed_request_does_not_keep_its_key(world, api):
    lead = make_lead(world)
    api.force_authenticate(world.sdr)
    url = f"{LEADS}{lead.pk}/follow-ups/"

    bad = api.post(url, {"kind": "fax"}, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    good = api.post(url, {"kind": "call"}, format="json", HTTP_IDEMPOTENCY_KEY="k2")

    assert (bad.status_code, good.status_code) == (400, 201)
    assert IdempotencyRecord.objects.get().status_code == 201


def test_keys_are_per_user(world, api):
    lead = make_lead(world)
    url = f"{LEADS}{lead.pk}/follow-ups/"
    api.force_authenticate(world.sdr)
    api.post(url, {"kind": "call"}, format="json", HTTP_IDEMPOTENCY_KEY="same")
    api.force_authenticate(world.sales_manager)

    response = api.post(url, {"kind": "call"}, format="json", HTTP_IDEMPOTENCY_KEY="same")

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert FollowUp.objects.count() == 2


# --- Opportunities --------------------------------------------------------------------------


def test_opening_an_opportunity_from_an_sql_and_winning_it(world, api):
    lead = sql_lead(world)
    api.force_authenticate(world.sales)

    opened = api.post(
        OPPS, {"lead": lead.pk, "name": "测序平台", "amount": "120000"}, format="json"
    )
    opp_id = opened.json()["id"]
    won = api.patch(f"{OPPS}{opp_id}/", {"stage": "won"}, format="json")

    assert opened.status_code == 201
    assert (opened.json()["amount"], opened.json()["leads"]) == ("120000.00", [lead.pk])
    assert won.status_code == 200
    assert won.json()["closed_at"] is not None
    lead.refresh_from_db()
    assert lead.stage == "customer"


def test_an_opportunity_from_a_lead_not_at_sql_is_400(world, api):
    lead = make_lead(world)
    api.force_authenticate(world.sales_manager)

    response = api.post(OPPS, {"lead": lead.pk, "name": "x"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "stage": ["Open an opportunity from an SQL lead."]
    }
    assert Opportunity.objects.count() == 0


def test_losing_needs_a_reason(world, api):
    opp = Opportunity.objects.create(unit=world.a, name="x", owner=world.sales)
    api.force_authenticate(world.sales)

    response = api.patch(f"{OPPS}{opp.pk}/", {"stage": "lost"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"lost_reason": ["Say why it was lost."]}
    opp.refresh_from_db()
    assert opp.stage == "discovery"


def test_opportunities_are_scoped_like_leads(world, api):
    mine = Opportunity.objects.create(unit=world.a, name="mine", owner=world.sales)
    Opportunity.objects.create(unit=world.a, name="colleague's", owner=world.sales_manager)
    theirs = Opportunity.objects.create(unit=world.b, name="B")
    api.force_authenticate(world.sales)

    listed = [r["id"] for r in api.get(OPPS).json()["results"]]

    assert listed == [mine.pk]
    assert api.get(f"{OPPS}{theirs.pk}/").status_code == 404
    assert api.patch(f"{OPPS}{theirs.pk}/", {"name": "x"}, format="json").status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "B"


def test_upsert_by_crm_id_opens_then_updates(world, api):
    lead = sql_lead(world)
    api.force_authenticate(world.sales)
    url = f"{OPPS}by-external-id/SF-OPP-9/"

    opened = api.put(url, {"unit": world.a.pk, "lead": lead.pk, "name": "测序平台"}, format="json")
    updated = api.put(url, {"unit": world.a.pk, "amount": "80000"}, format="json")
    unknown = api.put(f"{OPPS}by-external-id/SF-OPP-404/", {"unit": world.a.pk}, format="json")

    assert opened.status_code == 201
    assert updated.status_code == 200
    assert updated.json()["id"] == opened.json()["id"]
    assert (updated.json()["external_id"], updated.json()["amount"]) == ("SF-OPP-9", "80000.00")
    assert unknown.status_code == 400
    assert "lead" in unknown.json()["error"]["fields"]
    assert Opportunity.objects.count() == 1


def test_upsert_into_another_unit_is_refused(world, api):
    Opportunity.objects.create(unit=world.b, name="B", external_id="SF-B")
    api.force_authenticate(world.sales_manager)

    response = api.put(
        f"{OPPS}by-external-id/SF-B/", {"unit": world.b.pk, "amount": "1"}, format="json"
    )

    assert response.status_code == 400
    assert "unit" in response.json()["error"]["fields"]
    assert Opportunity.objects.get().amount == 0


def test_an_opportunity_crm_id_taken_in_the_unit_is_400(world, api):
    Opportunity.objects.create(unit=world.a, name="first", owner=world.sales, external_id="X")
    second = Opportunity.objects.create(unit=world.a, name="second", owner=world.sales)
    api.force_authenticate(world.sales)

    response = api.patch(f"{OPPS}{second.pk}/", {"external_id": "X", "name": "2"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "external_id": ["Another opportunity of this unit already has this CRM id."]
    }
    second.refresh_from_db()
    assert (second.external_id, second.name) == (None, "second")
