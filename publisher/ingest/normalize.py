"""Raw items → `Article`s: NFC text, clean HTML, aware dates, absolute links, content hash."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlsplit

from publisher.domain import Article, ArticleKind, Source, sha256_hex
from publisher.ingest.dates import parse_date, zone_of
from publisher.ingest.feeds import ParsedFeed, RawItem
from publisher.ingest.sanitize import clean_with_text, plain_text
from publisher.ingest.urls import absolute_url, canonical_url, scoped_guid
from publisher.text import collapse_spaces, matching_key, may_have_old_tone_style, nfc

# "(Chinhphu.vn) - ", "(baochinhphu.vn) – ", "(HNP) - ": the portal's own byline tag at the
# start of a lead. It says where the text comes from, which the source line says again.
_LEAD_TAG_RE = re.compile(r"^\s*\(\s*[\w.\- ]{2,40}\s*\)\s*[-–—:]\s*")


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What normalisation needs to know about where items came from."""

    id: str
    name: str = ""  # shown as the article's source, e.g. "baochinhphu.vn"
    unit_code: str | None = None
    kind: ArticleKind = ArticleKind.ARTICLE
    timezone: str = "+07:00"
    base_url: str = ""
    category: str | None = None

    @classmethod
    def of(cls, source: Source, *, name: str = "") -> SourceContext:
        return cls(
            id=source.id,
            name=name or (urlsplit(source.url).hostname or source.id),
            unit_code=source.unit_code,
            kind=source.article_kind,
            timezone=source.timezone,
            base_url=source.url,
            category=source.category,
        )


def strip_lead_tag(text: str) -> str:
    tag = _LEAD_TAG_RE.match(text)
    return text[tag.end() :] if tag is not None else text


def content_hash(title: str, body_text: str) -> str:
    """Hash of the matching form of title + text; empty when there is no text to compare.

    A title alone is not enough: portals publish many items titled "Thông báo" or
    "Lịch công tác tuần" that are different articles.
    """
    if not body_text.strip():
        return ""
    return sha256_hex(matching_key(title) + "\n" + matching_key(body_text))


def _normalised_content_hash(title: str, body_text: str) -> str:
    """`content_hash(title, body_text)` for a title and text as `normalise_item` makes them:
    NFC, white space collapsed (the title on one line, the text in non-empty lines).

    For those the matching keys' own NFC and collapsing change nothing, so they are not done
    again, and both keys come from one pass: "title\ntext with its line breaks as spaces",
    casefolded, is the two keys with "\n" between — unless a tone mark is to be moved, which
    the casefolded bytes tell (`may_have_old_tone_style`: if they say maybe, the general
    way decides). A title with a line break also goes the general way.
    tests/ingest/test_normalise_fast.py compares both ways.
    """
    if not body_text.strip():
        return ""
    if "\n" in title:
        return content_hash(title, body_text)
    key = (title + "\n" + body_text.replace("\n", " ")).casefold().encode()
    if may_have_old_tone_style(key):
        return content_hash(title, body_text)
    return hashlib.sha256(key).hexdigest()  # (sha256_hex of the key, already encoded)


def normalise_item(item: RawItem, context: SourceContext, *, now: datetime) -> Article:
    """One raw item → an Article. `now` stands in for a missing or unreadable date."""
    base = context.base_url
    title = plain_text(item.title) if item.title_is_html else nfc(collapse_spaces(item.title))
    # Clean HTML, its text and its images in one go (the same three as clean_html,
    # html_to_text and image_sources one after the other).
    body_html, body_text, body_images = clean_with_text(
        item.content_html or item.summary_html, base_url=base
    )
    if item.content_html:
        _, summary_text, summary_images = clean_with_text(item.summary_html, base_url=base)
    else:
        summary_text, summary_images = body_text, []
    summary = strip_lead_tag(summary_text.replace("\n", " "))
    published = parse_date(item.published, default_zone=context.timezone) or parse_date(
        item.updated, default_zone=context.timezone
    )
    if published is None:
        published = now.astimezone(zone_of(context.timezone))
    if item.images or summary_images:
        images = tuple(filter(None, dict.fromkeys([*item.images, *body_images, *summary_images])))
    else:  # (clean_with_text gives them without repeats)
        images = tuple(filter(None, body_images)) if body_images else ()
    link = canonical_url(absolute_url(item.link, base))
    guid = scoped_guid(item.guid or link, context.id)
    if not title and not body_text:
        raise ValueError("item without a title or text")
    # Every field by position, in the order Article declares them: keywords cost a third
    # more per call, and this runs for every item of every poll.
    return Article(
        guid,
        link,
        title or summary[:120],
        published,  # published_at
        summary,
        body_html,
        body_text,
        images,
        item.video,
        "vi",  # language
        context.name,  # source
        context.kind,
        context.unit_code,
        context.category or (item.categories[0] if item.categories else None),
        False,  # urgent
        _normalised_content_hash(title, body_text),
        None,  # id
    )


@dataclass(frozen=True, slots=True)
class Normalised:
    articles: list[Article]
    problems: list[str]  # one line per item that was skipped, and why


def normalise_feed(feed: ParsedFeed, context: SourceContext, *, now: datetime) -> Normalised:
    if not context.base_url and feed.link:
        context = replace(context, base_url=feed.link)
    if not context.name and feed.link:
        context = replace(context, name=urlsplit(feed.link).hostname or "")
    articles: list[Article] = []
    problems: list[str] = []
    for position, item in enumerate(feed.items, start=1):
        try:
            articles.append(normalise_item(item, context, now=now))
        except ValueError as error:
            problems.append(f"item {position}: {error}")
    return Normalised(articles, problems)


def dedup_url(article: Article) -> str:
    return canonical_url(article.url)
