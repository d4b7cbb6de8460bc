"""Leads from other apps' events: form submissions of forms that open leads (content's
submission hook, registered in ``apps.py``). Called inside the caller's transaction; one
bad request is logged and skipped, never the whole chunk."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.db import transaction
from django.utils.translation import gettext as _

from apps.contacts.models import Contact
from apps.content.hooks import LeadRequest
from apps.core.models import BusinessUnit
from apps.sales.models import LeadSource

logger = logging.getLogger(__name__)


def leads_from_submissions(requests: Sequence[LeadRequest]) -> int:
    from apps.sales.services.leads import lead_open

    units = BusinessUnit.objects.in_bulk({r.unit_id for r in requests})
    contacts = Contact.objects.dangerously_unscoped().in_bulk({r.contact_id for r in requests})
    opened = 0
    for request in requests:
        unit, contact = units.get(request.unit_id), contacts.get(request.contact_id)
        if unit is None or contact is None or not unit.is_active:
            continue
        try:
            with transaction.atomic():
                result = lead_open(
                    contact=contact,
                    unit=unit,
                    source=LeadSource.FORM,
                    temperature=request.temperature,
                    channel_id=request.channel_id,
                    campaign_id=request.campaign_id,
                    reason=_("Form “%(form)s”") % {"form": request.form_name},
                )
        except Exception:  # one lead must not lose the chunk's submissions
            logger.exception("lead from form submission %s failed", request.submission_id)
            continue
        opened += int(result.outcome in ("opened", "flagged"))
    return opened


def import_hook(unit_id: int, contact_ids: list[int], temperature: str, import_id: int) -> None:
    """Contacts' import hook: the batch's leads open in a task once the batch commits."""
    from apps.core.tasks import enqueue_on_commit
    from apps.sales.tasks import leads_from_import

    enqueue_on_commit(leads_from_import, unit_id, contact_ids, temperature, import_id)


def leads_from_import(
    *, unit_id: int, contact_ids: list[int], temperature: str, import_id: int
) -> int:
    """One lead per imported contact (dedup as always: existing leads and open
    opportunities are kept, customers flagged)."""
    from apps.sales.services.leads import lead_open

    unit = BusinessUnit.objects.filter(pk=unit_id, is_active=True).first()
    if unit is None:
        return 0
    opened = 0
    contacts = Contact.objects.dangerously_unscoped().filter(pk__in=contact_ids, status="active")
    for contact in contacts.order_by("id"):
        try:
            with transaction.atomic():
                result = lead_open(
                    contact=contact,
                    unit=unit,
                    source=LeadSource.IMPORT,
                    temperature=temperature,
                    reason=_("Import #%(n)s") % {"n": import_id},
                )
        except Exception:
            logger.exception("lead from import %s for contact %s failed", import_id, contact.pk)
            continue
        opened += int(result.outcome in ("opened", "flagged"))
    return opened
