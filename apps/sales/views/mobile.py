"""The salesperson's phone (``/m/…``): MQLs to accept or reject, my leads, one lead's 360
view with follow-ups, stage moves, tags and content to share, and my opportunities.

Only leads and deals I own exist here: anyone else's is a 404, for GET and POST alike.
Views parse, call one service, and re-render the page with the service's message (400)
when it refuses.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from apps.contacts.services.contacts import contact_tags_change
from apps.core.pagination import InvalidCursor
from apps.core.roles import Surface
from apps.core.scoping import visible_unit_ids
from apps.core.web import surface_context, surface_required, user_of
from apps.sales.models import FollowUpKind, Lead, Opportunity, Stage
from apps.sales.selectors import mobile as selectors
from apps.sales.selectors.leads import leads_visible
from apps.sales.services import leads as services
from apps.sales.services.opportunities import (
    OPEN_STAGES,
    opportunity_create,
    opportunity_update,
)
from apps.sales.services.stages import allowed_moves, needs_reason

# What a salesperson may do to a lead from the phone (the table decides what is legal now).
MOVES = (Stage.SQL, Stage.MIL, Stage.RECYCLED, Stage.DISQUALIFIED)
MOVE_LABELS = {
    Stage.SQL: gettext_lazy("Qualify as SQL"),
    Stage.MIL: gettext_lazy("Return to the SDR"),
    Stage.RECYCLED: gettext_lazy("Recycle (nurture again)"),
    Stage.DISQUALIFIED: gettext_lazy("Disqualify"),
}
FOLLOW_UP_KINDS = (FollowUpKind.CALL, FollowUpKind.VISIT, FollowUpKind.WECOM, FollowUpKind.MEETING)
ASSETS_SHOWN = 5


def _forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "core/forbidden.html", {"surface": _("Sales")}, status=403)


def _may_sell(request: HttpRequest) -> bool:
    user = user_of(request)
    return bool(user.is_superuser or visible_unit_ids(user, selectors.SELL))


def _errors_of(exc: ValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {k: list(v) for k, v in exc.message_dict.items()}
    return {"__all__": list(exc.messages)}


def _add_errors(form: forms.Form, exc: ValidationError) -> None:
    for name, errors in _errors_of(exc).items():
        form.add_error(name if name in form.fields else None, errors)


def _cursor(request: HttpRequest) -> str | None:
    return request.GET.get("cursor") or None


def _page(request: HttpRequest, fetch: Any, **kwargs: Any) -> selectors.Page:
    try:
        return fetch(cursor=_cursor(request), **kwargs)  # type: ignore[no-any-return]
    except InvalidCursor:
        messages.warning(request, _("That page link is no longer valid; showing the first page."))
        return fetch(cursor=None, **kwargs)  # type: ignore[no-any-return]


# --- Forms ----------------------------------------------------------------------------------


class RejectForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Why do you reject it?"),
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": gettext_lazy("Say why you reject it: the SDR needs to know.")},
    )


class FollowUpForm(forms.Form):
    kind = forms.ChoiceField(
        label=gettext_lazy("What"),
        choices=[(k.value, k.label) for k in FOLLOW_UP_KINDS],
        initial=FollowUpKind.CALL,
        widget=forms.RadioSelect,
    )
    note = forms.CharField(
        label=gettext_lazy("Note"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    next_step = forms.CharField(label=gettext_lazy("Next step"), required=False, max_length=300)
    next_step_at = forms.DateTimeField(
        label=gettext_lazy("Next step on"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": gettext_lazy("Pick a date and time for the next step.")},
    )


class MoveForm(forms.Form):
    to = forms.ChoiceField(label=gettext_lazy("Move to"))
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        required=False,
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("Needed to return, recycle or disqualify."),
    )

    def __init__(self, *args: Any, moves: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["to"].choices = [(m, MOVE_LABELS[Stage(m)]) for m in moves]  # type: ignore[attr-defined]
        self.fields["to"].error_messages["invalid_choice"] = _(
            "That move is not possible from this stage."
        )


class OpportunityForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200, required=False)
    amount = forms.CharField(
        label=gettext_lazy("Amount (CNY)"),
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    stage = forms.ChoiceField(label=gettext_lazy("Stage"))
    expected_close = forms.CharField(
        label=gettext_lazy("Expected close"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    products = forms.CharField(
        label=gettext_lazy("Products"),
        required=False,
        help_text=gettext_lazy("Separate with commas."),
    )
    lost_reason = forms.CharField(
        label=gettext_lazy("Why was it lost?"),
        required=False,
        max_length=300,
        help_text=gettext_lazy("Needed when the stage is Lost."),
    )

    def __init__(self, *args: Any, creating: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stages = OPEN_STAGES if creating else Opportunity.Stage.values
        self.fields["stage"].choices = [  # type: ignore[attr-defined]
            (s, Opportunity.Stage(s).label) for s in stages
        ]
        if creating:
            del self.fields["lost_reason"]
        else:
            del self.fields["name"]


def _opportunity_initial(opp: Opportunity) -> dict[str, Any]:
    return {
        "amount": opp.amount,
        "stage": opp.stage,
        "expected_close": opp.expected_close.isoformat() if opp.expected_close else "",
        "products": ", ".join(opp.products or []),
        "lost_reason": opp.lost_reason,
    }


# --- Inbox: MQLs to accept --------------------------------------------------------------------


def _inbox(
    request: HttpRequest, *, reject_form: RejectForm | None = None, reject_pk: int | None = None
) -> HttpResponse:
    user = user_of(request)
    page = _page(request, selectors.inbox_leads, user=user)
    context = surface_context(
        request,
        Surface.MOBILE,
        page=page,
        now=timezone.now(),
        reject_form=reject_form,
        reject_pk=reject_pk,
    )
    status = 400 if reject_form is not None and reject_form.errors else 200
    return render(request, "sales/mobile/inbox.html", context, status=status)


@surface_required(Surface.MOBILE)
def m_inbox(request: HttpRequest) -> HttpResponse:
    if not _may_sell(request):
        return _forbidden(request)
    return _inbox(request)


def _my_lead(request: HttpRequest, pk: int) -> Lead:
    lead = selectors.my_lead_get(user=user_of(request), pk=pk)
    if lead is None:
        raise Http404
    return lead


@surface_required(Surface.MOBILE)
@require_POST
def m_lead_accept(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _my_lead(request, pk)
    try:
        services.lead_accept(lead=lead, actor=user_of(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("sales:m-inbox")
    messages.success(request, _("Accepted: %(name)s is yours now.") % {"name": _contact_name(lead)})
    return redirect("sales:m-lead", lead.pk)


@surface_required(Surface.MOBILE)
@require_POST
def m_lead_reject(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _my_lead(request, pk)
    form = RejectForm(request.POST)
    if form.is_valid():
        try:
            services.lead_reject(
                lead=lead, actor=user_of(request), reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(
                request,
                _("Sent back to the SDR: %(name)s.") % {"name": _contact_name(lead)},
            )
            return redirect("sales:m-inbox")
    return _inbox(request, reject_form=form, reject_pk=lead.pk)


def _contact_name(lead: Lead) -> str:
    contact = lead.contact
    return contact.name or contact.company_name or _("Contact #%(id)d") % {"id": contact.pk}


# --- My leads ---------------------------------------------------------------------------------


def _short_stage(stage: str) -> str:
    """The filter chip's label: the acronym (the same in every language) or the word."""
    if stage == Stage.OPPORTUNITY:
        return str(Stage.OPPORTUNITY.label)
    return stage.upper()


