"""Article HTML → clean HTML (nh3 allowlist) and plain text derived from the clean HTML.

Scripts, styles, iframes, event handlers, `style` attributes and javascript:/data: URLs never
survive: only the tags and attributes below do. Relative links are made absolute first, so
that a clean article still works when shown somewhere else.
"""

from __future__ import annotations

import html
import re

import lxml.html
import nh3
from lxml import etree

from publisher.ingest.urls import absolute_url
from publisher.text import nfc

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "div", "dl", "dt",
        "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li",
        "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table", "tbody",
        "td", "tfoot", "th", "thead", "tr", "u", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
}
_DROP_WITH_CONTENT = frozenset(
    {"script", "style", "iframe", "object", "embed", "noscript", "template", "svg", "math",
     "form", "textarea", "select"}
)  # fmt: skip
_BLOCKS = frozenset(
    {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre",
     "figure", "figcaption", "table", "ul", "ol", "dl", "dt", "dd", "hr"}
)  # fmt: skip
# nh3 writes attributes as name="value": a value that is not absolute needs resolving.
_RELATIVE_URL_RE = re.compile(r"""\b(?:href|src)="(?!https?:|mailto:|#)""", re.I)
_TAG_RE = re.compile(r"<[^>]*>")
_MARKUP_RE = re.compile(r"<(?:[A-Za-z/!?][^<>]*)>")
# A script or style element in a one-line field: its content is code, not words.
_SCRIPT_STYLE_RE = re.compile(r"<(script|style)\b[^>]*>.*?(?:</\1\s*>|$)", re.I | re.S)


def _absolutise(fragment: str, base: str) -> str:
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (etree.ParserError, ValueError):
        return fragment
    for element in root.iter("a", "img"):
        attribute = "href" if element.tag == "a" else "src"
        value = element.get(attribute)
        if value is not None and not value.startswith("#"):
            element.set(attribute, absolute_url(value, base))
    return html.escape(root.text or "", quote=False) + "".join(
        etree.tostring(child, encoding="unicode", method="html") for child in root
    )


def clean_html(fragment: str, *, base_url: str | None = None) -> str:
    """Sanitised, NFC HTML. Relative `href`/`src` are resolved against `base_url`."""
    if not fragment or not fragment.strip():
        return ""
    cleaned = nh3.clean(
        fragment,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(_DROP_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    if base_url and _RELATIVE_URL_RE.search(cleaned):
        # Resolve on the already clean tree, then clean again: the second pass is the
        # guarantee, whatever the rewrite produced.
        cleaned = nh3.clean(
            _absolutise(cleaned, base_url),
            tags=set(ALLOWED_TAGS),
            attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
            url_schemes={"http", "https", "mailto"},
            link_rel="noopener noreferrer",
            strip_comments=True,
        )
    return nfc(cleaned.strip())


def html_to_text(fragment: str) -> str:
    """Readable plain text of (clean) HTML: blocks become lines, spaces collapsed, NFC."""
    if not fragment or not fragment.strip():
        return ""
    if "<" not in fragment:
        return nfc(" ".join(html.unescape(fragment).split()))
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (etree.ParserError, ValueError):
        return nfc(" ".join(html.unescape(_TAG_RE.sub(" ", fragment)).split()))
    pieces: list[str] = []

    def walk(element: etree._Element) -> None:
        if not isinstance(element.tag, str):  # comments, processing instructions
            if element.tail:
                pieces.append(element.tail)
            return
        block = element.tag in _BLOCKS
        if block:
            pieces.append("\n")
        if element.text:
            pieces.append(element.text)
        for child in element:
            walk(child)
        if block:
            pieces.append("\n")
        if element.tail:
            pieces.append(element.tail)

    walk(root)
    lines = (" ".join(line.split()) for line in "".join(pieces).split("\n"))
    return nfc("\n".join(line for line in lines if line))


def plain_text(value: str) -> str:
    """A title or other one-line field: tags removed, entities decoded (even double-escaped
    ones like `&amp;quot;`), whitespace collapsed, NFC."""
    if not value:
        return ""
    text = _TAG_RE.sub(" ", _SCRIPT_STYLE_RE.sub(" ", value)) if "<" in value else value
    for _ in range(2):  # "&amp;quot;" → "&quot;" → '"'
        if "&" not in text:
            break
        text = html.unescape(text)
        # An escaped tag ("&lt;script&gt;…") only becomes markup now: drop it too, with a
        # script's or style's content. Only real tag shapes (a letter after "<"), so a text
        # like "lãi suất < 5%" keeps its sign.
        if "<" in text:
            text = _MARKUP_RE.sub(" ", _SCRIPT_STYLE_RE.sub(" ", text))
    return nfc(" ".join(text.split()))


def image_sources(clean_fragment: str) -> list[str]:
    """`src` of every <img> in clean HTML, in order, without repeats."""
    if "<img" not in clean_fragment:
        return []
    found = re.findall(r"<img\b[^>]*?\bsrc=\"([^\"]+)\"", clean_fragment)
    return list(dict.fromkeys(html.unescape(src) for src in found))
