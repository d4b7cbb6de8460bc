"""An import that opens leads: each batch queues its contacts once committed; the task
opens one lead per contact (dedup as always)."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.exceptions import ValidationError

from apps.contacts.models import Contact, ContactImport
from apps.sales.models import Lead
from apps.sales.services import intake
from tests.contacts.test_imports import MAPPING, _media_and_language, csv_bytes, run_import, upload  # noqa: F401

pytestmark = pytest.mark.django_db

ROWS = [
    ["王磊", "13800138000", "wl@hx.cn", "华星", "经理", "上海"],
    ["李娜", "13900139000", "ln@hx.cn", "华星", "总监", "北京"],
]


def test_an_import_that_opens_hot_leads(world):
    # Given an import of two people set to open hot leads
    # (the hook queues a task on commit; tests roll back, so we watch the hook instead)
    from apps.contacts import hooks

    hook = mock.Mock(wraps=intake.import_hook)
    with mock.patch.object(hooks, "_IMPORT_HOOKS", {"sales.leads": hook}):
        run_import(world.a, world.marketer, csv_bytes(ROWS), opens_lead="hot")
    # Then the batch went to sales with both contacts
    (unit_id, contact_ids, temperature, import_id), _kw = hook.call_args
    assert (unit_id, temperature, sorted(contact_ids)) == (
        world.a.pk,
        "hot",
        sorted(Contact.objects.values_list("id", flat=True)),
    )
    # When the task runs (twice: a retried task)
    opened = intake.leads_from_import(
        unit_id=unit_id, contact_ids=contact_ids, temperature="hot", import_id=import_id
    )
    again = intake.leads_from_import(
        unit_id=unit_id, contact_ids=contact_ids, temperature="hot", import_id=import_id
    )
    # Then two hot leads from the import, once
    assert (opened, again) == (2, 0)
    assert sorted(Lead.objects.values_list("contact__name", "source", "temperature")) == [
        ("李娜", "import", "hot"),
        ("王磊", "import", "hot"),
    ]


def test_an_unknown_lead_temperature_is_refused_and_nothing_starts(world):
    from apps.contacts.services import imports

    draft = upload(world.a, world.marketer, csv_bytes(ROWS))
    with pytest.raises(ValidationError) as refused:
        imports.contact_import_start(
            contact_import=draft, mapping=MAPPING, acting_user=world.marketer, opens_lead="boiling"
        )
    assert refused.value.message_dict["opens_lead"] == [
        "Open leads: use warm, hot or leave it empty."
    ]
    draft.refresh_from_db()
    assert (draft.status, draft.opens_lead, Lead.objects.count()) == ("pending", "", 0)
    assert ContactImport.objects.count() == 1
