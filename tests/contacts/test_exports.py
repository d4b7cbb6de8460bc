"""Exporting a filtered contact list: safe cells, exact rows, audited, scoped downloads."""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime, timedelta

import openpyxl
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.contacts.identity_keys import make_key
from apps.contacts.models import (
    Channel,
    ContactExport,
    CustomField,
    JobStatus,
    Segment,
    Tag,
)
from apps.contacts.services import exports as export_service
from apps.contacts.services.exports import contact_export_create, contact_export_run, neutralise
from apps.contacts.services.resolution import contact_resolve
from apps.contacts.services.tags import tags_add
from apps.core.models import AuditLog
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")
# session, user, roles, the form's units, tags, channels and fields, one page of jobs,
# and the shell's unit switcher and bell (unread count).
QUERIES = 10
HEADERS = [
    "ID",
    "Name",
    "Job title",
    "Company",
    "Department",
    "Province",
    "City",
    "Industry",
    "Phones",
    "Emails",
    "Tags",
    "First seen",
    "Last seen",
]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def english(world):
    for user in (world.marketer, world.b_marketer, world.admin, world.group_admin):
        user.language = "en"
        user.save(update_fields=["language"])


@pytest.fixture
def run_export(django_capture_on_commit_callbacks):
    """Create an export as the console does, then run the job the commit would queue."""

    def run(user, file_type="csv", filters=None):
        with django_capture_on_commit_callbacks() as queued:
            export = contact_export_create(
                acting_user=user, filters=filters or {}, file_type=file_type
            )
        assert len(queued) == 1  # the worker job, dispatched only on commit
        return contact_export_run(export_id=export.pk)

    return run


def _contact(unit, *pairs, **attributes):
    keys = [make_key(kind, raw, *scope) for kind, raw, *scope in pairs]
    return contact_resolve(
        unit=unit, keys=keys, attributes=attributes, source="import", acting_user=SYSTEM
    ).contact


def _csv_rows(export):
    raw = export.file.open("rb").read()
    export.file.close()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the file as UTF-8
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def test_a_formula_name_is_text_in_the_xlsx_file(world, english, run_export):
    # Given a contact who typed a formula as their name into a form …
    _contact(world.a, ("email", "evil@example.cn"), name='=HYPERLINK("x")')

    export = run_export(world.marketer, "xlsx")

    # … the cell holds exactly what they typed, typed as text (never a formula), with
    # Excel's quote prefix so it stays text even when someone edits the cell.
    sheet = openpyxl.load_workbook(export.file.path).active
    rows = list(sheet.iter_rows())
    assert [c.value for c in rows[0]] == HEADERS
    name = rows[1][1]
    assert name.value == '=HYPERLINK("x")'
    assert name.data_type == "s"
    assert name.quotePrefix is True
    # Phones are E.164 text ("+86…"), not numbers Excel would mangle.
    assert rows[1][9].value == "evil@example.cn"


def test_a_formula_name_starts_with_an_apostrophe_in_the_csv_file(world, english, run_export):
    _contact(world.a, ("phone", "13800138000"), name='=HYPERLINK("x")', company_name="华澜")

    rows = _csv_rows(run_export(world.marketer, "csv"))

    assert rows[0] == HEADERS
    assert rows[1][1] == '\'=HYPERLINK("x")'
    assert rows[1][3] == "华澜"
    assert rows[1][8] == "'+8613800138000"


