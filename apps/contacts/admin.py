"""Admin for every contacts model, scoped to the units a staff member administers.

Append-only and derived tables (activities, consent, tag history, merges, identities,
the units that know a person) are read-only here: they change through the contacts
services, which keep their history. A merge is undone with the "Undo selected merges"
action, which calls the same service as the console. Big tables count at most
``BoundedCountPaginator.LIMIT`` rows instead of running COUNT(*) over everything.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import models, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.contacts.identity_keys import InvalidKey, normalize_email, normalize_phone
from apps.contacts.models import (
    STANDARD_FIELDS,
    Activity,
    Campaign,
    Channel,
    ConsentEvent,
    ConsentState,
    Contact,
    ContactExport,
    ContactImport,
    ContactMerge,
    ContactTag,
    ContactUnit,
    CustomField,
    ErasedIdentity,
    Identity,
    IdentityKind,
    ImportMapping,
    MergeMovedActivities,
    RawBatch,
    RetentionPolicy,
    Segment,
    SegmentEvent,
    SegmentMember,
    SegmentSize,
    Site,
    Tag,
    TagGroup,
    TagHistory,
    WeChatAccount,
)
from apps.contacts.services.merge import MergeError, contact_merge_undo
from apps.contacts.services.tags import tags_remove
from apps.core.admin_base import ScopedAdmin
from apps.core.scoping import visible_unit_ids
from apps.core.services import audit_record


class BoundedCountPaginator(Paginator):
    """Counts no further than LIMIT rows, so a list of a huge table opens at once; rows
    past the limit are reached by searching or filtering."""

    LIMIT = 100_000

    @cached_property
    def count(self) -> int:
        rows = cast(models.QuerySet[Any], self.object_list)
        return rows.order_by().values("pk")[: self.LIMIT].count()


class VisibleUnitFilter(admin.RelatedFieldListFilter):
    """A unit filter that lists only the units the staff member administers."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> Any:
        ordering = self.field_admin_ordering(field, request, model_admin)
        if request.user.is_superuser:
            return field.get_choices(include_blank=False, ordering=ordering)
        units = visible_unit_ids(request.user, model_admin.admin_permission)
        return field.get_choices(
            include_blank=False, ordering=ordering, limit_choices_to={"pk__in": list(units)}
        )


class ReadOnlyAdmin(ScopedAdmin):
    """History and derived rows: looked at, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AuditedAdmin(ScopedAdmin):
    """Configuration rows edited here leave an audit row, as the services' writes do."""

    def _unit_of(self, obj: Any) -> int | None:
        unit_id = getattr(obj, "unit_id", None)
        return int(unit_id) if unit_id is not None else None

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        changed = list(form.changed_data)
        before = None
        if change and changed:
            old = type(obj).objects.dangerously_unscoped().get(pk=obj.pk)
            before = {name: str(getattr(old, name)) for name in changed}
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            audit_record(
                actor=request.user,  # type: ignore[arg-type]
                action=f"{obj._meta.model_name}.{'change' if change else 'create'}",
                obj=obj,
                unit=self._unit_of(obj),
                before=before,
                after={name: str(getattr(obj, name)) for name in changed},
            )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            audit_record(
                actor=request.user,  # type: ignore[arg-type]
                action=f"{obj._meta.model_name}.delete",
                obj=obj,
                unit=self._unit_of(obj),
                before={"name": str(obj)},
            )
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


def _key_search(term: str) -> Q | None:
    """A phone in any spelling or an email, as the identity key it is stored under."""
    term = term.strip()
    try:
        if "@" in term:
            return Q(kind=IdentityKind.EMAIL, value=normalize_email(term))
        if sum(c.isdigit() for c in term) >= 7:
            return Q(kind=IdentityKind.PHONE, value=normalize_phone(term))
    except InvalidKey:
        return None
    return None


# --- Contacts and identities ---------------------------------------------------------------


class IdentityInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Identity
    extra = 0
    fields = readonly_fields = ("kind", "scope", "value", "source", "created_at")
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ContactUnitInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ContactUnit
    extra = 0
    fields = readonly_fields = ("unit", "first_seen_at", "source")
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Contact)
class ContactAdmin(ScopedAdmin):
    list_display = ["id", "name", "company_name", "title", "city", "status", "last_seen_at"]
    list_display_links = ["id", "name"]
    list_filter = ["status", "created_at"]
    # Prefix matches only; phones and emails are found through their identity keys below.
    search_fields = ["^name", "^company_name"]
    search_help_text = _("Name or company (first characters), a phone, an email or an id.")
    show_full_result_count = False
    paginator = BoundedCountPaginator
    inlines = [IdentityInline, ContactUnitInline]
    autocomplete_fields = ["source_channel"]
    fieldsets = [
        (None, {"fields": ["name", "title", "department", "company_name"]}),
        (_("Where"), {"fields": ["province", "city", "industry", "source_channel"]}),
        (
            _("Record"),
            {
                "fields": [
                    "status",
                    "merged_into",
                    "group",
                    "custom",
                    "first_seen_at",
                    "last_seen_at",
                    "pii_purged_at",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]
    readonly_fields = [
        "status",
        "merged_into",
        "group",
        "custom",
        "first_seen_at",
        "last_seen_at",
        "pii_purged_at",
        "created_at",
        "updated_at",
    ]

    # Contacts come from resolution (imports, forms, API), which dedupes them; erasure and
    # merges have their own services.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: models.QuerySet[Any], search_term: str
    ) -> tuple[models.QuerySet[Any], bool]:
        term = search_term.strip()
        key = _key_search(term)
        if key is not None:
            owners = Identity.objects.dangerously_unscoped().filter(key).values("contact_id")
            return queryset.filter(pk__in=owners), False
        if term.lstrip("#").isdigit():
            return queryset.filter(pk=int(term.lstrip("#"))), False
        return super().get_search_results(request, queryset, search_term)

    def save_model(self, request: HttpRequest, obj: Contact, form: Any, change: bool) -> None:
        editable = (*STANDARD_FIELDS, "source_channel")
        changed = [name for name in form.changed_data if name in editable]
        old = Contact.objects.dangerously_unscoped().get(pk=obj.pk)
        # An edit by hand is the newest observation: later imports compare against it.
        stamp = {"source": "admin", "at": timezone.now().isoformat()}
        obj.field_sources = {**(obj.field_sources or {}), **dict.fromkeys(changed, stamp)}
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            audit_record(
                actor=request.user,  # type: ignore[arg-type]
                action="contact.change",
                obj=obj,
                unit=obj.group_id,
                before={n: str(getattr(old, n)) for n in changed},
                after={n: str(getattr(obj, n)) for n in changed},
            )


@admin.register(Identity)
class IdentityAdmin(ReadOnlyAdmin):
    list_display = ["kind", "value", "scope", "contact", "source", "created_at"]
    list_filter = ["kind"]
    search_fields = ["value__exact"]
    search_help_text = _("A key as stored; phones and emails in any spelling.")
    list_select_related = ["contact"]
    raw_id_fields = ["contact"]
    show_full_result_count = False
    paginator = BoundedCountPaginator

    def get_search_results(
        self, request: HttpRequest, queryset: models.QuerySet[Any], search_term: str
    ) -> tuple[models.QuerySet[Any], bool]:
        key = _key_search(search_term)
        if key is not None:
            return queryset.filter(key), False
        return super().get_search_results(request, queryset, search_term.strip())


@admin.register(ErasedIdentity)
class ErasedIdentityAdmin(ReadOnlyAdmin):
    list_display = ["kind", "scope", "value_hash", "group", "erased_at"]
    list_filter = ["kind"]
    search_fields = ["value_hash__exact"]
    list_select_related = ["group"]


@admin.register(ContactUnit)
class ContactUnitAdmin(ReadOnlyAdmin):
    list_display = ["contact", "unit", "source", "first_seen_at"]
    list_filter = [("unit", VisibleUnitFilter), "source"]
    search_fields = ["contact__id__exact"]
    search_help_text = _("A contact id.")
    list_select_related = ["contact", "unit"]
    raw_id_fields = ["contact"]
    show_full_result_count = False
    paginator = BoundedCountPaginator


# --- Merges --------------------------------------------------------------------------------


@admin.register(ContactMerge)
class ContactMergeAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "dropped",
        "kept",
        "reason",
        "actor_label",
        "undone_at",
        "undone_by",
    ]
    list_filter = [("undone_at", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["kept__id__exact", "dropped__id__exact", "actor_label"]
    search_help_text = _("A contact id (either side) or who merged.")
    list_select_related = ["kept", "dropped"]
    raw_id_fields = ["kept", "dropped"]
    exclude = ["snapshot"]
    actions = ["undo_merges"]

    def has_undo_permission(self, request: HttpRequest) -> bool:
        return self._is_unit_admin(request)

    @admin.action(description=_("Undo selected merges"), permissions=["undo"])
    def undo_merges(self, request: HttpRequest, queryset: models.QuerySet[ContactMerge]) -> None:
        # Newest first: an older merge can only be undone once the later ones are.
        done = 0
        for merge in queryset.order_by("-id"):
            try:
                contact_merge_undo(merge=merge, acting_user=request.user)  # type: ignore[arg-type]
            except MergeError as exc:
                self.message_user(
                    request,
                    _("Merge #%(id)s was not undone: %(why)s") % {"id": merge.pk, "why": exc},
                    messages.ERROR,
                )
            else:
                done += 1
        if done:
            text = ngettext("%(n)d merge undone.", "%(n)d merges undone.", done) % {"n": done}
            self.message_user(request, text, messages.SUCCESS)


@admin.register(MergeMovedActivities)
class MergeMovedActivitiesAdmin(ReadOnlyAdmin):
    list_display = ["merge", "size"]
    search_fields = ["merge__id__exact"]
    list_select_related = ["merge"]
    raw_id_fields = ["merge"]

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Any]:
        qs = admin.ModelAdmin.get_queryset(self, request)
        if request.user.is_superuser:
            return qs
        merges = ContactMerge.objects.visible_to(request.user, self.admin_permission)
        return qs.filter(merge__in=merges.values("pk"))

    @admin.display(description=_("activities"))
    def size(self, obj: MergeMovedActivities) -> int:
        return len(obj.activity_ids or [])


# --- Channels, campaigns, activities -------------------------------------------------------


@admin.register(Channel)
class ChannelAdmin(AuditedAdmin):
    list_display = ["name", "code", "kind", "unit", "is_active", "created_at"]
    list_filter = ["kind", "is_active", ("unit", VisibleUnitFilter)]
    search_fields = ["name", "code"]
    list_select_related = ["unit"]


@admin.register(Campaign)
class CampaignAdmin(AuditedAdmin):
    list_display = ["name", "code", "unit", "channel", "starts_on", "ends_on", "cost", "currency"]
    list_filter = [("unit", VisibleUnitFilter), "starts_on"]
    search_fields = ["name", "code"]
    autocomplete_fields = ["channel"]
    list_select_related = ["unit", "channel"]


@admin.register(Activity)
class ActivityAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "type", "contact", "unit", "channel", "campaign", "object_id"]
    list_filter = [("unit", VisibleUnitFilter)]
    # Exact matches the indexes serve: a type, an anonymous id, or (digits) a contact id.
    search_fields = ["type__exact", "anonymous_id__exact"]
    search_help_text = _("An activity type (page_view), an anonymous id or a contact id.")
    list_select_related = ["contact", "unit", "channel", "campaign"]
    raw_id_fields = ["contact", "channel", "campaign"]
    show_full_result_count = False
    paginator = BoundedCountPaginator

    def get_search_results(
        self, request: HttpRequest, queryset: models.QuerySet[Any], search_term: str
    ) -> tuple[models.QuerySet[Any], bool]:
        term = search_term.strip()
        if term.isdigit():
            return queryset.filter(contact_id=int(term)), False
        return super().get_search_results(request, queryset, term)


# --- Custom fields and tags ----------------------------------------------------------------


@admin.register(CustomField)
class CustomFieldAdmin(AuditedAdmin):
    list_display = ["label", "key", "type", "unit", "position", "is_active"]
    list_filter = ["type", "is_active", ("unit", VisibleUnitFilter)]
    search_fields = ["label", "key"]
    list_select_related = ["unit"]


@admin.register(TagGroup)
class TagGroupAdmin(AuditedAdmin):
    list_display = ["name", "unit", "position"]
    list_filter = [("unit", VisibleUnitFilter)]
    search_fields = ["name"]
    list_select_related = ["unit"]


@admin.register(Tag)
class TagAdmin(AuditedAdmin):
    list_display = ["name", "unit", "group", "kind", "rule_applied_at", "created_at"]
    list_filter = ["kind", ("unit", VisibleUnitFilter)]
    search_fields = ["name"]
    autocomplete_fields = ["group"]
    list_select_related = ["unit", "group"]
    readonly_fields = ["rule_applied_at"]


@admin.register(ContactTag)
class ContactTagAdmin(ReadOnlyAdmin):
    list_display = ["contact", "tag", "source", "added_by", "added_at"]
    list_filter = ["source"]
    search_fields = ["tag__name", "added_by"]
    list_select_related = ["contact", "tag"]
    raw_id_fields = ["contact", "tag"]
    show_full_result_count = False
    paginator = BoundedCountPaginator
    actions = ["remove_tags"]

    def has_remove_permission(self, request: HttpRequest) -> bool:
        return self._is_unit_admin(request)

    @admin.action(description=_("Remove selected tags from their contacts"), permissions=["remove"])
    def remove_tags(self, request: HttpRequest, queryset: models.QuerySet[ContactTag]) -> None:
        by_tag: dict[int, tuple[Tag, list[int]]] = {}
        for row in queryset.select_related("tag"):
            by_tag.setdefault(row.tag_id, (row.tag, []))[1].append(row.contact_id)
        removed = 0
        for tag, contact_ids in by_tag.values():
            removed += tags_remove(
                contact_ids=contact_ids,
                tags=[tag],
                source="admin",
                actor_label=request.user.get_username(),
            )
        text = ngettext("%(n)d tag removed.", "%(n)d tags removed.", removed) % {"n": removed}
        self.message_user(request, text, messages.SUCCESS)


@admin.register(TagHistory)
class TagHistoryAdmin(ReadOnlyAdmin):
    list_display = ["at", "contact", "tag", "action", "source", "actor_label"]
    list_filter = ["action", "source"]
    search_fields = ["tag__name", "actor_label"]
    list_select_related = ["contact", "tag"]
    raw_id_fields = ["contact", "tag"]
    show_full_result_count = False
    paginator = BoundedCountPaginator


# --- Consent -------------------------------------------------------------------------------


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdmin):
    list_display = [
        "occurred_at",
        "contact",
        "channel",
        "purpose",
        "granted",
        "basis",
        "source",
        "unit",
    ]
    list_filter = ["channel", "granted", "basis", ("unit", VisibleUnitFilter)]
    search_fields = ["source", "wording_version", "contact__id__exact"]
    list_select_related = ["contact", "unit"]
    raw_id_fields = ["contact"]
    show_full_result_count = False
    paginator = BoundedCountPaginator


