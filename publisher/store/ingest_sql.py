"""`IngestStore` over the SQL tables (SQLite and PostgreSQL): articles, their sources, poll state.

Same contract as `publisher.ingest.store.MemoryIngestStore`; the contract test runs on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from publisher.domain import Article
from publisher.ingest.store import DedupKeys, PollState
from publisher.store.sql import article_from_mapping
from publisher.store.tables import ArticleRow, ArticleSourceRow, SourceRow


def article_from_row(row: ArticleRow) -> Article:
    return article_from_mapping(row.model_dump())


class SqlIngestStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    def find_duplicate(self, keys: DedupKeys) -> int | None:
        with self._session() as session:
            return self._find(session, keys)

    @staticmethod
    def _find(session: Session, keys: DedupKeys) -> int | None:
        if keys.guid:
            found = session.exec(select(ArticleRow.id).where(ArticleRow.guid == keys.guid)).first()
            if found is None:
                found = session.exec(
                    select(ArticleSourceRow.article_id).where(ArticleSourceRow.guid == keys.guid)
                ).first()
            if found is not None:
                return found
        if keys.canonical_url:
            found = session.exec(
                select(ArticleRow.id).where(ArticleRow.canonical_url == keys.canonical_url)
            ).first()
            if found is not None:
                return found
        if keys.content_hash:
            found = session.exec(
                select(ArticleRow.id).where(ArticleRow.content_hash == keys.content_hash)
            ).first()
            if found is not None:
                return found
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
        with self._session() as session:
            row = ArticleRow(
                guid=article.guid,
                url=article.url,
                canonical_url=keys.canonical_url,
                content_hash=keys.content_hash,
                title=article.title,
                summary=article.summary,
                body_html=article.body_html,
                body_text=article.body_text,
                published_at=article.published_at,
                images=list(article.images),
                video=article.video,
                language=article.language,
                source_name=article.source,
                kind=article.kind.value,
                unit_code=article.unit_code,
                category=article.category,
                urgent=article.urgent,
                backlog=backlog,
                created_at=seen_at,
            )
            session.add(row)
            session.flush()
            assert row.id is not None
            session.add(
                ArticleSourceRow(
                    article_id=row.id,
                    source_id=source_id,
                    guid=keys.guid or article.guid,
                    seen_at=seen_at,
                )
            )
            return row.id

    def link_source(self, article_id: int, *, source_id: str, guid: str, seen_at: datetime) -> bool:
        with self._session() as session:
            exists = session.exec(
                select(ArticleSourceRow.id).where(
                    ArticleSourceRow.source_id == source_id, ArticleSourceRow.guid == guid
                )
            ).first()
            if exists is not None:
                return False
            session.add(
                ArticleSourceRow(
                    article_id=article_id, source_id=source_id, guid=guid, seen_at=seen_at
                )
            )
            return True

    def load_poll_state(self, source_id: str) -> PollState:
        with self._session() as session:
            row = session.get(SourceRow, source_id)
            if row is None:
                return PollState(source_id)
            return PollState(
                source_id=source_id,
                etag=row.etag,
                last_modified=row.last_modified,
                next_poll_at=row.next_poll_at,
                last_polled_at=row.last_polled_at,
                failures=row.failures,
                last_error=row.last_error,
                backlog_recorded=row.backlog_recorded,
            )

    def save_poll_state(self, state: PollState) -> None:
        with self._session() as session:
            row = session.get(SourceRow, state.source_id)
            if row is None:
                raise LookupError(f"source {state.source_id!r} is not in the source table")
            row.etag, row.last_modified = state.etag, state.last_modified
            row.next_poll_at, row.last_polled_at = state.next_poll_at, state.last_polled_at
            row.failures, row.last_error = state.failures, state.last_error
            row.backlog_recorded = state.backlog_recorded
            session.add(row)

    # --- reading back (tests, reports) ---------------------------------------------------

    def article(self, article_id: int) -> Article | None:
        with self._session() as session:
            row = session.get(ArticleRow, article_id)
            return article_from_row(row) if row else None

    def is_backlog(self, article_id: int) -> bool:
        with self._session() as session:
            row = session.get(ArticleRow, article_id)
            return bool(row and row.backlog)

    def sources_of(self, article_id: int) -> list[str]:
        with self._session() as session:
            rows = session.exec(
                select(ArticleSourceRow.source_id)
                .where(ArticleSourceRow.article_id == article_id)
                .order_by(col(ArticleSourceRow.id))
            )
            return list(rows)
