"""Console and API: the content library list with filters and numbers, upload and edit,
and what another unit or a viewer may not do."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from apps.contacts.identity_keys import make_key
from apps.contacts.services.activities import ActivityIn, activities_record
from apps.contacts.services.resolution import contact_resolve
from apps.content.demo.assets import tiny_pdf
from apps.content.models import Asset, Form
from apps.content.services import assets as services
from apps.core.services import SystemActor

SYSTEM = SystemActor("test")
PDF = tiny_pdf(["Hello"])


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def client_for(user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def video(unit: Any, title: str, **kwargs: Any) -> Asset:
    return services.asset_create(
        unit=unit,
        title=title,
        kind=kwargs.pop("kind", "video"),
        url="https://v.example.cn/x.mp4",
        acting_user=SYSTEM,
        **kwargs,
    )


def take(
    asset: Asset, n: int, *, kind: str = "download", days_ago: float = 1, **kwargs: Any
) -> ActivityIn:
    return ActivityIn(
        unit_id=asset.unit_id,
        type=kind,
        occurred_at=timezone.now() - timedelta(days=days_ago),
        object_type="asset",
        object_id=str(asset.pk),
        dedupe_key=f"take:{asset.pk}:{n}",
        **kwargs,
    )


@pytest.fixture
def library(world: Any) -> dict[str, Asset]:
    form = Form.objects.create(unit=world.a, name="Gate")
    return {
        "sc": video(
            world.a,
            "Single-cell intro",
            topic="单细胞",
            buying_stage="awareness",
            personas=["实验室主任"],
        ),
        "ms": video(
            world.a,
            "Mass spec deep dive",
            kind="whitepaper",
            topic="质谱",
            buying_stage="decision",
            personas=["采购经理"],
            is_gated=True,
            gate_form=form,
        ),
        "seq": video(world.a, "Sequencing case", kind="case_study", topic="基因测序"),
        "b": video(world.b, "B only"),
    }


@pytest.mark.parametrize(
    ("query", "titles"),
    [
        ("", ["Sequencing case", "Mass spec deep dive", "Single-cell intro"]),
        ("kind=video", ["Single-cell intro"]),
        ("topic=质谱", ["Mass spec deep dive"]),
        ("stage=awareness", ["Single-cell intro"]),
        ("persona=采购经理", ["Mass spec deep dive"]),
        ("gated=yes", ["Mass spec deep dive"]),
        ("gated=no", ["Sequencing case", "Single-cell intro"]),
        ("q=deep", ["Mass spec deep dive"]),
    ],
)
def test_the_library_filters(world, library, query, titles):
    response = client_for(world.marketer).get(f"/console/assets/?{query}")
    assert response.status_code == 200
    assert [row["asset"].title for row in response.context["rows"]] == titles


def test_archived_assets_are_listed_on_request(world, library):
    services.asset_archive(asset=library["seq"], acting_user=SYSTEM)
    client = client_for(world.marketer)
    assert "Sequencing case" not in [
        r["asset"].title for r in client.get("/console/assets/").context["rows"]
    ]
    archived = client.get("/console/assets/?archived=on").context["rows"]
    assert [r["asset"].title for r in archived] == ["Sequencing case"]


def test_the_library_shows_exact_numbers(world, library):
    # given 3 downloads by 2 people (one known), a view, and an old download
    person = contact_resolve(
        unit=world.a, keys=[make_key("email", "li@example.cn")], source="t", acting_user=SYSTEM
    ).contact
    asset = library["ms"]
    activities_record(
        [
            take(asset, 1, anonymous_id="v1"),
            take(asset, 2, anonymous_id="v1"),
            take(asset, 3, anonymous_id="v2", contact_id=person.pk),
            take(asset, 4, anonymous_id="v3", kind="content_view"),
            take(asset, 5, anonymous_id="v4", days_ago=31),
        ]
    )
    client = client_for(world.marketer)
    rows = {r["asset"].pk: r["stats"] for r in client.get("/console/assets/").context["rows"]}
    stats = rows[asset.pk]
    assert (stats.downloads, stats.views, stats.people, stats.known_contacts) == (3, 1, 3, 1)
    # and its page shows the same, with the known contact
    page = client.get(f"/console/assets/{asset.pk}/")
    assert page.context["stats"] == stats
    assert [r.contact.pk for r in page.context["recent"]] == [person.pk]
    assert page.context["link"] == f"http://testserver/a/{asset.key}/"


def test_the_library_costs_a_fixed_number_of_queries(world, django_assert_num_queries):
    client = client_for(world.marketer)
    for n in range(3):
        activities_record([take(video(world.a, f"V{n}"), 1, anonymous_id="v")])
    client.get("/console/assets/")
    # session, user, unit roles, topics, assets, stats, editable units, shell (units,
    # unread notifications)
    with django_assert_num_queries(9):
        assert client.get("/console/assets/").status_code == 200
    for n in range(3, 40):
        activities_record([take(video(world.a, f"V{n}"), 1, anonymous_id="v")])
    with django_assert_num_queries(9):
        assert client.get("/console/assets/").status_code == 200


def test_uploading_through_the_console(world, media):
    client = client_for(world.marketer)
    response = client.post(
        "/console/assets/new/",
        {
            "unit": world.a.pk,
            "title": "Whitepaper",
            "kind": "whitepaper",
            "upload": SimpleUploadedFile("paper.pdf", PDF),
            "topic": "单细胞",
            "personas": "实验室主任, 采购经理",
        },
    )
    asset = Asset.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/console/assets/{asset.pk}/"
    assert (media / asset.file.name).read_bytes() == PDF
    assert asset.personas == ["实验室主任", "采购经理"]


def test_an_exe_upload_through_the_console_is_refused_with_the_message(world, media):
    response = client_for(world.marketer).post(
        "/console/assets/new/",
        {
            "unit": world.a.pk,
            "title": "Tool",
            "kind": "other",
            "upload": SimpleUploadedFile("tool.exe", b"MZ\x90\x00"),
        },
    )
    assert response.status_code == 400
    assert (
        "Files of type .exe cannot be uploaded. Allowed: PDF, PPTX, DOCX, XLSX, PNG, JPG, MP4."
        in response.content.decode()
    )
    assert Asset.objects.count() == 0
    assert [p for p in media.rglob("*") if p.is_file()] == []


def test_editing_an_asset(world, library):
    asset = library["sc"]
    response = client_for(world.marketer).post(
        f"/console/assets/{asset.pk}/",
        {
            "title": "Single-cell 101",
            "kind": "video",
            "url": "https://v.example.cn/new.mp4",
            "topic": "单细胞",
            "buying_stage": "consideration",
            "personas": "科研人员",
        },
    )
    assert response.status_code == 302
    asset.refresh_from_db()
    assert (asset.title, asset.url, asset.buying_stage, asset.personas) == (
        "Single-cell 101",
        "https://v.example.cn/new.mp4",
        "consideration",
        ["科研人员"],
    )


def test_another_units_asset_is_not_found_in_the_console(world, library):
    asset = library["b"]
    client = client_for(world.marketer)
    assert client.get(f"/console/assets/{asset.pk}/").status_code == 404
    assert (
        client.post(f"/console/assets/{asset.pk}/", {"title": "x", "kind": "video"}).status_code
        == 404
    )
    assert client.post(f"/console/assets/{asset.pk}/archive/").status_code == 404
    asset.refresh_from_db()
    assert (asset.title, asset.is_active) == ("B only", True)


def test_a_viewer_reads_but_cannot_write(world, library):
    asset = library["sc"]
    client = client_for(world.viewer)
    assert client.get(f"/console/assets/{asset.pk}/").status_code == 200
    assert (
        client.post(f"/console/assets/{asset.pk}/", {"title": "x", "kind": "video"}).status_code
        == 403
    )
    assert client.post(f"/console/assets/{asset.pk}/archive/").status_code == 403
    assert client.get("/console/assets/new/").status_code == 403
    asset.refresh_from_db()
    assert (asset.title, asset.is_active) == ("Single-cell intro", True)


# --- API -----------------------------------------------------------------------------------

URL = "/api/v1/assets/"


def test_api_multipart_upload_and_stats(world, api, media):
    api.force_authenticate(world.marketer)
    response = api.post(
        URL,
        {
            "unit": world.a.pk,
            "title": "Whitepaper",
            "kind": "whitepaper",
            "upload": SimpleUploadedFile("paper.pdf", PDF),
            "personas": ["实验室主任", "采购经理"],
            "topic": "单细胞",
        },
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    asset = Asset.objects.get()
    assert body["file_name"] == asset.file.name.rsplit("/", 1)[-1]
    assert body["personas"] == ["实验室主任", "采购经理"]
    assert body["public_url"] == f"http://testserver/a/{asset.key}/"
    assert body["stats"] == {"downloads": 0, "views": 0, "people": 0, "known_contacts": 0}
    assert "upload" not in body
    assert (media / asset.file.name).read_bytes() == PDF


def test_api_refuses_an_exe_and_stores_nothing(world, api, media):
    api.force_authenticate(world.marketer)
    response = api.post(
        URL,
        {
            "unit": world.a.pk,
            "title": "Tool",
            "kind": "other",
            "upload": SimpleUploadedFile("tool.exe", b"MZ\x90\x00"),
        },
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "upload": [
            "Files of type .exe cannot be uploaded. Allowed: PDF, PPTX, DOCX, XLSX, PNG, JPG, MP4."
        ]
    }
    assert Asset.objects.count() == 0
    assert [p for p in media.rglob("*") if p.is_file()] == []


def test_api_filters_update_and_archive(world, api, library):
    api.force_authenticate(world.marketer)
    assert [r["title"] for r in api.get(URL, {"topic": "质谱"}).json()["results"]] == [
        "Mass spec deep dive"
    ]
    assert [r["title"] for r in api.get(URL, {"persona": "实验室主任"}).json()["results"]] == [
        "Single-cell intro"
    ]
    asset = library["sc"]
    patched = api.patch(f"{URL}{asset.pk}/", {"buying_stage": "decision"}, format="json")
    assert patched.status_code == 200
    assert patched.json()["buying_stage"] == "decision"
    assert api.delete(f"{URL}{asset.pk}/").status_code == 204
    asset.refresh_from_db()
    assert asset.is_active is False
    restored = api.post(f"{URL}{asset.pk}/restore/")
    assert restored.status_code == 200
    assert restored.json()["is_active"] is True


def test_api_another_units_asset_is_not_found(world, api, library):
    asset = library["b"]
    api.force_authenticate(world.marketer)
    assert api.get(f"{URL}{asset.pk}/").status_code == 404
    assert api.patch(f"{URL}{asset.pk}/", {"title": "x"}, format="json").status_code == 404
    assert api.delete(f"{URL}{asset.pk}/").status_code == 404
    asset.refresh_from_db()
    assert (asset.title, asset.is_active) == ("B only", True)
