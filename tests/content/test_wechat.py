"""WeChat entry points: the signed OAuth callback, follow/unfollow events, accounts."""

from __future__ import annotations

import uuid
from datetime import timedelta
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from apps.contacts.models import (
    Activity,
    Channel,
    Contact,
    Identity,
    WeChatAccount,
)
from apps.contacts.services.activities import ActivityIn, activities_record
from apps.content.services import wechat as services
from apps.core.models import AuditLog
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")
APP_ID = "wx5f3c1a2b4d6e8f01"
OPENID = "oWx1a2b3c4d5e6f7g8h9i0jklmno"
UNIONID = "uWxUNION0001"


@pytest.fixture
def account(world) -> WeChatAccount:
    return services.wechat_account_create(
        unit=world.a, name="华澜生命科学", app_id=APP_ID, acting_user=SYSTEM
    )


def _counts():
    return (Contact.objects.count(), Identity.objects.count(), Activity.objects.count())


def _browsed_anonymously(world, n=3) -> tuple[Client, str]:
    """A browser that viewed ``n`` pages before anyone knew who it was."""
    anonymous_id = str(uuid.uuid4())
    activities_record(
        [
            ActivityIn(
                unit_id=world.a.pk,
                type="page_view",
                occurred_at=timezone.now() - timedelta(minutes=10 - i),
                anonymous_id=anonymous_id,
                dedupe_key=f"pv-{anonymous_id}-{i}",
            )
            for i in range(n)
        ]
    )
    browser = Client(HTTP_ACCEPT_LANGUAGE="en")
    browser.cookies["ll_aid"] = anonymous_id
    return browser, anonymous_id


# --- The OAuth callback --------------------------------------------------------------------


def test_a_valid_callback_identifies_the_visitor_and_links_their_earlier_activity(world, account):
    # Given a visitor who browsed three pages anonymously, and the unit's WeChat channel
    wechat = Channel.objects.create(unit=world.a, code="wechat-mp", name="公众号", kind="wechat")
    browser, anonymous_id = _browsed_anonymously(world)

    # When the WeChat bridge sends them to our callback, signed
    url = services.wechat_callback_url(account, OPENID, UNIONID, "/p/spring/?utm_source=wx")
    response = browser.get(url)

    # Then they go on to the page, keeping their visitor cookie
    assert response.status_code == 302
    assert response["Location"] == "/p/spring/?utm_source=wx"
    assert response.cookies["ll_aid"].value == anonymous_id
    # … and one contact holds the openid (scoped by the app id), the unionid and the
    # anonymous id, with all four activities on their timeline
    contact = Contact.objects.get()
    keys = set(Identity.objects.filter(contact=contact).values_list("kind", "scope", "value"))
    assert keys == {
        ("wechat_openid", APP_ID, OPENID),
        ("wechat_unionid", "", UNIONID),
        ("anonymous", "", anonymous_id),
    }
    activities = Activity.objects.filter(contact=contact)
    assert sorted(activities.values_list("type", flat=True)) == [
        "page_view",
        "page_view",
        "page_view",
        "wechat_oauth",
    ]
    oauth = activities.get(type="wechat_oauth")
    assert (oauth.object_type, oauth.object_id, oauth.channel_id) == (
        "wechat_account",
        APP_ID,
        wechat.pk,
    )
    contact.refresh_from_db()
    assert contact.latest_touch_channel_id == wechat.pk


def test_replaying_the_same_signed_link_adds_nothing(world, account):
    browser, _aid = _browsed_anonymously(world, n=0)
    url = services.wechat_callback_url(account, OPENID)
    browser.get(url)
    before = _counts()

    again = browser.get(url)

    assert again.status_code == 200
    assert _counts() == before == (1, 2, 1)


@pytest.mark.parametrize(
    "tamper",
    ["signature", "openid", "next", "unionid", "other secret"],
)
def test_a_bad_signature_is_403_and_nothing_is_stored(world, account, tamper):
    # Given a signed link that has been changed after signing
    browser, _aid = _browsed_anonymously(world)
    url = services.wechat_callback_url(account, OPENID, "", "/p/spring/")
    path, query = url.split("?")
    params = {k: v[0] for k, v in parse_qs(query).items()}
    if tamper == "signature":
        params["sig"] = "0" * 64
    elif tamper == "openid":
        params["openid"] = "oSOMEONE_ELSE"
    elif tamper == "next":
        params["next"] = "/p/other/"
    elif tamper == "unionid":
        params["unionid"] = "uSTOLEN"
    elif tamper == "other secret":
        other = WeChatAccount(app_id=APP_ID, callback_secret="x" * 64)
        params["sig"] = parse_qs(
            services.wechat_callback_url(other, OPENID, "", "/p/spring/").split("?")[1]
        )["sig"][0]
    before = _counts()

    # When the browser arrives with it
    response = browser.get(path, params)

    # Then it is refused, saying why, and nothing is stored
    assert response.status_code == 403
    assert "This WeChat sign-in link is not valid." in response.text
    assert _counts() == before
    assert "ll_aid" not in response.cookies


