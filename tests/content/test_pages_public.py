"""The public landing page ``/p/<slug>/``: who may see it, what it says to search engines,
and the page view it records (once per request, even when the request is retried)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.test import Client

from apps.contacts.collector.services import collector_batches_process
from apps.contacts.models import Activity, Campaign, Channel, RawBatch
from apps.content.models import LandingPage
from apps.content.services import pages as services
from apps.core.services import SystemActor

SYSTEM = SystemActor("test")
BROWSER = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
XSS = (
    "<p>Hello</p><script>alert(1)</script><img src=x onerror=alert(1)>"
    '<a href="javascript:alert(1)">click</a>'
)
XSS_CLEAN = '<p>Hello</p><img src="x"><a rel="noopener noreferrer nofollow">click</a>'
VISITOR = "0b3f6d2e-8a41-4c55-9e0f-2d7c1a9b4e61"


def make_page(
    unit: Any, *, slug: str = "spring", publish: bool = True, **kwargs: Any
) -> LandingPage:
    page = services.page_create(
        unit=unit,
        title=kwargs.pop("title", "Spring webinar"),
        slug=slug,
        seo_title=kwargs.pop("seo_title", "Spring webinar | Acme"),
        seo_description=kwargs.pop("seo_description", "Join us in April."),
        blocks=kwargs.pop(
            "blocks",
            [
                {"type": "heading", "text": "Spring webinar", "level": 1},
                {"type": "text", "html": XSS},
            ],
        ),
        acting_user=SYSTEM,
        **kwargs,
    )
    if publish:
        services.page_publish(page=page, acting_user=SYSTEM)
    return page


def events_of(batch: RawBatch) -> list[dict[str, Any]]:
    return json.loads(bytes(batch.body))["events"]


@pytest.fixture
def browser() -> Client:
    return Client(HTTP_USER_AGENT=BROWSER, HTTP_ACCEPT_LANGUAGE="en")


def test_a_published_page_renders_with_seo_tags_and_inert_rich_text(world, browser):
    # given a published page whose rich text carries script, onerror and javascript:
    make_page(world.a)
    # when anyone opens it
    response = browser.get("/p/spring/")
    # then it renders, the rich text is exactly the sanitised fragment
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<div class="lp-text">{XSS_CLEAN}</div>' in html
    assert "<script>alert" not in html
    assert "onerror" not in html
    assert "javascript:" not in html
    # and search engines and chat apps get a title, description and canonical address
    assert "<title>Spring webinar | Acme</title>" in html
    assert '<meta name="description" content="Join us in April.">' in html
    assert '<link rel="canonical" href="http://testserver/p/spring/">' in html
    assert '<meta property="og:title" content="Spring webinar | Acme">' in html
    assert '<meta property="og:url" content="http://testserver/p/spring/">' in html
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in html
    assert "noindex" not in html
    assert response["Cache-Control"].startswith("max-age=0")


def test_a_visit_is_stored_as_a_page_view_with_utm_and_becomes_one_activity(world, browser):
    # given a published page and the unit's Baidu channel and spring campaign
    page = make_page(world.a)
    channel = Channel.objects.create(unit=world.a, code="baidu", name="Baidu", kind="sem")
    campaign = Campaign.objects.create(unit=world.a, code="spring", name="Spring", channel=channel)
    browser.cookies["ll_aid"] = VISITOR
    # when a visitor arrives from a Baidu ad
    response = browser.get(
        "/p/spring/?utm_source=baidu&utm_campaign=spring&sl=share123",
        HTTP_REFERER="https://www.baidu.com/s?wd=webinar",
    )
    # then the view is stored as one raw collector batch of the unit's built-in site
    assert response.cookies["ll_aid"].value == VISITOR
    batch = RawBatch.objects.get()
    assert batch.site.unit_id == world.a.pk
    assert batch.site.is_builtin
    assert json.loads(bytes(batch.body))["anonymous_id"] == VISITOR
    [event] = events_of(batch)
    assert event["type"] == "page_view"
    assert event["object_type"] == "landing_page"
    assert event["object_id"] == str(page.pk)
    assert (
        event["url"]
        == "http://testserver/p/spring/?utm_source=baidu&utm_campaign=spring&sl=share123"
    )
    assert event["referrer"] == "https://www.baidu.com/s?wd=webinar"
    assert event["properties"] == {"slug": "spring", "share_token": "share123"}
    assert event["id"].startswith("lp-")
    # and processing turns it into one activity with the channel and campaign
    collector_batches_process([batch.pk])
    activity = Activity.objects.get()
    assert (activity.type, activity.object_type, activity.object_id) == (
        "page_view",
        "landing_page",
        str(page.pk),
    )
    assert (activity.channel_id, activity.campaign_id) == (channel.pk, campaign.pk)
    assert activity.anonymous_id == VISITOR


def test_the_page_channel_and_campaign_stand_in_without_utm(world, browser):
    # given a page credited to the WeChat channel and a campaign
    channel = Channel.objects.create(unit=world.a, code="wechat", name="WeChat", kind="wechat")
    campaign = Campaign.objects.create(unit=world.a, code="mp-spring", name="MP", channel=channel)
    make_page(world.a, channel=channel, campaign=campaign)
    # when someone opens it with no UTM in the link
    browser.get("/p/spring/")
    # then the activity is credited to them
    collector_batches_process(list(RawBatch.objects.values_list("pk", flat=True)))
    assert Activity.objects.values_list("channel_id", "campaign_id").get() == (
        channel.pk,
        campaign.pk,
    )


def test_a_retried_request_is_counted_once(world, browser):
    # given a published page and a returning visitor
    make_page(world.a)
    browser.cookies["ll_aid"] = VISITOR
    # when the same request arrives twice (a retry)
    for _ in range(2):
        assert (
            browser.get("/p/spring/?utm_source=x", HTTP_REFERER="https://a.example/").status_code
            == 200
        )
    # then both are stored, with the same event id, and make one activity
    batches = list(RawBatch.objects.order_by("pk"))
    assert len(batches) == 2
    assert events_of(batches[0])[0]["id"] == events_of(batches[1])[0]["id"]
    collector_batches_process([b.pk for b in batches])
    assert Activity.objects.count() == 1


def test_a_new_visitor_retrying_without_the_cookie_is_counted_once(world):
    # given a published page and a browser that never keeps cookies
    make_page(world.a)
    # when it sends the same request twice from the same address
    for _ in range(2):
        Client(HTTP_USER_AGENT=BROWSER).get("/p/spring/")
    # then the two stored views share one event id, so one activity
    batches = list(RawBatch.objects.order_by("pk"))
    assert events_of(batches[0])[0]["id"] == events_of(batches[1])[0]["id"]
    collector_batches_process([b.pk for b in batches])
    assert Activity.objects.count() == 1


def test_two_different_visitors_are_two_views(world, browser):
    make_page(world.a)
    browser.cookies["ll_aid"] = VISITOR
    browser.get("/p/spring/")
    other = Client(HTTP_USER_AGENT=BROWSER)
    other.cookies["ll_aid"] = "7d1c1a2b-0f4e-4e2a-8c3b-5a6b7c8d9e0f"
    other.get("/p/spring/")
    collector_batches_process(list(RawBatch.objects.values_list("pk", flat=True)))
    assert sorted(Activity.objects.values_list("anonymous_id", flat=True)) == sorted(
        [VISITOR, "7d1c1a2b-0f4e-4e2a-8c3b-5a6b7c8d9e0f"]
    )


def test_a_bot_is_stored_marked_and_not_counted(world):
    # given a published page
    make_page(world.a)
    # when a crawler fetches it
    Client(HTTP_USER_AGENT="Baiduspider/2.0").get("/p/spring/")
    # then the batch is kept, marked as a bot, and no activity comes of it
    batch = RawBatch.objects.get()
    assert batch.is_bot
    collector_batches_process([batch.pk])
    assert Activity.objects.count() == 0


def test_a_draft_is_not_found_for_the_public_and_records_nothing(world, browser):
    # given a draft page
    make_page(world.a, publish=False)
    # when the public asks for it, or for a page that never existed
    assert browser.get("/p/spring/").status_code == 404
    assert browser.get("/p/nothing-here/").status_code == 404
    # then nothing is recorded
    assert RawBatch.objects.count() == 0


def test_an_unpublished_page_is_not_found_again(world, browser):
    page = make_page(world.a)
    services.page_unpublish(page=page, acting_user=SYSTEM)
    assert browser.get("/p/spring/").status_code == 404


def test_an_editor_previews_a_draft_through_a_signed_token(world, browser):
    # given a draft page and its editor, signed in
    page = make_page(world.a, publish=False)
    editor = Client(HTTP_USER_AGENT=BROWSER, HTTP_ACCEPT_LANGUAGE="en")
    editor.force_login(world.marketer)
    # when the editor opens the preview from the console
    redirect = editor.get(f"/console/pages/{page.pk}/preview/")
    assert redirect.status_code == 302
    url = redirect["Location"]
    assert url.startswith("/p/spring/?preview=")
    # then anyone holding that address sees the draft, marked noindex, and no visit counts
    response = browser.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<meta name="robots" content="noindex, nofollow">' in html
    assert "Preview of a draft" in html
    assert f'<div class="lp-text">{XSS_CLEAN}</div>' in html
    assert RawBatch.objects.count() == 0


def test_a_preview_token_expires_after_an_hour(world, browser, monkeypatch):
    # given a token issued 61 minutes ago
    page = make_page(world.a, publish=False)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - 61 * 60)
    token = services.page_preview_token(page=page, user_id=world.marketer.pk)
    monkeypatch.setattr(time, "time", real_time)
    # when it is used now, then the draft is not found
    assert browser.get("/p/spring/", {"preview": token}).status_code == 404
    # while one issued 59 minutes ago still works
    monkeypatch.setattr(time, "time", lambda: real_time() - 59 * 60)
    fresh = services.page_preview_token(page=page, user_id=world.marketer.pk)
    monkeypatch.setattr(time, "time", real_time)
    assert browser.get("/p/spring/", {"preview": fresh}).status_code == 200


def test_a_preview_token_of_another_page_or_forged_is_refused(world, browser):
    # given two drafts and a token for the first
    first = make_page(world.a, slug="first", publish=False)
    make_page(world.a, slug="second", publish=False)
    token = services.page_preview_token(page=first, user_id=world.marketer.pk)
    # when it is used on the second, or altered, then not found
    assert browser.get("/p/second/", {"preview": token}).status_code == 404
    assert browser.get("/p/first/", {"preview": token[:-2] + "xx"}).status_code == 404
    assert browser.get("/p/first/", {"preview": token}).status_code == 200


def test_only_an_editor_may_ask_for_a_preview(world):
    # given a draft of unit A
    page = make_page(world.a, publish=False)
    # when a viewer of A, or a marketer of B, asks for its preview
    viewer = Client(HTTP_ACCEPT_LANGUAGE="en")
    viewer.force_login(world.viewer)
    other = Client(HTTP_ACCEPT_LANGUAGE="en")
    other.force_login(world.b_marketer)
    # then the viewer is refused and B does not even see it
    assert viewer.get(f"/console/pages/{page.pk}/preview/").status_code == 403
    assert other.get(f"/console/pages/{page.pk}/preview/").status_code == 404
