"""Public forms: ``/f/<key>/`` (GET shows, POST submits) and ``/f/<key>/embed.js``.

Nobody is logged in and the page must work inside an iframe on other sites, where our
cookies are third-party (not sent): so no session and no Django CSRF cookie. Instead each
rendered form carries a one-time token signed with ``django.core.signing`` (form key,
a nonce, the fields shown, the visitor's anonymous id, and its issue time). A POST without
a valid token for this form is refused; the nonce is the submission's ``token``, so the
same page submitted twice stores one submission (the unique (form, token) constraint).

Embedding: ``?embed=1`` renders without chrome and posts its height to the parent
(``{leadloop: "form-height", height}``). Landing pages embed ``?embed=1&lp=<page id>``
(and ``&sl=<share token>`` from a share link); both are stored on the submission when
they belong to the form's unit. ``embed.js`` is what a marketer pastes on another site:
it adds an auto-resizing iframe and passes the page's address, referrer, UTM and the
site's own ``ll_aid`` (set by t.js there) so the submission joins that visitor's history.

Progressive profiling: a returning visitor is recognised by ``ll_aid`` → anonymous
identity → contact (read only); fields we already know are hidden and at most
``progressive_max`` unknown ones are asked (required first, in form order). Known values
are never shown back (the cookie is not proof of who sits at the browser); "Not you?"
(``?fresh=1``) starts over with a new visitor id.

Views: every GET records a ``page_view`` of object type "form" through the collector's
server-side intake, embedded or not (also inside a landing page, whose own view is a
separate object, ``landing_page``): per-form views and unique visitors then mean the same
wherever the form is shown, and conversion is submissions ÷ unique visitors of the form.

Spam: a honeypot field (filled → stored as spam, the visitor sees the usual thank-you)
and a rate limit per IP and form (the cache; a clear 429 page).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.core import signing
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe

from apps.contacts.collector.server import (
    VISITOR_ID,
    client_ip,
    server_events_store,
    visitor_cookie_set,
    visitor_id,
)
from apps.contacts.collector.utm import UTM_FIELDS, utm_of
from apps.contacts.models import Contact, ContactStatus, Identity, IdentityKind
from apps.contacts.services.resolution import anonymous_owner
from apps.content.form_fields import (
    FormField,
    answers_clean,
    field_catalogue,
    fields_to_ask,
    form_fields,
    known_keys,
)
from apps.content.gating import asset_grant
from apps.content.html import safe_html
from apps.content.models import Asset, Form, FormSubmission, LandingPage, ShareLink
from apps.content.public.pages import SHARE_TOKEN
from apps.content.services.submissions import SubmissionIn, submission_store
from apps.content.tasks.forms import submission_dispatch

logger = logging.getLogger(__name__)

TOKEN_SALT = "content.form-token"  # noqa: S105 - a signing salt, not a secret
# A form left open over a long weekend still submits; older pages are asked to send again.
TOKEN_MAX_AGE = 7 * 24 * 3600
# POSTs per IP and form in a window. Generous: a company's office shares one address.
RATE_LIMIT = 30
RATE_WINDOW_SECONDS = 600
# A retried GET (same visitor, address and referrer) inside this window is one view.
VIEW_RETRY_SECONDS = 60
HONEYPOT = "website"
URL_LIMIT = 2000
_FORM_KEY = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


# --- The one-time page token -----------------------------------------------------------------


@dataclass(frozen=True)
class PageToken:
    nonce: str
    shown: list[str]
    anonymous_id: str
    recognised: bool


def page_token(form: Form, *, shown: list[str], anonymous_id: str, recognised: bool) -> str:
    """A token for one rendering of the form (TimestampSigner: it carries its issue time)."""
    payload = {
        "f": form.key,
        "n": secrets.token_urlsafe(16),
        "s": shown,
        "a": anonymous_id,
        "r": recognised,
    }
    return signing.dumps(payload, salt=TOKEN_SALT, compress=True)


def page_token_check(token: str, form: Form) -> PageToken | None:
    if not token or len(token) > 4000:
        return None
    try:
        data = signing.loads(token, salt=TOKEN_SALT, max_age=TOKEN_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired included
        return None
    if not isinstance(data, dict) or data.get("f") != form.key:
        return None
    nonce, shown, aid = data.get("n"), data.get("s"), data.get("a")
    if not isinstance(nonce, str) or not isinstance(shown, list) or not isinstance(aid, str):
        return None
    return PageToken(nonce, [str(k) for k in shown], aid, bool(data.get("r")))


# --- Who is visiting ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Visitor:
    anonymous_id: str
    set_cookie: bool  # our own first-party cookie (not an id handed over by embed.js)
    contact: Contact | None = None
    identity_kinds: frozenset[str] = frozenset()
    # Known to be somebody: their answers need no email or phone to be matched.
    recognised: bool = False


def _embed(request: HttpRequest) -> bool:
    return request.GET.get("embed") == "1"


def _visitor(request: HttpRequest, form: Form, *, recognise: bool) -> Visitor:
    fresh = request.GET.get("fresh") == "1"
    handed = request.GET.get("aid", "")
    if fresh:
        anonymous_id, set_cookie = str(uuid.uuid4()), True
    elif _embed(request) and VISITOR_ID.match(handed):
        # embed.js on another site hands over that site's t.js visitor id: our own cookie
        # is third-party there and not sent.
        anonymous_id, set_cookie = handed, False
    else:
        anonymous_id, set_cookie = visitor_id(request)[0], True
    if not recognise or fresh:
        return Visitor(anonymous_id, set_cookie)
    contact_id = anonymous_owner(form.unit.parent_id or form.unit_id, anonymous_id)
    if contact_id is None:
        return Visitor(anonymous_id, set_cookie)
    contact = (
        Contact.objects.dangerously_unscoped()
        .filter(pk=contact_id, status=ContactStatus.ACTIVE)
        .first()
    )
    if contact is None:
        return Visitor(anonymous_id, set_cookie)
    kinds = frozenset(
        Identity.objects.dangerously_unscoped()
        .filter(contact_id=contact.pk, kind__in=[IdentityKind.EMAIL, IdentityKind.PHONE])
        .values_list("kind", flat=True)
    )
    return Visitor(anonymous_id, set_cookie, contact, kinds, recognised=True)


# --- Rendering -----------------------------------------------------------------------------------


def _form_or_404(key: str) -> Form:
    if not _FORM_KEY.match(key):
        raise Http404
    # Public: nobody is logged in; the unguessable key is the address.
    form = (
        Form.objects.dangerously_unscoped()
        .select_related("unit", "asset")
        .filter(key=key, is_active=True)
        .first()
    )
    if form is None:
        raise Http404
    return form


def _shown_fields(
    form: Form, fields: list[FormField], visitor: Visitor
) -> tuple[list[FormField], int]:
    """The fields this visitor is asked, and how many were hidden as already known."""
    if not form.progressive:
        return fields, 0
    known: set[str] = set()
    if visitor.contact is not None:
        contact = visitor.contact
        known = known_keys(
            attributes={name: getattr(contact, name, "") for name in _ATTRIBUTES},
            custom=contact.custom or {},
            identity_kinds=visitor.identity_kinds,
            fields=fields,
        )
    shown = fields_to_ask(
        fields,
        known=known,
        recognised=visitor.recognised,
        max_new=form.progressive_max,
    )
    return shown, len(known)


_ATTRIBUTES = ("name", "company_name", "title", "department", "province", "city", "industry")


def _page_address(request: HttpRequest) -> tuple[str, str]:
    """(the page the visitor is on, where they came from). Embedded, the page is the
    parent (embed.js passes it as ``u``; a same-site landing page's iframe sends it as the
    Referer) and the referrer is the parent's (``r``)."""
    if _embed(request):
        page = request.GET.get("u") or request.headers.get("Referer", "")
        return page[:URL_LIMIT], request.GET.get("r", "")[:URL_LIMIT]
    return request.build_absolute_uri()[:URL_LIMIT], request.headers.get("Referer", "")[:URL_LIMIT]


