"""Who may be messaged on which channel: the one consent check sending must use.

Every sender (journeys, bulk email, SMS, WeChat template messages, call lists) selects its
audience through ``contacts_reachable`` and checks a single recipient with
``consent_allows``. Nothing else in the code base decides whether a person may be
contacted, so a withdrawal recorded anywhere (preference centre, unsubscribe link, API,
import) stops every sender at once.

These are system-level reads: sending runs as a background job, not as a person, so they
start from ``dangerously_unscoped()`` and narrow by the unit ids the caller passes (the
units the campaign or journey belongs to).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Exists, OuterRef, QuerySet

from apps.contacts.models import (
    ConsentChannel,
    ConsentPurpose,
    Contact,
    ContactStatus,
    Identity,
    IdentityKind,
)

# The identity a channel needs before a message can reach anyone on it.
CHANNEL_IDENTITY_KINDS: dict[str, tuple[str, ...]] = {
    ConsentChannel.EMAIL: (IdentityKind.EMAIL,),
    ConsentChannel.SMS: (IdentityKind.PHONE,),
    ConsentChannel.PHONE: (IdentityKind.PHONE,),
    ConsentChannel.WECHAT: (IdentityKind.WECHAT_OPENID, IdentityKind.WECHAT_UNIONID),
}


def _check(channel: str, purpose: str) -> None:
    if channel not in ConsentChannel.values:
        raise ValueError(f"unknown consent channel {channel!r}")
    if purpose not in ConsentPurpose.values:
        raise ValueError(f"unknown consent purpose {purpose!r}")


def contacts_reachable(
    *,
    channel: str,
    purpose: str = ConsentPurpose.MARKETING,
    unit_ids: Iterable[int] | None = None,
) -> QuerySet[Contact]:
    """Active contacts who may be messaged on ``channel`` for ``purpose`` right now.

    Sending MUST select recipients through this queryset (or check one person with
    ``consent_allows``). A contact is included only when their current consent state for
    (channel, purpose) is *granted* and they hold an identity the channel can reach
    (an email for email, a phone for SMS and calls, an openid or unionid for WeChat).
    Anyone who withdrew, never answered, was merged away or erased is left out.

    ``unit_ids`` narrows to contacts known to those units; None means every unit (only for
    group-wide jobs that are themselves scoped elsewhere).
    """
    _check(channel, purpose)
    # System-level read for background sending; the caller scopes with ``unit_ids``.
    contacts = Contact.objects.dangerously_unscoped().filter(status=ContactStatus.ACTIVE)
    if unit_ids is not None:
        contacts = contacts.for_units(unit_ids)
    # ConsentState is unique per (contact, channel, purpose), so this join adds no rows.
    contacts = contacts.filter(
        consents__channel=channel, consents__purpose=purpose, consents__granted=True
    )
    reachable_by = Identity.objects.dangerously_unscoped().filter(
        contact=OuterRef("pk"), kind__in=CHANNEL_IDENTITY_KINDS[channel]
    )
    return contacts.filter(Exists(reachable_by))


def consent_allows(contact: Contact, channel: str, purpose: str = ConsentPurpose.MARKETING) -> bool:
    """Whether ``contact`` may be messaged on ``channel`` for ``purpose`` (one query).

    The single-recipient form of ``contacts_reachable``: the contact must be active and
    their current consent granted. Reachability (holding an email, phone or openid) is the
    sender's own check, since it needs the address anyway.
    """
    _check(channel, purpose)
    # System-level read for one known recipient (see the module docstring).
    return (
        Contact.objects.dangerously_unscoped()
        .filter(
            pk=contact.pk,
            status=ContactStatus.ACTIVE,
            consents__channel=channel,
            consents__purpose=purpose,
            consents__granted=True,
        )
        .exists()
    )
