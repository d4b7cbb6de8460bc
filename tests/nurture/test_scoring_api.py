"""The scoring API: models and rules CRUD through the services, validation with node
paths, recompute, explain, distribution, a contact's scores, scoping and query counts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.core.models import AuditLog
from apps.nurture.models import ContactScore, ScoringModel, ScoringRule
from apps.nurture.services.scoring import scoring_model_recompute
from tests.nurture.helpers import NOW, act, engagement_rule, fit_rule, person, scoring_model

pytestmark = pytest.mark.django_db


def test_a_marketer_creates_a_model_and_rules_and_each_write_bumps_the_version(world, api):
    api.force_authenticate(world.marketer)

    created = api.post(
        "/api/v1/scoring-models/",
        {
            "unit": world.a.pk,
            "name": "KA 客户评分",
            "tier": "ka",
            "half_life_days": 30,
            "bands": [{"min": 30, "temperature": "warm"}, {"min": 60, "temperature": "hot"}],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    model_id = created.json()["id"]
    assert (created.json()["version"], created.json()["recompute_status"]) == (2, "queued")

    rule = api.post(
        "/api/v1/scoring-rules/",
        {
            "model": model_id,
            "kind": "fit",
            "name": "生物医药",
            "condition": {"field": "industry", "op": "in", "value": ["生物医药"]},
            "points": "15",
        },
        format="json",
    )
    assert rule.status_code == 201, rule.json()
    assert ScoringModel.objects.get(pk=model_id).version == 3
    assert list(
        AuditLog.objects.filter(object_type__startswith="nurture.").values_list("action", flat=True)
    ) == ["scoring_model.create", "scoring_rule.create"]

    detail = api.get(f"/api/v1/scoring-models/{model_id}/")
    assert [r["name"] for r in detail.json()["rules"]] == ["生物医药"]
    assert detail.json()["rules"][0]["points"] == "15.00"


def test_an_invalid_rule_is_rejected_with_the_path_of_the_bad_node(world, api):
    model = scoring_model(world.a)
    api.force_authenticate(world.marketer)

    response = api.post(
        "/api/v1/scoring-rules/",
        {
            "model": model.pk,
            "kind": "fit",
            "name": "坏规则",
            "condition": {"all": [{"field": "id; DROP TABLE", "op": "eq", "value": "x"}]},
            "points": "5",
        },
        format="json",
    )

    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert fields["condition"][0].startswith("condition.all[0].field: unknown field 'id; DROP")
    assert not ScoringRule.objects.exists()
    assert ScoringModel.objects.get(pk=model.pk).version == 1


def test_an_invalid_match_and_bands_are_rejected(world, api):
    model = scoring_model(world.a)
    api.force_authenticate(world.marketer)

    bad_match = api.post(
        "/api/v1/scoring-rules/",
        {
            "model": model.pk,
            "kind": "engagement",
            "name": "x",
            "match": {"type": "download", "colour": "red"},
            "points": "5",
            "cap_days": 7,
        },
        format="json",
    )
    bad_bands = api.patch(
        f"/api/v1/scoring-models/{model.pk}/",
        {"bands": [{"min": 60, "temperature": "hot"}, {"min": 30, "temperature": "warm"}]},
        format="json",
    )

    assert bad_match.status_code == 400
    assert bad_match.json()["error"]["fields"] == {
        "match": ["match.colour: unknown key 'colour'"],
        "cap": ["cap: a cap window needs a cap"],
    }
    assert bad_bands.status_code == 400
    assert bad_bands.json()["error"]["fields"]["bands"] == [
        "bands[1].min: thresholds must ascend",
        "bands[1].temperature: temperatures must ascend",
    ]
    model.refresh_from_db()
    assert (model.version, model.bands[0]["min"]) == (1, 20)


def test_an_sdr_reads_but_cannot_edit_or_recompute(world, api):
    model = scoring_model(world.a)
    api.force_authenticate(world.sdr)

    assert api.get(f"/api/v1/scoring-models/{model.pk}/").status_code == 200
    assert api.patch(f"/api/v1/scoring-models/{model.pk}/", {"name": "x"}).status_code == 403
    assert api.post(f"/api/v1/scoring-models/{model.pk}/recompute/").status_code == 403
    model.refresh_from_db()
    assert (model.name, model.version) == ("KA 客户评分", 1)


def test_another_units_model_rule_and_contact_are_404(world, api):
    model = scoring_model(world.a)
    rule = fit_rule(model, "任何人", {"field": "name", "op": "empty"}, "1")
    mine = person(world.a, phone="13700000001")
    api.force_authenticate(world.b_marketer)

    assert api.get(f"/api/v1/scoring-models/{model.pk}/").status_code == 404
    assert api.get(f"/api/v1/scoring-rules/{rule.pk}/").status_code == 404
    assert api.post(f"/api/v1/scoring-models/{model.pk}/recompute/").status_code == 404
    assert api.get(f"/api/v1/contacts/{mine.pk}/scores/").status_code == 404
    assert api.delete(f"/api/v1/scoring-rules/{rule.pk}/").status_code == 404
    assert ScoringRule.objects.filter(pk=rule.pk).exists()
    # and a model of B cannot explain a contact only A knows
    b_model = scoring_model(world.b, name="B 评分")
    response = api.get(f"/api/v1/scoring-models/{b_model.pk}/explain/?contact={mine.pk}")
    assert response.status_code == 404


def test_recompute_queues_a_new_version(world, api):
    model = scoring_model(world.a)
    api.force_authenticate(world.marketer)

    response = api.post(f"/api/v1/scoring-models/{model.pk}/recompute/")

    assert response.status_code == 202
    assert (response.json()["version"], response.json()["recompute_status"]) == (2, "queued")


def test_explain_and_distribution(world, api):
    p = person(world.a, phone="13700000002", industry="生物医药")
    q = person(world.a, phone="13700000003")
    model = scoring_model(world.a)
    fit_rule(model, "生物医药", {"field": "industry", "op": "eq", "value": "生物医药"}, "25")
    engagement_rule(model, "表单", {"type": "form_submit"}, "10")
    form = act(world.a, p, "form_submit", days_ago=1, object_type="form", object_id="f1")
    scoring_model_recompute(model=model, now=NOW)
    api.force_authenticate(world.sales)

    explained = api.get(f"/api/v1/scoring-models/{model.pk}/explain/?contact={p.pk}").json()
    dist = api.get(f"/api/v1/scoring-models/{model.pk}/distribution/").json()
    bad = api.get(f"/api/v1/scoring-models/{model.pk}/explain/?contact=abc")

    assert (explained["total"], explained["stored_total"], explained["temperature"]) == (
        "35.00",
        "35.00",
        "warm",
    )
    assert explained["fit_lines"] == [
        {
            "rule": explained["fit_lines"][0]["rule"],
            "rule_name": "生物医药",
            "points": "25.00",
            "condition": "Industry is 生物医药",
            "because": ["industry: 生物医药"],
        }
    ]
    line = explained["activity_lines"][0]
    assert (line["rule_name"], line["activity"], line["object_id"], line["points"]) == (
        "表单",
        form.pk,
        "f1",
        "10.00",
    )
    assert dist["contacts"] == 2
    assert dist["temperatures"] == {"cold": 1, "warm": 1, "hot": 0}
    # 0 and 35 in 10 buckets 4 wide from 0: the first and the ninth
    assert [(b["from"], b["to"], b["contacts"]) for b in dist["buckets"]] == [
        ("0", "4", 1),
        ("4", "8", 0),
        ("8", "12", 0),
        ("12", "16", 0),
        ("16", "20", 0),
        ("20", "24", 0),
        ("24", "28", 0),
        ("28", "32", 0),
        ("32", "36", 1),
    ]
    assert bad.status_code == 400
    assert q.pk


def test_two_tier_models_score_the_same_contact_differently_in_the_api(world, api):
    # acceptance 5 (API half): KA and SMB models both show, with different scores
    p = person(world.a, phone="13700000004", industry="制药", title="研发总监")
    ka = scoring_model(world.a, name="KA 客户评分", tier="ka")
    smb = scoring_model(world.a, name="中小客户评分", tier="small")
    fit_rule(ka, "总监", {"field": "title", "op": "contains", "value": "总监"}, "30")
    fit_rule(smb, "总监", {"field": "title", "op": "contains", "value": "总监"}, "5")
    engagement_rule(ka, "下载", {"type": "download"}, "10")
    engagement_rule(smb, "下载", {"type": "download"}, "4")
    act(world.a, p, "download", days_ago=1)
    for model in (ka, smb):
        scoring_model_recompute(model=model, now=NOW)
    api.force_authenticate(world.sales)

    response = api.get(f"/api/v1/contacts/{p.pk}/scores/")

    assert response.status_code == 200
    scores = {
        s["model_name"]: (s["tier"], s["total"], s["temperature"])
        for s in response.json()["scores"]
    }
    assert scores == {
        "KA 客户评分": ("ka", "40.00", "warm"),
        "中小客户评分": ("small", "9.00", "cold"),
    }
    for s in response.json()["scores"]:
        assert s["explanation"]["total"] == s["total"]


@pytest.mark.parametrize("count", [2, 6])
def test_the_model_list_query_count_does_not_grow(world, api, count, django_assert_num_queries):
    for i in range(count):
        model = scoring_model(world.a, name=f"M{i}")
        fit_rule(model, "r", {"field": "name", "op": "empty"}, "1")
    api.force_authenticate(world.marketer)
    # units and roles; the models page; their rules (prefetch)
    with django_assert_num_queries(3):
        response = api.get("/api/v1/scoring-models/")
    assert len(response.json()["results"]) == count


def test_deleting_a_model_removes_its_scores(world, api):
    p = person(world.a, phone="13700000005")
    model = scoring_model(world.a)
    fit_rule(model, "r", {"field": "name", "op": "empty"}, "1")
    scoring_model_recompute(model=model, now=NOW)
    assert ContactScore.objects.filter(contact=p).count() == 1
    api.force_authenticate(world.marketer)

    assert api.delete(f"/api/v1/scoring-models/{model.pk}/").status_code == 204

    assert not ContactScore.objects.filter(contact=p).exists()
    assert Decimal("1")
