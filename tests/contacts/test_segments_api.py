"""Segments API: CRUD with node-path errors, preview, rebuild, members, static lists, sizes,
and scoping (another unit's segment is 404)."""

from __future__ import annotations

import pytest

from apps.contacts.identity_keys import make_key
from apps.contacts.models import Segment, SegmentMember, SegmentStatus
from apps.contacts.services import segments as services
from apps.contacts.services.resolution import contact_resolve
from apps.core.models import AuditLog
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")
BIO = {"field": "industry", "op": "eq", "value": "生物医药"}


def _contact(unit, phone, **attributes):
    return contact_resolve(
        unit=unit,
        keys=[make_key("phone", phone)],
        attributes=attributes,
        source="api",
        acting_user=SYSTEM,
    ).contact


@pytest.fixture
def bio(world):
    return [
        _contact(world.a, f"1380000000{i}", name=f"张{i}", company_name="华兰", industry="生物医药")
        for i in range(3)
    ] + [_contact(world.a, "13800000009", industry="钢铁")]


def test_api_creates_updates_and_archives_a_segment_with_audit(api, world):
    # given a marketer of unit A
    api.force_authenticate(world.marketer)

    # when they create, rename with a new definition, and delete a segment
    created = api.post(
        "/api/v1/segments/", {"unit": world.a.pk, "name": "生物医药", "definition": BIO}
    )
    pk = created.json()["id"]
    changed = api.patch(
        f"/api/v1/segments/{pk}/",
        {"name": "生物医药客户", "definition": {"all": [BIO, {"has_identity": "phone"}]}},
    )
    deleted = api.delete(f"/api/v1/segments/{pk}/")

    # then each step answered and left its audit row; the segment is archived, not gone
    assert created.status_code == 201
    assert created.json()["status"] == "queued"
    assert changed.status_code == 200
    assert (changed.json()["name"], changed.json()["version"]) == ("生物医药客户", 2)
    assert deleted.status_code == 204
    segment = Segment.objects.get(pk=pk)
    assert (segment.is_active, segment.version) == (False, 2)
    assert list(
        AuditLog.objects.filter(object_id=str(pk)).order_by("id").values_list("action", flat=True)
    ) == ["segment.create", "segment.update", "segment.archive"]


