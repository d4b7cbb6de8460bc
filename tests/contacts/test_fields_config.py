"""Custom fields: per-unit definitions, option editing that never orphans stored values,
ordering, the console page and the API."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from apps.contacts.models import Contact, CustomField
from apps.contacts.services import config
from apps.core.models import AuditLog
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")
TIERS = [
    {"value": "ka", "label": "KA客户"},
    {"value": "mid", "label": "中型"},
    {"value": "small", "label": "小型"},
]


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def tier(world):
    return config.custom_field_create(
        unit=world.a,
        key="customer_type",
        label="客户类型",
        field_type="choice",
        options=TIERS,
        acting_user=world.marketer,
    )


def _holders(world, field, values):
    for i, value in enumerate(values):
        Contact.objects.create(group=world.group, name=f"c{i}", custom={str(field.pk): value})


def test_each_unit_defines_its_own_options(world, tier):
    b_tier = config.custom_field_create(
        unit=world.b,
        key="customer_type",
        label="客户类型",
        field_type="choice",
        options=[
            {"value": "raw_material", "label": "原料厂商"},
            {"value": "end_user", "label": "终端用户"},
        ],
        acting_user=world.b_marketer,
    )
    assert tier.option_values() == {"ka", "mid", "small"}
    assert b_tier.option_values() == {"raw_material", "end_user"}
    assert (tier.position, b_tier.position) == (0, 0)


def test_removing_an_option_still_in_use_is_refused_with_the_count(world, tier):
    _holders(world, tier, ["ka", "ka", "mid"])
    before = list(CustomField.objects.values_list("options", flat=True))

    with pytest.raises(ValidationError) as caught:
        config.custom_field_update(
            field=tier, label="客户类型", options=[TIERS[1], TIERS[2]], acting_user=world.marketer
        )

    assert caught.value.message_dict == {
        "options": [
            "Option “KA客户” is still used by 2 contacts; keep it (you may rename its label) "
            "until no contact holds it."
        ]
    }
    assert list(CustomField.objects.values_list("options", flat=True)) == before
    assert not AuditLog.objects.filter(action="custom_field.update").exists()


def test_changing_an_options_value_counts_as_removing_it(world, tier):
    _holders(world, tier, ["mid"])
    renamed_value = [TIERS[0], {"value": "medium", "label": "中型"}, TIERS[2]]
    with pytest.raises(ValidationError, match="中型"):
        config.custom_field_update(
            field=tier, label="客户类型", options=renamed_value, acting_user=world.marketer
        )


def test_unused_options_may_go_and_labels_may_change(world, tier):
    _holders(world, tier, ["ka"])
    options = [{"value": "ka", "label": "大客户"}, {"value": "gov", "label": "政府"}]

    field = config.custom_field_update(
        field=tier, label="客户分级", options=options, acting_user=world.marketer
    )

    field.refresh_from_db()
    assert (field.label, field.options) == ("客户分级", options)
    audit = AuditLog.objects.get(action="custom_field.update")
    assert (audit.before or {})["options"] == TIERS
    assert (audit.after or {})["options"] == options


def test_multi_choice_usage_counts_contacts_holding_the_option_among_others(world):
    lines = config.custom_field_create(
        unit=world.a,
        key="lines",
        label="研究方向",
        field_type="multi_choice",
        options=[{"value": "cell", "label": "细胞"}, {"value": "mol", "label": "分子"}],
        acting_user=SYSTEM,
    )
    _holders(world, lines, [["cell", "mol"], ["mol"]])
    with pytest.raises(ValidationError, match="used by 2 contacts"):
        config.custom_field_update(
            field=lines,
            label="研究方向",
            options=[{"value": "cell", "label": "细胞"}],
            acting_user=SYSTEM,
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ([], "A choice field needs at least one option."),
        ([{"value": "a", "label": "A"}, {"value": "a", "label": "B"}], "Option “B” appears twice."),
        ([{"value": "", "label": "A"}], "Option 1 has no value."),
    ],
)
def test_bad_options_are_refused(world, options, message):
    with pytest.raises(ValidationError) as caught:
        config.custom_field_create(
            unit=world.a,
            key="k",
            label="K",
            field_type="choice",
            options=options,
            acting_user=SYSTEM,
        )
    assert caught.value.message_dict == {"options": [message]}
    assert not CustomField.objects.exists()


def test_key_and_type_rules(world, tier):
    with pytest.raises(ValidationError) as duplicate:
        config.custom_field_create(
            unit=world.a, key="customer_type", label="X", field_type="text", acting_user=SYSTEM
        )
    with pytest.raises(ValidationError) as bad_key:
        config.custom_field_create(
            unit=world.a, key="客户 类型", label="X", field_type="text", acting_user=SYSTEM
        )
    with pytest.raises(ValidationError) as type_change:
        config.custom_field_update(
            field=tier, label="客户类型", field_type="text", acting_user=SYSTEM
        )
    assert duplicate.value.message_dict == {
        "key": ["Another field of this unit already uses this key."]
    }
    assert list(bad_key.value.message_dict) == ["key"]
    assert list(type_change.value.message_dict) == ["type"]
    assert CustomField.objects.count() == 1


def test_fields_can_be_reordered_and_deactivated(world, tier):
    size = config.custom_field_create(
        unit=world.a, key="size", label="员工数", field_type="number", acting_user=SYSTEM
    )
    config.custom_field_move(field=size, offset=-1, acting_user=SYSTEM)
    config.custom_field_update(field=tier, label="客户类型", is_active=False, acting_user=SYSTEM)

    order = CustomField.objects.filter(unit=world.a).order_by("position")
    assert list(order.values_list("key", "position", "is_active")) == [
        ("size", 0, True),
        ("customer_type", 1, False),
    ]


# --- Console ------------------------------------------------------------------------------


def test_the_fields_page_shows_options_with_usage_in_fixed_queries(
    client, world, tier, django_assert_num_queries
):
    _holders(world, tier, ["ka", "ka", "small"])
    for i in range(5):
        config.custom_field_create(
            unit=world.a,
            key=f"f{i}",
            label=f"字段{i}",
            field_type="multi_choice",
            options=[{"value": "x", "label": "X"}],
            acting_user=SYSTEM,
        )
    config.custom_field_create(
        unit=world.b, key="b", label="B 的字段", field_type="text", acting_user=SYSTEM
    )
    client.force_login(world.marketer)

    with django_assert_num_queries(8):  # … and the bell's unread count
        response = client.get("/console/fields/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "B 的字段" not in body
    first = response.context["rows"][0]
    assert first["field"].key == "customer_type"
    assert [(o["label"], o["count"]) for o in first["options"]] == [
        ("KA客户", 2),
        ("中型", 0),
        ("小型", 1),
    ]


def test_the_edit_page_refuses_removing_a_used_option(client, world, tier):
    _holders(world, tier, ["ka"])
    client.force_login(world.marketer)

    response = client.post(
        f"/console/fields/{tier.pk}/edit/",
        {"label": "客户类型", "options": "mid | 中型\nsmall | 小型", "is_active": "on"},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 400
    assert "is still used by 1 contacts" in response.content.decode()
    tier.refresh_from_db()
    assert tier.options == TIERS


def test_creating_a_field_from_the_console(client, world):
    client.force_login(world.marketer)
    response = client.post(
        f"/console/fields/?unit={world.a.pk}",
        {
            "unit": world.a.pk,
            "label": "客户类型",
            "key": "customer_type",
            "field_type": "choice",
            "options": "ka | KA客户\nmid|中型\n\n小型",
        },
    )
    assert response.status_code == 302
    assert CustomField.objects.get().options == [
        {"value": "ka", "label": "KA客户"},
        {"value": "mid", "label": "中型"},
        {"value": "小型", "label": "小型"},
    ]


def test_another_units_field_is_404(client, world):
    b_field = config.custom_field_create(
        unit=world.b, key="x", label="X", field_type="text", acting_user=SYSTEM
    )
    client.force_login(world.marketer)
    assert client.get(f"/console/fields/{b_field.pk}/edit/").status_code == 404
    assert (
        client.post(f"/console/fields/{b_field.pk}/move/", {"direction": "up"}).status_code == 404
    )


# --- API ----------------------------------------------------------------------------------


def test_api_create_update_and_scoping(api, world):
    api.force_authenticate(world.marketer)
    created = api.post(
        "/api/v1/custom-fields/",
        {
            "unit": world.a.pk,
            "key": "customer_type",
            "label": "客户类型",
            "type": "choice",
            "options": TIERS,
        },
    )
    assert created.status_code == 201, created.json()
    field_id = created.json()["id"]
    Contact.objects.create(group=world.group, custom={str(field_id): "ka"})

    refused = api.patch(f"/api/v1/custom-fields/{field_id}/", {"options": TIERS[1:]})
    relabelled = api.patch(f"/api/v1/custom-fields/{field_id}/", {"label": "客户分级"})
    api.force_authenticate(world.b_marketer)
    hidden = api.get(f"/api/v1/custom-fields/{field_id}/")

    assert refused.status_code == 400
    assert "still used by 1 contacts" in refused.json()["error"]["fields"]["options"][0]
    assert relabelled.json()["label"] == "客户分级"
    assert relabelled.json()["options"] == TIERS
    assert hidden.status_code == 404
    assert api.delete(f"/api/v1/custom-fields/{field_id}/").status_code in (404, 405)
