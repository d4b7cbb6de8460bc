"""What marketing publishes and how people arrive through it: assets (the content library),
forms and what was submitted to them, landing pages, and personal share links with who
opened them and for how long.

Everything belongs to a business unit and is scoped by it. The public side (forms,
landing pages, asset downloads, share links) stores what arrives first (a submission, a
raw collector batch, a share view) and processes it after, so an outage of the broker or a
worker loses nothing.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.models import BusinessUnit
from apps.core.scoping import ScopedQuerySet


def public_key(prefix: str) -> str:
    """An unguessable key for a public URL, e.g. ``f_3kT9…``."""
    return f"{prefix}_{secrets.token_urlsafe(12)}"


# --- Content library ------------------------------------------------------------------------


class AssetKind(models.TextChoices):
    WHITEPAPER = "whitepaper", _("Whitepaper")
    CASE_STUDY = "case_study", _("Case study")
    DATASHEET = "datasheet", _("Datasheet")
    VIDEO = "video", _("Video")
    ARTICLE = "article", _("Article")
    OTHER = "other", _("Other")


class BuyingStage(models.TextChoices):
    AWARENESS = "awareness", _("Awareness")
    CONSIDERATION = "consideration", _("Consideration")
    DECISION = "decision", _("Decision")
    RETENTION = "retention", _("Retention")


class Asset(models.Model):
    """A piece of content: a file (stored through Django storage), a video or page by URL,
    or an article written here. Gated assets are delivered after a form is filled."""

    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.CASCADE, related_name="+"
    )
    title = models.CharField(_("title"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=AssetKind.choices)
    summary = models.TextField(_("summary"), blank=True)
    file = models.FileField(_("file"), upload_to="assets/%Y/%m/", blank=True, max_length=300)
    url = models.URLField(_("URL"), blank=True, max_length=1000)
    # Articles: HTML sanitised with nh3 when saved (never trusted as typed).
    body = models.TextField(_("body"), blank=True)
    topic = models.CharField(_("topic"), max_length=100, blank=True)
    buying_stage = models.CharField(
        _("buying stage"), max_length=20, choices=BuyingStage.choices, blank=True
    )
    personas = models.JSONField(_("personas"), default=list, blank=True)
    is_gated = models.BooleanField(_("gated"), default=False)
    gate_form = models.ForeignKey(
        "content.Form",
        verbose_name=_("gate form"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    key = models.CharField(_("public key"), max_length=40, unique=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("asset")
        verbose_name_plural = _("assets")
        indexes = [models.Index(fields=["unit", "-id"], name="asset_unit_list")]
        constraints = [
            models.CheckConstraint(
                condition=Q(is_gated=False) | Q(gate_form__isnull=False),
                name="asset_gated_has_form",
            )
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: object, **kwargs: object) -> None:
        if not self.key:
            self.key = public_key("a")
        super().save(*args, **kwargs)  # type: ignore[arg-type]


# --- Forms ---------------------------------------------------------------------------------


class Form(models.Model):
    """A form built in the console, shown at ``/f/<key>/`` or embedded.

    ``fields`` is an ordered list of ``{"key": "email" | "phone" | "name" | … |
    "custom:<CustomField key>", "required": bool, "label": "", "options": [...]}`` (see
    ``content.form_fields``). With progressive profiling a recognised visitor is asked
    only fields we do not know yet, at most ``progressive_max`` new ones per visit.
    """

    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(_("name"), max_length=150)
    key = models.CharField(_("public key"), max_length=40, unique=True)
    title = models.CharField(_("heading"), max_length=200, blank=True)
    intro = models.TextField(_("introduction"), blank=True)
    fields = models.JSONField(_("fields"), default=list)
    submit_label = models.CharField(_("button text"), max_length=60, blank=True)
    progressive = models.BooleanField(_("progressive profiling"), default=False)
    progressive_max = models.PositiveSmallIntegerField(
        _("new fields per visit, at most"), default=3
    )
    consent_required = models.BooleanField(_("consent required"), default=True)
    consent_text = models.TextField(_("consent wording"), blank=True)
    consent_version = models.CharField(_("consent wording version"), max_length=40, blank=True)
    success_message = models.TextField(_("thank-you message"), blank=True)
    redirect_url = models.URLField(_("redirect after submit"), blank=True, max_length=1000)
    # A submission opens a lead in the form's unit at this temperature (e.g. a trial request
    # is hot, a whitepaper download warm); empty: the form only feeds the contact.
    opens_lead = models.CharField(
        _("opens a lead"),
        max_length=10,
        blank=True,
        choices=[("", _("no lead")), ("warm", _("warm lead")), ("hot", _("hot lead"))],
    )
    asset = models.ForeignKey(
        Asset,
        verbose_name=_("asset delivered"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    channel = models.ForeignKey(
        "contacts.Channel",
        verbose_name=_("channel"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    campaign = models.ForeignKey(
        "contacts.Campaign",
        verbose_name=_("campaign"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("form")
        verbose_name_plural = _("forms")
        indexes = [models.Index(fields=["unit", "-id"], name="form_unit_list")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: object, **kwargs: object) -> None:
        if not self.key:
            self.key = public_key("f")
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class SubmissionStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    PROCESSED = "processed", _("Processed")
    REJECTED = "rejected", _("Rejected")
    SPAM = "spam", _("Spam")


class FormSubmission(models.Model):
    """What a visitor submitted, stored as it arrived; a worker turns it into a contact,
    an activity and consent (``content.services.submissions``), idempotently."""

    form = models.ForeignKey(Form, on_delete=models.CASCADE, related_name="submissions")
    unit = models.ForeignKey(BusinessUnit, on_delete=models.CASCADE, related_name="+")
    landing_page = models.ForeignKey(
        "content.LandingPage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    share_link = models.ForeignKey(
        "content.ShareLink", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    received_at = models.DateTimeField(default=timezone.now)
    # Cleaned answers keyed like Form.fields ("email", "custom:industry_segment", …).
    data = models.JSONField(default=dict)
    consent = models.BooleanField(default=False)
    consent_version = models.CharField(max_length=40, blank=True)
    anonymous_id = models.CharField(max_length=64, blank=True)
    # The one-time token the form page carried: a second submit of the same page is
    # recognised (double-submit protection) by the unique constraint below.
    token = models.CharField(max_length=64)
    page_url = models.CharField(max_length=2000, blank=True)
    referrer = models.CharField(max_length=2000, blank=True)
    utm = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    status = models.CharField(
        max_length=10, choices=SubmissionStatus.choices, default=SubmissionStatus.PENDING
    )
    reason = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    contact = models.ForeignKey(
        "contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    processed_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("form submission")
        verbose_name_plural = _("form submissions")
        constraints = [
            models.UniqueConstraint(fields=["form", "token"], name="formsubmission_token_once")
        ]
        indexes = [
            models.Index(fields=["form", "-received_at"], name="formsubmission_form"),
            models.Index(
                fields=["id"], name="formsubmission_pending", condition=Q(status="pending")
            ),
        ]

    def __str__(self) -> str:
        return f"submission #{self.pk} ({self.status})"


# --- Landing pages -------------------------------------------------------------------------


class PageStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")


class LandingPage(models.Model):
    """A page composed of blocks, public at ``/p/<slug>/`` once published.

    ``blocks`` is an ordered list of ``{"type": "heading" | "text" | "image" | "form" |
    "asset", …}`` (see ``content.blocks``); rich text is sanitised with nh3 when saved
    and again when rendered.
    """

    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.CASCADE, related_name="+"
    )
    title = models.CharField(_("title"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=100, unique=True, allow_unicode=False)
    seo_title = models.CharField(_("SEO title"), max_length=200, blank=True)
    seo_description = models.CharField(_("SEO description"), max_length=300, blank=True)
    blocks = models.JSONField(_("blocks"), default=list, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=PageStatus.choices, default=PageStatus.DRAFT
    )
    published_at = models.DateTimeField(_("published"), null=True, blank=True)
    channel = models.ForeignKey(
        "contacts.Channel",
        verbose_name=_("channel"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    campaign = models.ForeignKey(
        "contacts.Campaign",
        verbose_name=_("campaign"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("landing page")
        verbose_name_plural = _("landing pages")
        indexes = [models.Index(fields=["unit", "-id"], name="landingpage_unit_list")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="draft") | Q(published_at__isnull=False),
                name="landingpage_published_has_time",
            )
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_published(self) -> bool:
        return self.status == PageStatus.PUBLISHED


# --- Share links (全员营销) ------------------------------------------------------------------


class ShareLink(models.Model):
    """One person's tracked link to an asset or a landing page: ``/s/<token>/``."""

    unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.CASCADE, related_name="+"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("shared by"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    asset = models.ForeignKey(
        Asset, verbose_name=_("asset"), null=True, blank=True, on_delete=models.CASCADE
    )
    landing_page = models.ForeignKey(
        LandingPage,
        verbose_name=_("landing page"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
    )
    token = models.CharField(_("token"), max_length=40, unique=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    campaign = models.ForeignKey(
        "contacts.Campaign",
        verbose_name=_("campaign"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("share link")
        verbose_name_plural = _("share links")
        indexes = [models.Index(fields=["owner", "-id"], name="sharelink_owner")]
        constraints = [
            models.CheckConstraint(
                condition=Q(asset__isnull=False, landing_page__isnull=True)
                | Q(asset__isnull=True, landing_page__isnull=False),
                name="sharelink_one_target",
            )
        ]

    def __str__(self) -> str:
        return self.token

    def save(self, *args: object, **kwargs: object) -> None:
        if not self.token:
            self.token = secrets.token_urlsafe(9)
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class ShareView(models.Model):
    """One opening of a share link: who (a known contact or an anonymous visitor), when,
    from where, and how long they read (heartbeats from the page raise ``seconds``)."""

    link = models.ForeignKey(ShareLink, on_delete=models.CASCADE, related_name="views")
    unit = models.ForeignKey(BusinessUnit, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(
        "contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    anonymous_id = models.CharField(max_length=64, blank=True)
    # Handed to the page; heartbeats must present it (the row id alone is guessable).
    beat_key = models.CharField(max_length=40)
    opened_at = models.DateTimeField(default=timezone.now)
    last_beat_at = models.DateTimeField(null=True, blank=True)
    seconds = models.PositiveIntegerField(default=0)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    referrer = models.CharField(max_length=2000, blank=True)
    is_bot = models.BooleanField(default=False)
    # Set once the open has been turned into an activity and the sharer told (idempotent).
    processed_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("share link view")
        verbose_name_plural = _("share link views")
        indexes = [
            models.Index(fields=["link", "-opened_at"], name="shareview_link"),
            models.Index(
                fields=["id"], name="shareview_unprocessed", condition=Q(processed_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.link_id} @ {self.opened_at:%Y-%m-%d %H:%M}"