@pytest.mark.parametrize(
    ("raw", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+86", "'+86"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("张伟", "张伟"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_every_formula_trigger_is_neutralised(raw, written):
    assert neutralise(raw) == written


def test_the_export_is_audited_with_who_and_how_many_rows(world, english, run_export):
    for n in range(3):
        _contact(world.a, ("email", f"p{n}@example.cn"))
    _contact(world.b, ("email", "other-unit@example.cn"))

    export = run_export(world.marketer, "csv")

    assert export.status == JobStatus.DONE
    assert (export.total_rows, export.processed_rows) == (3, 3)
    entry = AuditLog.objects.get(action="contact.export")
    assert entry.actor == world.marketer
    assert entry.unit == world.a
    assert entry.object_id == str(export.pk)
    assert entry.after == {"rows": 3, "file_type": "csv", "filters": {}}


def test_only_the_users_units_are_exported(world, english, run_export):
    mine = _contact(world.a, ("email", "mine@example.cn"))
    _contact(world.b, ("email", "theirs@example.cn"))
    shared = _contact(world.b, ("email", "shared@example.cn"))
    _contact(world.a, ("email", "shared@example.cn"))

    rows = _csv_rows(run_export(world.marketer, "csv"))

    assert [int(r[0]) for r in rows[1:]] == [mine.pk, shared.pk]


def test_filters_select_exactly_the_matching_contacts(world, english, run_export):
    vip = Tag.objects.create(unit=world.a, name="VIP")
    baidu = Channel.objects.create(unit=world.a, code="baidu", name="百度", kind="sem")
    kind = CustomField.objects.create(
        unit=world.a,
        key="kind",
        label="客户类型",
        type="choice",
        options=[{"value": "ka", "label": "大客户"}, {"value": "smb", "label": "中小"}],
    )
    ka = {"custom": {kind.storage_key: "ka"}}
    a1 = _contact(world.a, ("phone", "13800138001"), name="张伟", company_name="华澜", **ka)
    a2 = _contact(world.a, ("phone", "13800138002"), name="张敏", source_channel_id=baidu.pk)
    a3 = _contact(world.a, ("phone", "13800138003"), name="李娜", company_name="华为")
    tags_add(contact_ids=[a1.pk, a3.pk], tags=[vip], source="manual", actor_label="t")

    def exported(filters):
        rows = _csv_rows(run_export(world.marketer, "csv", filters))
        return [int(r[0]) for r in rows[1:]]

    assert exported({"tag": vip.pk}) == [a1.pk, a3.pk]
    assert exported({"q": "张"}) == [a1.pk, a2.pk]
    assert exported({"q": "华"}) == [a1.pk, a3.pk]  # company prefix
    assert exported({"q": "138 0013 8002"}) == [a2.pk]  # any spelling of the phone
    assert exported({"source": baidu.pk}) == [a2.pk]
    assert exported({"custom": {kind.storage_key: "大客户"}}) == [a1.pk]
    assert exported({"tag": vip.pk, "q": "李"}) == [a3.pk]
    assert exported({"unit": world.a.pk}) == [a1.pk, a2.pk, a3.pk]


def test_columns_carry_tags_custom_labels_and_local_times(world, english, run_export):
    kind = CustomField.objects.create(
        unit=world.a,
        key="kind",
        label="客户类型",
        type="multi_choice",
        options=[{"value": "ka", "label": "大客户"}, {"value": "oem", "label": "OEM"}],
    )
    size = CustomField.objects.create(unit=world.a, key="size", label="人数", type="number")
    seen = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)
    contact = contact_resolve(
        unit=world.a,
        keys=[make_key("phone", "13800138000"), make_key("email", "zw@example.cn")],
        attributes={
            "name": "张伟",
            "title": "采购经理",
            "city": "上海",
            "custom": {kind.storage_key: ["ka", "oem"], size.storage_key: 250},
        },
        source="import",
        observed_at=seen,
        acting_user=SYSTEM,
    ).contact
    b_tag = Tag.objects.create(unit=world.b, name="B-only")
    tags_add(
        contact_ids=[contact.pk],
        tags=[Tag.objects.create(unit=world.a, name="VIP"), b_tag],
        source="manual",
        actor_label="t",
    )

    sheet = openpyxl.load_workbook(run_export(world.marketer, "xlsx").file.path).active
    header, row = [[c.value for c in r] for r in sheet.iter_rows()]

    assert header == [*HEADERS, "客户类型", "人数"]
    assert row == [
        contact.pk,
        "张伟",
        "采购经理",
        None,  # empty text is an empty cell
        None,
        None,
        "上海",
        None,
        "+8613800138000",
        "zw@example.cn",
        "VIP",  # unit B's tag is not the marketer's to see
        datetime(2026, 3, 1, 10, 30),  # Asia/Shanghai wall clock
        datetime(2026, 3, 1, 10, 30),
        "大客户; OEM",
        250,
    ]


def test_a_filter_outside_the_users_units_is_refused_and_nothing_is_queued(world):
    b_tag = Tag.objects.create(unit=world.b, name="B-only")

    with pytest.raises(ValidationError) as caught:
        contact_export_create(
            acting_user=world.marketer, filters={"tag": b_tag.pk}, file_type="csv"
        )

    assert caught.value.message_dict == {
        "tag": ["That choice does not exist in your business units."]
    }
    assert ContactExport.objects.count() == 0


def test_a_user_without_the_export_role_cannot_export(world):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        contact_export_create(acting_user=world.sdr, filters={}, file_type="csv")
    assert ContactExport.objects.count() == 0


def test_a_job_runs_once_even_when_delivered_twice(world, english, run_export):
    _contact(world.a, ("email", "x@example.cn"))
    export = run_export(world.marketer, "csv")

    assert contact_export_run(export_id=export.pk) is None
    assert AuditLog.objects.filter(action="contact.export").count() == 1


def test_progress_is_saved_every_chunk(world, english, run_export, monkeypatch):
    monkeypatch.setattr(export_service, "CHUNK_SIZE", 2)
    seen: list[int] = []
    original = export_service._CsvWriter.write

    def spy(self, row):
        seen.append(ContactExport.objects.get().processed_rows)
        original(self, row)

    monkeypatch.setattr(export_service._CsvWriter, "write", spy)
    for n in range(5):
        _contact(world.a, ("email", f"p{n}@example.cn"))

    export = run_export(world.marketer, "csv")

    # header, then rows 1–5: the counter moves after every second row.
    assert seen == [0, 0, 0, 2, 2, 4]
    assert (export.total_rows, export.processed_rows) == (5, 5)


def test_a_failure_is_recorded_on_the_job(world, english, run_export, monkeypatch):
    _contact(world.a, ("email", "x@example.cn"))

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export_service, "_row", boom)
    export = run_export(world.marketer, "csv")

    assert export.status == JobStatus.FAILED
    assert export.failure == "disk full"
    assert not export.file
    assert AuditLog.objects.filter(action="contact.export").count() == 0


