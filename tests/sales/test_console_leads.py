"""The console lead list and lead page: what each person sees, filters, keyset pages,
a fixed number of queries, and another unit's lead as a 404."""

from __future__ import annotations

import pytest

from apps.contacts.models import Contact
from apps.core.roles import Role
from apps.sales.models import FollowUp, Lead
from apps.sales.services import leads as services
from tests.factories import UserFactory, member

pytestmark = pytest.mark.django_db
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def _lead(world, unit=None, name="王磊", **fields):
    contact = Contact.objects.create(group=world.group, name=name, company_name="华东生物")
    lead = services.lead_open(
        contact=contact, unit=unit or world.a, source="manual", actor=world.sdr
    ).lead
    if fields:
        Lead.objects.filter(pk=lead.pk).update(**fields)
        lead.refresh_from_db()
    return lead


def _many(world, n, unit=None):
    contacts = Contact.objects.bulk_create(
        [Contact(group=world.group, name=f"联系人{i}") for i in range(n)]
    )
    Lead.objects.bulk_create(
        [
            Lead(
                unit=unit or world.a,
                contact=c,
                source="import",
                stage="mil",
                temperature=["cold", "warm", "hot"][i % 3],
                sdr=world.sdr,
                owner=world.sales if i % 2 else None,
            )
            for i, c in enumerate(contacts)
        ]
    )


def test_a_marketer_sees_their_units_leads_and_not_another_units(world, client):
    mine = _lead(world, name="王磊")
    other = _lead(world, unit=world.b, name="李娜")
    client.force_login(world.marketer)

    page = client.get("/console/leads/", **EN)

    assert page.status_code == 200
    assert [lead.pk for lead in page.context["leads"]] == [mine.pk]
    assert "王磊" in page.text
    assert "李娜" not in page.text
    assert client.get(f"/console/leads/{other.pk}/", **EN).status_code == 404
    assert client.get(f"/console/leads/{mine.pk}/", **EN).status_code == 200


def test_a_salesperson_sees_only_their_own_leads(world, client):
    # A salesperson in A who is also a viewer of B: all of B, only their own in A.
    seller = UserFactory(username="seller")
    member(seller, world.a, Role.SALES)
    member(seller, world.b, Role.VIEWER)
    own = _lead(world, name="自己的", owner=seller)
    someone_elses = _lead(world, name="别人的", owner=world.sales)
    in_b = _lead(world, unit=world.b, name="B 的")
    client.force_login(seller)

    page = client.get("/console/leads/", **EN)

    assert page.status_code == 200
    assert {lead.pk for lead in page.context["leads"]} == {own.pk, in_b.pk}
    assert client.get(f"/console/leads/{someone_elses.pk}/", **EN).status_code == 404


def test_people_without_the_console_are_refused(world, client):
    client.force_login(world.sales)
    assert client.get("/console/leads/", **EN).status_code == 403


def test_filters_narrow_the_list(world, client):
    hot = _lead(world, name="热", temperature="hot", owner=world.sales)
    _lead(world, name="冷", temperature="cold")
    review = _lead(world, name="查重", needs_review=True, review_reason="已有客户")
    client.force_login(world.marketer)

    def ids(**query):
        page = client.get("/console/leads/", query, **EN)
        assert page.status_code == 200
        return [lead.pk for lead in page.context["leads"]]

    assert ids(temperature="hot") == [hot.pk]
    assert ids(owner=world.sales.pk) == [hot.pk]
    assert ids(review="on") == [review.pk]
    assert ids(stage="mal", source="manual", sdr="") == [
        review.pk,
        Lead.objects.get(contact__name="冷").pk,
        hot.pk,
    ]
    assert ids(unit=world.a.pk, temperature="warm") == []
    # An unknown value is ignored rather than an error page
    assert len(ids(stage="nonsense")) == 3


def test_keyset_pages_walk_every_lead_once(world, client):
    _many(world, 120)
    client.force_login(world.marketer)
    seen = []
    url = "/console/leads/?temperature=hot"
    for _ in range(5):
        page = client.get(url, **EN)
        seen += [lead.pk for lead in page.context["leads"]]
        cursor = page.context["page"].next_cursor
        if not cursor:
            break
        url = f"/console/leads/?temperature=hot&cursor={cursor}"
    expected = list(
        Lead.objects.filter(temperature="hot").order_by("-id").values_list("id", flat=True)
    )
    assert seen == expected
    assert len(seen) == 40


def test_a_broken_cursor_shows_the_first_page(world, client):
    _lead(world)
    client.force_login(world.marketer)
    page = client.get("/console/leads/?cursor=bogus", **EN)
    assert page.status_code == 200
    assert len(page.context["leads"]) == 1


@pytest.mark.parametrize("n", [3, 60])
def test_the_list_costs_the_same_for_three_or_sixty_leads(
    world, client, n, django_assert_num_queries
):
    _many(world, n)
    client.force_login(world.marketer)
    client.get("/console/leads/", **EN)  # warm the session

    with django_assert_num_queries(8):
        page = client.get("/console/leads/?stage=mil", **EN)

    assert page.status_code == 200
    assert len(page.context["leads"]) == min(n, 50)


def test_the_lead_page_shows_history_follow_ups_and_links_the_contact(world, client):
    lead = _lead(world)
    FollowUp.objects.create(
        lead=lead, unit=world.a, user=world.sdr, kind="call", note="约了下周演示"
    )
    client.force_login(world.marketer)

    page = client.get(f"/console/leads/{lead.pk}/", **EN)

    assert page.status_code == 200
    assert "约了下周演示" in page.text
    assert f'href="/console/contacts/{lead.contact_id}/"' in page.text
    assert [h.to_value for h in page.context["history"]] == ["mal"]
    assert [(r["from"], r["to"]) for r in page.context["history_rows"]] == [("", "MAL · anonymous")]


def test_the_pages_render_in_chinese(world, client):
    lead = _lead(world)
    client.force_login(world.marketer)
    assert client.get("/console/leads/", HTTP_ACCEPT_LANGUAGE="zh-hans").status_code == 200
    assert (
        client.get(f"/console/leads/{lead.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans").status_code == 200
    )
