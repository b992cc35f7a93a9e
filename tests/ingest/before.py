"""The ingest steps as they were before the fast paths (issue 13), kept as the reference the
fast paths are compared with: each function here is the code of commit 6395458, only renamed.

Nothing in here is used by the application. The tests beside it check, on the corpus, on the
benchmark's feeds and on generated input, that today's code gives byte-identical results.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, tzinfo
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import lxml.html
import nh3
from lxml import etree

from publisher.domain import Article, sha256_hex
from publisher.ingest import sanitize
from publisher.ingest.dates import zone_of
from publisher.ingest.feeds import (
    NS_ATOM,
    NS_MEDIA,
    RawItem,
    _atom_content,
    _escape,
    _media_from_element,
    _text,
)
from publisher.ingest.normalize import SourceContext
from publisher.ingest.urls import _canonical_url_parsed, absolute_url
from publisher.text import _OLD_TO_NEW_TONE, nfc

# --- text.py ---------------------------------------------------------------------------------

_OLD_TONE_RE = re.compile(
    "(" + "|".join(sorted(_OLD_TO_NEW_TONE, key=len, reverse=True)) + r")(?!\w)", re.IGNORECASE
)


def unify_tone_style(text: str) -> str:
    def swap(match: re.Match[str]) -> str:
        found = match.group(1)
        new = _OLD_TO_NEW_TONE[found.lower()]
        if found.isupper():
            return new.upper()
        return new[0].upper() + new[1:] if found[0].isupper() else new

    return _OLD_TONE_RE.sub(swap, nfc(text))


def matching_key(text: str) -> str:
    return " ".join(unify_tone_style(text).casefold().split())


# --- sanitize.py: nh3 for every fragment, lxml for the text of every fragment with a tag ------


def clean_html(fragment: str, *, base_url: str | None = None) -> str:
    if not fragment or not fragment.strip():
        return ""
    cleaned = sanitize._nh3_clean(fragment)
    if base_url and sanitize._RELATIVE_URL_RE.search(cleaned):
        cleaned = nh3.clean(
            sanitize._absolutise(cleaned, base_url),
            tags=set(sanitize.ALLOWED_TAGS),
            attributes={t: set(n) for t, n in sanitize.ALLOWED_ATTRIBUTES.items()},
            url_schemes={"http", "https", "mailto"},
            link_rel="noopener noreferrer",
            strip_comments=True,
        )
    return nfc(cleaned.strip())


_BLOCKS = sanitize._BLOCKS
_TAG_RE = re.compile(r"<[^>]*>")


def html_to_text(fragment: str) -> str:
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


_MARKUP_RE = re.compile(r"<(?:[A-Za-z/!?][^<>]*)>")
_SCRIPT_STYLE_RE = re.compile(r"<(script|style)\b[^>]*>.*?(?:</\1\s*>|$)", re.I | re.S)


def plain_text(value: str) -> str:
    if not value:
        return ""
    text = _TAG_RE.sub(" ", _SCRIPT_STYLE_RE.sub(" ", value)) if "<" in value else value
    for _ in range(2):
        if "&" not in text:
            break
        text = html.unescape(text)
        if "<" in text:
            text = _MARKUP_RE.sub(" ", _SCRIPT_STYLE_RE.sub(" ", text))
    return nfc(" ".join(text.split()))


_IMG_SRC_RE = re.compile(r"<img\b[^>]*?\bsrc=\"([^\"]+)\"")


def image_sources(clean_fragment: str) -> list[str]:
    if "<img" not in clean_fragment:
        return []
    found = _IMG_SRC_RE.findall(clean_fragment)
    return list(dict.fromkeys(html.unescape(src) for src in found))


# --- dates.py ----------------------------------------------------------------------------------

_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?)?\s*"
    r"(Z|[+-]\d{2}:?\d{2})?$",
    re.I,
)
_SLASH_RE = re.compile(
    r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})"
    r"(?:\s*(?:-|,|lúc)?\s*(\d{1,2})[:h](\d{2})(?::(\d{2}))?\s*(AM|PM|SA|CH)?)?",
    re.I,
)
_TIME_FIRST_RE = re.compile(
    r"(\d{1,2})[:h](\d{2})(?::(\d{2}))?\s*(AM|PM)?\s*(?:,|-|ngày)?\s*"
    r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})",
    re.I,
)
_RFC822_NO_DAY_RE = re.compile(r"^\d{1,2} [A-Za-z]{3} \d{2,4}")
_ZONE_WORDS = {"ict": "+0700", "ict+7": "+0700", "gmt+7": "+0700", "utc+7": "+0700"}


def _build(
    tz: tzinfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime | None:
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=tz)
    except ValueError:
        return None


def _twelve_hour(hour: int, marker: str | None) -> int:
    if not marker:
        return hour
    pm = marker.upper() in ("PM", "CH")
    if hour == 12:
        return 12 if pm else 0
    return hour + 12 if pm else hour


def _from_slashes(
    tz: tzinfo, a: int, b: int, year: int, hour: int, minute: int, second: int, twelve: bool
) -> datetime | None:
    month_first = twelve
    if a > 12 >= b:
        month_first = False
    elif b > 12 >= a:
        month_first = True
    month, day = (a, b) if month_first else (b, a)
    return _build(tz, year, month, day, hour, minute, second)


def parse_date(value: str | None, *, default_zone: str = "+07:00") -> datetime | None:
    if value is None:
        return None
    text = " ".join(value.split())
    if not text:
        return None
    tz = zone_of(default_zone)
    parsed = _parse(text, tz)
    return parsed.astimezone(tz) if parsed is not None else None


def _parse(text: str, tz: tzinfo) -> datetime | None:
    iso = _ISO_RE.match(text)
    if iso:
        year, month, day, hour, minute, second, zone = iso.groups()
        when = _build(
            tz, int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
        if when is not None and zone:
            own = UTC if zone.upper() == "Z" else zone_of(zone)
            when = when.replace(tzinfo=own)
        return when
    if "," in text[:5] or _RFC822_NO_DAY_RE.match(text):
        rfc = _parse_rfc822(text, tz)
        if rfc is not None:
            return rfc
    slash = _SLASH_RE.search(text)
    time_first = _TIME_FIRST_RE.search(text)
    if slash and (slash.group(4) is not None or time_first is None):
        a, b, year, hour, minute, second, marker = slash.groups()
        return _from_slashes(
            tz,
            int(a),
            int(b),
            int(year),
            _twelve_hour(int(hour or 0), marker),
            int(minute or 0),
            int(second or 0),
            twelve=bool(marker and marker.upper() in ("AM", "PM")),
        )
    if time_first:
        hour, minute, second, marker, a, b, year = time_first.groups()
        return _from_slashes(
            tz,
            int(a),
            int(b),
            int(year),
            _twelve_hour(int(hour), marker),
            int(minute),
            int(second or 0),
            twelve=bool(marker),
        )
    return _parse_rfc822(text, tz)


def _parse_rfc822(text: str, tz: tzinfo) -> datetime | None:
    words = text.rsplit(" ", 1)
    if len(words) == 2 and words[1].lower() in _ZONE_WORDS:
        text = f"{words[0]} {_ZONE_WORDS[words[1].lower()]}"
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=tz)
    return parsed


# --- urls.py -----------------------------------------------------------------------------------


def canonical_url(url: str) -> str:
    url = url.strip()
    return _canonical_url_parsed(url) if url else ""


def is_absolute_uri(value: str) -> bool:
    if "[" not in value and "]" not in value:
        if ":" not in value:
            return False
        if value.startswith(("https://", "http://")):
            return True
    scheme = urlsplit(value).scheme
    return bool(scheme) and (value.startswith(("tag:", "urn:")) or "//" in value)


def scoped_guid(guid: str, source_id: str) -> str:
    guid = guid.strip()
    if not guid or is_absolute_uri(guid):
        return guid
    return f"{source_id}#{guid}"


# --- normalize.py ------------------------------------------------------------------------------

_LEAD_TAG_RE = re.compile(r"^\s*\(\s*[\w.\- ]{2,40}\s*\)\s*[-–—:]\s*")


def strip_lead_tag(text: str) -> str:
    return _LEAD_TAG_RE.sub("", text, count=1)


def content_hash(title: str, body_text: str) -> str:
    if not body_text.strip():
        return ""
    return sha256_hex(matching_key(title) + "\n" + matching_key(body_text))


def normalise_item(item: RawItem, context: SourceContext, *, now: datetime) -> Article:
    base = context.base_url
    title = plain_text(item.title) if item.title_is_html else nfc(" ".join(item.title.split()))
    body_html = clean_html(item.content_html or item.summary_html, base_url=base)
    summary_html = clean_html(item.summary_html, base_url=base) if item.content_html else body_html
    body_text = html_to_text(body_html)
    summary_text = body_text if summary_html is body_html else html_to_text(summary_html)
    summary = strip_lead_tag(summary_text.replace("\n", " "))
    published = parse_date(item.published, default_zone=context.timezone) or parse_date(
        item.updated, default_zone=context.timezone
    )
    if published is None:
        published = now.astimezone(zone_of(context.timezone))
    summary_images = image_sources(summary_html) if summary_html is not body_html else []
    images = list(dict.fromkeys([*item.images, *image_sources(body_html), *summary_images]))
    link = canonical_url(absolute_url(item.link, base))
    guid = scoped_guid(item.guid or link, context.id)
    if not title and not body_text:
        raise ValueError("item without a title or text")
    return Article(
        guid=guid,
        url=link,
        title=title or summary[:120],
        published_at=published,
        summary=summary,
        body_html=body_html,
        body_text=body_text,
        images=tuple(i for i in images if i),
        video=item.video,
        source=context.name,
        kind=context.kind,
        unit_code=context.unit_code,
        category=context.category or (item.categories[0] if item.categories else None),
        content_hash=content_hash(title, body_text),
    )


# --- feeds.py: one Atom entry --------------------------------------------------------------------

_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"


def atom_entry(entry: etree._Element, ns: str, base: str) -> RawItem:
    own_base = entry.get(_XML_BASE)
    if own_base:
        base = absolute_url(own_base, base) or base
    item = RawItem()
    prefix = len(ns) + 2
    dates: dict[str, str] = {}
    links: list[etree._Element] = []
    for child in entry:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if tag.startswith("{" + NS_MEDIA):
            if tag[len(NS_MEDIA) + 2 :] in ("content", "thumbnail"):
                _media_from_element(item, child, base)
            elif tag.endswith("}group"):
                for media in child:
                    _media_from_element(item, media, base)
            continue
        if not tag.startswith("{" + ns + "}"):
            continue
        name = tag[prefix:]
        if name == "title":
            item.title, item.title_is_html = _atom_content(child, ns)
        elif name == "id":
            item.guid = _text(child)
        elif name == "link":
            links.append(child)
        elif name == "summary":
            summary, is_html = _atom_content(child, ns)
            item.summary_html = summary if is_html else _escape(summary)
        elif name == "content":
            content, is_html = _atom_content(child, ns)
            item.content_html = content if is_html else _escape(content)
        elif name in ("published", "updated", "issued", "modified", "created"):
            dates[name] = _text(child)
        elif name == "category":
            item.categories.append(child.get("term") or "")
        elif name == "author":
            author_name = child.find(f"{{{ns}}}name")
            item.author = _text(author_name)
    order = ("published", "updated") if ns == NS_ATOM else ("issued", "modified", "created")
    item.published = next((dates[n] for n in order if dates.get(n)), "")
    item.updated = dates.get(order[1], "")
    item.link = _pick_atom_link(links, base)
    for link in links:
        if link.get("rel") == "enclosure":
            _media_from_element(item, link, base)
    item.guid = item.guid or item.link
    return item


def _pick_atom_link(links: list[etree._Element], base: str) -> str:
    fallback = ""
    for link in links:
        rel = link.get("rel", "alternate")
        if rel != "alternate":
            continue
        link_base = link.get(_XML_BASE)
        href = absolute_url(link.get("href"), absolute_url(link_base, base) if link_base else base)
        if (link.get("type") or "text/html").startswith("text/html"):
            return href
        fallback = fallback or href
    return fallback
