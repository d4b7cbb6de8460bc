"""The customer-data core: one Contact per person, every key we know for them as an
Identity, what they did as Activity, plus tags, consent and custom fields.

Contacts belong to a *group* (one person, one profile across its business units);
``ContactUnit`` rows say which units know the person, and that is what scopes who may see
them. Activities, tags, custom fields, channels and campaigns belong to a unit.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.models import BusinessUnit, User
from apps.core.scoping import ScopedQuerySet


class IdentityKind(models.TextChoices):
    EMAIL = "email", _("Email")
    PHONE = "phone", _("Mobile phone")
    WECHAT_OPENID = "wechat_openid", _("WeChat openid")
    WECHAT_UNIONID = "wechat_unionid", _("WeChat unionid")
    WECOM = "wecom", _("WeCom external user id")
    DOUYIN = "douyin", _("Douyin id")
    CRM = "crm", _("CRM id")
    ANONYMOUS = "anonymous", _("Anonymous visitor id")


class ContactStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    MERGED = "merged", _("Merged into another contact")
    ERASED = "erased", _("Erased at the person's request")


# Fields identity resolution fills from incoming attributes ("newest non-empty wins").
STANDARD_FIELDS = (
    "name",
    "title",
    "department",
    "company_name",
    "province",
    "city",
    "industry",
)
PII_FIELDS = ("name",)


class ContactQuerySet(ScopedQuerySet["Contact"]):
    def scope_q(self, unit_ids: Any) -> Q:
        # A contact is visible to whoever sees one of the units that know the person.
        return Q(id__in=ContactUnit.objects.filter(unit_id__in=list(unit_ids)).values("contact_id"))

    def active(self) -> ContactQuerySet:
        return self.filter(status=ContactStatus.ACTIVE)


class Contact(models.Model):
    group = models.ForeignKey(
        BusinessUnit, verbose_name=_("group"), on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        _("status"), max_length=10, choices=ContactStatus.choices, default=ContactStatus.ACTIVE
    )
    merged_into = models.ForeignKey(
        "self",
        verbose_name=_("merged into"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    name = models.CharField(_("name"), max_length=100, blank=True)
    title = models.CharField(_("job title"), max_length=100, blank=True)
    department = models.CharField(_("department"), max_length=100, blank=True)
    company_name = models.CharField(_("company"), max_length=200, blank=True)
    province = models.CharField(_("province"), max_length=50, blank=True)
    city = models.CharField(_("city"), max_length=50, blank=True)
    industry = models.CharField(_("industry"), max_length=100, blank=True)
    source_channel = models.ForeignKey(
        "contacts.Channel",
        verbose_name=_("source channel"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Where the person first came from, and what brought them back most recently
    # (attribution reads these; the collector, forms and share links keep them current).
    first_touch_channel = models.ForeignKey(
        "contacts.Channel",
        verbose_name=_("first touch channel"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    first_touch_campaign = models.ForeignKey(
        "contacts.Campaign",
        verbose_name=_("first touch campaign"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    first_touch_at = models.DateTimeField(_("first touch"), null=True, blank=True)
    latest_touch_channel = models.ForeignKey(
        "contacts.Channel",
        verbose_name=_("latest touch channel"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    latest_touch_campaign = models.ForeignKey(
        "contacts.Campaign",
        verbose_name=_("latest touch campaign"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    latest_touch_at = models.DateTimeField(_("latest touch"), null=True, blank=True)
    # Custom field values keyed by CustomField id (as a string); GIN-indexed for @> filters.
    custom = models.JSONField(_("custom fields"), default=dict, blank=True)
    # field -> {"source": "import", "at": iso time}: what the conflict rule compares.
    field_sources = models.JSONField(default=dict, blank=True, editable=False)
    first_seen_at = models.DateTimeField(_("first seen"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen"), default=timezone.now)
    pii_purged_at = models.DateTimeField(_("PII purged"), null=True, blank=True)
    # Set when a deal is won (sales marks it; contacts only stores it). Feeds ABM.
    customer_since = models.DateTimeField(_("customer since"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ContactQuerySet.as_manager()
    scope_field = "id"

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        indexes = [
            models.Index(fields=["group", "status", "-id"], name="contact_group_list"),
            models.Index(fields=["group", "-last_seen_at"], name="contact_last_seen"),
            GinIndex(fields=["custom"], name="contact_custom", opclasses=["jsonb_path_ops"]),
            models.Index(fields=["company_name"], name="contact_company"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="merged", merged_into__isnull=False)
                | ~Q(status="merged") & Q(merged_into__isnull=True),
                name="contact_merged_has_target",
            )
        ]

    def __str__(self) -> str:
        return self.name or f"#{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status == ContactStatus.ACTIVE


class ContactUnit(models.Model):
    """A business unit that knows this person (from its forms, imports, events…)."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="units")
    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.CASCADE, related_name="+"
    )
    first_seen_at = models.DateTimeField(_("first seen"), default=timezone.now)
    source = models.CharField(_("source"), max_length=30, blank=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("contact's business unit")
        verbose_name_plural = _("contacts' business units")
        constraints = [
            models.UniqueConstraint(fields=["contact", "unit"], name="contactunit_once"),
        ]
        indexes = [models.Index(fields=["unit", "-contact"], name="contactunit_unit_contact")]

    def __str__(self) -> str:
        return f"{self.contact_id} @ {self.unit_id}"


class ContactOwnedQuerySet(ScopedQuerySet[Any]):
    """Rows that belong to a contact are visible with the contact (``contact_field``)."""

    def scope_q(self, unit_ids: Any) -> Q:
        field = getattr(self.model, "contact_field", "contact")
        known = ContactUnit.objects.filter(unit_id__in=list(unit_ids)).values("contact_id")
        return Q(**{f"{field}_id__in": known})


class Identity(models.Model):
    """One key for one person. ``value`` is normalised (see contacts.identity_keys)."""

    group = models.ForeignKey(BusinessUnit, on_delete=models.PROTECT, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(_("kind"), max_length=20, choices=IdentityKind.choices)
    # The namespace a key is unique in: the official-account app id for an openid,
    # empty for keys that are global (email, phone, unionid…).
    scope = models.CharField(_("scope"), max_length=64, blank=True, default="")
    value = models.CharField(_("value"), max_length=254)
    source = models.CharField(_("source"), max_length=30, blank=True)
    created_at = models.DateTimeField(_("added"), default=timezone.now, editable=False)

    objects = ContactOwnedQuerySet.as_manager()

    class Meta:
        verbose_name = _("identity")
        verbose_name_plural = _("identities")
        constraints = [
            models.UniqueConstraint(
                fields=["group", "kind", "scope", "value"], name="identity_unique_key"
            )
        ]
        indexes = [models.Index(fields=["contact", "kind"], name="identity_contact")]

    def __str__(self) -> str:
        scope = f"[{self.scope}]" if self.scope else ""
        return f"{self.kind}{scope}:{self.value}"


class ErasedIdentity(models.Model):
    """A tombstone: the hash of a key whose owner asked to be erased, so that a later
    import or form does not bring the person back."""

    group = models.ForeignKey(BusinessUnit, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20, choices=IdentityKind.choices)
    scope = models.CharField(max_length=64, blank=True, default="")
    value_hash = models.CharField(max_length=64)
    erased_at = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()
    scope_field = "group"

    class Meta:
        verbose_name = _("erased identity")
        verbose_name_plural = _("erased identities")
        constraints = [
            models.UniqueConstraint(
                fields=["group", "kind", "scope", "value_hash"], name="erased_identity_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value_hash[:12]}…"


class ContactMerge(models.Model):
    """A merge of ``dropped`` into ``kept``, with everything needed to undo it exactly."""

    group = models.ForeignKey(BusinessUnit, on_delete=models.PROTECT, related_name="+")
    kept = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="merges_kept")
    dropped = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="merges_dropped")
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    # {"kept_fields": {...}, "dropped_fields": {...}, "moved": {"identity": [ids], …},
    #  "deleted": {"contact_tag": [{row}], …}}
    snapshot = models.JSONField(default=dict)
    actor_label = models.CharField(_("by"), max_length=150)
    created_at = models.DateTimeField(_("merged"), default=timezone.now)
    undone_at = models.DateTimeField(_("undone"), null=True, blank=True)
    undone_by = models.CharField(_("undone by"), max_length=150, blank=True)

    objects = ContactOwnedQuerySet.as_manager()
    contact_field = "kept"

    class Meta:
        verbose_name = _("contact merge")
        verbose_name_plural = _("contact merges")
        indexes = [
            models.Index(fields=["kept", "-id"], name="merge_kept"),
            models.Index(fields=["dropped", "-id"], name="merge_dropped"),
        ]

    def __str__(self) -> str:
        return f"#{self.dropped_id} → #{self.kept_id}"


class MergeMovedActivities(models.Model):
    """Activity ids a merge moved, in chunks (a person can have many)."""

    merge = models.ForeignKey(ContactMerge, on_delete=models.CASCADE, related_name="+")
    activity_ids = models.JSONField()

    class Meta:
        verbose_name = _("activities moved by a merge")
        verbose_name_plural = _("activities moved by merges")

    def __str__(self) -> str:
        return f"merge #{self.merge_id}: {len(self.activity_ids)} activities"


# --- Channels and campaigns ----------------------------------------------------------------


class ChannelKind(models.TextChoices):
    SEM = "sem", _("Search ads (SEM)")
    SEO = "seo", _("Organic search (SEO)")
    MEDIA = "media", _("Vertical media")
    SOCIAL = "social", _("Social")
    WECHAT = "wechat", _("WeChat")
    DOUYIN = "douyin", _("Douyin")
    EVENT = "event", _("Event")
    CONTENT = "content", _("Content")
    EMAIL = "email", _("Email")
    REFERRAL = "referral", _("Referral")
    SALES = "sales", _("Sales self-sourced")
    PARTNER = "partner", _("Partner")
    DIRECT = "direct", _("Direct")
    OTHER = "other", _("Other")


class Channel(models.Model):
    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.CASCADE, related_name="+"
    )
    code = models.SlugField(_("code"), max_length=50, help_text=_("utm_source value, e.g. baidu"))
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=20, choices=ChannelKind.choices)
    is_active = models.BooleanField(_("active"), default=True)
    # Source quality (线索来源渠道质量评分): how this channel's past leads converted, 0–100,
    # smoothed towards the unit's average. Computed nightly by sales; empty until then.
    quality = models.DecimalField(
        _("lead quality"), max_digits=5, decimal_places=2, null=True, blank=True, editable=False
    )
    quality_leads = models.PositiveIntegerField(_("leads rated"), default=0, editable=False)
    quality_detail = models.JSONField(default=dict, blank=True, editable=False)
    quality_computed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("channel")
        verbose_name_plural = _("channels")
        constraints = [models.UniqueConstraint(fields=["unit", "code"], name="channel_code")]

    def __str__(self) -> str:
        return self.name


