"""Django admin: every model is there, and unit administrators see only their units."""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.contrib import admin

from apps.core.models import ApiToken, AuditLog, Membership
from tests.factories import AuditLogFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_every_leadloop_model_is_registered_with_list_display_and_search():
    for model in apps.get_models():
        if not model.__module__.startswith("apps."):
            continue
        assert model in admin.site._registry, f"{model.__name__} is not in the admin"
        model_admin = admin.site._registry[model]
        assert model_admin.list_display != ("__str__",), f"{model.__name__} has no list_display"
        assert model_admin.search_fields, f"{model.__name__} has no search_fields"


def test_a_unit_admin_lists_only_their_units_rows(world, client):
    AuditLogFactory(unit=world.a, object_repr="row-in-a")
    AuditLogFactory(unit=world.b, object_repr="row-in-b")
    client.force_login(world.admin)

    response = client.get("/admin/core/auditlog/")

    assert response.status_code == 200
    assert "row-in-a" in response.text
    assert "row-in-b" not in response.text


def test_a_unit_admin_gets_404_for_another_units_row(world, client):
    b_row = AuditLogFactory(unit=world.b)
    client.force_login(world.admin)

    assert client.get(f"/admin/core/auditlog/{b_row.pk}/change/").status_code == 404
    assert client.get(f"/admin/core/businessunit/{world.b.pk}/change/").status_code == 404
    assert client.get(f"/admin/core/user/{world.b_marketer.pk}/change/").status_code == 404


def test_a_unit_admin_cannot_delete_another_units_membership(world, client):
    theirs = Membership.objects.get(user=world.b_marketer)
    client.force_login(world.admin)

    response = client.post(f"/admin/core/membership/{theirs.pk}/delete/", {"post": "yes"})

    assert response.status_code == 404
    assert Membership.objects.filter(pk=theirs.pk).exists()


def test_the_group_admin_sees_both_units(world, client):
    AuditLogFactory(unit=world.a, object_repr="row-in-a")
    AuditLogFactory(unit=world.b, object_repr="row-in-b")
    client.force_login(world.group_admin)

    response = client.get("/admin/core/auditlog/")

    assert "row-in-a" in response.text
    assert "row-in-b" in response.text


def test_unit_choices_in_forms_are_limited_to_the_admins_units(world, client):
    client.force_login(world.admin)
    response = client.get("/admin/core/membership/add/")
    assert response.status_code == 200
    units = list(response.context["adminform"].form.fields["unit"].queryset)
    assert units == [world.a]


def test_a_membership_added_in_admin_is_audited(world, client):
    newcomer = UserFactory(username="newcomer")
    # Make the newcomer visible to the admin's user picker: a user with no unit is not.
    client.force_login(world.group_admin)
    before = AuditLog.objects.count()

    response = client.post(
        "/admin/core/membership/add/", {"user": newcomer.pk, "unit": world.a.pk, "role": "sdr"}
    )

    assert response.status_code == 302
    assert Membership.objects.get(user=newcomer).role == "sdr"
    entry = AuditLog.objects.order_by("-id").first()
    assert AuditLog.objects.count() == before + 1
    assert (entry.action, entry.actor_label, entry.after) == (
        "membership.set",
        "group-admin",
        {"user": "newcomer", "role": "sdr"},
    )


def test_staff_without_an_admin_role_cannot_use_the_admin(world, client):
    world.marketer.is_staff = True
    world.marketer.save(update_fields=["is_staff"])
    client.force_login(world.marketer)
    assert client.get("/admin/core/auditlog/").status_code == 403


def test_the_audit_log_cannot_be_edited_even_by_a_superuser(world, client):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    row = AuditLogFactory(unit=world.a)
    client.force_login(root)
    client.post(f"/admin/core/auditlog/{row.pk}/delete/", {"post": "yes"})
    assert AuditLog.objects.filter(pk=row.pk).exists()


def test_a_token_created_in_admin_shows_its_secret_once(world, client):
    client.force_login(world.admin)

    response = client.post(
        "/admin/core/apitoken/add/", {"user": world.admin.pk, "name": "ETL"}, follow=True
    )

    token = ApiToken.objects.get(user=world.admin)
    shown = [str(m) for m in response.context["messages"]]
    secret = next(re.search(r"ll_[\w-]+", m).group(0) for m in shown if "ll_" in m)
    assert token.name == "ETL"
    assert token.key_hash == ApiToken.hash_key(secret)


def test_a_unit_admin_cannot_mint_a_token_for_someone_else(world, client):
    client.force_login(world.admin)
    response = client.post("/admin/core/apitoken/add/", {"user": world.sdr.pk, "name": "sneaky"})
    assert response.status_code == 200  # the form refuses the choice
    assert ApiToken.objects.count() == 0


def test_tokens_are_revoked_from_the_admin_action(world, client):
    client.force_login(world.admin)
    client.post("/admin/core/apitoken/add/", {"user": world.admin.pk, "name": "ETL"})
    token = ApiToken.objects.get(user=world.admin)
    client.post(
        "/admin/core/apitoken/",
        {"action": "revoke_tokens", "_selected_action": [token.pk]},
    )
    token.refresh_from_db()
    assert token.revoked_at is not None
