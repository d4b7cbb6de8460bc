"""contacts.hooks' panel registry: higher apps add panels to the 360 page."""

from __future__ import annotations

import pytest

from apps.contacts import hooks
from tests.nurture.helpers import person

pytestmark = pytest.mark.django_db


def test_panels_render_in_order_and_none_means_no_panel(world, client, monkeypatch):
    p = person(world.a, phone="13500000001")
    monkeypatch.setattr(hooks, "_CONTACT_PANELS", {})
    hooks.register_contact_panel("hidden", lambda request, contact: None)
    hooks.register_contact_panel(
        "scores",
        lambda request, contact: (
            "nurture/partials/_contact_scores.html",
            {"rows": [], "contact": contact},
        ),
    )
    client.force_login(world.marketer)

    page = client.get(f"/console/contacts/{p.pk}/", HTTP_ACCEPT_LANGUAGE="en")

    assert [panel.name for panel in hooks.contact_panels(None, p)] == ["scores"]
    assert page.text.count('id="scores"') == 1
    assert "No scoring model has scored this contact yet." in page.text
