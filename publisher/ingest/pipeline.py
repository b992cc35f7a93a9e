"""Record normalised articles: every new item once, duplicates linked, backlog marked."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from publisher.domain import Article
from publisher.ingest.store import DedupKeys, IngestStore
from publisher.ingest.urls import canonical_url


def keys_of(article: Article) -> DedupKeys:
    # (guid, canonical URL, content hash: positional, it is called for every item polled)
    return DedupKeys(article.guid, canonical_url(article.url), article.content_hash)


@dataclass
class RecordReport:
    new_ids: list[int] = field(default_factory=list)  # stored now (publishable unless backlog)
    linked_ids: list[int] = field(default_factory=list)  # known article, new source for it
    duplicates: int = 0  # already known from this same source
    backlog: bool = False

    @property
    def new(self) -> int:
        return len(self.new_ids)


def record_articles(
    store: IngestStore,
    articles: list[Article],
    *,
    source_id: str,
    backlog: bool,
    seen_at: datetime,
) -> RecordReport:
    """Store each article unless a stored one matches by GUID, canonical URL or content hash.

    A match from another source links that source to the stored article (one article, two
    sources). `backlog=True` for a source's first successful poll: stored, never published.
    """
    report = RecordReport(backlog=backlog)
    for article in articles:
        keys = keys_of(article)
        existing = store.find_duplicate(keys)
        if existing is None:
            report.new_ids.append(
                store.add_article(
                    article, keys=keys, source_id=source_id, backlog=backlog, seen_at=seen_at
                )
            )
        elif store.link_source(existing, source_id=source_id, guid=article.guid, seen_at=seen_at):
            report.linked_ids.append(existing)
        else:
            report.duplicates += 1
    return report
