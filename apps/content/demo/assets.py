"""The content library's part of the demo world (``register_demo`` order 290, before the
forms demo at 300, so forms can deliver these assets).

For each 华澜 unit: a PDF whitepaper and a datasheet (tiny valid PDFs made here), two
case-study articles, a video by URL, tagged with the unit's topics (单细胞, 质谱, 基因测序…),
buying stages and personas; then downloads and views of them over the last 30 days by
anonymous visitors and some known contacts.

Idempotent: a unit that already has its demo whitepaper is skipped.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone

from apps.contacts.models import ContactUnit
from apps.contacts.services.activities import ActivityIn, activities_record
from apps.content.models import Asset, AssetKind, BuyingStage
from apps.content.services.assets import asset_create
from apps.core.demo import SYSTEM, register_demo
from apps.core.models import BusinessUnit

SEED = 20261290
DAYS = 30
TAKES_PER_SCALE = 60  # downloads and views per asset, about

# unit code → (title, kind, topic, stage, personas, summary, extra)
LIBRARY: dict[str, list[tuple[str, str, str, str, list[str], str, str]]] = {
    "hualan-ls": [
        (
            "《单细胞测序技术白皮书 2026》",
            AssetKind.WHITEPAPER,
            "单细胞",
            BuyingStage.AWARENESS,
            ["实验室主任", "科研人员"],
            "从样本制备到数据分析：单细胞转录组测序的完整流程、常见问题与选型建议。",
            "pdf",
        ),
        (
            "高分辨质谱仪 HL-Q900 产品彩页",
            AssetKind.DATASHEET,
            "质谱",
            BuyingStage.CONSIDERATION,
            ["采购经理", "实验室主任"],
            "HL-Q900 的关键参数、应用场景与配置清单。",
            "pdf",
        ),
        (
            "案例：某三甲医院基因测序平台升级",
            AssetKind.CASE_STUDY,
            "基因测序",
            BuyingStage.DECISION,
            ["信息科主任", "采购经理"],
            "上线三个月，测序通量提升 2.3 倍，报告周期从 10 天缩短到 4 天。",
            "article",
        ),
        (
            "案例：生物药企的细胞培养工艺放大",
            AssetKind.CASE_STUDY,
            "细胞培养",
            BuyingStage.CONSIDERATION,
            ["工艺开发经理"],
            "从 2 L 到 2000 L：一套培养基与工艺参数如何稳定放大。",
            "article",
        ),
        (
            "视频：三分钟看懂单细胞建库",
            AssetKind.VIDEO,
            "单细胞",
            BuyingStage.AWARENESS,
            ["科研人员"],
            "实验室实拍，建库关键步骤与注意事项。",
            "https://video.hualan.example.cn/ls/single-cell-library-prep.mp4",
        ),
    ],
    "hualan-mat": [
        (
            "《新能源电池正极材料白皮书》",
            AssetKind.WHITEPAPER,
            "锂电材料",
            BuyingStage.AWARENESS,
            ["研发总监", "技术工程师"],
            "高镍三元与磷酸锰铁锂的性能对比、成本趋势与供应链风险。",
            "pdf",
        ),
        (
            "案例：动力电池厂导入国产隔膜涂层",
            AssetKind.CASE_STUDY,
            "涂层",
            BuyingStage.DECISION,
            ["采购经理", "质量经理"],
            "认证周期 5 个月，单 GWh 成本下降 8%。",
            "article",
        ),
        (
            "视频：复合材料拉伸测试演示",
            AssetKind.VIDEO,
            "复合材料",
            BuyingStage.CONSIDERATION,
            ["技术工程师"],
            "按 GB/T 1447 的拉伸测试全过程。",
            "https://video.hualan.example.cn/mat/composite-tensile-test.mp4",
        ),
    ],
    "hualan-med": [
        (
            "《医院影像设备国产化选型指南》",
            AssetKind.WHITEPAPER,
            "影像设备",
            BuyingStage.CONSIDERATION,
            ["设备科科长", "放射科主任"],
            "CT、MR、DR 国产设备的性能对比、维保成本与招标要点。",
            "pdf",
        ),
        (
            "案例：县域医共体体外诊断平台建设",
            AssetKind.CASE_STUDY,
            "体外诊断",
            BuyingStage.DECISION,
            ["检验科主任", "院长"],
            "12 家乡镇卫生院检验结果互认，样本周转时间缩短 60%。",
            "article",
        ),
        (
            "视频：微创手术器械操作培训",
            AssetKind.VIDEO,
            "手术器械",
            BuyingStage.RETENTION,
            ["外科医生"],
            "腔镜吻合器的使用要点与常见问题。",
            "https://video.hualan.example.cn/med/stapler-training.mp4",
        ),
    ],
}

ARTICLE_BODY = """<p>{summary}</p>
<h3>背景</h3>
<p>客户在原有方案下面临通量不足、交付周期长、运维成本高等问题，
希望在不中断业务的前提下完成升级。</p>
<h3>方案</h3>
<ul><li>现场调研与需求梳理（2 周）</li><li>分阶段部署，新旧系统并行验证</li>
<li>培训与驻场支持</li></ul>
<h3>成效</h3>
<p><strong>{summary}</strong></p>
<p>如需了解详情，欢迎<a href="https://www.hualan.example.cn/contact">联系我们</a>。</p>"""


def tiny_pdf(lines: list[str]) -> bytes:
    """A small, valid one-page PDF (Helvetica, ASCII text) with a correct xref table."""
    text = (
        "BT /F1 18 Tf 72 760 Td 24 TL "
        + " ".join(
            "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") '"
            for line in lines
        )
        + " ET"
    )
    stream = text.encode("ascii", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _create(
    unit: BusinessUnit, n: int, spec: tuple[str, str, str, str, list[str], str, str]
) -> Asset:
    title, kind, topic, stage, personas, summary, extra = spec
    upload = None
    url = ""
    body = ""
    if extra == "pdf":
        upload = SimpleUploadedFile(
            f"hualan-{unit.code}-{n}.pdf",
            tiny_pdf(["Hualan Technology Group", f"{unit.code} - document {n}", "Demo file"]),
            content_type="application/pdf",
        )
    elif extra == "article":
        body = ARTICLE_BODY.format(summary=summary)
    else:
        url = extra
    return asset_create(
        unit=unit,
        title=title,
        kind=kind,
        summary=summary,
        upload=upload,
        url=url,
        body=body,
        topic=topic,
        buying_stage=stage,
        personas=personas,
        acting_user=SYSTEM,
    )


def _traffic(unit: BusinessUnit, assets: list[Asset], rng: random.Random, scale: int) -> int:
    contact_ids = list(
        ContactUnit.objects.dangerously_unscoped()
        .filter(unit=unit)
        .order_by("contact_id")
        .values_list("contact_id", flat=True)[:300]
    )
    now = timezone.now()
    rows: list[ActivityIn] = []
    for asset in assets:
        # As /a/<key>/ records them: a file is downloaded, a video or a text is viewed.
        kind = "download" if asset.file and asset.kind != AssetKind.VIDEO else "content_view"
        for n in range(rng.randint(TAKES_PER_SCALE // 2, TAKES_PER_SCALE) * scale):
            known = contact_ids and rng.random() < 0.3
            at = now - timedelta(seconds=rng.randint(60, DAYS * 86400))
            properties: dict[str, object] = {"title": asset.title, "kind": asset.kind}
            if asset.topic:
                properties["topic"] = asset.topic
            if kind == "content_view":
                properties["seconds"] = rng.randint(10, 420)
            rows.append(
                ActivityIn(
                    unit_id=unit.pk,
                    type=kind,
                    occurred_at=at,
                    contact_id=rng.choice(contact_ids) if known else None,
                    anonymous_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    object_type="asset",
                    object_id=str(asset.pk),
                    properties=properties,
                    dedupe_key=f"demo-asset:{asset.pk}:{n}",
                )
            )
    return activities_record(rows)


@register_demo(290, "content: assets")
def seed_assets(scale: int = 1) -> None:
    rng = random.Random(SEED)  # noqa: S311 - demo data, reproducible on purpose
    for code, specs in LIBRARY.items():
        unit = BusinessUnit.objects.dangerously_unscoped().filter(code=code).first()
        if unit is None:
            continue
        if Asset.objects.dangerously_unscoped().filter(unit=unit, title=specs[0][0]).exists():
            continue
        with transaction.atomic():
            assets = [_create(unit, n, spec) for n, spec in enumerate(specs, start=1)]
            _traffic(unit, assets, rng, scale)
