"""Sales reports reach sales managers (who have no console) in the lead-queue shell."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_a_sales_manager_opens_the_reports_in_the_queue_shell(client, world):
    client.force_login(world.sales_manager)
    response = client.get("/console/reports/sales/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert response.context["surface"] == "sdr"
    assert '<a href="/console/reports/sales/" class="on"' in response.content.decode() or (
        "/console/reports/sales/" in [item["url"] for item in response.context["nav"]]
    )


def test_a_salesperson_still_may_not(client, world):
    client.force_login(world.sales)
    assert client.get("/console/reports/sales/").status_code == 403
