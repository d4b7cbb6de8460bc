"""Console pages: the models list with distributions, the editor, "test on this contact",
the 360 page's scores panel (acceptance 5), scoping and pinned query counts."""

from __future__ import annotations

import pytest

from apps.nurture.models import ScoringModel, ScoringRule
from apps.nurture.services.scoring import scoring_model_recompute
from tests.nurture.helpers import NOW, act, engagement_rule, fit_rule, person, scoring_model

pytestmark = pytest.mark.django_db
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def tiers(world):
    p = person(world.a, phone="13600000001", industry="制药", title="研发总监", name="王芳")
    ka = scoring_model(world.a, name="KA 客户评分", tier="ka")
    smb = scoring_model(world.a, name="中小客户评分", tier="small")
    fit_rule(ka, "决策层", {"field": "title", "op": "contains", "value": "总监"}, "30")
    fit_rule(smb, "决策层", {"field": "title", "op": "contains", "value": "总监"}, "5")
    engagement_rule(ka, "价格页", {"type": "page_view", "properties": {"url": "/pricing"}}, "10")
    engagement_rule(smb, "价格页", {"type": "page_view", "properties": {"url": "/pricing"}}, "4")
    act(world.a, p, "page_view", days_ago=1, properties={"url": "/pricing"})
    for model in (ka, smb):
        scoring_model_recompute(model=model, now=NOW)
    return p, ka, smb


def test_the_360_page_shows_both_tier_scores_and_explains_each(world, client, tiers):
    # acceptance 5 (page half)
    p, ka, _smb = tiers
    client.force_login(world.viewer)

    page = client.get(f"/console/contacts/{p.pk}/", **EN)
    why = client.get(f"/console/scoring/{ka.pk}/explain/{p.pk}/", HTTP_HX_REQUEST="true", **EN)

    assert page.status_code == 200
    text = page.text
    assert "KA 客户评分" in text
    assert "中小客户评分" in text
    assert '<span class="score-big">40.00</span>' in text
    assert '<span class="score-big">9.00</span>' in text
    assert "Why this score?" in text
    assert why.status_code == 200
    assert "决策层" in why.text
    assert "价格页" in why.text
    assert "40.00" in why.text


def test_the_list_shows_models_with_distributions(world, client, tiers):
    client.force_login(world.marketer)

    page = client.get("/console/scoring/", **EN)

    assert page.status_code == 200
    assert page.text.count('<svg class="histogram"') == 2
    assert "New scoring model" in page.text


@pytest.mark.parametrize("count", [1, 5])
def test_the_list_query_count_does_not_grow(world, client, count, django_assert_num_queries):
    for i in range(count):
        model = scoring_model(world.a, name=f"M{i}")
        fit_rule(model, "r", {"field": "name", "op": "empty"}, "1")
    person(world.a, phone="13600000009")
    for model in ScoringModel.objects.all():
        scoring_model_recompute(model=model, now=NOW)
    client.force_login(world.marketer)
    # session, user, units and roles; editable units; models; visible models and the
    # distribution; nav; the unit switcher; the bell
    with django_assert_num_queries(9):
        response = client.get("/console/scoring/", **EN)
    assert response.status_code == 200


def test_a_marketer_creates_a_model_from_the_list(world, client):
    client.force_login(world.marketer)

    response = client.post(
        "/console/scoring/",
        {"unit": world.a.pk, "name": "新模型", "tier": "mid", "warm_from": "20", "hot_from": "50",
         "is_active": "on"},
    )  # fmt: skip

    model = ScoringModel.objects.get(name="新模型")
    assert response.status_code == 302
    assert response["Location"] == f"/console/scoring/{model.pk}/"
    assert model.bands == [
        {"min": 20.0, "temperature": "warm"},
        {"min": 50.0, "temperature": "hot"},
    ]


