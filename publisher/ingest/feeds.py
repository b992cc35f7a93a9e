"""Feed documents → raw items. RSS 0.9x/1.0(RDF)/2.0, Atom 0.3/1.0 and JSON Feed 1.x.

Our own parser on lxml (see docs/decisions/feed-parser.md for why and the figures): it keeps
date strings as written (the zone decision belongs to the source, not to a library that
silently reads "11/14/2024 9:05:00 AM" as UTC), and it shares the hardened XML entry point
(`xmlsafe.parse_xml`), so every feed gets the same decoding and entity defences.

Output is raw: strings as found, links resolved against xml:base / the feed's link / the URL
it was fetched from. `normalize.py` turns raw items into `Article`s.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from html import escape as html_escape
from typing import Any, TypeAlias
from xml.etree import ElementTree

from lxml import etree

from publisher.ingest.errors import IngestError
from publisher.ingest.urls import absolute_url
from publisher.ingest.xmlsafe import (
    decode_document,
    parse_plain_utf8,
    parse_xml_text,
    read_plain_utf8,
)

NS_ATOM = "http://www.w3.org/2005/Atom"
NS_ATOM03 = "http://purl.org/atom/ns#"
NS_RSS10 = "http://purl.org/rss/1.0/"
NS_RSS090 = "http://my.netscape.com/rdf/simple/0.9/"
NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS_DC = "http://purl.org/dc/elements/1.1/"
NS_CONTENT = "http://purl.org/rss/1.0/modules/content/"
NS_MEDIA = "http://search.yahoo.com/mrss/"
NS_XML = "http://www.w3.org/XML/1998/namespace"
_XML_BASE = f"{{{NS_XML}}}base"


@dataclass(slots=True)
class RawItem:
    guid: str = ""
    link: str = ""
    title: str = ""  # may hold entities or markup; cleaned later
    title_is_html: bool = True
    summary_html: str = ""
    content_html: str = ""
    published: str = ""
    updated: str = ""
    images: list[str] = field(default_factory=list)
    video: str | None = None
    categories: list[str] = field(default_factory=list)
    author: str = ""


@dataclass(slots=True)
class ParsedFeed:
    format: str  # "rss2.0", "rss1.0", "rss0.90", "atom1.0", "atom0.3", "json1.1" …
    title: str
    link: str
    items: list[RawItem]
    encoding: str = "utf-8"
    note: str | None = None  # decoding remark (wrong declared encoding …)


# A feed's tree is lxml's, or ElementTree's for plain UTF-8 (`xmlsafe.read_plain_utf8`): the
# reading below uses what both have alike (tag, text, get, children, find, itertext).
Element: TypeAlias = etree._Element | ElementTree.Element


class _NeedsLxml(Exception):
    """Raised while reading an ElementTree tree where lxml's HTML serialiser is needed (an
    element's children written out as a fragment): the feed is read again from lxml's."""


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag


def _text(element: Element | None) -> str:
    if element is None:
        return ""
    return (
        (element.text or "").strip() if len(element) == 0 else "".join(element.itertext()).strip()
    )


def _inner_xml(element: Element) -> str:
    """Children serialised (Atom type="xhtml" content): an HTML fragment."""
    if not isinstance(element, etree._Element):
        raise _NeedsLxml
    parts = [element.text or ""]
    for child in element:
        etree.cleanup_namespaces(child)
        parts.append(etree.tostring(child, encoding="unicode", method="html", with_tail=True))
    return "".join(parts).strip()


# --- RSS ---------------------------------------------------------------------------------


def _media_from_element(item: RawItem, element: Element, base: str) -> None:
    url = absolute_url(element.get("url") or element.get("href"), base)
    if not url:
        return
    mime = (element.get("type") or "").lower()
    medium = (element.get("medium") or "").lower()
    if medium == "video" or mime.startswith("video/"):
        item.video = item.video or url
    elif medium == "image" or mime.startswith("image/") or _local(element.tag) == "thumbnail":
        item.images.append(url)


# RSS item children by full tag → the field they fill (one dict lookup per child).
_RSS_FIELDS: dict[str, str] = {}
for _ns in ("", f"{{{NS_RSS10}}}", f"{{{NS_RSS090}}}"):
    _RSS_FIELDS.update(
        {
            f"{_ns}title": "title",
            f"{_ns}link": "link",
            f"{_ns}guid": "guid",
            f"{_ns}description": "description",
            f"{_ns}pubDate": "pubDate",
            f"{_ns}enclosure": "media",
            f"{_ns}category": "category",
            f"{_ns}author": "author",
        }
    )
_RSS_FIELDS.update(
    {
        f"{{{NS_CONTENT}}}encoded": "content",
        f"{{{NS_DC}}}date": "dc_date",
        f"{{{NS_DC}}}creator": "dc_creator",
        f"{{{NS_DC}}}subject": "category",
        f"{{{NS_MEDIA}}}content": "media",
        f"{{{NS_MEDIA}}}thumbnail": "media",
        f"{{{NS_MEDIA}}}group": "media_group",
        f"{{{NS_ATOM}}}link": "atom_link",
    }
)


def _rss_item(element: Element, base: str) -> RawItem:
    item = RawItem()
    own_base = element.get(_XML_BASE)
    if own_base:
        base = absolute_url(own_base, base) or base
    for child in element:
        field_name = _RSS_FIELDS.get(child.tag)  # type: ignore[call-overload]
        if field_name is None:
            continue
        if field_name == "title":
            item.title = _text(child)
        elif field_name == "link":
            item.link = item.link or _text(child)
        elif field_name == "guid":
            item.guid = _text(child)
            if not item.link and child.get("isPermaLink", "true").lower() == "true":
                item.link = item.guid
        elif field_name == "description":
            item.summary_html = _text(child)
        elif field_name == "pubDate":
            item.published = _text(child)
        elif field_name == "content":
            item.content_html = _text(child)
        elif field_name == "dc_date":
            item.published = item.published or _text(child)
        elif field_name == "media":
            _media_from_element(item, child, base)
        elif field_name == "media_group":
            for media in child:
                if _local(media.tag) in ("content", "thumbnail"):
                    _media_from_element(item, media, base)
        elif field_name == "category":
            item.categories.append(_text(child))
        elif field_name == "author":
            item.author = _text(child)
        elif field_name == "dc_creator":
            item.author = item.author or _text(child)
        elif field_name == "atom_link" and not item.link:
            item.link = child.get("href") or ""
    if not item.guid:
        item.guid = element.get(f"{{{NS_RDF}}}about") or ""
    item.link = absolute_url(item.link, base)
    if not item.guid:
        item.guid = item.link
    return item


def _parse_rss(root: Element, base: str) -> ParsedFeed:
    channel = root.find("channel")
    if channel is None:
        raise IngestError("RSS document without a <channel>")
    base = absolute_url(channel.get(_XML_BASE), base) or base
    title = _text(channel.find("title"))
    link = _text(channel.find("link"))
    base = base or link
    items = [_rss_item(element, base) for element in channel.iterfind("item")]
    if not items:  # some RSS 0.91 feeds put items beside the channel
        items = [_rss_item(element, base) for element in root.iterfind("item")]
    version = root.get("version", "2.0")
    return ParsedFeed(f"rss{version}", title, absolute_url(link, base), items)


def _parse_rdf(root: Element, base: str) -> ParsedFeed:
    for ns, label in ((NS_RSS10, "rss1.0"), (NS_RSS090, "rss0.90")):
        channel = root.find(f"{{{ns}}}channel")
        elements = root.findall(f"{{{ns}}}item")
        if channel is not None or elements:
            title = _text(channel.find(f"{{{ns}}}title")) if channel is not None else ""
            link = _text(channel.find(f"{{{ns}}}link")) if channel is not None else ""
            base = base or link
            return ParsedFeed(label, title, link, [_rss_item(e, base) for e in elements])
    raise IngestError("RDF document that is not an RSS 1.0 or 0.90 feed")


# --- Atom --------------------------------------------------------------------------------


def _atom_content(element: Element | None, ns: str) -> tuple[str, bool]:
    """(text, is_html) of an Atom text construct."""
    if element is None:
        return "", False
    kind = (element.get("type") or "text").lower()
    if kind in ("xhtml", "application/xhtml+xml"):
        div = element.find("{http://www.w3.org/1999/xhtml}div")
        return (_inner_xml(div if div is not None else element), True)
    if ns == NS_ATOM03 and element.get("mode") == "xml":
        return _inner_xml(element), True
    text = (element.text or "").strip() if len(element) == 0 else _inner_xml(element)
    return text, kind in ("html", "text/html") or (ns == NS_ATOM03 and "html" in kind)


def _atom_link(element: Element, ns: str, base: str) -> str:
    fallback = ""
    for link in element.iterfind(f"{{{ns}}}link"):
        rel = link.get("rel", "alternate")
        href = absolute_url(link.get("href"), absolute_url(link.get(_XML_BASE), base) or base)
        if rel == "alternate" and (link.get("type") or "text/html").startswith("text/html"):
            return href
        if rel == "alternate" and not fallback:
            fallback = href
    return fallback


# Atom entry children by full tag → what they are, per namespace (one dict lookup per child).
_ATOM_DATES = ("published", "updated", "issued", "modified", "created")
_ATOM_FIELDS = {
    ns: {
        f"{{{ns}}}{name}": name
        for name in (
            "title",
            "id",
            "link",
            "summary",
            "content",
            "category",
            "author",
            *_ATOM_DATES,
        )
    }
    for ns in (NS_ATOM, NS_ATOM03)
}
_MEDIA_PREFIX = "{" + NS_MEDIA  # (as a prefix: what follows is not checked for the "}")


def _atom_entry(entry: Element, ns: str, base: str) -> RawItem:
    own_base = entry.get(_XML_BASE)
    if own_base:
        base = absolute_url(own_base, base) or base
    item = RawItem()
    fields = _ATOM_FIELDS.get(ns) or {
        f"{{{ns}}}{name}": name for name in _ATOM_FIELDS[NS_ATOM].values()
    }
    dates: dict[str, str] = {}
    links: list[tuple[str | None, Element]] = []  # (rel, link)
    for child in entry:  # one pass, by full tag
        name = fields.get(child.tag)  # type: ignore[call-overload]
        if name is None:
            tag = child.tag
            if isinstance(tag, str) and tag.startswith(_MEDIA_PREFIX):
                if tag[len(NS_MEDIA) + 2 :] in ("content", "thumbnail"):
                    _media_from_element(item, child, base)
                elif tag.endswith("}group"):
                    for media in child:
                        _media_from_element(item, media, base)
            continue
        if name == "title":
            item.title, item.title_is_html = _atom_content(child, ns)
        elif name == "id":
            item.guid = _text(child)
        elif name == "link":
            links.append((child.get("rel"), child))
        elif name == "summary":
            summary, is_html = _atom_content(child, ns)
            item.summary_html = summary if is_html else _escape(summary)
        elif name == "content":
            content, is_html = _atom_content(child, ns)
            item.content_html = content if is_html else _escape(content)
        elif name == "category":
            item.categories.append(child.get("term") or "")
        elif name == "author":
            author_name = child.find(f"{{{ns}}}name")
            item.author = _text(author_name)
        else:  # one of the dates
            dates[name] = _text(child)
    order = ("published", "updated") if ns == NS_ATOM else ("issued", "modified", "created")
    if dates:
        for date_name in order:
            if dates.get(date_name):
                item.published = dates[date_name]
                break
        item.updated = dates.get(order[1], "")
    item.link = _pick_atom_link(links, base)
    for rel, link in links:
        if rel == "enclosure":
            _media_from_element(item, link, base)
    item.guid = item.guid or item.link
    return item


def _pick_atom_link(links: list[tuple[str | None, Element]], base: str) -> str:
    fallback = ""
    for rel, link in links:
        if rel is not None and rel != "alternate":
            continue
        link_base = link.get(_XML_BASE)
        href = absolute_url(link.get("href"), absolute_url(link_base, base) if link_base else base)
        if (link.get("type") or "text/html").startswith("text/html"):
            return href
        fallback = fallback or href
    return fallback


def _escape(text: str) -> str:
    return html_escape(text, quote=False) if text else ""


def _parse_atom(root: Element, ns: str, base: str) -> ParsedFeed:
    base = absolute_url(root.get(_XML_BASE), base) or base
    title, _ = _atom_content(root.find(f"{{{ns}}}title"), ns)
    link = _atom_link(root, ns, base)
    base = base or link
    entries = [_atom_entry(e, ns, base) for e in root.iterfind(f"{{{ns}}}entry")]
    return ParsedFeed("atom1.0" if ns == NS_ATOM else "atom0.3", title, link, entries)


# --- JSON Feed ---------------------------------------------------------------------------


def _json_str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _parse_json_feed(text: str, base: str) -> ParsedFeed:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise IngestError(
            f"JSON Feed is not valid JSON: {error.msg} (line {error.lineno})"
        ) from error
    if not isinstance(document, dict) or not isinstance(document.get("items"), list):
        raise IngestError("JSON document is not a JSON Feed (no 'items' list)")
    version = _json_str(document.get("version")).rsplit("/", 1)[-1] or "1"
    link = _json_str(document.get("home_page_url"))
    base = base or link
    items: list[RawItem] = []
    for position, entry in enumerate(document["items"]):
        if not isinstance(entry, dict):
            raise IngestError(f"JSON Feed item {position} is not an object")
        item = RawItem(title_is_html=False)
        item.guid = str(entry.get("id") or "").strip()
        item.link = absolute_url(
            _json_str(entry.get("url")) or _json_str(entry.get("external_url")), base
        )
        item.title = _json_str(entry.get("title"))
        item.summary_html = _escape(_json_str(entry.get("summary")))
        item.content_html = _json_str(entry.get("content_html")) or _escape(
            _json_str(entry.get("content_text"))
        )
        item.published = _json_str(entry.get("date_published"))
        item.updated = _json_str(entry.get("date_modified"))
        for key in ("image", "banner_image"):
            url = absolute_url(_json_str(entry.get(key)), base)
            if url:
                item.images.append(url)
        attachments = entry.get("attachments")
        for attachment in attachments if isinstance(attachments, list) else []:
            if isinstance(attachment, dict):
                mime = _json_str(attachment.get("mime_type"))
                url = absolute_url(_json_str(attachment.get("url")), base)
                if url and mime.startswith("video/"):
                    item.video = item.video or url
                elif url and mime.startswith("image/"):
                    item.images.append(url)
        tags = entry.get("tags")
        item.categories = [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []
        item.guid = item.guid or item.link
        items.append(item)
    return ParsedFeed(f"json{version}", _json_str(document.get("title")), link, items)


# --- entry point -------------------------------------------------------------------------


def parse_feed(data: bytes, *, base_url: str = "", http_charset: str | None = None) -> ParsedFeed:
    """Parse any supported feed; `IngestError` with a clear sentence for anything else."""
    # Most feeds: plain UTF-8, read from their bytes with no decoding first, by ElementTree
    # (the quicker tree to walk) or, for what it does not read, lxml.
    stdlib = read_plain_utf8(data, http_charset=http_charset)
    if stdlib is not None:
        with contextlib.suppress(_NeedsLxml):  # (then lxml reads it, just below)
            return _with_encoding(parse_feed_tree(stdlib[0], base_url), "utf-8", stdlib[1])
    plain = parse_plain_utf8(data, http_charset=http_charset)
    if plain is not None:
        return _with_encoding(parse_feed_tree(plain[0], base_url), "utf-8", plain[1])
    decoded = decode_document(data, http_charset=http_charset, what="feed")
    text = decoded.text.lstrip("\ufeff \t\r\n")
    if text.startswith(("{", "[")):
        feed = _parse_json_feed(text, base_url)
    else:
        if not text.startswith("<"):
            raise IngestError("not a feed: the content is neither XML nor JSON")
        root = parse_xml_text(text, what="feed")
        feed = parse_feed_tree(root, base_url)
    return _with_encoding(feed, decoded.encoding, decoded.note)


def _with_encoding(feed: ParsedFeed, encoding: str, note: str | None) -> ParsedFeed:
    feed.encoding, feed.note = encoding, note
    return feed


def parse_feed_tree(root: Element, base_url: str = "") -> ParsedFeed:
    tag = root.tag if isinstance(root.tag, str) else ""
    name = _local(tag)
    if name == "rss":
        return _parse_rss(root, base_url)
    if name == "RDF":
        return _parse_rdf(root, base_url)
    if tag == f"{{{NS_ATOM}}}feed":
        return _parse_atom(root, NS_ATOM, base_url)
    if tag == f"{{{NS_ATOM03}}}feed":
        return _parse_atom(root, NS_ATOM03, base_url)
    if name == "feed":  # Atom without its namespace: read as 1.0
        return _parse_atom_without_ns(root, base_url)
    if name.lower() == "html":
        raise IngestError("not a feed: got an HTML page (a page source needs CSS selectors)")
    raise IngestError(f"not a feed: unknown root element <{name}>")


def _parse_atom_without_ns(root: Element, base_url: str) -> ParsedFeed:
    for element in root.iter():
        if isinstance(element.tag, str) and not element.tag.startswith("{"):
            element.tag = f"{{{NS_ATOM}}}{element.tag}"
    return _parse_atom(root, NS_ATOM, base_url)
