"""The CRM link, inbound: updates stored first (202), applied once by the task, replays
answered from the stored row; and Idempotency-Key under concurrency."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from rest_framework.test import APIClient

from apps.core.models import User
from apps.sales.models import CrmInbound, FollowUp, LeadHistory, Opportunity
from apps.sales.services import crm
from apps.sales.services import leads as services
from tests.sales.test_api import make_lead, qualified, sql_lead

UPDATES = "/api/v1/crm/updates/"


def status_update(world, event_id="evt-1", external_id="SF-1", stage="disqualified", **data):
    return {
        "unit": world.a.pk,
        "event_id": event_id,
        "kind": "lead_status",
        "external_id": external_id,
        "data": {"stage": stage, "reason": "CRM: 重复客户", **data},
    }


def crm_lead(world, external_id="SF-1", **kwargs):
    lead = make_lead(world, **kwargs)
    lead.external_id = external_id
    lead.save()
    return lead


@pytest.mark.django_db
def test_an_update_is_stored_first_then_applied_once(world, api):
    lead = crm_lead(world)
    api.force_authenticate(world.sales_manager)

    # When the CRM posts a status update
    response = api.post(UPDATES, status_update(world), format="json")

    # Then it is stored and answered 202 before anything changes
    assert response.status_code == 202
    row = CrmInbound.objects.get()
    assert (response.json()["id"], response.json()["status"]) == (row.pk, "pending")
    lead.refresh_from_db()
    assert lead.stage == "mil"
    # When the task runs (twice: a redelivered message)
    assert crm.crm_inbound_process(row.pk) == "done"
    assert crm.crm_inbound_process(row.pk) == ""
    # Then the move happened once, by the sender, with the CRM's reason
    lead.refresh_from_db()
    assert lead.stage == "disqualified"
    step = LeadHistory.objects.filter(lead=lead, kind="stage").order_by("-id").first()
    assert (step.to_value, step.actor, step.reason) == (
        "disqualified",
        world.sales_manager,
        "CRM: 重复客户",
    )
    assert LeadHistory.objects.filter(lead=lead, to_value="disqualified").count() == 1
    shown = api.get(f"{UPDATES}{row.pk}/").json()
    assert (shown["status"], shown["message"]) == ("done", "")
    assert shown["result"]["changed"] is True


@pytest.mark.django_db
def test_the_crm_sends_with_its_api_token(world):
    from apps.core import services as core

    lead = crm_lead(world)
    token, raw = core.api_token_create(
        user=world.sales_manager, name="Salesforce", acting_user=world.sales_manager
    )
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en", HTTP_AUTHORIZATION=f"Bearer {raw}")

    response = client.post(UPDATES, status_update(world), format="json")
    crm.crm_inbound_process(response.json()["id"])

    assert response.status_code == 202
    assert CrmInbound.objects.get().token_id == token.pk
    lead.refresh_from_db()
    assert lead.stage == "disqualified"
    assert client.get(f"{UPDATES}{response.json()['id']}/").json()["status"] == "done"
    anonymous = APIClient(HTTP_ACCEPT_LANGUAGE="en").post(
        UPDATES, status_update(world), format="json"
    )
    assert anonymous.status_code == 401


@pytest.mark.django_db
def test_a_replay_is_answered_from_the_row_and_a_different_body_is_409(world, api):
    lead = crm_lead(world)
    api.force_authenticate(world.sales_manager)
    first = api.post(UPDATES, status_update(world), format="json")
    crm.crm_inbound_process(first.json()["id"])
    history = LeadHistory.objects.count()

    replay = api.post(UPDATES, status_update(world), format="json")
    changed = api.post(UPDATES, status_update(world, stage="recycled"), format="json")

    assert replay.status_code == 200
    assert (replay.json()["id"], replay.json()["status"]) == (first.json()["id"], "done")
    assert changed.status_code == 409
    assert changed.json()["error"]["message"] == (
        "Event evt-1 was already received with a different body. Send a new event_id for "
        "a new update."
    )
    assert CrmInbound.objects.count() == 1
    assert LeadHistory.objects.count() == history
    lead.refresh_from_db()
    assert lead.stage == "disqualified"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown id", "No lead of this unit has CRM id “SF-404”."),
        ("other unit", "No lead of this unit has CRM id “SF-B”."),
        ("other unit by our id", None),
        ("illegal move", "A lead cannot move from MIL · identified to SQL · sales-qualified."),
        ("no stage", "“” is not a stage."),
    ],
)
def test_what_cannot_be_applied_is_stored_as_rejected_with_the_reason(world, api, case, message):
    crm_lead(world)
    b_lead = crm_lead(world, external_id="SF-B", unit=world.b, name="乙")
    body = {
        "unit": world.a.pk,
        "event_id": "evt-x",
        "kind": "lead_status",
        "external_id": "SF-1",
        "data": {"stage": "sql"},
    }
    if case == "unknown id":
        body["external_id"] = "SF-404"
        body["data"] = {"stage": "recycled", "reason": "x"}
    elif case == "other unit":
        body["external_id"] = "SF-B"
    elif case == "other unit by our id":
        del body["external_id"]
        body["lead"] = b_lead.pk
        message = f"No lead {b_lead.pk} in this unit."
    elif case == "no stage":
        body["data"] = {}
    history = LeadHistory.objects.count()
    api.force_authenticate(world.sales_manager)

    row_id = api.post(UPDATES, body, format="json").json()["id"]
    crm.crm_inbound_process(row_id)
    shown = api.get(f"{UPDATES}{row_id}/").json()

    assert shown["status"] == "rejected"
    assert shown["message"].startswith(message)
    assert LeadHistory.objects.count() == history


@pytest.mark.django_db
def test_a_unit_the_sender_may_not_configure_is_a_400_and_nothing_is_stored(world, api):
    crm_lead(world)
    api.force_authenticate(world.sdr)  # works leads, does not run the CRM link

    response = api.post(UPDATES, status_update(world), format="json")

    assert response.status_code == 400
    assert "unit" in response.json()["error"]["fields"]
    assert CrmInbound.objects.count() == 0


@pytest.mark.django_db
def test_another_units_update_is_404(world, api):
    row = CrmInbound.objects.create(
        unit=world.b, event_id="e", kind="lead_status", payload={}, body_hash="x"
    )
    api.force_authenticate(world.sales_manager)

    assert api.get(f"{UPDATES}{row.pk}/").status_code == 404
    assert api.get(UPDATES).json()["results"] == []


@pytest.mark.django_db
def test_an_opportunity_update_opens_then_wins(world, api):
    lead = sql_lead(world)
    api.force_authenticate(world.sales_manager)
    opened = api.post(
        UPDATES,
        {
            "unit": world.a.pk,
            "event_id": "o-1",
            "kind": "opportunity",
            "external_id": "OPP-7",
            "lead": lead.pk,
            "data": {"name": "测序平台", "amount": "300000"},
        },
        format="json",
    )
    won = api.post(
        UPDATES,
        {
            "unit": world.a.pk,
            "event_id": "o-2",
            "kind": "opportunity",
            "external_id": "OPP-7",
            "data": {"stage": "won"},
        },
        format="json",
    )

    assert crm.crm_inbound_process(opened.json()["id"]) == "done"
    assert crm.crm_inbound_process(won.json()["id"]) == "done"
    opp = Opportunity.objects.get()
    assert (opp.external_id, opp.stage, opp.amount) == ("OPP-7", "won", 300000)
    lead.refresh_from_db()
    assert lead.stage == "customer"


@pytest.mark.django_db
def test_the_sweep_applies_rows_the_task_missed(world, api):
    import datetime as dt

    from django.utils import timezone

    lead = crm_lead(world)
    api.force_authenticate(world.sales_manager)
    row_id = api.post(UPDATES, status_update(world), format="json").json()["id"]

    assert crm.crm_inbound_sweep() == 0  # too fresh: the task has it
    later = timezone.now() + dt.timedelta(minutes=2)
    assert crm.crm_inbound_sweep(now=later) == 1
    assert crm.crm_inbound_sweep(now=later) == 0
    lead.refresh_from_db()
    assert lead.stage == "disqualified"
    assert CrmInbound.objects.get(pk=row_id).status == "done"


@pytest.mark.django_db
def test_a_sender_who_lost_the_role_is_rejected(world, api):
    lead = crm_lead(world)
    api.force_authenticate(world.sales_manager)
    row_id = api.post(UPDATES, status_update(world), format="json").json()["id"]
    User.objects.filter(pk=world.sales_manager.pk).update(is_active=False)

    crm.crm_inbound_process(row_id)

    assert CrmInbound.objects.get(pk=row_id).status == "rejected"
    lead.refresh_from_db()
    assert lead.stage == "mil"


@pytest.mark.django_db
def test_the_idempotency_key_works_on_crm_posts_too(world, api):
    crm_lead(world)
    api.force_authenticate(world.sales_manager)

    first = api.post(UPDATES, status_update(world), format="json", HTTP_IDEMPOTENCY_KEY="i-1")
    again = api.post(UPDATES, status_update(world), format="json", HTTP_IDEMPOTENCY_KEY="i-1")

    assert (first.status_code, again.status_code) == (202, 202)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


# --- Concurrency ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_with_one_key_run_once(world, monkeypatch):
    # Given a slow follow-up service (so two requests overlap)
    lead = qualified(world)
    real = services.follow_up_log

    def slow(**kwargs):
        time.sleep(0.5)
        return real(**kwargs)

    monkeypatch.setattr(services, "follow_up_log", slow)
    answers: list[tuple[int, str]] = []

    def post() -> None:
        client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
        client.force_authenticate(User.objects.get(pk=world.sdr.pk))
        try:
            response = client.post(
                f"/api/v1/leads/{lead.pk}/follow-ups/",
                {"kind": "call", "note": "同一通电话"},
                format="json",
                HTTP_IDEMPOTENCY_KEY="dup",
            )
            answers.append((response.status_code, response.get("Idempotent-Replayed", "")))
        finally:
            connection.close()

    # When two requests with the same key arrive at once
    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    # Then one ran and the other was answered from its record
    assert sorted(answers) == [(201, ""), (201, "true")]
    assert FollowUp.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_crm_posts_of_one_event_store_one_row(world):
    crm_lead(world)
    answers: list[int] = []
    barrier = threading.Barrier(3)

    def post() -> None:
        client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
        client.force_authenticate(User.objects.get(pk=world.sales_manager.pk))
        try:
            barrier.wait(timeout=10)
            answers.append(client.post(UPDATES, status_update(world), format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert sorted(answers) == [200, 200, 202]
    assert CrmInbound.objects.count() == 1
