"""客户查重: before a lead opens, an open lead, an open opportunity or an existing
customer of the same contact / company / CRM id is found first."""

from __future__ import annotations

import pytest

from apps.contacts.models import Contact, Identity
from apps.core.models import Notification
from apps.sales.models import Lead, LeadHistory, Opportunity, OpportunityContact
from apps.sales.services import leads as services


def _contact(world, name, company):
    contact = Contact.objects.create(group=world.group, name=name, company_name=company)
    Identity.objects.create(
        group=world.group, contact=contact, kind="email", value=f"{contact.pk}@example.cn"
    )
    return contact


@pytest.mark.django_db
def test_a_new_lead_of_a_company_with_an_open_opportunity_attaches_to_it(world):
    # Given an open opportunity of "华东生物 Bio Ltd" owned by a salesperson
    first = _contact(world, "王磊", "华东生物 Bio Ltd")
    opportunity = Opportunity.objects.create(
        unit=world.a,
        name="华东生物 测序平台",
        company_name="华东生物 Bio Ltd",
        contact=first,
        owner=world.sales,
    )
    # When another person of the same company (typed with other spacing and case) comes in
    colleague = _contact(world, "李娜", " 华东 生物 bio  LTD")
    result = services.lead_open(contact=colleague, unit=world.a, source="form")
    # Then no lead opens: they join the opportunity and its owner hears about it
    assert (result.outcome, result.lead, result.opportunity) == ("attached", None, opportunity)
    assert result.message == "Attached to the open opportunity “华东生物 测序平台”."
    assert Lead.objects.count() == 0
    assert list(OpportunityContact.objects.values_list("opportunity_id", "contact_id")) == [
        (opportunity.pk, colleague.pk)
    ]
    notices = Notification.objects.filter(user=world.sales, kind="lead_assigned")
    assert list(notices.values_list("title", flat=True)) == [
        "李娜 joined opportunity 华东生物 测序平台"
    ]
    # When the same person comes in again
    again = services.lead_open(contact=colleague, unit=world.a, source="api")
    # Then still attached, no second link, no second notice
    assert again.outcome == "attached"
    assert OpportunityContact.objects.count() == 1
    assert notices.count() == 1


@pytest.mark.django_db
def test_an_opportunity_in_another_unit_or_closed_does_not_swallow_the_lead(world):
    Opportunity.objects.create(unit=world.b, name="B 的机会", company_name="华东生物")
    Opportunity.objects.create(
        unit=world.a,
        name="丢单",
        company_name="华东生物",
        stage=Opportunity.Stage.LOST,
        closed_at="2026-10-01T00:00:00+08:00",
    )
    result = services.lead_open(
        contact=_contact(world, "王磊", "华东生物"), unit=world.a, source="form"
    )
    assert result.outcome == "opened"
    assert Lead.objects.count() == 1
    assert OpportunityContact.objects.count() == 0


@pytest.mark.django_db
def test_a_contact_with_an_open_lead_gets_the_existing_one(world):
    # Given an open lead
    contact = _contact(world, "王磊", "华东生物")
    first = services.lead_open(contact=contact, unit=world.a, source="form").lead
    # When a new lead for the same contact comes in (hotter)
    result = services.lead_open(contact=contact, unit=world.a, source="api", temperature="hot")
    # Then the existing lead is returned (now hot); no second lead, no second history
    assert (result.outcome, result.lead.pk) == ("existing", first.pk)
    assert result.message == "This contact already has an open lead in the unit."
    assert list(Lead.objects.values_list("id", "temperature")) == [(first.pk, "hot")]
    assert LeadHistory.objects.filter(kind="stage").count() == 1
    # and the other unit may still open its own
    other = services.lead_open(contact=contact, unit=world.b, source="api")
    assert other.outcome == "opened"
    assert Lead.objects.count() == 2


@pytest.mark.django_db
def test_a_contact_whose_company_is_a_customer_opens_a_lead_flagged_for_review(world):
    # Given a won opportunity of 华东生物
    Opportunity.objects.create(
        unit=world.a,
        name="华东生物 一期",
        company_name="华东生物",
        stage=Opportunity.Stage.WON,
        closed_at="2026-06-01T00:00:00+08:00",
    )
    # When a new contact of 华东 生物 comes in
    result = services.lead_open(
        contact=_contact(world, "李娜", "华东 生物"), unit=world.a, source="form"
    )
    # Then the lead opens, marked for review with the reason
    assert result.outcome == "flagged"
    lead = Lead.objects.get()
    assert (lead.needs_review, lead.review_reason) == (True, "华东 生物 is already a customer.")
    review = LeadHistory.objects.get(lead=lead, kind="review")
    assert (review.to_value, review.reason) == ("needed", "华东 生物 is already a customer.")


@pytest.mark.django_db
def test_a_crm_id_matches_an_open_opportunity_or_lead(world):
    # Given an open opportunity with CRM id OPP-42 of a differently named company
    opportunity = Opportunity.objects.create(
        unit=world.a, name="集团采购", company_name="上海某集团", external_id="OPP-42"
    )
    # When a lead arrives from the CRM with that id
    result = services.lead_open(
        contact=_contact(world, "王磊", "华东生物"),
        unit=world.a,
        source="api",
        external_id="OPP-42",
    )
    # Then it attaches to the opportunity
    assert (result.outcome, result.opportunity) == ("attached", opportunity)
    assert Lead.objects.count() == 0
    # Given a lead with CRM id L-7
    known = services.lead_open(
        contact=_contact(world, "李娜", "西部制药"), unit=world.a, source="api", external_id="L-7"
    ).lead
    # When the CRM sends L-7 again for another contact record
    again = services.lead_open(
        contact=_contact(world, "李娜(重复)", "西部制药"),
        unit=world.a,
        source="api",
        external_id="L-7",
    )
    # Then the known lead is returned
    assert (again.outcome, again.lead.pk) == ("existing", known.pk)
    assert Lead.objects.count() == 1
