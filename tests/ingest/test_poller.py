"""Polling over real HTTP on 127.0.0.1: conditional GET, backlog, dedup, hostile sources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from publisher.domain import Source, SourceKind
from publisher.fetch import Fetcher
from publisher.ingest.poller import Poller, next_poll_after_failure
from publisher.ingest.store import MemoryIngestStore

from .localserver import serve

CORPUS = Path(__file__).parent / "corpus"
NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def feed_xml(items: list[tuple[str, str]]) -> bytes:
    body = "".join(
        f"<item><title>{title}</title><link>{link}</link>"
        f"<description>Nội dung {title}</description>"
        f"<pubDate>11/14/2024 9:05:00 AM</pubDate></item>"
        for title, link in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>t</title><link>https://portal.gov.vn</link>{body}</channel></rss>"
    ).encode()


class FeedSite:
    """Feeds whose content the test changes between polls; answers 304 to a matching ETag."""

    def __init__(self) -> None:
        self.feeds: dict[str, bytes] = {}
        self.hits: dict[str, list[int]] = {}

    def app(self) -> Starlette:
        async def feed(request: Request) -> Response:
            name = request.path_params["name"]
            body = self.feeds[name]
            etag = f'"{hash(body) & 0xFFFFFFFF:x}"'
            status = 304 if request.headers.get("if-none-match") == etag else 200
            self.hits.setdefault(name, []).append(status)
            if status == 304:
                return Response(status_code=304, headers={"ETag": etag})
            return Response(body, media_type="application/rss+xml", headers={"ETag": etag})

        return Starlette(routes=[Route("/feeds/{name}", feed)])


def source(base: str, name: str, **extra: object) -> Source:
    return Source(
        id=name,
        unit_code="01",
        kind=SourceKind.FEED,
        url=f"{base}/feeds/{name}",
        allow_private_network=True,
        **extra,  # type: ignore[arg-type]
    )


async def test_backlog_then_new_items_then_304() -> None:
    site = FeedSite()
    site.feeds["a"] = feed_xml(
        [("Tin 1", "https://portal.gov.vn/1"), ("Tin 2", "https://portal.gov.vn/2")]
    )
    store = MemoryIngestStore()
    async with serve(site.app()) as base, Fetcher() as fetcher:
        poller = Poller(store, fetcher)
        src = source(base, "a")
        first = await poller.poll_source(src, now=NOW)
        assert (first.status, first.new, first.backlog) == ("new", 2, True)
        assert all(stored.backlog for stored in store.articles.values())

        second = await poller.poll_source(src, now=NOW + timedelta(minutes=10))
        assert second.status == "not_modified"
        assert site.hits["a"] == [200, 304]

        site.feeds["a"] = feed_xml(
            [("Tin 3", "https://portal.gov.vn/3"), ("Tin 1", "https://portal.gov.vn/1")]
        )
        third = await poller.poll_source(src, now=NOW + timedelta(minutes=20))
        assert (third.new, third.duplicates, third.backlog) == (1, 1, False)
        assert third.new_ids == [3]
        newest = store.articles[3]
        assert newest.article.title == "Tin 3"
        assert newest.backlog is False
        state = store.load_poll_state("a")
        assert state.backlog_recorded
        assert state.next_poll_at == NOW + timedelta(minutes=20) + timedelta(seconds=600)


async def test_same_article_from_two_portals_is_one_article_with_two_sources() -> None:
    site = FeedSite()
    # Same text, different URLs and GUIDs: the content hash matches.
    site.feeds["central"] = feed_xml([("Công điện về bão số 3", "https://baochinhphu.vn/cd-3.htm")])
    site.feeds["province"] = feed_xml(
        [("Công điện về bão số 3", "https://quangninh.gov.vn/cd-3.html")]
    )
    store = MemoryIngestStore()
    async with serve(site.app()) as base, Fetcher() as fetcher:
        poller = Poller(store, fetcher)
        report = await poller.run_cycle(
            [source(base, "central"), source(base, "province")], now=NOW
        )
    assert report.count("new") == 2
    assert len(store.articles) == 1
    assert sorted(store.articles[1].sources) == ["central", "province"]


def hostile_app(secret_path: Path) -> Starlette:
    xxe = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE rss [<!ENTITY s SYSTEM "file://{secret_path}">]>\n'
        '<rss version="2.0"><channel><title>&s;</title>'
        "<item><title>&s;</title><link>https://x.example/1</link></item></channel></rss>"
    ).encode()

    async def file(request: Request) -> Response:
        return Response((CORPUS / "hostile" / request.path_params["name"]).read_bytes())

    async def xxe_local(request: Request) -> Response:
        return Response(xxe, media_type="application/xml")

    async def huge(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'<?xml version="1.0"?><rss version="2.0"><channel>'
            for _ in range(50 * 1024):  # 50 MiB
                yield b"<!-- " + b"x" * 1010 + b" -->\n"

        return StreamingResponse(chunks(), media_type="application/rss+xml")

    async def good(request: Request) -> Response:
        return Response(feed_xml([("Tin tốt", "https://portal.gov.vn/tot")]))

    async def error(request: Request) -> Response:
        return Response("down", status_code=503)

    return Starlette(
        routes=[
            Route("/feeds/hostile-{name}", file),
            Route("/feeds/xxe-local", xxe_local),
            Route("/feeds/huge", huge),
            Route("/feeds/good", good),
            Route("/feeds/down", error),
        ]
    )


async def test_hostile_sources_each_fail_alone_and_leak_nothing(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-TOKEN-4711")
    names = [
        "hostile-billion_laughs.xml", "hostile-xxe_file.xml", "hostile-xxe_parameter.xml",
        "hostile-truncated.xml", "hostile-garbage.bin", "hostile-bad_utf16.xml",
        "hostile-html_instead_of_feed.xml", "hostile-not_a_feed.xml", "xxe-local", "huge", "down",
    ]  # fmt: skip
    store = MemoryIngestStore()
    async with serve(hostile_app(secret)) as base, Fetcher() as fetcher:
        poller = Poller(store, fetcher, max_bytes=5 * 1024 * 1024)
        sources = [source(base, name) for name in names] + [source(base, "good")]
        report = await poller.run_cycle(sources, now=NOW)
    outcomes = {o.source_id: o for o in report.outcomes}
    assert outcomes["good"].status == "new"
    assert outcomes["good"].new == 1
    expected = {
        "hostile-billion_laughs.xml": "declares XML entities",
        "hostile-xxe_file.xml": "declares XML entities",
        "hostile-xxe_parameter.xml": "declares XML entities",
        "xxe-local": "declares XML entities",
        "hostile-truncated.xml": "not well-formed XML",
        "hostile-garbage.bin": "not valid UTF-8",
        "hostile-bad_utf16.xml": "utf-16",
        "hostile-html_instead_of_feed.xml": "got an HTML page",
        "hostile-not_a_feed.xml": "unknown root element <opml>",
        "huge": "larger than the cap",
        "down": "HTTP 503",
    }
    for name, fragment in expected.items():
        outcome = outcomes[name]
        assert outcome.status == "error", name
        assert outcome.error is not None
        assert fragment in outcome.error, (name, outcome.error)
        assert outcome.error.startswith(f"{name}: ")
        state = store.load_poll_state(name)
        assert state.failures == 1
        assert state.last_error == outcome.error
    everything = repr(report) + repr(store.articles)
    assert "TOP-SECRET-TOKEN-4711" not in everything
    assert len(store.articles) == 1


def test_backoff_grows_and_is_capped() -> None:
    src = Source(id="s", unit_code="01", kind=SourceKind.FEED, poll_interval_s=600)
    delays = [(next_poll_after_failure(src, n, NOW) - NOW).total_seconds() for n in (1, 2, 3, 20)]
    assert 540 <= delays[0] <= 660
    assert delays[0] < delays[1] < delays[2]
    assert delays[3] <= 6 * 3600 * 1.1
    assert next_poll_after_failure(src, 2, NOW) == next_poll_after_failure(src, 2, NOW)  # pure


async def test_failed_source_is_not_due_until_backoff_passes() -> None:
    store = MemoryIngestStore()
    async with serve(hostile_app(Path("/nonexistent"))) as base, Fetcher() as fetcher:
        poller = Poller(store, fetcher)
        down = source(base, "down")
        await poller.run_cycle([down], now=NOW)
        again = await poller.run_cycle([down], now=NOW + timedelta(seconds=60))
        assert again.outcomes == []
        later = await poller.run_cycle([down], now=NOW + timedelta(hours=1))
        assert later.count("error") == 1
    assert store.load_poll_state("down").failures == 2


@pytest.mark.parametrize("kind", [SourceKind.PUSH])
async def test_push_sources_are_not_polled(kind: SourceKind) -> None:
    async with Fetcher() as fetcher:
        poller = Poller(MemoryIngestStore(), fetcher)
        src = Source(id="cms", unit_code="01", kind=kind)
        report = await poller.run_cycle([src], now=NOW)
    assert report.outcomes == []


async def test_run_forever_polls_until_stopped() -> None:
    import asyncio

    site = FeedSite()
    site.feeds["a"] = feed_xml([("Tin 1", "https://portal.gov.vn/1")])
    store = MemoryIngestStore()
    async with serve(site.app()) as base, Fetcher() as fetcher:
        poller = Poller(store, fetcher)
        stop = asyncio.Event()
        ticks = iter([NOW, NOW + timedelta(minutes=11), NOW + timedelta(minutes=22)])

        def clock() -> datetime:
            try:
                return next(ticks)
            except StopIteration:
                stop.set()
                return NOW + timedelta(minutes=30)

        await asyncio.wait_for(
            poller.run_forever(lambda: [source(base, "a")], clock, stop, tick_s=0.01), 10
        )
    assert site.hits["a"] == [200, 304, 304]  # at +30 min the source is not due (+32)
