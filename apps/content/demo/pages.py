"""Landing pages' part of the demo world (``register_demo`` order 310, after the assets
(290) and forms (300) demos).

For each 华澜 unit: two published landing pages with a heading, rich text, an asset block
(the unit's whitepaper) and a form block (the unit's first form, when the forms demo made
one; otherwise the block is left out), a call to action; then page views over the last 30
days from anonymous visitors and some known contacts, with UTM channels and campaigns,
and a few submissions made on the pages so the conversion rate means something. A form
that delivers one of the unit's assets gates it.

Idempotent: a page whose slug already exists is skipped.
"""

from __future__ import annotations

import random
import secrets
import uuid
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.contacts.models import Campaign, Channel, ContactUnit
from apps.contacts.services.activities import ActivityIn, activities_record
from apps.content.models import Asset, AssetKind, Form, FormSubmission, LandingPage
from apps.content.services.assets import asset_update
from apps.content.services.pages import page_create, page_publish
from apps.core.demo import SYSTEM, register_demo
from apps.core.models import BusinessUnit

SEED = 20261310
DAYS = 30
VIEWS_PER_SCALE = 240  # page views per page, about
SUBMIT_RATE = 0.06  # of the known visitors' views

# unit code → [(slug, title, seo description, intro html, channel code)]
PAGES: dict[str, list[tuple[str, str, str, str, str]]] = {
    "hualan-ls": [
        (
            "ls-single-cell-2026",
            "单细胞测序解决方案 2026",
            "华澜生命科学：从建库到分析的一站式单细胞测序方案，免费下载技术白皮书。",
            "<p>覆盖<strong>样本制备、建库、测序与数据分析</strong>全流程，"
            "已服务 300+ 科研院所与医院。</p><ul><li>细胞通量最高 8 万/样本</li>"
            "<li>72 小时交付分析报告</li><li>专属应用科学家支持</li></ul>",
            "baidu-sem",
        ),
        (
            "ls-mass-spec-seminar",
            "高分辨质谱技术研讨会",
            "报名参加华澜质谱技术研讨会，了解 HL-Q900 在蛋白组学中的最新应用。",
            "<p>特邀三位一线专家，分享<em>蛋白组学与代谢组学</em>的实战经验。"
            "会后提供讲义下载。</p>",
            "wechat-mp",
        ),
    ],
    "hualan-mat": [
        (
            "mat-battery-materials",
            "新能源电池材料选型指南",
            "高镍三元、磷酸锰铁锂、隔膜涂层：一份给研发与采购的选型参考。",
            "<p>基于 <strong>40+ 电池厂</strong>的导入经验，整理材料选型的关键指标与验证流程。</p>",
            "media",
        ),
        (
            "mat-cibf-2026",
            "CIBF 2026 华澜展位预约",
            "预约 CIBF 2026 华澜工业材料展位的一对一技术交流。",
            "<p>展位号 <strong>5H-T018</strong>，现场展示新一代隔膜涂层与复合材料样件。</p>",
            "expo",
        ),
    ],
    "hualan-med": [
        (
            "med-imaging-guide",
            "医院影像设备国产化选型",
            "CT、MR、DR 国产设备选型指南：性能、维保成本与招标要点。",
            "<p>为设备科与放射科整理的<strong>国产影像设备</strong>对比与招标参考。</p>",
            "seo",
        ),
        (
            "med-ivd-county",
            "县域医共体检验平台方案",
            "县域医共体体外诊断平台建设方案与成功案例。",
            "<p>让乡镇卫生院的检验结果<strong>互认互通</strong>，样本周转时间缩短 60%。</p>",
            "wechat-mp",
        ),
    ],
}
REFERRERS = [
    "",
    "",
    "https://www.baidu.com/s?wd=%E5%8D%95%E7%BB%86%E8%83%9E",
    "https://mp.weixin.qq.com/s/hualan",
    "https://www.zhihu.com/question/1",
]


def _blocks(title: str, intro: str, asset: Asset | None, form: Form | None) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        {"type": "heading", "text": title, "level": 1},
        {"type": "text", "html": intro},
    ]
    if asset is not None:
        blocks += [
            {"type": "heading", "text": "免费下载", "level": 2},
            {"type": "asset", "asset": asset.pk},
        ]
    if form is not None:
        blocks += [
            {"type": "heading", "text": "留下联系方式，专家将在一个工作日内联系您", "level": 2},
            {"type": "form", "form": form.pk},
        ]
    blocks += [
        {"type": "divider"},
        {"type": "cta", "label": "访问华澜官网", "url": "https://www.hualan.example.cn/"},
    ]
    return blocks


def _gate_delivered_assets(unit: BusinessUnit) -> None:
    """A form the forms demo made to deliver one of our assets gates that asset."""
    for form in Form.objects.dangerously_unscoped().filter(unit=unit, asset__isnull=False):
        asset = form.asset
        if asset is not None and not asset.is_gated and asset.unit_id == unit.pk:
            asset_update(asset=asset, is_gated=True, gate_form=form, acting_user=SYSTEM)


