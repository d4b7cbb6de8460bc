"""Notifications: the bell in every shell, the list page, and the API."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import timezone

from apps.core.models import Notification
from apps.core.services import notification_send, notifications_mark_read

pytestmark = pytest.mark.django_db
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def notify(user, n=1, **fields):
    made = []
    for i in range(n):
        made.append(
            notification_send(
                user_id=user.pk,
                kind=fields.get("kind", "share_opened"),
                title=fields.get("title", f"王芳 opened your link “白皮书 {i}”"),
                url=fields.get("url", "/m/shares/1/"),
            )
        )
    return made


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def badge(html: str) -> str | None:
    found = re.search(r'<span class="bell-badge">([^<]*)</span>', html)
    return found.group(1) if found else None


# --- The bell ------------------------------------------------------------------------------


def test_the_bell_counts_my_unread_notifications_in_every_surface(world):
    # Given three unread and one read notification for the admin, and one for someone else
    notify(world.admin, 3)
    read = notify(world.admin, 1)[0]
    notifications_mark_read(user=world.admin, ids=[read.pk])
    notify(world.marketer, 1)
    admin = signed_in(world.admin)

    # When the admin opens each surface
    pages = [admin.get(url, **EN) for url in ("/console/", "/sdr/", "/m/")]

    # Then each shell's bell says 3 and links to the list
    assert [badge(p.text) for p in pages] == ["3", "3", "3"]
    assert all('aria-label="Notifications, 3 unread"' in p.text for p in pages)
    assert 'href="/notifications/?surface=mobile"' in pages[2].text


def test_no_badge_when_nothing_is_unread(world):
    page = signed_in(world.sales).get("/m/", **EN)
    assert badge(page.text) is None
    assert 'aria-label="Notifications"' in page.text


def test_the_badge_stops_at_99_plus(world):
    Notification.objects.bulk_create(
        [Notification(user=world.sdr, kind="x", title=f"t{i}") for i in range(120)]
    )
    assert badge(signed_in(world.sdr).get("/sdr/").text) == "99+"


def test_the_bell_costs_one_count_query(world, django_assert_num_queries):
    notify(world.admin, 5)
    admin = signed_in(world.admin)
    admin.get("/notifications/")
    # session, user, roles, the bell's COUNT, the page of notifications, the unit switcher
    with django_assert_num_queries(6):
        admin.get("/notifications/")


# --- The list page -------------------------------------------------------------------------


def test_the_list_shows_only_my_notifications_newest_first(world):
    notify(world.sales, 1, title="first")
    notify(world.sales, 1, title="second")
    notify(world.marketer, 1, title="not yours")

    page = signed_in(world.sales).get("/notifications/", **EN)

    assert page.status_code == 200
    assert page.text.index("second") < page.text.index("first")
    assert "not yours" not in page.text
    # a salesperson's list lives in the phone shell
    assert 'class="mobile"' in page.text


def test_the_list_pages_by_cursor(world, django_assert_num_queries):
    notify(world.marketer, 65)
    marketer = signed_in(world.marketer)

    first = marketer.get("/notifications/", **EN)
    cursor = re.search(r'cursor=([^"&]+)" rel="next"', first.text).group(1)
    with django_assert_num_queries(6):
        second = marketer.get(f"/notifications/?surface=console&cursor={cursor}", **EN)

    assert "“白皮书 64”" in first.text
    assert "“白皮书 34”" not in first.text
    assert "“白皮书 34”" in second.text
    assert "“白皮书 64”" not in second.text


def test_clicking_a_notification_marks_it_read_and_goes_to_its_page(world):
    notice = notify(world.sales, 1, url="/m/shares/42/")[0]
    other = notify(world.marketer, 1)[0]
    sales = signed_in(world.sales)

    response = sales.get(f"/notifications/{notice.pk}/")
    stranger = sales.get(f"/notifications/{other.pk}/")

    assert (response.status_code, response["Location"]) == (302, "/m/shares/42/")
    assert Notification.objects.get(pk=notice.pk).read_at is not None
    assert stranger.status_code == 404
    assert Notification.objects.get(pk=other.pk).read_at is None


def test_a_notification_pointing_off_site_is_not_followed(world):
    notice = notify(world.sales, 1, url="https://evil.example/")[0]
    response = signed_in(world.sales).get(f"/notifications/{notice.pk}/")
    assert response["Location"] == "/notifications/?surface=mobile"


def test_marking_one_and_all_read(world):
    one, _two, _three = notify(world.marketer, 3)
    theirs = notify(world.sales, 1)[0]
    marketer = signed_in(world.marketer)

    marketer.post("/notifications/read/", {"id": one.pk, "surface": "console"})
    assert Notification.objects.filter(user=world.marketer, read_at__isnull=True).count() == 2

    response = marketer.post("/notifications/read/", {"surface": "console"})

    assert response["Location"] == "/notifications/?surface=console"
    assert Notification.objects.filter(user=world.marketer, read_at__isnull=True).count() == 0
    assert Notification.objects.get(pk=theirs.pk).read_at is None


def test_marking_someone_elses_notification_changes_nothing(world):
    theirs = notify(world.sales, 1)[0]
    signed_in(world.marketer).post("/notifications/read/", {"id": theirs.pk})
    assert Notification.objects.get(pk=theirs.pk).read_at is None


def test_the_unread_filter(world):
    read, _unread = notify(world.marketer, 2)
    notifications_mark_read(user=world.marketer, ids=[read.pk])

    page = signed_in(world.marketer).get("/notifications/?unread=1", **EN)

    assert "“白皮书 1”" in page.text
    assert "“白皮书 0”" not in page.text


def test_the_list_needs_login_and_works_in_chinese(world):
    assert Client().get("/notifications/").status_code == 302
    page = signed_in(world.marketer).get("/notifications/")
    assert '<html lang="zh-hans">' in page.text


# --- API -----------------------------------------------------------------------------------


def test_the_api_lists_only_my_notifications_and_filters_unread(world, api):
    read, unread = notify(world.sales, 2)
    notifications_mark_read(user=world.sales, ids=[read.pk])
    notify(world.marketer, 1)
    api.force_authenticate(world.sales)

    everything = api.get("/api/v1/notifications/")
    only_unread = api.get("/api/v1/notifications/?unread=true")

    assert [n["id"] for n in everything.json()["results"]] == [unread.pk, read.pk]
    assert [n["id"] for n in only_unread.json()["results"]] == [unread.pk]
    assert set(everything.json()["results"][0]) == {
        "id",
        "kind",
        "title",
        "body",
        "url",
        "unit",
        "created_at",
        "read_at",
    }


def test_the_api_marks_one_some_or_all_read(world, api):
    a, b, _c, _d = notify(world.sales, 4)
    theirs = notify(world.marketer, 1)[0]
    api.force_authenticate(world.sales)

    one = api.post(f"/api/v1/notifications/{a.pk}/read/")
    some = api.post("/api/v1/notifications/read/", {"ids": [b.pk, theirs.pk]}, format="json")
    rest = api.post("/api/v1/notifications/read/", {}, format="json")

    assert one.status_code == 200
    assert one.json()["read_at"] is not None
    assert some.json() == {"marked": 1}
    assert rest.json() == {"marked": 2}
    assert Notification.objects.get(pk=theirs.pk).read_at is None
    assert api.post(f"/api/v1/notifications/{theirs.pk}/read/").status_code == 404


def test_the_api_refuses_bad_ids(world, api):
    api.force_authenticate(world.sales)
    response = api.post("/api/v1/notifications/read/", {"ids": ["x"]}, format="json")
    assert response.status_code == 400
    assert "ids" in response.json()["error"]["fields"]


def test_a_repeated_notice_with_a_dedupe_key_is_sent_once(world):
    first = notification_send(user_id=world.sales.pk, kind="k", title="t", dedupe_key="k:1")
    second = notification_send(user_id=world.sales.pk, kind="k", title="t", dedupe_key="k:1")
    assert first is not None
    assert second is None
    assert Notification.objects.filter(user=world.sales).count() == 1
    assert Notification.objects.get().created_at <= timezone.now()
