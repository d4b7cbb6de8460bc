"""Public asset delivery ``/a/<key>/``: open assets at once, gated ones only with a grant
for that asset or to a visitor who filled the gate form; every delivery recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.contacts.collector.services import collector_batches_process
from apps.contacts.identity_keys import make_key
from apps.contacts.models import Activity, RawBatch
from apps.contacts.services.resolution import contact_resolve
from apps.content.demo.assets import tiny_pdf
from apps.content.gating import asset_grant
from apps.content.models import Asset, Form, FormSubmission
from apps.content.services import assets as services
from apps.core.services import SystemActor

SYSTEM = SystemActor("test")
PDF = tiny_pdf(["Hello"])
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36"
VISITOR = "0b3f6d2e-8a41-4c55-9e0f-2d7c1a9b4e61"


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def browser() -> Client:
    return Client(HTTP_USER_AGENT=BROWSER, HTTP_ACCEPT_LANGUAGE="en")


def pdf_asset(unit: Any, **kwargs: Any) -> Asset:
    return services.asset_create(
        unit=unit,
        title=kwargs.pop("title", "Whitepaper"),
        kind="whitepaper",
        upload=SimpleUploadedFile("paper.pdf", PDF),
        acting_user=SYSTEM,
        **kwargs,
    )


def only_event() -> dict[str, Any]:
    [batch] = RawBatch.objects.all()
    [event] = json.loads(bytes(batch.body))["events"]
    return event


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


# --- Open assets ---------------------------------------------------------------------------


def test_an_open_pdf_is_served_inline_and_recorded_as_a_download(world, media, browser):
    asset = pdf_asset(world.a, topic="单细胞", buying_stage="consideration")
    browser.cookies["ll_aid"] = VISITOR
    response = browser.get(f"/a/{asset.key}/?sl=share9", HTTP_REFERER="https://x.example/")
    assert response.status_code == 200
    assert body(response) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("inline;")
    assert response["Content-Security-Policy"] == "sandbox"
    event = only_event()
    assert (event["type"], event["object_type"], event["object_id"]) == (
        "download",
        "asset",
        str(asset.pk),
    )
    assert event["properties"] == {
        "title": "Whitepaper",
        "kind": "whitepaper",
        "topic": "单细胞",
        "buying_stage": "consideration",
        "share_token": "share9",
    }
    assert event["referrer"] == "https://x.example/"
    collector_batches_process(list(RawBatch.objects.values_list("pk", flat=True)))
    activity = Activity.objects.get()
    assert (activity.type, activity.object_id, activity.anonymous_id) == (
        "download",
        str(asset.pk),
        VISITOR,
    )


def test_an_office_document_is_an_attachment(world, media, browser):
    asset = services.asset_create(
        unit=world.a,
        title="Deck",
        kind="datasheet",
        upload=SimpleUploadedFile("deck.docx", b"PK\x03\x04" + b"\x00" * 40),
        acting_user=SYSTEM,
    )
    response = browser.get(f"/a/{asset.key}/")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert body(response) == b"PK\x03\x04" + b"\x00" * 40


def test_a_video_by_url_redirects_and_counts_as_a_view(world, browser):
    asset = services.asset_create(
        unit=world.a,
        title="Clip",
        kind="video",
        url="https://v.example.cn/a.mp4",
        acting_user=SYSTEM,
    )
    response = browser.get(f"/a/{asset.key}/")
    assert response.status_code == 302
    assert response["Location"] == "https://v.example.cn/a.mp4"
    assert only_event()["type"] == "content_view"


def test_an_article_renders_on_a_public_page_with_its_body_inert(world, browser):
    asset = services.asset_create(
        unit=world.a,
        title="Case <b>study</b>",
        kind="article",
        body="<p>Result</p>",
        acting_user=SYSTEM,
    )
    # written straight into the database by an older version, unsanitised
    Asset.objects.filter(pk=asset.pk).update(body='<p>Result</p><img src=x onerror="alert(1)">')
    response = browser.get(f"/a/{asset.key}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<div class="article-body"><p>Result</p><img src="x"></div>' in html
    assert "<h1>Case &lt;b&gt;study&lt;/b&gt;</h1>" in html
    assert "onerror" not in html
    assert only_event()["type"] == "content_view"


def test_an_archived_or_unknown_asset_is_not_found(world, browser):
    asset = services.asset_create(
        unit=world.a,
        title="Clip",
        kind="video",
        url="https://v.example.cn/a.mp4",
        acting_user=SYSTEM,
    )
    services.asset_archive(asset=asset, acting_user=SYSTEM)
    assert browser.get(f"/a/{asset.key}/").status_code == 404
    assert browser.get("/a/a_nothing/").status_code == 404
    assert RawBatch.objects.count() == 0


# --- Gated assets --------------------------------------------------------------------------


@pytest.fixture
def gated(world: Any, media: Path) -> Asset:
    form = Form.objects.create(unit=world.a, name="Get the whitepaper")
    return pdf_asset(world.a, is_gated=True, gate_form=form)


def test_without_a_grant_a_gated_asset_sends_to_its_gate_form(gated, browser):
    response = browser.get(f"/a/{gated.key}/?sl=share9")
    assert response.status_code == 302
    assert response["Location"] == f"/f/{gated.gate_form.key}/?asset={gated.key}&sl=share9"
    assert RawBatch.objects.count() == 0


def test_a_valid_grant_delivers_the_file(gated, browser):
    submission = FormSubmission.objects.create(
        form=gated.gate_form, unit=gated.unit, token="t1", status="pending"
    )
    response = browser.get(f"/a/{gated.key}/", {"g": asset_grant(gated.key, submission.pk)})
    assert response.status_code == 200
    assert body(response) == PDF
    assert only_event()["properties"]["gated"] is True


def test_a_grant_for_another_asset_or_a_forged_one_is_refused(world, gated, browser):
    other = pdf_asset(world.a, title="Other")
    for_other = asset_grant(other.key, 1)
    forged = asset_grant(gated.key, 1)[:-3] + "abc"
    for grant in (for_other, forged, "nonsense"):
        response = browser.get(f"/a/{gated.key}/", {"g": grant})
        assert response.status_code == 302, grant
        assert response["Location"].startswith(f"/f/{gated.gate_form.key}/")
    assert RawBatch.objects.count() == 0


def test_a_visitor_who_filled_the_gate_form_gets_it_straight_away(gated, browser):
    # given this browser's visitor submitted the gate form (still being processed)
    FormSubmission.objects.create(
        form=gated.gate_form, unit=gated.unit, token="t1", status="pending", anonymous_id=VISITOR
    )
    browser.cookies["ll_aid"] = VISITOR
    # when they open the asset link again, then they get the file
    response = browser.get(f"/a/{gated.key}/")
    assert response.status_code == 200
    assert body(response) == PDF


def test_a_known_contact_who_filled_the_gate_form_elsewhere_gets_it(world, gated, browser):
    # given a contact whose submission came from another browser, and this browser's
    # visitor id belongs to the same contact
    person = contact_resolve(
        unit=world.a,
        keys=[make_key("email", "li@example.cn"), make_key("anonymous", VISITOR)],
        source="test",
        acting_user=SYSTEM,
    ).contact
    FormSubmission.objects.create(
        form=gated.gate_form,
        unit=gated.unit,
        token="t1",
        status="processed",
        anonymous_id="another-browser",
        contact=person,
    )
    browser.cookies["ll_aid"] = VISITOR
    assert browser.get(f"/a/{gated.key}/").status_code == 200


def test_a_spam_submission_does_not_unlock_the_asset(gated, browser):
    FormSubmission.objects.create(
        form=gated.gate_form, unit=gated.unit, token="t1", status="spam", anonymous_id=VISITOR
    )
    browser.cookies["ll_aid"] = VISITOR
    assert browser.get(f"/a/{gated.key}/").status_code == 302


def test_a_bot_download_is_stored_marked_and_not_counted(world, media):
    asset = pdf_asset(world.a)
    Client(HTTP_USER_AGENT="Mozilla/5.0 (compatible; Googlebot/2.1)").get(f"/a/{asset.key}/")
    batch = RawBatch.objects.get()
    assert batch.is_bot
    collector_batches_process([batch.pk])
    assert Activity.objects.count() == 0
