"""Reads for the tracked-sites pages: only sites of units where the user holds
``contacts.configure``."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from apps.contacts.models import RawBatch, Site
from apps.core.models import User

CONFIGURE = "contacts.configure"


def _with_last_received(qs: QuerySet[Site], *, user: User, permission: str) -> QuerySet[Site]:
    """Each site with ``last_received_at``, when its latest batch arrived (one probe of the
    ``rawbatch_site`` index per site), so a page shows whether the snippet works."""
    latest = (
        RawBatch.objects.visible_to(user, permission)
        .filter(site=OuterRef("pk"))
        .order_by("-received_at")
        .values("received_at")[:1]
    )
    return qs.annotate(last_received_at=Subquery(latest))


def sites_of(*, user: User, unit_id: int, permission: str = CONFIGURE) -> QuerySet[Site]:
    qs = Site.objects.visible_to(user, permission).filter(unit_id=unit_id)
    return _with_last_received(qs, user=user, permission=permission)


def site_get(*, user: User, pk: int, permission: str = CONFIGURE) -> Site | None:
    qs = Site.objects.visible_to(user, permission).select_related("unit").filter(pk=pk)
    return _with_last_received(qs, user=user, permission=permission).first()
