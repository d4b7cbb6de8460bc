"""Public forms end to end: rendering, submitting over the real endpoint, double submits,
spam, consent, bad input, rate limits, embedding, progressive profiling, and the
acceptance points of issue 5 (anonymous browsing joins the contact; a returning visitor is
asked only what we do not know; nothing is lost while the worker is down).

The builders at the top are reused by the other form tests."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any
from urllib.parse import unquote

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from apps.contacts.collector.services import anonymous_link, collector_batches_sweep
from apps.contacts.identity_keys import make_key
from apps.contacts.models import (
    Activity,
    Channel,
    ConsentEvent,
    Contact,
    RawBatch,
    Site,
)
from apps.contacts.selectors.timeline import contact_timeline
from apps.contacts.services import config
from apps.contacts.services.resolution import contact_resolve
from apps.content.gating import asset_grant_check
from apps.content.models import Asset, Form, FormSubmission, LandingPage, ShareLink
from apps.content.public import forms as public
from apps.content.services.forms import form_archive, form_create
from apps.content.services.submissions import submissions_process
from apps.content.tasks import forms as tasks
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15"
CONSENT = "我同意华澜科技通过短信和邮件向我发送产品资讯。"
VERSION = "2026-03"
FIELDS = [
    {"key": "name", "required": True},
    {"key": "phone", "required": True},
    {"key": "email"},
    {"key": "company_name", "required": True},
]


# --- Builders ---------------------------------------------------------------------------------


def customer_type(unit, options=(("ka", "大客户"), ("mid", "中型客户"), ("small", "小客户"))):
    return config.custom_field_create(
        unit=unit,
        key="customer_type",
        label="客户类型",
        field_type="choice",
        options=[{"value": v, "label": label} for v, label in options],
        acting_user=SYSTEM,
    )


def make_form(unit, fields=None, **settings: Any) -> Form:
    settings.setdefault("consent_text", CONSENT)
    settings.setdefault("consent_version", VERSION)
    settings.setdefault("title", "下载白皮书")
    return form_create(
        unit=unit,
        name=settings.pop("name", "白皮书下载"),
        fields=fields if fields is not None else FIELDS,
        acting_user=SYSTEM,
        **settings,
    )


def visitor(aid: str | None = None, **headers: str) -> Client:
    client = Client(HTTP_USER_AGENT=BROWSER, HTTP_ACCEPT_LANGUAGE="en", **headers)
    if aid:
        client.cookies["ll_aid"] = aid
    return client


def new_aid() -> str:
    return str(uuid.uuid4())


def token_of(html: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', html)
    assert match, "no token in the page"
    return match.group(1)


def hidden_of(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', html))


def shown_fields(html: str) -> list[str]:
    """The field keys a rendered form asks for, in order."""
    return re.findall(r'data-field="([^"]+)"', html)


ANSWERS = {
    "name": "李雷",
    "phone": "138 0013 8000",
    "email": "Li.Lei@Example.cn",
    "company_name": "华澜生物",
}


def post_answers(
    client: Client,
    form: Form,
    answers: dict[str, Any],
    *,
    consent: bool = True,
    query: str = "",
    page: str | None = None,
    **extra: str,
):
    """GET the form (as a browser would), then POST what the page holds plus ``answers``."""
    html = page if page is not None else client.get(f"/f/{form.key}/{query}").content.decode()
    data: dict[str, Any] = {**hidden_of(html), "token": token_of(html), **extra}
    for key, value in answers.items():
        data[f"f-{key}"] = value
    if consent:
        data["consent"] = "1"
    return client.post(f"/f/{form.key}/{query}", data)


def submissions() -> list[FormSubmission]:
    return list(FormSubmission.objects.order_by("id"))


# --- Showing the form ------------------------------------------------------------------------


def test_the_form_page_shows_its_fields_consent_and_a_signed_token(world):
    form = make_form(world.a)

    response = visitor().get(f"/f/{form.key}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert shown_fields(html) == ["name", "phone", "email", "company_name"]
    assert CONSENT in html
    assert 'name="website"' in html  # the honeypot
    assert "no-cache" in response["Cache-Control"]
    assert "X-Frame-Options" not in response  # made to be embedded
    assert re.fullmatch(r"[0-9a-f-]{36}", response.cookies["ll_aid"].value)
    payload = signing.loads(token_of(html), salt=public.TOKEN_SALT)
    assert payload["f"] == form.key
    assert payload["s"] == ["name", "phone", "email", "company_name"]
    assert payload["a"] == response.cookies["ll_aid"].value


def test_a_view_is_recorded_as_a_page_view_of_the_form(world):
    form = make_form(world.a)
    aid = new_aid()

    visitor(aid, HTTP_REFERER="https://www.baidu.com/s?wd=x").get(
        f"/f/{form.key}/?utm_source=baidu&utm_campaign=spring"
    )
    collector_batches_sweep()

    view = Activity.objects.get()
    assert (view.type, view.object_type, view.object_id) == ("page_view", "form", str(form.pk))
    assert view.anonymous_id == aid
    assert view.unit_id == world.a.pk
    assert view.properties["utm"] == {"source": "baidu", "campaign": "spring"}
    assert view.properties["referrer"] == "https://www.baidu.com/s?wd=x"


def test_an_archived_or_unknown_form_says_it_is_not_available(world):
    form = make_form(world.a)
    form_archive(form=form, acting_user=SYSTEM)

    archived = visitor().get(f"/f/{form.key}/")
    unknown = visitor().post("/f/f_nothing-here/", {"token": "x"})

    assert archived.status_code == 404
    assert unknown.status_code == 404
    assert "This form is no longer available" in archived.content.decode()
    assert submissions() == []


def test_hidden_utm_fields_come_from_the_page_address(world):
    form = make_form(world.a)

    html = (
        visitor()
        .get(f"/f/{form.key}/?utm_source=wechat-mp&utm_medium=social&utm_campaign=spring")
        .content.decode()
    )

    hidden = hidden_of(html)
    assert hidden["utm_source"] == "wechat-mp"
    assert hidden["utm_medium"] == "social"
    assert hidden["utm_campaign"] == "spring"
    assert hidden["page_url"].endswith("utm_campaign=spring")


def test_embedded_the_page_takes_utm_from_the_parent_page_and_has_no_chrome(world):
    form = make_form(world.a)

    html = (
        visitor(HTTP_REFERER="https://www.hualan.example.cn/p/spring/?utm_source=douyin")
        .get(f"/f/{form.key}/?embed=1")
        .content.decode()
    )

    assert 'class="public ll-form-page embed"' in html
    assert "<h1>" not in html
    assert "content-forms-public.js" in html  # posts its height to the parent
    hidden = hidden_of(html)
    assert hidden["page_url"] == "https://www.hualan.example.cn/p/spring/?utm_source=douyin"
    assert hidden["utm_source"] == "douyin"


def test_embed_js_builds_an_iframe_to_the_form(world):
    form = make_form(world.a, title='白皮书 "2026" </script>')

    response = visitor().get(f"/f/{form.key}/embed.js")
    missing = visitor().get("/f/f_nothing-here/embed.js")

    script = response.content.decode()
    url = re.search(r'new URL\("([^"]*)"\)', script)
    title = re.search(r'frame\.title = "([^"]*)";', script)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert url is not None
    assert json.loads(f'"{url.group(1)}"') == f"http://testserver/f/{form.key}/"
    assert title is not None
    assert json.loads(f'"{title.group(1)}"') == '白皮书 "2026" </script>'
    assert "</script>" not in script  # the title cannot end the script it is pasted in
    assert 'src.searchParams.set("embed", "1")' in script
    assert missing.status_code == 404


# --- Submitting ------------------------------------------------------------------------------


def test_a_submission_is_stored_clean_and_answered_with_thanks(world):
    form = make_form(world.a)
    client = visitor(new_aid())

    response = post_answers(client, form, ANSWERS, query="?utm_source=baidu&utm_campaign=q3")

    (stored,) = submissions()
    assert response.status_code == 200
    assert "Thank you!" in response.content.decode()
    assert stored.status == "pending"
    assert stored.data == {
        "name": "李雷",
        "phone": "+8613800138000",
        "email": "li.lei@example.cn",
        "company_name": "华澜生物",
    }
    assert stored.consent is True
    assert stored.consent_version == VERSION
    assert stored.utm == {"source": "baidu", "campaign": "q3"}
    assert stored.anonymous_id == client.cookies["ll_aid"].value
    assert stored.ip == "127.0.0.1"
    assert stored.user_agent == BROWSER


def test_processing_is_queued_once_the_submission_commits(
    world, django_capture_on_commit_callbacks
):
    form = make_form(world.a)
    client = visitor(new_aid())
    html = client.get(f"/f/{form.key}/").content.decode()
    published: list[Any] = []

    with django_capture_on_commit_callbacks() as callbacks:
        post_answers(client, form, ANSWERS, page=html)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            tasks.form_submissions_process,
            "apply_async",
            lambda **kwargs: published.append(kwargs),
        )
        for callback in callbacks:
            callback()
        assert tasks.dispatch_drain()

    (stored,) = submissions()
    assert published == [{"args": [[stored.pk]], "retry": False}]


def test_a_second_submit_of_the_same_page_stores_nothing(world):
    form = make_form(world.a)
    client = visitor(new_aid())
    html = client.get(f"/f/{form.key}/").content.decode()

    first = post_answers(client, form, ANSWERS, page=html)
    second = post_answers(client, form, {**ANSWERS, "name": "韩梅梅"}, page=html)

    (stored,) = submissions()
    assert first.status_code == second.status_code == 200
    assert "Thank you!" in second.content.decode()
    assert stored.data["name"] == "李雷"


def test_a_filled_honeypot_is_kept_as_spam_and_thanked_like_anyone(world):
    form = make_form(world.a)

    response = post_answers(visitor(new_aid()), form, ANSWERS, website="http://spam.example")
    submissions_process([s.pk for s in submissions()])

    (stored,) = submissions()
    assert response.status_code == 200
    assert "Thank you!" in response.content.decode()
    assert (stored.status, stored.reason) == ("spam", "honeypot")
    assert stored.contact_id is None
    assert Contact.objects.count() == 0


def test_missing_consent_is_a_400_next_to_the_checkbox_and_stores_nothing(world):
    form = make_form(world.a)

    response = post_answers(visitor(new_aid()), form, ANSWERS, consent=False)

    html = response.content.decode()
    assert response.status_code == 400
    assert re.search(
        r'id="ll-consent".*?<p class="error" id="ll-consent-error">'
        r"Please tick the box to agree, so we may contact you.</p>",
        html,
        re.S,
    )
    assert 'value="李雷"' in html  # what was typed is kept
    assert submissions() == []


def test_a_bad_phone_is_a_400_next_to_the_field_and_stores_nothing(world):
    form = make_form(world.a)

    response = post_answers(visitor(new_aid()), form, {**ANSWERS, "phone": "12345"})

    html = response.content.decode()
    assert response.status_code == 400
    assert (
        '<p class="error" id="f-phone-error">Enter a valid phone number, e.g. 138 0013 8000, '
        "or with the country code, e.g. +852 9123 4567.</p>"
    ) in html
    assert 'aria-invalid="true" aria-describedby="f-phone-error"' in html
    assert submissions() == []


def test_a_bad_email_and_a_missing_required_field_are_each_named(world):
    form = make_form(world.a)

    response = post_answers(
        visitor(new_aid()), form, {**ANSWERS, "email": "li.lei@", "company_name": " "}
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert (
        '<p class="error" id="f-email-error">Enter a valid email address, '
        "e.g. li.lei@example.cn.</p>"
    ) in html
    assert '<p class="error" id="f-company_name-error">This field is required.</p>' in html
    assert submissions() == []


def test_a_forged_or_foreign_token_is_refused_and_the_form_shown_again(world):
    form = make_form(world.a)
    other = make_form(world.a, name="另一个表单")
    client = visitor(new_aid())
    other_page = client.get(f"/f/{other.key}/").content.decode()

    foreign = client.post(
        f"/f/{form.key}/",
        {"token": token_of(other_page), **{f"f-{k}": v for k, v in ANSWERS.items()}},
    )
    forged = client.post(f"/f/{form.key}/", {"token": "made-up", "consent": "1"})

    assert foreign.status_code == forged.status_code == 400
    assert "This page was open for a long time" in foreign.content.decode()
    assert 'value="李雷"' in foreign.content.decode()
    assert submissions() == []


def test_too_many_posts_from_one_address_get_a_clear_429(world, monkeypatch):
    monkeypatch.setattr(public, "RATE_LIMIT", 2)
    form = make_form(world.a)
    client = visitor(new_aid())

    codes = [post_answers(client, form, ANSWERS).status_code for _ in range(3)]
    limited = post_answers(client, form, ANSWERS)

    assert codes == [200, 200, 429]
    assert limited.status_code == 429
    assert limited["Retry-After"] == "600"
    assert "too many submissions from your network" in limited.content.decode()
    assert len(submissions()) == 2


def test_the_redirect_after_submit_goes_to_the_marketers_page(world):
    form = make_form(world.a, redirect_url="https://www.hualan.example.cn/thanks")

    response = post_answers(visitor(new_aid()), form, ANSWERS)
    embedded = post_answers(visitor(new_aid()), form, ANSWERS, query="?embed=1")

    assert response.status_code == 303
    assert response["Location"] == "https://www.hualan.example.cn/thanks"
    # In an iframe the page itself moves the parent (or asks embed.js to).
    assert embedded.status_code == 200
    assert 'data-redirect="https://www.hualan.example.cn/thanks"' in embedded.content.decode()


def test_a_gated_asset_is_handed_over_with_a_grant_for_this_submission(world):
    asset = Asset.objects.create(
        unit=world.a, title="单细胞白皮书", kind="whitepaper", url="https://f.example.cn/a.pdf"
    )
    form = make_form(world.a, asset=asset)

    response = post_answers(visitor(new_aid()), form, ANSWERS)

    (stored,) = submissions()
    link = re.search(r'href="/a/([^/]+)/\?g=([^"]+)"', response.content.decode())
    assert link is not None
    assert link.group(1) == asset.key
    assert asset_grant_check(unquote(link.group(2)), asset.key) == stored.pk
    assert "Download “单细胞白皮书”" in response.content.decode()


def test_the_asset_that_sent_the_visitor_to_its_gate_form_is_the_one_delivered(world):
    # given a gate form that delivers nothing itself, gating two assets, and an asset of
    # another form
    form = make_form(world.a)
    gated = [
        Asset.objects.create(
            unit=world.a,
            title=title,
            kind="whitepaper",
            url="https://f.example.cn/x.pdf",
            is_gated=True,
            gate_form=form,
        )
        for title in ("质谱白皮书", "测序案例集")
    ]
    stranger = Asset.objects.create(
        unit=world.a, title="别的资料", kind="whitepaper", url="https://f.example.cn/y.pdf"
    )

    # when visitors arrive from the second asset's gate, and from a made-up one
    chosen = post_answers(visitor(new_aid()), form, ANSWERS, query=f"?asset={gated[1].key}")
    foreign = post_answers(visitor(new_aid()), form, ANSWERS, query=f"?asset={stranger.key}")

    # then the second asset is handed over with a grant; the stranger is not
    link = re.search(r'href="/a/([^/]+)/\?g=([^"]+)"', chosen.content.decode())
    assert link is not None
    assert link.group(1) == gated[1].key
    first = submissions()[0]
    assert asset_grant_check(unquote(link.group(2)), gated[1].key) == first.pk
    assert "/a/" not in foreign.content.decode()


def test_with_an_asset_waiting_the_redirect_becomes_a_link(world):
    asset = Asset.objects.create(
        unit=world.a, title="单细胞白皮书", kind="whitepaper", url="https://f.example.cn/a.pdf"
    )
    form = make_form(world.a, asset=asset, redirect_url="https://www.hualan.example.cn/next")

    response = post_answers(visitor(new_aid()), form, ANSWERS)

    html = response.content.decode()
    assert response.status_code == 200
    assert "data-redirect" not in html
    assert 'href="https://www.hualan.example.cn/next" target="_top"' in html
    assert f'href="/a/{asset.key}/?g=' in html


def test_embedded_on_another_site_the_sites_own_visitor_id_is_used(world):
    form = make_form(world.a, FIELDS, progressive=True)
    aid = new_aid()
    known_visitor(world.a, aid)
    client = visitor()  # our cookie is third-party there: none is sent

    page = client.get(f"/f/{form.key}/?embed=1&aid={aid}&u=https://www.customer.cn/trial")
    post_answers(
        client, form, {"email": "han@example.cn"}, query="?embed=1", page=page.content.decode()
    )

    (stored,) = submissions()
    assert shown_fields(page.content.decode()) == ["email"]
    assert "ll_aid" not in page.cookies
    assert stored.anonymous_id == aid
    assert stored.page_url == "https://www.customer.cn/trial"


def test_a_landing_page_and_share_link_of_the_unit_are_kept_with_the_submission(world):
    form = make_form(world.a)
    page = LandingPage.objects.create(unit=world.a, title="春季", slug="spring-forms")
    foreign = LandingPage.objects.create(unit=world.b, title="B", slug="b-forms")
    link = ShareLink.objects.create(unit=world.a, owner=world.sales, landing_page=page)

    post_answers(visitor(new_aid()), form, ANSWERS, query=f"?embed=1&lp={page.pk}&sl={link.token}")
    post_answers(visitor(new_aid()), form, ANSWERS, query=f"?embed=1&lp={foreign.pk}&sl=nope")

    first, second = submissions()
    assert (first.landing_page_id, first.share_link_id) == (page.pk, link.pk)
    assert (second.landing_page_id, second.share_link_id) == (None, None)


def test_the_page_speaks_chinese_by_default(world):
    form = make_form(world.a)

    html = Client(HTTP_USER_AGENT=BROWSER).get(f"/f/{form.key}/").content.decode()

    assert '<html lang="zh-hans">' in html


# --- Acceptance (a): anonymous browsing then a form: one contact, four activities -------------


def test_a_visitor_who_browsed_anonymously_then_submits_has_it_all_on_one_timeline(world):
    Site.objects.create(unit=world.a, name="官网", public_key="pk_forms", signing_secret="s")
    form = make_form(world.a)
    aid = new_aid()
    pages = [f"https://www.hualan.example.cn/{p}" for p in ("products", "pricing", "cases")]
    # Given three pages viewed anonymously on the unit's website, processed …
    body = {
        "anonymous_id": aid,
        "events": [
            {
                "type": "page_view",
                "id": f"pv-{n}",
                "url": url,
                "occurred_at": timezone.now().isoformat(),
            }
            for n, url in enumerate(pages)
        ],
    }
    collected = Client(HTTP_USER_AGENT=BROWSER).post(
        "/api/v1/collect", json.dumps(body), "application/json", HTTP_X_LEADLOOP_KEY="pk_forms"
    )
    collector_batches_sweep()
    assert collected.status_code == 202
    assert Activity.objects.filter(contact__isnull=True).count() == 3

    # When the same browser submits the form over the public endpoint, and it is processed
    response = post_answers(visitor(aid), form, ANSWERS)
    submissions_process([s.pk for s in submissions()])
    collector_batches_sweep()  # the form page's own view

    # Then one contact holds the three pages, the form's view and the submission
    assert response.status_code == 200
    contact = Contact.objects.get()
    timeline = contact_timeline(user=world.marketer, contact=contact).items
    assert sorted((a.type, a.properties.get("url", "")) for a in timeline) == sorted(
        [
            ("form_submit", f"http://testserver/f/{form.key}/"),
            ("page_view", f"http://testserver/f/{form.key}/"),
            ("page_view", pages[0]),
            ("page_view", pages[1]),
            ("page_view", pages[2]),
        ]
    )
    assert Activity.objects.filter(contact__isnull=True).count() == 0


# --- Acceptance (b): progressive profiling ----------------------------------------------------


def known_visitor(unit, aid: str) -> Contact:
    """Somebody we know by phone, name and company, whose browser is ``aid``."""
    contact = contact_resolve(
        unit=unit,
        keys=[make_key("phone", "13900139000")],
        attributes={"name": "韩梅梅", "company_name": "华澜生物"},
        source="import",
        acting_user=SYSTEM,
    ).contact
    anonymous_link(contact=contact, anonymous_id=aid)
    return contact


PROGRESSIVE_FIELDS = [
    {"key": "name", "required": True},
    {"key": "phone", "required": True},
    {"key": "email"},
    {"key": "company_name", "required": True},
    {"key": "title"},
    {"key": "custom:customer_type", "required": True},
    {"key": "city"},
]


def test_a_returning_known_visitor_is_asked_only_what_we_do_not_know(world):
    field = customer_type(world.a)
    form = make_form(world.a, PROGRESSIVE_FIELDS, progressive=True, progressive_max=2)
    aid = new_aid()
    contact = known_visitor(world.a, aid)

    html = visitor(aid).get(f"/f/{form.key}/").content.decode()

    # name, phone and company are known; of the rest the required one comes first
    assert shown_fields(html) == ["email", "custom:customer_type"]
    assert "Welcome back!" in html
    assert f'href="/f/{form.key}/?fresh=1">Not you?</a>' in html
    # nothing we know is shown back
    assert "韩梅梅" not in html
    assert "13900139000" not in html

    # When they answer, the answers land on the same person (matched by their browser)
    post_answers(
        visitor(aid), form, {"email": "han@example.cn", "custom:customer_type": "ka"}, page=html
    )
    submissions_process([s.pk for s in submissions()])
    contact.refresh_from_db()
    assert Contact.objects.count() == 1
    assert contact.custom == {str(field.pk): "ka"}
    assert set(contact.identities.values_list("kind", flat=True)) == {"phone", "email", "anonymous"}

    # And the next visit asks the next unknown fields
    html = visitor(aid).get(f"/f/{form.key}/").content.decode()
    assert shown_fields(html) == ["title", "city"]


def test_a_visitor_we_know_everything_about_sees_only_the_consent(world):
    form = make_form(world.a, [*FIELDS[:2], FIELDS[3]], progressive=True)
    aid = new_aid()
    known_visitor(world.a, aid)

    html = visitor(aid).get(f"/f/{form.key}/").content.decode()
    fresh = visitor(aid).get(f"/f/{form.key}/?fresh=1")

    assert shown_fields(html) == []
    assert 'id="ll-consent"' in html
    assert "Not you?" in html
    assert shown_fields(fresh.content.decode()) == ["name", "phone", "company_name"]
    assert fresh.cookies["ll_aid"].value != aid  # a new visitor from here on


def test_an_unknown_visitor_on_a_progressive_form_is_asked_a_way_to_reach_them(world):
    form = make_form(
        world.a,
        [
            {"key": "name", "required": True},
            {"key": "company_name", "required": True},
            {"key": "email"},
        ],
        progressive=True,
        progressive_max=2,
    )

    html = visitor(new_aid()).get(f"/f/{form.key}/").content.decode()

    assert shown_fields(html) == ["name", "email"]


def test_without_progressive_profiling_everyone_sees_every_field(world):
    form = make_form(world.a)
    aid = new_aid()
    known_visitor(world.a, aid)

    html = visitor(aid).get(f"/f/{form.key}/").content.decode()

    assert shown_fields(html) == ["name", "phone", "email", "company_name"]
    assert "Welcome back!" not in html


# --- Acceptance (e): nothing is lost while the worker or the broker is down -------------------


def test_with_no_worker_submissions_wait_and_a_later_sweep_processes_them(
    world, django_capture_on_commit_callbacks
):
    form = make_form(world.a)
    # Given the broker is up but no worker runs: the dispatch is queued and nobody takes it
    tasks.dispatch_resume()
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            answers = {**ANSWERS, "phone": f"1380013800{n}", "email": f"li{n}@example.cn"}
            post_answers(visitor(new_aid()), form, answers)
    assert tasks.dispatch_drain()
    assert [s.status for s in submissions()] == ["pending"] * 3

    # When beat's sweep runs
    tasks.form_submissions_sweep()

    # Then each became one contact with one form activity
    assert [s.status for s in submissions()] == ["processed"] * 3
    assert Contact.objects.count() == 3
    assert Activity.objects.filter(type="form_submit").count() == 3


def test_a_broker_outage_does_not_fail_the_visitors_submit(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    from config.celery import app

    tasks.dispatch_resume()
    form = make_form(world.a)
    monkeypatch.setattr(app.conf, "broker_write_url", None)
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:9/0")
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)

    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = post_answers(visitor(new_aid()), form, ANSWERS)
    answered_in = time.monotonic() - started
    assert tasks.dispatch_drain(timeout=30)

    tasks.dispatch_resume()
    assert response.status_code == 200
    assert answered_in < 2  # the dispatch is off the request's path
    assert [s.status for s in submissions()] == ["pending"]


def test_consent_is_recorded_with_the_wording_version_and_proof(world):
    form = make_form(world.a)

    post_answers(visitor(new_aid()), form, ANSWERS)
    (stored,) = submissions()
    submissions_process([stored.pk])

    events = ConsentEvent.objects.order_by("channel")
    assert [(e.channel, e.granted, e.wording_version, e.source) for e in events] == [
        ("email", True, VERSION, "form"),
        ("phone", True, VERSION, "form"),
        ("sms", True, VERSION, "form"),
    ]
    assert events[0].proof["form"] == form.pk
    assert events[0].proof["submission"] == stored.pk
    assert events[0].proof["ip"] == "127.0.0.1"
    assert events[0].proof["user_agent"] == BROWSER


def test_an_unrelated_channel_of_another_unit_is_never_used(world):
    Channel.objects.create(unit=world.b, code="baidu", name="百度 B", kind="sem")
    form = make_form(world.a)

    post_answers(visitor(new_aid()), form, ANSWERS, query="?utm_source=baidu")
    submissions_process([s.pk for s in submissions()])

    assert Activity.objects.get(type="form_submit").channel_id is None
    assert RawBatch.objects.count() == 1  # the page view, stored for the collector
