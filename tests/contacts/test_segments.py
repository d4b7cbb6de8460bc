"""Segments: the extended rule language, the compiler against hand-written SQL, set-based
rebuilds with entered/left events and versions, incremental re-checks and static lists."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.contacts.identity_keys import make_key
from apps.contacts.models import (
    Segment,
    SegmentEvent,
    SegmentMember,
    SegmentSize,
    SegmentStatus,
    Tag,
)
from apps.contacts.services import segments as services
from apps.contacts.services.activities import ActivityIn, activities_record
from apps.contacts.services.consent import consent_record
from apps.contacts.services.resolution import contact_resolve
from apps.contacts.services.tag_rules import RuleError, rule_check, rule_context, rule_matches
from apps.contacts.services.tags import tags_add
from apps.core.models import AuditLog
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")


def _contact(unit, phone, **attributes):
    return contact_resolve(
        unit=unit,
        keys=[make_key("phone", phone)],
        attributes=attributes,
        source="api",
        acting_user=SYSTEM,
    ).contact


def _views(unit, contact, topic, days_ago_list):
    now = timezone.now()
    activities_record(
        [
            ActivityIn(
                unit_id=unit.pk,
                contact_id=contact.pk,
                type="content_view",
                occurred_at=now - timedelta(days=d, minutes=i),
                object_type="asset",
                object_id=str(i),
                properties={"topic": topic, "title": "t", "seconds": 30},
            )
            for i, d in enumerate(days_ago_list)
        ]
    )


def _members(segment):
    return sorted(
        SegmentMember.objects.filter(segment=segment).values_list("contact_id", flat=True)
    )


def acceptance_definition(tag_id):
    return {
        "all": [
            {"field": "industry", "op": "eq", "value": "生物医药"},
            {
                "any": [
                    {
                        "activity": {
                            "type": "content_view",
                            "days": 7,
                            "min_count": 3,
                            "properties": {"topic": "单细胞"},
                        }
                    },
                    {"tag": tag_id},
                ]
            },
            {"not": {"consent": {"channel": "email", "state": "withdrawn"}}},
        ]
    }


HAND_WRITTEN = """
    SELECT c.id FROM contacts_contact c
    WHERE c.status = 'active'
      AND EXISTS (SELECT 1 FROM contacts_contactunit cu
                  WHERE cu.contact_id = c.id AND cu.unit_id = %(unit)s)
      AND c.industry = '生物医药'
      AND (
        (SELECT count(*) FROM contacts_activity a
         WHERE a.contact_id = c.id AND a.unit_id = %(unit)s AND a.type = 'content_view'
           AND a.occurred_at >= now() - interval '7 days'
           AND a.properties ->> 'topic' = '单细胞') >= 3
        OR EXISTS (SELECT 1 FROM contacts_contacttag ct
                   WHERE ct.contact_id = c.id AND ct.tag_id = %(tag)s)
      )
      AND NOT EXISTS (SELECT 1 FROM contacts_consentstate cs
                      WHERE cs.contact_id = c.id AND cs.channel = 'email'
                        AND cs.purpose = 'marketing' AND cs.granted = false)
    ORDER BY c.id