@surface_required(Surface.MOBILE)
def m_leads(request: HttpRequest) -> HttpResponse:
    if not _may_sell(request):
        return _forbidden(request)
    stage = request.GET.get("stage", "")
    if stage not in selectors.LEAD_FILTER_STAGES:
        stage = ""
    page = _page(request, selectors.my_leads, user=user_of(request), stage=stage)
    context = surface_context(
        request,
        Surface.MOBILE,
        page=page,
        now=timezone.now(),
        stage=stage,
        stages=[(s, _short_stage(s)) for s in selectors.LEAD_FILTER_STAGES],
        filter_query=f"stage={stage}&" if stage else "",
    )
    return render(request, "sales/mobile/leads.html", context)


# --- One lead ---------------------------------------------------------------------------------


def _stage_label(value: str) -> str:
    return str(Stage(value).label) if value in Stage.values else value


def _moves(lead: Lead) -> list[str]:
    if not lead.is_open:
        return []
    legal = set(allowed_moves(lead))
    return [m for m in MOVES if m in legal]


def _lead_page(
    request: HttpRequest, lead: Lead, *, status: int = 200, **bound: Any
) -> HttpResponse:
    user = user_of(request)
    open_panel = bound.pop("open_panel", "")
    moves = _moves(lead)
    parts = selectors.lead_360(user=user, lead=lead)
    assets: list[Any] = []
    from apps.content.selectors import shares as share_selectors

    may_share = share_selectors.may_use_shares(user=user)
    if may_share:
        assets = list(share_selectors.shareable_assets(user=user).order_by("-id")[:ASSETS_SHOWN])
    forms_ = {
        "follow_up_form": FollowUpForm(),
        "move_form": MoveForm(moves=moves) if moves else None,
        "opportunity_form": OpportunityForm(
            creating=True,
            initial={
                "name": lead.contact.company_name or _contact_name(lead),
                "stage": Opportunity.Stage.DISCOVERY,
                "products": lead.product_interest,
            },
        )
        if lead.stage == Stage.SQL
        else None,
    }
    forms_.update(bound)
    context = surface_context(
        request,
        Surface.MOBILE,
        lead=lead,
        contact=lead.contact,
        now=timezone.now(),
        parts=parts,
        history=[
            {
                "row": h,
                "from_label": _stage_label(h.from_value),
                "to_label": _stage_label(h.to_value),
            }
            for h in parts.history
        ],
        score=selectors.lead_score(user=user, lead=lead),
        behaviour=selectors.recent_behaviour(user=user, lead=lead),
        in_inbox=lead.stage in selectors.INBOX_STAGES and lead.handed_at is not None,
        reasons_needed=[m for m in moves if needs_reason(lead.stage, m)],
        may_share=may_share,
        assets=assets,
        open_panel=open_panel,
        **forms_,
    )
    return render(request, "sales/mobile/lead.html", context, status=status)


