"""Demo segments for the life-science unit (after contacts and content are seeded).

Includes the acceptance segment of issue 6: ``(industry = 生物医药 AND (viewed topic
"单细胞" ≥ 3 times in 7 days OR tag "展会-2026")) AND NOT unsubscribed``. A few biopharma
contacts get recent single-cell content views and the trade-show tag, so it has members.
"""

from __future__ import annotations

import random
from datetime import timedelta

from django.utils import timezone

from apps.contacts.models import (
    Contact,
    ContactUnit,
    Segment,
    SegmentKind,
    SegmentMember,
    Tag,
)
from apps.contacts.services import segments
from apps.contacts.services.activities import ActivityIn, activities_record
from apps.contacts.services.consent import consent_record
from apps.contacts.services.tags import tags_add
from apps.core.demo import SYSTEM, register_demo
from apps.core.models import BusinessUnit, User

SEED = 6
UNIT = "hualan-ls"
TRADE_SHOW_TAG = "展会-2026"
ACCEPTANCE_NAME = "单细胞高意向（生物医药，未退订）"


def acceptance_definition(tag_id: int) -> dict[str, object]:
    return {
        "all": [
            {"field": "industry", "op": "eq", "value": "生物医药"},
            {
                "any": [
                    {
                        "activity": {
                            "type": "content_view",
                            "days": 7,
                            "min_count": 3,
                            "properties": {"topic": "单细胞"},
                        }
                    },
                    {"tag": tag_id},
                ]
            },
            {"not": {"consent": {"channel": "email", "state": "withdrawn"}}},
        ]
    }


def _behaviour(unit: BusinessUnit, tag: Tag, rng: random.Random) -> None:
    """Recent single-cell views, the trade-show tag and a few unsubscribes among the
    unit's biopharma contacts (idempotent: activities carry dedupe keys)."""
    known = ContactUnit.objects.dangerously_unscoped().filter(unit=unit).values("contact_id")
    bio = list(
        Contact.objects.dangerously_unscoped()
        .filter(pk__in=known, industry="生物医药", status="active")
        .order_by("id")
        .values_list("id", flat=True)[:60]
    )
    if not bio:
        return
    now = timezone.now()
    rows = []
    for n, contact_id in enumerate(bio[:24]):
        views = 2 + n % 3  # 2, 3 or 4 views: only some reach the threshold
        for i in range(views):
            rows.append(
                ActivityIn(
                    unit_id=unit.pk,
                    contact_id=contact_id,
                    type="content_view",
                    occurred_at=now
                    - timedelta(days=rng.randint(0, 6), minutes=rng.randint(1, 600)),
                    object_type="asset",
                    object_id="demo-single-cell",
                    properties={"topic": "单细胞", "title": "单细胞测序白皮书", "seconds": 90},
                    dedupe_key=f"demo-segment-view:{contact_id}:{i}",
                )
            )
    activities_record(rows)
    tags_add(contact_ids=bio[20:40], tags=[tag], source="import", actor_label="demo")
    for contact in Contact.objects.dangerously_unscoped().filter(pk__in=bio[::7]):
        consent_record(contact=contact, unit=unit, channel="email", granted=False, source="demo")


@register_demo(400, "contacts: segments")
def seed_segments(scale: int = 1) -> None:
    unit = BusinessUnit.objects.dangerously_unscoped().filter(code=UNIT).first()
    if unit is None:
        return
    if Segment.objects.dangerously_unscoped().filter(unit=unit, name=ACCEPTANCE_NAME).exists():
        return
    rng = random.Random(SEED)  # noqa: S311 - demo data, reproducible on purpose
    tag = Tag.objects.dangerously_unscoped().filter(unit=unit, name=TRADE_SHOW_TAG).first()
    if tag is None:
        tag = Tag.objects.dangerously_unscoped().create(unit=unit, name=TRADE_SHOW_TAG)
    _behaviour(unit, tag, rng)
    hot = segments.segment_create(
        unit=unit,
        name=ACCEPTANCE_NAME,
        definition=acceptance_definition(tag.pk),
        description="生物医药行业，7 天内看过 3 次以上单细胞内容或在 2026 展会名单上，邮件未退订",
        acting_user=SYSTEM,
    )
    created = [
        hot,
        segments.segment_create(
            unit=unit,
            name="30 天无互动",
            definition={"not": {"activity": {"type": "*", "days": 30}}},
            description="唤醒对象：30 天内没有任何行为",
            rebuild_every_minutes=24 * 60,
            acting_user=SYSTEM,
        ),
        segments.segment_create(
            unit=unit,
            name="制药/生物技术 · 有手机号",
            definition={
                "all": [
                    {"field": "industry", "op": "in", "value": ["制药", "生物技术"]},
                    {"has_identity": "phone"},
                ]
            },
            acting_user=SYSTEM,
        ),
    ]
    created.append(
        segments.segment_create(
            unit=unit,
            name="高意向且邮件已同意",
            definition={
                "all": [
                    {"segment": hot.pk},
                    {"consent": {"channel": "email", "state": "granted"}},
                ]
            },
            acting_user=SYSTEM,
        )
    )
    for segment in created:  # in order: the last one reads the first one's members
        segments.segment_rebuild(segment_id=segment.pk)
    vip = segments.segment_create(
        unit=unit, name="展会 VIP 名单", kind=SegmentKind.STATIC, acting_user=SYSTEM
    )
    members = list(
        SegmentMember.objects.dangerously_unscoped()
        .filter(segment_id=hot.pk)
        .order_by("contact_id")
        .values_list("contact_id", flat=True)[:5]
    )
    marketer = User.objects.filter(username="marketer").first()
    if members and marketer is not None:
        segments.segment_members_add(segment=vip, contact_ids=members, acting_user=marketer)
