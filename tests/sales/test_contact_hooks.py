"""What sales hooks into contacts: the 360 leads panel, merges (leads follow the person;
two open leads in one unit keep the kept contact's), undo, export/erase and retention."""

from __future__ import annotations

import pytest

from apps.contacts.hooks import retention_guards, subject_exporters
from apps.contacts.models import Contact, ContactUnit
from apps.contacts.services.merge import contact_merge, contact_merge_undo
from apps.sales.models import FollowUp, Lead, LeadHistory, Opportunity, Stage
from apps.sales.services import leads as services

pytestmark = pytest.mark.django_db
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def _contact(world, name):
    return Contact.objects.create(group=world.group, name=name, company_name="华东生物")


def _lead(world, contact, unit):
    return services.lead_open(contact=contact, unit=unit, source="manual", actor=world.sdr).lead


def test_the_contact_page_lists_the_persons_leads_in_units_the_user_sees(world, client):
    person = _contact(world, "王磊")
    ContactUnit.objects.create(contact=person, unit=world.a, source="test")
    in_a = _lead(world, person, world.a)
    _lead(world, person, world.b)
    client.force_login(world.marketer)

    page = client.get(f"/console/contacts/{person.pk}/", **EN)

    assert page.status_code == 200
    panel = next(p for p in page.context["panels"] if p.name == "sales.leads")
    assert [lead.pk for lead in panel.context["rows"]] == [in_a.pk]
    assert f'href="/console/leads/{in_a.pk}/"' in page.text
    assert "B 事业部" not in panel.context["rows"][0].unit.name


def test_merging_moves_leads_and_closes_the_dropped_duplicate_in_the_same_unit(world):
    kept, dropped = _contact(world, "王磊"), _contact(world, "王磊 (dup)")
    kept_a = _lead(world, kept, world.a)
    dup_a = _lead(world, dropped, world.a)
    only_b = _lead(world, dropped, world.b)
    opportunity = Opportunity.objects.create(unit=world.a, name="测序平台", contact=dropped)

    merge = contact_merge(kept=kept, dropped=dropped, acting_user=world.admin)

    for lead in (kept_a, dup_a, only_b):
        lead.refresh_from_db()
    assert (kept_a.contact_id, kept_a.is_open) == (kept.pk, True)
    assert (dup_a.contact_id, dup_a.stage, dup_a.is_open, dup_a.reason) == (
        kept.pk,
        Stage.DISQUALIFIED,
        False,
        "merged duplicate",
    )
    assert (only_b.contact_id, only_b.is_open) == (kept.pk, True)
    step = LeadHistory.objects.filter(lead=dup_a, kind="stage").order_by("-id").first()
    assert (step.to_value, step.reason, step.actor_label) == (
        "disqualified",
        "merged duplicate",
        "merge",
    )
    assert Lead.objects.filter(contact=kept, unit=world.a, is_open=True).count() == 1
    opportunity.refresh_from_db()
    assert opportunity.contact_id == kept.pk
    assert merge.snapshot["hooks"]["sales"]["closed"][0]["id"] == dup_a.pk


def test_undoing_the_merge_moves_the_leads_back_and_reopens_the_duplicate(world):
    kept, dropped = _contact(world, "王磊"), _contact(world, "王磊 (dup)")
    kept_a = _lead(world, kept, world.a)
    dup_a = _lead(world, dropped, world.a)
    stage_before = dup_a.stage
    merge = contact_merge(kept=kept, dropped=dropped, acting_user=world.admin)

    contact_merge_undo(merge=merge, acting_user=world.admin)

    dup_a.refresh_from_db()
    kept_a.refresh_from_db()
    assert (dup_a.contact_id, dup_a.stage, dup_a.is_open, dup_a.closed_at) == (
        dropped.pk,
        stage_before,
        True,
        None,
    )
    assert (kept_a.contact_id, kept_a.is_open) == (kept.pk, True)
    last = LeadHistory.objects.filter(lead=dup_a).order_by("-id").first()
    assert (last.from_value, last.to_value, last.reason) == (
        "disqualified",
        stage_before,
        "merge undone",
    )


def test_the_export_holds_the_leads_and_erasure_blanks_what_people_wrote(world):
    person = _contact(world, "王磊")
    lead = _lead(world, person, world.a)
    Lead.objects.filter(pk=lead.pk).update(need="想要单细胞测序, 电话 13800000000")
    FollowUp.objects.create(
        lead=lead, unit=world.a, user=world.sdr, kind="call", note="他妻子接的电话"
    )

    exported = subject_exporters()["sales"](person.pk)

    assert exported["leads"][0]["need"] == "想要单细胞测序, 电话 13800000000"
    assert exported["leads"][0]["follow_ups"][0]["note"] == "他妻子接的电话"
    from apps.contacts.hooks import subject_erasers

    subject_erasers()["sales"](person.pk)
    lead.refresh_from_db()
    assert lead.need == ""
    assert FollowUp.objects.get(lead=lead).note == ""
    assert Lead.objects.filter(pk=lead.pk).exists()


def test_a_contact_with_an_open_lead_keeps_their_pii(world):
    working, closed, none = (_contact(world, n) for n in ("甲", "乙", "丙"))
    _lead(world, working, world.a)
    gone = _lead(world, closed, world.a)
    Lead.objects.filter(pk=gone.pk).update(is_open=False, stage="disqualified")

    protected = set()
    for guard in retention_guards():
        protected |= guard([working.pk, closed.pk, none.pk])

    assert protected == {working.pk}
