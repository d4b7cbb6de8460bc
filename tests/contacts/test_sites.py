"""Tracked sites: the tracker script at /t.js, the services and the console pages."""

from __future__ import annotations

import html
import re

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from apps.contacts.models import Site
from apps.contacts.services import sites
from apps.core.models import AuditLog
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def site(world):
    return sites.site_create(
        unit=world.a,
        name="官网",
        allowed_origins=["https://www.acme.cn"],
        acting_user=world.marketer,
    )


def _site_snapshot(site: Site) -> tuple:
    site.refresh_from_db()
    return (
        site.name,
        site.signing_secret,
        site.allowed_origins,
        site.max_events_per_batch,
        site.max_requests_per_minute,
        site.is_active,
    )


# --- The tracker script -------------------------------------------------------------------


def test_the_tracker_script_is_public_javascript_cached_for_an_hour(client):
    response = client.get("/t.js")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/javascript; charset=utf-8"
    assert response["Cache-Control"] == "public, max-age=3600"
    assert re.fullmatch(r'"[0-9a-f]{20}"', response["ETag"])
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Cross-Origin-Resource-Policy"] == "cross-origin"
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"/api/v1/collect" in body
    assert b"ll_aid" in body
    assert b"eval(" not in body
    # Nothing per visitor: a shared cache may keep it.
    assert not response.cookies


def test_the_tracker_script_revalidates_with_its_etag(client):
    etag = client.get("/t.js")["ETag"]

    again = client.get("/t.js", HTTP_IF_NONE_MATCH=etag)
    changed = client.get("/t.js", HTTP_IF_NONE_MATCH='"stale"')

    assert again.status_code == 304
    assert again.content == b""
    assert (again["ETag"], again["Cache-Control"]) == (etag, "public, max-age=3600")
    assert changed.status_code == 200


def test_the_tracker_script_answers_get_and_head_only(client):
    assert client.head("/t.js").status_code == 200
    assert client.post("/t.js").status_code == 405


# --- Services -----------------------------------------------------------------------------


def test_a_new_site_gets_a_public_key_and_a_secret_and_is_audited(world, site):
    site.refresh_from_db()
    assert re.fullmatch(r"pk_[A-Za-z0-9_-]{22}", site.public_key)
    assert re.fullmatch(r"[0-9a-f]{64}", site.signing_secret)
    assert (site.unit_id, site.name, site.allowed_origins) == (
        world.a.pk,
        "官网",
        ["https://www.acme.cn"],
    )
    assert (site.max_events_per_batch, site.max_requests_per_minute, site.is_active) == (
        100,
        120,
        True,
    )
    audit = AuditLog.objects.get(action="site.create")
    assert audit.actor_label == "a-marketer"
    assert audit.after == {
        "name": "官网",
        "public_key": site.public_key,
        "allowed_origins": ["https://www.acme.cn"],
        "max_events_per_batch": 100,
        "max_requests_per_minute": 120,
        "is_active": True,
    }
    assert site.signing_secret not in str(audit.after)


def test_two_sites_never_share_a_key_or_a_secret(world, site):
    other = sites.site_create(unit=world.a, name="商城", acting_user=SYSTEM)
    assert other.public_key != site.public_key
    assert other.signing_secret != site.signing_secret


def test_origins_are_normalised(world):
    site = sites.site_create(
        unit=world.a,
        name="官网",
        allowed_origins=[
            " HTTPS://WWW.Acme.cn/ ",
            "https://www.acme.cn:443",
            "http://localhost:8000",
            "",
        ],
        acting_user=SYSTEM,
    )
    assert site.allowed_origins == ["https://www.acme.cn", "http://localhost:8000"]


