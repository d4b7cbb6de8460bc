"""Turning stored submissions into a contact, an activity, consent and touches: where the
channel and campaign come from, who the person is, what is refused, and that processing
twice changes nothing twice."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.contacts.collector.services import anonymous_link
from apps.contacts.identity_keys import make_key
from apps.contacts.models import (
    Activity,
    Campaign,
    Channel,
    ConsentEvent,
    ConsentState,
    Contact,
    ContactUnit,
    Identity,
)
from apps.contacts.services.resolution import contact_resolve
from apps.contacts.services.subject import contact_erase
from apps.content.models import FormSubmission, LandingPage, ShareLink
from apps.content.services import submissions as service
from apps.content.services.submissions import SubmissionIn, submission_store, submissions_process
from apps.core.models import AuditLog
from tests.content.test_forms import SYSTEM, VERSION, customer_type, make_form

pytestmark = pytest.mark.django_db

LI_LEI = {"name": "李雷", "phone": "+8613800138000", "company_name": "华澜生物"}


def store(form, data: dict[str, Any] | None = None, **fields: Any) -> FormSubmission:
    fields.setdefault("token", uuid.uuid4().hex)
    fields.setdefault("consent", True)
    fields.setdefault("anonymous_id", str(uuid.uuid4()))
    submission = SubmissionIn(data=LI_LEI if data is None else data, **fields)
    return submission_store(form=form, submission=submission).submission


def counts() -> dict[str, int]:
    return {
        "contacts": Contact.objects.count(),
        "identities": Identity.objects.count(),
        "contact_units": ContactUnit.objects.count(),
        "activities": Activity.objects.count(),
        "consent_events": ConsentEvent.objects.count(),
        "consent_states": ConsentState.objects.count(),
        "audit": AuditLog.objects.count(),
    }


# --- Who it is ---------------------------------------------------------------------------------


def test_a_submission_becomes_a_contact_of_the_forms_unit_with_one_activity(world):
    field = customer_type(world.a)
    form = make_form(
        world.a,
        [
            {"key": "name", "required": True},
            {"key": "phone", "required": True},
            {"key": "company_name"},
            {"key": "custom:customer_type"},
        ],
    )
    submission = store(form, {**LI_LEI, "custom:customer_type": "ka"})

    result = submissions_process([submission.pk])

    submission.refresh_from_db()
    contact = Contact.objects.get()
    activity = Activity.objects.get()
    assert result.processed == [submission.pk]
    assert (submission.status, submission.contact_id) == ("processed", contact.pk)
    assert (contact.name, contact.company_name) == ("李雷", "华澜生物")
    assert contact.custom == {str(field.pk): "ka"}
    assert list(contact.identities.values_list("kind", "value").order_by("kind")) == [
        ("anonymous", submission.anonymous_id),
        ("phone", "+8613800138000"),
    ]
    assert list(ContactUnit.objects.values_list("contact_id", "unit_id")) == [
        (contact.pk, world.a.pk)
    ]
    assert (activity.type, activity.contact_id, activity.unit_id) == (
        "form_submit",
        contact.pk,
        world.a.pk,
    )
    assert (activity.object_type, activity.object_id) == ("form", str(form.pk))
    assert activity.dedupe_key == f"form:{submission.pk}"
    assert activity.occurred_at == submission.received_at
    assert activity.properties["form"] == "白皮书下载"
    assert activity.properties["consent_version"] == VERSION


def test_the_same_person_twice_is_one_contact_with_two_activities(world):
    form = make_form(world.a)
    first = store(form)
    second = store(form, {**LI_LEI, "email": "li.lei@example.cn"})

    submissions_process([first.pk, second.pk])

    contact = Contact.objects.get()
    assert Activity.objects.filter(contact=contact, type="form_submit").count() == 2
    assert set(contact.identities.values_list("kind", flat=True)) == {"phone", "email", "anonymous"}


def test_earlier_anonymous_visits_join_the_contact(world):
    form = make_form(world.a)
    aid = str(uuid.uuid4())
    Activity.objects.create(
        unit=world.a, anonymous_id=aid, type="page_view", occurred_at=timezone.now()
    )

    submissions_process([store(form, anonymous_id=aid).pk])

    contact = Contact.objects.get()
    assert Activity.objects.filter(contact=contact).count() == 2
    assert Activity.objects.filter(contact__isnull=True).count() == 0


def test_a_key_that_belongs_to_someone_else_wins_over_the_browser(world):
    form = make_form(world.a, progressive=True)
    aid = str(uuid.uuid4())
    owner = contact_resolve(
        unit=world.a, keys=[make_key("phone", "13900139000")], source="import", acting_user=SYSTEM
    ).contact
    anonymous_link(contact=owner, anonymous_id=aid)
    other = contact_resolve(
        unit=world.a, keys=[make_key("phone", "13800138000")], source="import", acting_user=SYSTEM
    ).contact

    # A colleague on the same browser submits with their own (known) phone
    submissions_process([store(form, anonymous_id=aid).pk])

    submission = FormSubmission.objects.get()
    assert submission.contact_id == other.pk
    assert Contact.objects.filter(status="active").count() == 2  # nobody was merged
    assert Identity.objects.get(kind="anonymous").contact_id == owner.pk


def test_a_person_who_asked_to_be_erased_is_rejected_with_the_reason(world):
    form = make_form(world.a)
    erased = contact_resolve(
        unit=world.a, keys=[make_key("phone", "13800138000")], source="import", acting_user=SYSTEM
    ).contact
    contact_erase(contact=erased, acting_user=SYSTEM)
    before = counts()

    submission = store(form)
    result = submissions_process([submission.pk])

    submission.refresh_from_db()
    assert result.rejected == [submission.pk]
    assert submission.status == "rejected"
    assert submission.reason == (
        "this person asked to be erased; their details are not taken in again"
    )
    assert submission.contact_id is None
    assert counts() == before


def test_without_email_phone_or_a_known_browser_it_is_rejected(world):
    form = make_form(world.a)
    submission = store(form, {"name": "无名"})

    submissions_process([submission.pk])

    submission.refresh_from_db()
    assert (submission.status, submission.reason) == (
        "rejected",
        "no email or phone to tell who this is",
    )
    assert Contact.objects.count() == 0


def test_a_failing_submission_stays_pending_and_is_set_aside_after_a_few_tries(world, monkeypatch):
    form = make_form(world.a)
    good = store(form)
    bad = store(form, {"name": "坏", "phone": "+8613900139000"})
    real = service._contact

    def flaky(submission, *args):
        if submission.pk == bad.pk:
            raise RuntimeError("database hiccup")
        return real(submission, *args)

    monkeypatch.setattr(service, "_contact", flaky)

    first = submissions_process([good.pk, bad.pk])
    for _ in range(service.MAX_ATTEMPTS - 1):
        service.submissions_sweep()

    good.refresh_from_db()
    bad.refresh_from_db()
    assert (first.processed, first.failed) == ([good.pk], [bad.pk])
    assert good.status == "processed"
    assert (bad.status, bad.attempts) == ("rejected", service.MAX_ATTEMPTS)
    assert bad.reason == "could not be processed: database hiccup"


# --- Channel and campaign ------------------------------------------------------------------------


@pytest.fixture
def attribution(world):
    def channel(code, kind):
        return Channel.objects.create(unit=world.a, code=code, name=code, kind=kind)

    ch = {
        code: channel(code, kind)
        for code, kind in [("baidu", "sem"), ("seo", "seo"), ("expo", "event")]
    }
    ch["form"] = channel("form-own", "content")
    ch["page"] = channel("page-own", "media")
    ca = {
        code: Campaign.objects.create(unit=world.a, code=code, name=code)
        for code in ("spring", "form-campaign", "page-campaign", "link-campaign")
    }
    form = make_form(world.a, channel=ch["form"], campaign=ca["form-campaign"])
    page = LandingPage.objects.create(
        unit=world.a,
        title="春季",
        slug="spring-attr",
        channel=ch["page"],
        campaign=ca["page-campaign"],
    )
    link = ShareLink.objects.create(
        unit=world.a, owner=world.sales, landing_page=page, campaign=ca["link-campaign"]
    )
    return ch, ca, form, page, link


def activity_of(submission: FormSubmission) -> tuple[int | None, int | None]:
    submissions_process([submission.pk])
    activity = Activity.objects.get(dedupe_key=f"form:{submission.pk}")
    return activity.channel_id, activity.campaign_id


def test_utm_decides_channel_and_campaign_first(world, attribution):
    ch, ca, form, page, link = attribution

    ids = activity_of(
        store(
            form,
            utm={"source": "baidu", "campaign": "spring"},
            landing_page_id=page.pk,
            share_link_id=link.pk,
        )
    )

    assert ids == (ch["baidu"].pk, ca["spring"].pk)


def test_then_the_share_link_page_and_form_have_their_say(world, attribution):
    ch, ca, form, page, link = attribution

    from_link = activity_of(store(form, landing_page_id=page.pk, share_link_id=link.pk))
    from_page = activity_of(
        store(form, {**LI_LEI, "phone": "+8613900139001"}, landing_page_id=page.pk)
    )
    from_form = activity_of(store(form, {**LI_LEI, "phone": "+8613900139002"}))

    assert from_link == (ch["page"].pk, ca["link-campaign"].pk)
    assert from_page == (ch["page"].pk, ca["page-campaign"].pk)
    assert from_form == (ch["form"].pk, ca["form-campaign"].pk)


def test_with_nothing_set_the_referrer_tells_the_channel(world, attribution):
    ch, _ca, _form, _page, _link = attribution
    bare = make_form(world.a, name="无渠道表单")

    ids = activity_of(
        store(
            bare,
            page_url="https://www.hualan.example.cn/f/x/",
            referrer="https://www.baidu.com/s?wd=1",
        )
    )

    assert ids == (ch["seo"].pk, None)


def test_the_touch_lands_on_the_contact_first_and_latest(world, attribution):
    ch, ca, form, _page, _link = attribution
    early = store(form, utm={"source": "expo"})
    FormSubmission.objects.filter(pk=early.pk).update(
        received_at=timezone.now() - timedelta(days=3)
    )
    late = store(form, utm={"source": "baidu", "campaign": "spring"})

    submissions_process([early.pk, late.pk])

    contact = Contact.objects.get()
    assert (contact.first_touch_channel_id, contact.first_touch_campaign_id) == (
        ch["expo"].pk,
        ca["form-campaign"].pk,
    )
    assert (contact.latest_touch_channel_id, contact.latest_touch_campaign_id) == (
        ch["baidu"].pk,
        ca["spring"].pk,
    )
    assert contact.source_channel_id == ch["expo"].pk


# --- Acceptance (d): processing twice changes nothing twice -------------------------------------


def test_processing_twice_changes_nothing_twice(world):
    form = make_form(world.a)
    submission = store(form)
    submissions_process([submission.pk])
    after_first = counts()

    # A second delivery of the task, and a sweep, find nothing pending
    again = submissions_process([submission.pk])
    sweep = service.submissions_sweep()
    # Even when someone puts the row back to pending by hand and it runs again
    FormSubmission.objects.filter(pk=submission.pk).update(status="pending")
    rerun = submissions_process([submission.pk])

    assert again.claimed == []
    assert (sweep.processed, sweep.more) == (0, False)
    assert rerun.processed == [submission.pk]
    assert counts() == after_first
    assert ConsentEvent.objects.count() == 2  # sms and phone, once each


def test_without_consent_no_consent_is_recorded(world):
    form = make_form(world.a, consent_required=False)

    submissions_process([store(form, consent=False).pk])

    assert ConsentEvent.objects.count() == 0
    assert FormSubmission.objects.get().consent_version == ""
