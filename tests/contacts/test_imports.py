"""Contact import: files in every encoding Excel writes, bad rows named by row and column,
nothing half-landed, set-based batches, the mapping remembered per unit."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from apps.contacts.identity_keys import make_key
from apps.contacts.models import (
    ConsentEvent,
    ConsentState,
    Contact,
    ContactImport,
    ContactMerge,
    ContactTag,
    ContactUnit,
    CustomField,
    ErasedIdentity,
    Identity,
    ImportMapping,
    JobStatus,
    Segment,
    Tag,
)
from apps.contacts.selectors.imports import mapping_offer
from apps.contacts.services import imports
from apps.contacts.services.resolution import contact_resolve, value_hash
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db

HEADER = ["姓名", "手机", "邮箱", "公司", "职位", "城市"]
MAPPING = {
    "columns": {
        "姓名": "name",
        "手机": "phone",
        "邮箱": "email",
        "公司": "company_name",
        "职位": "title",
        "城市": "city",
    },
    "required": ["公司"],
}


@pytest.fixture(autouse=True)
def _media_and_language(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    with translation.override("en"):
        yield


@pytest.fixture
def marketer(world):
    # The job writes its messages in the importing user's language.
    world.marketer.language = "en"
    world.marketer.save(update_fields=["language"])
    return world.marketer


def csv_bytes(rows, *, header=HEADER, encoding="utf-8", bom=False):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = buffer.getvalue().encode(encoding)
    return codecs.BOM_UTF8 + data if bom else data


def upload(unit, user, content, name="contacts.csv"):
    return imports.contact_import_create(
        unit=unit, upload=SimpleUploadedFile(name, content), acting_user=user
    )


def run_import(
    unit, user, content, mapping=MAPPING, *, name="contacts.csv", batch_size=None, **start
):
    contact_import = upload(unit, user, content, name)
    imports.contact_import_start(
        contact_import=contact_import, mapping=mapping, acting_user=user, **start
    )
    return imports.contact_import_run(
        import_id=contact_import.pk, batch_size=batch_size or imports.BATCH_SIZE
    )


def error_lines(contact_import):
    with contact_import.error_file.open("rb") as f:
        raw = f.read()
    assert raw.startswith(codecs.BOM_UTF8), "Excel needs the BOM to read Chinese"
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["行号/row", "列/column", "值/value", "原因/reason"]
    return [(int(r[0]), r[1], r[2], r[3]) for r in rows[1:]]


def counts(contact_import):
    return (
        contact_import.status,
        contact_import.total_rows,
        contact_import.processed_rows,
        contact_import.imported_rows,
        contact_import.error_rows,
        contact_import.created_contacts,
        contact_import.matched_contacts,
    )


# --- The acceptance test --------------------------------------------------------------------


def _acceptance_file():
    """10 000 rows; every 200th (from the 8th) is bad, in six ways: 50 bad rows."""
    rows, expected = [], set()
    kinds = ["phone", "email", "required", "duplicate", "long", "emoji"]
    good_phones: list[tuple[int, str]] = []
    bad = 0
    for i in range(10_000):
        number = i + 2  # Excel's row number: the header is row 1
        phone, email = f"139{i:08d}", f"user{i}@example.cn"
        row = [f"客户{i}", phone, email, f"华澜客户{i % 50}", "采购经理", "上海"]
        if i % 200 == 7:
            kind = kinds[bad % len(kinds)]
            bad += 1
            if kind == "phone":
                row[1] = "1390000"  # too short to be a phone
                expected.add((number, "手机", "not a valid mobile or phone number"))
            elif kind == "email":
                row[2] = f"user{i}@example"
                expected.add((number, "邮箱", "not a valid email address"))
            elif kind == "required":
                if bad % 2:  # no identifier at all
                    row[1] = row[2] = ""
                    expected.add(
                        (number, "手机、邮箱", "no identifier: fill at least one of 手机、邮箱")
                    )
                else:  # the column the user marked required
                    row[3] = ""
                    expected.add((number, "公司", "required, but empty"))
            elif kind == "duplicate":
                # Alternately the row just before and the file's first row (an earlier batch).
                first_number, first_phone = good_phones[-1] if bad % 2 else good_phones[0]
                row[1] = first_phone
                expected.add(
                    (number, "手机", f"duplicate of row {first_number} (same Mobile phone)")
                )
            elif kind == "long":
                row[0] = "长" * 101
                expected.add((number, "姓名", "longer than 100 characters (has 101)"))
            else:
                row[0] = "李娜😀"
                expected.add(
                    (
                        number,
                        "姓名",
                        "contains emoji or other characters outside the Basic Multilingual "
                        "Plane, which many systems cannot store",
                    )
                )
        else:
            good_phones.append((number, phone))
        rows.append(row)
    assert bad == 50
    # The emoji row cannot be GBK: Excel would have written it as "?"; a GB18030 file
    # (what Chinese Windows' "CSV" really is once a character falls outside GBK) can hold it.
    return csv_bytes(rows, encoding="gb18030"), expected


# Really committed batch by batch, as in the worker: inside one test transaction the advisory
# locks of all ten batches would pile up until the end.
@pytest.mark.django_db(transaction=True)
def test_a_gbk_file_of_10000_rows_with_50_bad_ones_imports_9950_and_names_every_bad_row(
    world, marketer, monkeypatch
):
    content, expected = _acceptance_file()
    assert "客户1".encode("gbk") in content  # really a GBK-family file, not UTF-8
    progress: list[int] = []
    record = imports._ImportJob._progress

    def spy(job, rows, landed):
        record(job, rows, landed)
        progress.append(ContactImport.objects.get(pk=job.ci.pk).processed_rows)

    monkeypatch.setattr(imports._ImportJob, "_progress", spy)

    done = run_import(world.a, marketer, content)

    assert done.encoding == "gb18030"
    assert counts(done) == ("done", 10_000, 10_000, 9_950, 50, 9_950, 0)
    # The progress counters moved batch by batch (that is what the bar polls).
    assert progress == [1_000 * n for n in range(1, 11)]
    lines = error_lines(done)
    assert {(row, column, reason) for row, column, _value, reason in lines} == expected
    assert len(lines) == 50
    assert len({row for row, *_ in lines}) == 50
    assert Contact.objects.count() == 9_950
    assert Identity.objects.count() == 2 * 9_950
    assert ContactUnit.objects.filter(unit=world.a).count() == 9_950
    first = Contact.objects.get(identities__value="+8613900000000")
    assert (first.name, first.company_name, first.title, first.city) == (
        "客户0",
        "华澜客户0",
        "采购经理",
        "上海",
    )
    # No bad row half-landed: not one of their identifiers is stored.
    bad_rows = {row for row, *_ in lines}
    bad_emails = {f"user{n - 2}@example.cn" for n in bad_rows}
    assert not Identity.objects.filter(value__in=bad_emails).exists()


# --- Encodings and file types ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("bom", "encoding"), [(True, "utf-8-sig"), (False, "utf-8")], ids=["bom", "no-bom"]
)
def test_utf8_with_and_without_bom_imports_the_same(world, marketer, bom, encoding):
    content = csv_bytes(
        [["李娜", "138 0013 8000", "Li.Na@Example.CN", "华澜科技", "市场总监", "杭州"]], bom=bom
    )

    done = run_import(world.a, marketer, content)

    assert done.encoding == encoding
    assert counts(done) == ("done", 1, 1, 1, 0, 1, 0)
    contact = Contact.objects.get()
    assert (contact.name, contact.company_name, contact.title, contact.city) == (
        "李娜",
        "华澜科技",
        "市场总监",
        "杭州",
    )
    assert sorted(contact.identities.values_list("kind", "value")) == [
        ("email", "li.na@example.cn"),
        ("phone", "+8613800138000"),
    ]
    assert not done.error_file


def test_a_file_ascii_at_first_and_gbk_further_on_is_read_as_gbk(world, marketer):
    header = ["name", "mobile", "email", "company", "title", "city"]
    title = "Purchasing manager, eastern region"
    rows = [[f"user{i}", f"139{i:08d}", "", "ACME", title, ""] for i in range(1_100)]
    rows.append(["王芳", "13812345678", "", "华澜", "", "北京"])
    content = csv_bytes(rows, header=header, encoding="gbk")
    assert content[:65536].isascii()
    mapping = {"name": "name", "mobile": "phone", "company": "company_name", "city": "city"}

    done = run_import(world.a, marketer, content, mapping)

    assert (done.status, done.encoding, done.imported_rows) == ("done", "gb18030", 1_101)
    assert Contact.objects.get(identities__value="+8613812345678").name == "王芳"


def _with_bad_bytes_on_line(line):
    good = csv_bytes(
        [["李娜", f"139{i:08d}", "", "华澜", "", ""] for i in range(line - 2)], bom=True
    )
    bad = "张伟,13800138000,,".encode() + b"\xe5\xbc" + b",,\r\n"
    # The offset counts bytes from the file's start, BOM included (what a hex editor shows).
    return good + bad, len(good) + len("张伟,13800138000,,".encode())


def test_a_file_whose_first_rows_do_not_decode_is_refused_at_upload(world, marketer):
    content, offset = _with_bad_bytes_on_line(3)

    with pytest.raises(ValidationError) as refused:
        upload(world.a, marketer, content)

    assert refused.value.message_dict == {
        "file": [
            f"The file is not valid UTF-8 (BOM) text: line 3 (byte {offset}) cannot be read. "
            "Save the file again as “CSV UTF-8” and import it again."
        ]
    }
    assert ContactImport.objects.count() == 0


def test_a_file_that_stops_decoding_further_on_fails_naming_the_line_and_byte(world, marketer):
    content, offset = _with_bad_bytes_on_line(40)

    done = run_import(world.a, marketer, content)

    assert done.status == "failed"
    assert done.failure == (
        f"The file is not valid UTF-8 (BOM) text: line 40 (byte {offset}) cannot be read. "
        "Save the file again as “CSV UTF-8” and import it again."
    )
    assert done.processed_rows == 0
    assert Contact.objects.count() == 0


def test_an_xlsx_workbook_imports_with_numbers_as_phones_and_blank_rows_skipped(world, marketer):
    import openpyxl

    fields = CustomField.objects.create(unit=world.a, key="since", label="首次合作", type="date")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["姓名", "手机", "公司", "首次合作"])
    sheet.append(["李娜", 13800138000, "华澜", dt.datetime(2024, 3, 1)])
    sheet.append([None, None, None, None])
    sheet.append(["张伟", "1390013", "华澜", None])
    sheet.append(["王芳", 13900139000.0, "华澜", "2025/6/30"])
    buffer = io.BytesIO()
    book.save(buffer)
    mapping = {"姓名": "name", "手机": "phone", "公司": "company_name", "首次合作": "custom:since"}

    done = run_import(world.a, marketer, buffer.getvalue(), mapping, name="名单.xlsx")

    assert (done.file_type, done.encoding) == ("xlsx", "")
    assert counts(done) == ("done", 3, 3, 2, 1, 2, 0)
    assert [line[:2] for line in error_lines(done)] == [(4, "手机")]
    contacts = {c.name: c for c in Contact.objects.all()}
    assert contacts["李娜"].custom == {str(fields.pk): "2024-03-01"}
    assert contacts["王芳"].custom == {str(fields.pk): "2025-06-30"}
    assert contacts["王芳"].identities.get().value == "+8613900139000"


# --- Refusals: a clear message, nothing stored ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "contacts.pdf",
            b"%PDF-1.4",
            "“contacts.pdf” is not a file type we can import: use a .csv, .txt or .xlsx file.",
        ),
        (
            "contacts.xls",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100,
            "Old Excel files (.xls) cannot be imported. In Excel choose Save As and pick "
            "“Excel Workbook (.xlsx)” or “CSV UTF-8”.",
        ),
        (
            "contacts.xlsx",
            b"name,phone\n",
            "“contacts.xlsx” is named .xlsx but is not an Excel workbook.",
        ),
        (
            "contacts.csv",
            b"PK\x03\x04" + b"\x00" * 100,
            "“contacts.csv” is an Excel workbook, not a CSV: rename it to .xlsx or save it as CSV.",
        ),
        ("contacts.csv", b"", "The file is empty."),
        (
            "contacts.csv",
            "姓名,手机\r\n".encode(),
            "The file has a header row but no rows under it.",
        ),
    ],
    ids=["pdf", "xls", "fake-xlsx", "xlsx-named-csv", "empty", "header-only"],
)
def test_a_file_we_cannot_read_is_refused_and_nothing_is_stored(
    world, marketer, settings, name, content, message
):
    with pytest.raises(ValidationError) as refused:
        upload(world.a, marketer, content, name)

    assert refused.value.message_dict == {"file": [message]}
    assert ContactImport.objects.count() == 0
    assert not (settings.MEDIA_ROOT / "imports").exists() or not any(
        (settings.MEDIA_ROOT / "imports").rglob("*.*")
    )


def test_a_file_over_the_size_limit_is_refused(world, marketer, settings):
    settings.CONTACT_IMPORT_MAX_BYTES = 1024
    content = csv_bytes([["李娜", f"139{i:08d}", "", "华澜", "", ""] for i in range(100)])

    with pytest.raises(ValidationError) as refused:
        upload(world.a, marketer, content)

    assert refused.value.message_dict == {
        "file": [
            f"The file is {len(content) / 1024:.1f}\xa0KB; files up to 1.0\xa0KB can be "
            "imported. Split it into smaller files."
        ]
    }
    assert ContactImport.objects.count() == 0


def test_someone_who_may_not_import_into_a_unit_cannot_upload_there(world, marketer):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        upload(world.b, marketer, csv_bytes([["李娜", "13800138000", "", "", "", ""]]))
    assert ContactImport.objects.count() == 0


@pytest.mark.parametrize(
    ("start", "errors"),
    [
        (
            {"mapping": {"姓名": "name", "手机号码": "phone"}},
            {
                "mapping": [
                    "Column “手机号码” is not in the file; its columns are: "
                    "姓名、手机、邮箱、公司、职位、城市."
                ]
            },
        ),
        (
            {"mapping": {"手机": "phone", "姓名": "nickname"}},
            {
                "mapping": [
                    "Column “姓名”: “nickname” is not a field a column can be imported into."
                ]
            },
        ),
        (
            {"mapping": {"手机": "phone", "公司": "custom:tier"}},
            {
                "mapping": [
                    "Column “公司” is mapped to custom field “tier”, which this business unit "
                    "does not have."
                ]
            },
        ),
        (
            {"mapping": {"姓名": "name", "公司": "company_name"}},
            {
                "mapping": [
                    "Map at least one column to an identifier (mobile phone, email, WeChat, "
                    "WeCom, Douyin or CRM id): without one no row can become a contact."
                ]
            },
        ),
        (
            {"mapping": {"手机": "phone", "姓名": "name", "职位": "name"}},
            {"mapping": ["Columns “姓名” and “职位” both go to Name; map only one."]},
        ),
        (
            {"mapping": {"手机": "wechat_openid"}},
            {
                "mapping": [
                    "A column holds WeChat openids: give the official account's app id, since "
                    "an openid means nothing without it."
                ]
            },
        ),
        (
            {"mapping": MAPPING, "consent": {"basis": "implied", "channels": ["email"]}},
            {
                "consent": [
                    "“implied” is not a consent basis; use one of consent, contract, "
                    "legitimate, or none."
                ]
            },
        ),
        (
            {"mapping": MAPPING, "consent": {"basis": "consent", "channels": []}},
            {"consent": ["Choose the channels the consent basis covers."]},
        ),
        (
            {"mapping": MAPPING, "consent": {"basis": "consent", "channels": ["fax"]}},
            {"consent": ["Unknown consent channel(s): fax; use email, sms, wechat, phone."]},
        ),
        (
            {"mapping": MAPPING, "tag_ids": [999_999]},
            {"tags": ["Tag(s) 999999 are not tags of A 事业部."]},
        ),
    ],
    ids=[
        "unknown-column",
        "unknown-target",
        "unknown-custom-field",
        "no-identifier",
        "two-columns-one-field",
        "openid-without-app",
        "invalid-consent-basis",
        "consent-without-channels",
        "unknown-channel",
        "foreign-tag",
    ],
)
def test_a_mapping_tags_or_consent_we_cannot_use_is_refused_and_nothing_changes(
    world, marketer, django_capture_on_commit_callbacks, start, errors
):
    contact_import = upload(world.a, marketer, csv_bytes([["李娜", "13800138000", "", "", "", ""]]))

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(ValidationError) as no:
        imports.contact_import_start(contact_import=contact_import, acting_user=marketer, **start)

    assert no.value.message_dict == errors
    contact_import.refresh_from_db()
    assert (contact_import.status, contact_import.mapping) == ("pending", {})
    assert imports.is_draft(contact_import)
    assert callbacks == []
    assert ImportMapping.objects.count() == 0


def test_a_tag_of_another_unit_is_refused(world, marketer):
    other = Tag.objects.create(unit=world.b, name="B 的标签")
    contact_import = upload(world.a, marketer, csv_bytes([["李娜", "13800138000", "", "", "", ""]]))

    with pytest.raises(ValidationError) as refused:
        imports.contact_import_start(
            contact_import=contact_import, mapping=MAPPING, tag_ids=[other.pk], acting_user=marketer
        )

    assert refused.value.message_dict == {"tags": [f"Tag(s) {other.pk} are not tags of A 事业部."]}


def test_a_started_import_cannot_be_started_again(world, marketer):
    contact_import = upload(world.a, marketer, csv_bytes([["李娜", "13800138000", "", "", "", ""]]))
    imports.contact_import_start(
        contact_import=contact_import, mapping=MAPPING, acting_user=marketer
    )

    with pytest.raises(ValidationError) as refused:
        imports.contact_import_start(
            contact_import=contact_import, mapping=MAPPING, acting_user=marketer
        )

    assert refused.value.messages == ["This import has already started."]


# --- Rows: custom fields, existing contacts, merges, erased people --------------------------


def test_custom_field_options_are_checked_per_row(world, marketer):
    tier = CustomField.objects.create(
        unit=world.a,
        key="tier",
        label="客户类型",
        type="choice",
        options=[{"value": "ka", "label": "大客户"}, {"value": "smb", "label": "中小客户"}],
    )
    content = csv_bytes(
        [["13800138000", "大客户"], ["13900139000", "ka"], ["13700137000", "战略客户"]],
        header=["手机", "客户类型"],
    )

    done = run_import(world.a, marketer, content, {"手机": "phone", "客户类型": "custom:tier"})

    assert counts(done) == ("done", 3, 3, 2, 1, 2, 0)
    assert error_lines(done) == [
        (
            4,
            "客户类型",
            "战略客户",
            "“战略客户” is not an option of 客户类型 (options: 大客户、中小客户)",
        )
    ]
    assert sorted(c.custom[str(tier.pk)] for c in Contact.objects.all()) == ["ka", "ka"]


def test_rows_matching_existing_contacts_update_them_newest_value_wins(world, marketer):
    system = SystemActor("tests")
    known = contact_resolve(
        unit=world.b,
        keys=[make_key("phone", "13800138000")],
        attributes={"name": "李娜", "company_name": "旧公司", "city": "北京"},
        source="form",
        observed_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        acting_user=system,
    ).contact
    content = csv_bytes([["", "+86 138 0013 8000", "li@example.cn", "新公司", "", ""]])

    done = run_import(world.a, marketer, content)

    assert counts(done) == ("done", 1, 1, 1, 0, 0, 1)
    known.refresh_from_db()
    assert (known.name, known.company_name, known.city) == ("李娜", "新公司", "北京")
    assert known.field_sources["company_name"]["source"] == "import"
    assert sorted(known.identities.values_list("value", flat=True)) == [
        "+8613800138000",
        "li@example.cn",
    ]
    assert set(ContactUnit.objects.filter(contact=known).values_list("unit_id", flat=True)) == {
        world.a.id,
        world.b.id,
    }


def test_a_row_whose_keys_belong_to_two_contacts_merges_them(world, marketer):
    system = SystemActor("tests")
    by_phone = contact_resolve(
        unit=world.a, keys=[make_key("phone", "13800138000")], source="form", acting_user=system
    ).contact
    by_email = contact_resolve(
        unit=world.a, keys=[make_key("email", "li@example.cn")], source="api", acting_user=system
    ).contact

    done = run_import(
        world.a, marketer, csv_bytes([["李娜", "13800138000", "li@example.cn", "华澜", "", ""]])
    )

    assert counts(done) == ("done", 1, 1, 1, 0, 0, 1)
    merge = ContactMerge.objects.get()
    assert (merge.kept_id, merge.dropped_id) == (by_phone.pk, by_email.pk)
    by_phone.refresh_from_db()
    assert (by_phone.name, by_phone.company_name) == ("李娜", "华澜")


def test_a_row_of_someone_who_asked_to_be_erased_is_refused(world, marketer):
    key = make_key("phone", "13900139000")
    ErasedIdentity.objects.create(
        group=world.group, kind=key.kind, scope="", value_hash=value_hash(key)
    )
    content = csv_bytes(
        [
            ["李娜", "13800138000", "", "华澜", "", ""],
            ["不该回来", "13900139000", "", "华澜", "", ""],
        ]
    )

    done = run_import(world.a, marketer, content)

    assert counts(done) == ("done", 2, 2, 1, 1, 1, 0)
    assert error_lines(done) == [
        (
            3,
            "手机",
            "13900139000",
            "this person asked to be erased; their details cannot be imported again",
        )
    ]
    assert not Contact.objects.filter(name="不该回来").exists()


def test_tags_and_consent_land_with_the_rows(world, marketer):
    vip = Tag.objects.create(unit=world.a, name="展会名单")
    content = csv_bytes(
        [
            ["李娜", "13800138000", "li@example.cn", "华澜", "", ""],
            ["坏行", "123", "", "华澜", "", ""],
        ]
    )

    done = run_import(
        world.a,
        marketer,
        content,
        tag_ids=[vip.pk],
        consent={"basis": "legitimate", "channels": ["email", "sms"]},
    )

    contact = Contact.objects.get()
    assert done.imported_rows == 1
    assert list(ContactTag.objects.values_list("contact_id", "tag_id", "source")) == [
        (contact.pk, vip.pk, "import")
    ]
    assert sorted(
        ConsentEvent.objects.values_list("channel", "granted", "basis", "source", "unit_id")
    ) == [
        ("email", True, "legitimate", "import", world.a.id),
        ("sms", True, "legitimate", "import", world.a.id),
    ]
    assert ConsentEvent.objects.get(channel="email").proof == {
        "import": done.pk,
        "file": "contacts.csv",
    }
    assert sorted(ConsentState.objects.values_list("channel", "granted")) == [
        ("email", True),
        ("sms", True),
    ]


# --- Batches: all or nothing, set-based, remembered ----------------------------------------


def test_a_failing_batch_leaves_nothing_half_written(world, marketer, monkeypatch):
    tag = Tag.objects.create(unit=world.a, name="导入")
    real_tags_add = imports.tags_add
    calls = []

    def tags_add_failing_second_time(**kwargs):
        calls.append(1)
        real_tags_add(**kwargs)
        if len(calls) == 2:
            raise DatabaseError("disk full")

    monkeypatch.setattr(imports, "tags_add", tags_add_failing_second_time)
    rows = [[f"客户{i}", f"139{i:08d}", f"u{i}@example.cn", "华澜", "", ""] for i in range(250)]

    done = run_import(world.a, marketer, csv_bytes(rows), batch_size=100, tag_ids=[tag.pk])

    assert counts(done) == ("failed", 250, 100, 100, 0, 100, 0)
    assert done.failure == (
        "Rows 102–201 could not be saved, so none of them were (disk full). 100 rows before "
        "them were checked and 100 imported; import the file again once the problem is "
        "fixed: rows already imported are matched, not duplicated."
    )
    # Batch one landed whole; of batch two not a contact, key, unit link or tag remains.
    assert Contact.objects.count() == 100
    assert Identity.objects.count() == 200
    assert ContactUnit.objects.count() == 100
    assert ContactTag.objects.count() == 100
    assert not Identity.objects.filter(value="+8613900000100").exists()


def _queries_of_an_import(world, user, rows, first):
    content = csv_bytes(
        [
            [f"客户{i}", f"139{i:08d}", f"u{i}@example.cn", "华澜", "", ""]
            for i in range(first, first + rows)
        ]
    )
    contact_import = upload(world.a, user, content)
    imports.contact_import_start(contact_import=contact_import, mapping=MAPPING, acting_user=user)
    with CaptureQueriesContext(connection) as captured:
        done = imports.contact_import_run(import_id=contact_import.pk, batch_size=100)
    assert done is not None
    assert done.imported_rows == rows
    return len(captured)


def test_queries_grow_with_batches_not_with_rows(world, marketer):
    one_batch = _queries_of_an_import(world, marketer, 100, first=0)
    ten_batches = _queries_of_an_import(world, marketer, 1_000, first=100)

    # 8 statements a batch of new people, whatever its size: savepoint, keys seen earlier
    # in the file, advisory locks, tombstones and owners, contacts with their identities
    # and units, keys seen now, progress, release.
    assert ten_batches - one_batch == 9 * 8
    # (+2 at the end: the unit's rule tags, queued for a set-based re-check, and its
    # dynamic segments, queued for the next periodic rebuild)
    assert one_batch == 26


def test_a_finished_import_queues_the_units_dynamic_segments(world, marketer):
    # given an up-to-date dynamic segment of the unit, one of the other unit, and a
    # static list of the unit
    mine = Segment.objects.create(
        unit=world.a,
        name="华东",
        definition={"field": "city", "op": "eq", "value": "上海"},
        status="idle",
    )
    theirs = Segment.objects.create(
        unit=world.b,
        name="B",
        definition={"field": "city", "op": "eq", "value": "上海"},
        status="idle",
    )
    listed = Segment.objects.create(unit=world.a, name="名单", kind="static", status="idle")

    # when an import into unit A finishes
    run_import(world.a, marketer, csv_bytes([["李雷", "13800138000", "", "华澜", "", "上海"]]))

    # then only A's dynamic segment waits for a rebuild
    statuses = dict(Segment.objects.values_list("pk", "status"))
    assert statuses == {mine.pk: "queued", theirs.pk: "idle", listed.pk: "idle"}


def test_the_mapping_is_remembered_per_unit(world, marketer, world_b_marketer_en):
    mapping = {
        "columns": {"姓名": "name", "手机": "phone", "邮箱": "ignore", "公司": "company_name"},
        "required": ["公司"],
        "wechat_app_id": "",
    }
    content = csv_bytes(
        [["李娜", "13800138000", "", "华澜"]], header=["姓名", "手机", "邮箱", "公司"]
    )
    run_import(world.a, marketer, content, mapping)
    header = ["姓名", "手机", "邮箱", "公司"]

    again = mapping_offer(user=marketer, unit_id=world.a.id, header=header, custom_fields=[])
    other_unit = mapping_offer(
        user=world_b_marketer_en, unit_id=world.b.id, header=header, custom_fields=[]
    )

    assert again.remembered is True
    assert again.mapping == {**mapping, "header": header}
    assert other_unit.remembered is False
    assert other_unit.mapping["columns"] == {
        "姓名": "name",
        "手机": "phone",
        "邮箱": "email",
        "公司": "company_name",
    }


@pytest.fixture
def world_b_marketer_en(world):
    world.b_marketer.language = "en"
    world.b_marketer.save(update_fields=["language"])
    return world.b_marketer


# --- The job --------------------------------------------------------------------------------


def test_starting_an_import_queues_the_job_once_the_transaction_commits(
    world, marketer, django_capture_on_commit_callbacks, monkeypatch
):
    from apps.contacts.tasks import imports as tasks

    queued = []
    monkeypatch.setattr(tasks.import_run, "delay", lambda *args: queued.append(args))
    contact_import = upload(
        world.a, marketer, csv_bytes([["李娜", "13800138000", "", "华澜", "", ""]])
    )

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        imports.contact_import_start(
            contact_import=contact_import, mapping=MAPPING, acting_user=marketer
        )
        assert queued == []  # not from inside the transaction
    for callback in callbacks:
        callback()

    assert queued == [(contact_import.pk,)]


def test_the_task_runs_the_import_and_a_second_delivery_does_nothing(world, marketer):
    from apps.contacts.tasks.imports import import_run

    contact_import = upload(
        world.a, marketer, csv_bytes([["李娜", "13800138000", "", "华澜", "", ""]])
    )
    imports.contact_import_start(
        contact_import=contact_import, mapping=MAPPING, acting_user=marketer
    )

    import_run(contact_import.pk)
    import_run(contact_import.pk)

    contact_import.refresh_from_db()
    assert counts(contact_import) == ("done", 1, 1, 1, 0, 1, 0)
    assert Contact.objects.count() == 1


def test_a_draft_is_never_run(world, marketer):
    contact_import = upload(
        world.a, marketer, csv_bytes([["李娜", "13800138000", "", "华澜", "", ""]])
    )

    imports.contact_import_run(import_id=contact_import.pk)

    contact_import.refresh_from_db()
    assert (contact_import.status, contact_import.started_at) == (JobStatus.PENDING, None)
