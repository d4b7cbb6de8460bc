"""Scoring's part of the demo world (``register_demo`` order 420, after contacts and
content): two models for the life-science unit, one per customer tier (seed 003 case 4),
with different fit weights and engagement rules, recomputed once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction

from apps.contacts.models import CustomField
from apps.core.demo import register_demo
from apps.core.models import BusinessUnit
from apps.nurture.models import ScoringModel, ScoringRule
from apps.nurture.services.scoring import scoring_model_recompute

UNIT = "hualan-ls"


def _rules(fields: dict[str, CustomField], tier: str) -> list[dict[str, Any]]:
    customer_type = fields.get("customer_type")
    budget = fields.get("annual_budget")
    rules: list[dict[str, Any]] = []

    def fit(name: str, condition: dict[str, Any], points: str) -> None:
        rules.append({"kind": "fit", "name": name, "condition": condition, "points": points})

    def eng(name: str, match: dict[str, Any], points: str, cap: str = "", days: int = 0) -> None:
        rules.append(
            {
                "kind": "engagement",
                "name": name,
                "match": match,
                "points": points,
                "cap": cap or None,
                "cap_days": days or None,
            }
        )

    if tier == "ka":
        if customer_type:
            fit("KA 客户", {"custom": customer_type.pk, "op": "eq", "value": "ka"}, "30")
        if budget:
            fit("年预算 ≥ 100 万", {"custom": budget.pk, "op": "gte", "value": 100}, "15")
        fit(
            "生物医药行业",
            {"field": "industry", "op": "in", "value": ["生物医药", "制药", "生物技术"]},
            "10",
        )
        fit(
            "决策层职位",
            {
                "any": [
                    {"field": "title", "op": "contains", "value": v}
                    for v in ("总监", "主任", "经理")
                ]
            },
            "10",
        )
        fit(
            "求职者 / 学生",
            {"any": [{"field": "title", "op": "contains", "value": v} for v in ("求职", "学生")]},
            "-40",
        )
        eng(
            "下载单细胞资料", {"type": "download", "properties": {"topic": "单细胞"}}, "8", "24", 30
        )
        eng("下载资料", {"type": "download"}, "3", "9", 30)
        eng(
            "浏览单细胞内容",
            {"type": "content_view", "properties": {"topic": "单细胞"}},
            "4",
            "12",
            30,
        )
        eng("提交表单", {"type": "form_submit"}, "15", "30", 30)
        eng("浏览价格页", {"type": "page_view", "properties": {"url": "/pricing"}}, "5", "15", 7)
        eng("退订", {"type": "unsubscribe"}, "-20")
    else:
        if customer_type:
            fit(
                "中小客户",
                {"custom": customer_type.pk, "op": "in", "value": ["mid", "small"]},
                "20",
            )
        fit(
            "科研与检测行业",
            {"field": "industry", "op": "in", "value": ["高校科研", "CRO", "食品检测"]},
            "15",
        )
        fit(
            "一线科研人员",
            {
                "any": [
                    {"field": "title", "op": "contains", "value": v}
                    for v in ("研究员", "技术员", "博士后")
                ]
            },
            "10",
        )
        fit("学生", {"field": "title", "op": "contains", "value": "学生"}, "-20")
        eng("浏览价格页", {"type": "page_view", "properties": {"url": "/pricing"}}, "6", "18", 7)
        eng("提交表单", {"type": "form_submit"}, "20", "40", 30)
        eng("下载资料", {"type": "download"}, "5", "15", 14)
        eng("浏览单细胞内容", {"type": "content_view", "properties": {"topic": "单细胞"}}, "3")
    return rules


MODELS = [
    (
        "KA 客户评分",
        "ka",
        "大客户：看重客户类型、预算与决策层职位；行为看单细胞资料下载、表单与价格页。",
        30,
        [{"min": 30, "temperature": "warm"}, {"min": 60, "temperature": "hot"}],
    ),
    (
        "中小客户评分",
        "small",
        "中小客户：看重科研/检测行业与一线科研人员；行为看价格页、表单与下载。",
        14,
        [{"min": 25, "temperature": "warm"}, {"min": 50, "temperature": "hot"}],
    ),
]


@register_demo(420, "nurture: scoring")
def seed_scoring(scale: int = 1) -> None:
    unit = BusinessUnit.objects.dangerously_unscoped().filter(code=UNIT).first()
    if unit is None:
        return
    fields = {f.key: f for f in CustomField.objects.dangerously_unscoped().filter(unit=unit)}
    created: list[ScoringModel] = []
    with transaction.atomic():
        for name, tier, description, half_life, bands in MODELS:
            if ScoringModel.objects.dangerously_unscoped().filter(unit=unit, name=name).exists():
                continue
            model = ScoringModel.objects.dangerously_unscoped().create(
                unit=unit,
                name=name,
                tier=tier,
                description=description,
                half_life_days=half_life,
                bands=bands,
            )
            for position, spec in enumerate(_rules(fields, tier)):
                ScoringRule.objects.dangerously_unscoped().create(
                    model=model,
                    position=position,
                    **{
                        **spec,
                        "points": Decimal(spec["points"]),
                        "cap": Decimal(spec["cap"]) if spec.get("cap") else None,
                    },
                )
            created.append(model)
    for model in created:
        scoring_model_recompute(model=model)
