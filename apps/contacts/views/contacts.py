"""The console contact list and the contact 360 page.

An id in a URL is never enough: every contact, tag and merge is fetched through the
user's scope, and anything outside it is a 404. Writes go through the contacts services
(tags, merge) and leave their trail there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.contacts.forms import (
    BulkTagForm,
    ContactFilterForm,
    MergeConfirmForm,
    MergeFindForm,
    TagAddForm,
    TimelineFilterForm,
)
from apps.contacts.hooks import contact_panels
from apps.contacts.models import Contact
from apps.contacts.selectors.contacts import (
    EDIT,
    MERGE,
    PAGE_SIZE,
    VIEW,
    ContactFilters,
    bounded_count,
    contact_ids_in_chunks,
    contact_list,
    contact_merged_target,
    contact_profile,
    contact_rows,
    contact_tag_panel,
    contact_visible,
    filter_options,
    merge_candidate,
    merge_visible,
    tag_for_editing,
    timeline_channels,
    with_row_data,
)
from apps.contacts.selectors.timeline import contact_timeline, timeline_entries
from apps.contacts.services.merge import MergeError, contact_merge, contact_merge_undo
from apps.contacts.services.tags import tags_add, tags_bulk_add, tags_remove
from apps.core.models import User
from apps.core.pagination import InvalidCursor, KeysetPage, keyset_page
from apps.core.roles import Surface
from apps.core.scoping import visible_unit_ids
from apps.core.web import page_units, surface_context, surface_required, user_of

# "Tag all matching": at most this many contacts in one go (the confirmation says so).
BULK_LIMIT = 100_000
# Contacts per tags_add call when tagging everything that matches a filter.
BULK_CHUNK = 5_000


def _allowed(user: User, permission: str) -> bool:
    return user.is_superuser or bool(visible_unit_ids(user, permission))


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "core/forbidden.html", {"surface": _("Contacts")}, status=403)


def _page(qs: Any, request: HttpRequest, **kwargs: Any) -> KeysetPage[Any]:
    """A keyset page; a stale or forged cursor falls back to the first page."""
    try:
        return keyset_page(qs, cursor=request.GET.get("cursor") or None, **kwargs)
    except InvalidCursor:
        messages.warning(
            request, _("That page link is no longer valid; showing the newest contacts.")
        )
        return keyset_page(qs, **kwargs)


def _list_url(query: str = "") -> str:
    base = reverse("contacts:list")
    return f"{base}?{query}" if query else base


FILTER_PARAMS = ("q", "tag", "source", "unit", "field", "value")


def _filter_query(data: Any) -> str:
    return urlencode([(k, data.get(k)) for k in FILTER_PARAMS if data.get(k)])


# --- The list ------------------------------------------------------------------------------


@surface_required(Surface.CONSOLE)
@require_GET
def contact_list_view(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    if not _allowed(user, VIEW):
        return _forbidden(request)
    options = filter_options(user=user)
    form = ContactFilterForm(request.GET or None, options=options)
    filters = form.filters()
    qs = contact_list(
        user=user,
        filters=filters,
        unit_ids=page_units(request, VIEW),
        custom_field=form.custom_field,
    )
    page = _page(with_row_data(qs, user=user), request, size=PAGE_SIZE)
    filter_query = _filter_query(request.GET)
    context = surface_context(
        request,
        Surface.CONSOLE,
        form=form,
        page=page,
        rows=contact_rows(user=user, contacts=page.items),
        filtered=filters != ContactFilters(),
        filter_query=filter_query + "&" if filter_query else "",
        filter_pairs=[(k, request.GET.get(k)) for k in FILTER_PARAMS if request.GET.get(k)],
        list_url=_list_url(filter_query),
        bulk_form=(
            BulkTagForm(tags=options.editable_tags, auto_id="bulk-%s")
            if options.editable_tags
            else None
        ),
    )
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "contacts/partials/_contact_rows.html", context)
    return render(request, "contacts/contacts/list.html", context)


@transaction.atomic
@surface_required(Surface.CONSOLE)
@require_POST
def contact_bulk_tag(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    if not _allowed(user, EDIT):
        return _forbidden(request)
    options = filter_options(user=user)
    back = _list_url(_filter_query(request.POST))
    form = BulkTagForm(request.POST, tags=options.editable_tags)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(str(e) for e in errors))
        return redirect(back)
    tag = form.chosen_tag
    if form.cleaned_data["scope"] == BulkTagForm.SELECTED:
        # Ticked ids another unit owns, or made up, simply drop out here.
        ids = list(
            contact_list(user=user, filters=ContactFilters(), permission=EDIT)
            .filter(pk__in=form.cleaned_data["ids"])
            .values_list("pk", flat=True)
        )
        added = tags_bulk_add(acting_user=user, tag=tag, chunks=[ids], scope="selected")
    else:
        filter_form = ContactFilterForm(request.POST, options=options)
        if not filter_form.is_valid():
            messages.error(request, _("The filter is not valid any more; check it and retry."))
            return redirect(back)
        qs = contact_list(
            user=user,
            filters=filter_form.filters(),
            unit_ids=page_units(request, EDIT),
            permission=EDIT,
            custom_field=filter_form.custom_field,
        )
        if not form.cleaned_data["confirmed"]:
            matching = bounded_count(qs, BULK_LIMIT)
            context = surface_context(
                request,
                Surface.CONSOLE,
                tag=tag,
                matching=matching,
                too_many=matching > BULK_LIMIT,
                bulk_limit=BULK_LIMIT,
                filters=[(k, request.POST.get(k)) for k in FILTER_PARAMS if request.POST.get(k)],
                back=back,
            )
            return render(request, "contacts/contacts/bulk_tag_confirm.html", context)
        chunks = contact_ids_in_chunks(qs, chunk=BULK_CHUNK, limit=BULK_LIMIT)
        added = tags_bulk_add(acting_user=user, tag=tag, chunks=chunks, scope="matching")
    messages.success(
        request,
        ngettext(
            "Tag “%(tag)s” added to %(n)d contact.",
            "Tag “%(tag)s” added to %(n)d contacts.",
            added,
        )
        % {"tag": tag.name, "n": added},
    )
    return redirect(back)


# --- The 360 page --------------------------------------------------------------------------


def _visible_or_404(request: HttpRequest, pk: int, permission: str = VIEW) -> Contact:
    contact = contact_visible(user=user_of(request), pk=pk, permission=permission)
    if contact is None:
        raise Http404
    return contact


def _timeline_context(request: HttpRequest, contact: Contact) -> dict[str, Any]:
    user = user_of(request)
    form = TimelineFilterForm(request.GET or None, channels=timeline_channels(user=user))
    types, channel_id = form.values()
    try:
        page = contact_timeline(
            user=user,
            contact=contact,
            types=types,
            channel_id=channel_id,
            cursor=request.GET.get("cursor") or None,
        )
    except InvalidCursor:
        page = contact_timeline(user=user, contact=contact, types=types, channel_id=channel_id)
    kept = urlencode([(k, request.GET.get(k)) for k in ("type", "channel") if request.GET.get(k)])
    return {
        "timeline_form": form,
        "timeline": timeline_entries(page),
        "timeline_page": page,
        "timeline_query": kept + "&" if kept else "",
        "timeline_filtered": bool(types or channel_id),
    }


@surface_required(Surface.CONSOLE)
@require_GET
def contact_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = user_of(request)
    contact = contact_visible(user=user, pk=pk)
    if contact is None or contact.status == "merged":
        target = contact_merged_target(user=user, pk=pk)
        if target is None:
            raise Http404
        messages.info(
            request,
            _("Contact #%(old)s was merged into this contact; you are seeing the merged one.")
            % {"old": pk},
        )
        return redirect("contacts:detail", pk=target.pk)
    context = surface_context(
        request,
        Surface.CONSOLE,
        profile=contact_profile(user=user, contact=contact),
        contact=contact,
        list_url=reverse("contacts:list"),
        merge_form=MergeFindForm(),
        panels=contact_panels(request, contact),
        **_timeline_context(request, contact),
    )
    return render(request, "contacts/contacts/detail.html", context)


@surface_required(Surface.CONSOLE)
@require_GET
def contact_timeline_view(request: HttpRequest, pk: int) -> HttpResponse:
    contact = _visible_or_404(request, pk)
    if not request.htmx:  # type: ignore[attr-defined]
        # Without script the 360 page itself takes the same parameters.
        query = request.GET.urlencode()
        url = reverse("contacts:detail", args=[contact.pk])
        return redirect(f"{url}?{query}#timeline" if query else f"{url}#timeline")
    context = {"contact": contact, **_timeline_context(request, contact)}
    template = (
        "contacts/partials/_timeline_items.html"
        if request.GET.get("cursor")
        else "contacts/partials/_timeline.html"
    )
    return render(request, template, context)


def _say(request: HttpRequest, level: int, text: str) -> None:
    """A message for the next full page; an htmx swap shows the change itself."""
    if not request.htmx:  # type: ignore[attr-defined]
        messages.add_message(request, level, text)


def _tags_response(request: HttpRequest, contact: Contact) -> HttpResponse:
    if request.htmx:  # type: ignore[attr-defined]
        tags, choices = contact_tag_panel(user=user_of(request), contact=contact)
        context = {"contact": contact, "tags": tags, "tag_choices": choices, "can_edit": True}
        return render(request, "contacts/partials/_contact_tags.html", context)
    return redirect("contacts:detail", pk=contact.pk)


@surface_required(Surface.CONSOLE)
@require_POST
def contact_tag_add(request: HttpRequest, pk: int) -> HttpResponse:
    user = user_of(request)
    contact = _visible_or_404(request, pk, EDIT)
    _tags, choices = contact_tag_panel(user=user, contact=contact)
    form = TagAddForm(request.POST, tags=choices)
    if form.is_valid():
        tag = form.chosen_tag
        tags_add(
            contact_ids=[contact.pk], tags=[tag], source="manual", actor_label=user.get_username()
        )
        _say(request, messages.SUCCESS, _("Tag “%(tag)s” added.") % {"tag": tag.name})
    else:
        _say(request, messages.ERROR, _("Choose one of your units' tags to add."))
    return _tags_response(request, contact)


@surface_required(Surface.CONSOLE)
@require_POST
def contact_tag_remove(request: HttpRequest, pk: int, tag_id: int) -> HttpResponse:
    user = user_of(request)
    contact = _visible_or_404(request, pk, EDIT)
    tag = tag_for_editing(user=user, pk=tag_id)
    if tag is None:
        raise Http404
    removed = tags_remove(
        contact_ids=[contact.pk], tags=[tag], source="manual", actor_label=user.get_username()
    )
    if removed:
        _say(request, messages.SUCCESS, _("Tag “%(tag)s” removed.") % {"tag": tag.name})
    return _tags_response(request, contact)


# --- Merge and undo ------------------------------------------------------------------------


@surface_required(Surface.CONSOLE)
@require_http_methods(["GET", "POST"])
def contact_merge_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Find the other contact (GET ?other=), show both side by side, merge on POST."""
    user = user_of(request)
    contact = _visible_or_404(request, pk)
    if contact.status != "active":
        raise Http404
    if contact_visible(user=user, pk=pk, permission=MERGE) is None:
        return _forbidden(request)
    if request.method == "POST":
        return _merge_post(request, contact)
    find = MergeFindForm(request.GET or None)
    other = None
    if find.is_valid():
        other = merge_candidate(user=user, contact=contact, text=find.cleaned_data["other"])
        if other is None:
            find.add_error(
                "other",
                _("No other active contact you may merge matches “%(text)s”.")
                % {"text": find.cleaned_data["other"]},
            )
    context = surface_context(
        request,
        Surface.CONSOLE,
        contact=contact,
        find=find,
        other=other,
        profile=contact_profile(user=user, contact=contact),
        other_profile=contact_profile(user=user, contact=other) if other else None,
        confirm=MergeConfirmForm(
            initial={"other": other.pk, "keep": MergeConfirmForm.THIS} if other else None,
            names=(_label(contact), _label(other)) if other else None,
        ),
    )
    status = 200 if other or not find.is_bound else 400
    return render(request, "contacts/contacts/merge.html", context, status=status)


