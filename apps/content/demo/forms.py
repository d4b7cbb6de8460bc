"""Forms' part of the demo world (``register_demo`` order 300: after the assets at 290, so
the whitepaper form delivers the unit's whitepaper; before landing pages at 310, which
embed each unit's first form).

For each 华澜 unit: a whitepaper download (gated asset, progressive profiling), a
contact-sales / trial request with the unit's own 客户类型 options, and a seminar
registration, all with Chinese consent wording. Then ~50 × scale submissions per unit over
the last 60 days, through the real store-and-process path: visitors who viewed the form
first (page views under their anonymous id), some of them people the contacts demo
already knows, a few honeypot spams, with UTM of the unit's channels and campaigns.

Idempotent: skipped when the life-science unit already has its demo whitepaper form.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.contacts.models import Campaign, Channel, CustomField, Identity, IdentityKind
from apps.contacts.services.activities import ActivityIn, activities_record
from apps.content.models import Asset, AssetKind, Form, FormSubmission
from apps.content.services.forms import form_create
from apps.content.services.submissions import SubmissionIn, submission_store, submissions_process
from apps.core.demo import SYSTEM, register_demo
from apps.core.models import BusinessUnit

SEED = 20261300
DAYS = 60
SUBMISSIONS_PER_SCALE = 50  # per unit
MARKER = ("hualan-ls", "白皮书下载")

CONSENT = (
    '我已阅读并同意<a href="https://www.hualan.example.cn/privacy">《隐私政策》</a>，'
    "同意华澜科技及其事业部通过电话、短信和邮件向我发送产品、活动与技术资讯。可随时退订。"
)
CONSENT_VERSION = "2026-03"


def _f(
    key: str, required: bool = False, label: str = "", options: list[str] | None = None
) -> dict[str, Any]:
    return {"key": key, "required": required, "label": label, "options": options or []}


# unit → [(name, title, intro, fields, progressive, channel code, campaign code, thanks)]
FORMS: dict[str, list[tuple[str, str, str, list[dict[str, Any]], bool, str, str, str]]] = {
    "hualan-ls": [
        (
            "白皮书下载",
            "免费下载《单细胞测序技术白皮书 2026》",
            "<p>留下联系方式即可下载完整版白皮书（PDF，32 页）。</p>",
            [
                _f("name", True, "姓名"),
                _f("phone", True, "手机号"),
                _f("email", False, "工作邮箱"),
                _f("company_name", True, "单位名称"),
                _f("title", False, "职位"),
                _f("custom:research_area", False),
                _f("custom:annual_budget", False),
            ],
            True,
            "media",
            "2026-bio-whitepaper",
            "<p>感谢您的关注！点击下方按钮下载白皮书。</p>",
        ),
        (
            "联系销售 / 申请试用",
            "申请 HL-Q900 质谱仪试用",
            "<p>销售工程师将在一个工作日内与您联系，安排演示或试用。</p>",
            [
                _f("name", True, "姓名"),
                _f("phone", True, "手机号"),
                _f("company_name", True, "单位名称"),
                _f("department", False, "部门"),
                _f("custom:customer_type", True, "", ["ka", "mid", "small"]),
                _f("province", False, "所在省份"),
            ],
            False,
            "baidu-sem",
            "2026-baidu-brand-q3",
            "<p>提交成功！销售工程师将在一个工作日内与您联系。</p>",
        ),
        (
            "研讨会报名",
            "2026 细胞培养技术研讨会 · 报名",
            "<p>上海 · 线下 + 直播。名额有限，报名后将收到确认短信。</p>",
            [
                _f("name", True, "姓名"),
                _f("phone", True, "手机号"),
                _f("email", False, "邮箱"),
                _f("company_name", True, "单位名称"),
                _f("title", False, "职位"),
                _f("city", False, "所在城市"),
            ],
            True,
            "expo",
            "2026-cell-culture-seminar",
            "<p>报名成功！会前一天我们会短信提醒您。</p>",
        ),
    ],
    "hualan-mat": [
        (
            "技术资料下载",
            "下载《隔膜选型白皮书》",
            "<p>新能源材料工程师的选型参考。</p>",
            [
                _f("name", True, "姓名"),
                _f("phone", True, "手机号"),
                _f("company_name", True, "公司名称"),
                _f("custom:application", False),
                _f("title", False, "职位"),
            ],
            True,
            "media",
            "2026-ev-material-media",
            "<p>感谢下载！如需样品，请联系您的客户经理。</p>",
        ),
        (
            "申请样品",
            "申请正极材料样品",
            "<p>填写需求，技术支持将在两个工作日内回复。</p>",
            [
                _f("name", True, "姓名"),
                _f("phone", True, "手机号"),
                _f("email", False, "邮箱"),
                _f("company_name", True, "公司名称"),
                _f("custom:customer_type", True),
                _f("industry", False, "所属行业"),
            ],
            False,
            "baidu-sem",
            "2026-baidu-sem-mat",
            "<p>申请已收到，技术支持将尽快与您联系。</p>",
        ),
    ],
    "hualan-med": [
        (
            "产品资料下载",
            "下载《超声设备参数对比》",
            "<p>主流超声设备参数一览，助您高效选型。</p>",
            [
                _f("name", True, "姓名"),
                _f("phone", True, "手机号"),
                _f("company_name", True, "医院名称"),
                _f("custom:hospital_grade", False),
                _f("custom:department_name", False),
            ],
            True,
            "media",
            "",
            "<p>感谢您的关注！</p>",
        ),
        (
            "线上研讨会报名",
            "三甲医院采购线上研讨会 · 报名",
            "<p>线上直播，报名后获取观看链接。</p>",
            [
                _f("name", True, "姓名"),
                _f("phone", True, "手机号"),
                _f("email", False, "邮箱"),
                _f("company_name", True, "医院名称"),
                _f("title", False, "职务"),
            ],
            False,
            "wechat-mp",
            "2026-hospital-webinar",
            "<p>报名成功！观看链接将通过短信发送。</p>",
        ),
    ],
}

COMPANY_WORDS = ("生物", "医药", "科技", "材料", "新能源", "医疗", "精密", "检测")
PHONE_BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) MicroMessenger/8.0"
UTM_SOURCES = ("baidu-sem", "wechat-mp", "douyin", "media", "email", "seo")


class _Demo:
    def __init__(self, scale: int) -> None:
        from faker import Faker

        self.scale = scale
        self.rng = random.Random(SEED)  # noqa: S311 - demo data, reproducible on purpose
        self.fake = Faker("zh_CN")
        self.fake.seed_instance(SEED)
        self.now = timezone.now()

    def forms(self, unit: BusinessUnit) -> list[Form]:
        channels = {c.code: c for c in Channel.objects.dangerously_unscoped().filter(unit=unit)}
        campaigns = {c.code: c for c in Campaign.objects.dangerously_unscoped().filter(unit=unit)}
        customs = set(
            CustomField.objects.dangerously_unscoped()
            .filter(unit=unit, is_active=True)
            .values_list("key", flat=True)
        )
        whitepaper = (
            Asset.objects.dangerously_unscoped()
            .filter(unit=unit, is_active=True, kind=AssetKind.WHITEPAPER)
            .order_by("id")
            .first()
        )
        made = []
        for index, (
            name,
            title,
            intro,
            fields,
            progressive,
            channel,
            campaign,
            thanks,
        ) in enumerate(FORMS[unit.code]):
            usable = [
                f for f in fields if not f["key"].startswith("custom:") or f["key"][7:] in customs
            ]
            made.append(
                form_create(
                    unit=unit,
                    name=name,
                    fields=usable,
                    title=title,
                    intro=intro,
                    submit_label="立即下载" if index == 0 else "提交",
                    progressive=progressive,
                    progressive_max=3,
                    consent_required=True,
                    consent_text=CONSENT,
                    consent_version=CONSENT_VERSION,
                    success_message=thanks,
                    asset=whitepaper if index == 0 else None,
                    channel=channels.get(channel),
                    campaign=campaigns.get(campaign),
                    acting_user=SYSTEM,
                )
            )
        return made

    def _answers(self, form: Form, known_phone: str | None) -> dict[str, Any]:
        rng, fake = self.rng, self.fake
        customs = {
            c.key: c
            for c in CustomField.objects.dangerously_unscoped().filter(unit_id=form.unit_id)
        }
        data: dict[str, Any] = {}
        for entry in form.fields:
            key = entry["key"]
            if not entry["required"] and rng.random() < 0.35:
                continue
            if key == "name":
                data[key] = fake.name()
            elif key == "phone":
                data[key] = known_phone or f"+861{rng.choice('3578')}{rng.randrange(10**9):09d}"
            elif key == "email":
                data[key] = f"{fake.user_name()}{rng.randrange(1000)}@{fake.free_email_domain()}"
            elif key == "company_name":
                data[key] = f"{fake.city_name()}{rng.choice(COMPANY_WORDS)}有限公司"
            elif key == "title":
                data[key] = rng.choice(["研发总监", "实验室主任", "采购经理", "工程师", "科长"])
            elif key == "department":
                data[key] = rng.choice(["研发部", "采购部", "质量部", "设备科"])
            elif key in ("province", "city"):
                data[key] = rng.choice(["上海", "北京", "江苏", "广东", "浙江"])
            elif key == "industry":
                data[key] = rng.choice(["新能源", "汽车制造", "电子"])
            elif key.startswith("custom:"):
                custom = customs.get(key[7:])
                if custom is None:
                    continue
                values = entry["options"] or [str(o["value"]) for o in custom.options]
                if custom.type == "choice" and values:
                    data[key] = rng.choice(values)
                elif custom.type == "multi_choice" and values:
                    data[key] = sorted(rng.sample(values, min(2, len(values))))
                elif custom.type == "number":
                    data[key] = rng.choice([20, 50, 120, 300])
                else:
                    data[key] = rng.choice(["检验科", "影像科", "心内科"])
        return data

    def traffic(self, unit: BusinessUnit, forms: list[Form]) -> None:
        rng = self.rng
        phones = list(
            Identity.objects.dangerously_unscoped()
            .filter(group_id=unit.parent_id, kind=IdentityKind.PHONE, contact__units__unit=unit)
            .values_list("value", flat=True)[:200]
        )
        campaigns = list(
            Campaign.objects.dangerously_unscoped().filter(unit=unit).values_list("code", flat=True)
        )
        views: list[ActivityIn] = []
        stored: list[tuple[int, Any]] = []
        for n in range(SUBMISSIONS_PER_SCALE * self.scale):
            form = forms[0] if rng.random() < 0.5 else rng.choice(forms)
            at = self.now - timedelta(days=rng.uniform(0.05, DAYS))
            visitor = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            utm: dict[str, str] = {}
            if rng.random() < 0.7:
                utm["source"] = rng.choice(UTM_SOURCES)
                utm["medium"] = "cpc" if utm["source"] == "baidu-sem" else "social"
                if campaigns and rng.random() < 0.6:
                    utm["campaign"] = rng.choice(campaigns)
            query = "&".join(f"utm_{k}={v}" for k, v in utm.items())
            page_url = f"https://www.hualan.example.cn/f/{form.key}/" + (
                f"?{query}" if query else ""
            )
            # Visitors look a few times before they leave their details.
            for v in range(rng.randint(1, 4)):
                views.append(
                    ActivityIn(
                        unit_id=unit.pk,
                        type="page_view",
                        occurred_at=at - timedelta(hours=v * rng.uniform(1, 30)),
                        anonymous_id=visitor,
                        object_type="form",
                        object_id=str(form.pk),
                        properties={"form": form.name, "url": page_url},
                        dedupe_key=f"demo-form-view:{unit.code}:{n}:{v}",
                    )
                )
            known = rng.choice(phones) if phones and rng.random() < 0.3 else None
            spam = rng.random() < 0.04
            result = submission_store(
                form=form,
                submission=SubmissionIn(
                    token=f"demo-{unit.code}-{n}",
                    data=self._answers(form, known),
                    consent=not spam,
                    anonymous_id=visitor,
                    page_url=page_url,
                    referrer="https://www.baidu.com/" if utm.get("source") == "baidu-sem" else "",
                    utm=utm,
                    ip=f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                    user_agent=PHONE_BROWSER,
                    spam=spam,
                ),
            )
            stored.append((result.submission.pk, at))
        # Visitors who only looked.
        for n in range(SUBMISSIONS_PER_SCALE * self.scale * 2):
            form = rng.choice(forms)
            visitor = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            views.append(
                ActivityIn(
                    unit_id=unit.pk,
                    type="page_view",
                    occurred_at=self.now - timedelta(days=rng.uniform(0.05, DAYS)),
                    anonymous_id=visitor,
                    object_type="form",
                    object_id=str(form.pk),
                    properties={"form": form.name},
                    dedupe_key=f"demo-form-look:{unit.code}:{n}",
                )
            )
        activities_record(views)
        # The demo's submissions arrived over the last 60 days, not all just now.
        for pk, at in stored:
            FormSubmission.objects.dangerously_unscoped().filter(pk=pk).update(received_at=at)
        submissions_process([pk for pk, _at in stored])

    def run(self) -> None:
        for code in FORMS:
            unit = BusinessUnit.objects.dangerously_unscoped().filter(code=code).first()
            if unit is None:
                continue
            self.traffic(unit, self.forms(unit))


@register_demo(300, "content: forms")
def seed_forms(scale: int = 1) -> None:
    unit_code, name = MARKER
    if Form.objects.dangerously_unscoped().filter(unit__code=unit_code, name=name).exists():
        return
    if not Channel.objects.dangerously_unscoped().filter(unit__code=unit_code).exists():
        return  # the contacts demo has not run (channels, fields and people come from it)
    with transaction.atomic():
        _Demo(scale).run()