"""


@pytest.fixture
def dataset(world):
    """Contacts in and out of the acceptance segment, each for one reason."""
    a, b = world.a, world.b
    tag = Tag.objects.create(unit=a, name="展会-2026")
    people = {
        "views3": _contact(a, "13800000001", industry="生物医药"),
        "views2": _contact(a, "13800000002", industry="生物医药"),
        "views4_unsubscribed": _contact(a, "13800000003", industry="生物医药"),
        "views3_one_old": _contact(a, "13800000004", industry="生物医药"),
        "tagged_unknown": _contact(a, "13800000005", industry="生物医药"),
        "pharma_views4": _contact(a, "13800000006", industry="制药"),
        "other_topic": _contact(a, "13800000007", industry="生物医药"),
        "views_in_b": _contact(a, "13800000008", industry="生物医药"),
        "tagged_unsubscribed": _contact(a, "13800000009", industry="生物医药"),
        "b_only": _contact(b, "13800000010", industry="生物医药"),
        "views4_sms_withdrawn": _contact(a, "13800000011", industry="生物医药"),
        "views4_granted": _contact(a, "13800000012", industry="生物医药"),
    }
    _views(a, people["views3"], "单细胞", [1, 2, 6])
    _views(a, people["views2"], "单细胞", [1, 2])
    _views(a, people["views4_unsubscribed"], "单细胞", [1, 1, 2, 3])
    _views(a, people["views3_one_old"], "单细胞", [1, 2, 10])
    _views(a, people["pharma_views4"], "单细胞", [1, 2, 3, 4])
    _views(a, people["other_topic"], "基因编辑", [1, 2, 3])
    _views(b, people["views_in_b"], "单细胞", [1, 2, 3])
    _views(b, people["b_only"], "单细胞", [1, 2, 3])
    _views(a, people["views4_sms_withdrawn"], "单细胞", [1, 2, 3, 5])
    _views(a, people["views4_granted"], "单细胞", [0, 1, 2, 3])
    tags_add(
        contact_ids=[people["tagged_unknown"].pk, people["tagged_unsubscribed"].pk],
        tags=[tag],
        source="manual",
        actor_label="t",
    )
    for name, channel, granted in (
        ("views4_unsubscribed", "email", False),
        ("tagged_unsubscribed", "email", False),
        ("views4_sms_withdrawn", "sms", False),
        ("views4_sms_withdrawn", "email", True),
        ("views4_granted", "email", True),
    ):
        consent_record(
            contact=people[name], unit=a, channel=channel, granted=granted, source="test"
        )
    return tag, people


# --- Acceptance 1: the compiled segment equals hand-written SQL --------------------------


def test_the_acceptance_segment_has_exactly_the_members_hand_written_sql_finds(world, dataset):
    # given the dataset and the acceptance definition
    tag, people = dataset
    segment = services.segment_create(
        unit=world.a,
        name="单细胞高意向",
        definition=acceptance_definition(tag.pk),
        acting_user=world.marketer,
    )

    # when the segment is rebuilt
    result = services.segment_rebuild(segment_id=segment.pk)

    # then its members are exactly what the hand-written query returns
    with connection.cursor() as cursor:
        cursor.execute(HAND_WRITTEN, {"unit": world.a.pk, "tag": tag.pk})
        expected = [row[0] for row in cursor.fetchall()]
    assert _members(segment) == expected
    assert expected == sorted(
        [
            people["views3"].pk,
            people["tagged_unknown"].pk,
            people["views4_sms_withdrawn"].pk,
            people["views4_granted"].pk,
        ]
    )
    assert result == services.RebuildResult("done", entered=4, left=0, size=4)
    segment.refresh_from_db()
    assert (segment.size, segment.built_version, segment.status) == (4, 1, "idle")
    assert segment.rebuilt_at is not None
    assert (segment.progress_done, segment.progress_total) == (4, 4)
    size = SegmentSize.objects.get(segment=segment)
    assert (size.size, size.entered, size.left) == (4, 4, 0)
    events = SegmentEvent.objects.filter(segment=segment)
    assert sorted(events.values_list("contact_id", "kind", "version")) == [
        (pk, "entered", 1) for pk in expected
    ]


# --- Acceptance 2: invalid definitions name the bad node; nothing is stored ---------------


@pytest.mark.parametrize(
    ("definition", "problem"),
    [
        (
            {"all": [{"field": "salary", "op": "eq", "value": "x"}]},
            "all[0].field: unknown field 'salary'",
        ),
        (
            {"all": [{"any": [{"field": "industry", "op": "gt", "value": "x"}]}]},
            "all[0].any[0].op: unknown operator 'gt'",
        ),
        (
            {"all": [{"field": "last_seen_at", "op": "contains", "value": "x"}]},
            "all[0].op: unknown operator 'contains'",
        ),
        ({"all": [{"field": "industry", "op": "eq", "value": "x"}, {"any": []}]}, "all[1].any:"),
        (
            {"all": [{"field": "id; DROP TABLE contacts_contact", "op": "eq", "value": "x"}]},
            "all[0].field: unknown field 'id; DROP TABLE contacts_contact'",
        ),
        ({"not": {"id; DROP TABLE": 1}}, "not: unknown condition"),
        (
            {"activity": {"type": "content_view", "days": 7, "properties": {"a;b": "x"}}},
            "activity.properties.a;b:",
        ),
        (
            {"activity": {"type": "*", "days": 7, "min_count": 3, "max_count": 2}},
            "activity.max_count:",
        ),
        ({"consent": {"channel": "fax", "state": "granted"}}, "consent.channel:"),
        ({"consent": {"channel": "email", "state": "maybe"}}, "consent.state:"),
        ({"field": "first_seen_at", "op": "before", "value": "yesterday"}, "value:"),
        ({"unit": 999999}, "unit: no business unit"),
        ({"segment": 999999}, "segment: no active segment"),
    ],
)
def test_an_invalid_definition_is_refused_with_the_path_of_the_bad_node(world, definition, problem):
    # given a unit with no segments
    # when a segment with a bad definition is created
    with pytest.raises(ValidationError) as caught:
        services.segment_create(
            unit=world.a, name="坏的", definition=definition, acting_user=world.marketer
        )

    # then the first problem names the node, and nothing was stored
    problems = caught.value.message_dict["definition"]
    assert problems[0].startswith(problem), problems
    assert Segment.objects.count() == 0
    assert AuditLog.objects.filter(action="segment.create").count() == 0


def test_a_field_name_like_sql_never_reaches_the_database(world):
    # given a definition whose field name is SQL
    bad = {"field": "id; DROP TABLE contacts_contact", "op": "eq", "value": "1"}
    context = rule_context(unit_id=world.a.pk)

    # when it is checked and (wrongly) compiled anyway
    with CaptureQueriesContext(connection) as queries:
        problems = rule_check(bad, context=context)
        with pytest.raises(RuleError, match="unknown field"):
            list(rule_matches(bad, context=context))

    # then it is refused and no query carried it
    assert problems[0].startswith("field: unknown field")
    assert not any("DROP" in q["sql"] for q in queries.captured_queries)


def test_a_segment_cannot_refer_to_itself_through_others(world):
    first = services.segment_create(
        unit=world.a,
        name="一",
        definition={"field": "industry", "op": "eq", "value": "x"},
        acting_user=world.marketer,
    )
    second = services.segment_create(
        unit=world.a, name="二", definition={"segment": first.pk}, acting_user=world.marketer
    )

    with pytest.raises(ValidationError) as caught:
        services.segment_update(
            segment=first, name="一", definition={"segment": second.pk}, acting_user=world.marketer
        )

    assert "cycle" in caught.value.message_dict["definition"][0]
    first.refresh_from_db()
    assert (first.definition, first.version) == ({"field": "industry", "op": "eq", "value": "x"}, 1)


def test_rule_tags_cannot_use_segment_conditions(world):
    problems = rule_check({"segment": 1}, context=rule_context(unit_id=world.a.pk))
    assert problems == ["segment: only segments may refer to other segments"]


# --- Acceptance 3 and versions ------------------------------------------------------------


def test_rebuilding_twice_records_no_events_the_second_time(world, dataset):
    tag, _people = dataset
    segment = services.segment_create(
        unit=world.a, name="s", definition=acceptance_definition(tag.pk), acting_user=world.marketer
    )
    services.segment_rebuild(segment_id=segment.pk)
    events_before = SegmentEvent.objects.filter(segment=segment).count()

    second = services.segment_rebuild(segment_id=segment.pk)

    assert second == services.RebuildResult("done", entered=0, left=0, size=4)
    assert SegmentEvent.objects.filter(segment=segment).count() == events_before == 4
    assert list(
        SegmentSize.objects.filter(segment=segment).order_by("id").values_list("entered", "left")
    ) == [(4, 0), (0, 0)]


def test_an_edit_bumps_the_version_and_the_next_rebuild_records_who_left(world, dataset):
    tag, people = dataset
    segment = services.segment_create(
        unit=world.a, name="s", definition=acceptance_definition(tag.pk), acting_user=world.marketer
    )
    services.segment_rebuild(segment_id=segment.pk)

    segment = services.segment_update(
        segment=segment,
        name="s",
        definition={"all": [{"tag": tag.pk}]},
        acting_user=world.marketer,
    )
    result = services.segment_rebuild(segment_id=segment.pk, version=2)

    assert segment.version == 2
    assert result == services.RebuildResult("done", entered=1, left=3, size=2)
    assert _members(segment) == sorted(
        [people["tagged_unknown"].pk, people["tagged_unsubscribed"].pk]
    )
    assert sorted(
        SegmentEvent.objects.filter(segment=segment, version=2).values_list("kind", flat=True)
    ) == ["entered", "left", "left", "left"]


def test_a_rebuild_for_a_superseded_version_stops_without_writing(world, dataset):
    tag, _people = dataset
    segment = services.segment_create(
        unit=world.a, name="s", definition=acceptance_definition(tag.pk), acting_user=world.marketer
    )
    services.segment_update(
        segment=segment, name="s", definition={"tag": tag.pk}, acting_user=world.marketer
    )

    result = services.segment_rebuild(segment_id=segment.pk, version=1)

    assert result.status == "superseded"
    assert SegmentMember.objects.count() == 0
    assert SegmentEvent.objects.count() == 0
    segment.refresh_from_db()
    assert (segment.version, segment.status, segment.built_version) == (2, "queued", None)


def test_an_edit_committed_during_the_statement_rolls_the_rebuild_back(world, dataset, monkeypatch):
    tag, _people = dataset
    segment = services.segment_create(
        unit=world.a, name="s", definition={"tag": tag.pk}, acting_user=world.marketer
    )
    real_diff = services._diff

    def diff_then_edit(*args, **kwargs):
        out = real_diff(*args, **kwargs)
        Segment.objects.filter(pk=segment.pk).update(version=2)  # as a concurrent edit would
        return out

    monkeypatch.setattr(services, "_diff", diff_then_edit)

    result = services.segment_rebuild(segment_id=segment.pk, version=1)

    assert result.status == "superseded"
    assert SegmentMember.objects.count() == 0
    assert SegmentEvent.objects.count() == 0
    assert SegmentSize.objects.count() == 0


def test_the_rebuild_is_one_diff_statement_whatever_the_number_of_contacts(world, dataset):
    tag, _people = dataset
    segment = services.segment_create(
        unit=world.a, name="s", definition=acceptance_definition(tag.pk), acting_user=world.marketer
    )

    with CaptureQueriesContext(connection) as queries:
        services.segment_rebuild(segment_id=segment.pk)

    inserts = [q["sql"] for q in queries.captured_queries if "INSERT INTO" in q["sql"]]
    # the diff (members and events in one statement) and the size history row
    assert len(inserts) == 2
    assert "contacts_segmentevent" in inserts[0]
    assert "DELETE FROM" in inserts[0]


def test_a_definition_that_no_longer_validates_fails_the_rebuild_without_writing(world):
    tag = Tag.objects.create(unit=world.a, name="临时")
    segment = services.segment_create(
        unit=world.a, name="s", definition={"tag": tag.pk}, acting_user=world.marketer
    )
    tag.delete()

    result = services.segment_rebuild(segment_id=segment.pk)

    assert result.status == "failed"
    segment.refresh_from_db()
    assert segment.status == SegmentStatus.FAILED
    assert segment.last_error.startswith("tag: no tag with id")
    assert SegmentMember.objects.count() == 0


# --- Incremental re-checks ----------------------------------------------------------------


def test_an_incremental_rebuild_touches_only_the_given_contacts(world, dataset):
    tag, people = dataset
    segment = services.segment_create(
        unit=world.a, name="s", definition=acceptance_definition(tag.pk), acting_user=world.marketer
    )
    services.segment_rebuild(segment_id=segment.pk)
    # two contacts change: one now matches (a third view), one stops (unsubscribes)
    _views(world.a, people["views2"], "单细胞", [0])
    consent_record(
        contact=people["views3"], unit=world.a, channel="email", granted=False, source="test"
    )
    # and a third changes too but is not re-checked
    tags_add(contact_ids=[people["pharma_views4"].pk], tags=[tag], source="manual", actor_label="t")

    result = services.segments_rebuild_for(contact_ids=[people["views2"].pk, people["views3"].pk])

    assert (result.entered, result.left) == (1, 1)
    expected = {
        people["tagged_unknown"].pk,
        people["views4_sms_withdrawn"].pk,
        people["views4_granted"].pk,
        people["views2"].pk,
    }
    assert set(_members(segment)) == expected
    segment.refresh_from_db()
    assert segment.size == 4
    assert list(
        SegmentEvent.objects.filter(segment=segment)
        .order_by("-id")
        .values_list("contact_id", "kind")[:2]
    ) in (
        [(people["views2"].pk, "entered"), (people["views3"].pk, "left")],
        [(people["views3"].pk, "left"), (people["views2"].pk, "entered")],
    )


def test_a_restricted_compile_answers_for_the_given_contacts_as_the_full_one_does(world, dataset):
    tag, people = dataset
    definition = {
        "any": [
            {"not": acceptance_definition(tag.pk)},
            {"activity": {"type": "content_view", "days": 7, "properties": {"topic": "基因编辑"}}},
        ]
    }
    context = services.segment_rule_context(unit_id=world.a.pk)
    full = set(rule_matches(definition, context=context).values_list("pk", flat=True))
    some = [people["views3"].pk, people["views2"].pk, people["other_topic"].pk]

    # when only three contacts are re-checked
    with CaptureQueriesContext(connection) as queries:
        restricted = set(
            rule_matches(definition, context=context, contact_ids=some).values_list("pk", flat=True)
        )

    # then they get the full compile's answer, and the activity subqueries read theirs only
    assert restricted == full & set(some) == {people["views2"].pk, people["other_topic"].pk}
    sql = queries.captured_queries[-1]["sql"]
    assert sql.count("= ANY(") == 3  # the contacts, and each activity subquery


# --- The language's new conditions --------------------------------------------------------


def _match(world, definition):
    context = services.segment_rule_context(unit_id=world.a.pk)
    assert rule_check(definition, context=context) == []
    return set(rule_matches(definition, context=context).values_list("pk", flat=True))


def test_no_activity_in_n_days_reads_last_seen(world):
    old = _contact(world.a, "13900000001")
    recent = _contact(world.a, "13900000002")
    from apps.contacts.models import Contact

    Contact.objects.filter(pk=old.pk).update(last_seen_at=timezone.now() - timedelta(days=40))

    assert _match(world, {"not": {"activity": {"type": "*", "days": 30}}}) == {old.pk}
    assert _match(world, {"field": "last_seen_at", "op": "within_days", "value": 30}) == {recent.pk}
    assert _match(world, {"field": "last_seen_at", "op": "not_within_days", "value": 30}) == {
        old.pk
    }


def test_any_type_with_a_count_counts_activities_of_the_unit(world):
    person = _contact(world.a, "13900000003")
    other = _contact(world.a, "13900000004")
    _views(world.a, person, "质谱", [1, 2])
    _views(world.a, other, "质谱", [1, 2, 3])

    between = {"activity": {"type": "*", "days": 7, "min_count": 1, "max_count": 2}}
    assert _match(world, between) == {person.pk}
    assert _match(world, {"activity": {"type": "*", "days": 7, "min_count": 3}}) == {other.pk}


def test_consent_states_and_units_and_dates(world):
    granted = _contact(world.a, "13900000005")
    withdrawn = _contact(world.a, "13900000006")
    unknown = _contact(world.a, "13900000007")
    both = _contact(world.a, "13900000008")
    contact_resolve(
        unit=world.b,
        keys=[make_key("phone", "13900000008")],
        attributes={},
        source="api",
        acting_user=SYSTEM,
    )
    consent_record(contact=granted, unit=world.a, channel="email", granted=True, source="t")
    consent_record(contact=withdrawn, unit=world.a, channel="email", granted=False, source="t")

    def consent(state):
        return _match(world, {"consent": {"channel": "email", "state": state}})

    assert consent("granted") == {granted.pk}
    assert consent("withdrawn") == {withdrawn.pk}
    assert consent("unknown") == {unknown.pk, both.pk}
    assert _match(world, {"unit": world.b.pk}) == {both.pk}
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert _match(world, {"field": "first_seen_at", "op": "after", "value": tomorrow}) == set()
    assert len(_match(world, {"field": "first_seen_at", "op": "before", "value": tomorrow})) == 4


def test_segment_in_segment_reads_the_materialised_membership(world, dataset):
    tag, people = dataset
    inner = services.segment_create(
        unit=world.a, name="inner", definition={"tag": tag.pk}, acting_user=world.marketer
    )
    services.segment_rebuild(segment_id=inner.pk)
    outer = services.segment_create(
        unit=world.a,
        name="outer",
        definition={
            "all": [
                {"segment": inner.pk},
                {"not": {"consent": {"channel": "email", "state": "withdrawn"}}},
            ]
        },
        acting_user=world.marketer,
    )

    services.segment_rebuild(segment_id=outer.pk)

    assert _members(outer) == [people["tagged_unknown"].pk]
    with pytest.raises(ValidationError):
        services.segment_archive(segment=inner, acting_user=world.marketer)


# --- Static lists, archive, due ----------------------------------------------------------


def test_static_lists_add_only_contacts_the_user_can_see_and_remove_them(world, dataset):
    _tag, people = dataset
    segment = services.segment_create(
        unit=world.a, name="展会名单", kind="static", acting_user=world.marketer
    )
    ids = [people["views3"].pk, people["views2"].pk, people["b_only"].pk, 99_999_999]

    added = services.segment_members_add(
        segment=segment, contact_ids=ids, acting_user=world.marketer
    )
    again = services.segment_members_add(
        segment=segment, contact_ids=ids[:2], acting_user=world.marketer
    )
    removed = services.segment_members_remove(
        segment=segment, contact_ids=[people["views2"].pk], acting_user=world.marketer
    )

    assert (added, again, removed) == (2, 0, 1)
    assert _members(segment) == [people["views3"].pk]
    segment.refresh_from_db()
    assert segment.size == 1
    assert list(
        SegmentEvent.objects.filter(segment=segment).order_by("id").values_list("kind", flat=True)
    ) == ["entered", "entered", "left"]
    assert AuditLog.objects.filter(action="segment.members_add").count() == 2


def test_static_list_changes_refuse_dynamic_segments_and_bad_ids(world):
    dynamic = services.segment_create(
        unit=world.a,
        name="d",
        definition={"field": "industry", "op": "eq", "value": "x"},
        acting_user=world.marketer,
    )
    static = services.segment_create(unit=world.a, name="s", kind="static", acting_user=SYSTEM)

    with pytest.raises(ValidationError):
        services.segment_members_add(segment=dynamic, contact_ids=[1], acting_user=world.marketer)
    with pytest.raises(ValidationError):
        services.segment_members_add(
            segment=static, contact_ids=["1; DROP"], acting_user=world.marketer
        )
    assert SegmentMember.objects.count() == 0


def test_due_segments_are_queued_ones_and_overdue_ones(world):
    def make(name):
        return services.segment_create(
            unit=world.a,
            name=name,
            definition={"field": "industry", "op": "eq", "value": "x"},
            acting_user=world.marketer,
        )

    queued, fresh, overdue = make("q"), make("f"), make("o")
    archived = make("a")
    services.segment_rebuild(segment_id=fresh.pk)
    services.segment_rebuild(segment_id=overdue.pk)
    Segment.objects.filter(pk=overdue.pk).update(rebuilt_at=timezone.now() - timedelta(hours=2))
    services.segment_archive(segment=archived, acting_user=world.marketer)

    due = services.segments_due()

    assert due == [(queued.pk, 1), (overdue.pk, 1)]
    assert services.segment_rebuild(segment_id=fresh.pk, force=False).status == "skipped"


def test_an_incremental_rebuild_updates_referred_segments_first(world, dataset):
    # given an outer segment that reads an inner one, both built
    tag, people = dataset
    inner = services.segment_create(
        unit=world.a, name="inner", definition={"tag": tag.pk}, acting_user=world.marketer
    )
    outer = services.segment_create(
        unit=world.a, name="outer", definition={"segment": inner.pk}, acting_user=world.marketer
    )
    services.segment_rebuild(segment_id=inner.pk)
    services.segment_rebuild(segment_id=outer.pk)
    person = people["views2"]
    tags_add(contact_ids=[person.pk], tags=[tag], source="manual", actor_label="t")

    # when only that contact is re-checked
    result = services.segments_rebuild_for(contact_ids=[person.pk])

    # then it entered the inner segment and, reading that, the outer one
    assert (result.entered, result.left) == (2, 0)
    assert person.pk in _members(inner)
    assert person.pk in _members(outer)


def test_tasks_queue_on_commit_and_the_beat_queues_due_segments(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    from apps.contacts.tasks import segments as tasks

    queued = []
    monkeypatch.setattr(tasks.rebuild_segment, "delay", lambda *args: queued.append(args))

    # given a new segment (its rebuild is queued when the transaction commits)
    with django_capture_on_commit_callbacks(execute=True):
        segment = services.segment_create(
            unit=world.a,
            name="s",
            definition={"field": "industry", "op": "eq", "value": "x"},
            acting_user=world.marketer,
        )
    # when beat runs, and then the queued task runs
    count = tasks.queue_segment_rebuilds()
    outcome = tasks.rebuild_segment(segment.pk, 1)

    # then one rebuild was queued on commit and one by beat; the task rebuilt it
    assert queued == [(segment.pk, 1), (segment.pk, 1, False)]
    assert count == 1
    assert outcome == {"status": "done", "entered": 0, "left": 0}
    segment.refresh_from_db()
    assert (segment.status, segment.built_version) == ("idle", 1)
