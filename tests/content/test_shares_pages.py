"""Share-link pages: the console, the lead queue and the phone; who sees which links."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from apps.content.models import ShareLink, ShareView
from apps.content.services import shares as services
from apps.content.tasks.shares import share_views_process
from tests.content.test_shares import (
    DESKTOP_CHROME,
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
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_console_list_shows_my_links_with_their_totals(world):
    # Given a marketer's link opened twice by one known contact who read 70 s in all
    paper = make_asset(world.a, title="植物蛋白白皮书")
    link = make_link(world.marketer, asset=paper, note="展会跟进")
    browser, _aid = known_browser(make_contact(world.a))
    for seconds in (40, 30):
        view_id, key = beat_values(browser.get(f"/s/{link.token}/").text)
        opened_ago(view_id, 60)
        beat(browser, link, view_id, key, seconds)
    # … and a colleague's link, which is not "mine"
    make_link(world.sales, asset=make_asset(world.a, title="销售的链接"))

    # When the marketer opens their list
    response = signed_in(world.marketer).get("/console/shares/", **EN)

    # Then it shows the link, its copyable URL and its totals; not the colleague's
    assert response.status_code == 200
    text = response.text
    assert "植物蛋白白皮书" in text
    assert "展会跟进" in text
    assert f"http://testserver/s/{link.token}/" in text
    assert ">销售的链接</a>" not in text
    row = text[text.index("植物蛋白白皮书") :]
    cells = re.findall(r'<td class="num">([^<]*)</td>', row)[:4]
    assert cells == ["2", "1", "1", "1 min 10 s"]


def test_another_users_link_is_not_visible_to_a_colleague_without_content_edit(world):
    # Given a salesperson's link
    link = make_link(world.sales, asset=make_asset(world.a, title="只给我看"))
    sdr = signed_in(world.sdr)

    # When the SDR looks for it
    listing = sdr.get("/sdr/shares/?owner=all", **EN)
    detail = sdr.get(f"/sdr/shares/{link.pk}/", **EN)
    switch_off = sdr.post(f"/sdr/shares/{link.pk}/deactivate/")

    # Then it is not there, and its pages are "not found"; nothing changed
    assert listing.status_code == 200
    assert ">只给我看</a>" not in listing.text
    assert (detail.status_code, switch_off.status_code) == (404, 404)
    assert ShareLink.objects.get(pk=link.pk).is_active is True


def test_a_marketer_sees_and_filters_their_units_links_but_not_another_units(world):
    # Given links by a salesperson of unit A and by a marketer of unit B
    make_link(world.sales, asset=make_asset(world.a, title="A 的资料"))
    make_link(world.b_marketer, asset=make_asset(world.b, title="B 的资料"))
    marketer = signed_in(world.marketer)

    # When the marketer of A lists everyone's, then the salesperson's
    everyone = marketer.get("/console/shares/?owner=all", **EN)
    one = marketer.get(f"/console/shares/?owner={world.sales.pk}", **EN)
    stranger = marketer.get(f"/console/shares/?owner={world.b_marketer.pk}", **EN)

    # Then unit A's links show, unit B's never do
    assert ">A 的资料</a>" in everyone.text
    assert "B 的资料" not in everyone.text
    assert ">A 的资料</a>" in one.text
    assert ">B 的资料</a>" not in stranger.text
    assert f'<option value="{world.sales.pk}"' in everyone.text
    assert f'<option value="{world.b_marketer.pk}"' not in everyone.text


def test_a_non_editor_cannot_widen_the_list(world):
    make_link(world.sales, asset=make_asset(world.a, title="同事的资料"))
    response = signed_in(world.sdr).get(f"/sdr/shares/?owner={world.sales.pk}", **EN)
    assert ">同事的资料</a>" not in response.text


def test_creating_a_link_from_the_console_form(world):
    paper = make_asset(world.a, title="选型指南")
    marketer = signed_in(world.marketer)

    response = marketer.post(
        "/console/shares/", {"target": f"asset:{paper.pk}", "note": "给王总"}, **EN
    )

    link = ShareLink.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/console/shares/{link.pk}/"
    assert (link.owner_id, link.asset_id, link.note) == (world.marketer.pk, paper.pk, "给王总")


def test_a_bad_target_is_a_clear_400_and_stores_nothing(world):
    other_units = make_asset(world.b, title="B 的资料")
    marketer = signed_in(world.marketer)

    responses = [
        marketer.post("/console/shares/", {"target": f"asset:{other_units.pk}"}, **EN),
        marketer.post("/console/shares/", {"target": "asset:999999"}, **EN),
        marketer.post("/console/shares/", {"target": "nonsense"}, **EN),
    ]

    assert [r.status_code for r in responses] == [400, 400, 400]
    assert all("Pick an asset or a landing page from the list." in r.text for r in responses)
    assert ShareLink.objects.count() == 0


def test_the_viewer_list_names_known_contacts_and_counts_anonymous_ones(world):
    # Given a link opened by a known contact (95 s) and by an anonymous visitor
    link = make_link(world.marketer, asset=make_asset(world.a))
    wang = make_contact(world.a)
    browser, _aid = known_browser(wang)
    view_id, key = beat_values(browser.get(f"/s/{link.token}/").text)
    opened_ago(view_id, 100)
    beat(browser, link, view_id, key, 95)
    Client(HTTP_USER_AGENT=DESKTOP_CHROME).get(f"/s/{link.token}/", REMOTE_ADDR="198.51.100.7")
    share_views_process([view_id])

    # When the sharer opens the viewer list in the console
    response = signed_in(world.marketer).get(f"/console/shares/{link.pk}/", **EN)

    # Then both are listed, the contact linked to her page, with read time, place and device
    text = response.text
    assert f'<a href="/console/contacts/{wang.pk}/">王芳</a>' in text
    assert "华澜生物" in text
    assert "Anonymous visitor" in text
    assert "1 min 35 s" in text
    assert "198.51.100.7" in text
    assert "WeChat · iPhone" in text
    assert "Chrome · Windows" in text
    totals = re.findall(r"<li><b>([^<]*)</b><span>([^<]*)</span></li>", text)
    assert totals == [
        ("2", "Opens"),
        ("2", "Unique viewers"),
        ("1", "Known contacts"),
        ("1 min 35 s", "Total read time"),
    ]


def test_a_contact_name_with_markup_renders_as_text(world):
    link = make_link(world.marketer, asset=make_asset(world.a))
    evil = make_contact(world.a, name="<img src=x onerror=alert(1)>", email="evil@example.cn")
    browser, _aid = known_browser(evil)
    browser.get(f"/s/{link.token}/")

    response = signed_in(world.marketer).get(f"/console/shares/{link.pk}/", **EN)

    assert "<img src=x onerror=alert(1)>" not in response.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in response.text


def test_bots_are_not_listed_or_counted(world):
    link = make_link(world.marketer, asset=make_asset(world.a))
    Client(HTTP_USER_AGENT="Mozilla/5.0 (compatible; bingbot/2.0)").get(f"/s/{link.token}/")

    response = signed_in(world.marketer).get(f"/console/shares/{link.pk}/", **EN)

    assert ShareView.objects.filter(is_bot=True).count() == 1
    assert "Nobody has opened this link yet." in response.text


def test_the_owner_switches_a_link_off(world):
    link = make_link(world.sdr, asset=make_asset(world.a))

    response = signed_in(world.sdr).post(f"/sdr/shares/{link.pk}/deactivate/")

    assert response.status_code == 302
    assert ShareLink.objects.get(pk=link.pk).is_active is False
    assert Client().get(f"/s/{link.token}/").status_code == 410


def test_one_tap_on_the_phone_makes_my_link_and_a_second_tap_reuses_it(world):
    paper = make_asset(world.a, title="手机上分享")
    phone = signed_in(world.sales)

    first = phone.post("/m/shares/", {"target": f"asset:{paper.pk}"})
    second = phone.post("/m/shares/", {"target": f"asset:{paper.pk}"})
    listing = phone.get("/m/shares/", **EN)

    link = ShareLink.objects.get()
    assert (first.status_code, second.status_code) == (302, 302)
    assert first["Location"] == f"/m/shares/?kind=assets#asset-{paper.pk}"
    assert link.owner_id == world.sales.pk
    assert f"http://testserver/s/{link.token}/" in listing.text
    assert "Get my link" not in listing.text


def test_the_phone_refuses_content_of_another_unit(world):
    other = make_asset(world.b)
    response = signed_in(world.sales).post("/m/shares/", {"target": f"asset:{other.pk}"})
    assert response.status_code == 404
    assert ShareLink.objects.count() == 0


def test_the_phone_lists_published_pages_and_my_links(world):
    make_page(world.a, title="已发布页面")
    make_page(world.a, title="草稿页面", slug="draft", published=False)
    link = make_link(world.sales, asset=make_asset(world.a, title="我的资料"))
    phone = signed_in(world.sales)

    pages = phone.get("/m/shares/?kind=pages", **EN)
    mine = phone.get("/m/shares/?tab=links", **EN)
    detail = phone.get(f"/m/shares/{link.pk}/", **EN)

    assert "已发布页面" in pages.text
    assert "草稿页面" not in pages.text
    assert "我的资料" in mine.text
    assert detail.status_code == 200
    assert "Nobody has opened this link yet." in detail.text


def test_pages_need_the_right_surface_and_role(world):
    assert signed_in(world.viewer).get("/console/shares/").status_code == 403
    assert signed_in(world.sales).get("/console/shares/").status_code == 403
    assert Client().get("/m/shares/").status_code == 302


def test_the_pages_render_in_chinese(world):
    link = make_link(world.marketer, asset=make_asset(world.a))
    marketer = signed_in(world.marketer)
    assert '<html lang="zh-hans">' in marketer.get("/console/shares/").text
    assert '<html lang="zh-hans">' in marketer.get(f"/console/shares/{link.pk}/").text


def test_a_shared_landing_page_renders_its_blocks_with_the_share_token(world):
    page = make_page(world.a, title="春季新品发布")
    link = make_link(world.sales, landing_page=page)

    response = Client(HTTP_USER_AGENT=DESKTOP_CHROME).get(f"/s/{link.token}/")

    assert response.status_code == 200
    assert "春季新品发布" in response.text
    assert "content-share.js" in response.text
    assert ShareView.objects.filter(link=link).count() == 1


# --- Query counts --------------------------------------------------------------------------


def _many_links(world, n):
    for i in range(n):
        link = make_link(world.marketer, asset=make_asset(world.a, title=f"资料{i}"))
        Client(HTTP_USER_AGENT=DESKTOP_CHROME).get(f"/s/{link.token}/")


def test_the_link_list_costs_the_same_for_one_link_or_a_full_page(world, django_assert_num_queries):
    marketer = signed_in(world.marketer)
    _many_links(world, 1)
    marketer.get("/console/shares/")
    # session, user, units and roles, the page of links, their totals, the owner filter,
    # the form's assets, pages and campaigns, the unit switcher, the bell
    with django_assert_num_queries(11):
        marketer.get("/console/shares/")
    _many_links(world, 35)
    with django_assert_num_queries(11):
        marketer.get("/console/shares/")


def test_the_viewer_list_costs_the_same_at_any_size(world, django_assert_num_queries):
    link = make_link(world.marketer, asset=make_asset(world.a))
    wang = make_contact(world.a)
    browser, _aid = known_browser(wang)
    browser.get(f"/s/{link.token}/")
    marketer = signed_in(world.marketer)
    marketer.get(f"/console/shares/{link.pk}/")
    # session, user, units and roles (the surfaces reuse them), the link, its views with
    # their contacts, its totals, the unit switcher, the bell
    with django_assert_num_queries(8):
        marketer.get(f"/console/shares/{link.pk}/")
    for _ in range(60):
        browser.get(f"/s/{link.token}/")
    with django_assert_num_queries(8):
        first = marketer.get(f"/console/shares/{link.pk}/")
    cursor = re.search(r'cursor=([^"&]+)" rel="next"', first.text).group(1)
    with django_assert_num_queries(8):
        marketer.get(f"/console/shares/{link.pk}/?cursor={cursor}")


def test_the_phone_content_list_costs_the_same_at_any_size(world, django_assert_num_queries):
    phone = signed_in(world.sales)
    make_asset(world.a)
    phone.get("/m/shares/")
    # session, user, units and roles, the page of assets, my links to them, the bell
    with django_assert_num_queries(6):
        phone.get("/m/shares/")
    for i in range(40):
        services.share_link_for(
            owner=world.sales, asset=make_asset(world.a, title=f"{i}"), acting_user=world.sales
        )
    with django_assert_num_queries(6):
        phone.get("/m/shares/")


def test_the_phone_home_card_counts_this_weeks_opens_of_my_links(world):
    link = make_link(world.sales, asset=make_asset(world.a))
    browser, _aid = known_browser(make_contact(world.a))
    browser.get(f"/s/{link.token}/")
    Client(HTTP_USER_AGENT=DESKTOP_CHROME).get(f"/s/{link.token}/")
    old = beat_values(Client(HTTP_USER_AGENT=DESKTOP_CHROME).get(f"/s/{link.token}/").text)[0]
    opened_ago(old, 8 * 86400)

    home = signed_in(world.sales).get("/m/", **EN).text

    card = home[home.index("Opens of my links, last 7 days") :]
    assert re.search(r'<p class="value">(\d+)</p>', card).group(1) == "2"
    assert "1 known contact among them" in card
