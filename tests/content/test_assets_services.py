"""Content library writes: what may be uploaded, what each kind needs, gating, and that
refused input stores nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.content.demo.assets import tiny_pdf
from apps.content.models import Asset, Form
from apps.content.services import assets as services
from apps.core.models import AuditLog
from apps.core.services import SystemActor

SYSTEM = SystemActor("test")
PDF = tiny_pdf(["Hello"])
DOCX = b"PK\x03\x04" + b"\x00" * 100
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_a_pdf_is_stored_through_storage_with_its_name(world, media):
    asset = services.asset_create(
        unit=world.a,
        title="Whitepaper",
        kind="whitepaper",
        upload=SimpleUploadedFile("白皮书 2026.pdf", PDF, content_type="application/pdf"),
        topic=" 单细胞 ",
        buying_stage="awareness",
        personas="实验室主任，采购经理, 实验室主任",
        acting_user=SYSTEM,
    )
    assert asset.file.name.startswith("assets/")
    assert asset.file.name.endswith(".pdf")
    assert (media / asset.file.name).read_bytes() == PDF
    assert (asset.topic, asset.personas) == ("单细胞", ["实验室主任", "采购经理"])
    assert asset.key.startswith("a_")
    assert AuditLog.objects.filter(action="asset.create", object_id=str(asset.pk)).count() == 1


def test_a_pdf_tiny_made_in_code_is_a_valid_pdf():
    # The demo's PDF: header, objects, a cross-reference table whose offsets are right.
    pdf = tiny_pdf(["Hualan"])
    assert pdf.startswith(b"%PDF-1.4")
    assert pdf.rstrip().endswith(b"%%EOF")
    xref_at = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n", 1)[0])
    assert pdf[xref_at:].startswith(b"xref\n0 6\n")
    entries = pdf[xref_at:].split(b"\n")[3:8]
    for number, entry in enumerate(entries, start=1):
        offset = int(entry.split(b" ")[0])
        assert pdf[offset:].startswith(b"%d 0 obj" % number)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "setup.exe",
            b"MZ\x90\x00",
            "Files of type .exe cannot be uploaded. Allowed: PDF, PPTX, DOCX, XLSX, PNG, JPG, MP4.",
        ),
        (
            "notes",
            b"hello",
            "Files of type without an extension cannot be uploaded. Allowed: PDF, PPTX, DOCX, "
            "XLSX, PNG, JPG, MP4.",
        ),
        (
            "setup.pdf",
            b"MZ\x90\x00" + b"\x00" * 20,
            "This file is not a real PDF file, whatever its name says.",
        ),
        ("empty.pdf", b"", "The file is empty."),
    ],
)
def test_a_file_that_may_not_be_uploaded_is_refused_and_nothing_is_stored(
    world, media, name, content, message
):
    with pytest.raises(ValidationError) as caught:
        services.asset_create(
            unit=world.a,
            title="Bad",
            kind="whitepaper",
            upload=SimpleUploadedFile(name, content),
            acting_user=SYSTEM,
        )
    assert caught.value.message_dict == {"upload": [message]}
    assert Asset.objects.count() == 0
    assert stored_files(media) == []


def test_an_oversize_file_is_refused_and_nothing_is_stored(world, media, monkeypatch):
    # given a limit of 1 MB (the real one is 50 MB; the check is the same)
    monkeypatch.setattr(services, "MAX_UPLOAD_BYTES", 1024 * 1024)
    upload = SimpleUploadedFile("big.pdf", PDF[:5] + b"0" * 1_572_864)
    with pytest.raises(ValidationError) as caught:
        services.asset_create(
            unit=world.a, title="Big", kind="whitepaper", upload=upload, acting_user=SYSTEM
        )
    assert caught.value.message_dict == {
        "upload": ["The file is 1.5 MB; at most 1 MB can be uploaded."]
    }
    assert Asset.objects.count() == 0
    assert stored_files(media) == []


def test_the_real_limit_is_fifty_megabytes():
    assert services.MAX_UPLOAD_BYTES == 50 * 1024 * 1024


def test_office_files_and_mp4_are_accepted(world, media):
    docx = services.asset_create(
        unit=world.a,
        title="Deck",
        kind="datasheet",
        upload=SimpleUploadedFile("deck.docx", DOCX),
        acting_user=SYSTEM,
    )
    video = services.asset_create(
        unit=world.a,
        title="Clip",
        kind="video",
        upload=SimpleUploadedFile("clip.mp4", MP4),
        acting_user=SYSTEM,
    )
    assert docx.file.name.endswith(".docx")
    assert video.file.name.endswith(".mp4")


def test_a_video_by_url_and_an_article_with_a_sanitised_body(world):
    video = services.asset_create(
        unit=world.a,
        title="Demo",
        kind="video",
        url="https://video.example.cn/demo.mp4",
        acting_user=SYSTEM,
    )
    article = services.asset_create(
        unit=world.a,
        title="Case",
        kind="article",
        body='<p>Good</p><script>alert(1)</script><a href="javascript:x()">x</a>',
        acting_user=SYSTEM,
    )
    assert video.url == "https://video.example.cn/demo.mp4"
    assert article.body == '<p>Good</p><a rel="noopener noreferrer nofollow">x</a>'


@pytest.mark.parametrize(
    ("kwargs", "errors"),
    [
        ({"kind": "video"}, {"url": ["Give the video's address, or upload an MP4."]}),
        ({"kind": "article"}, {"body": ["Write the article's text."]}),
        (
            {"kind": "whitepaper"},
            {"upload": ["Upload a file, give its address, or write its text."]},
        ),
        (
            {"kind": "video", "url": "javascript:alert(1)"},
            {"url": ["Enter an http:// or https:// address."]},
        ),
        ({"kind": "podcast", "url": "https://x.example.cn"}, None),
        (
            {"kind": "video", "url": "https://x.example.cn", "buying_stage": "later"},
            {"buying_stage": ["Choose one of: awareness, consideration, decision, retention."]},
        ),
        (
            {"kind": "video", "url": "https://x.example.cn", "is_gated": True},
            {"gate_form": ["A gated asset needs a gate form: the form people fill to get it."]},
        ),
    ],
)
def test_what_each_kind_needs(world, kwargs, errors):
    with pytest.raises(ValidationError) as caught:
        services.asset_create(unit=world.a, title="X", acting_user=SYSTEM, **kwargs)
    if errors is None:
        assert list(caught.value.message_dict) == ["kind"]
    else:
        assert caught.value.message_dict == errors
    assert Asset.objects.count() == 0


def test_a_gate_form_must_be_of_the_same_unit(world):
    other = Form.objects.create(unit=world.b, name="B form")
    own = Form.objects.create(unit=world.a, name="A form")
    with pytest.raises(ValidationError) as caught:
        services.asset_create(
            unit=world.a,
            title="X",
            kind="video",
            url="https://x.example.cn",
            is_gated=True,
            gate_form=other,
            acting_user=SYSTEM,
        )
    assert caught.value.message_dict == {"gate_form": ["Choose a form of this asset's own unit."]}
    asset = services.asset_create(
        unit=world.a,
        title="X",
        kind="video",
        url="https://x.example.cn",
        is_gated=True,
        gate_form=own,
        acting_user=SYSTEM,
    )
    assert (asset.is_gated, asset.gate_form_id) == (True, own.pk)


def test_a_new_file_replaces_the_old_one_after_commit(
    world, media, django_capture_on_commit_callbacks
):
    asset = services.asset_create(
        unit=world.a,
        title="W",
        kind="whitepaper",
        upload=SimpleUploadedFile("v1.pdf", PDF),
        acting_user=SYSTEM,
    )
    old = asset.file.name
    with django_capture_on_commit_callbacks(execute=True):
        services.asset_update(
            asset=asset, upload=SimpleUploadedFile("v2.pdf", PDF + b"%v2"), acting_user=SYSTEM
        )
    asset.refresh_from_db()
    assert asset.file.name != old
    assert (media / asset.file.name).read_bytes() == PDF + b"%v2"
    assert not (media / old).exists()


def test_a_refused_update_changes_nothing(world, media):
    asset = services.asset_create(
        unit=world.a,
        title="W",
        kind="whitepaper",
        upload=SimpleUploadedFile("v1.pdf", PDF),
        acting_user=SYSTEM,
    )
    with pytest.raises(ValidationError):
        services.asset_update(
            asset=asset,
            title="Renamed",
            upload=SimpleUploadedFile("v2.exe", b"MZ"),
            acting_user=SYSTEM,
        )
    asset.refresh_from_db()
    assert asset.title == "W"
    assert len(stored_files(media)) == 1


def test_archive_and_restore(world):
    asset = services.asset_create(
        unit=world.a, title="V", kind="video", url="https://x.example.cn", acting_user=SYSTEM
    )
    services.asset_archive(asset=asset, acting_user=SYSTEM)
    asset.refresh_from_db()
    assert asset.is_active is False
    services.asset_restore(asset=asset, acting_user=SYSTEM)
    asset.refresh_from_db()
    assert asset.is_active is True
    assert list(
        AuditLog.objects.filter(object_id=str(asset.pk), action__startswith="asset.")
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["asset.create", "asset.archive", "asset.restore"]
