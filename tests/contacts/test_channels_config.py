"""Channels and campaigns: validation (cost, codes, dates, units), the page and the API."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from apps.contacts.models import Campaign, Channel, Contact
from apps.contacts.selectors.performance import Performance
from apps.contacts.services import config
from apps.contacts.services.activities import ActivityIn, activities_record
from apps.core.models import AuditLog
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def sem(world):
    return config.channel_create(
        unit=world.a, code="baidu-sem", name="百度SEM", kind="sem", acting_user=world.marketer
    )


def _campaign(world, channel, **overrides):
    values = {
        "unit": world.a,
        "code": "2026-expo",
        "name": "2026 展会",
        "channel": channel,
        "starts_on": date(2026, 3, 1),
        "ends_on": date(2026, 3, 4),
        "cost": "180000.50",
        "acting_user": world.marketer,
    }
    values.update(overrides)
    return config.campaign_create(**values)


def test_a_campaign_is_stored_in_cny_and_audited(world, sem):
    campaign = _campaign(world, sem)

    campaign.refresh_from_db()
    assert (campaign.cost, campaign.currency, campaign.channel_id) == (
        Decimal("180000.50"),
        "CNY",
        sem.pk,
    )
    audit = AuditLog.objects.get(action="campaign.create")
    assert (audit.after or {})["cost"] == "180000.50"
    assert audit.actor_label == "a-marketer"


@pytest.mark.parametrize(
    ("cost", "message"),
    [
        ("-1", "The cost cannot be negative."),
        (Decimal("-0.01"), "The cost cannot be negative."),
        ("很多", "Enter the cost as a number, e.g. 12000.50."),
        ("1.005", "At most two decimal places (fen)."),
        ("NaN", "Enter the cost as a number, e.g. 12000.50."),
    ],
)
def test_a_bad_cost_is_refused_and_nothing_is_stored(world, sem, cost, message):
    with pytest.raises(ValidationError) as caught:
        _campaign(world, sem, cost=cost)
    assert caught.value.message_dict == {"cost": [message]}
    assert Campaign.objects.count() == 0
    assert not AuditLog.objects.filter(action="campaign.create").exists()


def test_a_duplicate_code_is_refused_with_a_clear_message(world, sem):
    _campaign(world, sem)
    with pytest.raises(ValidationError) as campaign_clash:
        _campaign(world, sem, name="另一个")
    with pytest.raises(ValidationError) as channel_clash:
        config.channel_create(
            unit=world.a, code="Baidu-SEM", name="百度", kind="sem", acting_user=SYSTEM
        )
    assert campaign_clash.value.message_dict == {
        "code": ["Another campaign of this unit already uses this code."]
    }
    assert channel_clash.value.message_dict == {
        "code": ["Another channel of this unit already uses this code."]
    }
    assert Campaign.objects.count() == 1
    assert Channel.objects.count() == 1
    # The same codes are free in another unit.
    config.channel_create(
        unit=world.b, code="baidu-sem", name="百度", kind="sem", acting_user=SYSTEM
    )


def test_dates_must_run_forward_and_the_channel_must_be_the_units(world, sem):
    b_channel = config.channel_create(
        unit=world.b, code="expo", name="展会", kind="event", acting_user=SYSTEM
    )
    with pytest.raises(ValidationError) as backwards:
        _campaign(world, sem, starts_on=date(2026, 3, 4), ends_on=date(2026, 3, 1))
    with pytest.raises(ValidationError) as foreign:
        _campaign(world, b_channel)
    assert list(backwards.value.message_dict) == ["ends_on"]
    assert list(foreign.value.message_dict) == ["channel"]
    assert Campaign.objects.count() == 0


def test_updating_a_campaign_with_a_negative_cost_changes_nothing(world, sem):
    campaign = _campaign(world, sem)
    with pytest.raises(ValidationError):
        config.campaign_update(
            campaign=campaign,
            code="2026-expo",
            name="改名",
            channel=sem,
            starts_on=None,
            ends_on=None,
            cost="-5",
            acting_user=SYSTEM,
        )
    stored = Campaign.objects.get()
    assert (stored.name, stored.cost) == ("2026 展会", Decimal("180000.50"))


def test_a_channel_code_must_be_a_slug(world):
    with pytest.raises(ValidationError) as caught:
        config.channel_create(
            unit=world.a, code="百度 sem", name="百度", kind="sem", acting_user=SYSTEM
        )
    assert list(caught.value.message_dict) == ["code"]


# --- Console ------------------------------------------------------------------------------


def test_the_channels_page_lists_the_units_channels_in_fixed_queries(
    client, world, sem, django_assert_num_queries
):
    for i in range(6):
        config.channel_create(
            unit=world.a, code=f"c{i}", name=f"渠道{i}", kind="media", acting_user=SYSTEM
        )
    config.channel_create(
        unit=world.b, code="b-only", name="B 的渠道", kind="sem", acting_user=SYSTEM
    )
    _campaign(world, sem)
    client.force_login(world.marketer)

    # the page's reads, plus two for the performance of the listed channels, and the bell
    with django_assert_num_queries(10):
        response = client.get("/console/channels/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "百度SEM" in body
    assert "B 的渠道" not in body
    assert [c.code for c in response.context["page"].items][:2] == ["baidu-sem", "c0"]
    assert response.context["page"].items[0].campaigns == 1


def test_the_campaigns_tab_in_fixed_queries(client, world, sem, django_assert_num_queries):
    for i in range(5):
        _campaign(world, sem, code=f"c-{i}", name=f"活动{i}")
    client.force_login(world.marketer)

    with django_assert_num_queries(11):  # … and the bell's unread count
        response = client.get("/console/channels/?tab=campaigns", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert len(response.context["page"].items) == 5
    assert "¥180,000.50" in response.content.decode()


def test_campaign_performance_counts_visits_people_submissions_and_cost_per_contact(
    client, world, sem
):
    # given a campaign costing ¥1,000 that, within the last 30 days, brought 3 page views
    # by 2 visitors (one anonymous, one known), 1 form submission by the known one, who is
    # a new contact first touched by it; plus a page view 40 days ago and one of another
    # campaign, which do not count
    campaign = _campaign(world, sem, cost="1000")
    other = _campaign(world, sem, code="other", name="其他")
    now = timezone.now()
    person = Contact.objects.create(group=world.group, name="王芳")
    Contact.objects.filter(pk=person.pk).update(
        first_touch_campaign=campaign, first_touch_at=now - timedelta(days=2)
    )
    activities_record(
        [
            ActivityIn(
                world.a.pk,
                "page_view",
                now - timedelta(days=3),
                anonymous_id="v-1",
                campaign_id=campaign.pk,
            ),
            ActivityIn(
                world.a.pk,
                "page_view",
                now - timedelta(days=2),
                anonymous_id="v-1",
                campaign_id=campaign.pk,
            ),
            ActivityIn(
                world.a.pk,
                "page_view",
                now - timedelta(days=2),
                contact_id=person.pk,
                campaign_id=campaign.pk,
            ),
            ActivityIn(
                world.a.pk,
                "form_submit",
                now - timedelta(days=2),
                contact_id=person.pk,
                campaign_id=campaign.pk,
            ),
            ActivityIn(
                world.a.pk,
                "page_view",
                now - timedelta(days=40),
                anonymous_id="v-2",
                campaign_id=campaign.pk,
            ),
            ActivityIn(world.a.pk, "page_view", now, anonymous_id="v-3", campaign_id=other.pk),
        ]
    )
    client.force_login(world.marketer)

    # when the marketer opens the campaigns tab for the last 30 days
    response = client.get(
        f"/console/channels/?unit={world.a.pk}&tab=campaigns&days=30", HTTP_ACCEPT_LANGUAGE="en"
    )

    # then the campaign shows 3 visits, 2 visitors, 1 submission (50%), 1 new contact at
    # ¥1,000.00 each
    row = next(c for c in response.context["page"].items if c.pk == campaign.pk)
    assert row.performance == Performance(visits=3, visitors=2, submissions=1, new_contacts=1)
    assert row.performance.conversion == 0.5
    assert row.cost_per_contact == Decimal("1000.00")
    body = response.content.decode()
    assert '<td class="num">50%</td>' in body
    assert "¥1,000.00" in body
    other_row = next(c for c in response.context["page"].items if c.pk == other.pk)
    assert other_row.performance == Performance(visits=1, visitors=1)
    assert other_row.cost_per_contact is None


def test_the_page_refuses_a_negative_cost_and_stores_nothing(client, world, sem):
    client.force_login(world.marketer)
    response = client.post(
        f"/console/channels/?unit={world.a.pk}&tab=campaigns",
        {"name": "负成本", "code": "neg", "channel": sem.pk, "cost": "-100"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    assert "The cost cannot be negative." in response.content.decode()
    assert Campaign.objects.count() == 0


def test_the_page_shows_a_duplicate_code_clearly(client, world, sem):
    client.force_login(world.marketer)
    response = client.post(
        f"/console/channels/?unit={world.a.pk}&tab=channels",
        {"name": "百度2", "code": "baidu-sem", "kind": "sem", "is_active": "on"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    assert "Another channel of this unit already uses this code." in response.content.decode()


def test_another_units_channel_and_campaign_are_404(client, world):
    b_channel = config.channel_create(
        unit=world.b, code="x", name="X", kind="sem", acting_user=SYSTEM
    )
    b_campaign = config.campaign_create(unit=world.b, code="y", name="Y", acting_user=SYSTEM)
    client.force_login(world.marketer)
    assert client.get(f"/console/channels/{b_channel.pk}/edit/").status_code == 404
    assert (
        client.post(f"/console/campaigns/{b_campaign.pk}/edit/", {"name": "改"}).status_code == 404
    )
    assert Campaign.objects.get().name == "Y"


# --- API ----------------------------------------------------------------------------------


def test_api_negative_cost_is_refused_and_nothing_stored(api, world, sem):
    api.force_authenticate(world.marketer)
    response = api.post(
        "/api/v1/campaigns/",
        {"unit": world.a.pk, "code": "neg", "name": "负", "channel": sem.pk, "cost": "-1.00"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"cost": ["The cost cannot be negative."]}
    assert Campaign.objects.count() == 0


def test_api_crud_and_scoping(api, world, sem):
    api.force_authenticate(world.marketer)
    created = api.post(
        "/api/v1/campaigns/",
        {"unit": world.a.pk, "code": "q3", "name": "Q3", "channel": sem.pk, "cost": "5000"},
    )
    assert created.status_code == 201, created.json()
    campaign_id = created.json()["id"]
    updated = api.patch(f"/api/v1/campaigns/{campaign_id}/", {"cost": "6000.10"})
    duplicate = api.post(
        "/api/v1/channels/", {"unit": world.a.pk, "code": "baidu-sem", "name": "x", "kind": "sem"}
    )

    assert created.json()["currency"] == "CNY"
    assert updated.json()["cost"] == "6000.10"
    assert duplicate.status_code == 400
    assert duplicate.json()["error"]["fields"] == {
        "code": ["Another channel of this unit already uses this code."]
    }
    assert api.delete(f"/api/v1/campaigns/{campaign_id}/").status_code == 405

    api.force_authenticate(world.b_marketer)
    assert api.get(f"/api/v1/campaigns/{campaign_id}/").status_code == 404
    assert api.get(f"/api/v1/channels/{sem.pk}/").status_code == 404
    foreign_channel = api.post(
        "/api/v1/campaigns/", {"unit": world.b.pk, "code": "z", "name": "Z", "channel": sem.pk}
    )
    assert foreign_channel.status_code == 400
    assert list(foreign_channel.json()["error"]["fields"]) == ["channel"]
    assert Campaign.objects.count() == 1
