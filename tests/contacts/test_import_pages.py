"""The import console pages and API: upload, preview and mapping, live progress, the error
file; each seen only by people who may import into the import's unit."""

from __future__ import annotations

import codecs

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import translation

from apps.contacts.models import Contact, ContactImport, ImportMapping, Tag
from apps.contacts.services import imports

pytestmark = pytest.mark.django_db

CSV = "姓名,手机,邮箱,公司\r\n李娜,13800138000,li@example.cn,华澜\r\n张伟,12345,,华澜\r\n".encode(
    "gbk"
)


@pytest.fixture(autouse=True)
def _media_and_language(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    with translation.override("en"):
        yield


@pytest.fixture
def client_en():
    return Client(HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def marketer(world):
    world.marketer.language = "en"
    world.marketer.save(update_fields=["language"])
    return world.marketer


def _upload(unit, user, content=CSV, name="展会名单.csv"):
    return imports.contact_import_create(
        unit=unit, upload=SimpleUploadedFile(name, content), acting_user=user
    )


def _done(unit, user, content=CSV):
    contact_import = _upload(unit, user, content)
    imports.contact_import_start(
        contact_import=contact_import,
        mapping={"姓名": "name", "手机": "phone", "邮箱": "email", "公司": "company_name"},
        acting_user=user,
    )
    return imports.contact_import_run(import_id=contact_import.pk)


# --- Console --------------------------------------------------------------------------------


def test_upload_then_preview_then_start_then_progress(
    world, marketer, client_en, django_capture_on_commit_callbacks
):
    client_en.force_login(marketer)

    uploaded = client_en.post(
        reverse("contacts:import-new"),
        {"unit": world.a.id, "file": SimpleUploadedFile("展会名单.csv", CSV)},
    )

    contact_import = ContactImport.objects.get()
    assert uploaded.status_code == 302
    assert uploaded["Location"] == reverse("contacts:import-detail", args=[contact_import.pk])
    preview = client_en.get(uploaded["Location"])
    page = preview.text
    assert preview.status_code == 200
    assert "GBK / GB18030" in page
    assert '<td title="13800138000">13800138000</td>' in page
    # Guessed from the headers: 手机 is a phone, 邮箱 an email, 公司 the company.
    assert '<option value="phone" selected>' in page
    assert '<option value="email" selected>' in page
    assert '<option value="company_name" selected>' in page
    assert "Guessed from the column names" in page

    with django_capture_on_commit_callbacks() as callbacks:
        started = client_en.post(
            uploaded["Location"],
            {
                "unit": world.a.id,
                "col_0": "name",
                "col_1": "phone",
                "col_2": "email",
                "col_3": "company_name",
                "req_3": "on",
                "consent_basis": "",
            },
        )

    assert started.status_code == 302
    assert len(callbacks) == 1
    contact_import.refresh_from_db()
    assert contact_import.mapping == {
        "columns": {"姓名": "name", "手机": "phone", "邮箱": "email", "公司": "company_name"},
        "required": ["公司"],
        "wechat_app_id": "",
        "header": ["姓名", "手机", "邮箱", "公司"],
    }
    waiting = client_en.get(reverse("contacts:import-progress", args=[contact_import.pk]))
    assert 'hx-trigger="every 1s"' in waiting.text
    assert "Waiting for a worker" in waiting.text

    imports.contact_import_run(import_id=contact_import.pk)
    finished = client_en.get(reverse("contacts:import-progress", args=[contact_import.pk]))
    assert "hx-trigger" not in finished.text  # polling stops
    assert "2 of 2 rows checked" in finished.text
    assert "Download the error file" in finished.text
    detail = client_en.get(reverse("contacts:import-detail", args=[contact_import.pk]))
    settings_panel = detail.text[detail.text.index("<h2>Settings</h2>") :]
    assert settings_panel.index("姓名 →<b>Name</b>") < settings_panel.index("手机 →<b>Mobile phone")
    assert "公司 →<b>Company *</b>" in settings_panel


def test_a_refused_upload_shows_why_and_stores_nothing(world, marketer, client_en):
    client_en.force_login(marketer)

    response = client_en.post(
        reverse("contacts:import-new"),
        {"unit": world.a.id, "file": SimpleUploadedFile("名单.xls", b"\xd0\xcf\x11\xe0" * 10)},
    )

    assert response.status_code == 400
    assert "Old Excel files (.xls) cannot be imported." in response.text
    assert ContactImport.objects.count() == 0


def test_a_mapping_without_an_identifier_is_refused_on_the_page(world, marketer, client_en):
    client_en.force_login(marketer)
    contact_import = _upload(world.a, marketer)

    response = client_en.post(
        reverse("contacts:import-detail", args=[contact_import.pk]),
        {
            "unit": world.a.id,
            "col_0": "name",
            "col_1": "ignore",
            "col_2": "ignore",
            "col_3": "ignore",
        },
    )

    assert response.status_code == 400
    assert "Map at least one column to an identifier" in response.text
    contact_import.refresh_from_db()
    assert contact_import.mapping == {}
    assert ImportMapping.objects.count() == 0


def test_the_unit_select_lists_only_units_the_user_may_import_into(world, marketer, client_en):
    client_en.force_login(marketer)

    page = client_en.get(reverse("contacts:import-new")).text

    assert f'<option value="{world.a.id}"' in page
    assert f'<option value="{world.b.id}"' not in page


def test_changing_the_unit_offers_that_units_tags(world, client_en):
    client_en.force_login(world.group_admin)
    Tag.objects.create(unit=world.a, name="A 展会")
    Tag.objects.create(unit=world.b, name="B 展会")
    contact_import = _upload(world.a, world.group_admin)
    url = reverse("contacts:import-detail", args=[contact_import.pk])

    on_a = client_en.get(url).text
    on_b = client_en.get(url, {"unit": world.b.id}).text

    assert "A 展会" in on_a
    assert "B 展会" not in on_a
    assert "B 展会" in on_b
    assert "A 展会" not in on_b


def test_the_list_shows_this_units_imports_newest_first_in_a_fixed_number_of_queries(
    world, marketer, client_en, django_assert_num_queries
):
    first = _done(world.a, marketer)
    second = _upload(world.a, marketer, name="第二批.csv")
    _upload(world.b, world.b_marketer, name="B 的名单.csv")
    client_en.force_login(marketer)
    client_en.get(reverse("contacts:imports"))  # warm the session

    # session, user, roles, the page, the unit switcher, the bell's unread count
    with django_assert_num_queries(6):
        response = client_en.get(reverse("contacts:imports"))
    ContactImport.objects.bulk_create(
        ContactImport(unit=world.a, created_by=marketer, file="x.csv", original_name=f"{n}.csv")
        for n in range(30)
    )
    with django_assert_num_queries(6):
        client_en.get(reverse("contacts:imports"))

    page = response.text
    assert page.index("第二批.csv") < page.index("展会名单.csv")
    assert "B 的名单.csv" not in page
    assert "Needs mapping" in page
    assert f'href="{reverse("contacts:import-errors", args=[first.pk])}">1</a>' in page
    assert second.pk


def test_someone_without_the_import_permission_gets_403_and_other_units_404(
    world, marketer, client_en
):
    contact_import = _done(world.a, marketer)
    client_en.force_login(world.viewer)
    assert client_en.get(reverse("contacts:imports")).status_code == 403
    assert client_en.get(reverse("contacts:import-new")).status_code == 403

    client_en.force_login(world.b_marketer)
    for name in ("import-detail", "import-progress", "import-errors"):
        assert (
            client_en.get(reverse(f"contacts:{name}", args=[contact_import.pk])).status_code == 404
        )


def test_the_error_file_downloads_with_a_bom_for_excel(world, marketer, client_en):
    contact_import = _done(world.a, marketer)
    client_en.force_login(marketer)

    response = client_en.get(reverse("contacts:import-errors", args=[contact_import.pk]))

    body = b"".join(response.streaming_content)
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        "attachment; filename*=utf-8''%E5%B1%95%E4%BC%9A%E5%90%8D%E5%8D%95-errors.csv"
    )
    assert body.startswith(codecs.BOM_UTF8)
    assert body.decode("utf-8-sig").splitlines() == [
        "行号/row,列/column,值/value,原因/reason",
        "3,手机,12345,not a valid mobile or phone number",
    ]


# --- API ------------------------------------------------------------------------------------


def test_the_api_uploads_and_starts_in_one_call_then_reports(
    world, marketer, api, django_capture_on_commit_callbacks
):
    api.force_authenticate(marketer)

    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(
            "/api/v1/imports/",
            {
                "file": SimpleUploadedFile("展会名单.csv", CSV),
                "unit": world.a.id,
                "mapping": '{"手机": "phone", "姓名": "name", "公司": "company_name"}',
                "consent_basis": "legitimate",
                "consent_channels": ["email"],
            },
            format="multipart",
        )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["is_draft"], body["encoding"]) == ("pending", False, "gb18030")
    assert body["consent"] == {"basis": "legitimate", "channels": ["email"]}
    assert len(callbacks) == 1
    imports.contact_import_run(import_id=body["id"])

    status = api.get(f"/api/v1/imports/{body['id']}/").json()
    assert (status["status"], status["imported_rows"], status["error_rows"]) == ("done", 1, 1)
    errors = api.get(f"/api/v1/imports/{body['id']}/errors/").json()
    assert errors == {
        "next": None,
        "results": [
            {
                "line": 1,
                "row": 3,
                "column": "手机",
                "value": "12345",
                "reason": "not a valid mobile or phone number",
            }
        ],
    }
    download = api.get(f"/api/v1/imports/{body['id']}/errors/?download=1")
    assert b"".join(download.streaming_content).startswith(codecs.BOM_UTF8)


