"""Console: the landing-page list with its numbers, the block editor, publishing, and
what another unit or a mere viewer may not do."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from apps.contacts.identity_keys import make_key
from apps.contacts.models import Contact
from apps.contacts.services.activities import ActivityIn, activities_record
from apps.contacts.services.resolution import contact_resolve
from apps.content.models import Form, FormSubmission, LandingPage, PageStatus
from apps.content.services import pages as services
from apps.core.models import AuditLog
from apps.core.services import SystemActor

SYSTEM = SystemActor("test")
XSS = (
    "<p>Hello</p><script>alert(1)</script><img src=x onerror=alert(1)>"
    '<a href="javascript:alert(1)">click</a>'
)
XSS_CLEAN = '<p>Hello</p><img src="x"><a rel="noopener noreferrer nofollow">click</a>'
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def client_for(user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def make_page(unit: Any, slug: str = "spring", **kwargs: Any) -> LandingPage:
    return services.page_create(
        unit=unit,
        title=kwargs.pop("title", "Spring webinar"),
        slug=slug,
        blocks=kwargs.pop("blocks", [{"type": "heading", "text": "Spring", "level": 1}]),
        acting_user=SYSTEM,
        **kwargs,
    )


def contact(unit: Any, email: str) -> Contact:
    return contact_resolve(
        unit=unit, keys=[make_key("email", email)], source="test", acting_user=SYSTEM
    ).contact


def view(unit: Any, page: LandingPage, n: int, *, days_ago: float = 1, **kwargs: Any) -> ActivityIn:
    return ActivityIn(
        unit_id=unit.pk,
        type=kwargs.pop("type", "page_view"),
        occurred_at=timezone.now() - timedelta(days=days_ago),
        object_type="landing_page",
        object_id=str(page.pk),
        dedupe_key=f"t:{page.pk}:{n}",
        **kwargs,
    )


def submission(
    form: Form, page: LandingPage, n: int, *, status: str, days_ago: float = 1
) -> FormSubmission:
    return FormSubmission.objects.create(
        form=form,
        unit=form.unit,
        landing_page=page,
        token=f"tok-{page.pk}-{n}",
        status=status,
        received_at=timezone.now() - timedelta(days=days_ago),
    )


@pytest.fixture
def traffic(world: Any) -> dict[str, Any]:
    """Page ``spring``: within 30 days 5 views by 3 people (visitor v1 twice, v2 once, a
    known contact twice, from two browsers) and 2 counted submissions; plus older, spam
    and non-view rows that must not count. Page ``summer``: nothing."""
    spring = make_page(world.a, "spring")
    summer = make_page(world.a, "summer", title="Summer")
    known = contact(world.a, "li.na@example.cn")
    activities_record(
        [
            view(world.a, spring, 1, anonymous_id="v1"),
            view(world.a, spring, 2, anonymous_id="v1"),
            view(world.a, spring, 3, anonymous_id="v2"),
            view(world.a, spring, 4, anonymous_id="v3", contact_id=known.pk),
            view(world.a, spring, 5, anonymous_id="v4", contact_id=known.pk),
            view(world.a, spring, 6, anonymous_id="v5", days_ago=40),  # outside 30 days
            view(world.a, spring, 7, anonymous_id="v1", type="click"),  # not a view
        ]
    )
    form = Form.objects.create(unit=world.a, name="Sign up")
    submission(form, spring, 1, status="processed")
    submission(form, spring, 2, status="pending")
    submission(form, spring, 3, status="spam")
    submission(form, spring, 4, status="processed", days_ago=45)
    return {"spring": spring, "summer": summer, "form": form, "known": known}


# --- The list ------------------------------------------------------------------------------


def test_the_list_shows_exact_numbers_per_page(world, traffic):
    # when the marketer opens the list (30 days by default)
    response = client_for(world.marketer).get("/console/pages/")
    # then each page has its visits, unique visitors, submissions and conversion
    assert response.status_code == 200
    rows = {row["page"].slug: row["stats"] for row in response.context["rows"]}
    spring, summer = rows["spring"], rows["summer"]
    assert (spring.visits, spring.unique_visitors, spring.submissions) == (5, 3, 2)
    assert spring.conversion_rate == 66.7
    assert (summer.visits, summer.unique_visitors, summer.submissions) == (0, 0, 0)
    assert summer.conversion_rate is None
    html = response.content.decode()
    assert "66.7%" in html


def test_a_longer_period_counts_the_older_rows(world, traffic):
    response = client_for(world.marketer).get("/console/pages/?days=90")
    rows = {row["page"].slug: row["stats"] for row in response.context["rows"]}
    assert (rows["spring"].visits, rows["spring"].unique_visitors, rows["spring"].submissions) == (
        6,
        4,
        3,
    )
    assert rows["spring"].conversion_rate == 75.0


def test_another_units_pages_are_not_listed_or_counted(world, traffic):
    # given unit B's own page
    make_page(world.b, "b-page", title="B page")
    # when A's marketer and B's marketer look
    a_slugs = [
        r["page"].slug for r in client_for(world.marketer).get("/console/pages/").context["rows"]
    ]
    b_slugs = [
        r["page"].slug for r in client_for(world.b_marketer).get("/console/pages/").context["rows"]
    ]
    # then each sees their own
    assert sorted(a_slugs) == ["spring", "summer"]
    assert b_slugs == ["b-page"]


def test_the_list_costs_a_fixed_number_of_queries(world, django_assert_num_queries):
    # given 3 pages, then 30 pages with traffic
    client = client_for(world.marketer)
    form = Form.objects.create(unit=world.a, name="Sign up")
    for n in range(3):
        page = make_page(world.a, f"p{n}")
        activities_record([view(world.a, page, 1, anonymous_id="v")])
        submission(form, page, 1, status="processed")
    client.get("/console/pages/")  # warm the session
    # session, user, unit roles, pages, page views, submissions, editable units, and the
    # shell's unit switcher and unread-notification count
    with django_assert_num_queries(9):
        assert client.get("/console/pages/").status_code == 200
    for n in range(3, 30):
        page = make_page(world.a, f"p{n}")
        activities_record([view(world.a, page, 1, anonymous_id="v")])
        submission(form, page, 1, status="processed")
    with django_assert_num_queries(9):
        assert client.get("/console/pages/").status_code == 200


def test_the_list_pages_by_keyset(world):
    for n in range(55):
        LandingPage.objects.create(unit=world.a, title=f"P{n}", slug=f"p{n}")
    client = client_for(world.marketer)
    first = client.get("/console/pages/")
    assert len(first.context["rows"]) == 50
    cursor = first.context["page"].next_cursor
    second = client.get(f"/console/pages/?cursor={cursor}")
    assert [r["page"].slug for r in second.context["rows"]] == ["p4", "p3", "p2", "p1", "p0"]


# --- Creating ------------------------------------------------------------------------------


def test_creating_a_page_opens_its_editor(world):
    response = client_for(world.marketer).post(
        "/console/pages/new/", {"unit": world.a.pk, "title": "Autumn", "slug": "Autumn-Sale"}
    )
    page = LandingPage.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/console/pages/{page.pk}/"
    assert (page.unit_id, page.slug, page.status) == (world.a.pk, "autumn-sale", PageStatus.DRAFT)
    assert (
        AuditLog.objects.filter(action="landing_page.create", object_id=str(page.pk)).count() == 1
    )


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("spring", "This address is already used by another landing page; choose another."),
        ("admin", "“admin” is reserved by LeadLoop; choose another address."),
        (
            "春季 sale",
            "Use lowercase letters a–z, digits and single hyphens only (e.g. cell-culture-2026); "
            "no spaces, Chinese characters or accents.",
        ),
    ],
)
def test_a_bad_or_taken_slug_is_refused_with_its_reason(world, slug, message):
    # given unit B already has /p/spring/
    make_page(world.b, "spring")
    # when A's marketer creates a page at the slug
    response = client_for(world.marketer).post(
        "/console/pages/new/", {"unit": world.a.pk, "title": "Mine", "slug": slug}
    )
    # then the form says why, and nothing was created in A
    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'").replace("&amp;", "&")
    assert not LandingPage.objects.filter(unit=world.a).exists()


def test_a_viewer_cannot_create_pages(world):
    response = client_for(world.viewer).post(
        "/console/pages/new/", {"unit": world.a.pk, "title": "Mine", "slug": "mine"}
    )
    assert response.status_code == 403
    assert LandingPage.objects.count() == 0


# --- The editor ----------------------------------------------------------------------------


def editor_post(page: LandingPage, blocks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": page.title,
        "slug": page.slug,
        "seo_title": page.seo_title,
        "seo_description": page.seo_description,
        "channel": "",
        "campaign": "",
        "block_count": len(blocks),
    }
    for i, block in enumerate(blocks):
        for key, value in block.items():
            data[f"b-{i}-{key}"] = value
    data.update(extra)
    return data


def test_the_editor_preview_shows_rich_text_inert(world):
    # given a page with script, onerror and javascript: in its rich text
    page = make_page(world.a, blocks=[{"type": "text", "html": XSS}])
    # when its editor is opened
    response = client_for(world.marketer).get(f"/console/pages/{page.pk}/")
    # then the preview holds exactly the sanitised fragment and no live script anywhere
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<div class="lp-text">{XSS_CLEAN}</div>' in html
    assert "<script>alert" not in html
    assert "onerror=alert" not in html
    assert 'href="javascript:' not in html


def test_saving_blocks_through_the_editor_sanitises_them(world):
    page = make_page(world.a, blocks=[])
    response = client_for(world.marketer).post(
        f"/console/pages/{page.pk}/",
        editor_post(
            page,
            [
                {"type": "heading", "text": "Hi", "level": "2"},
                {"type": "text", "html": XSS},
            ],
            seo_title="SEO",
        ),
    )
    assert response.status_code == 302
    page.refresh_from_db()
    assert page.blocks == [
        {"type": "heading", "text": "Hi", "level": 2},
        {"type": "text", "html": XSS_CLEAN},
    ]
    assert page.seo_title == "SEO"


def test_adding_moving_and_removing_blocks_keeps_typing_until_saved(world):
    page = make_page(world.a, blocks=[])
    client = client_for(world.marketer)
    blocks = [
        {"type": "heading", "text": "First", "level": "1"},
        {"type": "text", "html": "<p>Second</p>"},
    ]
    # when a block is added: the form shows three, unsaved
    added = client.post(
        f"/console/pages/{page.pk}/", editor_post(page, blocks, op="add", add_type="cta")
    )
    assert added.status_code == 200
    assert [i["type"] for i in added.context["editor_blocks"]] == ["heading", "text", "cta"]
    assert added.context["unsaved"] is True
    page.refresh_from_db()
    assert page.blocks == []
    # when the text is moved up: the order changes, what was typed stays
    moved = client.post(f"/console/pages/{page.pk}/", editor_post(page, blocks, op="up:1"))
    assert [i["block"] for i in moved.context["editor_blocks"]] == [
        {"type": "text", "html": "<p>Second</p>"},
        {"type": "heading", "text": "First", "level": "1"},
    ]
    # when the heading is removed and the page saved
    removed = client.post(f"/console/pages/{page.pk}/", editor_post(page, blocks, op="remove:0"))
    assert [i["type"] for i in removed.context["editor_blocks"]] == ["text"]
    client.post(f"/console/pages/{page.pk}/", editor_post(page, blocks[1:]))
    page.refresh_from_db()
    assert page.blocks == [{"type": "text", "html": "<p>Second</p>"}]


def test_a_bad_block_is_shown_on_the_block_and_nothing_is_saved(world):
    page = make_page(world.a)
    before = list(page.blocks)
    response = client_for(world.marketer).post(
        f"/console/pages/{page.pk}/",
        editor_post(
            page,
            [
                {"type": "heading", "text": "Fine", "level": "1"},
                {"type": "cta", "label": "Go", "url": "javascript:alert(1)"},
            ],
        ),
    )
    assert response.status_code == 400
    assert response.context["editor_blocks"][1]["errors"] == [
        "Block 2 (Button), url: must be an http:// or https:// URL."
    ]
    page.refresh_from_db()
    assert page.blocks == before


def test_renaming_to_a_taken_slug_is_refused(world):
    make_page(world.b, "taken")
    page = make_page(world.a, "mine")
    response = client_for(world.marketer).post(
        f"/console/pages/{page.pk}/", editor_post(page, [], slug="taken")
    )
    assert response.status_code == 400
    assert "This address is already used by another landing page; choose another." in (
        response.content.decode().replace("&#x27;", "'")
    )
    page.refresh_from_db()
    assert page.slug == "mine"


def test_an_image_is_uploaded_through_storage(world, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    page = make_page(world.a, blocks=[])
    data = editor_post(page, [{"type": "image", "src": "", "alt": "Lab"}])
    data["b-0-upload"] = io.BytesIO(PNG)
    data["b-0-upload"].name = "lab.png"
    response = client_for(world.marketer).post(f"/console/pages/{page.pk}/", data)
    assert response.status_code == 302
    page.refresh_from_db()
    [block] = page.blocks
    assert block["file"].startswith(f"pages/{world.a.pk}/")
    assert block["file"].endswith(".png")
    assert (tmp_path / block["file"]).read_bytes() == PNG


def test_a_renamed_executable_is_not_stored_as_an_image(world, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    page = make_page(world.a, blocks=[])
    data = editor_post(page, [{"type": "image", "src": "", "alt": "Lab"}])
    data["b-0-upload"] = io.BytesIO(b"MZ\x90\x00" + b"\x00" * 60)
    data["b-0-upload"].name = "lab.png"
    response = client_for(world.marketer).post(f"/console/pages/{page.pk}/", data)
    assert response.status_code == 400
    assert response.context["editor_blocks"][0]["errors"] == [
        "This file is not a PNG or JPEG image, whatever its name says."
    ]
    assert list(tmp_path.rglob("*.*")) == []


def test_another_units_page_is_not_found_in_the_console(world):
    page = make_page(world.b, "b-page")
    client = client_for(world.marketer)
    assert client.get(f"/console/pages/{page.pk}/").status_code == 404
    assert client.post(f"/console/pages/{page.pk}/", editor_post(page, [])).status_code == 404
    assert client.post(f"/console/pages/{page.pk}/publish/").status_code == 404
    assert client.post(f"/console/pages/{page.pk}/duplicate/").status_code == 404
    page.refresh_from_db()
    assert page.status == PageStatus.DRAFT
    assert LandingPage.objects.count() == 1


def test_a_viewer_sees_the_editor_but_cannot_change_anything(world):
    page = make_page(world.a)
    client = client_for(world.viewer)
    response = client.get(f"/console/pages/{page.pk}/")
    assert response.status_code == 200
    assert response.context["can_edit"] is False
    assert client.post(f"/console/pages/{page.pk}/", editor_post(page, [])).status_code == 403
    assert client.post(f"/console/pages/{page.pk}/publish/").status_code == 403
    page.refresh_from_db()
    assert (page.status, len(page.blocks)) == (PageStatus.DRAFT, 1)


# --- Publishing ----------------------------------------------------------------------------


def test_publish_unpublish_and_duplicate(world):
    page = make_page(world.a, "spring")
    client = client_for(world.marketer)
    # publish: live, with a time, audited
    assert client.post(f"/console/pages/{page.pk}/publish/").status_code == 302
    page.refresh_from_db()
    assert page.status == PageStatus.PUBLISHED
    assert page.published_at is not None
    assert Client().get("/p/spring/").status_code == 200
    # duplicate: a draft copy next to it, twice
    first = client.post(f"/console/pages/{page.pk}/duplicate/")
    second = client.post(f"/console/pages/{page.pk}/duplicate/")
    copies = list(LandingPage.objects.exclude(pk=page.pk).order_by("pk"))
    assert [c.slug for c in copies] == ["spring-copy", "spring-copy-2"]
    assert [c.status for c in copies] == [PageStatus.DRAFT, PageStatus.DRAFT]
    assert copies[0].blocks == page.blocks
    assert copies[0].title == "Spring webinar (copy)"
    assert first["Location"] == f"/console/pages/{copies[0].pk}/"
    assert second.status_code == 302
    # unpublish: the public address is gone
    assert client.post(f"/console/pages/{page.pk}/unpublish/").status_code == 302
    assert Client().get("/p/spring/").status_code == 404
    actions = list(
        AuditLog.objects.filter(action__startswith="landing_page.").values_list("action", flat=True)
    )
    assert actions.count("landing_page.publish") == 1
    assert actions.count("landing_page.duplicate") == 2
    assert actions.count("landing_page.unpublish") == 1