def _utm(request: HttpRequest, page_url: str) -> dict[str, str]:
    explicit = {name: request.GET.get(f"utm_{name}", "") for name in UTM_FIELDS}
    return utm_of(page_url, {k: v for k, v in explicit.items() if v})


def _items(
    fields: list[FormField], values: dict[str, Any], errors: dict[str, str]
) -> list[dict[str, Any]]:
    items = []
    for f in fields:
        raw = values.get(f.key)
        chosen = raw if isinstance(raw, list) else ([] if raw in (None, "") else [str(raw)])
        items.append(
            {
                "field": f,
                "value": raw if isinstance(raw, str) else "",
                "chosen": [str(c) for c in chosen],
                "error": errors.get(f.key, ""),
            }
        )
    return items


def _query(request: HttpRequest, **changes: str | None) -> str:
    params = request.GET.copy()
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else ""


def _render_form(
    request: HttpRequest,
    form: Form,
    *,
    fields: list[FormField],
    visitor: Visitor,
    hidden_known: int,
    hidden: dict[str, str],
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    consent_checked: bool = False,
    message: str = "",
    status: int = 200,
) -> HttpResponse:
    errors = errors or {}
    token = page_token(
        form,
        shown=[f.key for f in fields],
        anonymous_id=visitor.anonymous_id,
        recognised=visitor.recognised,
    )
    action = reverse("form-public", args=[form.key]) + _query(request, fresh=None)
    context = {
        "form": form,
        "embed": _embed(request),
        "title": form.title or _("Form"),
        "intro": safe_html(form.intro) if form.intro else "",
        "items": _items(fields, values or {}, errors),
        "token": token,
        "action": action,
        "hidden": hidden,
        "honeypot": HONEYPOT,
        "consent_html": safe_html(form.consent_text) if form.consent_text else "",
        "consent_checked": consent_checked,
        "consent_error": errors.get("consent", ""),
        "submit_label": form.submit_label or _("Submit"),
        "recognised": visitor.recognised and hidden_known > 0,
        "fresh_url": reverse("form-public", args=[form.key]) + _query(request, fresh="1", aid=None),
        "message": message,
        "has_errors": bool(errors),
    }
    response = render(request, "content/forms/public_form.html", context, status=status)
    add_never_cache_headers(response)  # per visitor: a token, a cookie, a counted view
    if visitor.set_cookie:
        visitor_cookie_set(response, visitor.anonymous_id, request)
    return response


