"""OpenAPI: the schema validates and the docs page needs no network."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_the_schema_validates_without_warnings():
    out = StringIO()
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", stdout=out
    )
    assert '"openapi": "3.0.3"' in out.getvalue()


def test_the_schema_endpoint_serves_the_api(client, world):
    client.force_login(world.marketer)
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    paths = response.json()["paths"]
    assert response.status_code == 200
    assert {"/api/v1/me/", "/api/v1/audit-log/", "/api/v1/tokens/{id}/revoke/"} <= set(paths)
    assert response.json()["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"


def test_the_docs_page_loads_everything_from_this_server(client, world):
    client.force_login(world.marketer)
    page = client.get("/api/docs/")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert page.status_code == 200
    assert assets, "the docs page should load Swagger UI"
    for url in assets:
        assert not url.startswith(("http:", "https:", "//")), f"{url} needs the network"
        if url.startswith("/static/"):
            assert client.get(url).status_code == 200, url
