"""The API base: scoping, tokens, the error shape, pagination and throttling."""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.throttling import UserRateThrottle

from apps.core import services
from apps.core.api_base import ScopedReadOnlyViewSet
from apps.core.models import ApiToken, AuditLog, User
from tests.factories import AuditLogFactory

pytestmark = pytest.mark.django_db


def _bearer(api, raw):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


def _token(user, name="tests"):
    _token_row, raw = services.api_token_create(user=user, name=name, acting_user=user)
    return raw


# --- Scoping ------------------------------------------------------------------------------


def test_a_record_of_another_unit_is_404_through_the_base_viewset(world, api):
    b_row = AuditLogFactory(unit=world.b, action="secret.b")
    api.force_authenticate(world.admin)

    response = api.get(f"/api/v1/audit-log/{b_row.pk}/")

    assert response.status_code == 404
    assert response.json() == {
        "error": {"status": 404, "code": "not_found", "message": "Not found."}
    }


def test_a_list_holds_only_the_callers_units(world, api):
    AuditLogFactory(unit=world.a, action="x.a")
    AuditLogFactory(unit=world.b, action="x.b")
    api.force_authenticate(world.admin)

    response = api.get("/api/v1/audit-log/?action=x.")

    assert response.status_code == 200
    assert [row["action"] for row in response.json()["results"]] == ["x.a"]


def test_the_group_admin_sees_both_units(world, api):
    AuditLogFactory(unit=world.a, action="x.a")
    AuditLogFactory(unit=world.b, action="x.b")
    api.force_authenticate(world.group_admin)

    response = api.get("/api/v1/audit-log/?action=x.")

    assert [row["action"] for row in response.json()["results"]] == ["x.b", "x.a"]


def test_business_units_are_scoped(world, api):
    api.force_authenticate(world.marketer)
    assert [u["code"] for u in api.get("/api/v1/business-units/").json()["results"]] == ["acme-a"]
    assert api.get(f"/api/v1/business-units/{world.b.pk}/").status_code == 404


def test_a_role_without_permission_gets_an_empty_list_not_someone_elses_rows(world, api):
    AuditLogFactory(unit=world.a)
    api.force_authenticate(world.marketer)  # marketers hold no core.view_audit
    response = api.get("/api/v1/audit-log/")
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_overriding_get_queryset_is_refused_at_class_creation():
    with pytest.raises(TypeError, match="scope_queryset"):

        class Leaky(ScopedReadOnlyViewSet):
            queryset = AuditLog.objects.all()

            def get_queryset(self):
                return AuditLog.objects.all()


def test_me_lists_memberships_and_surfaces(world, api):
    api.force_authenticate(world.sdr)
    data = api.get("/api/v1/me/").json()
    assert data["username"] == "a-sdr"
    assert [(m["unit_code"], m["role"]) for m in data["memberships"]] == [("acme-a", "sdr")]
    assert data["surfaces"] == ["sdr", "mobile"]


# --- Tokens -------------------------------------------------------------------------------


def test_a_token_authenticates_and_is_stored_only_as_a_hash(world, api):
    raw = _token(world.marketer)
    token = ApiToken.objects.get(user=world.marketer)

    response = _bearer(api, raw).get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json()["username"] == "a-marketer"
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in (token.key_hash, token.key_prefix, token.name)
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_a_revoked_token_gets_401_in_the_error_shape(world, api):
    raw = _token(world.marketer)
    token = ApiToken.objects.get(user=world.marketer)
    services.api_token_revoke(token=token, acting_user=world.marketer)

    response = _bearer(api, raw).get("/api/v1/me/")

    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "status": 401,
            "code": "authentication_failed",
            "message": "This API token is not valid: it may be mistyped, expired or revoked.",
        }
    }
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_made_up_token_gets_401(api):
    response = _bearer(api, "ll_this-is-not-a-token").get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_no_credentials_get_401(db, api):
    response = api.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_create_token_through_the_api_returns_the_secret_once(world, api):
    api.force_authenticate(world.sales)

    created = api.post("/api/v1/tokens/", {"name": "CRM sync"})
    listed = api.get("/api/v1/tokens/")

    assert created.status_code == 201
    assert created.json()["token"].startswith("ll_")
    assert created.json()["name"] == "CRM sync"
    assert [t["name"] for t in listed.json()["results"]] == ["CRM sync"]
    assert "token" not in listed.json()["results"][0]


