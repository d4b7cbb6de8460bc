"""API: share links (own and the unit's), their totals, their viewers."""

from __future__ import annotations

import pytest

from apps.content.models import ShareLink
from apps.content.tasks.shares import share_views_process
from apps.core.models import User
from tests.content.test_shares import (
    beat,
    beat_values,
    known_browser,
    make_asset,
    make_contact,
    make_link,
    make_page,
    opened_ago,
)

pytestmark = pytest.mark.django_db
LINKS = "/api/v1/share-links/"


def test_creating_a_link_in_my_name(world, api):
    paper = make_asset(world.a, title="选型指南")
    api.force_authenticate(world.sales)

    response = api.post(LINKS, {"asset": paper.pk, "note": "给王总"}, format="json")

    assert response.status_code == 201
    body = response.json()
    link = ShareLink.objects.get()
    assert (body["owner"], body["unit"], body["asset"], body["title"]) == (
        world.sales.pk,
        world.a.pk,
        paper.pk,
        "选型指南",
    )
    assert body["url"] == f"http://testserver/s/{link.token}/"
    assert body["totals"] == {
        "opens": 0,
        "viewers": 0,
        "contacts": 0,
        "seconds": 0,
        "last_opened_at": None,
    }


@pytest.mark.parametrize("case", ["other unit", "both", "neither", "draft page"])
def test_a_link_that_may_not_be_made_is_a_clear_400(world, api, case):
    api.force_authenticate(world.sales)
    data = {
        "other unit": {"asset": make_asset(world.b).pk},
        "both": {"asset": make_asset(world.a).pk, "landing_page": make_page(world.a).pk},
        "neither": {"note": "x"},
        "draft page": {"landing_page": make_page(world.a, slug="d", published=False).pk},
    }[case]

    response = api.post(LINKS, data, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert ShareLink.objects.count() == 0


def test_the_list_shows_mine_and_for_editors_the_units_with_totals(world, api):
    # Given the salesperson's link opened by a known contact for 50 s, and a B link
    mine = make_link(world.sales, asset=make_asset(world.a))
    make_link(world.b_marketer, asset=make_asset(world.b))
    browser, _aid = known_browser(make_contact(world.a))
    view_id, key = beat_values(browser.get(f"/s/{mine.token}/").text)
    opened_ago(view_id, 60)
    beat(browser, mine, view_id, key, 50)
    share_views_process([view_id])

    # When the salesperson, an SDR and the marketer of A list links
    api.force_authenticate(world.sales)
    own = api.get(LINKS).json()["results"]
    api.force_authenticate(world.sdr)
    sdr = api.get(LINKS).json()["results"]
    api.force_authenticate(world.marketer)
    marketer = api.get(LINKS).json()["results"]

    # Then the owner and the marketer see it with its totals; the SDR sees none
    assert [r["id"] for r in own] == [mine.pk]
    assert own[0]["totals"]["opens"] == 1
    assert own[0]["totals"]["contacts"] == 1
    assert own[0]["totals"]["seconds"] == 50
    assert sdr == []
    assert [r["id"] for r in marketer] == [mine.pk]


def test_the_viewers_of_a_link(world, api):
    link = make_link(world.sales, asset=make_asset(world.a))
    wang = make_contact(world.a)
    browser, _aid = known_browser(wang)
    browser.get(f"/s/{link.token}/", REMOTE_ADDR="203.0.113.5")
    api.force_authenticate(world.sales)

    response = api.get(f"{LINKS}{link.pk}/views/")

    assert response.status_code == 200
    row = response.json()["results"][0]
    assert row["contact"] == {"id": wang.pk, "name": "王芳", "company_name": "华澜生物"}
    assert (row["ip"], row["device"], row["seconds"]) == ("203.0.113.5", "WeChat · iPhone", 0)
    api.force_authenticate(world.sdr)
    assert api.get(f"{LINKS}{link.pk}/views/").status_code == 404


def test_deactivating_by_the_owner_and_not_by_a_stranger(world, api):
    link = make_link(world.sales, asset=make_asset(world.a))
    api.force_authenticate(world.b_marketer)
    assert api.post(f"{LINKS}{link.pk}/deactivate/").status_code == 404
    api.force_authenticate(world.sales)

    response = api.post(f"{LINKS}{link.pk}/deactivate/")

    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert api.delete(f"{LINKS}{link.pk}/").status_code == 405


def test_the_list_costs_the_same_at_any_size(world, api, django_assert_num_queries):
    make_link(world.marketer, asset=make_asset(world.a))
    api.force_authenticate(User.objects.get(pk=world.marketer.pk))  # no roles cached yet
    # the user's units and roles, the page of links, their totals
    with django_assert_num_queries(3):
        api.get(LINKS)
    for i in range(30):
        make_link(world.marketer, asset=make_asset(world.a, title=f"{i}"))
    api.force_authenticate(User.objects.get(pk=world.marketer.pk))
    with django_assert_num_queries(3):
        api.get(LINKS)
