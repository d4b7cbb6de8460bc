"""API: landing pages: CRUD through the services, actions, stats, scoping."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from apps.contacts.services.activities import ActivityIn, activities_record
from apps.content.models import Form, FormSubmission, LandingPage, PageStatus
from apps.content.services import pages as services
from apps.core.services import SystemActor

SYSTEM = SystemActor("test")
URL = "/api/v1/landing-pages/"


def make_page(unit: Any, slug: str = "spring", **kwargs: Any) -> LandingPage:
    return services.page_create(
        unit=unit,
        title=kwargs.pop("title", "Spring"),
        slug=slug,
        blocks=[{"type": "heading", "text": "Spring", "level": 1}],
        acting_user=SYSTEM,
        **kwargs,
    )


def test_create_a_page_with_blocks(world, api):
    api.force_authenticate(world.marketer)
    response = api.post(
        URL,
        {
            "unit": world.a.pk,
            "title": "Spring",
            "slug": "Spring-2026",
            "seo_title": "Spring | Acme",
            "blocks": [
                {"type": "heading", "text": "Hello", "level": 1},
                {"type": "text", "html": "<p>Hi</p><script>alert(1)</script>"},
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    page = LandingPage.objects.get()
    assert body["id"] == page.pk
    assert body["slug"] == "spring-2026"
    assert body["status"] == "draft"
    assert body["published_at"] is None
    assert body["blocks"] == [
        {"type": "heading", "text": "Hello", "level": 1},
        {"type": "text", "html": "<p>Hi</p>"},
    ]
    assert body["public_url"] == "http://testserver/p/spring-2026/"
    assert body["stats"] == {
        "visits": 0,
        "unique_visitors": 0,
        "submissions": 0,
        "conversion_rate": None,
    }


def test_a_bad_block_is_refused_naming_index_and_field(world, api):
    api.force_authenticate(world.marketer)
    response = api.post(
        URL,
        {
            "unit": world.a.pk,
            "title": "Spring",
            "slug": "spring",
            "blocks": [
                {"type": "heading", "text": "A", "level": 1},
                {"type": "heading", "text": "B", "level": 7},
            ],
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "blocks.1.level": ["Block 2 (Heading), level: must be 1, 2 or 3."]
    }
    assert LandingPage.objects.count() == 0


def test_a_taken_slug_is_refused_clearly(world, api):
    make_page(world.b, "spring")
    api.force_authenticate(world.marketer)
    response = api.post(URL, {"unit": world.a.pk, "title": "Mine", "slug": "spring"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "slug": ["This address is already used by another landing page; choose another."]
    }
    assert LandingPage.objects.filter(unit=world.a).count() == 0


def test_update_publish_unpublish_duplicate_and_preview(world, api):
    page = make_page(world.a)
    api.force_authenticate(world.marketer)
    patched = api.patch(f"{URL}{page.pk}/", {"seo_description": "April"}, format="json")
    assert patched.status_code == 200
    assert patched.json()["seo_description"] == "April"
    assert patched.json()["title"] == "Spring"
    published = api.post(f"{URL}{page.pk}/publish/")
    assert published.status_code == 200
    assert published.json()["status"] == "published"
    assert published.json()["published_at"] is not None
    copy = api.post(f"{URL}{page.pk}/duplicate/")
    assert copy.status_code == 201
    assert (copy.json()["slug"], copy.json()["status"]) == ("spring-copy", "draft")
    preview = api.get(f"{URL}{copy.json()['id']}/preview/")
    assert preview.status_code == 200
    assert preview.json()["url"].startswith("http://testserver/p/spring-copy/?preview=")
    assert preview.json()["expires_in"] == 3600
    unpublished = api.post(f"{URL}{page.pk}/unpublish/")
    assert unpublished.json()["status"] == "draft"


def test_delete_only_a_draft(world, api):
    page = make_page(world.a)
    services.page_publish(page=page, acting_user=SYSTEM)
    api.force_authenticate(world.marketer)
    refused = api.delete(f"{URL}{page.pk}/")
    assert refused.status_code == 400
    assert refused.json()["error"]["fields"] == {
        "status": ["This page is published; unpublish it before deleting it."]
    }
    assert LandingPage.objects.filter(pk=page.pk).exists()
    services.page_unpublish(page=page, acting_user=SYSTEM)
    assert api.delete(f"{URL}{page.pk}/").status_code == 204
    assert not LandingPage.objects.filter(pk=page.pk).exists()


def test_list_carries_exact_stats(world, api):
    page = make_page(world.a)
    form = Form.objects.create(unit=world.a, name="Sign up")
    now = timezone.now()
    activities_record(
        [
            ActivityIn(
                unit_id=world.a.pk,
                type="page_view",
                occurred_at=now - timedelta(hours=n + 1),
                anonymous_id=f"v{n % 2}",
                object_type="landing_page",
                object_id=str(page.pk),
                dedupe_key=f"api:{n}",
            )
            for n in range(4)
        ]
    )
    FormSubmission.objects.create(
        form=form, unit=world.a, landing_page=page, token="t1", status="processed"
    )
    api.force_authenticate(world.marketer)
    body = api.get(URL).json()
    [row] = body["results"]
    assert row["stats"] == {
        "visits": 4,
        "unique_visitors": 2,
        "submissions": 1,
        "conversion_rate": 50.0,
    }


def test_another_units_page_is_not_found(world, api):
    page = make_page(world.b, "b-page")
    api.force_authenticate(world.marketer)
    assert api.get(f"{URL}{page.pk}/").status_code == 404
    assert api.patch(f"{URL}{page.pk}/", {"title": "x"}, format="json").status_code == 404
    assert api.post(f"{URL}{page.pk}/publish/").status_code == 404
    assert api.delete(f"{URL}{page.pk}/").status_code == 404
    assert [r["slug"] for r in api.get(URL).json()["results"]] == []
    page.refresh_from_db()
    assert (page.title, page.status) == ("Spring", PageStatus.DRAFT)


def test_a_page_cannot_be_created_in_another_unit(world, api):
    api.force_authenticate(world.marketer)
    response = api.post(URL, {"unit": world.b.pk, "title": "x", "slug": "x"}, format="json")
    assert response.status_code == 400
    assert "unit" in response.json()["error"]["fields"]
    assert LandingPage.objects.count() == 0


def test_a_viewer_reads_but_does_not_write(world, api):
    page = make_page(world.a)
    api.force_authenticate(world.viewer)
    assert api.get(f"{URL}{page.pk}/").status_code == 200
    assert api.patch(f"{URL}{page.pk}/", {"title": "x"}, format="json").status_code == 403
    assert api.post(f"{URL}{page.pk}/publish/").status_code == 403
    page.refresh_from_db()
    assert (page.title, page.status) == ("Spring", PageStatus.DRAFT)
