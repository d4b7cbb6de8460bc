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
