"""Sales collaboration: leads and their trip MAL → customer, the people who work them, the
SLA clocks that hold those people to time, opportunities, alerts and the CRM link.

A **Lead** is one contact's trip through one unit's funnel (a lead on a group unit sits in
the group pool). At most one open lead per contact per unit. Every change is a
``LeadHistory`` row. Stage rules live in ``services/stages.py`` (one table), SLA clocks in
``services/sla.py``, routing in ``services/assignment.py``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.contacts.models import Campaign, Channel, Contact
from apps.core.models import BusinessUnit
from apps.core.scoping import ScopedQuerySet
from apps.nurture.models import Tier

User = settings.AUTH_USER_MODEL


class Stage(models.TextChoices):
    MAL = "mal", _("MAL · anonymous")
    MIL = "mil", _("MIL · identified")
    MQL = "mql", _("MQL · marketing-qualified")
    TQL = "tql", _("TQL · telemarketing-qualified")
    SAL = "sal", _("SAL · sales-accepted")
    SQL = "sql", _("SQL · sales-qualified")
    OPPORTUNITY = "opportunity", _("Opportunity")
    CUSTOMER = "customer", _("Customer")
    RECYCLED = "recycled", _("Recycled")
    DISQUALIFIED = "disqualified", _("Disqualified")


# A lead in one of these stages is closed: a new lead for the contact may open in the unit.
CLOSED_STAGES = frozenset({Stage.CUSTOMER, Stage.DISQUALIFIED})
# The funnel in order (recycled and disqualified sit outside it).
FUNNEL = (
    Stage.MAL,
    Stage.MIL,
    Stage.MQL,
    Stage.TQL,
    Stage.SAL,
    Stage.SQL,
    Stage.OPPORTUNITY,
    Stage.CUSTOMER,
)


class LeadTemperature(models.TextChoices):
    COLD = "cold", _("Cold")
    WARM = "warm", _("Warm")
    HOT = "hot", _("Hot")
    # Real need, wrong timing: kept warm for later (glossary).
    HIGH_VALUE = "high_value", _("High-value")


# Queue order: hot first. Lower sorts first.
TEMPERATURE_RANK = {"hot": 0, "high_value": 1, "warm": 2, "cold": 3}


class LeadSource(models.TextChoices):
    SCORING = "scoring", _("Score threshold")
    FORM = "form", _("Form")
    IMPORT = "import", _("Import")
    API = "api", _("API / CRM")
    MANUAL = "manual", _("Entered by hand")
    POOL = "pool", _("Group pool")


class Authority(models.TextChoices):
    UNKNOWN = "", _("Unknown")
    DECISION_MAKER = "decision_maker", _("Decision maker")
    INFLUENCER = "influencer", _("Influencer")
    USER = "user", _("User / evaluator")
    NONE = "none", _("No say")


class Timeline(models.TextChoices):
    UNKNOWN = "", _("Unknown")
    WITHIN_3M = "3m", _("Within 3 months")
    WITHIN_6M = "6m", _("3–6 months")
    WITHIN_12M = "12m", _("6–12 months")
    LATER = "later", _("Later than a year")


class SlaClock(models.TextChoices):
    NONE = "", _("No clock")
    FIRST_TOUCH = "first_touch", _("SDR first touch")
    ACCEPT = "accept", _("Sales accepts or rejects")
    SQL_DECISION = "sql_decision", _("SQL decision")
    FOLLOW_UP = "follow_up", _("Follow-up")


class CreditStatus(models.TextChoices):
    NONE = "", _("No SQL yet")
    PENDING = "pending", _("Pending (sales may still return it)")
    CREDITED = "credited", _("Credited")
    REVOKED = "revoked", _("Returned by sales: no credit")


# --- Policy -------------------------------------------------------------------------------


class DurationUnit(models.TextChoices):
    HOURS = "hours", _("hours (round the clock)")
    WORKING_HOURS = "working_hours", _("working hours")
    WORKING_DAYS = "working_days", _("working days")


BANT_FIELDS = ("budget", "authority", "need", "timeline")


def default_bant_required() -> list[str]:
    return ["authority", "need", "timeline"]


class SlaPolicy(models.Model):
    """A unit's hand-off rules (营销协同 SLA). Defaults from seed 003."""

    unit = models.OneToOneField(
        BusinessUnit,
        verbose_name=_("business unit"),
        on_delete=models.CASCADE,
        related_name="sla_policy",
    )
    work_start = models.TimeField(_("working day starts"), default=dt.time(9, 0))
    work_end = models.TimeField(_("working day ends"), default=dt.time(18, 0))
    first_touch_value = models.PositiveIntegerField(_("SDR first touch within"), default=4)
    first_touch_unit = models.CharField(
        max_length=15, choices=DurationUnit.choices, default=DurationUnit.WORKING_HOURS
    )
    accept_value = models.PositiveIntegerField(_("sales accepts or rejects within"), default=24)
    accept_unit = models.CharField(
        max_length=15, choices=DurationUnit.choices, default=DurationUnit.WORKING_HOURS
    )
    sql_value = models.PositiveIntegerField(_("SQL decision within"), default=10)
    sql_unit = models.CharField(
        max_length=15, choices=DurationUnit.choices, default=DurationUnit.WORKING_DAYS
    )
    follow_up_value = models.PositiveIntegerField(_("recycle without follow-up after"), default=48)
    follow_up_unit = models.CharField(
        max_length=15, choices=DurationUnit.choices, default=DurationUnit.HOURS
    )
    recycle_to_sdr = models.BooleanField(
        _("recycle back to the SDR"),
        default=False,
        help_text=_("Off: a recycled lead goes back to the pool for nurturing."),
    )
    warn_before_minutes = models.PositiveIntegerField(
        _("warn this many minutes before a breach"), default=120
    )
    penalty_misses = models.PositiveSmallIntegerField(
        _("missed SLAs in a month that cut next month's share"), default=2
    )
    penalty_share = models.PositiveSmallIntegerField(
        _("share of leads next month after too many misses (%)"),
        default=50,
        validators=[MaxValueValidator(100)],
    )
    sdr_credit_days = models.PositiveSmallIntegerField(
        _("SDR credited if sales does not return the lead within (days)"), default=14
    )
    bant_required = models.JSONField(
        _("BANT fields required to qualify"), default=default_bant_required, blank=True
    )
    use_tql = models.BooleanField(
        _("telemarketing stage (TQL)"),
        default=False,
        help_text=_("MQLs pass a call-centre check (TQL) before they go to sales."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")

    def __str__(self) -> str:
        return str(self.unit)


# --- Leads --------------------------------------------------------------------------------


class Opportunity(models.Model):
    class Stage(models.TextChoices):
        DISCOVERY = "discovery", _("Discovery")
        PROPOSAL = "proposal", _("Proposal")
        NEGOTIATION = "negotiation", _("Negotiation")
        WON = "won", _("Won")
        LOST = "lost", _("Lost")

    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.PROTECT, related_name="+"
    )
    name = models.CharField(_("name"), max_length=200)
    company_name = models.CharField(_("company"), max_length=200, blank=True)
    contact = models.ForeignKey(
        Contact,
        verbose_name=_("main contact"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    owner = models.ForeignKey(
        User,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    stage = models.CharField(_("stage"), max_length=15, choices=Stage.choices, default="discovery")
    amount = models.DecimalField(
        _("amount"),
        max_digits=14,
        decimal_places=2,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0))],
    )
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    expected_close = models.DateField(_("expected close"), null=True, blank=True)
    products = models.JSONField(_("products"), default=list, blank=True)
    lost_reason = models.CharField(_("lost reason"), max_length=300, blank=True)
    external_id = models.CharField(_("CRM id"), max_length=100, null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("opportunity")
        verbose_name_plural = _("opportunities")
        indexes = [
            models.Index(
                fields=["unit", "company_name"],
                name="opportunity_open_company",
                condition=Q(closed_at__isnull=True),
            ),
            models.Index(fields=["owner", "-id"], name="opportunity_owner"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["unit", "external_id"],
                name="opportunity_external_id",
                condition=Q(external_id__isnull=False),
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="opportunity_amount_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class OpportunityContact(models.Model):
    """Someone else from the account who turned up while the opportunity was open (a lead
    that attached to it instead of opening a duplicate)."""

    opportunity = models.ForeignKey(Opportunity, on_delete=models.CASCADE, related_name="people")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(_("added"), default=timezone.now)
    reason = models.CharField(_("why"), max_length=200, blank=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "opportunity__unit"

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["opportunity", "contact"], name="oppcontact_once")
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} → {self.opportunity_id}"


# Roles that see every lead of their units; a salesperson (role ``sales`` only) sees the
# leads they own or took part in.
SEES_ALL_LEADS = frozenset({"admin", "sdr", "sales_manager", "marketer", "viewer"})


class LeadQuerySet(ScopedQuerySet["Lead"]):
    def open(self) -> LeadQuerySet:
        return self.filter(is_open=True)

    def visible_to(self, user: Any, permission: str = "sales.view") -> LeadQuerySet:
        """Units by role and, for salespeople, only their own leads."""
        from apps.core.roles import roles_with
        from apps.core.scoping import unit_roles

        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self.all()
        allowed = roles_with(permission)
        everything: set[int] = set()
        own: set[int] = set()
        for unit_id, role, _direct in unit_roles(user):
            if role not in allowed:
                continue
            (everything if role in SEES_ALL_LEADS else own).add(unit_id)
        own -= everything
        if not everything and not own:
            return self.none()
        q = Q(unit_id__in=sorted(everything)) if everything else Q(pk__in=[])
        if own:
            q |= Q(unit_id__in=sorted(own)) & (Q(owner_id=user.pk) | Q(sdr_id=user.pk))
        return self.filter(q)


class Lead(models.Model):
    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.PROTECT, related_name="+"
    )
    contact = models.ForeignKey(
        Contact, verbose_name=_("contact"), on_delete=models.CASCADE, related_name="leads"
    )
    stage = models.CharField(_("stage"), max_length=15, choices=Stage.choices, default="mil")
    # Kept in step with ``stage`` by the services (not in CLOSED_STAGES); the unique
    # constraint and the queue indexes read it.
    is_open = models.BooleanField(default=True, editable=False)
    temperature = models.CharField(
        _("temperature"), max_length=12, choices=LeadTemperature.choices, default="cold"
    )
    score = models.DecimalField(_("score"), max_digits=10, decimal_places=2, default=Decimal(0))
    source = models.CharField(_("source"), max_length=10, choices=LeadSource.choices)
    source_channel = models.ForeignKey(
        Channel,
        verbose_name=_("source channel"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    source_campaign = models.ForeignKey(
        Campaign,
        verbose_name=_("source campaign"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Routing facts (copied from the contact when the lead opens; the SDR corrects them).
    tier = models.CharField(_("customer tier"), max_length=10, choices=Tier.choices, blank=True)
    company_size = models.PositiveIntegerField(_("employees"), null=True, blank=True)
    product_interest = models.CharField(_("product interest"), max_length=100, blank=True)
    # BANT
    budget = models.DecimalField(
        _("budget (CNY)"),
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
    )
    authority = models.CharField(
        _("authority"), max_length=20, choices=Authority.choices, blank=True
    )
    need = models.TextField(_("need"), blank=True, max_length=2000)
    timeline = models.CharField(_("timing"), max_length=10, choices=Timeline.choices, blank=True)
    # People
    sdr = models.ForeignKey(
        User,
        verbose_name=_("SDR"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    owner = models.ForeignKey(
        User,
        verbose_name=_("sales owner"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    opportunity = models.ForeignKey(
        Opportunity,
        verbose_name=_("opportunity"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leads",
    )
    # Dedup (客户查重): a lead that may duplicate a customer waits for a person to look.
    needs_review = models.BooleanField(_("needs review"), default=False)
    review_reason = models.CharField(_("review reason"), max_length=300, blank=True)
    # Why it is disqualified / recycled / declined (the history keeps every reason).
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    # SLA: the one clock running now, when it is due, whether the warning went out.
    sla_clock = models.CharField(
        _("SLA clock"), max_length=15, choices=SlaClock.choices, blank=True
    )
    sla_due_at = models.DateTimeField(_("SLA due"), null=True, blank=True)
    # When the "about to breach" alert goes out; cleared once it has.
    sla_warn_at = models.DateTimeField(null=True, blank=True, editable=False)
    first_touched_at = models.DateTimeField(_("first touch"), null=True, blank=True)
    last_follow_up_at = models.DateTimeField(_("last follow-up"), null=True, blank=True)
    next_step_at = models.DateTimeField(_("next step"), null=True, blank=True)
    handed_at = models.DateTimeField(_("handed to sales"), null=True, blank=True)
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    sql_at = models.DateTimeField(_("became SQL"), null=True, blank=True)
    # SDR credit for an SQL (seed 003: only if sales does not return it within 2 weeks).
    credit_sdr = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    credit_status = models.CharField(
        _("SDR credit"), max_length=10, choices=CreditStatus.choices, blank=True
    )
    credit_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    external_id = models.CharField(_("CRM id"), max_length=100, null=True, blank=True)
    stage_changed_at = models.DateTimeField(_("stage since"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = LeadQuerySet.as_manager()

    class Meta:
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
        indexes = [
            # The SLA sweep: due clocks of open leads, oldest first.
            models.Index(
                fields=["sla_due_at"], name="lead_sla_due", condition=Q(sla_due_at__isnull=False)
            ),
            models.Index(
                fields=["sla_warn_at"], name="lead_sla_warn", condition=Q(sla_warn_at__isnull=False)
            ),
            # Queues: per SDR and per sales owner.
            models.Index(fields=["sdr", "is_open", "id"], name="lead_sdr_queue"),
            models.Index(fields=["owner", "is_open", "id"], name="lead_owner_queue"),
            models.Index(fields=["unit", "stage", "id"], name="lead_unit_stage"),
            models.Index(
                fields=["credit_due_at"],
                name="lead_credit_due",
                condition=Q(credit_status="pending"),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "unit"], name="lead_one_open_per_unit", condition=Q(is_open=True)
            ),
            models.UniqueConstraint(
                fields=["unit", "external_id"],
                name="lead_external_id",
                condition=Q(external_id__isnull=False),
            ),
            models.CheckConstraint(
                condition=Q(budget__isnull=True) | Q(budget__gte=0), name="lead_budget_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact} · {self.get_stage_display()}"

    def bant(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "authority": self.authority,
            "need": self.need,
            "timeline": self.timeline,
        }


class HistoryKind(models.TextChoices):
    STAGE = "stage", _("Stage")
    SDR = "sdr", _("SDR")
    OWNER = "owner", _("Sales owner")
    UNIT = "unit", _("Business unit")
    SLA = "sla", _("SLA")
    CREDIT = "credit", _("SDR credit")
    REVIEW = "review", _("Review")


class LeadHistory(models.Model):
    """One change to a lead: from, to, who, when, why. Stage changes are ``kind=stage``."""

    # Indexed by leadhistory_lead / leadhistory_unit_kind (their first column): no
    # separate foreign-key indexes, which every SLA sweep would also have to write.
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="history", db_index=False)
    unit = models.ForeignKey(
        BusinessUnit, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    kind = models.CharField(_("what"), max_length=10, choices=HistoryKind.choices)
    from_value = models.CharField(_("from"), max_length=100, blank=True)
    to_value = models.CharField(_("to"), max_length=100, blank=True)
    # Not indexed: history is read by lead and unit; removing a user (rare) may scan it.
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # "system", "SLA", "CRM" … when no person acted.
    actor_label = models.CharField(_("by"), max_length=150)
    reason = models.CharField(_("why"), max_length=500, blank=True)
    at = models.DateTimeField(_("when"), default=timezone.now)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("lead history")
        verbose_name_plural = _("lead history")
        indexes = [
            models.Index(fields=["lead", "-at"], name="leadhistory_lead"),
            models.Index(fields=["unit", "kind", "at"], name="leadhistory_unit_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.from_value} → {self.to_value}"


class FollowUpKind(models.TextChoices):
    CALL = "call", _("Call")
    VISIT = "visit", _("Visit")
    WECOM = "wecom", _("WeCom chat")
    MEETING = "meeting", _("Meeting")
    EMAIL = "email", _("Email")
    NOTE = "note", _("Note")


class FollowUp(models.Model):
    """A call, visit, chat, meeting or note logged by an SDR or salesperson."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="follow_ups")
    unit = models.ForeignKey(BusinessUnit, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("kind"), max_length=10, choices=FollowUpKind.choices)
    note = models.TextField(_("note"), blank=True, max_length=4000)
    next_step = models.CharField(_("next step"), max_length=300, blank=True)
    next_step_at = models.DateTimeField(_("next step on"), null=True, blank=True)
    occurred_at = models.DateTimeField(_("when"), default=timezone.now)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        indexes = [
            models.Index(fields=["lead", "-occurred_at"], name="followup_lead"),
            models.Index(fields=["user", "occurred_at"], name="followup_user"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.occurred_at:%Y-%m-%d}"


class SlaMiss(models.Model):
    """A clock that ran out: whose it was, which, when. Two in a month cut next month's share."""

    # lead and user are the first columns of slamiss_once / slamiss_user_month.
    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="sla_misses", db_index=False
    )
    unit = models.ForeignKey(BusinessUnit, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    clock = models.CharField(_("clock"), max_length=15, choices=SlaClock.choices)
    due_at = models.DateTimeField(_("was due"))
    missed_at = models.DateTimeField(_("recorded"), default=timezone.now)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("missed SLA")
        verbose_name_plural = _("missed SLAs")
        indexes = [models.Index(fields=["user", "due_at"], name="slamiss_user_month")]
        constraints = [
            # One miss per clock run: a second sweep of the same lead records nothing.
            models.UniqueConstraint(fields=["lead", "clock", "due_at"], name="slamiss_once")
        ]

    def __str__(self) -> str:
        return f"{self.clock} · {self.due_at:%Y-%m-%d %H:%M}"


# --- Routing ------------------------------------------------------------------------------


class AssignMethod(models.TextChoices):
    ROUND_ROBIN = "round_robin", _("Round robin (weighted by share)")
    LEAST_LOADED = "least_loaded", _("Least loaded")


class SalesTeam(models.Model):
    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(_("name"), max_length=100)
    method = models.CharField(
        _("how leads are shared"),
        max_length=15,
        choices=AssignMethod.choices,
        default="round_robin",
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("sales team")
        verbose_name_plural = _("sales teams")
        constraints = [models.UniqueConstraint(fields=["unit", "name"], name="salesteam_name")]

    def __str__(self) -> str:
        return self.name


class TeamMember(models.Model):
    team = models.ForeignKey(SalesTeam, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        User, verbose_name=_("person"), on_delete=models.CASCADE, related_name="+"
    )
    capacity = models.PositiveIntegerField(
        _("capacity (open leads)"),
        null=True,
        blank=True,
        help_text=_("Empty: no limit."),
    )
    is_active = models.BooleanField(_("takes leads"), default=True)
    # Marked by sales ops by hand (rule 5), on top of the automatic cut after missed SLAs.
    penalised = models.BooleanField(_("penalised"), default=False)

    objects = ScopedQuerySet.as_manager()
    scope_field = "team__unit"

    class Meta:
        verbose_name = _("team member")
        verbose_name_plural = _("team members")
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="teammember_once")]

    def __str__(self) -> str:
        return f"{self.team_id}: {self.user_id}"


class AssignmentRule(models.Model):
    """If a lead matches every condition set here, it goes to ``user`` or ``team``.

    ``conditions``: ``{"regions": [...], "industries": [...], "tiers": [...],
    "products": [...], "size_min": int, "size_max": int, "score_min": n, "score_max": n}``;
    a missing key matches everything.
    """

    class Role(models.TextChoices):
        SDR = "sdr", _("SDR (qualifies)")
        SALES = "sales", _("Sales (accepts MQLs)")

    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(_("name"), max_length=100)
    role = models.CharField(_("assigns"), max_length=10, choices=Role.choices, default="sales")
    position = models.PositiveSmallIntegerField(_("order"), default=0)
    conditions = models.JSONField(_("conditions"), default=dict, blank=True)
    user = models.ForeignKey(
        User,
        verbose_name=_("person"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    team = models.ForeignKey(
        SalesTeam,
        verbose_name=_("team"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="rules",
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("assignment rule")
        verbose_name_plural = _("assignment rules")
        ordering = ["unit", "role", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(team__isnull=True))
                | (Q(user__isnull=True) & Q(team__isnull=False)),
                name="assignmentrule_one_target",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Assignment(models.Model):
    """Who got which lead from which rule: round robin counts these per month."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="+")
    unit = models.ForeignKey(BusinessUnit, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=10)
    rule = models.ForeignKey(
        AssignmentRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey(
        SalesTeam, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["team", "user", "at"], name="assignment_team_month")]

    def __str__(self) -> str:
        return f"{self.lead_id} → {self.user_id}"


# --- Alerts -------------------------------------------------------------------------------


class AlertKind(models.TextChoices):
    LEAD_ASSIGNED = "lead_assigned", _("A lead is assigned to me")
    SLA_WARNING = "sla_warning", _("An SLA is about to run out")
    SLA_BREACHED = "sla_breached", _("An SLA ran out")
    CONTACT_ACTIVE = "contact_active", _("A contact of mine is active now")
    LEAD_RECYCLED = "lead_recycled", _("A lead of mine was recycled")


class AlertChannel(models.TextChoices):
    IN_APP = "in_app", _("In the app (bell)")
    EMAIL = "email", _("Email")
    WECOM = "wecom", _("WeCom robot")


def default_alert_channels() -> dict[str, list[str]]:
    return {kind: [AlertChannel.IN_APP] for kind in AlertKind.values}


class AlertSettings(models.Model):
    """Which alerts one person gets, where. No row: every alert in the app only."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="alert_settings")
    channels = models.JSONField(default=default_alert_channels)
    wecom_webhook_url = models.URLField(_("WeCom robot webhook"), blank=True, max_length=500)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("alert settings")
        verbose_name_plural = _("alert settings")

    def __str__(self) -> str:
        return str(self.user_id)


class AlertDelivery(models.Model):
    """An email or WeCom message for one notification; retried until sent or given up."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=10, choices=AlertChannel.choices)
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=10, default="pending")  # pending / sent / failed
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="alertdelivery_due",
                condition=Q(status="pending"),
            )
        ]

    def __str__(self) -> str:
        return self.title


# --- CRM link -----------------------------------------------------------------------------


class WebhookEndpoint(models.Model):
    """Where lead stage changes are posted, signed with ``secret`` (HMAC-SHA256)."""

    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(_("name"), max_length=100)
    url = models.URLField(_("URL"), max_length=500)
    secret = models.CharField(_("signing secret"), max_length=100)
    events = models.JSONField(_("events"), default=list, blank=True)  # empty: all
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("webhook")
        verbose_name_plural = _("webhooks")

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Gave up")

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    unit = models.ForeignKey(BusinessUnit, on_delete=models.CASCADE, related_name="+")
    event_id = models.UUIDField(_("event id"))
    event = models.CharField(_("event"), max_length=40)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default="pending")
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhookdelivery_due",
                condition=Q(status="pending"),
            ),
            models.Index(fields=["endpoint", "-id"], name="webhookdelivery_log"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_id"], name="webhookdelivery_once")
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.event_id}"


class CrmInbound(models.Model):
    """A status or opportunity update from the CRM, stored as it arrived, processed after.

    ``event_id`` is the CRM's id for the message (or the ``Idempotency-Key``): a replay
    of the same id is answered from here and changes nothing.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        DONE = "done", _("Applied")
        REJECTED = "rejected", _("Rejected")

    unit = models.ForeignKey(BusinessUnit, on_delete=models.CASCADE, related_name="+")
    token_id = models.BigIntegerField(null=True, blank=True)
    event_id = models.CharField(max_length=100)
    kind = models.CharField(max_length=20)  # lead_status / opportunity
    payload = models.JSONField()
    body_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default="pending")
    result = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(
                fields=["received_at"], name="crminbound_pending", condition=Q(status="pending")
            )
        ]
        constraints = [models.UniqueConstraint(fields=["unit", "event_id"], name="crminbound_once")]

    def __str__(self) -> str:
        return f"{self.kind} {self.event_id}"


class IdempotencyRecord(models.Model):
    """The answer to a POST sent with an ``Idempotency-Key``: a retry gets the same answer,
    a different body under the same key gets 422."""

    key = models.CharField(max_length=200)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=300)
    body_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_once")]

    def __str__(self) -> str:
        return self.key
