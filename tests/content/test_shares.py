"""Share links (全员营销): making links, opening them, heartbeats, processing into activities
and the sharer's notification. The builders here are reused by the other share tests."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from apps.contacts.collector.services import anonymous_link
from apps.contacts.identity_keys import make_key
from apps.contacts.models import Activity, Channel, Contact, ContactUnit
from apps.contacts.services.resolution import contact_resolve
from apps.content.models import Asset, LandingPage, ShareLink, ShareView
from apps.content.services import shares as services
from apps.content.tasks.shares import share_views_process
from apps.core.models import AuditLog, Notification, User
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")
IPHONE_WECHAT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI"
)
DESKTOP_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)


# --- Builders ------------------------------------------------------------------------------


def make_asset(unit, title="植物蛋白白皮书", **fields) -> Asset:
    fields.setdefault("kind", "whitepaper")
    fields.setdefault("summary", "2026 年植物蛋白行业趋势")
    fields.setdefault("url", "https://files.example.cn/plant-protein.pdf")
    return Asset.objects.create(unit=unit, title=title, **fields)


def make_page(unit, title="春季新品发布", slug="spring", published=True) -> LandingPage:
    return LandingPage.objects.create(
        unit=unit,
        title=title,
        slug=slug,
        blocks=[{"type": "heading", "text": title}],
        status="published" if published else "draft",
        published_at=timezone.now() if published else None,
    )


def make_contact(unit, name="王芳", company="华澜生物", email="wang.fang@example.cn") -> Contact:
    return contact_resolve(
        unit=unit,
        keys=[make_key("email", email)],
        attributes={"name": name, "company_name": company},
        source="tests",
        acting_user=SYSTEM,
    ).contact


def known_browser(contact: Contact, user_agent: str = IPHONE_WECHAT) -> tuple[Client, str]:
    """A browser whose ll_aid cookie already belongs to ``contact`` (they filled a form)."""
    anonymous_id = str(uuid.uuid4())
    anonymous_link(contact=contact, anonymous_id=anonymous_id)
    browser = Client(HTTP_USER_AGENT=user_agent)
    browser.cookies["ll_aid"] = anonymous_id
    return browser, anonymous_id


def make_link(owner: User, **target) -> ShareLink:
    return services.share_link_create(owner=owner, acting_user=owner, **target)


def beat_values(html: str) -> tuple[int, str]:
    """The view id and beat key the page hands its script."""
    view = re.search(r'data-view="(\d+)"', html)
    key = re.search(r'data-key="([^"]+)"', html)
    assert view, "the page carries no read-time script"
    assert key, "the page carries no beat key"
    return int(view.group(1)), key.group(1)


def beat(browser: Client, link: ShareLink, view_id: int, key: str, seconds, **extra):
    body = f'{{"v": {view_id}, "k": "{key}", "s": {seconds}}}'
    return browser.post(
        f"/s/{link.token}/beat", data=body, content_type="text/plain;charset=UTF-8", **extra
    )


def opened_ago(view_id: int, seconds: int) -> None:
    ShareView.objects.filter(pk=view_id).update(
        opened_at=timezone.now() - timedelta(seconds=seconds)
    )


# --- Acceptance ----------------------------------------------------------------------------


def test_a_contact_reading_for_95_seconds_shows_in_the_sharers_list_and_notifies_them(world):
    # Given a salesperson's link to a whitepaper, and 王芳 of 华澜生物 whose browser we know
    world.sales.language = "en"
    world.sales.save(update_fields=["language"])
    link = make_link(world.sales, asset=make_asset(world.a))
    wang = make_contact(world.a)
    browser, anonymous_id = known_browser(wang)

    # When she opens the link, reads for 95 s (heartbeats every 15 s, then on hiding the
    # page) and the worker processes the view
    page = browser.get(f"/s/{link.token}/")
    view_id, key = beat_values(page.text)
    opened_ago(view_id, 95)
    for seconds in (15, 30, 45, 60, 75, 90, 95):
        assert beat(browser, link, view_id, key, seconds).status_code == 204
    share_views_process([view_id])

    # Then the sharer's viewer list shows her and 1 min 35 s
    sharer = Client()
    sharer.force_login(world.sales)
    listing = sharer.get(f"/m/shares/{link.pk}/", HTTP_ACCEPT_LANGUAGE="en")
    assert listing.status_code == 200
    assert "王芳" in listing.text
    assert "1 min 35 s" in listing.text
    view = ShareView.objects.get(pk=view_id)
    assert (view.contact_id, view.seconds, view.anonymous_id) == (wang.pk, 95, anonymous_id)
    # … and a notification reached the sharer, pointing at that list
    notice = Notification.objects.get(user=world.sales)
    assert notice.title == "王芳 (华澜生物) opened your link “植物蛋白白皮书”"
    assert (notice.kind, notice.url, notice.read_at) == (
        "share_opened",
        f"/m/shares/{link.pk}/",
        None,
    )
    # … and the open is one activity on her timeline
    activity = Activity.objects.get(type="share_open")
    assert (activity.contact_id, activity.object_type, activity.object_id) == (
        wang.pk,
        "share_link",
        str(link.pk),
    )
    assert activity.dedupe_key == f"share:{view_id}"
    assert activity.properties["sharer"] == world.sales.pk


def test_processing_twice_adds_nothing(world):
    # Given a processed open by a known contact
    link = make_link(world.sales, asset=make_asset(world.a))
    browser, _aid = known_browser(make_contact(world.a))
    view_id, _key = beat_values(browser.get(f"/s/{link.token}/").text)
    share_views_process([view_id])
    before = (Activity.objects.count(), Notification.objects.count())

    # When the same view is processed again (a retried task), and the sweep runs
    ShareView.objects.filter(pk=view_id).update(processed_at=None, notified_at=None)
    share_views_process([view_id])
    share_views_process()

    # Then there is still one activity and one notification
    assert (Activity.objects.count(), Notification.objects.count()) == before == (1, 1)


# --- Heartbeats ----------------------------------------------------------------------------


def _opened(world):
    link = make_link(world.sales, asset=make_asset(world.a))
    browser = Client(HTTP_USER_AGENT=DESKTOP_CHROME)
    view_id, key = beat_values(browser.get(f"/s/{link.token}/").text)
    return link, browser, view_id, key


def test_a_heartbeat_above_wall_clock_time_is_capped(world):
    # Given a page opened 10 s ago
    link, browser, view_id, key = _opened(world)
    opened_ago(view_id, 10)

    # When its script claims an hour of reading
    response = beat(browser, link, view_id, key, 3600)

    # Then the view holds at most the time since it opened plus the slack
    assert response.status_code == 204
    seconds = ShareView.objects.get(pk=view_id).seconds
    assert 10 <= seconds <= 10 + services.BEAT_SLACK_SECONDS + 1


def test_a_heartbeat_never_lowers_the_read_time(world):
    link, browser, view_id, key = _opened(world)
    opened_ago(view_id, 120)
    beat(browser, link, view_id, key, 80)

    assert beat(browser, link, view_id, key, 30).status_code == 204

    assert ShareView.objects.get(pk=view_id).seconds == 80


def test_json_heartbeats_work_too(world):
    link, browser, view_id, key = _opened(world)
    opened_ago(view_id, 60)

    response = browser.post(
        f"/s/{link.token}/beat",
        data={"v": view_id, "k": key, "s": 42},
        content_type="application/json",
    )

    assert response.status_code == 204
    assert ShareView.objects.get(pk=view_id).seconds == 42


def test_a_wrong_beat_key_changes_nothing(world):
    # Given an open view with 20 s read
    link, browser, view_id, key = _opened(world)
    opened_ago(view_id, 60)
    beat(browser, link, view_id, key, 20)

    # When someone beats with a wrong key, another link's token, or another view's id
    other, _b, other_view, other_key = _opened(world)
    responses = [
        beat(browser, link, view_id, "not-the-key", 50),
        beat(browser, other, view_id, key, 50),
        beat(browser, link, other_view, other_key, 50),
    ]

    # Then each is refused and the read time did not move
    assert [r.status_code for r in responses] == [404, 404, 404]
    assert ShareView.objects.get(pk=view_id).seconds == 20
    assert ShareView.objects.get(pk=other_view).seconds == 0


@pytest.mark.parametrize(
    "body",
    [
        "",
        "not json",
        "[1, 2]",
        '{"v": "1", "k": "x", "s": 5}',
        '{"v": 1, "k": "x", "s": -5}',
        '{"v": 1, "k": "x", "s": true}',
        '{"v": 1, "s": 5}',
        '{"v": 1, "k": "' + "x" * 600 + '", "s": 5}',
        b"\xff\xfe{",
    ],
)
def test_a_malformed_heartbeat_is_400_and_changes_nothing(world, body):
    link, browser, view_id, _key = _opened(world)
    opened_ago(view_id, 60)

    response = browser.post(f"/s/{link.token}/beat", data=body, content_type="text/plain")

    assert response.status_code == 400
    assert ShareView.objects.get(pk=view_id).seconds == 0


def test_a_heartbeat_must_be_a_post(world):
    link, browser, _view_id, _key = _opened(world)
    assert browser.get(f"/s/{link.token}/beat").status_code == 405


# --- Opening -------------------------------------------------------------------------------


def test_opening_stores_the_view_first_and_sets_the_visitor_cookie(world):
    # Given a marketer's link to a landing-page-less article and a new visitor from WeChat
    article = make_asset(world.a, title="案例：某乳企降本 12%", kind="article", url="")
    article.body = "<p>正文<script>alert(1)</script></p><img src=x onerror=alert(2)>"
    article.save()
    link = make_link(world.marketer, asset=article)
    browser = Client(HTTP_USER_AGENT=IPHONE_WECHAT)

    # When the visitor opens it
    response = browser.get(
        f"/s/{link.token}/", HTTP_REFERER="https://weixin.qq.com/", REMOTE_ADDR="203.0.113.9"
    )

    # Then one view is stored, anonymous, with where it came from, and the cookie is set
    assert response.status_code == 200
    view = ShareView.objects.get(link=link)
    assert (view.contact_id, view.ip, view.referrer, view.is_bot, view.processed_at) == (
        None,
        "203.0.113.9",
        "https://weixin.qq.com/",
        False,
        None,
    )
    assert view.user_agent == IPHONE_WECHAT
    assert response.cookies["ll_aid"].value == view.anonymous_id
    # … the article renders inert, and the sharer is named
    assert "正文" in response.text
    assert "<script>alert(1)" not in response.text
    assert "onerror" not in response.text
    assert str(world.marketer) in response.text
    assert response["Cache-Control"].startswith("max-age=0")


def test_a_crawler_is_stored_as_a_bot_already_processed_and_gets_no_script(world):
    link = make_link(world.sales, asset=make_asset(world.a))
    crawler = Client(HTTP_USER_AGENT="Mozilla/5.0 (compatible; Baiduspider/2.0)")

    response = crawler.get(f"/s/{link.token}/")

    assert response.status_code == 200
    view = ShareView.objects.get(link=link)
    assert view.is_bot is True
    assert view.processed_at is not None
    assert "content-share.js" not in response.text


def test_a_downloadable_asset_links_its_download_through_the_share(world):
    paper = make_asset(world.a)
    link = make_link(world.sales, asset=paper)

    response = Client(HTTP_USER_AGENT=DESKTOP_CHROME).get(f"/s/{link.token}/")

    assert f'href="/a/{paper.key}/?sl={link.token}"' in response.text


def test_a_gated_asset_shows_its_gate_form_instead_of_the_download(world):
    from apps.content.models import Form

    gate = Form.objects.create(unit=world.a, name="白皮书下载", fields=[{"key": "email"}])
    paper = make_asset(world.a, is_gated=True, gate_form=gate)
    link = make_link(world.sales, asset=paper)

    response = Client(HTTP_USER_AGENT=DESKTOP_CHROME).get(f"/s/{link.token}/")

    assert f"/f/{gate.key}/?embed=1&amp;sl={link.token}&amp;asset={paper.key}" in response.text
    assert f"/a/{paper.key}/" not in response.text


def test_an_unknown_token_is_404_and_a_switched_off_link_410_storing_nothing(world):
    link = make_link(world.sales, asset=make_asset(world.a))
    services.share_link_deactivate(link=link, acting_user=world.sales)
    browser = Client(HTTP_ACCEPT_LANGUAGE="en")

    gone = browser.get(f"/s/{link.token}/")
    unknown = browser.get("/s/no-such-token/")

    assert (gone.status_code, unknown.status_code) == (410, 404)
    assert "This link is no longer available" in gone.text
    assert ShareView.objects.count() == 0


def test_an_asset_switched_off_after_sharing_is_410(world):
    paper = make_asset(world.a)
    link = make_link(world.sales, asset=paper)
    Asset.objects.filter(pk=paper.pk).update(is_active=False)

    assert Client().get(f"/s/{link.token}/").status_code == 410
    assert ShareView.objects.count() == 0


# --- Processing ----------------------------------------------------------------------------


def test_an_anonymous_view_waits_its_grace_period_then_becomes_an_anonymous_activity(world):
    # Given an anonymous open
    link = make_link(world.sales, asset=make_asset(world.a))
    view_id, _key = beat_values(
        Client(HTTP_USER_AGENT=DESKTOP_CHROME).get(f"/s/{link.token}/").text
    )

    # When the worker runs at once, nothing happens yet
    share_views_process([view_id])
    assert ShareView.objects.get(pk=view_id).processed_at is None

    # When it runs after the grace period
    later = timezone.now() + services.ANONYMOUS_GRACE + timedelta(seconds=1)
    services.share_views_process(now=later)

    # Then the view is processed: an anonymous activity, no notification
    view = ShareView.objects.get(pk=view_id)
    assert view.processed_at == later
    assert view.notified_at is None
    activity = Activity.objects.get(type="share_open")
    assert (activity.contact_id, activity.anonymous_id) == (None, view.anonymous_id)
    assert Notification.objects.count() == 0


def test_a_visitor_who_identifies_within_the_grace_period_is_reported_to_the_sharer(world):
    # Given an anonymous open by a visitor who then fills a form on the page
    world.sales.language = "en"
    world.sales.save(update_fields=["language"])
    link = make_link(world.sales, asset=make_asset(world.a, title="报价单"))
    browser = Client(HTTP_USER_AGENT=DESKTOP_CHROME)
    view_id, _key = beat_values(browser.get(f"/s/{link.token}/").text)
    li = make_contact(world.a, name="李雷", company="", email="li.lei@example.cn")
    anonymous_link(contact=li, anonymous_id=browser.cookies["ll_aid"].value)

    # When the worker processes it after the grace period
    services.share_views_process(now=timezone.now() + services.ANONYMOUS_GRACE)

    # Then the view is his, and the sharer hears of it
    assert ShareView.objects.get(pk=view_id).contact_id == li.pk
    assert Notification.objects.get(user=world.sales).title == "李雷 opened your link “报价单”"
    assert Activity.objects.get(type="share_open").contact_id == li.pk


def test_a_known_open_touches_the_contact_with_the_links_campaign_or_the_sales_channel(world):
    from apps.contacts.models import Campaign

    sales = Channel.objects.create(unit=world.a, code="sales", name="销售自拓", kind="sales")
    expo = Campaign.objects.create(unit=world.a, code="expo-2026", name="2026 展会")
    wang = make_contact(world.a)
    plain = make_link(world.sales, asset=make_asset(world.a))
    browser, _aid = known_browser(wang)
    view_id, _key = beat_values(browser.get(f"/s/{plain.token}/").text)

    share_views_process([view_id])

    wang.refresh_from_db()
    assert (wang.latest_touch_channel_id, wang.latest_touch_campaign_id) == (sales.pk, None)
    activity = Activity.objects.get(type="share_open")
    assert activity.channel_id == sales.pk
    assert ContactUnit.objects.filter(contact=wang, unit=world.a).exists()

    # And a link with a campaign carries it
    with_campaign = services.share_link_create(
        owner=world.sales,
        asset=make_asset(world.a, title="b"),
        campaign=expo,
        acting_user=world.sales,
    )
    view_id, _key = beat_values(browser.get(f"/s/{with_campaign.token}/").text)
    share_views_process([view_id])
    assert Activity.objects.get(dedupe_key=f"share:{view_id}").campaign_id == expo.pk


# --- Making links --------------------------------------------------------------------------


def test_creating_a_link_is_audited(world):
    paper = make_asset(world.a)

    link = services.share_link_create(
        owner=world.sdr, asset=paper, note="展会后跟进", acting_user=world.sdr
    )

    assert (link.unit_id, link.owner_id, link.asset_id, link.note) == (
        world.a.pk,
        world.sdr.pk,
        paper.pk,
        "展会后跟进",
    )
    assert len(link.token) >= 12
    audit = AuditLog.objects.get(action="share_link.create")
    assert (audit.actor_id, audit.object_id, audit.unit_id) == (
        world.sdr.pk,
        str(link.pk),
        world.a.pk,
    )


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("viewer may not share", "owner"),
        ("other unit", "owner"),
        ("draft page", "landing_page"),
        ("inactive asset", "asset"),
        ("both targets", "target"),
        ("no target", "target"),
        ("campaign of another unit", "campaign"),
        ("note too long", "note"),
        ("in someone else's name", "owner"),
    ],
)
def test_a_link_that_may_not_be_made_is_refused_and_nothing_is_stored(world, case, field):
    from apps.contacts.models import Campaign

    paper = make_asset(world.a)
    kwargs: dict = {"owner": world.sales, "asset": paper, "acting_user": world.sales}
    if case == "viewer may not share":
        kwargs.update(owner=world.viewer, acting_user=world.viewer)
    elif case == "other unit":
        kwargs.update(asset=make_asset(world.b))
    elif case == "draft page":
        kwargs.update(asset=None, landing_page=make_page(world.a, published=False))
    elif case == "inactive asset":
        kwargs.update(asset=make_asset(world.a, is_active=False))
    elif case == "both targets":
        kwargs.update(landing_page=make_page(world.a))
    elif case == "no target":
        kwargs.update(asset=None)
    elif case == "campaign of another unit":
        kwargs.update(campaign=Campaign.objects.create(unit=world.b, code="b", name="B"))
    elif case == "note too long":
        kwargs.update(note="x" * 201)
    elif case == "in someone else's name":
        kwargs.update(acting_user=world.sdr)

    with pytest.raises(ValidationError) as caught:
        services.share_link_create(**kwargs)

    assert field in caught.value.message_dict
    assert ShareLink.objects.count() == 0
    assert not AuditLog.objects.filter(action="share_link.create").exists()


def test_a_marketer_may_make_a_link_in_a_colleagues_name(world):
    link = services.share_link_create(
        owner=world.sales, asset=make_asset(world.a), acting_user=world.marketer
    )
    assert link.owner_id == world.sales.pk


def test_get_my_link_returns_the_same_link_the_second_time(world):
    paper = make_asset(world.a)

    first, created = services.share_link_for(
        owner=world.sales, asset=paper, acting_user=world.sales
    )
    again, created_again = services.share_link_for(
        owner=world.sales, asset=paper, acting_user=world.sales
    )

    assert (created, created_again, again.pk) == (True, False, first.pk)
    assert ShareLink.objects.count() == 1


def test_a_published_landing_page_can_be_shared(world):
    page = make_page(world.a)
    link = make_link(world.sdr, landing_page=page)
    assert (link.landing_page_id, link.asset_id, link.unit_id) == (page.pk, None, world.a.pk)


def test_with_the_broker_down_the_page_still_opens_and_the_sweep_catches_up(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    # Given a broker that refuses every message
    from apps.content.tasks import shares as tasks

    def refuse(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.share_views_process, "apply_async", refuse)
    link = make_link(world.sales, asset=make_asset(world.a))
    browser, _aid = known_browser(make_contact(world.a))

    # When a known contact opens the link
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = browser.get(f"/s/{link.token}/")

    # Then the page opens and the view is stored, waiting
    assert response.status_code == 200
    assert len(callbacks) == 1
    view = ShareView.objects.get(link=link)
    assert view.processed_at is None
    # … and beat's sweep (the task without ids) processes it
    share_views_process()
    view.refresh_from_db()
    assert view.processed_at is not None
    assert Notification.objects.filter(user=world.sales).count() == 1