@pytest.mark.parametrize(
    "origin",
    ["https://www.acme.cn/pricing", "ftp://acme.cn", "www.acme.cn", "https://", "https://a.cn:x"],
)
def test_a_bad_origin_is_refused_and_nothing_is_stored(world, origin):
    with pytest.raises(ValidationError) as caught:
        sites.site_create(unit=world.a, name="官网", allowed_origins=[origin], acting_user=SYSTEM)
    assert list(caught.value.message_dict) == ["allowed_origins"]
    assert "is not an origin" in caught.value.message_dict["allowed_origins"][0]
    assert Site.objects.count() == 0
    assert not AuditLog.objects.filter(action="site.create").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_events_per_batch", 0), ("max_events_per_batch", 1001), ("max_requests_per_minute", -1)],
)
def test_limits_out_of_bounds_change_nothing(world, site, field, value):
    before = _site_snapshot(site)
    values = {
        "site": site,
        "name": "改名",
        "allowed_origins": [],
        "max_events_per_batch": 50,
        "max_requests_per_minute": 60,
        "is_active": False,
        "acting_user": SYSTEM,
        field: value,
    }
    with pytest.raises(ValidationError) as caught:
        sites.site_update(**values)
    assert list(caught.value.message_dict) == [field]
    assert _site_snapshot(site) == before
    assert not AuditLog.objects.filter(action="site.update").exists()


def test_updating_a_site_records_before_and_after(world, site):
    sites.site_update(
        site=site,
        name="官网 2026",
        allowed_origins=["https://acme.cn", "https://www.acme.cn"],
        max_events_per_batch=50,
        max_requests_per_minute=60,
        is_active=False,
        acting_user=world.marketer,
    )
    site.refresh_from_db()
    assert (site.name, site.allowed_origins, site.is_active) == (
        "官网 2026",
        ["https://acme.cn", "https://www.acme.cn"],
        False,
    )
    audit = AuditLog.objects.get(action="site.update")
    assert (audit.before or {})["name"] == "官网"
    assert (audit.after or {})["max_events_per_batch"] == 50


def test_rotating_the_secret_replaces_it_and_keeps_it_out_of_the_audit(world, site):
    old = site.signing_secret

    new = sites.site_rotate_secret(site=site, acting_user=world.marketer)

    site.refresh_from_db()
    assert site.signing_secret == new != old
    assert re.fullmatch(r"[0-9a-f]{64}", new)
    audit = AuditLog.objects.get(action="site.rotate_secret")
    assert audit.after == {"public_key": site.public_key}
    assert new not in str(audit.after)
    assert old not in str(audit.before)


# --- Console ------------------------------------------------------------------------------


def test_the_sites_page_lists_the_units_sites_in_fixed_queries(
    client, world, site, django_assert_num_queries
):
    for i in range(5):
        sites.site_create(unit=world.a, name=f"站点{i}", acting_user=SYSTEM)
    sites.site_create(unit=world.b, name="B 的官网", acting_user=SYSTEM)
    client.force_login(world.marketer)

    # session, user, unit roles, configurable units, the page of sites, the unit switcher,
    # the bell's unread count
    with django_assert_num_queries(7):
        response = client.get("/console/sites/")

    body = response.content.decode()
    assert response.status_code == 200
    assert [s.name for s in response.context["page"].items] == [
        "站点4",
        "站点3",
        "站点2",
        "站点1",
        "站点0",
        "官网",
    ]
    assert site.public_key in body
    assert "B 的官网" not in body
    assert site.signing_secret not in body


def test_people_without_configure_are_refused(client, world, site):
    client.force_login(world.sdr)
    response = client.get("/console/sites/")
    assert response.status_code == 403
    assert site.public_key not in response.content.decode()


