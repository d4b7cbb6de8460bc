"""Contacts' part of the demo world (registered with apps.core.demo.register_demo).

For the 华澜 group's three units: channels and campaigns with cost, custom fields with each
unit's own options (seed 003: the same 客户类型 field means different things per unit),
tag groups with manual and rule tags, and ~300 × scale contacts who arrive through forms,
WeChat, trade shows and downloads. About one in ten arrives twice with keys that do not
match yet (a phone from a form, an openid from a WeChat follow) and is joined later by a
key both share, so real merges happen. Activities over the last 180 days, consent, manual
tags, then the rule tags are applied.

Idempotent: the whole step is one transaction, skipped when the life-science unit already
has its demo channel.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.contacts.identity_keys import Key, make_key
from apps.contacts.models import (
    Channel,
    ConsentEvent,
    CustomField,
    Tag,
)
from apps.contacts.services import config, tag_rules
from apps.contacts.services.activities import ActivityIn, activities_record
from apps.contacts.services.consent import consent_states_refresh
from apps.contacts.services.fields import clean_custom
from apps.contacts.services.resolution import contact_resolve
from apps.contacts.services.tags import tags_add
from apps.core.demo import SYSTEM, register_demo
from apps.core.models import BusinessUnit

PEOPLE_PER_SCALE = 300
SEED = 20261201
UNIT_CODES = ("hualan-ls", "hualan-mat", "hualan-med")
UNIT_WEIGHTS = (0.5, 0.3, 0.2)
MARKER = ("hualan-ls", "baidu-sem")  # this channel existing means the step already ran

# Each unit's WeChat official account (openids are scoped to it).
WECHAT_APP_IDS = {
    "hualan-ls": "wx5f3c1a2b4d6e8f01",
    "hualan-mat": "wx7a9b2c4d6e8f1a02",
    "hualan-med": "wx3e5d7c9b1a2f4e03",
}

CHANNELS = [
    ("baidu-sem", "百度SEM", "sem"),
    ("seo", "官网SEO", "seo"),
    ("wechat-mp", "微信公众号", "wechat"),
    ("douyin", "抖音", "douyin"),
    ("expo", "线下展会", "event"),
    ("media", "行业媒体", "media"),
    ("sales", "销售自拓", "sales"),
    ("partner", "合作伙伴", "partner"),
    ("email", "邮件营销", "email"),
]

# code, name, channel code, starts (days from today), length in days, cost in CNY
CAMPAIGNS = {
    "hualan-ls": [
        ("2026-baidu-brand-q3", "百度品牌词投放 Q3", "baidu-sem", -150, 92, "86500.00"),
        ("2026-cell-culture-seminar", "2026 细胞培养技术研讨会", "expo", -60, 2, "185000.00"),
        ("2026-bio-whitepaper", "《生物药工艺白皮书》下载推广", "media", -90, 60, "42000.50"),
        ("2026-douyin-lab-tips", "抖音实验室小技巧短视频", "douyin", -40, 30, "26800.00"),
    ],
    "hualan-mat": [
        ("2026-cibf-expo", "CIBF 2026 电池展展位", "expo", -120, 4, "320000.00"),
        ("2026-ev-material-media", "新能源材料行业媒体专题", "media", -80, 45, "58000.00"),
        ("2026-baidu-sem-mat", "百度搜索 材料关键词", "baidu-sem", -170, 180, "64000.00"),
    ],
    "hualan-med": [
        ("2026-cmef", "CMEF 2026 中国医疗器械博览会", "expo", -100, 4, "268000.00"),
        ("2026-hospital-webinar", "三甲医院采购线上研讨会", "wechat-mp", -30, 1, "8000.00"),
    ],
}

# key, label, type, options (value, label) — each unit's own options (seed 003, case 5).
FIELDS: dict[str, list[tuple[str, str, str, list[tuple[str, str]]]]] = {
    "hualan-ls": [
        (
            "customer_type",
            "客户类型",
            "choice",
            [("ka", "KA客户"), ("mid", "中型客户"), ("small", "小型客户")],
        ),
        (
            "research_area",
            "研究方向",
            "multi_choice",
            [
                ("cell", "细胞生物学"),
                ("molecular", "分子生物学"),
                ("immunology", "免疫学"),
                ("drug", "药物研发"),
            ],
        ),
        ("annual_budget", "年采购预算(万元)", "number", []),
    ],
    "hualan-mat": [
        (
            "customer_type",
            "客户类型",
            "choice",
            [("raw_material", "原料厂商"), ("end_user", "终端用户"), ("distributor", "经销商")],
        ),
        (
            "application",
            "应用领域",
            "multi_choice",
            [("ev", "新能源"), ("auto", "汽车"), ("electronics", "电子"), ("construction", "建筑")],
        ),
    ],
    "hualan-med": [
        (
            "hospital_grade",
            "医院等级",
            "choice",
            [("3a", "三甲"), ("2", "二级"), ("primary", "基层")],
        ),
        ("department_name", "科室", "text", []),
    ],
}

Rule = Callable[[dict[str, CustomField]], dict[str, Any]]


def _custom_eq(key: str, value: str) -> Rule:
    return lambda fields: {"custom": fields[key].pk, "op": "eq", "value": value}


# group -> [(tag name, rule or None for a manual tag)]
TAGS: dict[str, list[tuple[str, list[tuple[str, Rule | None]]]]] = {
    "hualan-ls": [
        (
            "意向",
            [
                (
                    "高意向",
                    lambda f: {"activity": {"type": "download", "days": 30, "min_count": 3}},
                ),
                ("展会名单", None),
            ],
        ),
        (
            "行业",
            [
                (
                    "生物医药行业",
                    lambda f: {
                        "field": "industry",
                        "op": "in",
                        "value": ["生物医药", "制药", "生物技术"],
                    },
                ),
            ],
        ),
        (
            "客户分层",
            [("KA客户", _custom_eq("customer_type", "ka")), ("老客户", None), ("竞品用户", None)],
        ),
    ],
    "hualan-mat": [
        (
            "应用",
            [
                (
                    "新能源应用",
                    lambda f: {"custom": f["application"].pk, "op": "in", "value": ["ev"]},
                ),
            ],
        ),
        ("客户分层", [("重点客户", None), ("价格敏感", None)]),
    ],
    "hualan-med": [
        ("医院", [("三甲医院", _custom_eq("hospital_grade", "3a")), ("学术带头人", None)]),
    ],
}

INDUSTRIES = {
    "hualan-ls": ["生物医药", "制药", "生物技术", "高校科研", "医院", "CRO", "食品检测"],
    "hualan-mat": ["新能源", "汽车制造", "电子", "化工", "建筑材料"],
    "hualan-med": ["医院", "第三方检测", "医疗器械经销", "体检中心"],
}
TITLES = {
    "hualan-ls": ["研发总监", "实验室主任", "研究员", "采购经理", "博士后", "QC经理", "技术员"],
    "hualan-mat": ["采购总监", "技术总监", "工艺工程师", "研发经理", "总经理", "品质经理"],
    "hualan-med": ["设备科科长", "主任医师", "采购负责人", "院长", "护士长", "医学装备处处长"],
}
DEPARTMENTS = ["研发部", "采购部", "质量部", "技术部", "实验室", "总经办", "设备科"]
PLACES = [
    ("上海", "上海"),
    ("北京", "北京"),
    ("江苏", "苏州"),
    ("江苏", "南京"),
    ("浙江", "杭州"),
    ("广东", "深圳"),
    ("广东", "广州"),
    ("湖北", "武汉"),
    ("四川", "成都"),
    ("山东", "济南"),
    ("天津", "天津"),
    ("陕西", "西安"),
]
ASSETS = {
    "hualan-ls": [
        "细胞培养基选型指南",
        "生物药工艺白皮书",
        "CHO细胞转染方案",
        "质粒提取试剂盒说明书",
    ],
    "hualan-mat": ["正极材料技术手册", "隔膜选型白皮书", "材料安全数据表"],
    "hualan-med": ["超声设备参数对比", "采购招标指南", "临床案例集"],
}
PAGES = ["/", "/products", "/solutions", "/pricing", "/cases", "/about", "/contact"]


@dataclass
class Person:
    unit: BusinessUnit
    attributes: dict[str, Any]
    phone: str
    email: str | None
    openid: str
    unionid: str
    channel_id: int
    first_seen: datetime
    contact_id: int = 0  # set once the person has been resolved
    wechat: bool = False
    units: set[int] = field(default_factory=set)
    keys: set[Key] = field(default_factory=set)


class _Demo:
    def __init__(self, scale: int) -> None:
        from faker import Faker

        self.scale = scale
        self.rng = random.Random(SEED)  # noqa: S311 - demo data, reproducible on purpose
        self.fake = Faker("zh_CN")
        self.fake.seed_instance(SEED)
        self.now = timezone.now()
        self.units = {
            u.code: u
            for u in BusinessUnit.objects.dangerously_unscoped().filter(code__in=UNIT_CODES)
        }
        self.channels: dict[str, dict[str, Channel]] = {}
        self.campaigns: dict[str, list[int]] = {}
        self.fields: dict[str, dict[str, CustomField]] = {}
        self.tags: dict[str, dict[str, Tag]] = {}
        self.used_phones: set[str] = set()

    # --- configuration ----------------------------------------------------------------------

    def configure(self) -> None:
        today = self.now.date()
        for code, unit in self.units.items():
            self.channels[code] = {
                c: config.channel_create(
                    unit=unit, code=c, name=name, kind=kind, acting_user=SYSTEM
                )
                for c, name, kind in CHANNELS
            }
            self.campaigns[code] = [
                config.campaign_create(
                    unit=unit,
                    code=c,
                    name=name,
                    channel=self.channels[code][channel],
                    starts_on=today + timedelta(days=start),
                    ends_on=today + timedelta(days=start + length),
                    cost=Decimal(cost),
                    acting_user=SYSTEM,
                ).pk
                for c, name, channel, start, length, cost in CAMPAIGNS[code]
            ]
            self.fields[code] = {
                key: config.custom_field_create(
                    unit=unit,
                    key=key,
                    label=label,
                    field_type=kind,
                    options=[{"value": v, "label": lab} for v, lab in options],
                    acting_user=SYSTEM,
                )
                for key, label, kind, options in FIELDS[code]
            }

    def make_tags(self) -> None:
        for code, unit in self.units.items():
            self.tags[code] = {}
            for position, (group_name, tags) in enumerate(TAGS[code]):
                group = config.tag_group_create(
                    unit=unit, name=group_name, position=position, acting_user=SYSTEM
                )
                for name, rule in tags:
                    self.tags[code][name] = config.tag_create(
                        unit=unit,
                        name=name,
                        kind="rule" if rule else "manual",
                        group=group,
                        rule=rule(self.fields[code]) if rule else None,
                        acting_user=SYSTEM,
                    )

    # --- people -----------------------------------------------------------------------------

    def _phone(self) -> str:
        while True:
            phone = f"1{self.rng.choice('3578')}{self.rng.randrange(10**9):09d}"
            if phone not in self.used_phones:
                self.used_phones.add(phone)
                return phone

    def _custom(self, code: str) -> dict[str, Any]:
        rng = self.rng
        raw: dict[str, Any] = {}
        for key, _label, kind, options in FIELDS[code]:
            if rng.random() < 0.25:
                continue  # not everyone has told us everything
            if kind == "choice":
                raw[key] = rng.choices([v for v, _l in options], weights=[2, 5, 3][: len(options)])[
                    0
                ]
            elif kind == "multi_choice":
                raw[key] = rng.sample([v for v, _l in options], rng.randint(1, 2))
            elif kind == "number":
                raw[key] = rng.choice([5, 20, 50, 120, 300, 800])
            else:
                raw[key] = rng.choice(["检验科", "影像科", "心内科", "ICU", "设备科"])
        return clean_custom(self.fields[code].values(), raw)

    def _person(self, i: int) -> Person:
        rng, fake = self.rng, self.fake
        code = rng.choices(UNIT_CODES, weights=UNIT_WEIGHTS)[0]
        province, city = rng.choice(PLACES)
        channel = rng.choice(list(self.channels[code].values()))
        return Person(
            unit=self.units[code],
            attributes={
                "name": fake.name(),
                "company_name": fake.company(),
                "title": rng.choice(TITLES[code]),
                "department": rng.choice(DEPARTMENTS),
                "industry": rng.choice(INDUSTRIES[code]),
                "province": province,
                "city": city,
                "custom": self._custom(code),
                "source_channel_id": channel.pk,
            },
            phone=self._phone(),
            email=f"{fake.user_name()}{i}@{fake.free_email_domain()}"
            if rng.random() < 0.7
            else None,
            openid=f"o{rng.getrandbits(96):024x}",
            unionid=f"u{rng.getrandbits(96):024x}",
            channel_id=channel.pk,
            first_seen=self.now - timedelta(days=rng.uniform(2, 180)),
        )

    def _resolve(
        self,
        person: Person,
        unit: BusinessUnit,
        keys: list[Key],
        attrs: dict[str, Any],
        source: str,
        at: datetime,
    ) -> int:
        result = contact_resolve(
            unit=unit,
            keys=keys,
            attributes=attrs,
            source=source,
            observed_at=at,
            acting_user=SYSTEM,
        )
        person.keys.update(keys)
        person.units.add(unit.pk)
        person.contact_id = result.contact.pk
        return result.contact.pk

    def arrive(self, person: Person) -> None:
        """One person's arrivals, in time order, through the ways seed 003 describes."""
        rng, unit, at = self.rng, person.unit, person.first_seen
        code = unit.code
        phone = make_key("phone", person.phone)
        email = [make_key("email", person.email)] if person.email else []
        openid = make_key("wechat_openid", person.openid, WECHAT_APP_IDS[code])
        unionid = make_key("wechat_unionid", person.unionid)
        attrs = person.attributes
        later = at + timedelta(days=rng.uniform(0.5, 20))
        roll = rng.random()
        if roll < 0.10:
            # Two contacts at first: a form (phone) and a WeChat follow (openid + unionid)…
            self._resolve(person, unit, [phone, *email], attrs, "form", at)
            self._resolve(person, unit, [openid, unionid], {}, "wechat", later)
            # … until a form inside WeChat sends the openid and the phone: one person.
            self._resolve(
                person, unit, [openid, phone], {}, "wechat_form", later + timedelta(days=3)
            )
            person.wechat = True
        elif roll < 0.45:
            self._resolve(person, unit, [phone, *email], attrs, "form", at)
            if rng.random() < 0.5:
                self._resolve(person, unit, [openid, unionid, phone], {}, "wechat", later)
                person.wechat = True
        elif roll < 0.70:
            name_only = {"name": attrs["name"], "source_channel_id": attrs["source_channel_id"]}
            self._resolve(person, unit, [openid, unionid], name_only, "wechat", at)
            person.wechat = True
            if rng.random() < 0.5:
                self._resolve(person, unit, [openid, phone, *email], attrs, "wechat_form", later)
        else:
            self._resolve(person, unit, [phone, *email], attrs, "event", at)
        if rng.random() < 0.08:
            # Known to a second unit too: the same phone at another unit's event, or (for
            # someone we only know on WeChat) a follow of that unit's official account,
            # which shares the unionid across the group's accounts.
            other_code = rng.choice([c for c in UNIT_CODES if c != code])
            at_other = later + timedelta(days=5)
            if phone in person.keys:
                self._resolve(person, self.units[other_code], [phone], {}, "event", at_other)
            else:
                # An openid is per official account: this one is new.
                other_openid = make_key(
                    "wechat_openid", f"o{rng.getrandbits(96):024x}", WECHAT_APP_IDS[other_code]
                )
                keys = [other_openid, unionid]
                self._resolve(person, self.units[other_code], keys, {}, "wechat", at_other)

    # --- behaviour, consent, tags -------------------------------------------------------------

    def activities(self, people: list[Person]) -> None:
        rng, rows = self.rng, []
        for i, p in enumerate(people):
            code = p.unit.code
            span = max((self.now - p.first_seen).total_seconds(), 3600)
            campaigns = self.campaigns[code]
            events: list[tuple[str, dict[str, Any], str, str]] = []
            for _n in range(rng.randint(2, 18)):
                kind = rng.choices(
                    ["page_view", "content_view", "download", "form_submit", "event_register"],
                    weights=[45, 22, 15, 10, 8],
                )[0]
                events.append(self._event(code, kind))
            if p.wechat:
                events.append(("wechat_follow", {"app_id": WECHAT_APP_IDS[code]}, "", ""))
            for j, (kind, props, object_type, object_id) in enumerate(events):
                at = p.first_seen + timedelta(seconds=rng.uniform(0, span))
                rows.append(self._row(p, i, j, kind, at, props, object_type, object_id, campaigns))
            if code == "hualan-ls" and rng.random() < 0.15:
                # A burst of downloads lately: the "高意向" rule tag should find them.
                for j in range(rng.randint(3, 5)):
                    at = self.now - timedelta(days=rng.uniform(0.2, 25))
                    kind, props, object_type, object_id = self._event(code, "download")
                    rows.append(
                        self._row(p, i, 100 + j, kind, at, props, object_type, object_id, campaigns)
                    )
        activities_record(rows)

    def _event(self, code: str, kind: str) -> tuple[str, dict[str, Any], str, str]:
        rng = self.rng
        if kind == "page_view":
            return kind, {"url": rng.choice(PAGES)}, "", ""
        if kind in ("content_view", "download"):
            index = rng.randrange(len(ASSETS[code]))
            props: dict[str, Any] = {"title": ASSETS[code][index]}
            if kind == "content_view":
                props["seconds"] = rng.randint(8, 600)
            return kind, props, "asset", f"{code}-asset-{index + 1}"
        if kind == "form_submit":
            return kind, {"form": "联系我们"}, "form", f"{code}-contact"
        return kind, {"event": "技术研讨会"}, "event", f"{code}-seminar"

    def _row(
        self,
        p: Person,
        i: int,
        j: int,
        kind: str,
        at: datetime,
        props: dict[str, Any],
        object_type: str,
        object_id: str,
        campaigns: list[int],
    ) -> ActivityIn:
        return ActivityIn(
            unit_id=p.unit.pk,
            contact_id=p.contact_id,
            type=kind,
            occurred_at=at,
            channel_id=p.channel_id,
            campaign_id=self.rng.choice(campaigns) if self.rng.random() < 0.3 else None,
            object_type=object_type,
            object_id=object_id,
            properties=props,
            dedupe_key=f"demo:{i}:{j}",
        )

    def consent(self, people: list[Person]) -> None:
        rng, events = self.rng, []
        for p in people:
            granted_at = p.first_seen + timedelta(minutes=5)
            channels = (["email"] if p.email else []) + (["wechat"] if p.wechat else []) + ["sms"]
            for channel in channels:
                if rng.random() < 0.15:
                    continue  # never asked on this channel
                events.append(
                    ConsentEvent(
                        contact_id=p.contact_id,
                        unit=p.unit,
                        channel=channel,
                        granted=True,
                        basis="consent",
                        source="form",
                        wording_version="2026-03",
                        proof={
                            "form": "联系我们",
                            "ip": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
                        },
                        occurred_at=granted_at,
                    )
                )
                if rng.random() < 0.08:
                    events.append(
                        ConsentEvent(
                            contact_id=p.contact_id,
                            unit=p.unit,
                            channel=channel,
                            granted=False,
                            source="unsubscribe",
                            proof={"link": "preference-centre"},
                            occurred_at=min(
                                self.now, granted_at + timedelta(days=rng.uniform(1, 60))
                            ),
                        )
                    )
        ConsentEvent.objects.bulk_create(events)
        consent_states_refresh({p.contact_id for p in people})

    def manual_tags(self, people: list[Person]) -> None:
        picks: dict[tuple[str, str], list[int]] = {}
        share = {
            "展会名单": 0.2,
            "老客户": 0.1,
            "竞品用户": 0.05,
            "重点客户": 0.12,
            "价格敏感": 0.1,
            "学术带头人": 0.08,
        }
        for p in people:
            code = p.unit.code
            for name, tag in self.tags[code].items():
                if tag.kind == "manual" and self.rng.random() < share.get(name, 0.1):
                    picks.setdefault((code, name), []).append(p.contact_id)
        for (code, name), ids in sorted(picks.items()):
            tags_add(
                contact_ids=ids,
                tags=[self.tags[code][name]],
                source="manual",
                actor_label="seed_demo",
            )

    def run(self) -> None:
        self.configure()
        self.make_tags()
        people = [self._person(i) for i in range(PEOPLE_PER_SCALE * self.scale)]
        for person in people:
            self.arrive(person)
        self.activities(people)
        self.consent(people)
        self.manual_tags(people)
        tag_rules.tag_rules_apply_all(unit_ids=[u.pk for u in self.units.values()])


@register_demo(10, "contacts")
def seed_contacts(scale: int = 1) -> None:
    unit_code, channel_code = MARKER
    if (
        Channel.objects.dangerously_unscoped()
        .filter(unit__code=unit_code, code=channel_code)
        .exists()
    ):
        return
    if BusinessUnit.objects.dangerously_unscoped().filter(code__in=UNIT_CODES).count() < 3:
        return  # the core world is not there (seed_core runs first)
    with transaction.atomic():
        _Demo(scale).run()