def test_api_a_bad_definition_is_400_naming_the_node_and_nothing_is_stored(api, world):
    api.force_authenticate(world.marketer)

    response = api.post(
        "/api/v1/segments/",
        {
            "unit": world.a.pk,
            "name": "坏",
            "definition": {"all": [BIO, {"field": "id; DROP TABLE", "op": "eq", "value": "1"}]},
        },
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["definition"][0].startswith(
        "all[1].field: unknown field 'id; DROP TABLE'"
    )
    assert Segment.objects.count() == 0


def test_api_preview_counts_samples_and_costs(api, world, bio):
    api.force_authenticate(world.marketer)

    response = api.post(
        "/api/v1/segments/preview",
        {"unit": world.a.pk, "definition": BIO, "editor": "tab-1"},
    )

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert [row["id"] for row in body["sample"]] == sorted((c.pk for c in bio[:3]), reverse=True)
    assert body["sample"][0] == {"id": bio[2].pk, "name": "张2", "company": "华兰"}
    assert body["cost"] > 0
    assert (body["timed_out"], body["cancelled"]) == (False, False)
    assert Segment.objects.count() == 0


def test_api_preview_of_a_bad_definition_is_400_with_paths(api, world):
    api.force_authenticate(world.marketer)

    response = api.post(
        "/api/v1/segments/preview",
        {"unit": world.a.pk, "definition": {"any": [BIO, {"all": []}]}},
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["definition"] == [
        "any[1].all: expected a non-empty list of conditions"
    ]


def test_api_preview_of_another_units_definition_is_refused(api, world):
    api.force_authenticate(world.b_marketer)

    response = api.post("/api/v1/segments/preview", {"unit": world.a.pk, "definition": BIO})

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["unit"]


def test_api_rebuild_queues_and_members_are_keyset_paged(api, world, bio):
    segment = services.segment_create(
        unit=world.a, name="生物医药", definition=BIO, acting_user=SYSTEM
    )
    services.segment_rebuild(segment_id=segment.pk)
    api.force_authenticate(world.marketer)

    rebuilt = api.post(f"/api/v1/segments/{segment.pk}/rebuild/")
    first = api.get(f"/api/v1/segments/{segment.pk}/members/?page_size=2")
    second = api.get(first.json()["next"])
    sizes = api.get(f"/api/v1/segments/{segment.pk}/sizes/")

    assert rebuilt.status_code == 200
    assert rebuilt.json()["status"] == SegmentStatus.QUEUED
    assert AuditLog.objects.filter(action="segment.rebuild").count() == 1
    names = [row["name"] for row in first.json()["results"] + second.json()["results"]]
    assert names == ["张0", "张1", "张2"]
    assert [(r["size"], r["entered"]) for r in sizes.json()["results"]] == [(3, 3)]


def test_api_static_list_add_and_remove(api, world, bio):
    api.force_authenticate(world.marketer)
    pk = api.post(
        "/api/v1/segments/", {"unit": world.a.pk, "name": "名单", "kind": "static"}
    ).json()["id"]

    added = api.post(f"/api/v1/segments/{pk}/members/add/", {"contacts": [bio[0].pk, bio[1].pk]})
    removed = api.post(f"/api/v1/segments/{pk}/members/remove/", {"contacts": [bio[0].pk]})
    bad = api.post(f"/api/v1/segments/{pk}/members/add/", {"contacts": ["x"]})

    assert (added.json(), removed.json()) == ({"changed": 2}, {"changed": 1})
    assert bad.status_code == 400
    assert list(SegmentMember.objects.values_list("contact_id", flat=True)) == [bio[1].pk]


def test_api_another_units_segment_is_404_and_a_viewer_cannot_write(api, world):
    segment = services.segment_create(unit=world.a, name="A 的", definition=BIO, acting_user=SYSTEM)
    api.force_authenticate(world.b_marketer)
    assert api.get(f"/api/v1/segments/{segment.pk}/").status_code == 404
    assert api.get(f"/api/v1/segments/{segment.pk}/members/").status_code == 404
    assert api.post(f"/api/v1/segments/{segment.pk}/rebuild/").status_code == 404
    assert api.delete(f"/api/v1/segments/{segment.pk}/").status_code == 404

    api.force_authenticate(world.sdr)  # may read segments, not change them
    assert api.get(f"/api/v1/segments/{segment.pk}/").status_code == 200
    assert api.post(f"/api/v1/segments/{segment.pk}/rebuild/").status_code == 403
    segment.refresh_from_db()
    assert (segment.is_active, segment.name) == (True, "A 的")


def test_a_newer_preview_of_the_same_editor_cancels_the_older_one_still_running(world, bio):
    # given an older preview of editor "tab-9" still running on another connection
    import threading
    import time

    from django.core.cache import cache
    from django.db import OperationalError, connection, connections

    from apps.contacts.selectors import segments as selectors

    marker = "segment-preview older"
    started, outcome = threading.Event(), {}

    def older():
        conn = connections.create_connection("default")
        try:
            with conn.cursor() as cursor:
                outcome["pid"] = conn.connection.info.backend_pid
                started.set()
                cursor.execute(f"/* {marker} */ SELECT pg_sleep(5)")
            outcome["result"] = "finished"
        except OperationalError:
            outcome["result"] = "cancelled"
        finally:
            conn.close()

    thread = threading.Thread(target=older)
    thread.start()
    started.wait(5)
    for _ in range(50):  # until the sleep is visibly running
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND state = 'active'",
                [outcome["pid"]],
            )
            if cursor.fetchone()[0]:
                break
        time.sleep(0.05)
    cache.set(f"segment-preview:{world.marketer.pk}:tab-9", (outcome["pid"], marker), 60)

    # when the same editor asks for a newer preview
    began = time.monotonic()
    preview = selectors.segment_preview(
        user=world.marketer, unit=world.a, definition=BIO, editor="tab-9"
    )
    thread.join(5)

    # then the older one was cancelled at once and the newer one answered
    assert outcome["result"] == "cancelled"
    assert time.monotonic() - began < 3
    assert preview.count == 3
    assert cache.get(f"segment-preview:{world.marketer.pk}:tab-9") is None


def test_api_preview_answers_with_a_trailing_slash_too(api, world, bio):
    api.force_authenticate(world.marketer)

    response = api.post("/api/v1/segments/preview/", {"unit": world.a.pk, "definition": BIO})

    assert response.status_code == 200
    assert response.json()["count"] == 3


def test_a_preview_that_takes_too_long_says_so_instead_of_failing(api, world, bio, monkeypatch):
    # given a preview whose count query is slower than the (shortened) timeout
    from apps.contacts.models import Contact
    from apps.contacts.selectors import segments as selectors

    monkeypatch.setattr(selectors, "PREVIEW_TIMEOUT_MS", 50)
    slow = Contact.objects.extra(where=["pg_sleep(0.2) IS NOT NULL"])
    monkeypatch.setattr(selectors.tag_rules, "rule_matches", lambda *a, **k: slow)
    api.force_authenticate(world.marketer)

    # when it is asked for
    response = api.post(
        "/api/v1/segments/preview", {"unit": world.a.pk, "definition": BIO, "editor": "t"}
    )

    # then the answer says it timed out, with the planner's cost and no count
    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["sample"], body["timed_out"], body["cancelled"]) == (
        None,
        [],
        True,
        False,
    )
    assert body["cost"] > 0
