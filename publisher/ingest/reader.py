"""One document (file bytes or a fetched body) → normalised articles, whatever its format.

What `publisher ingest SOURCE` uses: the format is sniffed from the content, not the name —
article JSON, JSON Feed, RSS/Atom/RDF, or an HTML article page.
"""

from __future__ import annotations

import json
from datetime import datetime

from publisher.domain import Article
from publisher.ingest.article_json import parse_article_documents
from publisher.ingest.errors import IngestError
from publisher.ingest.feeds import parse_feed
from publisher.ingest.normalize import SourceContext, normalise_feed, normalise_item
from publisher.ingest.pages import extract_article
from publisher.ingest.xmlsafe import decode_document


def sniff(data: bytes) -> str:
    """ "article-json", "json-feed", "xml" or "html"."""
    decoded = decode_document(data, what="input")
    head = decoded.text.lstrip("\ufeff \t\r\n")[:2048]
    if head.startswith(("{", "[")):
        try:
            document = json.loads(decoded.text)
        except json.JSONDecodeError as error:
            raise IngestError(f"not valid JSON: {error.msg} (line {error.lineno})") from error
        if isinstance(document, dict) and isinstance(document.get("items"), list):
            return "json-feed"
        return "article-json"
    lowered = head.lower()
    if lowered.startswith("<!doctype html") or "<html" in lowered:
        return "html"
    if head.startswith("<"):
        return "xml"
    raise IngestError("unrecognised content: not a feed, an HTML page or article JSON")


def read_document(
    data: bytes, context: SourceContext, *, now: datetime, http_charset: str | None = None
) -> tuple[list[Article], list[str]]:
    """(articles, problems): problems are item-level notes; bad input raises IngestError."""
    kind = sniff(data)
    if kind == "article-json":
        return parse_article_documents(data, context), []
    if kind == "html":
        page = extract_article(data, page_url=context.base_url, selectors={})
        try:
            return [normalise_item(page.item, context, now=now)], []
        except ValueError as error:
            raise IngestError(f"HTML page: {error}") from error
    feed = parse_feed(data, base_url=context.base_url, http_charset=http_charset)
    normalised = normalise_feed(feed, context, now=now)
    problems = list(normalised.problems)
    if feed.note:
        problems.insert(0, f"encoding: {feed.note}")
    return normalised.articles, problems
