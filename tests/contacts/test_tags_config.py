"""Tag groups and tags: the services, the console page and the API."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from apps.contacts.identity_keys import make_key
from apps.contacts.models import ContactTag, Tag, TagGroup, TagHistory
from apps.contacts.services import config
from apps.contacts.services.resolution import contact_resolve
from apps.contacts.services.tags import tags_add
from apps.core.models import AuditLog
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")
BIO_RULE = {"field": "industry", "op": "eq", "value": "生物医药"}


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def _contact(unit, phone, **attributes):
    return contact_resolve(
        unit=unit,
        keys=[make_key("phone", phone)],
        attributes=attributes,
        source="api",
        acting_user=SYSTEM,
    ).contact


# --- Services -----------------------------------------------------------------------------


def test_creating_a_rule_tag_validates_the_rule_and_audits(world):
    group = config.tag_group_create(unit=world.a, name="行业", acting_user=world.marketer)

    tag = config.tag_create(
        unit=world.a,
        name="生物医药",
        kind="rule",
        group=group,
        rule=BIO_RULE,
        acting_user=world.marketer,
    )

    assert (tag.kind, tag.rule, tag.group_id) == ("rule", BIO_RULE, group.pk)
    audit = AuditLog.objects.filter(action__startswith="tag").order_by("id")
    assert list(audit.values_list("action", "actor_label")) == [
        ("tag_group.create", "a-marketer"),
        ("tag.create", "a-marketer"),
    ]


def test_a_bad_rule_is_refused_with_the_node_and_nothing_is_stored(world):
    with pytest.raises(ValidationError) as caught:
        config.tag_create(
            unit=world.a,
            name="坏规则",
            kind="rule",
            rule={"all": [BIO_RULE, {"field": "title", "op": "like", "value": "x"}]},
            acting_user=world.marketer,
        )
    assert caught.value.message_dict["rule"][0].startswith("all[1].op: unknown operator 'like'")
    assert Tag.objects.count() == 0
    assert AuditLog.objects.filter(action__startswith="tag").count() == 0


def test_a_duplicate_name_is_a_clear_error(world):
    config.tag_create(unit=world.a, name="VIP", acting_user=world.marketer)
    with pytest.raises(ValidationError) as caught:
        config.tag_create(unit=world.a, name=" VIP ", acting_user=world.marketer)
    assert caught.value.message_dict == {
        "name": ["A tag with this name already exists in this unit."]
    }
    # Another unit may use the same name.
    assert config.tag_create(unit=world.b, name="VIP", acting_user=world.b_marketer).pk


def test_a_group_of_another_unit_is_refused(world):
    b_group = config.tag_group_create(unit=world.b, name="B组", acting_user=world.b_marketer)
    with pytest.raises(ValidationError) as caught:
        config.tag_create(unit=world.a, name="X", group=b_group, acting_user=world.marketer)
    assert list(caught.value.message_dict) == ["group"]
    assert Tag.objects.count() == 0


def test_a_tag_cannot_switch_kind(world):
    tag = config.tag_create(unit=world.a, name="手工", acting_user=world.marketer)
    with pytest.raises(ValidationError) as caught:
        config.tag_update(
            tag=tag, name="手工", group=None, kind="rule", rule=BIO_RULE, acting_user=world.marketer
        )
    assert list(caught.value.message_dict) == ["kind"]
    tag.refresh_from_db()
    assert (tag.kind, tag.rule) == ("manual", None)


def test_a_tag_another_rule_refers_to_cannot_be_deleted(world):
    base = config.tag_create(unit=world.a, name="基础", acting_user=world.marketer)
    config.tag_create(
        unit=world.a, name="派生", kind="rule", rule={"tag": base.pk}, acting_user=world.marketer
    )
    with pytest.raises(ValidationError, match="派生"):
        config.tag_delete(tag=base, acting_user=world.marketer)
    assert Tag.objects.filter(pk=base.pk).exists()


def test_deleting_a_group_keeps_its_tags(world):
    group = config.tag_group_create(unit=world.a, name="组", acting_user=world.marketer)
    tag = config.tag_create(unit=world.a, name="T", group=group, acting_user=world.marketer)

    assert config.tag_group_delete(group=group, acting_user=world.marketer) == 1

    tag.refresh_from_db()
    assert tag.group_id is None
    assert not TagGroup.objects.exists()


# --- Console ------------------------------------------------------------------------------


def test_the_tags_page_lists_groups_tags_and_counts_in_bounded_queries(
    client, world, django_assert_num_queries
):
    group = config.tag_group_create(unit=world.a, name="行业", acting_user=SYSTEM)
    rule_tag = config.tag_create(
        unit=world.a, name="生物医药", kind="rule", group=group, rule=BIO_RULE, acting_user=SYSTEM
    )
    manual = config.tag_create(unit=world.a, name="展会名单", acting_user=SYSTEM)
    for i in range(3):
        contact = _contact(world.a, f"1380000000{i}", industry="生物医药")
        tags_add(contact_ids=[contact.pk], tags=[manual], source="manual", actor_label="t")
    config.tag_rule_apply_now(tag=rule_tag, acting_user=SYSTEM)
    for i in range(20):
        config.tag_create(unit=world.a, name=f"标签{i:02d}", acting_user=SYSTEM)
    config.tag_create(unit=world.b, name="B 的标签", acting_user=SYSTEM)
    client.force_login(world.marketer)

    with django_assert_num_queries(14):  # … and the bell's unread count
        response = client.get("/console/tags/", HTTP_ACCEPT_LANGUAGE="en")

    body = response.content.decode()
    assert response.status_code == 200
    for text in ("生物医药", "展会名单", "行业"):
        assert text in body
    assert "B 的标签" not in body
    assert "Industry is 生物医药" in body
    assert response.context["rows"][0]["tag"].name == "展会名单"
    counts = {row["tag"].name: row["count"] for row in response.context["rows"]}
    assert counts["展会名单"] == 3
    assert counts["生物医药"] == 3


def test_the_query_count_does_not_grow_with_the_tags(client, world):
    def page_queries():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/console/tags/").status_code == 200
        return len(ctx.captured_queries)

    client.force_login(world.marketer)
    config.tag_create(unit=world.a, name="R0", kind="rule", rule=BIO_RULE, acting_user=SYSTEM)
    config.tag_group_create(unit=world.a, name="G", acting_user=SYSTEM)
    few = page_queries()
    for i in range(15):
        config.tag_create(
            unit=world.a, name=f"R{i + 1}", kind="rule", rule=BIO_RULE, acting_user=SYSTEM
        )
        config.tag_group_create(unit=world.a, name=f"G{i}", acting_user=SYSTEM)
    assert page_queries() == few


def test_a_viewer_without_configure_gets_403(client, world):
    client.force_login(world.viewer)
    assert client.get("/console/tags/").status_code == 403


def test_another_units_tag_is_404_on_every_page(client, world):
    b_tag = config.tag_create(
        unit=world.b, name="B", kind="rule", rule=BIO_RULE, acting_user=SYSTEM
    )
    b_group = config.tag_group_create(unit=world.b, name="B组", acting_user=SYSTEM)
    client.force_login(world.marketer)

    assert client.get(f"/console/tags/{b_tag.pk}/edit/").status_code == 404
    assert client.post(f"/console/tags/{b_tag.pk}/apply/").status_code == 404
    assert client.post(f"/console/tags/{b_tag.pk}/delete/").status_code == 404
    assert client.get(f"/console/tags/groups/{b_group.pk}/edit/").status_code == 404
    assert client.get(f"/console/tags/?unit={world.b.pk}").status_code == 404
    assert Tag.objects.filter(pk=b_tag.pk).exists()


def test_saving_a_rule_tag_from_the_console_applies_it(client, world):
    bio = _contact(world.a, "13800000001", industry="生物医药")
    _contact(world.a, "13800000002", industry="钢铁")
    client.force_login(world.marketer)

    response = client.post(
        f"/console/tags/new/?unit={world.a.pk}",
        {
            "unit": world.a.pk,
            "name": "生物医药",
            "kind": "rule",
            "rule": '{"field": "industry", "op": "eq", "value": "生物医药"}',
        },
    )

    assert response.status_code == 302
    tag = Tag.objects.get(name="生物医药")
    assert list(ContactTag.objects.filter(tag=tag).values_list("contact_id", flat=True)) == [bio.pk]
    assert TagHistory.objects.filter(tag=tag, actor_label="rule: 生物医药").count() == 1


def test_the_console_shows_a_bad_rule_at_its_node_and_saves_nothing(client, world):
    client.force_login(world.marketer)
    bad = (
        '{"all": [{"field": "city", "op": "eq", "value": "上海"},'
        ' {"field": "title", "op": "like", "value": "x"}]}'
    )

    response = client.post(
        f"/console/tags/new/?unit={world.a.pk}",
        {"unit": world.a.pk, "name": "坏", "kind": "rule", "rule": bad},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 400
    assert "all[1].op: unknown operator &#x27;like&#x27;" in response.content.decode()
    assert Tag.objects.count() == 0


def test_the_rule_preview_explains_the_rule_and_counts(client, world):
    _contact(world.a, "13800000001", industry="生物医药")
    client.force_login(world.marketer)

    good = client.post(
        "/console/tags/rule-preview/",
        {"unit": world.a.pk, "rule": '{"field": "industry", "op": "eq", "value": "生物医药"}'},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    broken = client.post(
        "/console/tags/rule-preview/",
        {"unit": world.a.pk, "rule": '{"field": "industry", '},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert good.status_code == 200
    assert good.context["preview"]["count"] == 1
    assert "1 contact matches now." in good.content.decode()
    assert "Not valid JSON" in broken.content.decode()


def test_apply_now_reports_and_audits(client, world):
    _contact(world.a, "13800000001", industry="生物医药")
    tag = config.tag_create(
        unit=world.a, name="生物医药", kind="rule", rule=BIO_RULE, acting_user=SYSTEM
    )
    client.force_login(world.marketer)

    response = client.post(f"/console/tags/{tag.pk}/apply/", follow=True, HTTP_ACCEPT_LANGUAGE="en")

    assert "1 contacts added, 0 removed" in response.content.decode()
    assert AuditLog.objects.filter(action="tag.apply", actor_label="a-marketer").count() == 1


# --- API ----------------------------------------------------------------------------------


def test_api_crud_for_tag_groups_and_tags(api, world):
    api.force_authenticate(world.marketer)

    group = api.post("/api/v1/tag-groups/", {"unit": world.a.pk, "name": "行业"}).json()
    created = api.post(
        "/api/v1/tags/",
        {
            "unit": world.a.pk,
            "name": "生物医药",
            "kind": "rule",
            "group": group["id"],
            "rule": BIO_RULE,
        },
    )
    assert created.status_code == 201, created.json()
    tag_id = created.json()["id"]
    renamed = api.patch(f"/api/v1/tags/{tag_id}/", {"name": "生物医药行业"})
    listed = api.get(f"/api/v1/tags/?unit={world.a.pk}")
    deleted = api.delete(f"/api/v1/tags/{tag_id}/")

    assert renamed.status_code == 200
    assert renamed.json()["name"] == "生物医药行业"
    assert renamed.json()["rule"] == BIO_RULE
    assert [t["name"] for t in listed.json()["results"]] == ["生物医药行业"]
    assert deleted.status_code == 204
    assert not Tag.objects.exists()


def test_api_rule_errors_name_the_node(api, world):
    api.force_authenticate(world.marketer)
    response = api.post(
        "/api/v1/tags/",
        {
            "unit": world.a.pk,
            "name": "坏",
            "kind": "rule",
            "rule": {"any": [{"field": "x; drop", "op": "eq", "value": 1}]},
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["rule"][0].startswith(
        "any[0].field: unknown field 'x; drop'"
    )
    assert Tag.objects.count() == 0


def test_api_a_unit_b_user_gets_404_for_a_unit_a_tag(api, world):
    tag = config.tag_create(unit=world.a, name="A 的", acting_user=SYSTEM)
    api.force_authenticate(world.b_marketer)

    assert api.get(f"/api/v1/tags/{tag.pk}/").status_code == 404
    assert api.patch(f"/api/v1/tags/{tag.pk}/", {"name": "偷改"}).status_code == 404
    assert api.delete(f"/api/v1/tags/{tag.pk}/").status_code == 404
    assert api.get("/api/v1/tags/").json()["results"] == []
    creating = api.post("/api/v1/tags/", {"unit": world.a.pk, "name": "越权"})
    assert creating.status_code == 400
    assert list(creating.json()["error"]["fields"]) == ["unit"]
    tag.refresh_from_db()
    assert tag.name == "A 的"


def test_api_readers_cannot_write(api, world):
    tag = config.tag_create(unit=world.a, name="只读", acting_user=SYSTEM)
    api.force_authenticate(world.sales)  # may view contacts, may not configure

    assert api.get(f"/api/v1/tags/{tag.pk}/").status_code == 200
    assert api.patch(f"/api/v1/tags/{tag.pk}/", {"name": "改"}).status_code == 403
    assert api.delete(f"/api/v1/tags/{tag.pk}/").status_code == 403
    tag.refresh_from_db()
    assert tag.name == "只读"


def test_api_apply_a_rule_tag(api, world):
    _contact(world.a, "13800000001", industry="生物医药")
    tag = config.tag_create(
        unit=world.a, name="生物医药", kind="rule", rule=BIO_RULE, acting_user=SYSTEM
    )
    api.force_authenticate(world.marketer)

    response = api.post(f"/api/v1/tags/{tag.pk}/apply/")

    assert response.json() == {"added": 1, "removed": 0}
