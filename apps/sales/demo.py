"""Sales' part of the demo world (``register_demo`` order 500, after contacts, content and
scoring).

For the 华澜 group's three units: an SLA policy (the medical unit runs the TQL call-centre
step, seed 004), one round-robin sales team with two assignment rules (KA first, then
everyone else), about 140 leads in every stage with a history written by the real
services at backdated times (touches, qualification, hand-off, acceptance, follow-ups,
SQL, opportunities won and lost, SLA misses recorded by the sweep), a few leads in the
group pool, and a disabled CRM webhook pointing nowhere.

Open leads end with a recent step, so their SLA clocks run in the future; a few are due
in the next hours (the queues show countdowns) and a few are already overdue.

Idempotent: the whole step is one transaction, skipped when the life-science unit
already has the demo webhook.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.contacts.models import Contact, ContactUnit
from apps.core.demo import register_demo
from apps.core.models import BusinessUnit, Membership, User
from apps.core.roles import Role
from apps.sales.models import (
    AssignmentRule,
    Lead,
    Opportunity,
    SalesTeam,
    SlaPolicy,
    Stage,
    TeamMember,
    WebhookEndpoint,
)
from apps.sales.services import leads as services
from apps.sales.services import opportunities, sla
from apps.sales.services.stages import policy_for

SEED = 20261205
GROUP_CODE = "hualan"
UNIT_CODES = ("hualan-ls", "hualan-mat", "hualan-med")
# Leads per story in the life-science unit; the others get a share of it.
UNIT_SHARE = {"hualan-ls": 1.0, "hualan-mat": 0.6, "hualan-med": 0.5}
WEBHOOK_NAME = "CRM 演示接口（已停用）"
TEAM_NAMES = {
    "hualan-ls": "生命科学销售组",
    "hualan-mat": "工业材料销售组",
    "hualan-med": "医疗器械销售组",
}
PRODUCTS = {
    "hualan-ls": ["细胞培养基", "流式细胞仪", "单细胞测序服务", "实验室耗材"],
    "hualan-mat": ["正极材料", "隔膜涂层", "导热界面材料", "工程塑料"],
    "hualan-med": ["超声诊断仪", "监护仪", "内窥镜系统", "耗材年度框架"],
}
NEEDS = [
    "新建实验室，需要整体采购方案",
    "现有供应商交期不稳定，想评估替代",
    "明年产线扩产，需要样品测试",
    "科室设备更新，预算已批",
    "想了解技术参数和价格区间",
]
NOTES = [
    "电话沟通，客户对价格敏感，约下周演示",
    "企业微信发送了产品资料，客户已读",
    "上门拜访，见到了采购负责人",
    "线上会议演示，技术团队提了三个问题",
    "邮件跟进报价单",
]
REASONS_DISQUALIFY = ["学生，无采购需求", "同行咨询", "联系方式无效"]
REASONS_LOST = ["价格高于竞品", "项目延期到明年", "选择了现有供应商"]
FOLLOW_KINDS = ["call", "wecom", "visit", "meeting", "email"]

# story -> leads in the life-science unit. Every funnel stage, a few SLA countdowns and
# misses, closed leads of every kind.
STORIES = {
    "mal": 4,
    "mil_due_soon": 3,
    "mil_overdue": 2,
    "mil_touched": 12,
    "mil_late_touch": 2,
    "mql": 6,
    "mql_waiting": 4,
    "mql_accept_missed": 1,
    "sal": 5,
    "sal_due_soon": 2,
    "sql": 6,
    "sql_returned": 1,
    "opportunity": 6,
    "customer": 5,
    "lost": 3,
    "recycled_by_sla": 2,
    "disqualified": 3,
}
POOL_LEADS = 4


def _users(unit: BusinessUnit, role: str) -> list[User]:
    ids = (
        Membership.objects.dangerously_unscoped()
        .filter(unit=unit, role=role, user__is_active=True)
        .order_by("user__username")
        .values_list("user_id", flat=True)
    )
    by_id = User.objects.in_bulk(list(ids))
    return [by_id[i] for i in ids]


class _Unit:
    """One unit's people, contacts and clock, and the stories that build its leads."""

    def __init__(self, unit: BusinessUnit, rng: random.Random, now: dt.datetime) -> None:
        self.unit, self.rng, self.now = unit, rng, now
        self.sdrs = _users(unit, Role.SDR)
        self.sales = _users(unit, Role.SALES)
        self.people = {u.pk: u for u in (*self.sdrs, *self.sales)}
        self.policy = self._policy()
        self.team = self._team()
        busy = Lead.objects.dangerously_unscoped().filter(unit=unit, is_open=True)
        self.contacts = list(
            Contact.objects.dangerously_unscoped()
            .filter(
                status="active",
                pk__in=ContactUnit.objects.dangerously_unscoped()
                .filter(unit=unit)
                .values("contact_id"),
            )
            .exclude(pk__in=busy.values("contact_id"))
            .order_by("pk")
        )
        rng.shuffle(self.contacts)
        self.turn = 0

    # --- setup ----------------------------------------------------------------------------

    def _policy(self) -> SlaPolicy:
        policy = policy_for(self.unit.pk)
        policy.unit = self.unit  # due_after reads the unit's zone: no query per call
        if self.unit.code == "hualan-med" and not policy.use_tql:
            # Seed 004: the medical unit's call centre confirms leads (MQL → TQL → sales).
            policy.use_tql = True
            policy.save(update_fields=["use_tql", "updated_at"])
        return policy

    def _team(self) -> SalesTeam:
        team, _created = SalesTeam.objects.dangerously_unscoped().get_or_create(
            unit=self.unit, name=TEAM_NAMES[self.unit.code], defaults={"method": "round_robin"}
        )
        for user in self.sales:
            TeamMember.objects.dangerously_unscoped().get_or_create(
                team=team, user=user, defaults={"capacity": 40}
            )
        rules = [
            ("KA 客户优先", 1, {"tiers": ["ka"]}),
            ("其余线索", 2, {}),
        ]
        for name, position, conditions in rules:
            AssignmentRule.objects.dangerously_unscoped().get_or_create(
                unit=self.unit,
                name=name,
                role=AssignmentRule.Role.SALES,
                defaults={"position": position, "conditions": conditions, "team": team},
            )
        return team

    # --- helpers --------------------------------------------------------------------------

    def ago(self, days: float = 0, hours: float = 0) -> dt.datetime:
        return self.now - dt.timedelta(days=days, hours=hours)

    def jitter(self, low_hours: float, high_hours: float) -> dt.timedelta:
        return dt.timedelta(minutes=self.rng.randint(int(low_hours * 60), int(high_hours * 60)))

    def due_within(self, value: int, unit: str, low: float, high: float) -> dt.datetime:
        """A start time (searching back from now in half hours) whose ``value`` ``unit``
        clock falls due between ``low`` and ``high`` hours from now; the latest start that
        is still due in the future when the calendar allows no such time (a weekend)."""
        fallback = None
        for k in range(1, 24 * 2 * 10):
            start = self.now - dt.timedelta(minutes=30 * k)
            due = sla.due_after(start, value, unit, self.policy)
            if self.now + dt.timedelta(hours=low) <= due <= self.now + dt.timedelta(hours=high):
                return start
            if fallback is None and due > self.now:
                fallback = start
        return fallback or self.now - dt.timedelta(minutes=30)

    def open(self, when: dt.datetime, stage: str | None = None, sdr: bool = True) -> Lead | None:
        while self.contacts:
            contact = self.contacts.pop()
            temperature = self.rng.choice(["cold", "warm", "warm", "hot", "high_value"])
            sdr_user = self.sdrs[self.turn % len(self.sdrs)] if sdr and self.sdrs else None
            result = services.lead_open(
                contact=contact,
                unit=self.unit,
                source=self.rng.choice(["form", "form", "scoring", "import", "manual"]),
                actor=sdr_user if stage == Stage.MQL else None,
                stage=stage,
                temperature=temperature,
                score=Decimal(self.rng.randint(5, 95)),
                sdr=sdr_user,
                now=when,
            )
            lead = result.lead
            if lead is None or result.outcome not in ("opened", "flagged"):
                continue
            self.turn += 1
            if stage is None and lead.stage == Stage.MAL:
                # Known only by an openid so far: they leave a phone number minutes later.
                lead = services.lead_move(
                    lead=lead,
                    to_stage=Stage.MIL,
                    actor=None,
                    reason="留下联系方式",
                    now=when + dt.timedelta(minutes=10),
                )
            return lead
        return None

    def touch(self, lead: Lead, who: User | None, when: dt.datetime, **extra: Any) -> None:
        if who is None:
            return
        services.follow_up_log(
            lead=lead,
            actor=who,
            kind=self.rng.choice(FOLLOW_KINDS),
            note=self.rng.choice(NOTES),
            now=when,
            **extra,
        )

    def qualify(self, lead: Lead, when: dt.datetime) -> Lead:
        tier = self.rng.choice(["ka", "mid", "mid", "small"])
        services.lead_update(
            lead=lead,
            data={
                "authority": self.rng.choice(["decision_maker", "influencer", "user"]),
                "need": self.rng.choice(NEEDS),
                "timeline": self.rng.choice(["3m", "6m", "12m"]),
                "budget": self.rng.choice([None, 80000, 300000, 1200000]),
                "tier": tier,
            },
            actor=self.person(lead.sdr_id),
        )
        lead = services.lead_qualify(
            lead=lead, actor=self.person(lead.sdr_id), reason="BANT 已确认", now=when
        )
        if self.policy.use_tql:
            lead = services.lead_move(
                lead=lead,
                to_stage=Stage.TQL,
                actor=self.person(lead.sdr_id),
                reason="呼叫中心复核通过",
                now=when + dt.timedelta(hours=2),
            )
        return lead

    def hand(self, lead: Lead, when: dt.datetime, owner: User | None = None) -> Lead:
        return services.lead_handoff(
            lead=lead,
            actor=self.person(lead.sdr_id),
            owner=owner,
            note="客户希望本周内联系",
            now=when,
        )

    def person(self, pk: int | None) -> User | None:
        if pk is None:
            return None
        if pk not in self.people:
            self.people[pk] = User.objects.get(pk=pk)
        return self.people[pk]

    def owner(self, lead: Lead) -> User:
        owner = self.person(lead.owner_id)
        assert owner is not None
        return owner

    def to_sal(self, start: dt.datetime) -> tuple[Lead, dt.datetime] | None:
        """Open → first touch → MQL (→ TQL) → handed → accepted; the time of acceptance."""
        lead = self.open(start)
        if lead is None:
            return None
        self.touch(lead, self.person(lead.sdr_id), start + self.jitter(0.5, 3))
        when = start + self.jitter(20, 60)
        lead = self.qualify(lead, when)
        when += dt.timedelta(hours=3)
        lead = self.hand(lead, when)
        when += self.jitter(1, 8)
        lead = services.lead_accept(lead=lead, actor=self.owner(lead), now=when)
        return lead, when

    def follow_until(self, lead: Lead, since: dt.datetime, last: dt.datetime) -> None:
        """Follow-ups by the owner every day or so from ``since``, the last at ``last``."""
        who = self.owner(lead)
        last = min(max(last, since + dt.timedelta(hours=1)), self.now - dt.timedelta(minutes=5))
        when = since + self.jitter(10, 30)
        while when < last - dt.timedelta(hours=24):
            self.touch(lead, who, when)
            when += self.jitter(26, 44)
        self.touch(
            lead, who, last, next_step="报价评审", next_step_at=self.now + dt.timedelta(days=3)
        )

    def sweep_at(self, when: dt.datetime) -> None:
        # The sweep as beat would have run it then: records the miss, returns or recycles.
        sla.sla_sweep(now=when)

    # --- stories --------------------------------------------------------------------------

    def story(self, kind: str) -> None:
        getattr(self, f"s_{kind}")()

    def s_mal(self) -> None:
        self.open(self.ago(days=self.rng.uniform(1, 60)), stage=Stage.MAL, sdr=False)

    def s_mil_due_soon(self) -> None:
        start = self.due_within(self.policy.first_touch_value, self.policy.first_touch_unit, 0.5, 4)
        self.open(start)

    def s_mil_overdue(self) -> None:
        self.open(self.ago(days=self.rng.uniform(3, 5)))

    def s_mil_touched(self) -> None:
        start = self.ago(days=self.rng.uniform(2, 80))
        lead = self.open(start)
        if lead is not None:
            self.touch(lead, self.person(lead.sdr_id), start + self.jitter(0.3, 3))

    def s_mil_late_touch(self) -> None:
        start = self.ago(days=self.rng.uniform(10, 40))
        lead = self.open(start)
        if lead is None:
            return
        due = lead.sla_due_at or start
        self.sweep_at(due + dt.timedelta(minutes=1))
        self.touch(lead, self.person(lead.sdr_id), due + self.jitter(3, 20))

    def s_mql(self) -> None:
        start = self.ago(days=self.rng.uniform(3, 30))
        if self.rng.random() < 0.5:
            self.open(start, stage=Stage.MQL)
            return
        lead = self.open(start)
        if lead is not None:
            self.touch(lead, self.person(lead.sdr_id), start + self.jitter(0.5, 2))
            lead = self.qualify(lead, start + self.jitter(24, 72))

    def s_mql_waiting(self) -> None:
        handed = self.due_within(self.policy.accept_value, self.policy.accept_unit, 1, 6)
        start = handed - self.jitter(30, 80)
        lead = self.open(start)
        if lead is None:
            return
        self.touch(lead, self.person(lead.sdr_id), start + self.jitter(0.5, 3))
        lead = self.qualify(lead, handed - dt.timedelta(hours=3))
        # The demo salesperson always has something to accept.
        persona = User.objects.filter(username="sales").first()
        owner = persona if persona and persona in self.sales and self.turn % 2 else None
        self.hand(lead, handed, owner=owner)

    def s_mql_accept_missed(self) -> None:
        start = self.ago(days=self.rng.uniform(15, 25))
        lead = self.open(start)
        if lead is None:
            return
        self.touch(lead, self.person(lead.sdr_id), start + self.jitter(0.5, 3))
        lead = self.qualify(lead, start + dt.timedelta(days=1))
        lead = self.hand(lead, start + dt.timedelta(days=1, hours=3))
        assert lead.sla_due_at is not None
        missed = lead.sla_due_at + dt.timedelta(minutes=1)
        self.sweep_at(missed)
        # Back in the SDR's queue: handed to someone else, who accepts the next morning.
        lead.refresh_from_db()
        lead = self.hand(lead, self.ago(hours=self.rng.uniform(12, 20)))
        services.lead_accept(
            lead=lead, actor=self.owner(lead), now=self.ago(hours=self.rng.uniform(2, 10))
        )

    def s_sal(self, last_hours: tuple[float, float] = (1, 20)) -> None:
        done = self.to_sal(self.ago(days=self.rng.uniform(5, 9)))
        if done is not None:
            lead, accepted = done
            self.follow_until(lead, accepted, self.ago(hours=self.rng.uniform(*last_hours)))

    def s_sal_due_soon(self) -> None:
        # 48 h without follow-up runs out in 1–4 hours.
        self.s_sal(last_hours=(44, 47))

    def _to_sql(self, days: tuple[float, float]) -> tuple[Lead, dt.datetime] | None:
        done = self.to_sal(self.ago(days=self.rng.uniform(*days)))
        if done is None:
            return None
        lead, accepted = done
        when = accepted + self.jitter(20, 44)
        self.touch(lead, self.owner(lead), when - dt.timedelta(hours=2))
        lead = services.lead_move(
            lead=lead, to_stage=Stage.SQL, actor=self.owner(lead), reason="需求确认", now=when
        )
        return lead, when

    def s_sql(self) -> None:
        done = self._to_sql((7, 14))
        if done is not None:
            lead, when = done
            self.follow_until(lead, when, self.ago(hours=self.rng.uniform(1, 30)))

    def s_sql_returned(self) -> None:
        done = self._to_sql((8, 14))
        if done is not None:
            lead, when = done
            services.lead_move(
                lead=lead,
                to_stage=Stage.MIL,
                actor=self.owner(lead),
                reason="客户预算冻结，退回 SDR 继续培育",
                now=when + dt.timedelta(days=2),
            )

    def _opportunity(self, days: tuple[float, float]) -> tuple[Opportunity, dt.datetime] | None:
        done = self._to_sql(days)
        if done is None:
            return None
        lead, when = done
        when += self.jitter(24, 96)
        products = self.rng.sample(PRODUCTS[self.unit.code], 2)
        opp = opportunities.opportunity_create(
            lead=lead,
            actor=self.owner(lead),
            data={
                "name": f"{lead.contact.company_name or lead.contact} · {products[0]}",
                "amount": self.rng.choice([68000, 150000, 420000, 980000, 2300000]),
                "expected_close": (self.now + dt.timedelta(days=self.rng.randint(10, 90))).date(),
                "products": products,
            },
            now=when,
        )
        when += self.jitter(48, 120)
        opportunities.opportunity_update(
            opportunity=opp, actor=self.owner(lead), data={"stage": "proposal"}, now=when
        )
        return opp, when

    def s_opportunity(self) -> None:
        self._opportunity((18, 45))

    def s_customer(self) -> None:
        done = self._opportunity((30, 80))
        if done is not None:
            opp, when = done
            opportunities.opportunity_update(
                opportunity=opp,
                actor=self.person(opp.owner_id),
                data={"stage": "won"},
                now=when + self.jitter(72, 240),
            )

    def s_lost(self) -> None:
        done = self._opportunity((30, 70))
        if done is not None:
            opp, when = done
            opportunities.opportunity_update(
                opportunity=opp,
                actor=self.person(opp.owner_id),
                data={"stage": "lost", "lost_reason": self.rng.choice(REASONS_LOST)},
                now=when + self.jitter(72, 240),
            )

    def s_recycled_by_sla(self) -> None:
        done = self.to_sal(self.ago(days=self.rng.uniform(20, 50)))
        if done is not None:
            lead, _accepted = done
            lead.refresh_from_db()
            assert lead.sla_due_at is not None
            self.sweep_at(lead.sla_due_at + dt.timedelta(minutes=1))

    def s_disqualified(self) -> None:
        start = self.ago(days=self.rng.uniform(5, 60))
        lead = self.open(start)
        if lead is None:
            return
        who = self.person(lead.sdr_id)
        self.touch(lead, who, start + self.jitter(0.5, 3))
        services.lead_move(
            lead=lead,
            to_stage=Stage.DISQUALIFIED,
            actor=who,
            reason=self.rng.choice(REASONS_DISQUALIFY),
            now=start + self.jitter(4, 30),
        )