def test_creating_a_site_shows_its_secret_once(client, world):
    client.force_login(world.marketer)

    response = client.post(
        f"/console/sites/?unit={world.a.pk}",
        {
            "name": "官网",
            "allowed_origins": "https://www.acme.cn\nhttps://acme.cn/",
            "max_events_per_batch": "100",
            "max_requests_per_minute": "120",
        },
    )

    site = Site.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/console/sites/{site.pk}/"
    assert (site.unit_id, site.allowed_origins) == (
        world.a.pk,
        ["https://www.acme.cn", "https://acme.cn"],
    )
    first = client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en")
    body = first.content.decode()
    assert site.signing_secret in body
    assert "It is shown only once" in body
    snippet = first.context["snippet"]
    assert '<script async src="http://testserver/t.js"' in snippet
    assert f'data-key="{site.public_key}"></script>' in snippet
    assert "leadloop.q.push" in snippet  # the queue stub keeps calls made before loading
    assert html.escape(snippet) in body
    second = client.get(response["Location"]).content.decode()
    assert site.signing_secret not in second
    assert f"••••••••{site.signing_secret[-4:]}" in second
    assert site.public_key in second


def test_a_bad_origin_on_the_page_is_shown_and_nothing_is_stored(client, world):
    client.force_login(world.marketer)
    response = client.post(
        f"/console/sites/?unit={world.a.pk}",
        {
            "name": "官网",
            "allowed_origins": "https://www.acme.cn/pricing",
            "max_events_per_batch": "100",
            "max_requests_per_minute": "120",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    assert "is not an origin" in response.content.decode()
    assert Site.objects.count() == 0


def test_a_site_can_not_be_made_in_another_unit(client, world):
    client.force_login(world.marketer)
    response = client.post(
        f"/console/sites/?unit={world.b.pk}",
        {"name": "别人的", "max_events_per_batch": "100", "max_requests_per_minute": "120"},
    )
    assert response.status_code == 404
    assert Site.objects.count() == 0


def test_rotating_from_the_page_shows_the_new_secret_once(client, world, site):
    old = site.signing_secret
    client.force_login(world.marketer)

    response = client.post(f"/console/sites/{site.pk}/rotate-secret/")

    site.refresh_from_db()
    assert response.status_code == 302
    assert site.signing_secret != old
    shown = client.get(f"/console/sites/{site.pk}/").content.decode()
    assert site.signing_secret in shown
    assert old not in shown
    assert site.signing_secret not in client.get(f"/console/sites/{site.pk}/").content.decode()


def test_editing_a_site_from_the_page(client, world, site):
    client.force_login(world.marketer)
    response = client.post(
        f"/console/sites/{site.pk}/",
        {
            "name": "官网 2026",
            "allowed_origins": "https://acme.cn",
            "max_events_per_batch": "20",
            "max_requests_per_minute": "30",
        },
    )
    assert response.status_code == 302
    site.refresh_from_db()
    assert (
        site.name,
        site.allowed_origins,
        site.max_events_per_batch,
        site.max_requests_per_minute,
        site.is_active,
    ) == ("官网 2026", ["https://acme.cn"], 20, 30, False)


def test_another_units_site_is_404_and_stays_as_it_was(client, world):
    b_site = sites.site_create(unit=world.b, name="B 官网", acting_user=SYSTEM)
    before = _site_snapshot(b_site)
    client.force_login(world.marketer)

    assert client.get(f"/console/sites/{b_site.pk}/").status_code == 404
    assert client.post(f"/console/sites/{b_site.pk}/", {"name": "改"}).status_code == 404
    assert client.post(f"/console/sites/{b_site.pk}/rotate-secret/").status_code == 404
    assert _site_snapshot(b_site) == before
    assert not AuditLog.objects.filter(action__in=["site.update", "site.rotate_secret"]).exists()


def test_the_group_admin_sees_both_units_sites(client, world, site):
    b_site = sites.site_create(unit=world.b, name="B 官网", acting_user=SYSTEM)
    client.force_login(world.group_admin)
    assert client.get(f"/console/sites/{b_site.pk}/").status_code == 200
    response = client.get(f"/console/sites/?unit={world.b.pk}")
    assert [s.name for s in response.context["page"].items] == ["B 官网"]
