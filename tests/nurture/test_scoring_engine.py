"""The scoring engine: fit, engagement with decay and caps, negative points, history,
incremental recompute, superseded recomputes and band hooks."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.contacts.models import Contact
from apps.nurture.hooks import register_score_band_hook, unregister_score_band_hook
from apps.nurture.models import ContactScore, ScoreChange, ScoringModel
from apps.nurture.services.scoring import (
    score_explain,
    scores_recompute_for,
    scoring_model_recompute,
)
from tests.nurture.helpers import (
    NOW,
    act,
    engagement_rule,
    fit_rule,
    person,
    scoring_model,
)

pytestmark = pytest.mark.django_db


def score_of(model, contact):
    return ContactScore.objects.get(model=model, contact=contact)


def test_fit_and_engagement_add_up_with_half_life_decay(world):
    # given a biotech director who downloaded twice: today and one half-life (10 days) ago
    p = person(world.a, phone="13800000001", industry="生物医药", title="研发总监")
    model = scoring_model(world.a, half_life_days=10)
    fit_rule(model, "生物医药行业", {"field": "industry", "op": "eq", "value": "生物医药"}, "15")
    fit_rule(model, "总监", {"field": "title", "op": "contains", "value": "总监"}, "10")
    fit_rule(model, "上海", {"field": "city", "op": "eq", "value": "上海"}, "99")
    engagement_rule(model, "下载", {"type": "download"}, "8")
    act(world.a, p, "download", days_ago=0)
    act(world.a, p, "download", days_ago=10)
    act(world.a, p, "download", days_ago=20)

    # when the model is recomputed at a fixed now
    result = scoring_model_recompute(model=model, now=NOW)

    # then fit is 15 + 10, engagement 8 + 4 + 2, the total 39 (warm)
    score = score_of(model, p)
    assert (score.fit, score.engagement, score.total) == (
        Decimal("25.00"),
        Decimal("14.00"),
        Decimal("39.00"),
    )
    assert score.temperature == "warm"
    assert result.changed == 1
    model.refresh_from_db()
    assert (model.recompute_status, model.recompute_progress) == ("done", 100)


def test_decay_rounds_each_activity_line_to_cents(world):
    # given one activity 5 days ago with a 10-day half-life: 10 × 0.5^0.5 = 7.0710678…
    p = person(world.a, phone="13800000002")
    model = scoring_model(world.a, half_life_days=10)
    engagement_rule(model, "浏览", {"type": "page_view"}, "10")
    act(world.a, p, "page_view", days_ago=5)
    act(world.a, p, "page_view", days_ago=5)

    scoring_model_recompute(model=model, now=NOW)

    # then each line is 7.07 and the total their sum (14.14, not round(14.142…) = 14.14)
    assert score_of(model, p).engagement == Decimal("14.14")


def test_no_half_life_means_no_decay_and_future_activities_do_not_count(world):
    p = person(world.a, phone="13800000003")
    model = scoring_model(world.a)
    engagement_rule(model, "浏览", {"type": "page_view"}, "3")
    act(world.a, p, "page_view", days_ago=400)
    act(world.a, p, "page_view", days_ago=-1)  # after "now"

    scoring_model_recompute(model=model, now=NOW)

    assert score_of(model, p).engagement == Decimal("3.00")


def test_caps_limit_points_per_rule_per_window(world):
    # given 4 downloads in one 7-day window (epoch-aligned) worth 5 each, capped at 12
    p = person(world.a, phone="13800000004")
    model = scoring_model(world.a)
    engagement_rule(model, "下载", {"type": "download"}, "5", cap="12", cap_days=7)
    # 2026-11-30 12:00 UTC is in the epoch week starting Thursday 2026-11-26 00:00 UTC
    for hours in (1, 2, 3, 4):
        act(world.a, p, "download", days_ago=hours / 24)
    # and one more in the week before
    act(world.a, p, "download", days_ago=6)

    scoring_model_recompute(model=model, now=NOW)

    # then this window gives 5 + 5 + 2 + 0 and the previous one 5
    assert score_of(model, p).engagement == Decimal("17.00")
    lines = score_explain(model=model, contact=p).activity_lines
    assert sorted((line.raw, line.capped) for line in lines) == [
        (Decimal("0"), True),
        (Decimal("2"), True),
        (Decimal("5.00"), False),
        (Decimal("5.00"), False),
        (Decimal("5.00"), False),
    ]


def test_negative_points_for_job_seekers_and_unsubscribes(world):
    p = person(world.a, phone="13800000005", title="应届生 求职")
    model = scoring_model(world.a)
    fit_rule(model, "求职者", {"field": "title", "op": "contains", "value": "求职"}, "-30")
    engagement_rule(model, "退订", {"type": "unsubscribe"}, "-10")
    engagement_rule(model, "浏览", {"type": "page_view"}, "2")
    act(world.a, p, "unsubscribe", days_ago=1)
    act(world.a, p, "page_view", days_ago=1)

    scoring_model_recompute(model=model, now=NOW)

    score = score_of(model, p)
    assert (score.fit, score.engagement, score.total, score.temperature) == (
        Decimal("-30.00"),
        Decimal("-8.00"),
        Decimal("-38.00"),
        "cold",
    )


def test_engagement_matches_object_channel_and_properties(world):
    p = person(world.a, phone="13800000006")
    model = scoring_model(world.a)
    engagement_rule(
        model, "单细胞内容", {"type": "content_view", "properties": {"topic": "单细胞"}}, "4"
    )
    engagement_rule(model, "价格页", {"type": "page_view", "properties": {"url": "/pricing"}}, "6")
    engagement_rule(
        model, "表单", {"type": "form_submit", "object_type": "form", "object_id": "f1"}, "20"
    )
    act(world.a, p, "content_view", days_ago=1, properties={"topic": "单细胞", "title": "A"})
    act(world.a, p, "content_view", days_ago=1, properties={"topic": "质谱"})
    act(world.a, p, "page_view", days_ago=1, properties={"url": "/pricing"})
    act(world.a, p, "page_view", days_ago=1, properties={"url": "/about"})
    act(world.a, p, "form_submit", days_ago=1, object_type="form", object_id="f1")
    act(world.a, p, "form_submit", days_ago=1, object_type="form", object_id="f2")
    act(world.b, p, "form_submit", days_ago=1, object_type="form", object_id="f1")  # other unit

    scoring_model_recompute(model=model, now=NOW)

    assert score_of(model, p).engagement == Decimal("30.00")


def test_a_second_recompute_writes_no_history_and_a_change_writes_one_row(world):
    p = person(world.a, phone="13800000007", industry="制药")
    q = person(world.a, phone="13800000008", industry="制药")
    model = scoring_model(world.a)
    fit_rule(model, "制药", {"field": "industry", "op": "eq", "value": "制药"}, "30")
    scoring_model_recompute(model=model, now=NOW)
    assert ScoreChange.objects.filter(model=model).count() == 2

    # when nothing changed
    again = scoring_model_recompute(model=model, now=NOW)
    # then nothing is written
    assert again.changed == 0
    assert ScoreChange.objects.filter(model=model).count() == 2

    # when one contact gets an activity worth points
    engagement_rule(model, "下载", {"type": "download"}, "25")
    act(world.a, q, "download", days_ago=1)
    scoring_model_recompute(model=model, now=NOW)

    change = ScoreChange.objects.filter(model=model).order_by("-id").first()
    assert ScoreChange.objects.filter(model=model).count() == 3
    assert (change.contact_id, change.before, change.after) == (
        q.pk,
        Decimal("30.00"),
        Decimal("55.00"),
    )
    assert (change.temperature_before, change.temperature_after, change.reason) == (
        "warm",
        "hot",
        "recompute",
    )
    assert score_of(model, p).total == Decimal("30.00")


def test_contacts_of_other_units_and_merged_contacts_are_not_scored(world):
    mine = person(world.a, phone="13800000009")
    theirs = person(world.b, phone="13800000010")
    model = scoring_model(world.a)
    fit_rule(model, "任何人", {"field": "name", "op": "empty"}, "1")
    scoring_model_recompute(model=model, now=NOW)
    assert set(ContactScore.objects.filter(model=model).values_list("contact_id", flat=True)) == {
        mine.pk
    }

    # when the contact stops being active, its score is removed on the next recompute
    Contact.objects.filter(pk=mine.pk).update(status="erased")
    result = scoring_model_recompute(model=model, now=NOW)

    assert result.removed == 1
    assert not ContactScore.objects.filter(model=model).exists()
    assert theirs.pk  # never scored


def test_incremental_recompute_equals_full_for_the_changed_contacts(world):
    people = [person(world.a, phone=f"1380000002{i}", industry="制药") for i in range(4)]
    model = scoring_model(world.a, half_life_days=7)
    fit_rule(model, "制药", {"field": "industry", "op": "eq", "value": "制药"}, "10")
    engagement_rule(model, "下载", {"type": "download"}, "6", cap="12", cap_days=30)
    scoring_model_recompute(model=model, now=NOW)

    # when two of them act and only they are recomputed incrementally
    for p in people[:2]:
        for d in (1, 2, 3):
            act(world.a, p, "download", days_ago=d)
    scores_recompute_for(contact_ids=[people[0].pk, people[1].pk], now=NOW)
    incremental = dict(ContactScore.objects.filter(model=model).values_list("contact_id", "total"))
    history = ScoreChange.objects.filter(model=model, reason="activity").count()

    # then a full recompute at the same now changes nothing more
    full = scoring_model_recompute(model=model, now=NOW)
    assert full.changed == 0
    assert dict(ContactScore.objects.filter(model=model).values_list("contact_id", "total")) == (
        incremental
    )
    assert history == 2
    assert incremental[people[0].pk] == incremental[people[1].pk]
    assert incremental[people[2].pk] == Decimal("10.00")


def test_a_superseded_recompute_stops_between_batches(world):
    people = [person(world.a, phone=f"1380000003{i}") for i in range(5)]
    model = scoring_model(world.a, bands=[{"min": 0, "temperature": "warm"}])
    fit_rule(model, "任何人", {"field": "name", "op": "empty"}, "1")

    def edit_meanwhile(scored_model, transitions):
        # the model is edited while the first batch runs
        ScoringModel.objects.filter(pk=scored_model.pk).update(version=scored_model.version + 1)

    register_score_band_hook("test-edit", edit_meanwhile)
    try:
        ids = sorted(p.pk for p in people)
        # one contact id per batch
        result = scoring_model_recompute(model=model, now=NOW, batch_size=1)
    finally:
        unregister_score_band_hook("test-edit")

    assert result.superseded is True
    assert result.batches == 1
    scored = set(ContactScore.objects.filter(model=model).values_list("contact_id", flat=True))
    assert scored == {ids[0]}
    model.refresh_from_db()
    assert model.recompute_status == "running"  # left to the newer version's job


def test_band_hooks_get_the_temperature_transitions(world):
    p = person(world.a, phone="13800000041", industry="制药")
    q = person(world.a, phone="13800000042")
    model = scoring_model(world.a)
    fit_rule(model, "制药", {"field": "industry", "op": "eq", "value": "制药"}, "25")
    calls = []
    register_score_band_hook("test-bands", lambda m, t: calls.append((m.pk, t)))
    try:
        scoring_model_recompute(model=model, now=NOW)
        engagement_rule(model, "表单", {"type": "form_submit"}, "30")
        act(world.a, p, "form_submit", days_ago=0)
        scoring_model_recompute(model=model, now=NOW)
        scoring_model_recompute(model=model, now=NOW)
    finally:
        unregister_score_band_hook("test-bands")

    # then the first run reports p becoming warm (q stays cold: not a transition), the
    # second p becoming hot, the third nothing
    assert calls == [(model.pk, [(p.pk, None, "warm")]), (model.pk, [(p.pk, "warm", "hot")])]
    assert score_of(model, q).temperature == "cold"


def test_a_fit_rule_whose_custom_field_was_removed_is_skipped_not_fatal(world):
    from apps.contacts.models import CustomField

    p = person(world.a, phone="13800000051", industry="制药")
    field = CustomField.objects.create(unit=world.a, key="tier", label="客户类型", type="text")
    model = scoring_model(world.a)
    fit_rule(model, "制药", {"field": "industry", "op": "eq", "value": "制药"}, "10")
    fit_rule(model, "旧字段", {"custom": field.pk, "op": "eq", "value": "ka"}, "50")
    field.delete()

    scoring_model_recompute(model=model, now=NOW)

    assert score_of(model, p).total == Decimal("10.00")
    assert [line.rule for line in score_explain(model=model, contact=p).fit_lines] == ["制药"]


def test_batches_read_engagement_summed_once_and_agree_with_one_batch(world):
    # given five contacts with capped, negative and decayed activities
    people = [person(world.a, phone=f"1380000006{i}", industry="制药") for i in range(5)]
    model = scoring_model(world.a, half_life_days=10)
    fit_rule(model, "制药", {"field": "industry", "op": "eq", "value": "制药"}, "10")
    engagement_rule(model, "浏览", {"type": "page_view"}, "3", cap="7", cap_days=7)
    engagement_rule(model, "退订", {"type": "unsubscribe"}, "-4")
    for i, p in enumerate(people):
        for d in range(i + 1):
            act(world.a, p, "page_view", days_ago=d / 3)
        if i % 2:
            act(world.a, p, "unsubscribe", days_ago=i)

    # when the model is recomputed one contact per batch (engagement summed beforehand)
    result = scoring_model_recompute(model=model, now=NOW, batch_size=1)
    per_batch = dict(ContactScore.objects.filter(model=model).values_list("contact_id", "total"))

    # then the totals are those of one batch over everyone (which changes nothing), and
    # each one is what its explanation adds up to
    assert result.batches >= 5
    assert result.changed == 5
    assert scoring_model_recompute(model=model, now=NOW).changed == 0
    assert len(per_batch) == 5
    for p in people:
        explained = score_explain(model=model, contact=p)
        assert explained.total == per_batch[p.pk]
    assert per_batch[people[0].pk] == Decimal("13.00")  # 10 + 3 (one view, today)
    # 4 views within a day, oldest first: 3 + 3 + 1 (cap 7) + 0, decayed 2.80 + 2.86 + 0.98;
    # an unsubscribe 3 days ago: -4 × 0.5^0.3 = -3.25; fit 10
    assert per_batch[people[3].pk] == Decimal("13.39")