def _pool(group: BusinessUnit, rng: random.Random, now: dt.datetime) -> None:
    """A few leads in the group pool, waiting for the group team to hand them to a unit."""
    busy = Lead.objects.dangerously_unscoped().filter(unit=group, is_open=True)
    contacts = list(
        Contact.objects.dangerously_unscoped()
        .filter(status="active")
        .exclude(pk__in=busy.values("contact_id"))
        .exclude(leads__isnull=False)
        .order_by("-pk")[: POOL_LEADS * 3]
    )
    opened = 0
    for contact in contacts:
        if opened == POOL_LEADS:
            break
        result = services.lead_open(
            contact=contact,
            unit=group,
            source="pool",
            stage=Stage.MQL if opened % 2 else Stage.MIL,
            temperature=rng.choice(["warm", "hot"]),
            reason="集团市场活动",
            now=now - dt.timedelta(days=rng.uniform(1, 10)),
        )
        opened += int(result.outcome in ("opened", "flagged"))


@register_demo(500, "sales: leads, teams, SLAs")
def seed_sales(scale: int = 1) -> None:
    units = {
        u.code: u
        for u in BusinessUnit.objects.dangerously_unscoped().filter(
            code__in=(GROUP_CODE, *UNIT_CODES)
        )
    }
    if len(units) < 4:
        return  # the core world is not there
    ls = units["hualan-ls"]
    if WebhookEndpoint.objects.dangerously_unscoped().filter(unit=ls, name=WEBHOOK_NAME).exists():
        return
    rng = random.Random(SEED)  # noqa: S311 - demo data, reproducible on purpose
    now = timezone.now()
    with transaction.atomic():
        # Disabled first, so the demo's stage changes queue no deliveries.
        WebhookEndpoint.objects.dangerously_unscoped().create(
            unit=ls,
            name=WEBHOOK_NAME,
            url="http://127.0.0.1:9/",
            secret=secrets.token_hex(24),
            events=[],
            is_active=False,
        )
        for code in UNIT_CODES:
            builder = _Unit(units[code], rng, now)
            plan: list[str] = []
            for kind, count in STORIES.items():
                plan += [kind] * max(1, round(count * UNIT_SHARE[code] * scale))
            # The stories that run the sweep at a past time sweep only the lead they
            # build: every lead built before ends with its clock stopped or due later.
            for kind in plan:
                builder.story(kind)
        _pool(units[GROUP_CODE], rng, now)
        # Credits whose two weeks are over stand now (the beat would do it on its first run).
        sla.credit_sweep(now=now)
