"""Alerts: email and WeCom delivery with retries, "a contact of mine is active now", the
settings pages, and the core services' alerts arriving per each person's choices."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.contacts.models import Activity, Contact, Identity
from apps.core.models import AuditLog, Notification, User
from apps.sales import tasks as sales_tasks
from apps.sales.models import AlertDelivery, AlertSettings, Lead
from apps.sales.services import activity_alerts, alert_delivery, alerts, sla
from apps.sales.services import leads as lead_services

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
ALL_IN_APP = {
    k: ["in_app"]
    for k in ("lead_assigned", "sla_warning", "sla_breached", "contact_active", "lead_recycled")
}


def _contact(world, name="王磊", company="华东生物"):
    contact = Contact.objects.create(group=world.group, name=name, company_name=company)
    Identity.objects.create(
        group=world.group, contact=contact, kind="email", value=f"{contact.pk}@example.cn"
    )
    return contact


def _choose(user, wecom_url="", **kinds):
    AlertSettings.objects.update_or_create(
        user=user, defaults={"channels": {**ALL_IN_APP, **kinds}, "wecom_webhook_url": wecom_url}
    )


# --- A WeCom robot on localhost ---------------------------------------------------------------


class Robot:
    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.answer: bytes = b'{"errcode":0,"errmsg":"ok"}'
        self.delay = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cgi-bin/webhook/send?key=test-key"


@pytest.fixture
def robot(settings) -> Iterator[Robot]:
    state = Robot()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            state.posts.append(
                {
                    "path": self.path,
                    "content_type": self.headers["Content-Type"],
                    "json": json.loads(self.rfile.read(length)),
                }
            )
            time.sleep(state.delay)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(state.answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # The real prefix only allows WeCom's host; the test robot lives on localhost.
    settings.SALES_WECOM_WEBHOOK_PREFIXES = ("http://127.0.0.1:",)
    yield state
    server.shutdown()
    server.server_close()


# --- Delivery ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_email_alert_lands_once_even_when_the_sender_runs_twice(world, mailoutbox):
    # Given a salesperson who wants "lead assigned" by email only
    _choose(world.sales, lead_assigned=["email"])
    # When an alert is sent and the delivery task runs twice
    made = alerts.alerts_send(
        [
            alerts.AlertIn(
                user_id=world.sales.pk,
                kind="lead_assigned",
                title="New lead: 王磊",
                body="MQL",
                url="/m/leads/7/",
            )
        ]
    )
    assert made == 0  # no in-app notice
    assert alert_delivery.alert_deliveries_send() == 1
    assert alert_delivery.alert_deliveries_send() == 0
    # Then exactly one email went to their address, and the row says sent
    assert len(mailoutbox) == 1
    assert mailoutbox[0].subject == "New lead: 王磊"
    assert mailoutbox[0].to == [world.sales.email]
    assert "/m/leads/7/" in mailoutbox[0].body
    row = AlertDelivery.objects.get()
    assert (row.channel, row.status, row.attempts, row.last_error) == ("email", "sent", 1, "")
    assert row.sent_at is not None


@pytest.mark.django_db(transaction=True)
def test_two_senders_at_once_send_each_alert_once(world, mailoutbox, monkeypatch):
    # Given 45 email alerts waiting (more than two batches); no broker: the test is the worker
    monkeypatch.setattr(sales_tasks.alert_deliveries_send, "delay", lambda: None)
    _choose(world.sales, sla_warning=["email"])
    alerts.alerts_send(
        [
            alerts.AlertIn(user_id=world.sales.pk, kind="sla_warning", title=f"Warning {n}")
            for n in range(45)
        ]
    )
    results: list[int] = []

    def sender() -> None:
        try:
            results.append(alert_delivery.alert_deliveries_send())
        finally:
            connection.close()

    # When two workers run the sender at the same moment
    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then every alert went out exactly once
    assert sum(results) == 45
    assert sorted(m.subject for m in mailoutbox) == sorted(f"Warning {n}" for n in range(45))
    assert set(AlertDelivery.objects.values_list("status", "attempts")) == {("sent", 1)}


@pytest.mark.django_db
def test_no_email_address_gives_up_at_once_with_the_reason(world, mailoutbox):
    # Given a person without an email address who chose email
    world.sales.email = ""
    world.sales.language = "en"  # last_error is written in the person's language
    world.sales.save(update_fields=["email", "language"])
    _choose(world.sales, sla_breached=["email"])
    alerts.alert(alerts.AlertIn(user_id=world.sales.pk, kind="sla_breached", title="SLA ran out"))
    # When the sender runs
    assert alert_delivery.alert_deliveries_send() == 0
    # Then nothing is sent, the row failed for good and says why
    row = AlertDelivery.objects.get()
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error == "This person has no email address; add one to their account."
    assert mailoutbox == []


@pytest.mark.django_db
def test_wecom_posts_markdown_to_the_robot_once(world, robot):
    # Given an SDR who gets SLA warnings in their WeCom group
    _choose(world.sdr, wecom_url=robot.url, sla_warning=["wecom"])
    alerts.alert(
        alerts.AlertIn(
            user_id=world.sdr.pk,
            kind="sla_warning",
            title="SLA about to run out: 王磊",
            body="first touch\n10 min left",
            url="/sdr/leads/3/",
        )
    )
    # When the sender runs twice
    assert alert_delivery.alert_deliveries_send() == 1
    assert alert_delivery.alert_deliveries_send() == 0
    # Then the robot got one markdown message
    assert len(robot.posts) == 1
    post = robot.posts[0]
    assert post["path"] == "/cgi-bin/webhook/send?key=test-key"
    assert post["content_type"] == "application/json; charset=utf-8"
    assert post["json"] == {
        "msgtype": "markdown",
        "markdown": {
            "content": (
                "**SLA about to run out: 王磊**\n> first touch\n> 10 min left\n"
                "[Open in LeadLoop](/sdr/leads/3/)"
            )
        },
    }
    row = AlertDelivery.objects.get()
    assert (row.channel, row.status, row.attempts) == ("wecom", "sent", 1)


def test_markdown_typed_by_a_contact_stays_text_in_the_robot_message():
    # A name from a public form must not become a link or a heading in the sales group
    row = AlertDelivery(title="[点我](http://evil.cn) 王磊", body="# <font>*x*</font>", url="/m/1/")
    assert alert_delivery.wecom_markdown(row, "en") == (
        "**［点我］（http://evil.cn） 王磊**\n"
        "> ＃ ＜font＞＊x＊＜/font＞\n"
        "[Open in LeadLoop](/m/1/)"
    )


@pytest.mark.django_db
def test_a_robot_error_is_retried_after_1_5_30_minutes_then_given_up(world, robot):
    # Given a robot that answers errcode 93000 (invalid webhook)
    robot.answer = b'{"errcode":93000,"errmsg":"invalid webhook url"}'
    _choose(world.sdr, wecom_url=robot.url, lead_recycled=["wecom"])
    t0 = timezone.now()
    alerts.alert(alerts.AlertIn(user_id=world.sdr.pk, kind="lead_recycled", title="Recycled"))
    AlertDelivery.objects.update(next_attempt_at=t0)
    row = AlertDelivery.objects.get

    # When the sender runs: attempt 1 fails, the next waits 1 minute
    assert alert_delivery.alert_deliveries_send(now=t0) == 0
    r = row()
    assert (r.status, r.attempts, r.next_attempt_at) == ("pending", 1, t0 + dt.timedelta(minutes=1))
    assert r.last_error == "WeCom: errcode 93000: invalid webhook url"
    # Not due yet: nothing is posted
    alert_delivery.alert_deliveries_send(now=t0 + dt.timedelta(seconds=59))
    assert len(robot.posts) == 1
    # Attempt 2 after 1 minute, then 5 minutes
    alert_delivery.alert_deliveries_send(now=t0 + dt.timedelta(minutes=1))
    r = row()
    assert (r.attempts, r.next_attempt_at) == (2, t0 + dt.timedelta(minutes=6))
    # Attempt 3, then 30 minutes
    alert_delivery.alert_deliveries_send(now=t0 + dt.timedelta(minutes=6))
    r = row()
    assert (r.attempts, r.next_attempt_at) == (3, t0 + dt.timedelta(minutes=36))
    # Attempt 4 fails: given up
    alert_delivery.alert_deliveries_send(now=t0 + dt.timedelta(minutes=36))
    r = row()
    assert (r.status, r.attempts) == ("failed", 4)
    # Then nothing more, however late
    alert_delivery.alert_deliveries_send(now=t0 + dt.timedelta(days=1))
    assert len(robot.posts) == 4
    assert row().status == "failed"


@pytest.mark.django_db
def test_a_robot_that_recovers_gets_the_message_on_the_retry(world, robot):
    robot.answer = b"<html>502 Bad Gateway</html>"
    User.objects.filter(pk=world.sdr.pk).update(language="en")
    _choose(world.sdr, wecom_url=robot.url, lead_assigned=["wecom"])
    t0 = timezone.now()
    alerts.alert(alerts.AlertIn(user_id=world.sdr.pk, kind="lead_assigned", title="New lead"))
    AlertDelivery.objects.update(next_attempt_at=t0)
    assert alert_delivery.alert_deliveries_send(now=t0) == 0
    assert AlertDelivery.objects.get().last_error.startswith("WeCom: the answer is not JSON")
    robot.answer = b'{"errcode":0,"errmsg":"ok"}'
    assert alert_delivery.alert_deliveries_send(now=t0 + dt.timedelta(minutes=1)) == 1
    r = AlertDelivery.objects.get()
    assert (r.status, r.attempts, r.last_error) == ("sent", 2, "")
    assert len(robot.posts) == 2


@pytest.mark.django_db
def test_a_robot_that_hangs_times_out_and_is_retried(world, robot, monkeypatch):
    monkeypatch.setattr(alert_delivery, "WECOM_TIMEOUT_SECONDS", 0.2)
    robot.delay = 0.6
    _choose(world.sdr, wecom_url=robot.url, lead_assigned=["wecom"])
    alerts.alert(alerts.AlertIn(user_id=world.sdr.pk, kind="lead_assigned", title="New lead"))
    assert alert_delivery.alert_deliveries_send() == 0
    r = AlertDelivery.objects.get()
    assert (r.status, r.attempts) == ("pending", 1)
    assert "timed out" in r.last_error


@pytest.mark.django_db
def test_a_robot_url_outside_wecom_is_never_called(world, robot, settings):
    # Given a URL that was stored some other way (the admin) and points elsewhere
    settings.SALES_WECOM_WEBHOOK_PREFIXES = ("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?",)
    User.objects.filter(pk=world.sdr.pk).update(language="en")
    _choose(world.sdr, wecom_url=robot.url, lead_assigned=["wecom"])
    alerts.alert(alerts.AlertIn(user_id=world.sdr.pk, kind="lead_assigned", title="New lead"))
    assert alert_delivery.alert_deliveries_send() == 0
    r = AlertDelivery.objects.get()
    assert r.status == "failed"
    assert r.last_error.startswith("The WeCom webhook URL is not allowed")
    assert robot.posts == []


# --- "A known contact of mine is active now" ---------------------------------------------------


def _act(now, world, contact, type_, *, minutes_ago=1, unit=None, **properties):
    return Activity.objects.create(
        unit=unit or world.a,
        contact=contact,
        type=type_,
        occurred_at=now - dt.timedelta(minutes=minutes_ago),
        properties=properties,
    )


def _active(user=None):
    qs = Notification.objects.filter(kind="contact_active")
    if user is not None:
        qs = qs.filter(user=user)
    return qs


@pytest.fixture
def leads_worked(world):
    """A: an MQL handed to world.sales (SDR world.sdr). B: a MIL only an SDR works.
    C: a contact with no lead."""
    a = _contact(world, "王磊", "华东生物")
    lead_a = lead_services.lead_open(
        contact=a, unit=world.a, source="manual", stage="mql", sdr=world.sdr, actor=world.admin
    ).lead
    lead_services.lead_handoff(lead=lead_a, actor=world.admin, owner=world.sales)
    b = _contact(world, "李娜", "")
    lead_b = lead_services.lead_open(
        contact=b, unit=world.a, source="manual", sdr=world.sdr, actor=world.admin
    ).lead
    c = _contact(world, "赵强", "")
    Notification.objects.all().delete()
    # Alerts are written in each recipient's language; these read English.
    User.objects.update(language="en")
    # Sweeps run at half past an hour: a burst never straddles two hours by chance.
    now = timezone.now().replace(minute=30, second=0, microsecond=0)
    return {
        "now": now,
        "a": a,
        "b": b,
        "c": c,
        "lead_a": Lead.objects.get(pk=lead_a.pk),
        "lead_b": lead_b,
    }


@pytest.mark.django_db
def test_the_sweep_alerts_exactly_the_people_whose_contacts_are_hot(
    world, leads_worked, django_assert_num_queries
):
    a, b, c = leads_worked["a"], leads_worked["b"], leads_worked["c"]
    lead_a, lead_b, now = leads_worked["lead_a"], leads_worked["lead_b"], leads_worked["now"]
    # Given: A opened the salesperson's share link twice and a marketer's link once,
    _act(now, world, a, "share_open", minutes_ago=3, sharer=world.sales.pk, title="产品白皮书")
    _act(now, world, a, "share_open", minutes_ago=2, sharer=world.sales.pk, title="产品白皮书")
    _act(now, world, a, "share_open", minutes_ago=2, sharer=world.marketer.pk, title="活动海报")
    # viewed pricing three times, a blog post once, and pricing in unit B (not this lead's unit);
    for minutes in (4, 3, 1):
        _act(now, world, a, "page_view", minutes_ago=minutes, url="https://acme.cn/Pricing?x=1")
    _act(now, world, a, "page_view", url="https://acme.cn/blog/1")
    _act(now, world, a, "page_view", url="https://acme.cn/pricing", unit=world.b)
    # B viewed the 价格 page (percent-encoded) and submitted a form, and was active long ago;
    _act(now, world, b, "page_view", url="https://acme.cn/%E4%BB%B7%E6%A0%BC")
    _act(now, world, b, "form_submit", title="预约演示")
    _act(now, world, b, "form_submit", minutes_ago=25, title="旧表单")
    # C (no lead) viewed pricing; the SDR wants contact alerts in the app and by email
    _act(now, world, c, "page_view", url="https://acme.cn/pricing")
    _choose(world.sdr, contact_active=["in_app", "email"])

    # When the sweep runs (one grouped query, then alerts_send's own)
    # the grouped query; alerts_send: savepoint, settings, notices, deliveries, release
    with django_assert_num_queries(6):
        result = activity_alerts.contact_activity_sweep(now=now)

    # Then the salesperson hears about A's pricing (A's opens of their share link are in
    # their bell already: content rings it; this sweep sends those by email/WeCom only,
    # and they chose neither), the SDR about B's
    assert result == activity_alerts.SweepResult(found=5, sent=4)
    hour = now.replace(minute=0).strftime("%Y%m%d%H")

    def at(minutes_ago):
        return timezone.localtime(now - dt.timedelta(minutes=minutes_ago)).strftime("%H:%M")

    assert sorted(_active().values_list("user__username", "title", "body", "dedupe_key")) == [
        (
            "a-sales",
            "王磊 (华东生物) is looking at pricing",
            f"3 times · last at {at(1)}",
            f"active:{lead_a.pk}:pricing:{world.sales.pk}:{hour}",
        ),
        (
            "a-sdr",
            "李娜 is looking at pricing",
            f"last at {at(1)}",
            f"active:{lead_b.pk}:pricing:{world.sdr.pk}:{hour}",
        ),
        (
            "a-sdr",
            "李娜 submitted a form",
            f"“预约演示” · last at {at(1)}",
            f"active:{lead_b.pk}:form:{world.sdr.pk}:{hour}",
        ),
    ]
    assert set(_active().values_list("unit_id", flat=True)) == {world.a.pk}
    # and the SDR's two also wait as emails
    assert list(
        AlertDelivery.objects.filter(kind="contact_active").values_list("user__username", "channel")
    ) == [("a-sdr", "email"), ("a-sdr", "email")]

    # When the sweep runs again (same activities in the window) and once more with a new
    # pricing view of A in the same hour: a burst is one alert
    again = activity_alerts.contact_activity_sweep(now=now)
    _act(now, world, a, "page_view", minutes_ago=0, url="https://acme.cn/pricing")
    third = activity_alerts.contact_activity_sweep(now=now)
    # Then nothing new is sent
    assert (again.sent, third.sent) == (0, 0)
    assert _active().count() == 3
    assert AlertDelivery.objects.filter(kind="contact_active").count() == 2


@pytest.mark.django_db
def test_the_first_sweep_looks_back_ten_minutes_only(world, leads_worked):
    a, now = leads_worked["a"], leads_worked["now"]
    # Given no sweep ran before (no high-water mark) and views 11 and 9 minutes ago
    _act(now, world, a, "page_view", minutes_ago=11, url="/pricing")
    _act(now, world, a, "page_view", minutes_ago=9, url="/pricing")
    # When the sweep runs, then only the 9-minute-old one counts
    assert activity_alerts.contact_activity_sweep(now=now) == activity_alerts.SweepResult(1, 1)
    assert "times" not in _active().get().body
    # and the next sweep looks back only OVERLAP (5 min) before the mark: a view from 7
    # minutes ago stored only now is not "active now"
    _act(now, world, a, "page_view", minutes_ago=7, url="/pricing")
    assert activity_alerts.contact_activity_sweep(now=now).found == 0


@pytest.mark.django_db
def test_a_closed_lead_or_a_deactivated_owner_gets_no_alert(world, leads_worked):
    lead_a, a, now = leads_worked["lead_a"], leads_worked["a"], leads_worked["now"]
    world.sales.is_active = False
    world.sales.save(update_fields=["is_active"])
    # With the owner gone, pricing goes to the SDR; a share of the owner's goes to nobody
    _act(now, world, a, "page_view", url="/pricing")
    _act(now, world, a, "share_open", sharer=world.sales.pk)
    activity_alerts.contact_activity_sweep(now=now)
    assert [(n.user_id, n.title) for n in _active()] == [
        (world.sdr.pk, "王磊 (华东生物) is looking at pricing")
    ]
    Lead.objects.filter(pk=lead_a.pk).update(is_open=False)
    _act(now, world, a, "form_submit")
    assert activity_alerts.contact_activity_sweep(now=now).found == 0


# --- Settings pages ---------------------------------------------------------------------------


def _client(user) -> Client:
    client = Client(**EN)
    client.force_login(user)
    return client


def _form(url="", **ticks: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {"wecom_webhook_url": url}
    for kind, channels in ticks.items():
        for channel in channels:
            data[f"{kind}__{channel}"] = "on"
    return data


WECOM = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx"


@pytest.mark.django_db
def test_the_sdr_page_shows_my_choices(world, django_assert_num_queries):
    _choose(world.sdr, sla_warning=["in_app", "email"])
    client = _client(world.sdr)
    client.get("/sdr/alerts/")  # warm the session and permission caches
    with django_assert_num_queries(7):
        page = client.get("/sdr/alerts/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "An SLA is about to run out" in html
    assert 'name="sla_warning__email" id="id_sla_warning__email" checked' in html
    assert 'name="sla_breached__email" id="id_sla_breached__email" >' in html
    assert f"Email goes to {world.sdr.email}." in html


@pytest.mark.django_db
def test_saving_writes_my_settings_only(world):
    # Given the salesperson's own settings
    _choose(world.sales, lead_assigned=["wecom"], wecom_url=WECOM)
    before = AlertSettings.objects.get(user=world.sales).channels
    client = _client(world.sdr)
    # When the SDR saves, with another person's id smuggled into the form
    answer = client.post(
        "/sdr/alerts/",
        {
            **_form(WECOM, lead_assigned=["in_app", "email"], sla_breached=["wecom"]),
            "user": world.sales.pk,
            "user_id": world.sales.pk,
        },
    )
    # Then the SDR's row is written, the salesperson's is untouched
    assert answer.status_code == 302
    assert answer["Location"] == "/sdr/alerts/"
    mine = AlertSettings.objects.get(user=world.sdr)
    assert mine.channels == {
        "lead_assigned": ["in_app", "email"],
        "sla_warning": [],
        "sla_breached": ["wecom"],
        "contact_active": [],
        "lead_recycled": [],
    }
    assert mine.wecom_webhook_url == WECOM
    assert AlertSettings.objects.get(user=world.sales).channels == before
    log = AuditLog.objects.get(action="alert_settings.change")
    assert (log.actor, log.object_id) == (world.sdr, str(mine.pk))
    assert WECOM not in json.dumps(log.after)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=1", "Use the WeCom group robot"),
        ("https://evil.example.com/cgi-bin/webhook/send?key=1", "Use the WeCom group robot"),
        (
            "https://qyapi.weixin.qq.com.evil.cn/cgi-bin/webhook/send?key=1",
            "Use the WeCom group robot",
        ),
        (
            "https://user:pw@qyapi.weixin.qq.com/cgi-bin/webhook/send?key=1",
            "without spaces or passwords",
        ),
        ("", "WeCom is ticked but there is no robot webhook URL"),
    ],
)
def test_a_bad_webhook_url_is_refused_and_nothing_changes(world, url, message):
    _choose(world.sales, lead_assigned=["in_app"])
    client = _client(world.sales)
    answer = client.post("/m/alerts/", _form(url, lead_assigned=["wecom"]))
    assert answer.status_code == 400
    assert message in answer.content.decode()
    row = AlertSettings.objects.get(user=world.sales)
    assert (row.channels["lead_assigned"], row.wecom_webhook_url) == (["in_app"], "")
    assert not AuditLog.objects.filter(action="alert_settings.change").exists()


@pytest.mark.django_db
def test_email_without_an_address_is_refused(world):
    world.sales.email = ""
    world.sales.save(update_fields=["email"])
    answer = _client(world.sales).post("/m/alerts/", _form(lead_assigned=["email"]))
    assert answer.status_code == 400
    assert "Your account has no email address, so email alerts cannot reach you." in (
        answer.content.decode()
    )
    assert not AlertSettings.objects.filter(user=world.sales).exists()


@pytest.mark.django_db
def test_the_pages_open_only_on_their_surface(world):
    assert _client(world.marketer).get("/sdr/alerts/").status_code == 403
    assert _client(world.sales).get("/sdr/alerts/").status_code == 403
    assert _client(world.sales).get("/m/alerts/").status_code == 200
    assert Client().get("/m/alerts/").status_code == 302


@pytest.mark.django_db
def test_the_test_button_alerts_me_on_my_channels(world):
    _choose(world.sales, lead_assigned=["email"])
    client = _client(world.sales)
    answer = client.post("/m/alerts/", {"test": "1"}, follow=True)
    assert "Test alert sent: In the app (bell), Email." in answer.content.decode()
    assert list(Notification.objects.filter(user=world.sales).values_list("kind", flat=True)) == [
        "alert_test"
    ]
    assert list(AlertDelivery.objects.values_list("user_id", "channel", "kind")) == [
        (world.sales.pk, "email", "alert_test")
    ]
    # A second tap right away sends nothing
    again = client.post("/m/alerts/", {"test": "1"}, follow=True)
    assert "A test alert just went out" in again.content.decode()
    assert AlertDelivery.objects.count() == 1


@pytest.mark.django_db
def test_the_phone_page_reads_in_chinese(world):
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(world.sales)
    page = client.get("/m/alerts/")
    assert page.status_code == 200
    assert 'lang="zh-hans"' in page.content.decode()


# --- The core services' alerts arrive per each person's choice ---------------------------------


@pytest.mark.django_db
def test_a_lead_handed_to_a_salesperson_who_chose_email_only_arrives_by_email(world, mailoutbox):
    # Given a salesperson who wants new leads by email only
    _choose(world.sales, lead_assigned=["email"])
    lead = lead_services.lead_open(
        contact=_contact(world), unit=world.a, source="manual", stage="mql", actor=world.sdr
    ).lead
    # When the SDR hands the lead to them and the delivery task runs
    lead_services.lead_handoff(lead=lead, actor=world.sdr, owner=world.sales)
    alert_delivery.alert_deliveries_send()
    # Then no bell notice, one email
    assert not Notification.objects.filter(user=world.sales).exists()
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == [world.sales.email]
    assert mailoutbox[0].subject == "New MQL to accept: 王磊"


@pytest.mark.django_db
def test_sla_warning_breach_and_recycle_follow_the_choices(world, mailoutbox, robot):
    # Given a salesperson: warnings in the app, breaches by email, recycles by WeCom
    _choose(
        world.sales,
        wecom_url=robot.url,
        sla_warning=["in_app"],
        sla_breached=["email"],
        lead_recycled=["wecom"],
        lead_assigned=[],
    )
    start = timezone.now() - dt.timedelta(hours=60)
    lead = lead_services.lead_open(
        contact=_contact(world), unit=world.a, source="manual", stage="mql", now=start
    ).lead
    lead_services.lead_handoff(lead=lead, actor=world.sdr, owner=world.sales, now=start)
    lead_services.lead_accept(lead=lead, actor=world.sales, now=start)
    lead.refresh_from_db()
    assert lead.sla_clock == "follow_up"
    assert lead.sla_warn_at is not None
    # When the sweep runs as the 48 h follow-up clock nears its end, then after it
    sla.sla_sweep(now=lead.sla_warn_at + dt.timedelta(seconds=1))
    sla.sla_sweep(now=lead.sla_due_at + dt.timedelta(minutes=1))
    alert_delivery.alert_deliveries_send()
    # Then the warning is in the bell only and the recycle WeCom only; a miss that recycles
    # the lead is told once, as the recycle (no separate breach email)
    assert list(Notification.objects.filter(user=world.sales).values_list("kind", flat=True)) == [
        "sla_warning"
    ]
    assert sorted(
        AlertDelivery.objects.filter(user=world.sales).values_list("kind", "channel", "status")
    ) == [("lead_recycled", "wecom", "sent")]
    assert mailoutbox == []
    assert [p["json"]["markdown"]["content"].split("\n")[0] for p in robot.posts] == [
        "**Lead recycled: 王磊**"
    ]
