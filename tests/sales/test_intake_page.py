"""Entering a lead by hand at /sdr/leads/new/."""

from __future__ import annotations

import pytest

from apps.contacts.models import Contact, ContactUnit, Identity
from apps.sales.models import Lead, Opportunity

pytestmark = pytest.mark.django_db
URL = "/sdr/leads/new/"


def post(client, user, data, query=""):
    client.force_login(user)
    return client.post(URL + query, data, HTTP_ACCEPT_LANGUAGE="en")


def test_an_sdr_enters_a_caller_and_owns_the_new_lead(client, world):
    response = post(
        client,
        world.sdr,
        {
            "unit": world.a.pk,
            "name": "赵敏",
            "phone": "13700137000",
            "company_name": "明教生物",
            "temperature": "hot",
            "note": "热线咨询单细胞测序",
        },
    )
    lead = Lead.objects.get()
    assert (response.status_code, response["Location"]) == (302, f"/sdr/leads/{lead.pk}/")
    assert (lead.contact.name, lead.contact.company_name, lead.source, lead.temperature) == (
        "赵敏",
        "明教生物",
        "manual",
        "hot",
    )
    assert (lead.unit_id, lead.sdr_id, lead.stage) == (world.a.pk, world.sdr.pk, "mil")
    assert list(Identity.objects.values_list("kind", "value")) == [("phone", "+8613700137000")]


def test_without_a_phone_or_email_nothing_is_stored(client, world):
    response = post(client, world.sdr, {"unit": world.a.pk, "name": "无名", "temperature": "warm"})
    assert response.status_code == 400
    assert "Give a mobile phone or an email" in response.content.decode()
    assert (Contact.objects.count(), Lead.objects.count()) == (0, 0)


def test_a_unit_the_sdr_does_not_work_in_is_refused(client, world):
    response = post(
        client, world.sdr, {"unit": world.b.pk, "phone": "13700137000", "temperature": "warm"}
    )
    assert response.status_code == 400
    assert (Contact.objects.count(), Lead.objects.count()) == (0, 0)


def test_a_company_with_an_open_opportunity_gets_no_duplicate(client, world):
    Opportunity.objects.create(
        unit=world.a, name="明教 2026 扩容", company_name="明教 生物", owner=world.sales
    )
    response = post(
        client,
        world.sdr,
        {
            "unit": world.a.pk,
            "phone": "13700137000",
            "company_name": "明教生物",
            "temperature": "hot",
        },
    )
    assert (response.status_code, response["Location"]) == (302, "/sdr/")
    assert Lead.objects.count() == 0
    assert list(
        Opportunity.objects.get().people.values_list("contact__company_name", flat=True)
    ) == ["明教生物"]


def test_a_contact_of_another_group_is_not_found(client, world):
    from tests.factories import GroupFactory, UnitFactory

    other = GroupFactory(code="zeta")
    stranger = Contact.objects.create(group=other, name="外人")
    ContactUnit.objects.create(contact=stranger, unit=UnitFactory(code="zeta-a", parent=other))
    client.force_login(world.sdr)
    assert client.get(f"{URL}?contact={stranger.pk}").status_code == 404
    assert (
        post(
            client,
            world.sdr,
            {"unit": world.a.pk, "temperature": "warm"},
            f"?contact={stranger.pk}",
        ).status_code
        == 404
    )
    assert Lead.objects.count() == 0


def test_the_contact_page_offers_a_lead_to_people_who_work_leads(client, world):
    contact = Contact.objects.create(group=world.group, name="殷离")
    ContactUnit.objects.create(contact=contact, unit=world.a)
    link = f'href="/sdr/leads/new/?contact={contact.pk}"'
    client.force_login(world.admin)
    assert link in client.get(f"/console/contacts/{contact.pk}/").content.decode()
    client.force_login(world.marketer)
    assert link not in client.get(f"/console/contacts/{contact.pk}/").content.decode()


def test_the_queue_links_to_the_new_lead_page(client, world):
    client.force_login(world.sdr)
    assert 'href="/sdr/leads/new/"' in client.get("/sdr/").content.decode()
