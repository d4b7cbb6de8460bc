"""Share-link pages (全员营销): the console (``/console/shares/``), the lead queue
(``/sdr/shares/``) and the sales phone (``/m/shares/``).

Everyone who may share sees their own links, makes new ones and sees who opened each,
for how long; marketers and administrators (``content.edit``) also see, and filter by,
their units' people's links. Another person's link outside that is "not found".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from apps.content.models import Asset, LandingPage, ShareLink
from apps.content.selectors import shares as selectors
from apps.content.services import shares as services
from apps.core.models import User
from apps.core.pagination import InvalidCursor, KeysetPage, keyset_page
from apps.core.roles import Surface
from apps.core.scoping import visible_unit_ids
from apps.core.selectors import user_surfaces
from apps.core.web import page_units, surface_context, surface_required, user_of

PAGE_SIZE = 30
VIEWERS_PAGE_SIZE = 50
VIEW_ORDERING = ("-opened_at", "-id")


@dataclass(frozen=True)
class SurfaceUrls:
    list: str
    detail: str
    deactivate: str


URLS: dict[str, SurfaceUrls] = {
    Surface.CONSOLE: SurfaceUrls(
        "content:shares", "content:share-detail", "content:share-deactivate"
    ),
    Surface.SDR: SurfaceUrls(
        "content:sdr-shares", "content:sdr-share-detail", "content:sdr-share-deactivate"
    ),
    Surface.MOBILE: SurfaceUrls(
        "content:m-shares", "content:m-share-detail", "content:m-share-deactivate"
    ),
}


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "core/forbidden.html", {"surface": _("Share links")}, status=403)


def _page(request: HttpRequest, qs: Any, ordering: tuple[str, ...], size: int) -> KeysetPage[Any]:
    try:
        return keyset_page(qs, ordering=ordering, cursor=request.GET.get("cursor"), size=size)
    except InvalidCursor:
        messages.warning(request, _("That page link is no longer valid; showing the first page."))
        return keyset_page(qs, ordering=ordering, size=size)


def share_url(request: HttpRequest, link: ShareLink) -> str:
    return request.build_absolute_uri(reverse("share-public", args=[link.token]))


def _add_errors(form: forms.Form, exc: ValidationError) -> None:
    renamed = {"asset": "target", "landing_page": "target", "owner": None}
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            name = renamed.get(field, field)
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


# --- The new-link form ---------------------------------------------------------------------


def _target_of(value: str, assets: dict[int, Asset], pages: dict[int, LandingPage]) -> Any:
    kind, _sep, raw = (value or "").partition(":")
    if not raw.isdigit():
        return None
    return (assets if kind == "asset" else pages if kind == "page" else {}).get(int(raw))


class ShareLinkForm(forms.Form):
    # A plain field with a select: an unknown value gets clean_target's message, not
    # Django's generic "not one of the available choices".
    target = forms.CharField(
        label=gettext_lazy("Content to share"),
        widget=forms.Select,
        error_messages={"required": gettext_lazy("Pick an asset or a landing page from the list.")},
    )
    note = forms.CharField(
        label=gettext_lazy("Note"),
        max_length=services.NOTE_MAX,
        required=False,
        help_text=gettext_lazy(
            "Who the link is for, e.g. “after the expo”. The customer never sees it."
        ),
    )
    campaign = forms.ChoiceField(label=gettext_lazy("Campaign"), required=False)

    def __init__(
        self,
        *args: Any,
        assets: list[Asset],
        pages: list[LandingPage],
        campaigns: list[Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.assets = {a.pk: a for a in assets}
        self.pages = {p.pk: p for p in pages}
        self.campaigns = {c.pk: c for c in campaigns}
        groups: list[Any] = [("", _("— pick what to share —"))]
        if assets:
            groups.append((_("Content library"), [(f"asset:{a.pk}", a.title) for a in assets]))
        if pages:
            groups.append((_("Landing pages"), [(f"page:{p.pk}", p.title) for p in pages]))
        self.fields["target"].widget.choices = groups
        self.fields["campaign"].choices = [("", _("(no campaign)"))] + [  # type: ignore[attr-defined]
            (str(c.pk), f"{c.name} · {c.unit.name}") for c in campaigns
        ]

    def clean_target(self) -> Asset | LandingPage:
        target = _target_of(self.cleaned_data.get("target", ""), self.assets, self.pages)
        if target is None:
            raise ValidationError(_("Pick an asset or a landing page from the list."))
        return target  # type: ignore[no-any-return]

    def clean_campaign(self) -> Any:
        raw = self.cleaned_data.get("campaign") or ""
        return self.campaigns.get(int(raw)) if raw.isdigit() else None


def _link_form(request: HttpRequest, user: User, unit_ids: set[int] | None) -> ShareLinkForm | None:
    if not (user.is_superuser or visible_unit_ids(user, selectors.SHARE)):
        return None
    limit = selectors.CHOICES_LIMIT
    assets = list(selectors.shareable_assets(user=user, unit_ids=unit_ids).order_by("-id")[:limit])
    pages = list(selectors.shareable_pages(user=user, unit_ids=unit_ids).order_by("-id")[:limit])
    campaigns = selectors.campaign_choices(user=user, unit_ids=unit_ids)
    data = request.POST if request.method == "POST" else None
    return ShareLinkForm(data, assets=assets, pages=pages, campaigns=campaigns)


def _create(request: HttpRequest, form: ShareLinkForm) -> ShareLink | None:
    if not form.is_valid():
        return None
    user = user_of(request)
    target = form.cleaned_data["target"]
    try:
        return services.share_link_create(
            owner=user,
            asset=target if isinstance(target, Asset) else None,
            landing_page=target if isinstance(target, LandingPage) else None,
            note=form.cleaned_data["note"],
            campaign=form.cleaned_data["campaign"],
            acting_user=user,
        )
    except ValidationError as exc:
        _add_errors(form, exc)
        return None


# --- Lists and viewer lists (console and lead queue) ---------------------------------------


def _owner_filter(request: HttpRequest, user: User) -> tuple[int | None, bool, str]:
    """(owner id, everyone, the raw choice) from ``?owner=``: only editors may widen it."""
    raw = request.GET.get("owner", "")
    if not selectors.may_see_everyones(user=user):
        return None, False, ""
    if raw == "all":
        return None, True, raw
    if raw.isdigit():
        return int(raw), False, raw
    return None, False, ""


def _rows(user: User, request: HttpRequest, links: list[ShareLink]) -> list[dict[str, Any]]:
    totals = selectors.share_links_totals(user=user, links=links)
    empty = selectors.LinkTotals()
    return [
        {
            "link": link,
            "target": link.asset or link.landing_page,
            "url": share_url(request, link),
            "totals": totals.get(link.pk, empty),
            "read": selectors.duration_label(totals.get(link.pk, empty).seconds),
        }
        for link in links
    ]


def _list(request: HttpRequest, surface: str) -> HttpResponse:
    user = user_of(request)
    if not selectors.may_use_shares(user=user):
        return _forbidden(request)
    unit_ids = page_units(request, selectors.SHARE)
    form = _link_form(request, user, unit_ids)
    if request.method == "POST":
        if form is None:
            return _forbidden(request)
        link = _create(request, form)
        if link is not None:
            messages.success(request, _("Your link is ready: copy it and send it."))
            return redirect(URLS[surface].detail, link.pk)
    owner_id, everyone, owner_raw = _owner_filter(request, user)
    qs = selectors.share_links_list(
        user=user, owner_id=owner_id, everyone=everyone, unit_ids=unit_ids
    )
    page = _page(request, qs, ("-id",), PAGE_SIZE)
    context = surface_context(
        request,
        surface,
        page=page,
        rows=_rows(user, request, page.items),
        form=form,
        urls=URLS[surface],
        owner=owner_raw,
        owners=selectors.owner_choices(user=user) if selectors.may_see_everyones(user=user) else [],
        filter_query=f"owner={owner_raw}&" if owner_raw else "",
    )
    status = 400 if form is not None and form.errors else 200
    return render(request, "content/shares/list.html", context, status=status)


def _link_or_404(request: HttpRequest, pk: int) -> ShareLink:
    link = selectors.share_link_get(user=user_of(request), pk=pk)
    if link is None:
        raise Http404
    return link


def _detail_context(request: HttpRequest, surface: str, link: ShareLink) -> dict[str, Any]:
    user = user_of(request)
    page = _page(
        request, selectors.share_views_list(user=user, link=link), VIEW_ORDERING, VIEWERS_PAGE_SIZE
    )
    totals = selectors.share_link_totals(user=user, link=link)
    viewers = [
        {
            "view": v,
            "read": selectors.duration_label(v.seconds),
            "device": selectors.device_label(v.user_agent),
        }
        for v in page.items
    ]
    return surface_context(
        request,
        surface,
        link=link,
        target=link.asset or link.landing_page,
        url=share_url(request, link),
        totals=totals,
        total_read=selectors.duration_label(totals.seconds),
        page=page,
        viewers=viewers,
        urls=URLS[surface],
        may_manage=services.share_link_may_manage(user=user, link=link),
        # The contact page lives in the console; elsewhere the name is plain text.
        contact_links=Surface.CONSOLE in user_surfaces(user=user),
    )


def _detail(request: HttpRequest, surface: str, pk: int, template: str) -> HttpResponse:
    link = _link_or_404(request, pk)
    return render(request, template, _detail_context(request, surface, link))


def _deactivate(request: HttpRequest, surface: str, pk: int) -> HttpResponse:
    link = _link_or_404(request, pk)
    user = user_of(request)
    if not services.share_link_may_manage(user=user, link=link):
        raise Http404
    services.share_link_deactivate(link=link, acting_user=user)
    messages.success(request, _("The link is switched off; opening it now says it is gone."))
    return redirect(URLS[surface].detail, link.pk)


@surface_required(Surface.CONSOLE)
def share_list(request: HttpRequest) -> HttpResponse:
    return _list(request, Surface.CONSOLE)


@surface_required(Surface.CONSOLE)
def share_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, Surface.CONSOLE, pk, "content/shares/detail.html")


@surface_required(Surface.CONSOLE)
@require_POST
def share_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    return _deactivate(request, Surface.CONSOLE, pk)


@surface_required(Surface.SDR)
def sdr_share_list(request: HttpRequest) -> HttpResponse:
    return _list(request, Surface.SDR)


@surface_required(Surface.SDR)
def sdr_share_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, Surface.SDR, pk, "content/shares/detail.html")


@surface_required(Surface.SDR)
@require_POST
def sdr_share_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    return _deactivate(request, Surface.SDR, pk)


# --- The phone (sales) ---------------------------------------------------------------------


def _m_target(request: HttpRequest, user: User) -> Asset | LandingPage | None:
    kind, _sep, raw = request.POST.get("target", "").partition(":")
    if not raw.isdigit():
        return None
    if kind == "asset":
        return selectors.shareable_assets(user=user).filter(pk=int(raw)).first()
    if kind == "page":
        return selectors.shareable_pages(user=user).filter(pk=int(raw)).first()
    return None


def _m_get_link(request: HttpRequest) -> HttpResponse:
    """One tap: the user's link to this item (made now, or the one they already have)."""
    user = user_of(request)
    target = _m_target(request, user)
    if target is None:
        raise Http404
    kind = "asset" if isinstance(target, Asset) else "page"
    try:
        services.share_link_for(
            owner=user,
            asset=target if isinstance(target, Asset) else None,
            landing_page=target if isinstance(target, LandingPage) else None,
            acting_user=user,
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Your link is ready: tap Copy and paste it into the chat."))
    kept = request.POST.get("cursor", "")
    query = f"?kind={'pages' if kind == 'page' else 'assets'}"
    if kept:
        query += f"&cursor={kept}"
    return redirect(f"{reverse('content:m-shares')}{query}#{kind}-{target.pk}")


@surface_required(Surface.MOBILE)
def m_share_list(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    if not selectors.may_use_shares(user=user):
        return _forbidden(request)
    if request.method == "POST":
        return _m_get_link(request)
    tab = "links" if request.GET.get("tab") == "links" else "content"
    kind = "pages" if request.GET.get("kind") == "pages" else "assets"
    unit_ids = page_units(request, selectors.SHARE)
    context = surface_context(
        request, Surface.MOBILE, tab=tab, kind=kind, urls=URLS[Surface.MOBILE]
    )
    if tab == "links":
        qs = selectors.share_links_list(user=user, unit_ids=unit_ids)
        page = _page(request, qs, ("-id",), PAGE_SIZE)
        context.update(page=page, rows=_rows(user, request, page.items))
        return render(request, "content/shares/m_list.html", context)
    source = (
        selectors.shareable_pages(user=user, unit_ids=unit_ids)
        if kind == "pages"
        else selectors.shareable_assets(user=user, unit_ids=unit_ids)
    )
    page = _page(request, source, ("-id",), PAGE_SIZE)
    ids = [item.pk for item in page.items]
    mine = selectors.my_links_for(
        user=user,
        asset_ids=ids if kind == "assets" else [],
        page_ids=ids if kind == "pages" else [],
    )
    prefix = "page" if kind == "pages" else "asset"
    items = [
        {
            "item": item,
            "anchor": f"{prefix}-{item.pk}",
            "value": f"{prefix}:{item.pk}",
            "link": mine.get((prefix, item.pk)),
        }
        for item in page.items
    ]
    for entry in items:
        if entry["link"] is not None:
            entry["url"] = share_url(request, entry["link"])
    context.update(page=page, items=items, filter_query=f"kind={kind}&")
    return render(request, "content/shares/m_list.html", context)


@surface_required(Surface.MOBILE)
def m_share_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, Surface.MOBILE, pk, "content/shares/m_detail.html")


@surface_required(Surface.MOBILE)
@require_POST
def m_share_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    return _deactivate(request, Surface.MOBILE, pk)


urlpatterns = [
    path("console/shares/", share_list, name="shares"),
    path("console/shares/<int:pk>/", share_detail, name="share-detail"),
    path("console/shares/<int:pk>/deactivate/", share_deactivate, name="share-deactivate"),
    path("sdr/shares/", sdr_share_list, name="sdr-shares"),
    path("sdr/shares/<int:pk>/", sdr_share_detail, name="sdr-share-detail"),
    path("sdr/shares/<int:pk>/deactivate/", sdr_share_deactivate, name="sdr-share-deactivate"),
    path("m/shares/", m_share_list, name="m-shares"),
    path("m/shares/<int:pk>/", m_share_detail, name="m-share-detail"),
    path("m/shares/<int:pk>/deactivate/", m_share_deactivate, name="m-share-deactivate"),
]
