"""A public form in a real phone-sized browser: fill it in, tick consent, see the thank-you,
and the submission is stored (then processed into a contact)."""

from __future__ import annotations

import pytest

from apps.contacts.models import Contact
from apps.content.models import FormSubmission
from apps.content.services.forms import form_create
from apps.content.services.submissions import submissions_process
from apps.core.services import SystemActor
from tests.factories import GroupFactory, UnitFactory

pytestmark = pytest.mark.browser

# Headless Chromium says "HeadlessChrome", which the collector files as a bot.
USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Mobile Safari/537.36"
)


@pytest.fixture
def form(transactional_db: None):
    unit = UnitFactory(code="ls", name="生命科学事业部", parent=GroupFactory(code="g", name="集团"))
    return form_create(
        unit=unit,
        name="白皮书下载",
        title="下载《单细胞测序白皮书》",
        fields=[
            {"key": "name", "required": True},
            {"key": "phone", "required": True},
            {"key": "company_name"},
        ],
        consent_text="我同意华澜科技通过短信向我发送产品资讯。",
        consent_version="2026-03",
        success_message="<p>感谢！白皮书已发送。</p>",
        acting_user=SystemActor("e2e"),
    )


def test_a_visitor_fills_the_form_on_a_phone_and_sees_the_thanks(live_server, page, form):
    p = page(375)
    p.context.set_extra_http_headers({"User-Agent": USER_AGENT})
    p.goto(f"{live_server.url}/f/{form.key}/?utm_source=wechat-mp")

    # The form fits the phone: nothing wider than the screen
    assert p.evaluate("document.documentElement.scrollWidth") <= 375
    p.fill("#f-name", "李雷")
    p.fill("#f-phone", "138 0013 8000")
    p.fill("#f-company_name", "华澜生物")
    p.check("#ll-consent")
    p.click("button[type=submit]")

    p.wait_for_selector("[data-ll-thanks]")
    assert "感谢！白皮书已发送。" in p.inner_text("[data-ll-thanks]")
    (stored,) = FormSubmission.objects.all()
    assert stored.data == {"name": "李雷", "phone": "+8613800138000", "company_name": "华澜生物"}
    assert stored.utm == {"source": "wechat-mp"}
    submissions_process([stored.pk])
    assert Contact.objects.get().name == "李雷"


def test_a_bad_phone_is_shown_next_to_the_field(live_server, page, form):
    p = page(375)
    p.context.set_extra_http_headers({"User-Agent": USER_AGENT})
    p.goto(f"{live_server.url}/f/{form.key}/")

    p.fill("#f-name", "李雷")
    p.fill("#f-phone", "12345")
    p.check("#ll-consent")
    p.click("button[type=submit]")

    p.wait_for_selector("#f-phone-error")
    assert p.locator("#f-phone").get_attribute("aria-invalid") == "true"
    assert FormSubmission.objects.count() == 0
