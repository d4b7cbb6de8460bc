"""API shapes for leads, opportunities, webhooks and CRM updates.

Serializers here only shape and check the form of input; the rules live in the services
(``services.leads``, ``services.opportunities``, ``services.crm``).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from apps.contacts.models import IdentityKind
from apps.core.api_base import VisibleUnitField
from apps.sales.models import (
    CrmInbound,
    FollowUp,
    FollowUpKind,
    Lead,
    LeadHistory,
    LeadTemperature,
    Opportunity,
    Stage,
    WebhookDelivery,
    WebhookEndpoint,
)
from apps.sales.services.webhooks import EVENTS

# --- Leads ----------------------------------------------------------------------------------


class LeadHistorySerializer(serializers.ModelSerializer[LeadHistory]):
    by = serializers.CharField(source="actor_label")

    class Meta:
        model = LeadHistory
        fields = ["id", "kind", "from_value", "to_value", "actor", "by", "reason", "at"]
        read_only_fields = fields


STAGE_HELP = "mal, mil, mql, tql, sal, sql, opportunity, customer, recycled or disqualified."
FOLLOW_UP_HELP = "call, visit, wecom, meeting, email or note."


class LeadSerializer(serializers.ModelSerializer[Lead]):
    stage = serializers.CharField(read_only=True, help_text=STAGE_HELP)
    contact_name = serializers.CharField(source="contact.name", read_only=True)
    company_name = serializers.CharField(source="contact.company_name", read_only=True)

    class Meta:
        model = Lead
        fields = [
            "id",
            "unit",
            "contact",
            "contact_name",
            "company_name",
            "stage",
            "temperature",
            "score",
            "source",
            "tier",
            "company_size",
            "product_interest",
            "budget",
            "authority",
            "need",
            "timeline",
            "sdr",
            "owner",
            "opportunity",
            "needs_review",
            "review_reason",
            "reason",
            "sla_clock",
            "sla_due_at",
            "next_step_at",
            "handed_at",
            "accepted_at",
            "external_id",
            "stage_changed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class LeadDetailSerializer(LeadSerializer):
    history = serializers.SerializerMethodField()

    class Meta(LeadSerializer.Meta):
        fields = [*LeadSerializer.Meta.fields, "history"]
        read_only_fields = fields

    def get_history(self, obj: Lead) -> list[dict[str, Any]]:
        rows = sorted(
            (h for h in obj.history.all() if h.kind == "stage"), key=lambda h: (h.at, h.id)
        )
        return LeadHistorySerializer(rows, many=True).data  # type: ignore[return-value]


class LeadIdentitySerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(
        choices=[IdentityKind.EMAIL, IdentityKind.PHONE, IdentityKind.WECOM, IdentityKind.CRM]
    )
    value = serializers.CharField(max_length=254)


class LeadCreateSerializer(serializers.Serializer[Any]):
    """A lead for a known contact (``contact``) or for the person these identities name
    (``identities``, found or created by identity resolution)."""

    unit = VisibleUnitField()
    contact = serializers.IntegerField(required=False, min_value=1)
    identities = LeadIdentitySerializer(many=True, required=False)
    name = serializers.CharField(required=False, max_length=100, allow_blank=True)
    company_name = serializers.CharField(required=False, max_length=200, allow_blank=True)
    stage = serializers.ChoiceField(
        choices=[Stage.MAL, Stage.MIL, Stage.MQL], required=False, allow_null=True
    )
    temperature = serializers.ChoiceField(
        choices=LeadTemperature.choices, required=False, allow_null=True
    )
    external_id = serializers.CharField(
        required=False, max_length=100, allow_blank=True, allow_null=True
    )
    reason = serializers.CharField(required=False, max_length=300, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("contact") and not attrs.get("identities"):
            raise serializers.ValidationError(
                {
                    "contact": [
                        _("Give the contact's id, or identities (email, phone…) to find them by.")
                    ]
                }
            )
        if attrs.get("contact") and attrs.get("identities"):
            raise serializers.ValidationError(
                {"identities": [_("Give either the contact's id or identities, not both.")]}
            )
        return attrs


class LeadUpdateSerializer(serializers.Serializer[Any]):
    """What PATCH may change: BANT, routing facts, temperature and the CRM id. Values are
    checked by ``services.leads.lead_update`` (one message per field)."""

    budget = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    authority = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    need = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    timeline = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    temperature = serializers.CharField(required=False)
    tier = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    company_size = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    product_interest = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    external_id = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=100
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {name: [_("This field cannot be changed here.")] for name in unknown}
            )
        return attrs


class TransitionSerializer(serializers.Serializer[Any]):
    stage = serializers.CharField(max_length=20)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")


class HandoffSerializer(serializers.Serializer[Any]):
    owner = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    note = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")


class RejectSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(allow_blank=True, max_length=300)


class FollowUpInSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=FollowUpKind.choices)
    note = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")
    next_step = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")
    next_step_at = serializers.DateTimeField(required=False, allow_null=True)


class FollowUpSerializer(serializers.ModelSerializer[FollowUp]):
    kind = serializers.CharField(read_only=True, help_text=FOLLOW_UP_HELP)

    class Meta:
        model = FollowUp
        fields = ["id", "lead", "user", "kind", "note", "next_step", "next_step_at", "occurred_at"]
        read_only_fields = fields


# --- Opportunities --------------------------------------------------------------------------


class OpportunitySerializer(serializers.ModelSerializer[Opportunity]):
    leads = serializers.SerializerMethodField()

    class Meta:
        model = Opportunity
        fields = [
            "id",
            "unit",
            "name",
            "company_name",
            "contact",
            "owner",
            "stage",
            "amount",
            "currency",
            "expected_close",
            "products",
            "lost_reason",
            "external_id",
            "closed_at",
            "created_at",
            "updated_at",
            "leads",
        ]
        read_only_fields = fields

    def get_leads(self, obj: Opportunity) -> list[int]:
        return sorted(lead.pk for lead in obj.leads.all())


class OpportunityInSerializer(serializers.Serializer[Any]):
    """The opportunity's fields; values are checked by ``opportunity_clean``."""

    name = serializers.CharField(required=False, allow_blank=True)
    amount = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    stage = serializers.CharField(required=False)
    expected_close = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    products = serializers.JSONField(required=False)
    lost_reason = serializers.CharField(required=False, allow_blank=True)
    external_id = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=100
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        allowed = set(self.fields) | set(getattr(self, "extra_allowed", ()))
        unknown = sorted(set(self.initial_data) - allowed)
        if unknown:
            raise serializers.ValidationError(
                {name: [_("This field cannot be changed here.")] for name in unknown}
            )
        return attrs


