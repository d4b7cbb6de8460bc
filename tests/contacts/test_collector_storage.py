"""How the collector writes: large sets of activities go by COPY and come out as the JSON
path's would; the endpoint's INSERT survives a connection the server dropped; a drain
somebody else published covers this process's batches without asking Redis again."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.contacts.collector import intake
from apps.contacts.collector.intake import (
    DRAIN_FLAG,
    dispatch_drain,
    dispatch_resume,
)
from apps.contacts.identity_keys import make_key
from apps.contacts.models import Activity, RawBatch, Site
from apps.contacts.services import activities
from apps.contacts.services.activities import COPY_MIN_ROWS, ActivityIn, activities_record
from apps.contacts.services.resolution import contact_resolve
from apps.contacts.tasks.collector import collector_sweep
from apps.core.services import SystemActor

BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
)


def _rows(world: Any, contact_id: int | None, count: int, prefix: str) -> list[ActivityIn]:
    start = timezone.now().replace(microsecond=0) + timedelta(hours=1)
    return [
        ActivityIn(
            unit_id=world.a.pk,
            type="page_view",
            occurred_at=start + timedelta(seconds=i),
            contact_id=contact_id if i % 2 else None,
            anonymous_id=f"v-{i % 7}",
            object_type="page" if i % 3 else "",
            object_id=str(i),
            # tabs, newlines, backslashes and quotes are what COPY's text format escapes
            properties={"url": f"https://www.acme.cn/{i}", "title": '白皮书\t\\ "引号"\n'},
            dedupe_key=f"{prefix}:{i}",
        )
        for i in range(count)
    ]


def _stored() -> list[tuple[Any, ...]]:
    return list(
        Activity.objects.dangerously_unscoped()
        .order_by("id")
        .values_list(
            "unit_id",
            "type",
            "occurred_at",
            "contact_id",
            "anonymous_id",
            "object_type",
            "object_id",
            "properties",
            "dedupe_key",
        )
    )


@pytest.mark.django_db
def test_a_large_set_goes_by_copy_and_lands_as_the_json_path_would(world, monkeypatch):
    # Given a contact and more rows than the COPY threshold, some already stored, some
    # twice in the set
    contact = contact_resolve(
        unit=world.a, keys=[make_key("email", "c@x.cn")], source="t", acting_user=SystemActor("t")
    ).contact
    rows = _rows(world, contact.pk, COPY_MIN_ROWS + 50, "k")
    assert activities_record(rows[:10]) == 10  # below the threshold: the JSON path
    by_json = _stored()
    copies: list[int] = []
    copy = activities._insert_by_copy
    monkeypatch.setattr(
        activities, "_insert_by_copy", lambda c, b: copies.append(len(b)) or copy(c, b)
    )

    # When the whole set, and a repeat of one row, is recorded
    created = activities_record([*rows, rows[20]])

    # Then it went by COPY, only the new rows were added, in order, with their values
    assert copies == [COPY_MIN_ROWS + 51]
    assert created == COPY_MIN_ROWS + 40
    stored = _stored()
    assert stored[:10] == by_json
    assert [s[8] for s in stored] == [f"k:{i}" for i in range(COPY_MIN_ROWS + 50)]
    expected = [
        (
            r.unit_id,
            r.type,
            r.occurred_at,
            r.contact_id,
            r.anonymous_id,
            r.object_type,
            r.object_id,
            r.properties,
            r.dedupe_key,
        )
        for r in rows
    ]
    assert stored == expected
    contact.refresh_from_db()
    assert rows[-1].contact_id == contact.pk
    assert contact.last_seen_at == rows[-1].occurred_at

    # and twice in one transaction (the staging table is dropped after each use)
    assert activities_record(_rows(world, contact.pk, COPY_MIN_ROWS, "m")) == COPY_MIN_ROWS
    assert activities_record(_rows(world, contact.pk, COPY_MIN_ROWS, "m")) == 0


@pytest.mark.django_db
def test_a_key_stored_after_the_lookup_falls_back_to_skipping_duplicates(world, monkeypatch):
    # Given rows of which one was stored by another writer after this one looked (the
    # lookup is made to miss it), and a key with a newline in it
    rows = _rows(world, None, COPY_MIN_ROWS, "r")
    rows[7] = ActivityIn(
        unit_id=world.a.pk, type="click", occurred_at=rows[7].occurred_at, dedupe_key="two\nlines"
    )
    assert activities_record(rows[5:10]) == 5
    monkeypatch.setattr(activities, "_not_stored", lambda cursor, batch: list(batch))
    staged: list[int] = []
    insert_staged = activities._insert_staged
    monkeypatch.setattr(
        activities, "_insert_staged", lambda c, b: staged.append(len(b)) or insert_staged(c, b)
    )

    # When the set is recorded
    created = activities_record(rows)

    # Then the COPY failed on the duplicate, was undone, and the staged INSERT skipped it
    assert staged == [COPY_MIN_ROWS]
    assert created == COPY_MIN_ROWS - 5
    keys = list(
        Activity.objects.dangerously_unscoped().order_by("id").values_list("dedupe_key", flat=True)
    )
    assert sorted(keys) == sorted(r.dedupe_key for r in rows)
    assert len(keys) == COPY_MIN_ROWS


@pytest.mark.django_db
def test_a_key_with_a_newline_is_looked_up_too(world):
    rows = _rows(world, None, COPY_MIN_ROWS, "n")
    rows[3] = ActivityIn(
        unit_id=world.a.pk, type="click", occurred_at=rows[3].occurred_at, dedupe_key="two\nlines"
    )
    assert activities_record(rows[:5]) == 5

    assert activities_record(rows) == COPY_MIN_ROWS - 5
    assert Activity.objects.dangerously_unscoped().count() == COPY_MIN_ROWS


def _post(client: Client, visitor: str) -> Any:
    body = {
        "anonymous_id": visitor,
        "events": [
            {
                "type": "page_view",
                "id": str(uuid.uuid4()),
                "occurred_at": timezone.now().isoformat(),
            }
        ],
    }
    return client.post(
        "/api/v1/collect",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_X_LEADLOOP_KEY="pk_store",
    )


@pytest.mark.django_db(transaction=True)
def test_the_endpoint_stores_once_after_the_server_dropped_its_connection(world, caplog):
    # Given a site, and a worker whose persistent connection the server has since killed
    # (a restart, an idle timeout)
    Site.objects.create(unit=world.a, name="官网", public_key="pk_store", signing_secret="x")
    client = Client(HTTP_USER_AGENT=BROWSER)
    assert _post(client, "v-1").status_code == 202
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])

    # When the next request arrives (no health-check query runs before the INSERT)
    response = _post(client, "v-2")

    # Then it is stored once, on a new connection
    assert response.status_code == 202
    assert "the database connection was lost; retrying once" in caplog.text
    assert connection.connection.info.backend_pid != pid
    batches = RawBatch.objects.dangerously_unscoped().order_by("id")
    assert [json.loads(bytes(b.body))["anonymous_id"] for b in batches] == ["v-1", "v-2"]
    assert batches[1].pk == response.json()["batch"]
    dispatch_drain()


@pytest.mark.django_db
def test_a_drain_published_elsewhere_covers_this_process_until_its_flag_dies(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    # Given another process published a drain a moment ago (its flag stands for a while)
    Site.objects.create(unit=world.a, name="官网", public_key="pk_store", signing_secret="x")
    client = Client(HTTP_USER_AGENT=BROWSER)
    published: list[dict[str, Any]] = []
    monkeypatch.setattr(collector_sweep, "apply_async", lambda **kwargs: published.append(kwargs))
    dispatch_resume()
    cache.add(DRAIN_FLAG, 1, 5)

    # When this process stores batches
    with django_capture_on_commit_callbacks(execute=True):
        codes = [_post(client, f"v-{i}").status_code for i in range(5)]
    assert dispatch_drain()

    # Then it publishes nothing and knows it is covered while the flag lives (at most 5 s)
    assert codes == [202] * 5
    assert published == []
    assert time.monotonic() < intake._drain_covered_until <= time.monotonic() + 5

    # and once that drain is forgotten, the next batch publishes one again
    dispatch_resume()
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, "v-late").status_code == 202
    assert dispatch_drain()
    assert published == [{"countdown": intake.DRAIN_WINDOW_SECONDS, "retry": False}]
