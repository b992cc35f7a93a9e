"""HTML sources: a listing page gives links; each article page gives title, date, lead, body.

For sections without a working feed (the central directives section has had none for years).
Each source may give CSS selectors; without them a generic extractor reads the metadata that
portals do carry (Open Graph, `article:published_time`, `itemprop`, `<time>`, `<article>`).

Selector keys (all optional):
  listing: `links` (anchors of article links; default: anchors inside `article`, `h2`, `h3`)
  article: `title`, `date`, `lead`, `body`, `images` (img elements), `remove` (noise inside
           the body: share bars, related links)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import lxml.html
from cssselect import SelectorError
from lxml import etree

from publisher.ingest.errors import IngestError
from publisher.ingest.feeds import RawItem
from publisher.ingest.urls import absolute_url, canonical_url
from publisher.ingest.xmlsafe import XML_DECLARATION_RE, decode_document

SELECTOR_KEYS = frozenset({"links", "title", "date", "lead", "body", "images", "remove"})
_DEFAULT_LINKS = "article a[href], h2 a[href], h3 a[href], .title a[href], .story a[href]"
_BODY_GUESSES = (
    "[itemprop=articleBody]",
    "article .content",
    ".detail-content",
    ".article-content",
    ".news-content",
    "article",
    ".content",
)


def parse_html(
    data: bytes, *, http_charset: str | None = None, what: str = "page"
) -> etree._Element:
    decoded = decode_document(data, http_charset=http_charset or _meta_charset(data), what=what)
    text = XML_DECLARATION_RE.sub("", decoded.text.lstrip("\ufeff"), count=1)
    if "<" not in text[:4096] and "<" not in text:
        raise IngestError(f"{what} is not HTML")
    try:
        root = lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError) as error:
        raise IngestError(f"{what} cannot be parsed as HTML: {error}") from error
    return root


def _meta_charset(data: bytes) -> str | None:
    head = data[:2048].lower()
    marker = head.find(b"charset=")
    if marker < 0:
        return None
    value = head[marker + 8 : marker + 40].strip(b"\"' ")
    end = next((i for i, c in enumerate(value) if chr(c) in "\"' ;>/"), len(value))
    return value[:end].decode("ascii", "ignore") or None


def check_selectors(selectors: Mapping[str, str]) -> list[str]:
    """Problems with a source's selectors (unknown keys, bad CSS), for `config check`."""
    problems = []
    for key, css in selectors.items():
        if key not in SELECTOR_KEYS:
            problems.append(
                f"selectors: unknown key {key!r} (known: {', '.join(sorted(SELECTOR_KEYS))})"
            )
            continue
        try:
            lxml.html.fromstring("<p></p>").cssselect(css)
        except SelectorError as error:
            problems.append(f"selectors.{key}: invalid CSS {css!r}: {error}")
    return problems


def _select(root: etree._Element, css: str, key: str) -> list[etree._Element]:
    try:
        return list(root.cssselect(css))
    except SelectorError as error:
        raise IngestError(f"selectors.{key}: invalid CSS {css!r}: {error}") from error


def listing_links(data: bytes, *, page_url: str, selectors: Mapping[str, str]) -> list[str]:
    """Absolute, canonical, de-duplicated article links of a listing page, in page order."""
    root = parse_html(data, what="listing page")
    css = selectors.get("links") or _DEFAULT_LINKS
    links: list[str] = []
    for anchor in _select(root, css, "links"):
        href = anchor.get("href") if anchor.tag == "a" else None
        if href is None:
            inner = anchor.find(".//a[@href]")
            href = inner.get("href") if inner is not None else None
        url = absolute_url(href, page_url)
        if url and canonical_url(url) != canonical_url(page_url):
            links.append(canonical_url(url))
    return list(dict.fromkeys(links))


def _meta(root: etree._Element, *names: str) -> str:
    for name in names:
        for attribute in ("property", "name", "itemprop"):
            found = root.xpath(f"//meta[@{attribute}=$n]/@content", n=name)
            if found and str(found[0]).strip():
                return str(found[0]).strip()
    return ""


def _outer_html(elements: list[etree._Element]) -> str:
    return "".join(
        etree.tostring(e, encoding="unicode", method="html", with_tail=False) for e in elements
    )


def _text_of(elements: list[etree._Element]) -> str:
    return " ".join(" ".join(e.text_content().split()) for e in elements).strip()


@dataclass(frozen=True, slots=True)
class PageArticle:
    item: RawItem
    found_by: str  # "selectors" or "generic": how the body was found


def extract_article(data: bytes, *, page_url: str, selectors: Mapping[str, str]) -> PageArticle:
    """One article page → a raw item (HTML still dirty: normalisation sanitises it)."""
    root = parse_html(data, what="article page")
    if not page_url:  # a saved file: its canonical link is the best base there is
        canonical_links = root.xpath("//link[@rel='canonical']/@href")
        page_url = absolute_url(str(canonical_links[0]), None) if canonical_links else ""
    if page_url:
        root.make_links_absolute(page_url, resolve_base_href=True)
    for css in filter(None, [selectors.get("remove")]):
        for element in _select(root, css, "remove"):
            element.drop_tree()

    def pick(key: str) -> list[etree._Element]:
        css = selectors.get(key)
        return _select(root, css, key) if css else []

    title = _text_of(pick("title")[:1]) or _meta(root, "og:title", "headline")
    if not title:
        heading = root.find(".//h1")
        title = _text_of([heading]) if heading is not None else ""
    if not title:
        title_element = root.find(".//title")
        title = _text_of([title_element]) if title_element is not None else ""

    date_elements = pick("date")[:1]
    date = ""
    if date_elements:
        date = (
            date_elements[0].get("datetime")
            or date_elements[0].get("content")
            or _text_of(date_elements)
        )
    date = date or _meta(root, "article:published_time", "datePublished", "pubdate", "date")
    if not date:
        times = root.xpath("//time/@datetime")
        date = str(times[0]) if times else ""

    lead = _text_of(pick("lead")[:1]) or _meta(root, "og:description", "description")

    body_elements = pick("body")[:1]
    found_by = "selectors" if body_elements else "generic"
    if not body_elements and not selectors.get("body"):
        for css in _BODY_GUESSES:
            body_elements = root.cssselect(css)[:1]
            if body_elements:
                break
    body_html = _outer_html(body_elements)

    images = [absolute_url(img.get("src"), page_url) for img in pick("images")]
    og_image = absolute_url(_meta(root, "og:image"), page_url)
    if og_image:
        images.append(og_image)

    if not title:
        raise IngestError("article page has no title (selectors.title matched nothing)")
    if selectors.get("body") and not body_elements:
        raise IngestError(f"article page: selectors.body {selectors['body']!r} matched nothing")
    canonical = root.xpath("//link[@rel='canonical']/@href")
    link = absolute_url(str(canonical[0]), page_url) if canonical else page_url
    item = RawItem(
        guid=canonical_url(link or page_url),
        link=link or page_url,
        title=title,
        title_is_html=False,
        summary_html=_escape(lead),
        content_html=body_html,
        published=date,
        images=[i for i in images if i],
    )
    return PageArticle(item, found_by)


def _escape(text: str) -> str:
    from html import escape

    return escape(text, quote=False)