class Campaign(models.Model):
    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.CASCADE, related_name="+"
    )
    channel = models.ForeignKey(
        Channel, verbose_name=_("channel"), null=True, blank=True, on_delete=models.SET_NULL
    )
    code = models.SlugField(_("code"), max_length=80, help_text=_("utm_campaign value"))
    name = models.CharField(_("name"), max_length=200)
    starts_on = models.DateField(_("starts"), null=True, blank=True)
    ends_on = models.DateField(_("ends"), null=True, blank=True)
    cost = models.DecimalField(_("cost"), max_digits=14, decimal_places=2, default=0)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        constraints = [
            models.UniqueConstraint(fields=["unit", "code"], name="campaign_code"),
            models.CheckConstraint(condition=Q(cost__gte=0), name="campaign_cost_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name


# --- Activity ------------------------------------------------------------------------------


class ActivityQuerySet(ScopedQuerySet["Activity"]):
    pass


class Activity(models.Model):
    """One thing a person did, or we did to them. Append-only; the largest table."""

    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.PROTECT, related_name="+"
    )
    contact = models.ForeignKey(
        Contact,
        verbose_name=_("contact"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    anonymous_id = models.CharField(_("anonymous id"), max_length=64, blank=True)
    type = models.CharField(_("type"), max_length=40)
    occurred_at = models.DateTimeField(_("occurred"))
    channel = models.ForeignKey(
        Channel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    object_type = models.CharField(_("object type"), max_length=40, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    # Producers that may deliver twice (collector batches, webhooks) set this; a second
    # delivery is then ignored by the unique index.
    dedupe_key = models.CharField(max_length=100, null=True, blank=True)
    recorded_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = ActivityQuerySet.as_manager()

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        indexes = [
            # "what did this contact do", newest first, keyset-paged.
            models.Index(fields=["contact", "-occurred_at", "-id"], name="activity_timeline"),
            # "who did X in a time window".
            models.Index(fields=["type", "occurred_at"], name="activity_type_time"),
            models.Index(
                fields=["anonymous_id", "occurred_at"],
                name="activity_anonymous",
                condition=~Q(anonymous_id=""),
            ),
            # Per channel / campaign performance over a period (console, attribution).
            models.Index(
                fields=["channel", "occurred_at"],
                name="activity_channel_time",
                condition=Q(channel__isnull=False),
            ),
            models.Index(
                fields=["campaign", "occurred_at"],
                name="activity_campaign_time",
                condition=Q(campaign__isnull=False),
            ),
            # "what happened to this form / page / asset": per-item performance.
            models.Index(
                fields=["object_type", "object_id", "occurred_at"],
                name="activity_object",
                condition=~Q(object_type=""),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"],
                name="activity_dedupe",
                condition=Q(dedupe_key__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} @ {self.occurred_at:%Y-%m-%d %H:%M}"


# --- Custom fields -------------------------------------------------------------------------


class CustomFieldType(models.TextChoices):
    TEXT = "text", _("Text")
    NUMBER = "number", _("Number")
    DATE = "date", _("Date")
    CHOICE = "choice", _("Single choice")
    MULTI_CHOICE = "multi_choice", _("Multiple choice")


class CustomField(models.Model):
    """A field a unit adds to contacts, e.g. 客户类型 with this unit's own options."""

    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.CASCADE, related_name="+"
    )
    key = models.SlugField(_("key"), max_length=50)
    label = models.CharField(_("label"), max_length=100)
    type = models.CharField(_("type"), max_length=20, choices=CustomFieldType.choices)
    # [{"value": "ka", "label": "大客户"}, …] for choice fields
    options = models.JSONField(_("options"), default=list, blank=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("custom field")
        verbose_name_plural = _("custom fields")
        ordering = ["unit_id", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["unit", "key"], name="customfield_key")]

    def __str__(self) -> str:
        return self.label

    @property
    def storage_key(self) -> str:
        return str(self.pk)

    def option_values(self) -> set[str]:
        return {str(o.get("value")) for o in self.options if isinstance(o, dict)}


# --- Tags ----------------------------------------------------------------------------------


class TagGroup(models.Model):
    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(_("name"), max_length=60)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("tag group")
        verbose_name_plural = _("tag groups")
        constraints = [models.UniqueConstraint(fields=["unit", "name"], name="taggroup_name")]

    def __str__(self) -> str:
        return self.name


class TagKind(models.TextChoices):
    MANUAL = "manual", _("Manual")
    RULE = "rule", _("Rule")


class Tag(models.Model):
    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.CASCADE, related_name="+"
    )
    group = models.ForeignKey(
        TagGroup, verbose_name=_("tag group"), null=True, blank=True, on_delete=models.SET_NULL
    )
    name = models.CharField(_("name"), max_length=60)
    kind = models.CharField(_("kind"), max_length=10, choices=TagKind.choices, default="manual")
    # For rule tags: the condition (see contacts.tag_rules) contacts must meet to carry it.
    rule = models.JSONField(_("rule"), null=True, blank=True)
    rule_applied_at = models.DateTimeField(_("rule last applied"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        constraints = [
            models.UniqueConstraint(fields=["unit", "name"], name="tag_name"),
            models.CheckConstraint(
                condition=Q(kind="manual") | Q(rule__isnull=False), name="tag_rule_has_condition"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ContactTag(models.Model):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(_("source"), max_length=20, default="manual")
    added_by = models.CharField(_("added by"), max_length=150, blank=True)
    added_at = models.DateTimeField(_("added"), default=timezone.now)

    objects = ScopedQuerySet.as_manager()
    scope_field = "tag__unit"

    class Meta:
        verbose_name = _("contact tag")
        verbose_name_plural = _("contact tags")
        constraints = [models.UniqueConstraint(fields=["contact", "tag"], name="contacttag_once")]
        indexes = [models.Index(fields=["tag", "contact"], name="contacttag_tag")]

    def __str__(self) -> str:
        return f"{self.contact_id}:{self.tag_id}"


class TagHistory(models.Model):
    """Who or what put a tag on, or took it off."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(_("action"), max_length=10)  # added / removed
    source = models.CharField(_("source"), max_length=20)
    actor_label = models.CharField(_("by"), max_length=150)
    at = models.DateTimeField(_("time"), default=timezone.now)

    objects = ScopedQuerySet.as_manager()
    scope_field = "tag__unit"

    class Meta:
        verbose_name = _("tag history")
        verbose_name_plural = _("tag history")
        indexes = [models.Index(fields=["contact", "-at"], name="taghistory_contact")]

    def __str__(self) -> str:
        return f"{self.action} {self.tag_id} on {self.contact_id}"


# --- Consent -------------------------------------------------------------------------------


class ConsentChannel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    WECHAT = "wechat", _("WeChat")
    PHONE = "phone", _("Phone")


class ConsentPurpose(models.TextChoices):
    MARKETING = "marketing", _("Marketing")


class ConsentBasis(models.TextChoices):
    CONSENT = "consent", _("Consent given")
    CONTRACT = "contract", _("Existing customer contract")
    LEGITIMATE = "legitimate", _("Business contact (legitimate interest)")


class ConsentEvent(models.Model):
    """Append-only history of consent given and withdrawn, with its proof."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consent_events")
    unit = models.ForeignKey(BusinessUnit, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(_("channel"), max_length=10, choices=ConsentChannel.choices)
    purpose = models.CharField(
        _("purpose"), max_length=20, choices=ConsentPurpose.choices, default="marketing"
    )
    granted = models.BooleanField(_("granted"))
    basis = models.CharField(_("basis"), max_length=20, choices=ConsentBasis.choices, blank=True)
    source = models.CharField(_("source"), max_length=30)
    wording_version = models.CharField(_("wording version"), max_length=40, blank=True)
    proof = models.JSONField(_("proof"), default=dict, blank=True)  # ip, user_agent, form id…
    occurred_at = models.DateTimeField(_("time"), default=timezone.now)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("consent event")
        verbose_name_plural = _("consent events")
        indexes = [models.Index(fields=["contact", "channel", "-occurred_at"], name="consent_ev")]

    def __str__(self) -> str:
        return f"{self.channel} {'+' if self.granted else '-'} {self.contact_id}"


class ConsentState(models.Model):
    """The current answer per contact, channel and purpose: the newest event wins.

    Derived from ConsentEvent by the consent service; what sending and segments read.
    """

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consents")
    channel = models.CharField(_("channel"), max_length=10, choices=ConsentChannel.choices)
    purpose = models.CharField(_("purpose"), max_length=20, choices=ConsentPurpose.choices)
    granted = models.BooleanField(_("granted"))
    since = models.DateTimeField(_("since"))

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "channel", "purpose"], name="consentstate_once"
            )
        ]
        indexes = [models.Index(fields=["channel", "purpose", "granted"], name="consent_lookup")]

    def __str__(self) -> str:
        return f"{self.channel}/{self.purpose}={self.granted}"


# --- Import and export jobs ----------------------------------------------------------------


class JobStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ContactImport(models.Model):
    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/")
    original_name = models.CharField(_("file name"), max_length=200)
    file_type = models.CharField(max_length=10)  # csv / xlsx
    encoding = models.CharField(max_length=20, blank=True)
    mapping = models.JSONField(_("column mapping"), default=dict, blank=True)
    tag_ids = models.JSONField(default=list, blank=True)
    consent = models.JSONField(default=dict, blank=True)  # {"basis": …, "channels": [...]}
    # "warm" / "hot": every imported contact gets a lead in the unit (an event's attendee
    # list, a purchased list for the SDRs); empty: contacts only.
    opens_lead = models.CharField(_("opens leads"), max_length=10, blank=True)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default="pending")
    total_rows = models.PositiveIntegerField(null=True, blank=True)
    processed_rows = models.PositiveIntegerField(default=0)
    imported_rows = models.PositiveIntegerField(default=0)
    error_rows = models.PositiveIntegerField(default=0)
    created_contacts = models.PositiveIntegerField(default=0)
    matched_contacts = models.PositiveIntegerField(default=0)
    error_file = models.FileField(upload_to="imports/errors/%Y/%m/", blank=True)
    failure = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the job was queued or last reported progress: the jobs sweeper re-queues a
    # pending job the broker lost and fails a running one whose worker went away.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("contact import")
        verbose_name_plural = _("contact imports")

    def __str__(self) -> str:
        return self.original_name


class ImportMapping(models.Model):
    """The column mapping a unit used last, offered again for the next file."""

    unit = models.ForeignKey(BusinessUnit, on_delete=models.CASCADE, related_name="+")
    header_signature = models.CharField(max_length=64)
    mapping = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("import mapping")
        verbose_name_plural = _("import mappings")
        constraints = [
            models.UniqueConstraint(fields=["unit", "header_signature"], name="importmapping_once")
        ]

    def __str__(self) -> str:
        return f"{self.unit_id}:{self.header_signature[:8]}"


class ContactExport(models.Model):
    unit = models.ForeignKey(
        BusinessUnit, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    file_type = models.CharField(max_length=10)
    filters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default="pending")
    total_rows = models.PositiveIntegerField(null=True, blank=True)
    processed_rows = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to="exports/%Y/%m/", blank=True)
    failure = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # as ContactImport's

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("contact export")
        verbose_name_plural = _("contact exports")

    def __str__(self) -> str:
        return f"export #{self.pk}"


class RetentionPolicy(models.Model):
    """Per unit: purge name, phone and email this many days after a contact was last seen,
    unless they have an open lead or consent to keep (seed 004)."""

    unit = models.OneToOneField(BusinessUnit, on_delete=models.CASCADE, related_name="+")
    purge_pii_after_days = models.PositiveIntegerField(
        _("purge PII after (days)"), null=True, blank=True
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("PII retention policy")
        verbose_name_plural = _("PII retention policies")

    def __str__(self) -> str:
        return f"{self.unit_id}: {self.purge_pii_after_days or '∞'}"


# --- Collector: tracked sites and the raw batches they send ----------------------------------


class Site(models.Model):
    """A website or app that sends events to the collector with its public key."""

    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(_("name"), max_length=100)
    # Public: it sits in every page's tracker snippet. It identifies, it does not authorise.
    public_key = models.CharField(_("public key"), max_length=40, unique=True)
    # Server-side secret to sign identifiers (HMAC), so a page cannot claim to be someone.
    signing_secret = models.CharField(_("signing secret"), max_length=64)
    allowed_origins = models.JSONField(
        _("allowed origins"),
        default=list,
        blank=True,
        help_text=_("e.g. https://www.example.cn; empty allows any origin"),
    )
    max_events_per_batch = models.PositiveIntegerField(_("events per batch, at most"), default=100)
    max_requests_per_minute = models.PositiveIntegerField(
        _("requests per minute per visitor, at most"), default=120
    )
    is_active = models.BooleanField(_("active"), default=True)
    # The unit's own public pages (landing pages, forms, share links) report through one
    # built-in site per unit; it is created on demand and not edited by people.
    is_builtin = models.BooleanField(_("built in"), default=False, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("tracked site")
        verbose_name_plural = _("tracked sites")
        constraints = [
            models.UniqueConstraint(
                fields=["unit"], condition=Q(is_builtin=True), name="site_one_builtin_per_unit"
            )
        ]

    def __str__(self) -> str:
        return self.name


class RawBatchStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    PROCESSED = "processed", _("Processed")
    PARTIAL = "partial", _("Processed, some events rejected")
    REJECTED = "rejected", _("Rejected")


class RawBatch(models.Model):
    """What a collector request delivered, stored before anything else happens to it.

    The endpoint only writes this row and answers 202; a worker turns pending rows into
    Activities (idempotently), so a broker or worker outage loses nothing.
    """

    site = models.ForeignKey(
        Site, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    public_key = models.CharField(max_length=40, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    body = models.BinaryField()
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    origin = models.CharField(max_length=200, blank=True)
    is_bot = models.BooleanField(default=False)
    status = models.CharField(
        max_length=10, choices=RawBatchStatus.choices, default=RawBatchStatus.PENDING
    )
    event_count = models.PositiveIntegerField(default=0)
    accepted_count = models.PositiveIntegerField(default=0)
    # [{"index": 3, "reason": "…"}] for events that were not turned into activities
    rejections = models.JSONField(default=list, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    # Sweeps that failed on this batch; after a few it is set aside as rejected.
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "site__unit"

    class Meta:
        verbose_name = _("collector batch")
        verbose_name_plural = _("collector batches")
        indexes = [
            models.Index(fields=["id"], name="rawbatch_pending", condition=Q(status="pending")),
            models.Index(fields=["site", "-received_at"], name="rawbatch_site"),
        ]

    def __str__(self) -> str:
        return f"batch #{self.pk} ({self.status})"


# --- WeChat official accounts ----------------------------------------------------------------


class WeChatAccount(models.Model):
    """A unit's WeChat official account (公众号). Its app id scopes the openids it issues.

    LeadLoop never calls WeChat itself here: the OAuth bridge (or a test helper) delivers
    the app id, openid and unionid to our callback signed with ``callback_secret``.
    """

    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(_("name"), max_length=100)
    app_id = models.CharField(_("app id"), max_length=40, unique=True)
    callback_secret = models.CharField(_("callback secret"), max_length=64)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("WeChat official account")
        verbose_name_plural = _("WeChat official accounts")

    def __str__(self) -> str:
        return self.name


# --- Segments ("smart groups") -------------------------------------------------------------


class SegmentKind(models.TextChoices):
    DYNAMIC = "dynamic", _("Dynamic (by conditions)")
    STATIC = "static", _("Static list")


class SegmentStatus(models.TextChoices):
    IDLE = "idle", _("Up to date")
    QUEUED = "queued", _("Waiting to rebuild")
    RUNNING = "running", _("Rebuilding")
    FAILED = "failed", _("Rebuild failed")


class Segment(models.Model):
    """A group of contacts of one unit: by conditions (``definition``, the rule language
    of ``contacts.services.tag_rules``, compiled to one SQL query) or a static list.

    Membership is materialised in SegmentMember by a set-based rebuild. ``version`` rises
    with every change of the definition; a rebuild carries the version it was started for
    and stops when it is no longer the current one.
    """

    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(_("name"), max_length=150)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(
        _("kind"), max_length=10, choices=SegmentKind.choices, default=SegmentKind.DYNAMIC
    )
    definition = models.JSONField(_("conditions"), null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    built_version = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=SegmentStatus.choices, default=SegmentStatus.QUEUED
    )
    # Rebuild progress, for the page: rows examined so far out of an estimate.
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    rebuild_started_at = models.DateTimeField(null=True, blank=True)
    rebuilt_at = models.DateTimeField(_("last rebuilt"), null=True, blank=True)
    # Dynamic segments are rebuilt at least this often (time windows move on their own).
    rebuild_every_minutes = models.PositiveIntegerField(_("rebuild every (minutes)"), default=60)
    size = models.PositiveIntegerField(_("size"), default=0)
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        indexes = [models.Index(fields=["unit", "-id"], name="segment_unit_list")]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="static") | Q(definition__isnull=False),
                name="segment_dynamic_has_definition",
            )
        ]

    def __str__(self) -> str:
        return self.name


class SegmentMember(models.Model):
    """One contact in one segment, since when (the rebuild that added them)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    since = models.DateTimeField(default=timezone.now)

    objects = ScopedQuerySet.as_manager()
    scope_field = "segment__unit"

    class Meta:
        verbose_name = _("segment member")
        verbose_name_plural = _("segment members")
        constraints = [
            models.UniqueConstraint(fields=["segment", "contact"], name="segmentmember_once")
        ]
        indexes = [models.Index(fields=["contact"], name="segmentmember_contact")]

    def __str__(self) -> str:
        return f"{self.contact_id} ∈ {self.segment_id}"


class SegmentEventKind(models.TextChoices):
    ENTERED = "entered", _("Entered")
    LEFT = "left", _("Left")


class SegmentEvent(models.Model):
    """A contact entered or left a segment (journeys trigger on these). Append-only."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=SegmentEventKind.choices)
    at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField()

    objects = ScopedQuerySet.as_manager()
    scope_field = "segment__unit"

    class Meta:
        verbose_name = _("segment event")
        verbose_name_plural = _("segment events")
        indexes = [
            models.Index(fields=["segment", "-at"], name="segmentevent_segment"),
            models.Index(fields=["contact", "-at"], name="segmentevent_contact"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} {self.kind} {self.segment_id}"


class SegmentSize(models.Model):
    """The segment's size after each rebuild: the trend chart."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    size = models.PositiveIntegerField()
    entered = models.PositiveIntegerField(default=0)
    left = models.PositiveIntegerField(default=0)

    objects = ScopedQuerySet.as_manager()
    scope_field = "segment__unit"

    class Meta:
        verbose_name = _("segment size")
        verbose_name_plural = _("segment sizes")
        indexes = [models.Index(fields=["segment", "-at"], name="segmentsize_segment")]

    def __str__(self) -> str:
        return f"{self.segment_id}: {self.size}"