def _label(contact: Contact) -> str:
    return f"{contact.name or _('Unnamed contact')} #{contact.pk}"


def _merge_post(request: HttpRequest, contact: Contact) -> HttpResponse:
    user = user_of(request)
    form = MergeConfirmForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose which contact to keep and confirm again."))
        return redirect("contacts:contact-merge", pk=contact.pk)
    other = contact_visible(user=user, pk=form.cleaned_data["other"], permission=MERGE)
    if other is None:
        raise Http404
    kept, dropped = (contact, other) if form.cleaned_data["keep"] == form.THIS else (other, contact)
    try:
        contact_merge(
            kept=kept,
            dropped=dropped,
            reason=form.cleaned_data["reason"] or _("merged by hand in the console"),
            acting_user=user,
        )
    except MergeError as exc:
        messages.error(request, str(exc))
        return redirect("contacts:detail", pk=contact.pk)
    messages.success(
        request,
        _("Contact #%(dropped)s was merged into this contact. Undo it below if that was wrong.")
        % {"dropped": dropped.pk},
    )
    return redirect("contacts:detail", pk=kept.pk)


@surface_required(Surface.CONSOLE)
@require_POST
def contact_merge_undo_view(request: HttpRequest, merge_id: int) -> HttpResponse:
    user = user_of(request)
    merge = merge_visible(user=user, pk=merge_id)
    if merge is None:
        raise Http404
    try:
        contact_merge_undo(merge=merge, acting_user=user)
    except MergeError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("Merge undone: contact #%(dropped)s is a separate contact again.")
            % {"dropped": merge.dropped_id},
        )
    return redirect("contacts:detail", pk=merge.kept_id)


urlpatterns = [
    path("contacts/", contact_list_view, name="list"),
    path("contacts/bulk-tag/", contact_bulk_tag, name="contact-bulk-tag"),
    path("contacts/<int:pk>/", contact_detail, name="detail"),
    path("contacts/<int:pk>/timeline/", contact_timeline_view, name="contact-timeline"),
    path("contacts/<int:pk>/tags/", contact_tag_add, name="contact-tag-add"),
    path(
        "contacts/<int:pk>/tags/<int:tag_id>/remove/",
        contact_tag_remove,
        name="contact-tag-remove",
    ),
    path("contacts/<int:pk>/merge/", contact_merge_view, name="contact-merge"),
    path(
        "contacts/merges/<int:merge_id>/undo/",
        contact_merge_undo_view,
        name="contact-merge-undo",
    ),
]
