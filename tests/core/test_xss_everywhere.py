"""A contact (and the things around them) named like an attack renders as text on every
page people reach.

Instead of a list of pages that goes stale as the product grows, the test crawls every
surface as people see it: it starts at each surface's home, follows every same-site link
it finds (GET only), and checks each HTML page. The crawl must reach the pages that show
the hostile values, so a broken crawl cannot pass quietly.
"""

from __future__ import annotations

import re
from collections import deque
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from apps.contacts.identity_keys import make_key
from apps.contacts.services import config
from apps.contacts.services.activities import ActivityIn, activities_record
from apps.contacts.services.resolution import contact_resolve
from apps.contacts.services.tags import tags_add
from apps.core.services import SystemActor

pytestmark = pytest.mark.django_db
SYSTEM = SystemActor("tests")

PAYLOAD = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(2)</script>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
SURFACES = ("/console/", "/sdr/", "/m/")
# Same-site paths the crawl follows: the logged-in surfaces and their shared pages.
FOLLOW = re.compile(r"^/(console|sdr|m|notifications|audit|team|tokens)(/|$)")
# Links that change state by GET or leave the HTML world.
SKIP = re.compile(r"(logout|/download|\.csv|\.xlsx|/embed\.js|/errors)", re.IGNORECASE)
MAX_PAGES = 400


class _Page(HTMLParser):
    """Links to follow, and what the browser would run from the data: an event handler
    calling our alerts, or a script containing them. (Rich text may keep an inert
    ``<img src="x">``: nh3 removes its handler.)"""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.injected: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.links.append(str(values["href"]))
        for name, value in attrs:
            if name.startswith("on") and "alert(" in (value or ""):
                self.injected.append(self.get_starttag_text() or tag)
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and ("alert(1)" in data or "alert(2)" in data):
            self.injected.append(data[:80])


def _crawl(client: Client) -> dict[str, str]:
    seen: dict[str, str] = {}
    queue = deque(SURFACES)
    queued = set(SURFACES)
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
        if response.status_code in (301, 302):
            target = urlsplit(response["Location"])
            if FOLLOW.match(target.path) and target.path not in queued:
                queued.add(target.path)
                queue.append(target.path + (f"?{target.query}" if target.query else ""))
            continue
        assert response.status_code < 500, f"{url} answered {response.status_code}"
        if "text/html" not in response.get("Content-Type", ""):
            continue
        body = response.content.decode()
        parser = _Page()
        parser.feed(body)
        seen[url] = body
        assert not parser.injected, f"{url} runs markup from data: {parser.injected}"
        for href in parser.links:
            absolute = urljoin(url, href)
            parts = urlsplit(absolute)
            if parts.netloc or not FOLLOW.match(parts.path) or SKIP.search(parts.path):
                continue
            # One visit per path and query *shape*: paging cursors and ids vary endlessly.
            shape = parts.path + "?" + "&".join(sorted(re.findall(r"([^&=]+)=", parts.query)))
            if shape in queued:
                continue
            queued.add(shape)
            queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return seen


@pytest.fixture
def hostile(world):
    """A contact whose name, title and company are attacks, tagged with a hostile tag,
    touched by a hostile channel, with activities on the timeline."""
    channel = config.channel_create(
        unit=world.a, code="evil", name=PAYLOAD, kind="media", acting_user=SYSTEM
    )
    contact = contact_resolve(
        unit=world.a,
        keys=[make_key("email", "x@example.cn")],
        attributes={"name": PAYLOAD, "title": SCRIPT, "company_name": PAYLOAD},
        source="import",
        acting_user=SYSTEM,
    ).contact
    tag = config.tag_create(unit=world.a, name=PAYLOAD[:60], acting_user=SYSTEM)
    tags_add(contact_ids=[contact.pk], tags=[tag], source="manual", actor_label="tests")
    now = timezone.now()
    activities_record(
        [
            ActivityIn(
                world.a.pk,
                "page_view",
                now - timedelta(minutes=5),
                contact_id=contact.pk,
                channel_id=channel.pk,
                properties={"title": PAYLOAD, "url": "https://example.cn/?q=" + SCRIPT},
            ),
            ActivityIn(
                world.a.pk,
                "custom",
                now,
                contact_id=contact.pk,
                properties={"name": SCRIPT},
            ),
        ]
    )
    _hostile_content(world, contact)
    _hostile_sales(world, contact)
    return contact


