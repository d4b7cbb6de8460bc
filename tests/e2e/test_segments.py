"""The segment editor in a real browser: editing a condition in the tree updates the JSON
the form posts and the live preview's count, from the preview API."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from apps.contacts.models import Contact, ContactUnit
from tests.e2e.test_personas import sign_in
from tests.factories import PASSWORD, GroupFactory, UnitFactory, UserFactory, member

pytestmark = pytest.mark.browser


def test_typing_a_value_updates_the_definition_and_the_live_count(
    live_server, page, transactional_db
):
    # given a marketer of a unit that knows 3 contacts in 生物医药 and 2 in 制药
    group = GroupFactory(code="g-seg", name="集团")
    unit = UnitFactory(code="ls-seg", name="生命科学", parent=group)
    marketer = UserFactory(username="seg-marketer", language="en")
    member(marketer, unit, "marketer")
    for industry in ["生物医药"] * 3 + ["制药"] * 2:
        contact = Contact.objects.create(group=group, industry=industry)
        ContactUnit.objects.create(contact=contact, unit=unit)
    p = page(1280)
    sign_in(p, live_server.url, marketer.username, PASSWORD)

    # when they open a new dynamic segment and type 生物医药 into the first condition
    p.goto(f"{live_server.url}/console/segments/new/?unit={unit.pk}&kind=dynamic")
    value = p.locator("#segment-tree .seg-cond input[type=text]").first
    value.fill("生物医药")

    # then the preview counts 3, and the JSON the form posts says so
    count = p.locator("#segment-preview [data-preview=count]")
    expect(count).to_have_text("3", timeout=10_000)
    definition = json.loads(p.locator("#segment-definition").input_value())
    assert definition == {"all": [{"field": "industry", "op": "eq", "value": "生物医药"}]}

    # when the value changes to 制药, the preview follows
    value.fill("制药")
    expect(count).to_have_text("2", timeout=10_000)
    expect(p.locator("#segment-preview [data-preview=sample] li")).to_have_count(2)
    assert re.search(r"\d", p.locator("#segment-preview [data-preview=cost]").inner_text())