def test_the_api_pages_through_errors(world, marketer, api):
    rows = "".join(f"客户{i},1{i:04d},,华澜\r\n" for i in range(5))
    content = ("姓名,手机,邮箱,公司\r\n" + rows).encode()
    contact_import = _done(world.a, marketer, content)
    api.force_authenticate(marketer)

    first = api.get(f"/api/v1/imports/{contact_import.pk}/errors/?page_size=2").json()
    second = api.get(first["next"]).json()

    assert [e["row"] for e in first["results"]] == [2, 3]
    assert [e["row"] for e in second["results"]] == [4, 5]
    assert second["next"] is not None


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"mapping": '{"手机号码": "phone"}'}, "mapping", "Column “手机号码” is not in the file"),
        (
            {
                "mapping": '{"手机": "phone"}',
                "consent_basis": "opt-out",
                "consent_channels": ["email"],
            },
            "consent",
            "“opt-out” is not a consent basis",
        ),
        ({"mapping": "{not json"}, "mapping", "Not valid JSON."),
    ],
    ids=["unknown-column", "invalid-consent-basis", "broken-json"],
)
def test_the_api_refuses_a_bad_mapping_or_consent_and_keeps_nothing(
    world, marketer, api, settings, data, field, message
):
    api.force_authenticate(marketer)

    response = api.post(
        "/api/v1/imports/",
        {"file": SimpleUploadedFile("名单.csv", CSV), "unit": world.a.id, **data},
        format="multipart",
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error["fields"][field][0]
    assert ContactImport.objects.count() == 0
    assert not list((settings.MEDIA_ROOT).rglob("*.csv"))


def test_the_api_refuses_a_unit_the_caller_cannot_import_into(world, marketer, api):
    api.force_authenticate(marketer)

    response = api.post(
        "/api/v1/imports/",
        {"file": SimpleUploadedFile("名单.csv", CSV), "unit": world.b.id},
        format="multipart",
    )

    assert response.status_code == 400
    assert "unit" in response.json()["error"]["fields"]
    assert ContactImport.objects.count() == 0


def test_a_draft_made_by_the_api_is_started_later(world, marketer, api):
    api.force_authenticate(marketer)
    created = api.post(
        "/api/v1/imports/",
        {"file": SimpleUploadedFile("名单.csv", CSV), "unit": world.a.id},
        format="multipart",
    ).json()
    assert created["is_draft"] is True

    started = api.post(
        f"/api/v1/imports/{created['id']}/start/",
        {"mapping": {"columns": {"手机": "phone"}, "required": []}},
        format="json",
    )
    again = api.post(
        f"/api/v1/imports/{created['id']}/start/", {"mapping": {"手机": "phone"}}, format="json"
    )

    assert started.status_code == 200
    assert started.json()["mapping"]["columns"]["手机"] == "phone"
    assert again.status_code == 400
    assert again.json()["error"]["message"] == (
        "Some fields are not valid: This import has already started."
    )


def test_the_api_lists_only_the_callers_units(world, marketer, api):
    _done(world.a, marketer)
    _upload(world.b, world.b_marketer, name="B.csv")
    api.force_authenticate(marketer)

    names = [r["original_name"] for r in api.get("/api/v1/imports/").json()["results"]]

    assert names == ["展会名单.csv"]
    assert Contact.objects.count() == 1


def test_the_api_refuses_a_file_over_the_limit_with_its_reason(world, marketer, api, settings):
    settings.CONTACT_IMPORT_MAX_BYTES = 10
    api.force_authenticate(marketer)

    response = api.post(
        "/api/v1/imports/",
        {"file": SimpleUploadedFile("名单.csv", CSV), "unit": world.a.id},
        format="multipart",
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["file"] == [
        f"The file is {len(CSV)}\xa0bytes; files up to 10\xa0bytes can be imported. "
        "Split it into smaller files."
    ]
    assert ContactImport.objects.count() == 0
