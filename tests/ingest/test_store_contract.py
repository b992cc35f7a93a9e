"""One suite over both IngestStore implementations: in memory, SQLite (and PostgreSQL in CI)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from publisher.domain import Article, Source, SourceKind, Unit
from publisher.ingest.pipeline import record_articles
from publisher.ingest.store import DedupKeys, IngestStore, MemoryIngestStore, PollState
from publisher.store.engine import make_engine, upgrade
from publisher.store.ingest_sql import SqlIngestStore
from publisher.store.sql import SqlRepository

NOW = datetime(2025, 3, 1, 1, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IngestStore]:
    if request.param == "memory":
        yield MemoryIngestStore()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ingest.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url)
    engine = make_engine(url)
    repository = SqlRepository(engine)
    repository.upsert_units([Unit(code="root", name="Trung ương", kind="central")])
    repository.upsert_sources(
        [Source(id=s, unit_code="root", kind=SourceKind.FEED, url=f"https://{s}.vn/rss")
         for s in ("bcp", "qn", "feed")]
    )  # fmt: skip
    yield SqlIngestStore(engine)
    engine.dispose()


def article(n: int, **changes: object) -> Article:
    values: dict[str, object] = {
        "guid": f"bcp#{n}",
        "url": f"https://baochinhphu.vn/tin-{n}.htm",
        "title": f"Tin số {n}",
        "published_at": datetime(2024, 11, 14, 9, 5, tzinfo=UTC) + timedelta(hours=n),
        "body_text": f"Nội dung tin số {n}",
        "content_hash": f"{n:064x}",
        "unit_code": "root",
    }
    values.update(changes)
    return Article(**values)  # type: ignore[arg-type]


def test_new_articles_are_stored_once(store: IngestStore) -> None:
    first = record_articles(
        store, [article(1), article(2)], source_id="bcp", backlog=False, seen_at=NOW
    )
    assert len(first.new_ids) == 2
    again = record_articles(
        store, [article(1), article(2)], source_id="bcp", backlog=False, seen_at=NOW
    )
    assert again.new_ids == []
    assert again.duplicates == 2


@pytest.mark.parametrize(
    "changes",
    [
        {"url": "https://other.vn/x", "content_hash": "f" * 64},  # same GUID
        {
            "guid": "qn#77",
            "url": "HTTPS://BaoChinhPhu.vn/tin-1.htm?utm_source=zalo#a",  # same canonical URL
            "content_hash": "e" * 64,
        },
        {"guid": "qn#78", "url": "https://quangninh.gov.vn/x.html"},  # same content hash
    ],
)  # fmt: skip
def test_any_identity_matches(store: IngestStore, changes: dict[str, object]) -> None:
    [stored] = record_articles(
        store, [article(1)], source_id="bcp", backlog=False, seen_at=NOW
    ).new_ids
    same = article(1, **changes)
    report = record_articles(store, [same], source_id="qn", backlog=False, seen_at=NOW)
    assert report.new_ids == []
    assert report.linked_ids == [stored]
    # And the second source's own GUID now finds it too.
    assert store.find_duplicate(DedupKeys(guid=same.guid)) == stored


def test_empty_keys_never_match(store: IngestStore) -> None:
    record_articles(
        store, [article(1, content_hash="")], source_id="bcp", backlog=False, seen_at=NOW
    )
    assert store.find_duplicate(DedupKeys()) is None
    assert store.find_duplicate(DedupKeys(content_hash="")) is None


def test_backlog_is_marked(store: IngestStore) -> None:
    report = record_articles(store, [article(5)], source_id="feed", backlog=True, seen_at=NOW)
    [article_id] = report.new_ids
    if isinstance(store, MemoryIngestStore):
        assert store.articles[article_id].backlog
    else:
        assert isinstance(store, SqlIngestStore)
        assert store.is_backlog(article_id)
        stored = store.article(article_id)
        assert stored is not None
        assert stored.published_at == article(5).published_at
        assert store.sources_of(article_id) == ["feed"]


def test_poll_state_round_trip(store: IngestStore) -> None:
    assert store.load_poll_state("feed") == PollState("feed")
    state = PollState(
        "feed",
        etag='"abc"',
        last_modified="Sat, 01 Mar 2025 01:00:00 GMT",
        next_poll_at=NOW + timedelta(minutes=10),
        last_polled_at=NOW,
        failures=2,
        last_error="feed: HTTP 503",
        backlog_recorded=True,
    )
    store.save_poll_state(state)
    assert store.load_poll_state("feed") == state
