"""API: WeChat accounts (secret shown once) and follow/unfollow events (batch, idempotent,
per-item errors); and the console page."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from apps.contacts.models import Activity, ConsentEvent, ConsentState, Contact, WeChatAccount
from apps.content.services import wechat as services
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")
APP_ID = "wx5f3c1a2b4d6e8f01"
EVENTS = "/api/v1/wechat/events"


@pytest.fixture
def account(world) -> WeChatAccount:
    return services.wechat_account_create(
        unit=world.a, name="华澜生命科学", app_id=APP_ID, acting_user=SYSTEM
    )


def _event(
    openid="oFOLLOWER000000000000000001", event="follow", at="2026-11-20T09:15:00+08:00", **extra
):
    return {"app_id": APP_ID, "openid": openid, "event": event, "occurred_at": at, **extra}


# --- Accounts ------------------------------------------------------------------------------


def test_creating_an_account_shows_the_secret_once(world, api):
    api.force_authenticate(world.marketer)

    created = api.post(
        "/api/v1/wechat/accounts/",
        {"unit": world.a.pk, "name": "华澜生命科学", "app_id": APP_ID},
        format="json",
    )
    listed = api.get("/api/v1/wechat/accounts/")

    assert created.status_code == 201
    secret = created.json()["callback_secret"]
    assert len(secret) == 64
    assert created.json()["callback_url"] == f"http://testserver/wx/oauth/{APP_ID}/callback"
    row = listed.json()["results"][0]
    assert "callback_secret" not in row
    assert row["secret_hint"] == f"…{secret[-4:]}"
    assert secret not in listed.content.decode()


def test_account_errors_use_the_shared_shape(world, api, account):
    api.force_authenticate(world.marketer)

    bad = api.post(
        "/api/v1/wechat/accounts/",
        {"unit": world.a.pk, "name": "x", "app_id": "wx1"},
        format="json",
    )
    taken = api.post(
        "/api/v1/wechat/accounts/",
        {"unit": world.a.pk, "name": "x", "app_id": APP_ID},
        format="json",
    )
    other_unit = api.post(
        "/api/v1/wechat/accounts/",
        {"unit": world.b.pk, "name": "x", "app_id": "wx7a9b2c4d6e8f1a02"},
        format="json",
    )

    assert [r.status_code for r in (bad, taken, other_unit)] == [400, 400, 400]
    assert bad.json()["error"]["fields"]["app_id"][0].startswith("An app id is “wx”")
    assert taken.json()["error"]["fields"]["app_id"] == ["This app id is already registered."]
    assert "unit" in other_unit.json()["error"]["fields"]
    assert WeChatAccount.objects.count() == 1


def test_another_units_account_is_not_found_and_roles_without_configure_see_none(
    world, api, account
):
    api.force_authenticate(world.b_marketer)
    assert api.get(f"/api/v1/wechat/accounts/{account.pk}/").status_code == 404
    api.force_authenticate(world.sales)
    assert api.get("/api/v1/wechat/accounts/").json()["results"] == []


def test_renaming_keeps_the_app_id_and_rotating_returns_a_new_secret(world, api, account):
    api.force_authenticate(world.marketer)
    old = account.callback_secret

    renamed = api.patch(
        f"/api/v1/wechat/accounts/{account.pk}/",
        {"name": "新名字", "app_id": "wx0000000000000000"},
        format="json",
    )
    rotated = api.post(f"/api/v1/wechat/accounts/{account.pk}/rotate-secret/")

    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["app_id"]) == ("新名字", APP_ID)
    assert rotated.status_code == 200
    account.refresh_from_db()
    assert rotated.json()["callback_secret"] == account.callback_secret != old
    assert api.delete(f"/api/v1/wechat/accounts/{account.pk}/").status_code == 405


# --- Follow / unfollow events ------------------------------------------------------------


def test_follow_events_are_idempotent(world, api, account):
    # Given an integrator pushing two follows
    api.force_authenticate(world.marketer)
    batch = {"events": [_event(), _event(openid="oFOLLOWER000000000000000002", unionid="uX1")]}

    # When the same batch arrives twice
    first = api.post(EVENTS, batch, format="json")
    second = api.post(EVENTS, batch, format="json")

    # Then two people, two follows and their consent, recorded once
    assert first.status_code == second.status_code == 200
    assert (first.json()["created"], first.json()["duplicates"]) == (2, 0)
    assert (second.json()["created"], second.json()["duplicates"]) == (0, 2)
    assert [r["status"] for r in second.json()["results"]] == ["duplicate", "duplicate"]
    assert Contact.objects.count() == 2
    assert Activity.objects.filter(type="wechat_follow").count() == 2
    assert ConsentEvent.objects.count() == 2
    follow = Activity.objects.filter(type="wechat_follow").first()
    assert (follow.object_type, follow.object_id) == ("wechat_account", APP_ID)


def test_the_same_moment_written_in_another_zone_is_the_same_event(world, api, account):
    api.force_authenticate(world.marketer)
    api.post(EVENTS, _event(at="2026-11-20T09:15:00+08:00"), format="json")

    again = api.post(EVENTS, [_event(at="2026-11-20T01:15:00Z")], format="json")

    assert again.json()["results"][0]["status"] == "duplicate"


def test_unfollow_withdraws_wechat_consent(world, api, account):
    api.force_authenticate(world.marketer)
    api.post(EVENTS, _event(at="2026-11-20T09:00:00+08:00"), format="json")

    response = api.post(
        EVENTS, _event(event="unfollow", at="2026-11-21T09:00:00+08:00"), format="json"
    )

    assert response.json()["results"][0]["status"] == "created"
    contact = Contact.objects.get()
    state = ConsentState.objects.get(contact=contact, channel="wechat")
    assert state.granted is False
    assert Activity.objects.filter(contact=contact, type="wechat_unfollow").count() == 1


def test_a_late_follow_does_not_undo_a_newer_unfollow(world, api, account):
    api.force_authenticate(world.marketer)
    api.post(EVENTS, _event(event="unfollow", at="2026-11-21T09:00:00+08:00"), format="json")
    api.post(EVENTS, _event(event="follow", at="2026-11-20T09:00:00+08:00"), format="json")
    assert ConsentState.objects.get(channel="wechat").granted is False


def test_bad_items_get_their_own_errors_and_the_good_ones_are_kept(world, api, account):
    api.force_authenticate(world.marketer)
    future = (timezone.now() + timezone.timedelta(hours=1)).isoformat()

    response = api.post(
        EVENTS,
        [
            _event(),
            _event(event="subscribe"),
            {**_event(), "app_id": "wx0000000000000000"},
            _event(at=future),
            _event(openid="has space"),
            "not an object",
        ],
        format="json",
    )

    body = response.json()
    assert response.status_code == 200
    assert (body["created"], body["duplicates"], body["errors"]) == (1, 0, 5)
    errors = {r["index"]: r.get("errors") for r in body["results"]}
    assert errors[0] is None
    assert list(errors[1]) == ["event"]
    assert errors[2] == {"app_id": ["No active official account of your units has this app id."]}
    assert errors[3] == {"occurred_at": ["This time is in the future."]}
    assert list(errors[4]) == ["openid"]
    assert list(errors[5]) == ["non_field_errors"]
    assert Activity.objects.count() == 1


def test_a_request_with_nothing_valid_is_400_and_stores_nothing(world, api, account):
    api.force_authenticate(world.marketer)

    cases = [
        api.post(EVENTS, [_event(event="x")], format="json"),
        api.post(EVENTS, {"events": "nope"}, format="json"),
        api.post(EVENTS, [], format="json"),
        api.post(EVENTS, [_event()] * 501, format="json"),
        api.post(EVENTS, "{not json", content_type="application/json"),
    ]

    assert [r.status_code for r in cases] == [400, 400, 400, 400, 400]
    assert all("error" in r.json() for r in cases)
    assert cases[3].json()["error"]["code"] == "too_many"
    assert Contact.objects.count() == 0


def test_events_for_another_units_account_are_refused(world, api, account):
    api.force_authenticate(world.b_marketer)
    response = api.post(EVENTS, [_event()], format="json")
    assert response.status_code == 400
    assert Contact.objects.count() == 0


def test_events_need_a_signed_in_caller(api, account):
    assert api.post(EVENTS, [_event()], format="json").status_code in (401, 403)


# --- Console page --------------------------------------------------------------------------


def test_the_console_page_adds_an_account_and_shows_the_secret_once(world):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(world.marketer)

    created = client.post(
        f"/console/wechat/?unit={world.a.pk}", {"name": "华澜生命科学", "app_id": APP_ID}
    )
    account = WeChatAccount.objects.get()
    first = client.get(f"/console/wechat/{account.pk}/")
    second = client.get(f"/console/wechat/{account.pk}/")

    assert created.status_code == 302
    assert account.callback_secret in first.text
    assert account.callback_secret not in second.text
    assert f"http://testserver/wx/oauth/{APP_ID}/callback" in second.text
    listing = client.get("/console/wechat/")
    assert APP_ID in listing.text
    assert "WeChat accounts" in listing.text  # the nav entry


def test_the_console_page_is_for_configurers_of_the_unit(world, account):
    viewer = Client()
    viewer.force_login(world.viewer)
    other = Client()
    other.force_login(world.b_marketer)

    assert viewer.get("/console/wechat/").status_code == 403
    assert other.get(f"/console/wechat/{account.pk}/").status_code == 404
    assert other.post(f"/console/wechat/{account.pk}/rotate-secret/").status_code == 404


def test_a_bad_app_id_in_the_console_is_a_clear_400(world):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(world.marketer)
    response = client.post(f"/console/wechat/?unit={world.a.pk}", {"name": "x", "app_id": "abc"})
    assert response.status_code == 400
    assert "An app id is “wx” followed by 16 letters or digits" in response.text
    assert WeChatAccount.objects.count() == 0


def test_the_console_list_costs_the_same_at_any_size(world, django_assert_num_queries):
    client = Client()
    client.force_login(world.marketer)
    services.wechat_account_create(unit=world.a, name="1", app_id=APP_ID, acting_user=SYSTEM)
    client.get("/console/wechat/")
    # session, user, roles, configurable units, the page of accounts, the unit switcher, the bell
    with django_assert_num_queries(7):
        client.get("/console/wechat/")
    for i in range(60):
        services.wechat_account_create(
            unit=world.a, name=f"{i}", app_id=f"wx{i:016d}", acting_user=SYSTEM
        )
    with django_assert_num_queries(7):
        client.get("/console/wechat/")