# --- Pages and downloads -------------------------------------------------------------------


def test_the_creator_downloads_the_file_and_unit_b_gets_404(world, english, run_export, client):
    _contact(world.a, ("email", "x@example.cn"), name="张伟")
    export = run_export(world.marketer, "csv")
    url = f"/console/exports/{export.pk}/download/"

    client.force_login(world.marketer)
    response = client.get(url)
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert "张伟".encode() in body
    assert response["Content-Disposition"] == f'attachment; filename="contacts-{export.pk}.csv"'

    # The unit's administrator may fetch it too …
    client.force_login(world.admin)
    assert client.get(url).status_code == 200
    # … a marketer of unit B may not even learn it exists.
    client.force_login(world.b_marketer)
    assert client.get(url).status_code == 404
    assert client.get(f"/console/exports/{export.pk}/row/").status_code == 404


def test_a_fellow_marketer_cannot_download_someone_elses_export(world, english, run_export, client):
    from apps.core.models import User
    from tests.factories import member

    colleague = User.objects.create_user(username="a-marketer-2")
    member(colleague, world.a, "marketer")
    _contact(world.a, ("email", "x@example.cn"))
    export = run_export(world.marketer, "csv")

    client.force_login(colleague)
    assert client.get(f"/console/exports/{export.pk}/download/").status_code == 404


