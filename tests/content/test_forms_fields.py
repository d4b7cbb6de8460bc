"""The field catalogue, checking a form definition and a visitor's answers, progressive
selection, and the form services (create, update, archive) with their audit rows."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.contacts.models import Channel, CustomField
from apps.contacts.services import config
from apps.content.form_fields import (
    answers_clean,
    field_catalogue,
    fields_to_ask,
    form_definition_clean,
    form_fields,
    known_keys,
)
from apps.content.models import Form
from apps.content.services.forms import form_archive, form_restore, form_update
from apps.core.models import AuditLog
from tests.content.test_forms import CONSENT, SYSTEM, VERSION, customer_type, make_form

pytestmark = pytest.mark.django_db


def errors_of(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, list[str]]:
    return exc.value.message_dict


# --- Catalogue ---------------------------------------------------------------------------------


def test_the_catalogue_is_contact_fields_and_the_units_own_custom_fields(world):
    customer_type(world.a)
    customer_type(world.b, options=(("gov", "政府"), ("edu", "高校")))
    config.custom_field_create(
        unit=world.a, key="old", label="旧字段", field_type="text", acting_user=SYSTEM
    )
    CustomField.objects.filter(key="old").update(is_active=False)

    a = field_catalogue(world.a.pk)
    b = field_catalogue(world.b.pk)

    assert list(a) == [
        "name",
        "email",
        "phone",
        "company_name",
        "title",
        "department",
        "province",
        "city",
        "industry",
        "custom:customer_type",
    ]
    assert a["custom:customer_type"].options == (
        ("ka", "大客户"),
        ("mid", "中型客户"),
        ("small", "小客户"),
    )
    assert b["custom:customer_type"].options == (("gov", "政府"), ("edu", "高校"))
    assert (a["email"].identity, a["phone"].identity, a["name"].identity) == ("email", "phone", "")


# --- A form definition ---------------------------------------------------------------------------


def clean(unit, fields, **options):
    return form_definition_clean(fields=fields, catalogue=field_catalogue(unit.pk), **options)


def test_a_definition_is_stored_normalised(world):
    customer_type(world.a)

    cleaned = clean(
        world.a,
        [
            {"key": "email", "required": True},
            {"key": " custom:customer_type ", "label": " 客户 ", "options": ["small", "ka"]},
        ],
    )

    assert cleaned == [
        {"key": "email", "required": True, "label": "", "options": []},
        {
            "key": "custom:customer_type",
            "required": False,
            "label": "客户",
            "options": ["ka", "small"],
        },
    ]


def test_each_problem_names_its_field(world):
    customer_type(world.a)

    with pytest.raises(ValidationError) as exc:
        clean(
            world.a,
            [
                {"key": "email"},
                {"key": "custom:budget"},
                {"key": "email"},
                {"key": "custom:customer_type", "options": ["vip"]},
                {"key": "name", "options": ["x"]},
                {"key": "phone", "required": "yes"},
            ],
            progressive_max=0,
        )

    assert errors_of(exc) == {
        "fields": [
            "Field 2 “custom:budget”: this unit has no such field (or it is switched off).",
            "Field “email” is in the form twice; keep one.",
            "Field “custom:customer_type”: “vip” is not one of its options (ka、mid、small).",
            "Field “name”: only choice fields have options to narrow.",
            "Field “phone”: required must be true or false.",
        ],
        "progressive_max": ["Ask at least 1 new field per visit."],
    }


def test_a_form_needs_a_way_to_reach_the_person(world):
    with pytest.raises(ValidationError) as exc:
        clean(world.a, [{"key": "name", "required": True}, {"key": "company_name"}])

    assert errors_of(exc) == {
        "fields": [
            "Add an “email” or a “phone” field: without one a submission cannot be matched "
            "to a person."
        ]
    }


def test_another_units_custom_field_is_not_in_this_units_catalogue(world):
    customer_type(world.b)

    with pytest.raises(ValidationError) as exc:
        clean(world.a, [{"key": "email"}, {"key": "custom:customer_type"}])

    assert errors_of(exc)["fields"] == [
        "Field 2 “custom:customer_type”: this unit has no such field (or it is switched off)."
    ]


def test_consent_wording_version_and_redirect_are_checked(world):
    with pytest.raises(ValidationError) as exc:
        clean(
            world.a,
            [{"key": "email"}],
            consent_required=True,
            consent_text="",
            redirect_url="javascript:alert(1)",
        )
    with pytest.raises(ValidationError) as versionless:
        clean(world.a, [{"key": "email"}], consent_text=CONSENT, consent_version="")

    assert errors_of(exc) == {
        "consent_text": [
            "Write the consent wording the visitor agrees to, or make consent optional."
        ],
        "redirect_url": ["Use an http:// or https:// address, e.g. https://www.example.cn/."],
    }
    assert errors_of(versionless) == {
        "consent_version": [
            "Give the wording a version (e.g. 2026-03), so each consent records what the person "
            "saw."
        ]
    }


# --- A visitor's answers -------------------------------------------------------------------------


def test_answers_are_cleaned_like_the_contact_holds_them(world):
    customer_type(world.a)
    fields = form_fields(
        [
            {"key": "phone", "required": True},
            {"key": "email"},
            {"key": "custom:customer_type", "options": ["ka", "mid"]},
        ],
        field_catalogue(world.a.pk),
    )

    good, good_errors = answers_clean(
        fields,
        {"phone": "+852 9123 4567", "email": " Li@EXAMPLE.cn ", "custom:customer_type": "ka"},
    )
    _bad, bad_errors = answers_clean(
        fields, {"phone": "138", "email": "", "custom:customer_type": "small"}
    )

    assert good == {"phone": "+85291234567", "email": "li@example.cn", "custom:customer_type": "ka"}
    assert good_errors == {}
    assert bad_errors == {
        "phone": "Enter a valid phone number, e.g. 138 0013 8000, or with the country code, "
        "e.g. +852 9123 4567.",
        "custom:customer_type": "Pick one of the options offered.",
    }


def test_an_unknown_visitor_must_leave_email_or_phone(world):
    fields = form_fields([{"key": "phone"}, {"key": "email"}], field_catalogue(world.a.pk))

    _data, unknown = answers_clean(fields, {"phone": "", "email": ""})
    _data, recognised = answers_clean(fields, {"phone": "", "email": ""}, identity_needed=False)

    assert unknown == {"phone": "Enter your email or mobile number so we can reply."}
    assert recognised == {}


def test_progressive_selection_hides_known_fields_and_asks_required_first(world):
    fields = form_fields(
        [
            {"key": "name", "required": True},
            {"key": "phone", "required": True},
            {"key": "email"},
            {"key": "title"},
            {"key": "company_name", "required": True},
        ],
        field_catalogue(world.a.pk),
    )
    known = known_keys(
        attributes={"name": "韩梅梅", "title": " "},
        custom={},
        identity_kinds={"phone"},
        fields=fields,
    )

    asked = fields_to_ask(fields, known=known, recognised=True, max_new=2)

    assert known == {"name", "phone"}
    assert [f.key for f in asked] == ["email", "company_name"]


# --- Services ------------------------------------------------------------------------------------


def test_creating_a_form_is_audited_and_sanitises_rich_text(world):
    form = make_form(world.a, intro='<p onclick="x()">你好<script>alert(1)</script></p>')

    audit = AuditLog.objects.get(action="form.create")
    assert form.intro == "<p>你好</p>"
    assert form.key.startswith("f_")
    assert (audit.unit_id, audit.object_id) == (world.a.pk, str(form.pk))
    assert audit.after["consent_version"] == VERSION


def test_a_form_cannot_use_another_units_channel(world):
    foreign = Channel.objects.create(unit=world.b, code="b", name="B", kind="sem")
    form = make_form(world.a)

    with pytest.raises(ValidationError) as exc:
        form_update(form=form, channel=foreign, acting_user=SYSTEM)

    form.refresh_from_db()
    assert errors_of(exc) == {"channel": ["Pick a channel of this unit."]}
    assert form.channel_id is None
    assert AuditLog.objects.filter(action="form.change").count() == 0


def test_an_update_records_only_what_changed_and_archive_is_reversible(world):
    form = make_form(world.a)

    form_update(form=form, name="白皮书下载（新版）", acting_user=SYSTEM)
    form_archive(form=form, acting_user=SYSTEM)
    form_archive(form=form, acting_user=SYSTEM)
    form_restore(form=form, acting_user=SYSTEM)

    change = AuditLog.objects.get(action="form.change")
    assert change.before == {"name": "白皮书下载"}
    assert change.after == {"name": "白皮书下载（新版）"}
    assert list(
        AuditLog.objects.filter(action__startswith="form.")
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["form.create", "form.change", "form.archive", "form.restore"]
    assert Form.objects.get().is_active is True