def test_adding_a_rule_with_bad_json_or_a_bad_node_changes_nothing(world, client):
    model = scoring_model(world.a)
    client.force_login(world.marketer)

    broken = client.post(
        f"/console/scoring/{model.pk}/rules/",
        {"kind": "fit", "name": "x", "condition": '{"field": ', "points": "5"},
        **EN,
    )
    bad_node = client.post(
        f"/console/scoring/{model.pk}/rules/",
        {"kind": "fit", "name": "x", "points": "5",
         "condition": '{"any": [{"field": "title", "op": "like", "value": "x"}]}'},
        **EN,
    )  # fmt: skip

    assert broken.status_code == 400
    assert "Not valid JSON (line 1" in broken.text
    assert bad_node.status_code == 400
    assert "condition.any[0].op: unknown operator" in bad_node.text
    assert not ScoringRule.objects.exists()
    model.refresh_from_db()
    assert model.version == 1


def test_adding_editing_and_removing_a_rule(world, client):
    model = scoring_model(world.a)
    client.force_login(world.marketer)

    added = client.post(
        f"/console/scoring/{model.pk}/rules/",
        {"kind": "engagement", "name": "下载", "match": '{"type": "download"}', "points": "5",
         "cap": "15", "cap_days": "7", "is_active": "on"},
    )  # fmt: skip
    rule = ScoringRule.objects.get()
    edited = client.post(
        f"/console/scoring/rules/{rule.pk}/",
        {"name": "下载资料", "match": '{"type": "download"}', "points": "6", "is_active": "on"},
    )
    rule.refresh_from_db()
    removed = client.post(f"/console/scoring/rules/{rule.pk}/delete/")

    assert (added.status_code, edited.status_code, removed.status_code) == (302, 302, 302)
    assert (rule.name, str(rule.points), rule.cap, rule.kind) == (
        "下载资料",
        "6.00",
        None,
        "engagement",
    )
    assert not ScoringRule.objects.exists()
    model.refresh_from_db()
    assert model.version == 4


def test_test_on_this_contact_explains_by_phone_without_saving(world, client, tiers):
    _p, ka, _smb = tiers
    client.force_login(world.marketer)

    page = client.get(f"/console/scoring/{ka.pk}/?contact=13600000001", **EN)
    missing = client.get(f"/console/scoring/{ka.pk}/?contact=nobody@example.com", **EN)

    assert page.status_code == 200
    assert "决策层" in page.text
    assert "Fit 30.00" in page.text
    assert "No contact you can see has that id" in missing.text


def test_a_viewer_sees_the_model_but_not_the_editor(world, client, tiers):
    _p, ka, _smb = tiers
    client.force_login(world.viewer)

    page = client.get(f"/console/scoring/{ka.pk}/", **EN)
    post = client.post(f"/console/scoring/{ka.pk}/rules/", {"kind": "fit"})

    assert page.status_code == 200
    assert "Add a rule" not in page.text
    assert post.status_code == 404
    assert ScoringRule.objects.filter(model=ka).count() == 2


def test_another_units_model_is_404_on_every_url(world, client, tiers):
    p, ka, _smb = tiers
    rule = ka.rules.first()
    client.force_login(world.b_marketer)

    for url in (
        f"/console/scoring/{ka.pk}/",
        f"/console/scoring/{ka.pk}/progress/",
        f"/console/scoring/{ka.pk}/explain/{p.pk}/",
        f"/console/scoring/rules/{rule.pk}/",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/console/scoring/{ka.pk}/recompute/").status_code == 404
    assert client.post(f"/console/scoring/rules/{rule.pk}/delete/").status_code == 404
    assert ScoringRule.objects.filter(pk=rule.pk).exists()


def test_pages_render_in_chinese(world, client, tiers):
    _p, ka, _smb = tiers
    client.force_login(world.marketer)

    assert client.get("/console/scoring/", HTTP_ACCEPT_LANGUAGE="zh-hans").status_code == 200
    assert (
        client.get(f"/console/scoring/{ka.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans").status_code == 200
    )