class OpportunityCreateSerializer(OpportunityInSerializer):
    lead = serializers.IntegerField(min_value=1)


class OpportunityUpsertSerializer(OpportunityInSerializer):
    unit = VisibleUnitField()
    lead = serializers.IntegerField(required=False, allow_null=True, min_value=1)


# --- Webhooks -------------------------------------------------------------------------------


class WebhookEndpointSerializer(serializers.ModelSerializer[WebhookEndpoint]):
    unit = VisibleUnitField()
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENTS), required=False, allow_empty=True
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "unit", "name", "url", "events", "is_active", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_url(self, value: str) -> str:
        if not value.lower().startswith(("https://", "http://")):
            raise serializers.ValidationError(_("Use an http:// or https:// address."))
        return value

    def validate_events(self, value: list[str]) -> list[str]:
        return sorted(set(value))

    def validate_unit(self, value: Any) -> Any:
        if self.instance is not None and value.pk != self.instance.unit_id:
            raise serializers.ValidationError(_("A webhook stays in its business unit."))
        return value


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    """The answer to creating one: the only time the signing secret is shown."""

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = [*WebhookEndpointSerializer.Meta.read_only_fields, "secret"]


class WebhookDeliverySerializer(serializers.ModelSerializer[WebhookDelivery]):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "event_id",
            "event",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "delivered_at",
        ]
        read_only_fields = fields


# --- CRM inbound ----------------------------------------------------------------------------


class CrmUpdateInSerializer(serializers.Serializer[Any]):
    unit = VisibleUnitField()
    event_id = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=["lead_status", "opportunity"])
    external_id = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=100
    )
    lead = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    data = serializers.DictField()  # type: ignore[assignment]  # DRF pops declared fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["kind"] == "lead_status" and not (attrs.get("external_id") or attrs.get("lead")):
            raise serializers.ValidationError(
                {"external_id": [_("Name the lead: its CRM id (external_id) or our id (lead).")]}
            )
        if attrs["kind"] == "opportunity" and not attrs.get("external_id"):
            raise serializers.ValidationError(
                {"external_id": [_("Give the opportunity's CRM id.")]}
            )
        return attrs


class CrmInboundSerializer(serializers.ModelSerializer[CrmInbound]):
    message = serializers.SerializerMethodField()

    class Meta:
        model = CrmInbound
        fields = [
            "id",
            "unit",
            "event_id",
            "kind",
            "status",
            "message",
            "result",
            "received_at",
            "processed_at",
        ]
        read_only_fields = fields

    def get_message(self, obj: CrmInbound) -> str:
        return str((obj.result or {}).get("message", ""))
