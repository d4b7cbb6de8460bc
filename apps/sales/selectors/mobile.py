"""Reads for the salesperson's phone (``/m/…``): the MQLs handed to me, my open leads, one
lead's 360 view and my opportunities.

Everything starts from ``leads_visible`` / ``Opportunity.objects.visible_to`` and is then
narrowed to rows I own: on the phone another salesperson's lead or deal does not exist.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import (
    Count,
    DateTimeField,
    F,
    Max,
    Q,
    QuerySet,
    TextField,
    Value,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, Least, NullIf
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.contacts.models import Activity, ContactTag, Identity, Tag, TagKind
from apps.core.models import User
from apps.core.pagination import KeysetPage, keyset_page
from apps.sales.models import (
    FollowUp,
    HistoryKind,
    Lead,
    LeadHistory,
    Opportunity,
    Stage,
)
from apps.sales.selectors.leads import leads_visible

SELL = "sales.sell"
PAGE_SIZE = 30
# Leads with neither a next step nor a running clock sort last.
NEVER = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
INBOX_STAGES = (Stage.MQL, Stage.TQL)
# The stage filter on "My leads", in funnel order.
LEAD_FILTER_STAGES = (Stage.MQL, Stage.TQL, Stage.SAL, Stage.SQL, Stage.OPPORTUNITY)
BEHAVIOUR_DAYS = 7
BEHAVIOUR_LINES = 8
HISTORY_SHOWN = 10
FOLLOW_UPS_SHOWN = 10


Page = KeysetPage


def _keyset(qs: QuerySet[Any], *, cursor: str | None, size: int, descending: bool) -> Page[Any]:
    """One page of ``qs`` (annotated with ``sort_key``, the earlier of next step and SLA
    due) ordered by (sort_key, id)."""
    order = ("-sort_key", "-id") if descending else ("sort_key", "id")
    return keyset_page(qs, ordering=order, cursor=cursor, size=size)


# --- Leads ----------------------------------------------------------------------------------


def my_leads_base(*, user: User) -> QuerySet[Lead]:
    """Open leads I own (the salesperson's side; managers too see only their own here)."""
    return leads_visible(user=user, permission=SELL).filter(owner_id=user.pk, is_open=True)


def inbox_leads(*, user: User, cursor: str | None = None, size: int = PAGE_SIZE) -> Page:
    """MQLs (or TQLs) handed to me, waiting for accept or reject; soonest deadline first."""
    qs = (
        my_leads_base(user=user)
        .filter(stage__in=INBOX_STAGES, handed_at__isnull=False)
        .annotate(sort_key=Coalesce(F("sla_due_at"), Value(NEVER), output_field=DateTimeField()))
        .select_related("contact", "unit")
    )
    return _keyset(qs, cursor=cursor, size=size, descending=False)


def my_leads(
    *, user: User, stage: str = "", cursor: str | None = None, size: int = PAGE_SIZE
) -> Page:
    """My open leads by what is due first: the next step I set or the SLA clock."""
    qs = my_leads_base(user=user)
    if stage:
        qs = qs.filter(stage=stage)
    qs = qs.annotate(
        sort_key=Coalesce(
            Least("next_step_at", "sla_due_at"), Value(NEVER), output_field=DateTimeField()
        )
    ).select_related("contact", "unit")
    return _keyset(qs, cursor=cursor, size=size, descending=False)


def my_lead_get(*, user: User, pk: Any) -> Lead | None:
    """One lead I own (open or not); None for anyone else's (callers 404)."""
    if not str(pk).isdigit():
        return None
    qs = leads_visible(user=user, permission=SELL).filter(pk=int(pk))
    if not user.is_superuser:
        qs = qs.filter(owner_id=user.pk)
    return qs.select_related("contact", "unit", "sdr", "owner", "opportunity").first()


@dataclass(frozen=True)
class LeadCounts:
    to_accept: int
    due_today: int
    open: int


def my_lead_counts(*, user: User, now: dt.datetime | None = None) -> LeadCounts:
    """The phone home's cards in one query."""
    now = now or timezone.now()
    end_of_day = timezone.localtime(now).replace(hour=23, minute=59, second=59, microsecond=0)
    row = my_leads_base(user=user).aggregate(
        to_accept=Count("pk", filter=Q(stage__in=INBOX_STAGES, handed_at__isnull=False)),
        due_today=Count("pk", filter=Q(sla_due_at__lte=end_of_day)),
        open=Count("pk"),
    )
    return LeadCounts(row["to_accept"], row["due_today"], row["open"])


# --- The 360 view -----------------------------------------------------------------------------


def _verb(activity_type: str) -> str:
    # Spelled out so makemessages finds each phrase.
    verbs = {
        "page_view": _("viewed"),
        "content_view": _("read"),
        "download": _("downloaded"),
        "share_open": _("opened your link"),
        "form_submit": _("submitted"),
        "email_open": _("opened the email"),
        "email_click": _("clicked in the email"),
        "event_register": _("registered for"),
        "event_attend": _("attended"),
        "webinar_watch": _("watched"),
        "wechat_message": _("sent a WeChat message"),
        "wechat_follow": _("followed the WeChat account"),
    }
    if activity_type in verbs:
        return str(verbs[activity_type])
    from apps.contacts.selectors.timeline import activity_label

    return activity_label(activity_type)


@dataclass(frozen=True)
class BehaviourLine:
    text: str
    count: int
    today: int
    last_at: dt.datetime


def recent_behaviour(
    *, user: User, lead: Lead, now: dt.datetime | None = None, days: int = BEHAVIOUR_DAYS
) -> list[BehaviourLine]:
    """The contact's last ``days`` of activity in plain words, one line per type and
    object ("viewed 价格 3× today"). One grouped query; sales' own follow-ups left out."""
    now = now or timezone.now()
    today_start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    # The object: its id where the producer set one, else the page's URL or title.
    target = Coalesce(
        NullIf(F("object_id"), Value("")),
        KeyTextTransform("url", "properties"),
        KeyTextTransform("title", "properties"),
        Value(""),
        output_field=TextField(),
    )
    rows = (
        Activity.objects.visible_to(user, "contacts.view")
        .filter(contact_id=lead.contact_id, occurred_at__gte=now - dt.timedelta(days=days))
        .exclude(type__startswith="sales.")
        .annotate(target=target)
        .values("type", "object_type", "target")
        .annotate(
            n=Count("pk"),
            today=Count("pk", filter=Q(occurred_at__gte=today_start)),
            last_at=Max("occurred_at"),
            title=Max(KeyTextTransform("title", "properties"), output_field=TextField()),
        )
        .order_by("-last_at")[:BEHAVIOUR_LINES]
    )
    lines = []
    for row in rows:
        title = row["title"] or (row["target"] if not str(row["target"]).isdigit() else "")
        what = _verb(row["type"])
        if title:
            what = f"{what} 《{title[:60]}》"
        if row["today"] and row["today"] == row["n"]:
            text = _("%(what)s %(n)d× today")
        elif row["today"]:
            text = _("%(what)s %(n)d× in 7 days (%(today)d today)")
        else:
            text = _("%(what)s %(n)d× in 7 days")
        lines.append(
            BehaviourLine(
                text=text % {"what": what, "n": row["n"], "today": row["today"]},
                count=row["n"],
                today=row["today"],
                last_at=row["last_at"],
            )
        )
    return lines


@dataclass
class ScoreSummary:
    total: Decimal
    temperature: str
    model_name: str
    reasons: list[tuple[str, Decimal]] = field(default_factory=list)


def lead_score(*, user: User, lead: Lead) -> ScoreSummary | None:
    """The contact's score under the lead's unit's active model, with its biggest reasons."""
    from apps.nurture.selectors import contact_scores
    from apps.nurture.services.scoring import score_explain

    rows = [
        r
        for r in contact_scores(user=user, contact=lead.contact)
        if r.score.model.unit_id == lead.unit_id
    ]
    if not rows:
        return None
    stored = rows[0].score
    summary = ScoreSummary(
        total=stored.total, temperature=stored.temperature, model_name=stored.model.name
    )
    explanation = score_explain(model=stored.model, contact=lead.contact)
    reasons: dict[str, Decimal] = {}
    for fit in explanation.fit_lines:
        reasons[fit.rule] = reasons.get(fit.rule, Decimal(0)) + fit.points
    for act in explanation.activity_lines:
        reasons[act.rule] = reasons.get(act.rule, Decimal(0)) + act.scored
    summary.reasons = sorted(reasons.items(), key=lambda r: -r[1])[:4]
    return summary


@dataclass
class Lead360:
    identities: list[Identity]
    history: list[LeadHistory]
    follow_ups: list[FollowUp]
    tags: list[ContactTag]
    unit_tags: list[Tag]


def lead_360(*, user: User, lead: Lead) -> Lead360:
    """The parts of the lead page that are lists (five queries, however long they are)."""
    shown = ("phone", "email", "wecom")  # the order they are listed in: call first
    identities = sorted(
        Identity.objects.dangerously_unscoped()
        .filter(contact_id=lead.contact_id, kind__in=shown)
        .order_by("id"),
        key=lambda i: shown.index(i.kind),
    )
    history = list(
        LeadHistory.objects.dangerously_unscoped()
        .filter(lead=lead, kind=HistoryKind.STAGE)
        .select_related("actor")
        .order_by("-at", "-id")[:HISTORY_SHOWN]
    )
    follow_ups = list(
        FollowUp.objects.dangerously_unscoped()
        .filter(lead=lead)
        .select_related("user")
        .order_by("-occurred_at", "-id")[:FOLLOW_UPS_SHOWN]
    )
    tags = list(
        ContactTag.objects.dangerously_unscoped()
        .filter(contact_id=lead.contact_id, tag__unit_id=lead.unit_id)
        .select_related("tag")
        .order_by("tag__name")
    )
    have = {t.tag_id for t in tags}
    unit_tags = [
        t
        for t in Tag.objects.visible_to(user, "contacts.edit")
        .filter(unit_id=lead.unit_id, kind=TagKind.MANUAL)
        .order_by("name")[:200]
        if t.pk not in have
    ]
    return Lead360(identities, history, follow_ups, tags, unit_tags)


def unit_tag_get(*, user: User, lead: Lead, pk: Any) -> Tag | None:
    if not str(pk).isdigit():
        return None
    return (
        Tag.objects.visible_to(user, "contacts.edit")
        .filter(unit_id=lead.unit_id, kind=TagKind.MANUAL, pk=int(pk))
        .first()
    )


# --- Opportunities ----------------------------------------------------------------------------


def my_opportunities(*, user: User, cursor: str | None = None, size: int = PAGE_SIZE) -> Page:
    """My deals: open ones first (newest first), then closed ones by when they closed."""
    qs = (
        Opportunity.objects.visible_to(user, SELL)
        .filter(owner_id=user.pk)
        .annotate(sort_key=Coalesce(F("closed_at"), Value(NEVER), output_field=DateTimeField()))
        .select_related("contact", "unit")
    )
    return _keyset(qs, cursor=cursor, size=size, descending=True)


def my_opportunity_get(*, user: User, pk: Any) -> Opportunity | None:
    if not str(pk).isdigit():
        return None
    qs = Opportunity.objects.visible_to(user, SELL).filter(pk=int(pk))
    if not user.is_superuser:
        qs = qs.filter(owner_id=user.pk)
    return qs.select_related("contact", "unit").first()
