"""A form that opens leads: each processed submission opens (or joins) a lead in the form's
unit at the form's temperature; other forms open none."""

from __future__ import annotations

import pytest

from apps.content.models import Form
from apps.content.services.submissions import submissions_process
from apps.sales.models import Lead, LeadHistory
from tests.content.test_forms import make_form
from tests.content.test_forms_processing import store

pytestmark = pytest.mark.django_db

FIELDS = [
    {"key": "name", "required": True},
    {"key": "phone", "required": True},
    {"key": "company_name"},
]


def test_a_trial_request_form_opens_a_hot_lead_once(world):
    # Given a form set to open hot leads
    form = make_form(world.a, FIELDS)
    Form.objects.filter(pk=form.pk).update(opens_lead="hot", name="试用申请")
    form.refresh_from_db()
    # When the same person submits it twice
    first = store(form)
    submissions_process([first.pk])
    second = store(form)
    submissions_process([second.pk])
    # Then one lead, hot, from the form, with the form named in its first history row
    lead = Lead.objects.get()
    assert (lead.unit_id, lead.source, lead.temperature, lead.stage) == (
        world.a.pk,
        "form",
        "hot",
        "mil",
    )
    assert lead.contact.name == "李雷"
    assert list(LeadHistory.objects.filter(lead=lead).values_list("to_value", "reason")) == [
        ("mil", "Form “试用申请”")
    ]


def test_a_form_that_does_not_open_leads_opens_none(world):
    form = make_form(world.a, FIELDS)
    submissions_process([store(form).pk])
    assert Lead.objects.count() == 0
