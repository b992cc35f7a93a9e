"""What ingestion needs from storage, and an in-memory implementation for tests.

The SQL implementation over the lead's tables is `publisher.store.ingest_sql.SqlIngestStore`.
Both must behave the same; `tests/ingest/test_store_contract.py` runs one suite over both.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from publisher.domain import Article, init_through_slots


@init_through_slots
@dataclass(frozen=True, slots=True)
class DedupKeys:
    """The three identities of an item: any one match means "already have it"."""

    guid: str = ""
    canonical_url: str = ""
    content_hash: str = ""


@dataclass(frozen=True, slots=True)
class PollState:
    """A source's polling memory between cycles."""

    source_id: str
    etag: str | None = None
    last_modified: str | None = None
    next_poll_at: datetime | None = None
    last_polled_at: datetime | None = None
    failures: int = 0
    last_error: str | None = None
    backlog_recorded: bool = False  # the first successful poll happened


@dataclass(frozen=True, slots=True)
class StoredArticle:
    id: int
    article: Article
    canonical_url: str
    backlog: bool
    sources: tuple[str, ...]


class IngestStore(Protocol):
    def find_duplicate(self, keys: DedupKeys) -> int | None:
        """Id of a stored article matching any non-empty key, or None."""
        ...

    def add_article(
        self,
        article: Article,
        *,
        keys: DedupKeys,
        source_id: str,
        backlog: bool,
        seen_at: datetime,
    ) -> int:
        """Store a new article and its first source link; returns its id."""
        ...

    def link_source(self, article_id: int, *, source_id: str, guid: str, seen_at: datetime) -> bool:
        """Record that `source_id` also carries the article; False if it was already known."""
        ...

    def load_poll_state(self, source_id: str) -> PollState: ...

    def save_poll_state(self, state: PollState) -> None: ...


@dataclass
class MemoryIngestStore:
    """Dictionaries behind a lock: a supported implementation, not test debris."""

    articles: dict[int, StoredArticle] = field(default_factory=dict)
    _by_guid: dict[str, int] = field(default_factory=dict)
    _by_url: dict[str, int] = field(default_factory=dict)
    _by_hash: dict[str, int] = field(default_factory=dict)
    _links: dict[tuple[str, str], int] = field(default_factory=dict)
    _states: dict[str, PollState] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def find_duplicate(self, keys: DedupKeys) -> int | None:
        with self._lock:
            for key, index in (
                (keys.guid, self._by_guid),
                (keys.canonical_url, self._by_url),
                (keys.content_hash, self._by_hash),
            ):
                if key and key in index:
                    return index[key]
        return None

    def add_article(
        self,
        article: Article,
        *,
        keys: DedupKeys,
        source_id: str,
        backlog: bool,
        seen_at: datetime,
    ) -> int:
        del seen_at
        with self._lock:
            new_id = len(self.articles) + 1
            self.articles[new_id] = StoredArticle(
                new_id, replace(article, id=new_id), keys.canonical_url, backlog, (source_id,)
            )
            for key, index in (
                (keys.guid, self._by_guid),
                (keys.canonical_url, self._by_url),
                (keys.content_hash, self._by_hash),
            ):
                if key:
                    index.setdefault(key, new_id)
            self._links[(source_id, keys.guid or article.guid)] = new_id
        return new_id

    def link_source(self, article_id: int, *, source_id: str, guid: str, seen_at: datetime) -> bool:
        del seen_at
        with self._lock:
            if (source_id, guid) in self._links:
                return False
            self._links[(source_id, guid)] = article_id
            if guid:
                self._by_guid.setdefault(guid, article_id)
            stored = self.articles[article_id]
            if source_id not in stored.sources:
                self.articles[article_id] = replace(stored, sources=(*stored.sources, source_id))
            return True

    def load_poll_state(self, source_id: str) -> PollState:
        with self._lock:
            return self._states.get(source_id) or PollState(source_id)

    def save_poll_state(self, state: PollState) -> None:
        with self._lock:
            self._states[state.source_id] = state