def _hostile_sales(world, contact):
    """Leads around the contact, written like attacks: an accepted lead with BANT, history,
    a follow-up and an opportunity; a second person's MQL waiting in the salesperson's
    inbox; a team, a rule and a webhook named like attacks."""
    from apps.sales.models import (
        AssignmentRule,
        FollowUp,
        Lead,
        LeadHistory,
        Opportunity,
        SalesTeam,
        TeamMember,
        WebhookEndpoint,
    )

    now = timezone.now()
    common = {"unit": world.a, "source": "manual", "sdr": world.sdr, "owner": world.sales}
    opportunity = Opportunity.objects.create(
        unit=world.a,
        name=PAYLOAD,
        company_name=PAYLOAD,
        contact=contact,
        owner=world.sales,
        products=[SCRIPT],
        amount=1000,
    )
    lead = Lead.objects.create(
        contact=contact,
        stage="opportunity",
        temperature="hot",
        reason=PAYLOAD,
        need=SCRIPT,
        product_interest=PAYLOAD,
        review_reason=PAYLOAD,
        needs_review=True,
        opportunity=opportunity,
        handed_at=now,
        accepted_at=now,
        **common,
    )
    LeadHistory.objects.create(
        lead=lead,
        unit=world.a,
        kind="stage",
        from_value="sql",
        to_value="opportunity",
        actor_label=PAYLOAD,
        reason=SCRIPT,
    )
    FollowUp.objects.create(
        lead=lead, unit=world.a, user=world.sales, kind="call", note=PAYLOAD, next_step=SCRIPT
    )
    waiting = contact_resolve(
        unit=world.a,
        keys=[make_key("email", "y@example.cn")],
        attributes={"name": PAYLOAD, "company_name": SCRIPT},
        source="import",
        acting_user=SYSTEM,
    ).contact
    Lead.objects.create(
        contact=waiting,
        stage="mql",
        reason=PAYLOAD,
        handed_at=now,
        sla_clock="accept",
        sla_due_at=now + timedelta(hours=3),
        **common,
    )
    team = SalesTeam.objects.create(unit=world.a, name=PAYLOAD)
    TeamMember.objects.create(team=team, user=world.sales)
    AssignmentRule.objects.create(
        unit=world.a, name=PAYLOAD, team=team, conditions={"industries": [SCRIPT]}
    )
    WebhookEndpoint.objects.create(
        unit=world.a, name=PAYLOAD, url="https://example.cn/hook", secret="s"
    )


def _hostile_content(world, contact):
    """Content around the contact, named like attacks: a form they submitted, an asset and
    a landing page each sharer shared with them, the views and the notifications."""
    from apps.content.models import (
        Asset,
        Form,
        FormSubmission,
        LandingPage,
        ShareLink,
        ShareView,
    )
    from apps.core.services import notification_send

    form = Form.objects.create(
        unit=world.a, name=PAYLOAD, title=SCRIPT, fields=[{"key": "email", "required": True}]
    )
    FormSubmission.objects.create(
        form=form,
        unit=world.a,
        token="t-hostile",
        data={"email": "x@example.cn", "name": PAYLOAD},
        status="processed",
        contact=contact,
    )
    asset = Asset.objects.create(
        unit=world.a, title=PAYLOAD, kind="article", topic=SCRIPT, summary=PAYLOAD
    )
    page = LandingPage.objects.create(
        unit=world.a,
        title=PAYLOAD,
        slug="hostile",
        seo_title=SCRIPT,
        blocks=[{"type": "text", "html": PAYLOAD + SCRIPT}],
    )
    for sharer in (world.marketer, world.sdr, world.sales, world.admin):
        for target in ({"asset": asset}, {"landing_page": page}):
            link = ShareLink.objects.create(unit=world.a, owner=sharer, note=PAYLOAD, **target)
            ShareView.objects.create(
                link=link,
                unit=world.a,
                contact=contact,
                beat_key="k",
                seconds=95,
                user_agent=PAYLOAD,
                referrer="https://example.cn/?" + SCRIPT,
            )
        notification_send(
            user_id=sharer.pk, kind="share_opened", title=PAYLOAD, body=SCRIPT, url="/m/"
        )


@pytest.mark.parametrize("role", ["admin", "marketer", "sdr", "sales"])
def test_hostile_names_render_as_text_on_every_page_a_person_reaches(world, hostile, role):
    # given the hostile contact, and a person of the role in unit A
    client = Client()
    client.force_login(getattr(world, role))

    # when they visit every page they can reach from their surfaces
    pages = _crawl(client)

    # then no page carries the attack as markup, and the pages that show the contact
    # show it escaped (so the crawl did reach them)
    assert pages, "the crawl found no pages"
    for url, body in pages.items():
        assert PAYLOAD not in body, f"{url} renders the name as HTML"
        assert SCRIPT not in body, f"{url} renders a script"
    # the sharer's viewer lists name the contact, as text
    viewer_lists = [url for url in pages if re.match(r"^/(console|sdr|m)/shares/\d+/$", url)]
    assert viewer_lists, sorted(pages)
    for url in viewer_lists:
        assert ESCAPED in pages[url], url
    # the lead pages name the contact, as text: the SDR's queue and lead page, the phone's
    # inbox and lead page
    lead_pages = {
        "sdr": [r"^/sdr/$", r"^/sdr/leads/\d+/$"],
        "sales": [r"^/m/inbox/$", r"^/m/leads/\d+/$", r"^/m/deals/\d+/$"],
        "admin": [r"^/console/leads/\d+/$"],
        "marketer": [r"^/console/leads/\d+/$"],
    }[role]
    for pattern in lead_pages:
        reached = [url for url in pages if re.match(pattern, url.split("?")[0])]
        assert reached, (pattern, sorted(pages))
        assert any(ESCAPED in pages[url] for url in reached), pattern
    detail = f"/console/contacts/{hostile.pk}/"
    if role in ("admin", "marketer"):
        assert detail in pages, sorted(pages)
        assert ESCAPED in pages[detail]
        assert ESCAPED in pages["/console/contacts/"]


def test_a_viewer_reaches_the_contact_and_content_pages_and_sees_text(world, hostile):
    # given a read-only member of unit A
    client = Client()
    client.force_login(world.viewer)

    # when they visit every page they can reach
    pages = _crawl(client)

    # then they reached the contact and content lists, and the names are text there
    assert ESCAPED in pages[f"/console/contacts/{hostile.pk}/"]
    assert ESCAPED in pages["/console/forms/"]
    assert ESCAPED in pages["/console/pages/"]
    assert ESCAPED in pages["/console/assets/"]