def test_the_page_starts_an_export_with_the_list_filters(
    world, client, django_capture_on_commit_callbacks
):
    vip = Tag.objects.create(unit=world.a, name="VIP")
    client.force_login(world.marketer)

    # The contact list links here with its query string, which fills the form.
    page = client.get(f"/console/exports/?q=张&tag={vip.pk}", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    form = page.context["form"]
    assert (form.initial["q"], form.initial["tag"]) == ("张", str(vip.pk))

    with django_capture_on_commit_callbacks() as queued:
        response = client.post("/console/exports/", {"q": "张", "tag": vip.pk, "file_type": "xlsx"})
    assert response.status_code == 302
    export = ContactExport.objects.get()
    assert (export.created_by, export.unit, export.file_type) == (world.marketer, world.a, "xlsx")
    assert export.filters == {"q": "张", "tag": vip.pk}
    assert export.status == JobStatus.PENDING
    assert len(queued) == 1


def test_a_forged_tag_id_is_a_form_error(world, client):
    b_tag = Tag.objects.create(unit=world.b, name="B-only")
    client.force_login(world.marketer)

    response = client.post("/console/exports/", {"tag": b_tag.pk, "file_type": "csv"})

    assert response.status_code == 400
    assert "tag" in response.context["form"].errors
    assert ContactExport.objects.count() == 0


def test_people_without_the_export_role_see_403(world, client):
    client.force_login(world.viewer)
    assert client.get("/console/exports/").status_code == 403


def test_the_running_row_polls_and_the_done_row_links_the_file(world, english, run_export, client):
    _contact(world.a, ("email", "x@example.cn"))
    done = run_export(world.marketer, "csv")
    waiting = ContactExport.objects.create(unit=world.a, created_by=world.marketer, file_type="csv")
    client.force_login(world.marketer)

    pending_row = client.get(f"/console/exports/{waiting.pk}/row/").content.decode()
    done_row = client.get(f"/console/exports/{done.pk}/row/").content.decode()

    assert 'hx-trigger="every 2s"' in pending_row
    assert "hx-trigger" not in done_row
    assert f"/console/exports/{done.pk}/download/" in done_row


def test_the_list_query_count_is_pinned(world, client, django_assert_num_queries):
    vip = Tag.objects.create(unit=world.a, name="VIP")
    client.force_login(world.marketer)

    def jobs(n):
        for _ in range(n):
            ContactExport.objects.create(
                unit=world.a, created_by=world.marketer, file_type="csv", filters={"tag": vip.pk}
            )

    jobs(1)
    with django_assert_num_queries(QUERIES):
        assert client.get("/console/exports/").status_code == 200
    jobs(30)  # more than a page
    with django_assert_num_queries(QUERIES):
        assert client.get("/console/exports/").status_code == 200


# --- API -----------------------------------------------------------------------------------


def test_the_api_starts_an_export_and_scopes_it(world, api, django_capture_on_commit_callbacks):
    vip = Tag.objects.create(unit=world.a, name="VIP")
    api.force_authenticate(world.marketer)

    with django_capture_on_commit_callbacks() as queued:
        created = api.post(
            "/api/v1/contact-exports/",
            {"file_type": "csv", "filters": {"tag": vip.pk}},
            format="json",
        )
    assert created.status_code == 201, created.content
    assert created.json()["status"] == "pending"
    assert created.json()["filters"] == {"tag": vip.pk}
    assert len(queued) == 1

    api.force_authenticate(world.b_marketer)
    assert api.get(f"/api/v1/contact-exports/{created.json()['id']}/").status_code == 404
    assert api.get("/api/v1/contact-exports/").json()["results"] == []


def test_the_api_exports_a_segments_members_and_refuses_another_units_segment(world, api):
    # given a segment of unit A and one of unit B
    mine = Segment.objects.create(unit=world.a, name="名单", kind="static")
    theirs = Segment.objects.create(unit=world.b, name="B 名单", kind="static")
    api.force_authenticate(world.marketer)

    # when A's marketer asks for each segment's members
    created = api.post(
        "/api/v1/contact-exports/",
        {"file_type": "csv", "filters": {"segment": mine.pk}},
        format="json",
    )
    refused = api.post(
        "/api/v1/contact-exports/",
        {"file_type": "csv", "filters": {"segment": theirs.pk}},
        format="json",
    )

    # then the first is queued with the filter kept; the other is refused, naming it
    assert created.status_code == 201, created.content
    assert created.json()["filters"] == {"segment": mine.pk}
    assert refused.status_code == 400
    assert refused.json()["error"]["fields"] == {
        "segment": ["That choice does not exist in your business units."]
    }
    assert ContactExport.objects.count() == 1


def test_the_api_names_a_bad_filter(world, api):
    b_tag = Tag.objects.create(unit=world.b, name="B-only")
    api.force_authenticate(world.marketer)

    response = api.post(
        "/api/v1/contact-exports/",
        {"file_type": "csv", "filters": {"tag": b_tag.pk}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "tag": ["That choice does not exist in your business units."]
    }
    assert ContactExport.objects.count() == 0


def test_the_api_downloads_a_finished_export(world, english, run_export, api):
    _contact(world.a, ("email", "x@example.cn"))
    export = run_export(world.marketer, "xlsx")
    api.force_authenticate(world.marketer)

    detail = api.get(f"/api/v1/contact-exports/{export.pk}/").json()
    response = api.get(f"/api/v1/contact-exports/{export.pk}/download/")

    assert detail["download_url"].endswith(f"/api/v1/contact-exports/{export.pk}/download/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:2] == b"PK"  # a zip: the XLSX file


def test_old_export_files_are_deleted_and_the_job_stays(world, english, run_export, client):
    _contact(world.a, ("email", "x@example.cn"))
    old = run_export(world.marketer, "csv")
    fresh = run_export(world.marketer, "csv")
    path = old.file.path
    ContactExport.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=8))

    assert export_service.contact_export_files_expire() == 1

    old.refresh_from_db()
    fresh.refresh_from_db()
    assert (old.status, old.file.name) == (JobStatus.DONE, "")
    assert not os.path.exists(path)
    assert fresh.file.name != ""
    client.force_login(world.marketer)
    assert client.get(f"/console/exports/{old.pk}/download/").status_code == 404
    assert (
        "File expired"
        in client.get(f"/console/exports/{old.pk}/row/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    )
