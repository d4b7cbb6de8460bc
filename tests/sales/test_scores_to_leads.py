"""The scoring engine's band hook: a contact who turns hot gets a lead routed to an SDR;
an open lead follows its contact's temperature and score."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from apps.contacts.models import Contact, Identity
from apps.nurture.hooks import score_band_hooks
from apps.nurture.models import ContactScore, ScoringModel
from apps.sales import tasks
from apps.sales.models import AssignmentRule, Lead, LeadHistory
from apps.sales.services import scores


def _scored(world, model, name, total, temperature):
    contact = Contact.objects.create(group=world.group, name=name, company_name="华东生物")
    Identity.objects.create(
        group=world.group, contact=contact, kind="email", value=f"{contact.pk}@example.cn"
    )
    ContactScore.objects.create(
        model=model,
        contact=contact,
        fit=Decimal(10),
        engagement=Decimal(total) - 10,
        total=Decimal(total),
        temperature=temperature,
        computed_at=timezone.now(),
    )
    return contact


@pytest.mark.django_db
def test_a_contact_turning_hot_gets_a_scoring_lead_a_warm_one_does_not(world):
    # Given a unit's scoring model, an SDR rule, one contact now hot and one now warm
    model = ScoringModel.objects.create(unit=world.a, name="默认模型")
    AssignmentRule.objects.create(unit=world.a, name="SDR", role="sdr", user=world.sdr)
    hot = _scored(world, model, "王磊", "72.50", "hot")
    warm = _scored(world, model, "李娜", "30", "warm")
    # When the band changes reach sales
    opened = scores.leads_from_scores(
        unit_id=world.a.pk,
        model_id=model.pk,
        changes=[[hot.pk, "warm", "hot"], [warm.pk, "cold", "warm"]],
    )
    # Then one lead opens for the hot contact, from scoring, hot, with its score, routed
    assert opened == 1
    lead = Lead.objects.get()
    assert (lead.contact_id, lead.source, lead.temperature, lead.score, lead.sdr_id) == (
        hot.pk,
        "scoring",
        "hot",
        Decimal("72.50"),
        world.sdr.pk,
    )
    assert LeadHistory.objects.get(lead=lead, kind="stage").reason == "Score reached hot"
    # When the same change is delivered again (a retried task)
    again = scores.leads_from_scores(
        unit_id=world.a.pk, model_id=model.pk, changes=[[hot.pk, "warm", "hot"]]
    )
    # Then nothing new opens
    assert again == 0
    assert Lead.objects.count() == 1


@pytest.mark.django_db
def test_an_open_lead_follows_its_contacts_temperature_and_score(world):
    model = ScoringModel.objects.create(unit=world.a, name="默认模型")
    contact = _scored(world, model, "王磊", "72", "hot")
    scores.leads_from_scores(
        unit_id=world.a.pk, model_id=model.pk, changes=[[contact.pk, None, "hot"]]
    )
    # When the contact cools to warm and the score drops
    ContactScore.objects.filter(contact=contact).update(total=Decimal("35"), temperature="warm")
    opened = scores.leads_from_scores(
        unit_id=world.a.pk, model_id=model.pk, changes=[[contact.pk, "hot", "warm"]]
    )
    # Then the open lead follows (no new lead)
    assert opened == 0
    assert list(Lead.objects.values_list("temperature", "score")) == [("warm", Decimal("35.00"))]
    # But a lead marked high-value keeps that mark
    Lead.objects.update(temperature="high_value")
    scores.leads_from_scores(
        unit_id=world.a.pk, model_id=model.pk, changes=[[contact.pk, "warm", "cold"]]
    )
    assert list(Lead.objects.values_list("temperature", flat=True)) == ["high_value"]


@pytest.mark.django_db
def test_an_inactive_unit_or_contact_opens_nothing(world):
    model = ScoringModel.objects.create(unit=world.a, name="默认模型")
    gone = _scored(world, model, "王磊", "90", "hot")
    Contact.objects.filter(pk=gone.pk).update(status="erased")
    assert (
        scores.leads_from_scores(
            unit_id=world.a.pk, model_id=model.pk, changes=[[gone.pk, "warm", "hot"]]
        )
        == 0
    )
    assert Lead.objects.count() == 0


@pytest.mark.django_db
def test_the_band_hook_is_registered_and_queues_the_work_on_commit(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    # Given the sales hook registered with the scoring engine
    assert scores.score_band_hook in score_band_hooks()
    model = ScoringModel.objects.create(unit=world.a, name="默认模型")
    queued = []
    monkeypatch.setattr(tasks.leads_from_scores, "delay", lambda *a: queued.append(a))
    # When the engine reports transitions inside its transaction
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        scores.score_band_hook(model, [(7, None, "hot"), (8, "hot", "warm")])
        scores.score_band_hook(model, [])
    # Then nothing is queued before the commit, and one task after it
    assert queued == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert queued == [(world.a.pk, model.pk, [[7, None, "hot"], [8, "hot", "warm"]])]
