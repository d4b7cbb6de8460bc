"""Landing-page blocks: what is accepted, what is refused (naming the block and field),
and how they render (rich text inert whatever is stored)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import RequestFactory

from apps.content.blocks import BLOCK_TYPES, blocks_clean, blocks_html
from apps.content.models import Asset, Form, LandingPage

XSS = (
    "<p>Hello</p><script>alert(1)</script><img src=x onerror=alert(1)>"
    '<a href="javascript:alert(1)">click</a>'
)
XSS_CLEAN = '<p>Hello</p><img src="x"><a rel="noopener noreferrer nofollow">click</a>'


def test_block_types_are_the_documented_ones():
    assert list(BLOCK_TYPES) == [
        "heading",
        "text",
        "image",
        "form",
        "asset",
        "cta",
        "spacer",
        "divider",
    ]


def test_valid_blocks_are_kept_trimmed_and_rich_text_sanitised(world):
    # given a form and an asset of unit A
    form = Form.objects.create(unit=world.a, name="Contact us")
    asset = Asset.objects.create(unit=world.a, title="Guide", kind="article", body="<p>x</p>")
    # when blocks naming them are cleaned for unit A
    cleaned = blocks_clean(
        [
            {"type": "heading", "text": "  Welcome ", "level": "1", "extra": "dropped"},
            {"type": "text", "html": XSS},
            {"type": "image", "src": "https://img.example.cn/a.png", "alt": "A", "link": ""},
            {"type": "form", "form": str(form.pk)},
            {"type": "asset", "asset": asset.pk},
            {"type": "cta", "label": "Buy", "url": "https://shop.example.cn/"},
            {"type": "spacer", "size": "l"},
            {"type": "divider"},
        ],
        unit_id=world.a.pk,
    )
    # then only known fields are stored, normalised, the text sanitised
    assert cleaned == [
        {"type": "heading", "text": "Welcome", "level": 1},
        {"type": "text", "html": XSS_CLEAN},
        {"type": "image", "src": "https://img.example.cn/a.png", "alt": "A", "link": ""},
        {"type": "form", "form": form.pk},
        {"type": "asset", "asset": asset.pk},
        {"type": "cta", "label": "Buy", "url": "https://shop.example.cn/"},
        {"type": "spacer", "size": "l"},
        {"type": "divider"},
    ]


@pytest.mark.parametrize(
    ("block", "key", "message"),
    [
        (
            {"type": "video", "src": "x"},
            "blocks.1.type",
            "Block 2 (video), type: unknown block type; use one of: heading, text, image, "
            "form, asset, cta, spacer, divider.",
        ),
        (
            {"type": "heading", "text": "Hi", "level": 4},
            "blocks.1.level",
            "Block 2 (Heading), level: must be 1, 2 or 3.",
        ),
        (
            {"type": "heading", "text": "", "level": 2},
            "blocks.1.text",
            "Block 2 (Heading), text: is required.",
        ),
        (
            {"type": "image", "src": "http://img.example.cn/a.png"},
            "blocks.1.src",
            "Block 2 (Image), src: must be an https:// URL.",
        ),
        (
            {"type": "image", "src": "javascript:alert(1)"},
            "blocks.1.src",
            "Block 2 (Image), src: must be an https:// URL.",
        ),
        (
            {"type": "image", "file": "../../etc/passwd"},
            "blocks.1.file",
            "Block 2 (Image), file: not an uploaded image.",
        ),
        (
            {"type": "cta", "label": "Go", "url": "javascript:alert(1)"},
            "blocks.1.url",
            "Block 2 (Button), url: must be an http:// or https:// URL.",
        ),
        (
            {"type": "form", "form": "abc"},
            "blocks.1.form",
            "Block 2 (Form), form: choose a form.",
        ),
        (
            {"type": "spacer", "size": "xl"},
            "blocks.1.size",
            "Block 2 (Spacer), size: must be s, m or l.",
        ),
    ],
)
def test_a_bad_block_is_refused_naming_its_index_and_field(world, block, key, message):
    # given a valid first block and a bad second one
    blocks = [{"type": "heading", "text": "Fine", "level": 1}, block]
    # when cleaned, then the error names block 2 and the field
    with pytest.raises(ValidationError) as caught:
        blocks_clean(blocks, unit_id=world.a.pk)
    assert caught.value.message_dict == {key: [message]}


def test_a_form_or_asset_of_another_unit_is_no_such(world):
    # given a form and an asset of unit B
    form = Form.objects.create(unit=world.b, name="B form")
    asset = Asset.objects.create(unit=world.b, title="B guide", kind="article", body="<p>x</p>")
    # when unit A's page names them
    with pytest.raises(ValidationError) as caught:
        blocks_clean(
            [{"type": "form", "form": form.pk}, {"type": "asset", "asset": asset.pk}],
            unit_id=world.a.pk,
        )
    # then both are refused
    assert caught.value.message_dict == {
        "blocks.0.form": ["Block 1 (Form), form: no such form in this unit."],
        "blocks.1.asset": ["Block 2 (Content asset), asset: no such asset in this unit."],
    }


def test_blocks_must_be_a_list(world):
    with pytest.raises(ValidationError) as caught:
        blocks_clean({"type": "heading"}, unit_id=world.a.pk)
    assert caught.value.message_dict == {"blocks": ["Blocks must be a list."]}


def test_rendering_sanitises_again_whatever_is_stored(world):
    # given a page whose stored blocks were written straight into the database
    form = Form.objects.create(unit=world.a, name="Contact us", title="Talk to us")
    asset = Asset.objects.create(
        unit=world.a, title="<b>Guide</b>", kind="whitepaper", url="https://x.example.cn/a.pdf"
    )
    page = LandingPage.objects.create(
        unit=world.a,
        title="T",
        slug="t",
        blocks=[
            {"type": "heading", "text": "<script>alert(1)</script>", "level": 9},
            {"type": "text", "html": XSS},
            {"type": "image", "src": "javascript:alert(1)", "alt": "x"},
            {"type": "cta", "label": "Go", "url": "javascript:alert(1)"},
            {"type": "form", "form": form.pk},
            {"type": "asset", "asset": asset.pk},
            {"type": "nonsense"},
        ],
    )
    request = RequestFactory().get("/p/t/")
    # when rendered with a share token
    html = str(blocks_html(page, request, share_token="tok123"))
    # then the heading is escaped text, the rich text is the sanitised fragment, the bad
    # image and button are left out, and the form and asset carry the page and token
    assert '<h2 class="lp-heading">&lt;script&gt;alert(1)&lt;/script&gt;</h2>' in html
    assert f'<div class="lp-text">{XSS_CLEAN}</div>' in html
    assert "javascript:" not in html
    assert "<img" in html  # only the one from the sanitised text
    assert html.count("<img") == 1
    assert f'src="/f/{form.key}/?embed=1&amp;lp={page.pk}&amp;sl=tok123"' in html
    assert f'href="/a/{asset.key}/?sl=tok123"' in html
    assert "&lt;b&gt;Guide&lt;/b&gt;" in html
    assert "js/content-page-public.js" in html