def test_revoking_someone_elses_token_is_404_and_changes_nothing(world, api):
    _token(world.marketer, "marketer's")
    theirs = ApiToken.objects.get(user=world.marketer)
    api.force_authenticate(world.group_admin)

    response = api.post(f"/api/v1/tokens/{theirs.pk}/revoke/")

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_a_token_without_a_name_is_refused_with_field_errors(world, api):
    api.force_authenticate(world.sales)
    response = api.post("/api/v1/tokens/", {"name": ""})
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "invalid"
    assert body["fields"] == {"name": ["This field may not be blank."]}
    assert ApiToken.objects.filter(user=world.sales).count() == 0


def test_token_create_and_revoke_write_audit_rows(world):
    _token(world.marketer, "CRM")
    token = ApiToken.objects.get(user=world.marketer)
    services.api_token_revoke(token=token, acting_user=world.marketer)
    services.api_token_revoke(token=token, acting_user=world.marketer)  # twice: one row

    rows = list(
        AuditLog.objects.filter(object_type="core.apitoken")
        .order_by("id")
        .values_list("action", "actor_label", "unit_id")
    )
    assert rows == [
        ("api_token.create", "a-marketer", world.a.id),
        ("api_token.revoke", "a-marketer", world.a.id),
    ]


# --- Pagination ---------------------------------------------------------------------------


def test_cursor_pages_walk_the_list_without_counting(world, api):
    AuditLog.objects.bulk_create(
        [AuditLog(actor_label="t", action=f"page.{i:03d}", unit=world.a) for i in range(120)]
    )
    api.force_authenticate(world.admin)

    with CaptureQueriesContext(connection) as first_queries:
        first = api.get("/api/v1/audit-log/?action=page.").json()
    second = api.get(first["next"]).json()
    third = api.get(second["next"]).json()
    back = api.get(third["previous"]).json()

    assert [r["action"] for r in first["results"]][:2] == ["page.119", "page.118"]
    assert len(first["results"]) == 50
    assert second["results"][0]["action"] == "page.069"
    assert [r["action"] for r in third["results"]] == [f"page.{i:03d}" for i in range(19, -1, -1)]
    assert third["next"] is None
    assert back["results"] == second["results"]
    assert first["previous"] is None
    assert not any("COUNT(" in q["sql"].upper() for q in first_queries.captured_queries)


def test_list_query_count_does_not_grow_with_rows(world, api, django_assert_num_queries):
    # A fresh user object per request, as a real request loads it (the unit cache lives on it).
    api.force_authenticate(User.objects.get(pk=world.admin.pk))
    AuditLog.objects.bulk_create(
        [AuditLog(actor_label="t", action="q", unit=world.a) for _ in range(5)]
    )
    # the caller's units, then the page itself
    with django_assert_num_queries(2):
        small = api.get("/api/v1/audit-log/")
    AuditLog.objects.bulk_create(
        [AuditLog(actor_label="t", action="q", unit=world.a) for _ in range(300)]
    )
    api.force_authenticate(User.objects.get(pk=world.admin.pk))
    with django_assert_num_queries(2):
        large = api.get("/api/v1/audit-log/")
    assert len(small.json()["results"]) < len(large.json()["results"]) == 50


def test_a_forged_cursor_is_a_400_naming_the_parameter(world, api):
    api.force_authenticate(world.admin)
    response = api.get("/api/v1/audit-log/?cursor=not-a-cursor")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["cursor"]


def test_page_size_out_of_range_is_refused(world, api):
    api.force_authenticate(world.admin)
    response = api.get("/api/v1/audit-log/?page_size=5000")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"page_size": ["A whole number from 1 to 200."]}


def test_unknown_api_path_answers_json_404(db, client):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- Throttling ---------------------------------------------------------------------------


def test_callers_are_throttled_per_user(world, api, monkeypatch):
    rates = {"user": "3/minute", "anon": "3/minute"}
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", rates)
    api.force_authenticate(world.sales)
    statuses = [api.get("/api/v1/me/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    body = api.get("/api/v1/me/").json()["error"]
    assert body["code"] == "throttled"
    assert body["status"] == 429
    # Another user has a budget of their own.
    api.force_authenticate(world.sdr)
    assert api.get("/api/v1/me/").status_code == 200
