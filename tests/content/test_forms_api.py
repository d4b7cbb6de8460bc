"""API: forms CRUD (problems reported on their field) and each form's submissions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.content.models import Form, FormSubmission
from apps.core.models import AuditLog
from tests.content.test_forms import CONSENT, customer_type, make_form
from tests.content.test_forms_processing import store

pytestmark = pytest.mark.django_db

NEW = {
    "name": "申请试用",
    "title": "申请 HL-Q900 试用",
    "fields": [
        {"key": "name", "required": True},
        {"key": "phone", "required": True},
        {"key": "custom:customer_type", "options": ["ka"]},
    ],
    "consent_text": CONSENT,
    "consent_version": "2026-03",
    "progressive": True,
    "progressive_max": 2,
}


def test_a_marketer_creates_a_form(api, world):
    customer_type(world.a)
    api.force_authenticate(world.marketer)

    response = api.post("/api/v1/forms/", {**NEW, "unit": world.a.pk}, format="json")

    body = response.json()
    form = Form.objects.get()
    assert response.status_code == 201
    assert body["id"] == form.pk
    assert body["fields"] == [
        {"key": "name", "required": True, "label": "", "options": []},
        {"key": "phone", "required": True, "label": "", "options": []},
        {"key": "custom:customer_type", "required": False, "label": "", "options": ["ka"]},
    ]
    assert body["public_url"] == f"http://testserver/f/{form.key}/"
    assert body["embed_script_url"] == f"http://testserver/f/{form.key}/embed.js"
    assert (body["progressive"], body["progressive_max"], body["is_active"]) == (True, 2, True)
    assert AuditLog.objects.filter(action="form.create", actor=world.marketer).count() == 1


def test_problems_point_at_their_field(api, world):
    api.force_authenticate(world.marketer)

    response = api.post(
        "/api/v1/forms/",
        {
            **NEW,
            "unit": world.a.pk,
            "fields": [{"key": "name"}, {"key": "wechat"}],
            "redirect_url": "ftp://files.example.cn/",
        },
        format="json",
    )

    error = response.json()["error"]
    assert response.status_code == 400
    assert error["code"] == "invalid"
    assert error["fields"] == {
        "fields": ["Field 2 “wechat”: this unit has no such field (or it is switched off)."],
        "redirect_url": ["Use an http:// or https:// address, e.g. https://www.example.cn/."],
    }
    assert Form.objects.count() == 0


def test_a_form_cannot_be_made_in_a_unit_the_caller_does_not_edit(api, world):
    api.force_authenticate(world.viewer)

    response = api.post("/api/v1/forms/", {**NEW, "unit": world.a.pk}, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["unit"]
    assert Form.objects.count() == 0


def test_a_viewer_reads_but_cannot_change(api, world):
    form = make_form(world.a)
    api.force_authenticate(world.viewer)

    listed = api.get("/api/v1/forms/")
    changed = api.patch(f"/api/v1/forms/{form.pk}/", {"name": "改了"}, format="json")
    deleted = api.delete(f"/api/v1/forms/{form.pk}/")

    assert [f["id"] for f in listed.json()["results"]] == [form.pk]
    assert (changed.status_code, deleted.status_code) == (403, 403)
    form.refresh_from_db()
    assert (form.name, form.is_active) == ("白皮书下载", True)


def test_another_units_form_is_not_found(api, world):
    other = make_form(world.b)
    api.force_authenticate(world.marketer)

    responses = [
        api.get(f"/api/v1/forms/{other.pk}/"),
        api.patch(f"/api/v1/forms/{other.pk}/", {"name": "改了"}, format="json"),
        api.get(f"/api/v1/forms/{other.pk}/submissions/"),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404]


def test_update_delete_archives_and_patch_restores(api, world):
    form = make_form(world.a)
    api.force_authenticate(world.marketer)

    patched = api.patch(
        f"/api/v1/forms/{form.pk}/", {"title": "新标题", "progressive_max": 0}, format="json"
    )
    renamed = api.patch(f"/api/v1/forms/{form.pk}/", {"name": "新名字"}, format="json")
    deleted = api.delete(f"/api/v1/forms/{form.pk}/")
    archived = Form.objects.get().is_active
    restored = api.patch(f"/api/v1/forms/{form.pk}/", {"is_active": True}, format="json")

    assert patched.status_code == 400
    assert patched.json()["error"]["fields"] == {
        "progressive_max": ["Ask at least 1 new field per visit."]
    }
    assert renamed.json()["name"] == "新名字"
    assert deleted.status_code == 204
    assert archived is False
    assert restored.json()["is_active"] is True
    assert Form.objects.get().title == "下载白皮书"


def test_the_list_costs_the_same_however_many_forms(api, world, django_assert_num_queries):
    for i in range(6):
        make_form(world.a, name=f"表单{i}")
    api.force_authenticate(world.marketer)

    # unit roles, the page of forms
    with django_assert_num_queries(2):
        response = api.get(f"/api/v1/forms/?unit={world.a.pk}&page_size=5")

    assert [f["name"] for f in response.json()["results"]] == [f"表单{i}" for i in (5, 4, 3, 2, 1)]
    assert response.json()["next"] is not None


def test_submissions_are_listed_per_form_with_filters(api, world):
    form = make_form(world.a)
    other = make_form(world.a, name="另一个")
    old = store(form)
    FormSubmission.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(days=10))
    spam = store(form, {"name": "垃圾"}, spam=True)
    recent = store(form, {"name": "新", "phone": "+8613900139000"})
    store(other)
    api.force_authenticate(world.sdr)

    everything = api.get(f"/api/v1/forms/{form.pk}/submissions/")
    only_spam = api.get(f"/api/v1/forms/{form.pk}/submissions/?status=spam")
    since = (timezone.now() - timedelta(days=1)).isoformat()
    lately = api.get(f"/api/v1/forms/{form.pk}/submissions/", {"received_after": since})
    bad = api.get(f"/api/v1/forms/{form.pk}/submissions/?status=lost")

    assert [s["id"] for s in everything.json()["results"]] == [recent.pk, spam.pk, old.pk]
    assert [s["id"] for s in only_spam.json()["results"]] == [spam.pk]
    assert [s["id"] for s in lately.json()["results"]] == [recent.pk, spam.pk]
    assert everything.json()["results"][0]["data"] == {"name": "新", "phone": "+8613900139000"}
    assert "ip" not in everything.json()["results"][0]
    assert bad.status_code == 400
