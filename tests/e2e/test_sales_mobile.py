"""The salesperson's phone in a real browser at 375 px: the inbox, a lead, the deals; no
page is wider than the screen, and an MQL is accepted by tapping."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from apps.contacts.models import Activity, Contact, Identity
from apps.core.models import User
from apps.sales.models import Lead, Stage
from apps.sales.services import leads as services
from apps.sales.services.opportunities import opportunity_create
from tests.e2e.conftest import MOBILE
from tests.e2e.test_personas import assert_fits, path_of, shoot, sign_in
from tests.factories import PASSWORD, GroupFactory, UnitFactory, UserFactory, member

pytestmark = pytest.mark.browser

PEOPLE = [
    ("王磊", "华东生物科技有限公司", "采购经理"),
    ("李娜", "上海瑞金医院检验科", "科室主任"),
    ("张伟", "深圳迈瑞生物医疗电子股份有限公司", "研发总监"),
]


def _world() -> tuple[User, list[Lead]]:
    group = GroupFactory(code="g-e2e", name="华兰集团")
    unit = UnitFactory(code="ls-e2e", name="生命科学事业部", parent=group)
    sdr = UserFactory(username="sdr-e2e")
    member(sdr, unit, "sdr")
    sales: User = UserFactory(username="sales-e2e")  # type: ignore[assignment]
    member(sales, unit, "sales")
    leads = []
    for i, (name, company, title) in enumerate(PEOPLE):
        contact = Contact.objects.create(group=group, name=name, company_name=company, title=title)
        Identity.objects.create(
            group=group, contact=contact, kind="phone", value=f"+861380013800{i}"
        )
        lead = services.lead_open(contact=contact, unit=unit, source="manual", stage="mql").lead
        assert lead is not None
        lead.need = "需要一套单细胞测序平台，预算约 80 万，下季度采购，希望先看演示" * 2
        lead.save()
        services.lead_handoff(lead=lead, actor=sdr, owner=sales)
        leads.append(lead)
    # The third is accepted, qualified and has a deal; the first two wait in the inbox.
    third = leads[2]
    services.lead_accept(lead=third, actor=sales)
    services.lead_move(lead=third, to_stage=Stage.SQL, actor=sales)
    opportunity_create(
        lead=third,
        actor=sales,
        data={"name": "迈瑞 单细胞测序平台（含三年维保与培训）", "amount": "860000"},
    )
    Activity.objects.create(
        unit=unit,
        contact=leads[0].contact,
        type="page_view",
        occurred_at=leads[0].created_at,
        properties={"url": "https://hualan.cn/pricing", "title": "价格方案"},
    )
    return sales, leads


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_salesperson_works_the_phone_pages(
    live_server: LiveServer, page: Callable[..., Page], transactional_db: None, locale: str
) -> None:
    # Given a salesperson with two MQLs to accept and a deal
    sales, leads = _world()
    p = page(MOBILE, locale=locale)
    sign_in(p, live_server.url, sales.username, PASSWORD)
    tag = locale.split("-")[0]

    # The inbox lists both, fits the screen
    p.goto(live_server.url + "/m/inbox/")
    expect(p.locator(".sm-card")).to_have_count(2)
    assert_fits(p, "inbox")
    shoot(p, f"sales-m-inbox-{tag}")

    # A lead page (every panel open) fits too
    p.goto(f"{live_server.url}/m/leads/{leads[0].pk}/")
    expect(p.locator("a[href^='tel:']")).to_have_count(1)
    p.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    assert_fits(p, "lead page")
    shoot(p, f"sales-m-lead-{tag}")

    # My leads and the deals list and page
    for path, name in (("/m/leads/", "leads"), ("/m/deals/", "deals")):
        p.goto(live_server.url + path)
        expect(p.locator(".sm-card").first).to_be_visible()
        assert_fits(p, name)
        shoot(p, f"sales-m-{name}-{tag}")
    with p.expect_navigation():
        p.locator(".sm-card a.sm-main").first.tap()
    assert path_of(p).startswith("/m/deals/")
    assert_fits(p, "deal page")
    shoot(p, f"sales-m-deal-{tag}")

    # When I tap Accept on the first MQL in the inbox
    p.goto(live_server.url + "/m/inbox/")
    with p.expect_navigation():
        p.locator(f"#lead-{leads[0].pk} button[data-action=accept]").tap()
    # Then its page opens and it is mine at SAL; one MQL is left
    assert path_of(p) == f"/m/leads/{leads[0].pk}/"
    assert_fits(p, "accepted lead")
    leads[0].refresh_from_db()
    assert leads[0].stage == Stage.SAL
    p.goto(live_server.url + "/m/inbox/")
    expect(p.locator(".sm-card")).to_have_count(1)