def _view_event_id(request: HttpRequest, form: Form, anonymous_id: str, new: bool) -> str:
    who = f"{client_ip(request)}|{request.headers.get('User-Agent', '')}" if new else anonymous_id
    window = int(time.time() // VIEW_RETRY_SECONDS)
    basis = "|".join(
        [
            "form",
            str(form.pk),
            who,
            request.get_full_path(),
            request.headers.get("Referer", ""),
            str(window),
        ]
    )
    return f"fv-{hashlib.sha256(basis.encode('utf-8', 'replace')).hexdigest()[:40]}"


def _record_view(
    request: HttpRequest, form: Form, visitor: Visitor, page_url: str, referrer: str
) -> None:
    new = visitor.set_cookie and visitor_id(request)[1]
    properties: dict[str, Any] = {"form": form.name}
    if _embed(request):
        properties["embedded"] = True
    lp = _int(request.GET.get("lp"))
    if lp:
        properties["landing_page"] = lp
    share = request.GET.get("sl", "")
    if SHARE_TOKEN.match(share):
        properties["share_token"] = share
    event: dict[str, Any] = {
        "type": "page_view",
        "id": _view_event_id(request, form, visitor.anonymous_id, new),
        "url": page_url,
        "referrer": referrer,
        "title": (form.title or form.name)[:300],
        "object_type": "form",
        "object_id": str(form.pk),
        "properties": properties,
    }
    utm = _utm(request, page_url)
    if utm:
        event["utm"] = utm
    try:
        server_events_store(
            unit_id=form.unit_id, anonymous_id=visitor.anonymous_id, events=[event], request=request
        )
    except Exception:  # a lost view count must not cost the visitor the form
        logger.exception("form %s: the page view could not be stored", form.pk)


def _int(raw: Any) -> int | None:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return None
    return value if 0 < value < 2**63 else None


def _hidden(request: HttpRequest) -> dict[str, str]:
    """The hidden fields: UTM and where the visitor was, taken from the page's address."""
    page_url, referrer = _page_address(request)
    hidden = {f"utm_{k}": v for k, v in _utm(request, page_url).items()}
    hidden.update(page_url=page_url, referrer=referrer)
    return hidden


# --- Submitting ----------------------------------------------------------------------------------


def _rate_limited(form: Form, ip: str | None) -> bool:
    window = int(time.time() // RATE_WINDOW_SECONDS)
    key = f"forms:rate:{form.pk}:{ip or 'unknown'}:{window}"
    try:
        cache.add(key, 0, RATE_WINDOW_SECONDS + 5)
        count = cache.incr(key)
    except Exception:  # without the cache, nobody is limited (and nothing lost)
        logger.warning("forms: cache unavailable for the rate limit", exc_info=True)
        return False
    return int(count) > RATE_LIMIT


def _posted_answers(request: HttpRequest, fields: list[FormField]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for f in fields:
        values = request.POST.getlist(f.input_name)
        raw[f.key] = values if f.type == "multi_choice" else (values[0] if values else "")
    return raw


def _landing_page_id(request: HttpRequest, form: Form) -> int | None:
    lp = _int(request.GET.get("lp") or request.POST.get("lp"))
    if lp is None:
        return None
    exists = LandingPage.objects.dangerously_unscoped().filter(pk=lp, unit_id=form.unit_id).exists()
    return lp if exists else None


def _share_link_id(request: HttpRequest, form: Form) -> int | None:
    token = request.GET.get("sl") or request.POST.get("sl") or ""
    if not SHARE_TOKEN.match(token):
        return None
    return (
        ShareLink.objects.dangerously_unscoped()
        .filter(token=token, unit_id=form.unit_id)
        .values_list("id", flat=True)
        .first()
    )


def _posted_hidden(request: HttpRequest) -> dict[str, str]:
    hidden = {
        f"utm_{k}": request.POST.get(f"utm_{k}", "").strip()[:200]
        for k in UTM_FIELDS
        if request.POST.get(f"utm_{k}", "").strip()
    }
    hidden["page_url"] = request.POST.get("page_url", "")[:URL_LIMIT]
    hidden["referrer"] = request.POST.get("referrer", "")[:URL_LIMIT]
    return hidden


def _gated_asset(request: HttpRequest, form: Form) -> Asset | None:
    """The asset the visitor came to download (``?asset=<key>``, sent by the asset's own
    gate redirect), when this form is that asset's gate; else None."""
    key = request.GET.get("asset") or request.POST.get("asset") or ""
    if not key or len(key) > 40:
        return None
    return (
        Asset.objects.dangerously_unscoped()
        .filter(key=key, unit_id=form.unit_id, gate_form_id=form.pk, is_active=True)
        .first()
    )


def _thanks(
    request: HttpRequest, form: Form, submission: FormSubmission, visitor: Visitor | None
) -> HttpResponse:
    download_url = ""
    asset = _gated_asset(request, form) or form.asset
    spam = submission.status == "spam"
    if asset is not None and asset.is_active and not spam:
        grant = asset_grant(asset.key, submission.pk)
        download_url = f"/a/{asset.key}/?{urlencode({'g': grant})}"
    redirect_url = (
        form.redirect_url if form.redirect_url.startswith(("http://", "https://")) else ""
    )
    if redirect_url and not download_url and not _embed(request):
        response: HttpResponse = HttpResponseRedirect(redirect_url, status=303)
    else:
        context = {
            "form": form,
            "embed": _embed(request),
            "title": form.title or _("Form"),
            "message": safe_html(form.success_message) if form.success_message else "",
            "download_url": download_url,
            "asset": asset if download_url else None,
            "redirect_url": redirect_url,
            # With a download waiting, the visitor moves on by the link, not at once.
            "auto_redirect": bool(redirect_url) and not download_url,
        }
        response = render(request, "content/forms/public_thanks.html", context)
    add_never_cache_headers(response)
    if visitor is not None and visitor.set_cookie and not _embed(request):
        visitor_cookie_set(response, visitor.anonymous_id, request)
    return response


def _submit(request: HttpRequest, form: Form) -> HttpResponse:
    ip = client_ip(request)
    if _rate_limited(form, ip):
        response = render(
            request,
            "content/forms/public_limited.html",
            {"form": form, "embed": _embed(request), "title": form.title or _("Form")},
            status=429,
        )
        response["Retry-After"] = str(RATE_WINDOW_SECONDS)
        return response
    catalogue = field_catalogue(form.unit_id)
    all_fields = form_fields(form.fields, catalogue)
    checked = page_token_check(request.POST.get("token", ""), form)
    hidden = _posted_hidden(request)
    if checked is None:
        # An old or forged page: show the form again (fresh token), keep what was typed.
        visitor = _visitor(request, form, recognise=form.progressive)
        fields, hidden_known = _shown_fields(form, all_fields, visitor)
        return _render_form(
            request,
            form,
            fields=fields,
            visitor=visitor,
            hidden_known=hidden_known,
            hidden=hidden,
            values=_posted_answers(request, fields),
            message=_("This page was open for a long time. Check your answers and send again."),
            status=400,
        )
    shown = set(checked.shown)
    fields = [f for f in all_fields if f.key in shown]
    visitor = Visitor(
        checked.anonymous_id, set_cookie=not _embed(request), recognised=checked.recognised
    )
    answers = _posted_answers(request, fields)
    if request.POST.get(HONEYPOT, "").strip():
        # A bot filled the field people cannot see: keep it (as spam) and say thank you.
        data = {k: (v[:500] if isinstance(v, str) else v) for k, v in answers.items() if v}
        stored = submission_store(
            form=form,
            submission=SubmissionIn(
                token=checked.nonce,
                data=data,
                anonymous_id=checked.anonymous_id,
                page_url=hidden["page_url"],
                referrer=hidden["referrer"],
                ip=ip,
                user_agent=request.headers.get("User-Agent", ""),
                spam=True,
            ),
        )
        return _thanks(request, form, stored.submission, None)
    data, errors = answers_clean(fields, answers, identity_needed=not checked.recognised)
    consent = request.POST.get("consent") == "1"
    if form.consent_required and form.consent_text and not consent:
        errors["consent"] = _("Please tick the box to agree, so we may contact you.")
    if errors:
        return _render_form(
            request,
            form,
            fields=fields,
            visitor=visitor,
            hidden_known=0,
            hidden=hidden,
            values=answers,
            errors=errors,
            consent_checked=consent,
            message=_("Please correct the fields marked below."),
            status=400,
        )
    utm = {k[4:]: v for k, v in hidden.items() if k.startswith("utm_")}
    stored = submission_store(
        form=form,
        submission=SubmissionIn(
            token=checked.nonce,
            data=data,
            consent=consent and bool(form.consent_text),
            anonymous_id=checked.anonymous_id,
            page_url=hidden["page_url"],
            referrer=hidden["referrer"],
            utm=utm,
            ip=ip,
            user_agent=request.headers.get("User-Agent", ""),
            landing_page_id=_landing_page_id(request, form),
            share_link_id=_share_link_id(request, form),
        ),
    )
    if stored.created:
        submission_dispatch(stored.submission.pk)
    return _thanks(request, form, stored.submission, visitor)


@csrf_exempt  # the signed one-time page token stands in for the CSRF cookie (see above)
@xframe_options_exempt  # made to be embedded, on landing pages and other sites
@require_http_methods(["GET", "HEAD", "POST"])
def form_public(request: HttpRequest, key: str) -> HttpResponse:
    try:
        form = _form_or_404(key)
    except Http404:
        response = render(request, "content/forms/public_unavailable.html", {}, status=404)
        add_never_cache_headers(response)
        return response
    if request.method == "POST":
        return _submit(request, form)
    visitor = _visitor(request, form, recognise=form.progressive)
    fields, hidden_known = _shown_fields(
        form, form_fields(form.fields, field_catalogue(form.unit_id)), visitor
    )
    hidden = _hidden(request)
    if request.method == "GET":
        _record_view(request, form, visitor, hidden["page_url"], hidden["referrer"])
    return _render_form(
        request, form, fields=fields, visitor=visitor, hidden_known=hidden_known, hidden=hidden
    )


@require_safe
def form_embed_script(request: HttpRequest, key: str) -> HttpResponse:
    if not _FORM_KEY.match(key):
        raise Http404
    form = Form.objects.dangerously_unscoped().filter(key=key, is_active=True).first()
    if form is None:
        response = HttpResponse(
            "/* LeadLoop: no such form */\n",
            content_type="text/javascript; charset=utf-8",
            status=404,
        )
        return response
    script = render_to_string(
        "content/forms/embed.js",
        {
            "form_url": request.build_absolute_uri(reverse("form-public", args=[form.key])),
            "title": form.title or _("Form"),
        },
    )
    response = HttpResponse(script, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


urlpatterns = [
    path("f/<str:key>/", form_public, name="form-public"),
    path("f/<str:key>/embed.js", form_embed_script, name="form-embed-script"),
]