@surface_required(Surface.MOBILE)
def m_lead(request: HttpRequest, pk: int) -> HttpResponse:
    return _lead_page(request, _my_lead(request, pk))


@surface_required(Surface.MOBILE)
@require_POST
def m_lead_follow_up(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _my_lead(request, pk)
    form = FollowUpForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.follow_up_log(
                lead=lead,
                actor=user_of(request),
                kind=data["kind"],
                note=data["note"],
                next_step=data["next_step"],
                next_step_at=data["next_step_at"],
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Follow-up logged."))
            return redirect("sales:m-lead", lead.pk)
    return _lead_page(request, lead, status=400, follow_up_form=form, open_panel="follow-up")


@surface_required(Surface.MOBILE)
@require_POST
def m_lead_move(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _my_lead(request, pk)
    form = MoveForm(request.POST, moves=_moves(lead))
    if form.is_valid():
        to = form.cleaned_data["to"]
        try:
            services.lead_move(
                lead=lead, to_stage=to, actor=user_of(request), reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Moved to %(stage)s.") % {"stage": Stage(to).label})
            if to == Stage.SQL:
                return redirect("sales:m-lead", lead.pk)
            # Returned, recycled or disqualified: no longer mine.
            return redirect("sales:m-leads")
    return _lead_page(request, lead, status=400, move_form=form, open_panel="move")


@surface_required(Surface.MOBILE)
@require_POST
def m_lead_tags(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _my_lead(request, pk)
    user = user_of(request)
    adding = "add" in request.POST
    tag = selectors.unit_tag_get(
        user=user, lead=lead, pk=request.POST.get("add") or request.POST.get("remove")
    )
    if tag is None:
        messages.error(request, _("Pick one of the unit's tags."))
        return redirect("sales:m-lead", lead.pk)
    contact_tags_change(
        contact=lead.contact,
        add=[tag] if adding else [],
        remove=[] if adding else [tag],
        acting_user=user,
    )
    if adding:
        messages.success(request, _("Tagged “%(tag)s”.") % {"tag": tag.name})
    else:
        messages.success(request, _("Took off “%(tag)s”.") % {"tag": tag.name})
    return redirect("sales:m-lead", lead.pk)


@surface_required(Surface.MOBILE)
@require_POST
def m_lead_opportunity(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _my_lead(request, pk)
    form = OpportunityForm(request.POST, creating=True)
    if form.is_valid():
        try:
            opp = opportunity_create(lead=lead, actor=user_of(request), data=form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Opportunity opened."))
            return redirect("sales:m-opportunity", opp.pk)
    return _lead_page(request, lead, status=400, opportunity_form=form, open_panel="opportunity")


# --- Deals ------------------------------------------------------------------------------------


@surface_required(Surface.MOBILE)
def m_opportunities(request: HttpRequest) -> HttpResponse:
    if not _may_sell(request):
        return _forbidden(request)
    page = _page(request, selectors.my_opportunities, user=user_of(request))
    context = surface_context(request, Surface.MOBILE, page=page)
    return render(request, "sales/mobile/opportunities.html", context)


@surface_required(Surface.MOBILE)
def m_opportunity(request: HttpRequest, pk: int) -> HttpResponse:
    opp = selectors.my_opportunity_get(user=user_of(request), pk=pk)
    if opp is None:
        raise Http404
    status = 200
    if request.method == "POST":
        form = OpportunityForm(request.POST, creating=False)
        if form.is_valid():
            try:
                opportunity_update(opportunity=opp, actor=user_of(request), data=form.cleaned_data)
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, _("Saved."))
                return redirect("sales:m-opportunity", opp.pk)
        status = 400
    else:
        form = OpportunityForm(creating=False, initial=_opportunity_initial(opp))
    leads = list(
        leads_visible(user=user_of(request), permission=selectors.SELL)
        .filter(opportunity=opp)
        .select_related("contact")
        .order_by("id")[:20]
    )
    context = surface_context(request, Surface.MOBILE, opp=opp, form=form, leads=leads)
    return render(request, "sales/mobile/opportunity.html", context, status=status)


urlpatterns = [
    path("m/inbox/", m_inbox, name="m-inbox"),
    path("m/leads/", m_leads, name="m-leads"),
    path("m/leads/<int:pk>/", m_lead, name="m-lead"),
    path("m/leads/<int:pk>/accept/", m_lead_accept, name="m-lead-accept"),
    path("m/leads/<int:pk>/reject/", m_lead_reject, name="m-lead-reject"),
    path("m/leads/<int:pk>/follow-up/", m_lead_follow_up, name="m-lead-follow-up"),
    path("m/leads/<int:pk>/move/", m_lead_move, name="m-lead-move"),
    path("m/leads/<int:pk>/tags/", m_lead_tags, name="m-lead-tags"),
    path("m/leads/<int:pk>/opportunity/", m_lead_opportunity, name="m-lead-opportunity"),
    path("m/deals/", m_opportunities, name="m-opportunities"),
    path("m/deals/<int:pk>/", m_opportunity, name="m-opportunity"),
]
