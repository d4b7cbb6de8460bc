"""Rich text from people (landing-page blocks, articles, form intros) is sanitised with
nh3 (the Rust ``ammonia`` sanitiser): an allowlist of tags and attributes, no scripts, no
event handlers, no ``javascript:`` URLs. Sanitise when saving *and* when rendering, so a
row written by an older version or straight into the database is still inert."""

from __future__ import annotations

import nh3
from django.utils.safestring import SafeString, mark_safe

TAGS = {
    "a",
    "b",
    "blockquote",
    "br",
    "code",
    "em",
    "h2",
    "h3",
    "h4",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
}
ATTRIBUTES = {
    "a": {"href", "title", "target"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
URL_SCHEMES = {"http", "https", "mailto", "tel"}


def clean_html(text: str) -> str:
    """The sanitised HTML (a plain string, for storing)."""
    return nh3.clean(
        text or "",
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def safe_html(text: str) -> SafeString:
    """Sanitised HTML marked safe for a template: the only way rich text reaches a page."""
    return mark_safe(clean_html(text))  # noqa: S308 - nh3 has just sanitised it