def test_an_expired_link_is_403_and_nothing_is_stored(world, account):
    browser, _aid = _browsed_anonymously(world)
    old = int((timezone.now() - timedelta(minutes=11)).timestamp())
    future = int((timezone.now() + timedelta(minutes=11)).timestamp())
    before = _counts()

    responses = [
        browser.get(services.wechat_callback_url(account, OPENID, ts=old)),
        browser.get(services.wechat_callback_url(account, OPENID, ts=future)),
    ]

    assert [r.status_code for r in responses] == [403, 403]
    assert "This WeChat sign-in link has expired." in responses[0].text
    assert _counts() == before


def test_a_link_nine_minutes_old_still_works(world, account):
    browser, _aid = _browsed_anonymously(world, n=0)
    recent = int((timezone.now() - timedelta(minutes=9)).timestamp())
    assert browser.get(services.wechat_callback_url(account, OPENID, ts=recent)).status_code == 200
    assert Contact.objects.count() == 1


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "http://testserver.evil.example/",
        "javascript:alert(1)",
        "evil.example",
    ],
)
def test_next_elsewhere_is_not_followed(world, account, target):
    browser, _aid = _browsed_anonymously(world, n=0)

    response = browser.get(services.wechat_callback_url(account, OPENID, "", target))

    # The visitor is identified (the link was genuine) but stays on our page
    assert response.status_code == 200
    assert "Location" not in response
    assert "You are signed in with WeChat" in response.text
    assert Contact.objects.count() == 1


def test_missing_or_oversized_parameters_are_400_and_nothing_is_stored(world, account):
    browser = Client(HTTP_ACCEPT_LANGUAGE="en")
    path = f"/wx/oauth/{APP_ID}/callback"

    responses = [
        browser.get(path),
        browser.get(path, {"openid": OPENID, "ts": "1"}),
        browser.get(path, {"openid": "o" * 400, "ts": "1", "sig": "a"}),
    ]

    assert [r.status_code for r in responses] == [400, 400, 400]
    assert "it needs openid, ts and sig" in responses[0].text
    assert _counts() == (0, 0, 0)


def test_an_unknown_or_switched_off_account_is_404(world, account):
    services.wechat_account_update(
        account=account, name="停用", is_active=False, acting_user=SYSTEM
    )
    browser = Client(HTTP_ACCEPT_LANGUAGE="en")

    switched_off = browser.get(services.wechat_callback_url(account, OPENID))
    unknown = browser.get("/wx/oauth/wx0000000000000000/callback?openid=o&ts=1&sig=a")

    assert (switched_off.status_code, unknown.status_code) == (404, 404)
    assert _counts() == (0, 0, 0)


def test_the_openid_is_scoped_by_the_app_id(world, account):
    # Given the same openid string from two official accounts of the group
    other = services.wechat_account_create(
        unit=world.b, name="B 公众号", app_id="wx7a9b2c4d6e8f1a02", acting_user=SYSTEM
    )

    Client().get(services.wechat_callback_url(account, OPENID))
    Client().get(services.wechat_callback_url(other, OPENID))

    # Then they are two people (an openid means nothing without its account)
    assert Contact.objects.count() == 2


def test_the_helper_url_verifies(account):
    url = services.wechat_callback_url(account, OPENID, UNIONID, "/p/a/", ts=1_700_000_000)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    params = services.callback_params(
        app_id=APP_ID, openid=OPENID, unionid=UNIONID, ts="1700000000", next_url="/p/a/"
    )
    assert urlsplit(url).path == f"/wx/oauth/{APP_ID}/callback"
    assert services.callback_verify(account.callback_secret, params, query["sig"])
    assert not services.callback_verify("another secret", params, query["sig"])


def test_the_simulate_command_prints_a_working_link(world, account):
    out = StringIO()
    call_command("wechat_simulate", APP_ID, "--openid", OPENID, "--next", "/p/x/", stdout=out)
    url = out.getvalue().strip()

    assert url.startswith(f"http://127.0.0.1:8000/wx/oauth/{APP_ID}/callback?")
    response = Client().get(url.removeprefix("http://127.0.0.1:8000"))
    assert (response.status_code, response["Location"]) == (302, "/p/x/")
    with pytest.raises(CommandError):
        call_command("wechat_simulate", "wx0000000000000000", stdout=StringIO())


# --- Accounts ------------------------------------------------------------------------------


def test_creating_an_account_makes_a_secret_and_is_audited_without_it(world, account):
    assert len(account.callback_secret) == 64
    audit = AuditLog.objects.get(action="wechat_account.create")
    assert audit.after == {"name": "华澜生命科学", "app_id": APP_ID, "is_active": True}
    assert account.callback_secret not in str(audit.after)


@pytest.mark.parametrize(
    ("app_id", "message"),
    [
        ("wx123", "An app id is “wx” followed by 16 letters or digits"),
        (APP_ID, "This app id is already registered."),
    ],
)
def test_a_bad_or_taken_app_id_is_refused(world, account, app_id, message):
    with pytest.raises(ValidationError) as caught:
        services.wechat_account_create(unit=world.a, name="x", app_id=app_id, acting_user=SYSTEM)
    assert message in caught.value.message_dict["app_id"][0]
    assert WeChatAccount.objects.count() == 1


def test_rotating_the_secret_stops_old_links(world, account):
    old_link = services.wechat_callback_url(account, OPENID)

    services.wechat_account_rotate_secret(account=account, acting_user=SYSTEM)

    assert Client().get(old_link).status_code == 403
    assert Client().get(services.wechat_callback_url(account, OPENID)).status_code == 200
