"""Content follows people through merges (and back on undo), and forgets them when they
ask to be erased."""

from __future__ import annotations

import pytest

from apps.contacts.identity_keys import make_key
from apps.contacts.services.merge import contact_merge, contact_merge_undo
from apps.contacts.services.resolution import contact_resolve
from apps.contacts.services.subject import contact_erase, contact_subject_export
from apps.content.models import Asset, Form, FormSubmission, ShareLink, ShareView
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")


def _person(world, email):
    return contact_resolve(
        unit=world.a, keys=[make_key("email", email)], source="import", acting_user=SYSTEM
    ).contact


@pytest.fixture
def trail(world):
    """One person who submitted a form and opened a share link."""
    person = _person(world, "wang@example.cn")
    form = Form.objects.create(unit=world.a, name="试用申请", fields=[{"key": "email"}])
    submission = FormSubmission.objects.create(
        form=form,
        unit=world.a,
        token="t-1",
        data={"email": "wang@example.cn", "name": "王芳"},
        consent=True,
        ip="10.1.2.3",
        user_agent="Safari",
        anonymous_id="aid-1",
        page_url="https://www.example.cn/trial?utm_source=baidu",
        contact=person,
    )
    asset = Asset.objects.create(unit=world.a, title="白皮书", kind="whitepaper")
    link = ShareLink.objects.create(unit=world.a, owner=world.sales, asset=asset)
    view = ShareView.objects.create(
        link=link,
        unit=world.a,
        contact=person,
        beat_key="k",
        seconds=95,
        ip="10.1.2.3",
        user_agent="Safari",
        anonymous_id="aid-1",
    )
    return person, submission, view


def test_a_merge_moves_submissions_and_views_and_undo_moves_them_back(world, trail):
    # given the person's trail, and a duplicate contact kept in the merge
    person, submission, view = trail
    kept = _person(world, "fang@example.cn")

    # when the person is merged into the kept contact
    merge = contact_merge(kept=kept, dropped=person, acting_user=SYSTEM)

    # then the submission and the view belong to the kept contact
    submission.refresh_from_db()
    view.refresh_from_db()
    assert (submission.contact_id, view.contact_id) == (kept.pk, kept.pk)

    # when the merge is undone, they go back
    contact_merge_undo(merge=merge, acting_user=SYSTEM)
    submission.refresh_from_db()
    view.refresh_from_db()
    assert (submission.contact_id, view.contact_id) == (person.pk, person.pk)


def test_the_subject_export_lists_submissions_and_views(world, trail):
    person, _submission, _view = trail

    data = contact_subject_export(person)

    content = data["content"]
    assert [s["answers"] for s in content["form_submissions"]] == [
        {"email": "wang@example.cn", "name": "王芳"}
    ]
    assert [(v["seconds"], v["ip"]) for v in content["share_link_views"]] == [(95, "10.1.2.3")]


def test_erasure_wipes_answers_addresses_and_browsers_but_keeps_the_counts(world, trail):
    person, submission, view = trail

    contact_erase(contact=person, acting_user=SYSTEM)

    submission.refresh_from_db()
    view.refresh_from_db()
    assert (submission.data, submission.ip, submission.user_agent, submission.page_url) == (
        {},
        None,
        "",
        "",
    )
    assert (view.ip, view.user_agent, view.anonymous_id, view.seconds) == (None, "", "", 95)
    assert FormSubmission.objects.count() == ShareView.objects.count() == 1
