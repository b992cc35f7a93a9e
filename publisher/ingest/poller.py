"""Polling feed and page sources: conditional GET, backoff, concurrency limits, never a crash.

One cycle polls every due source concurrently under a global limit and a per-host limit
(politeness: a portal is never hit by more than `per_host` requests at once). Each source's
outcome is recorded in its poll state: validators (ETag / Last-Modified) for the next
conditional GET, the next poll time (interval, or exponential backoff after errors), the last
error as one sentence. A hostile or broken source produces an error for that source only.

Entry points for `publisher run`: `Poller.run_cycle(sources, now=...)` for one cycle, and
`Poller.run_forever(load_sources, clock, stop)` for the service loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from publisher.domain import Article, Source, SourceKind
from publisher.fetch import Fetcher, FetchError, FetchPolicy, FetchResult, host_of
from publisher.ingest.errors import IngestError
from publisher.ingest.feeds import parse_feed
from publisher.ingest.normalize import SourceContext, normalise_feed, normalise_item
from publisher.ingest.pages import extract_article, listing_links
from publisher.ingest.pipeline import RecordReport, record_articles
from publisher.ingest.store import DedupKeys, IngestStore, PollState

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=6)
_FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


def next_poll_after_success(source: Source, now: datetime) -> datetime:
    return now + timedelta(seconds=source.poll_interval_s)


def next_poll_after_failure(source: Source, failures: int, now: datetime) -> datetime:
    """Exponential backoff from the source's interval, capped at 6 h, with a fixed per-source
    spread (±10 %, from the id's hash) so that sources that failed together do not retry
    together. Pure: same inputs, same answer."""
    base = timedelta(seconds=source.poll_interval_s) * (2 ** min(max(failures, 1) - 1, 12))
    delay = min(base, MAX_BACKOFF)
    spread = int(hashlib.sha256(source.id.encode()).hexdigest()[:4], 16) / 0xFFFF  # 0..1
    when: datetime = now + delay * (0.9 + 0.2 * spread)
    return when


def is_due(state: PollState, now: datetime) -> bool:
    return state.next_poll_at is None or state.next_poll_at <= now


def _charset(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip("\"' ")
    return None


@dataclass
class SourceOutcome:
    source_id: str
    status: str  # "new" (content parsed), "not_modified", "error", "skipped"
    new: int = 0
    linked: int = 0
    duplicates: int = 0
    backlog: bool = False
    error: str | None = None
    problems: list[str] = field(default_factory=list)  # item-level, the source still worked
    new_ids: list[int] = field(default_factory=list)  # stored now: route these unless backlog


@dataclass
class CycleReport:
    outcomes: list[SourceOutcome]
    seconds: float

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    def summary(self) -> dict[str, int]:
        counts = Counter(outcome.status for outcome in self.outcomes)
        counts["new_articles"] = sum(outcome.new for outcome in self.outcomes)
        return dict(counts)


class Poller:
    def __init__(
        self,
        store: IngestStore,
        fetcher: Fetcher,
        *,
        concurrency: int = 64,
        per_host: int = 4,
        max_bytes: int = 10 * 1024 * 1024,
        timeout_s: float = 30.0,
        max_page_articles: int = 20,
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self._global = asyncio.Semaphore(concurrency)
        self._per_host_limit = per_host
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._max_bytes = max_bytes
        self._timeout_s = timeout_s
        self._max_page_articles = max_page_articles

    def _policy(self, source: Source, accept: str = "*/*") -> FetchPolicy:
        return FetchPolicy(
            allow_private_network=source.allow_private_network,
            max_bytes=self._max_bytes,
            timeout_s=self._timeout_s,
            accept=accept,
        )

    async def _get(
        self, url: str, policy: FetchPolicy, etag: str | None = None, modified: str | None = None
    ) -> FetchResult:
        host = host_of(url)
        gate = self._hosts.setdefault(host, asyncio.Semaphore(self._per_host_limit))
        async with self._global, gate:
            return await self.fetcher.fetch(url, policy, etag=etag, last_modified=modified)

    async def run_cycle(
        self, sources: Sequence[Source], *, now: datetime, only_due: bool = True
    ) -> CycleReport:
        loop = asyncio.get_running_loop()
        started = loop.time()
        chosen = [
            s
            for s in sources
            if s.kind is not SourceKind.PUSH
            and (not only_due or is_due(self.store.load_poll_state(s.id), now))
        ]
        outcomes = await asyncio.gather(*(self.poll_source(s, now=now) for s in chosen))
        return CycleReport(list(outcomes), loop.time() - started)

    async def run_forever(
        self,
        load_sources: Callable[[], Sequence[Source]],
        clock: Callable[[], datetime],
        stop: asyncio.Event,
        *,
        tick_s: float = 5.0,
    ) -> None:
        """The service loop: every tick, poll what is due. Returns when `stop` is set."""
        while not stop.is_set():
            report = await self.run_cycle(load_sources(), now=clock())
            if report.outcomes:
                log.info("poll cycle: %s in %.1f s", report.summary(), report.seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=tick_s)

    async def poll_source(self, source: Source, *, now: datetime) -> SourceOutcome:
        """Poll one source; whatever happens, its state is saved and nothing is raised."""
        state = self.store.load_poll_state(source.id)
        try:
            if source.kind is SourceKind.FEED:
                outcome, state = await self._poll_feed(source, state, now)
            elif source.kind is SourceKind.PAGE:
                outcome, state = await self._poll_page(source, state, now)
            else:
                return SourceOutcome(source.id, "skipped")
        except (FetchError, IngestError) as error:
            outcome = SourceOutcome(source.id, "error", error=f"{source.id}: {error}")
        except Exception as error:  # a bug must not stop the other sources
            log.exception("poll of %s failed unexpectedly", source.id)
            outcome = SourceOutcome(
                source.id,
                "error",
                error=f"{source.id}: internal error {type(error).__name__}: {error}",
            )
        if outcome.status == "error":
            failures = state.failures + 1
            state = replace(
                state,
                failures=failures,
                last_error=outcome.error,
                last_polled_at=now,
                next_poll_at=next_poll_after_failure(source, failures, now),
            )
        else:
            state = replace(
                state,
                failures=0,
                last_error=None,
                last_polled_at=now,
                next_poll_at=next_poll_after_success(source, now),
            )
        try:
            self.store.save_poll_state(state)
        except Exception as error:  # storage trouble is reported, the cycle goes on
            log.exception("saving poll state of %s failed", source.id)
            outcome.problems.append(f"poll state not saved: {type(error).__name__}: {error}")
        return outcome

    def _record(
        self, source: Source, state: PollState, articles: list[Article], now: datetime
    ) -> tuple[RecordReport, PollState]:
        backlog = not state.backlog_recorded
        report = record_articles(
            self.store, articles, source_id=source.id, backlog=backlog, seen_at=now
        )
        return report, replace(state, backlog_recorded=True)

    async def _poll_feed(
        self, source: Source, state: PollState, now: datetime
    ) -> tuple[SourceOutcome, PollState]:
        result = await self.fetcher_fetch(source, state, accept=_FEED_ACCEPT)
        if result.not_modified:
            return SourceOutcome(source.id, "not_modified"), state
        feed = parse_feed(
            result.content, base_url=result.url, http_charset=_charset(result.content_type)
        )
        context = replace(SourceContext.of(source), base_url=result.url)
        normalised = normalise_feed(feed, context, now=now)
        report, state = self._record(source, state, normalised.articles, now)
        state = replace(state, etag=result.etag, last_modified=result.last_modified)
        problems = list(normalised.problems)
        if feed.note:
            problems.insert(0, f"encoding: {feed.note}")
        return (
            SourceOutcome(
                source.id,
                "new",
                new=report.new,
                linked=len(report.linked_ids),
                duplicates=report.duplicates,
                backlog=report.backlog,
                problems=problems,
                new_ids=report.new_ids,
            ),
            state,
        )

    async def fetcher_fetch(self, source: Source, state: PollState, *, accept: str) -> FetchResult:
        return await self._get(
            source.url, self._policy(source, accept), state.etag, state.last_modified
        )

    async def _poll_page(
        self, source: Source, state: PollState, now: datetime
    ) -> tuple[SourceOutcome, PollState]:
        result = await self.fetcher_fetch(source, state, accept="text/html,*/*;q=0.8")
        if result.not_modified:
            return SourceOutcome(source.id, "not_modified"), state
        links = listing_links(result.content, page_url=result.url, selectors=source.selectors)
        fresh = [
            link
            for link in links
            if self.store.find_duplicate(DedupKeys(guid=link, canonical_url=link)) is None
        ]
        fresh = fresh[: self._max_page_articles]
        context = SourceContext.of(source)

        async def one(link: str) -> Article | str:
            try:
                page = await self._get(link, self._policy(source, "text/html"))
                extracted = extract_article(
                    page.content, page_url=page.url, selectors=source.selectors
                )
                return normalise_item(extracted.item, replace(context, base_url=page.url), now=now)
            except (FetchError, IngestError, ValueError) as error:
                return f"{link}: {error}"

        results = await asyncio.gather(*(one(link) for link in fresh))
        articles = [r for r in results if isinstance(r, Article)]
        problems = [r for r in results if isinstance(r, str)]
        if fresh and not articles:
            raise IngestError(f"no article page could be read ({problems[0]})")
        report, state = self._record(source, state, articles, now)
        state = replace(state, etag=result.etag, last_modified=result.last_modified)
        return (
            SourceOutcome(
                source.id,
                "new",
                new=report.new,
                linked=len(report.linked_ids),
                duplicates=report.duplicates,
                backlog=report.backlog,
                problems=problems,
                new_ids=report.new_ids,
            ),
            state,
        )