def _traffic(
    unit: BusinessUnit,
    page: LandingPage,
    form: Form | None,
    rng: random.Random,
    scale: int,
) -> None:
    contact_ids = list(
        ContactUnit.objects.dangerously_unscoped()
        .filter(unit=unit)
        .order_by("contact_id")
        .values_list("contact_id", flat=True)[:300]
    )
    channel_codes = dict(
        Channel.objects.dangerously_unscoped().filter(unit=unit).values_list("id", "code")
    )
    campaigns = list(
        Campaign.objects.dangerously_unscoped()
        .filter(unit=unit)
        .values_list("code", "id", "channel_id")
    )
    now = timezone.now()
    base = f"https://www.hualan.example.cn/p/{page.slug}/"
    rows: list[ActivityIn] = []
    submissions: list[FormSubmission] = []
    visitors = [
        str(uuid.UUID(int=rng.getrandbits(128), version=4))
        for _ in range(VIEWS_PER_SCALE * scale // 2)
    ]
    for n in range(rng.randint(VIEWS_PER_SCALE // 2, VIEWS_PER_SCALE) * scale):
        at = now - timedelta(seconds=rng.randint(60, DAYS * 86400))
        contact_id = rng.choice(contact_ids) if contact_ids and rng.random() < 0.25 else None
        channel_id = page.channel_id
        campaign_id = None
        url = base
        if campaigns and rng.random() < 0.4:
            code, campaign_id, campaign_channel = rng.choice(campaigns)
            source = channel_codes.get(campaign_channel, "")
            url = f"{base}?utm_source={source}&utm_medium=cpc&utm_campaign={code}"
            channel_id = campaign_channel or channel_id
        rows.append(
            ActivityIn(
                unit_id=unit.pk,
                type="page_view",
                occurred_at=at,
                contact_id=contact_id,
                anonymous_id=rng.choice(visitors),
                channel_id=channel_id,
                campaign_id=campaign_id,
                object_type="landing_page",
                object_id=str(page.pk),
                properties={"url": url, "title": page.title, "referrer": rng.choice(REFERRERS)},
                dedupe_key=f"demo-lp:{page.pk}:{n}",
            )
        )
        visitor = rows[-1].anonymous_id
        if form is not None:
            # The page's form block loads the form too: it counts its own view.
            rows.append(
                ActivityIn(
                    unit_id=unit.pk,
                    type="page_view",
                    occurred_at=at + timedelta(seconds=2),
                    contact_id=contact_id,
                    anonymous_id=visitor,
                    channel_id=channel_id,
                    campaign_id=campaign_id,
                    object_type="form",
                    object_id=str(form.pk),
                    properties={"url": url, "title": form.name, "landing_page": page.pk},
                    dedupe_key=f"demo-lp-form:{page.pk}:{n}",
                )
            )
        if form is not None and contact_id is not None and rng.random() < SUBMIT_RATE * 4:
            submitted = at + timedelta(minutes=rng.randint(1, 8))
            submissions.append(
                FormSubmission(
                    form=form,
                    unit=unit,
                    landing_page=page,
                    received_at=submitted,
                    data={"note": "demo"},
                    consent=True,
                    token=secrets.token_urlsafe(16),
                    page_url=url,
                    status="processed",
                    contact_id=contact_id,
                    processed_at=submitted,
                )
            )
            rows.append(
                ActivityIn(
                    unit_id=unit.pk,
                    type="form_submit",
                    occurred_at=submitted,
                    contact_id=contact_id,
                    channel_id=channel_id,
                    campaign_id=campaign_id,
                    object_type="form",
                    object_id=str(form.pk),
                    properties={"form": form.name, "landing_page": page.pk},
                    dedupe_key=f"demo-lp-submit:{page.pk}:{n}",
                )
            )
    activities_record(rows)
    FormSubmission.objects.bulk_create(submissions)


@register_demo(310, "content: landing pages")
def seed_pages(scale: int = 1) -> None:
    rng = random.Random(SEED)  # noqa: S311 - demo data, reproducible on purpose
    for code, specs in PAGES.items():
        unit = BusinessUnit.objects.dangerously_unscoped().filter(code=code).first()
        if unit is None:
            continue
        with transaction.atomic():
            _gate_delivered_assets(unit)
            whitepaper = (
                Asset.objects.dangerously_unscoped()
                .filter(unit=unit, kind=AssetKind.WHITEPAPER, is_active=True)
                .order_by("id")
                .first()
            )
            forms = list(
                Form.objects.dangerously_unscoped().filter(unit=unit, is_active=True).order_by("id")
            )
            channels = {c.code: c for c in Channel.objects.dangerously_unscoped().filter(unit=unit)}
            for n, (slug, title, description, intro, channel_code) in enumerate(specs):
                # Each page its own form, when the unit has several.
                form = forms[n % len(forms)] if forms else None
                if LandingPage.objects.dangerously_unscoped().filter(slug=slug).exists():
                    continue
                page = page_create(
                    unit=unit,
                    title=title,
                    slug=slug,
                    seo_title=f"{title} | 华澜科技",
                    seo_description=description,
                    blocks=_blocks(title, intro, whitepaper, form),
                    channel=channels.get(channel_code),
                    acting_user=SYSTEM,
                )
                page_publish(page=page, acting_user=SYSTEM)
                # The demo's traffic reaches back a month: the page went live before it.
                LandingPage.objects.dangerously_unscoped().filter(pk=page.pk).update(
                    published_at=timezone.now() - timedelta(days=DAYS + 5)
                )
                _traffic(unit, page, form, rng, scale)
