"""Segment console pages: list with sizes and trends in bounded queries, the editor, the
member list, rebuild now, static lists, and scoping (another unit's segment is 404)."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.contacts.identity_keys import make_key
from apps.contacts.models import Segment, SegmentMember
from apps.contacts.services import segments as services
from apps.contacts.services.resolution import contact_resolve
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")
BIO = {"field": "industry", "op": "eq", "value": "生物医药"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def _contact(unit, phone, **attributes):
    return contact_resolve(
        unit=unit,
        keys=[make_key("phone", phone)],
        attributes=attributes,
        source="api",
        acting_user=SYSTEM,
    ).contact


def _segment(unit, name, definition=BIO):
    segment = services.segment_create(
        unit=unit, name=name, definition=definition, acting_user=SYSTEM
    )
    services.segment_rebuild(segment_id=segment.pk)
    services.segment_rebuild(segment_id=segment.pk)
    return segment


def _queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, **EN)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_the_list_shows_sizes_trends_and_status_in_bounded_queries(
    client, world, django_assert_num_queries
):
    # given two rebuilt segments of A with 2 members, and one of B
    for i in range(2):
        _contact(world.a, f"1380000000{i}", industry="生物医药")
    _segment(world.a, "生物医药")
    _segment(world.a, "全部人", {"field": "industry", "op": "not_empty"})
    services.segment_create(unit=world.b, name="B 的分群", definition=BIO, acting_user=SYSTEM)
    client.force_login(world.marketer)

    # when the list is opened
    with django_assert_num_queries(8):
        response = client.get("/console/segments/", **EN)

    # then A's segments show with size, a sparkline and status; B's does not
    body = response.content.decode()
    assert response.status_code == 200
    assert "生物医药" in body
    assert "B 的分群" not in body
    assert body.count('<svg class="sparkline"') == 2
    assert "Up to date" in body
    sizes = {row["segment"].name: row["segment"].size for row in response.context["rows"]}
    assert sizes == {"生物医药": 2, "全部人": 2}


def test_the_list_query_count_does_not_grow_with_the_segments(client, world):
    client.force_login(world.marketer)
    _segment(world.a, "s0")
    few = _queries(client, "/console/segments/")
    for i in range(1, 8):
        _segment(world.a, f"s{i}")

    assert _queries(client, "/console/segments/") == few


def test_the_member_list_is_paged_in_bounded_queries(client, world, django_assert_num_queries):
    for i in range(3):
        _contact(world.a, f"1380000000{i}", name=f"张{i}", industry="生物医药")
    segment = _segment(world.a, "生物医药")
    client.force_login(world.marketer)

    with django_assert_num_queries(13):
        response = client.get(f"/console/segments/{segment.pk}/", **EN)

    body = response.content.decode()
    assert response.status_code == 200
    for name in ("张0", "张1", "张2"):
        assert name in body
    assert "Industry is 生物医药" in body
    assert "Rebuild now" in body


def test_saving_a_bad_definition_shows_the_node_and_stores_nothing(client, world):
    client.force_login(world.marketer)

    response = client.post(
        f"/console/segments/new/?unit={world.a.pk}&kind=dynamic",
        {
            "unit": world.a.pk,
            "name": "坏",
            "rebuild_every_minutes": 60,
            "definition": json.dumps({"all": [{"field": "salary", "op": "eq", "value": "1"}]}),
        },
        **EN,
    )

    assert response.status_code == 400
    assert "all[0].field: unknown field" in response.content.decode()
    assert Segment.objects.count() == 0


def test_saving_a_segment_from_the_console_and_rebuild_now(client, world):
    client.force_login(world.marketer)

    response = client.post(
        f"/console/segments/new/?unit={world.a.pk}&kind=dynamic",
        {
            "unit": world.a.pk,
            "name": "生物医药",
            "rebuild_every_minutes": 30,
            "definition": json.dumps(BIO),
        },
        **EN,
    )
    segment = Segment.objects.get()
    rebuilt = client.post(f"/console/segments/{segment.pk}/rebuild/", **EN)

    assert response.status_code == 302
    assert (segment.definition, segment.rebuild_every_minutes) == (BIO, 30)
    assert rebuilt.status_code == 302
    editor = client.get(f"/console/segments/{segment.pk}/edit/", **EN)
    assert editor.status_code == 200
    assert 'id="segment-options"' in editor.content.decode()


def test_a_static_list_takes_pasted_ids(client, world):
    people = [_contact(world.a, f"1380000000{i}") for i in range(2)]
    segment = services.segment_create(
        unit=world.a, name="名单", kind="static", acting_user=world.marketer
    )
    client.force_login(world.marketer)

    client.post(
        f"/console/segments/{segment.pk}/members/",
        {"contacts": f"{people[0].pk}, {people[1].pk}", "action": "add"},
        **EN,
    )

    assert sorted(SegmentMember.objects.values_list("contact_id", flat=True)) == sorted(
        p.pk for p in people
    )


def test_another_units_segment_is_404_on_every_page(client, world):
    segment = _segment(world.a, "A 的")
    client.force_login(world.b_marketer)

    for url in (f"/console/segments/{segment.pk}/", f"/console/segments/{segment.pk}/edit/"):
        assert client.get(url, **EN).status_code == 404
    for url in ("rebuild", "archive", "members"):
        assert client.post(f"/console/segments/{segment.pk}/{url}/", **EN).status_code == 404
    segment.refresh_from_db()
    assert segment.is_active is True


def test_a_viewer_cannot_open_segments(client, world):
    segment = _segment(world.a, "A 的")
    client.force_login(world.viewer)

    assert client.get("/console/segments/", **EN).status_code == 403
    assert client.get(f"/console/segments/{segment.pk}/", **EN).status_code == 404


def test_export_members_queues_a_contact_export_of_exactly_the_members(client, world):
    from apps.contacts.models import ContactExport
    from apps.contacts.selectors.exports import export_queryset
    from apps.contacts.services.exports import export_filters_clean

    inside = [_contact(world.a, f"1380000000{i}", industry="生物医药") for i in range(2)]
    _contact(world.a, "13800000009", industry="钢铁")
    segment = _segment(world.a, "生物医药")
    b_segment = services.segment_create(unit=world.b, name="B", definition=BIO, acting_user=SYSTEM)
    client.force_login(world.marketer)

    response = client.post(f"/console/segments/{segment.pk}/export/", **EN)

    assert response.status_code == 302
    export = ContactExport.objects.get()
    assert export.filters == {"segment": segment.pk, "unit": world.a.pk}
    assert sorted(export_queryset(world.marketer, export.filters).values_list("pk", flat=True)) == (
        sorted(c.pk for c in inside)
    )
    with pytest.raises(ValidationError) as caught:
        export_filters_clean(user=world.marketer, filters={"segment": b_segment.pk})
    assert list(caught.value.message_dict) == ["segment"]
