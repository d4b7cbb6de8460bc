"""Sign-in, landing, the surfaces' home pages and the console pages core owns."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from apps.core.models import ApiToken, AuditLog, User
from tests.factories import PASSWORD, AuditLogFactory, UserFactory

pytestmark = pytest.mark.django_db


def _login(client: Client, username: str, password: str = PASSWORD):
    return client.post("/accounts/login/", {"username": username, "password": password})


def _fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)


@pytest.mark.parametrize(
    ("who", "landing"),
    [
        ("admin", "/console/"),
        ("marketer", "/console/"),
        ("viewer", "/console/"),
        ("sdr", "/sdr/"),
        ("sales", "/m/"),
        ("sales_manager", "/m/"),
        ("group_admin", "/console/"),
    ],
)
def test_each_role_lands_on_its_surface(world, client, who, landing):
    user = getattr(world, who)
    assert _login(client, user.username).status_code == 302
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0] == landing
    assert response.status_code == 200


def test_a_user_with_no_role_is_told_what_to_do(db, client):
    UserFactory(username="nobody")
    _login(client, "nobody")
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert "You have no role in any business unit yet" in response.text


def test_a_surface_outside_the_users_roles_is_403(world, client):
    client.force_login(world.sales)
    assert client.get("/console/").status_code == 403
    assert client.get("/sdr/").status_code == 403
    assert client.get("/m/").status_code == 200


def test_anonymous_visitors_are_sent_to_login(db, client):
    response = client.get("/console/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/console/"


def test_login_locks_after_repeated_failures_even_with_the_right_password(world, client):
    statuses = [_login(client, "a-marketer", "wrong").status_code for _ in range(5)]
    locked = client.post(
        "/accounts/login/",
        {"username": "a-marketer", "password": PASSWORD},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert statuses == [200] * 5
    assert locked.status_code == 429
    assert "Too many failed sign-ins for this account" in locked.text
    assert "_auth_user_id" not in client.session


def test_a_lockout_is_per_account(world, client):
    for _ in range(5):
        _login(client, "a-marketer", "wrong")
    assert _login(client, "a-sdr").status_code == 302


def test_logout_signs_out(world, client):
    _login(client, "a-sdr")
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/sdr/").status_code == 302


def test_console_home_shows_counts_and_next_steps(world, client):
    client.force_login(world.marketer)
    response = client.get("/console/", HTTP_ACCEPT_LANGUAGE="en")
    text = response.text
    assert response.status_code == 200
    assert "Team members" in text
    # no tokens yet: the empty state says what to do
    assert "No API tokens yet. Create one to connect your CRM" in text
    # marketers do not read the audit log, so the card is not there
    assert "Changes in the last 7 days" not in text


def test_console_home_query_count_is_pinned(world, client, django_assert_num_queries):
    AuditLog.objects.bulk_create(
        [AuditLog(actor_label="t", action="x", unit=world.a) for _ in range(30)]
    )
    client.force_login(world.admin)
    # session, user, the user's units and roles (one query for every permission), role
    # counts, audit count, token count, memberships, recent audit, unit switcher, and the
    # contacts cards (one query for all three), the bell's unread count
    with django_assert_num_queries(11):
        client.get("/console/")


def test_home_pages_render_in_both_languages(world, client):
    client.force_login(world.sdr)
    zh = client.get("/sdr/")
    en = client.get("/sdr/", HTTP_ACCEPT_LANGUAGE="en")
    assert '<html lang="zh-hans">' in zh.text
    assert "线索队列" in zh.text
    assert '<html lang="en">' in en.text
    assert "Lead queue" in en.text


def test_the_language_switch_sets_the_language(world, client):
    client.force_login(world.sales)
    client.post("/language/", {"language": "en", "next": "/m/"})
    assert '<html lang="en">' in client.get("/m/").text
    client.post("/language/", {"language": "zh-hans", "next": "/m/"})
    assert '<html lang="zh-hans">' in client.get("/m/").text


def test_the_chosen_language_follows_the_user_to_another_device(world, client):
    client.force_login(world.sales)
    client.post("/language/", {"language": "en", "next": "/m/"})
    phone = Client()

    _login(phone, "a-sales")

    assert User.objects.get(pk=world.sales.pk).language == "en"
    assert '<html lang="en">' in phone.get("/m/").text


def test_an_unknown_language_changes_nothing(world, client):
    client.force_login(world.sales)
    client.post("/language/", {"language": "xx", "next": "/m/"})
    assert User.objects.get(pk=world.sales.pk).language == ""


# --- Audit log page -----------------------------------------------------------------------


def test_audit_page_pages_by_cursor_and_hides_other_units(world, client):
    AuditLog.objects.bulk_create(
        [
            AuditLog(actor_label="t", action="page", object_repr=f"A-{i:03d}", unit=world.a)
            for i in range(60)
        ]
    )
    AuditLogFactory(unit=world.b, object_repr="B-secret")
    client.force_login(world.admin)

    first = client.get("/console/audit/?action=page")
    next_link = re.search(r'href="(\?[^"]*cursor=[^"]+)" rel="next"', first.text).group(1)
    second = client.get("/console/audit/" + next_link.replace("&amp;", "&"))

    assert ("A-059" in first.text, "A-010" in first.text, "A-009" in first.text) == (
        True,
        True,
        False,
    )
    assert ("A-009" in second.text, "A-000" in second.text, "A-010" in second.text) == (
        True,
        True,
        False,
    )
    assert 'rel="next"' not in second.text
    assert "B-secret" not in first.text + second.text


def test_audit_page_query_count_is_the_same_at_any_depth(world, client, django_assert_num_queries):
    AuditLog.objects.bulk_create(
        [AuditLog(actor_label="t", action="deep", unit=world.a) for _ in range(200)]
    )
    client.force_login(world.admin)
    first = client.get("/console/audit/")
    cursor = re.search(r'cursor=([^"&]+)" rel="next"', first.text).group(1)
    # session, user, the user's units and roles, the page, the unit switcher, the bell
    with django_assert_num_queries(6):
        client.get("/console/audit/")
    with django_assert_num_queries(6):
        client.get(f"/console/audit/?cursor={cursor}")


def test_audit_page_is_403_for_roles_without_it(world, client):
    client.force_login(world.marketer)
    assert client.get("/console/audit/").status_code == 403


def test_switching_to_a_unit_you_cannot_see_is_404(world, client):
    client.force_login(world.marketer)
    response = client.post("/unit/", {"unit": world.b.pk, "next": "/console/"})
    assert response.status_code == 404
    assert "unit" not in client.session


def test_switching_units_narrows_the_pages(world, client):
    AuditLogFactory(unit=world.a, object_repr="row-a")
    AuditLogFactory(unit=world.b, object_repr="row-b")
    client.force_login(world.group_admin)
    client.post("/unit/", {"unit": world.b.pk, "next": "/console/audit/"})
    text = client.get("/console/audit/").text
    assert "row-b" in text
    assert "row-a" not in text


# --- API tokens page ----------------------------------------------------------------------


def test_creating_a_token_shows_the_secret_once(world, client):
    client.force_login(world.marketer)
    created = client.post("/console/tokens/", {"name": "官网表单"})
    again = client.get("/console/tokens/")
    token = ApiToken.objects.get(user=world.marketer)
    secret = re.search(r'<code id="new-token" class="token">([^<]+)</code>', created.text).group(1)
    assert token.key_hash == ApiToken.hash_key(secret)
    assert secret not in again.text
    assert token.key_prefix in again.text


def test_a_token_without_a_name_is_refused_and_nothing_is_stored(world, client):
    client.force_login(world.marketer)
    response = client.post("/console/tokens/", {"name": "  "}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert ApiToken.objects.count() == 0


def test_revoking_another_users_token_from_the_console_is_404(world, client):
    client.force_login(world.b_marketer)
    client.post("/console/tokens/", {"name": "b's token"})
    theirs = ApiToken.objects.get(user=world.b_marketer)
    client.force_login(world.marketer)

    response = client.post(f"/console/tokens/{theirs.pk}/revoke/")

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_revoking_your_token_stops_it_working(world, client, api):
    client.force_login(world.marketer)
    created = client.post("/console/tokens/", {"name": "CRM"})
    secret = re.search(r'<code id="new-token" class="token">([^<]+)</code>', created.text).group(1)
    token = ApiToken.objects.get(user=world.marketer)
    client.post(f"/console/tokens/{token.pk}/revoke/")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/v1/me/").status_code == 401


def test_team_page_lists_people_of_visible_units_only(world, client):
    client.force_login(_fresh(world.marketer))
    text = client.get("/console/team/").text
    assert "a-sdr" in text or str(world.sdr) in text
    assert str(world.b_marketer) not in text
