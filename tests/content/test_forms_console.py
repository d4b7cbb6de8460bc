"""Console pages of forms: the list with per-form performance, the editor and its field
builder, archive, submissions; who may read and who may change; another unit's form is
not found."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.contacts.models import Activity
from apps.content.models import Form, FormSubmission
from apps.content.services.submissions import submissions_process
from apps.core.models import AuditLog
from tests.content.test_forms import CONSENT, customer_type, make_form
from tests.content.test_forms_processing import store

pytestmark = pytest.mark.django_db


def views(form: Form, visitors: list[str], *, days_ago: float = 1) -> None:
    at = timezone.now() - timedelta(days=days_ago)
    for aid in visitors:
        Activity.objects.create(
            unit_id=form.unit_id,
            anonymous_id=aid,
            type="page_view",
            occurred_at=at,
            object_type="form",
            object_id=str(form.pk),
        )


@pytest.fixture
def console(client, world):
    client.force_login(world.marketer)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


# --- List ----------------------------------------------------------------------------------------


def test_the_list_shows_each_forms_performance_in_fixed_queries(
    console, world, django_assert_num_queries
):
    forms = [make_form(world.a, name=f"表单{i}") for i in range(5)]
    make_form(world.b, name="B 的表单")
    views(forms[4], ["v1", "v1", "v2", "v3", "v4"])
    views(forms[4], ["old"], days_ago=40)  # outside the 30 days
    submissions_process([store(forms[4]).pk])
    store(forms[4], {"name": "垃圾"}, spam=True)

    # session, user, unit roles, units, the page of forms, submissions, views, unit switcher,
    # unread notifications (the shell)
    with django_assert_num_queries(9):
        response = console.get("/console/forms/")

    body = response.content.decode()
    assert response.status_code == 200
    assert [f.name for f, _perf in response.context["rows"]] == [
        "表单4",
        "表单3",
        "表单2",
        "表单1",
        "表单0",
    ]
    perf = response.context["rows"][0][1]
    assert (perf.views, perf.visitors, perf.submissions, perf.conversion) == (5, 4, 1, 25.0)
    assert response.context["rows"][1][1].conversion is None
    assert "B 的表单" not in body
    assert "25.0%" in body


def test_the_period_narrows_the_numbers(console, world):
    form = make_form(world.a)
    views(form, ["a"], days_ago=1)
    views(form, ["b"], days_ago=20)

    response = console.get(f"/console/forms/?unit={world.a.pk}&days=7")

    assert response.context["rows"][0][1].views == 1
    assert response.context["days"] == 7


def test_the_list_pages_by_keyset(console, world):
    for i in range(52):
        Form.objects.create(unit=world.a, name=f"表单{i:02d}", fields=[{"key": "email"}])

    first = console.get("/console/forms/")
    cursor = re.search(r'cursor=([^"&]+)" rel="next"', first.content.decode())
    assert cursor is not None
    second = console.get(f"/console/forms/?unit={world.a.pk}&days=30&cursor={cursor.group(1)}")

    assert len(first.context["rows"]) == 50
    assert [f.name for f, _p in second.context["rows"]] == ["表单01", "表单00"]


def test_another_units_form_is_not_found(console, world):
    other = make_form(world.b)

    pages = [
        console.get(f"/console/forms/{other.pk}/"),
        console.get(f"/console/forms/{other.pk}/submissions/"),
        console.post(f"/console/forms/{other.pk}/archive/"),
        console.post(f"/console/forms/{other.pk}/", {"name": "改了"}),
        console.get(f"/console/forms/?unit={world.b.pk}"),
    ]

    assert [p.status_code for p in pages] == [404] * 5
    other.refresh_from_db()
    assert (other.name, other.is_active) == ("白皮书下载", True)


# --- Editor --------------------------------------------------------------------------------------


def editor_post(**overrides):
    data = {
        "name": "研讨会报名",
        "title": "2026 研讨会",
        "consent_required": "on",
        "consent_text": CONSENT,
        "consent_version": "2026-03",
        "progressive_max": "3",
        "fk": ["name", "phone", "custom:customer_type"],
        "freq": ["name", "phone"],
        "flabel-phone": "手机号",
        "fopt-custom:customer_type": ["ka", "mid"],
        "op": "save",
    }
    data.update(overrides)
    return data


def test_a_marketer_creates_a_form_with_the_field_builder(console, world):
    customer_type(world.a)

    response = console.post(f"/console/forms/new/?unit={world.a.pk}", editor_post())

    form = Form.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/console/forms/{form.pk}/"
    assert form.unit_id == world.a.pk
    assert form.fields == [
        {"key": "name", "required": True, "label": "", "options": []},
        {"key": "phone", "required": True, "label": "手机号", "options": []},
        {"key": "custom:customer_type", "required": False, "label": "", "options": ["ka", "mid"]},
    ]
    assert form.consent_required is True
    assert AuditLog.objects.filter(action="form.create", actor=world.marketer).count() == 1


def test_builder_buttons_work_without_script_and_save_nothing(console, world):
    customer_type(world.a)
    form = make_form(world.a)

    moved = console.post(f"/console/forms/{form.pk}/", editor_post(op="up:1", name=form.name))
    added = console.post(
        f"/console/forms/{form.pk}/", editor_post(op="add", add_key="email", name=form.name)
    )

    moved_keys = re.findall(r'name="fk" value="([^"]+)"', moved.content.decode())
    added_keys = re.findall(r'name="fk" value="([^"]+)"', added.content.decode())
    assert moved.status_code == added.status_code == 200
    assert moved_keys[:3] == ["phone", "name", "custom:customer_type"]
    assert added_keys[:4] == ["name", "phone", "custom:customer_type", "email"]
    form.refresh_from_db()
    assert [f["key"] for f in form.fields] == ["name", "phone", "email", "company_name"]


def test_a_bad_field_list_is_a_400_with_the_problem_and_nothing_saved(console, world):
    form = make_form(world.a)

    response = console.post(
        f"/console/forms/{form.pk}/", editor_post(fk=["name", "company_name"], freq=["name"])
    )

    assert response.status_code == 400
    assert "Add an “email” or a “phone” field" in response.content.decode()
    form.refresh_from_db()
    assert form.name == "白皮书下载"


def test_the_edit_page_offers_the_link_and_embed_snippet(console, world):
    form = make_form(world.a)

    body = console.get(f"/console/forms/{form.pk}/").content.decode()

    assert f"http://testserver/f/{form.key}/" in body
    assert f"http://testserver/f/{form.key}/embed.js" in body


def test_a_viewer_reads_the_form_but_cannot_change_it(client, world):
    form = make_form(world.a)
    client.force_login(world.viewer)

    page = client.get(f"/console/forms/{form.pk}/")
    write = client.post(f"/console/forms/{form.pk}/", editor_post(name="改了"))
    archive = client.post(f"/console/forms/{form.pk}/archive/")
    new = client.get(f"/console/forms/new/?unit={world.a.pk}")

    assert page.status_code == 200
    assert '<fieldset class="ff-fieldset" disabled>' in page.content.decode()
    assert (write.status_code, archive.status_code, new.status_code) == (403, 403, 403)
    form.refresh_from_db()
    assert (form.name, form.is_active) == ("白皮书下载", True)


def test_archiving_takes_the_form_off_the_web(console, world):
    form = make_form(world.a)

    response = console.post(f"/console/forms/{form.pk}/archive/")

    form.refresh_from_db()
    assert response.status_code == 302
    assert form.is_active is False
    assert console.get(f"/f/{form.key}/").status_code == 404


# --- Submissions ---------------------------------------------------------------------------------


def test_the_submissions_page_lists_status_reason_and_contact_in_fixed_queries(
    console, world, django_assert_num_queries
):
    form = make_form(world.a)
    processed = store(form, {"name": "<img src=x onerror=alert(1)>", "phone": "+8613800138000"})
    submissions_process([processed.pk])
    processed.refresh_from_db()
    store(form, {"name": "垃圾"}, spam=True)
    for n in range(3):
        store(form, {"name": f"等待{n}", "phone": f"+861390013900{n}"})

    # session, user, unit roles, the form, the page with contacts, custom fields, unit
    # switcher, unread notifications (the shell)
    with django_assert_num_queries(8):
        response = console.get(f"/console/forms/{form.pk}/submissions/")
    spam_only = console.get(f"/console/forms/{form.pk}/submissions/?status=spam")

    body = response.content.decode()
    assert response.status_code == 200
    assert len(response.context["rows"]) == 5
    assert f'href="/console/contacts/{processed.contact_id}/"' in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
    assert "<img src=x" not in body
    assert [s.status for s, _a in spam_only.context["rows"]] == ["spam"]
    assert "honeypot" in spam_only.content.decode()
    assert FormSubmission.objects.count() == 5