@admin.register(ConsentState)
class ConsentStateAdmin(ReadOnlyAdmin):
    list_display = ["contact", "channel", "purpose", "granted", "since"]
    list_filter = ["channel", "purpose", "granted"]
    search_fields = ["contact__id__exact"]
    search_help_text = _("A contact id.")
    list_select_related = ["contact"]
    raw_id_fields = ["contact"]
    show_full_result_count = False
    paginator = BoundedCountPaginator

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Any]:
        # Derived rows with no unit of their own: they follow their contact.
        qs = admin.ModelAdmin.get_queryset(self, request)
        if request.user.is_superuser:
            return qs
        contacts = Contact.objects.visible_to(request.user, self.admin_permission)
        return qs.filter(contact__in=contacts.values("pk"))


# --- Imports, exports, retention -----------------------------------------------------------


@admin.register(ContactImport)
class ContactImportAdmin(ReadOnlyAdmin):
    list_display = [
        "original_name",
        "unit",
        "created_by",
        "status",
        "processed_rows",
        "imported_rows",
        "error_rows",
        "created_at",
    ]
    list_filter = ["status", ("unit", VisibleUnitFilter)]
    search_fields = ["original_name", "created_by__username"]
    list_select_related = ["unit", "created_by"]


@admin.register(ImportMapping)
class ImportMappingAdmin(AuditedAdmin):
    list_display = ["unit", "header_signature", "updated_at"]
    list_filter = [("unit", VisibleUnitFilter)]
    search_fields = ["header_signature"]
    list_select_related = ["unit"]
    readonly_fields = ["unit", "header_signature"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # saved by the import page when a file is mapped


@admin.register(ContactExport)
class ContactExportAdmin(ReadOnlyAdmin):
    list_display = ["id", "unit", "created_by", "file_type", "status", "total_rows", "created_at"]
    list_filter = ["status", "file_type"]
    search_fields = ["created_by__username"]
    list_select_related = ["unit", "created_by"]


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(AuditedAdmin):
    list_display = ["unit", "purge_pii_after_days", "updated_at"]
    list_filter = [("unit", VisibleUnitFilter)]
    search_fields = ["unit__name", "unit__code"]
    list_select_related = ["unit"]


@admin.register(Site)
class SiteAdmin(AuditedAdmin):
    list_display = [
        "name",
        "unit",
        "public_key",
        "is_active",
        "max_events_per_batch",
        "max_requests_per_minute",
        "created_at",
    ]
    list_filter = ["is_active", ("unit", VisibleUnitFilter)]
    search_fields = ["name", "public_key"]
    list_select_related = ["unit"]
    readonly_fields = ["public_key", "signing_secret"]


@admin.register(RawBatch)
class RawBatchAdmin(ScopedAdmin):
    """What the collector received; read-only (the worker processes it)."""

    list_display = [
        "id",
        "site",
        "received_at",
        "status",
        "event_count",
        "accepted_count",
        "is_bot",
        "reason",
    ]
    list_filter = ["status", "is_bot"]
    search_fields = ["public_key", "reason"]
    list_select_related = ["site"]
    show_full_result_count = False
    readonly_fields = [f.name for f in RawBatch._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WeChatAccount)
class WeChatAccountAdmin(AuditedAdmin):
    list_display = ["name", "app_id", "unit", "is_active", "created_at"]
    list_filter = ["is_active", ("unit", VisibleUnitFilter)]
    search_fields = ["name", "app_id"]
    list_select_related = ["unit"]
    readonly_fields = ["callback_secret"]


@admin.register(Segment)
class SegmentAdmin(AuditedAdmin):
    list_display = ["name", "unit", "kind", "size", "status", "rebuilt_at", "is_active"]
    list_filter = ["kind", "status", "is_active", ("unit", VisibleUnitFilter)]
    search_fields = ["name", "description"]
    list_select_related = ["unit"]
    readonly_fields = [
        "version",
        "built_version",
        "status",
        "progress_done",
        "progress_total",
        "last_error",
        "rebuild_started_at",
        "rebuilt_at",
        "size",
        "created_by",
    ]


@admin.register(SegmentMember)
class SegmentMemberAdmin(ReadOnlyAdmin):
    list_display = ["segment", "contact", "since"]
    search_fields = ["segment__name"]
    list_select_related = ["segment", "contact"]
    show_full_result_count = False


@admin.register(SegmentEvent)
class SegmentEventAdmin(ReadOnlyAdmin):
    list_display = ["segment", "contact", "kind", "at", "version"]
    list_filter = ["kind"]
    search_fields = ["segment__name"]
    list_select_related = ["segment", "contact"]
    show_full_result_count = False


@admin.register(SegmentSize)
class SegmentSizeAdmin(ReadOnlyAdmin):
    list_display = ["segment", "at", "size", "entered", "left"]
    search_fields = ["segment__name"]
    list_select_related = ["segment"]
