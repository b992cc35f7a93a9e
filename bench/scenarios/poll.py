"""One polling cycle over 5,000 feeds served on loopback: all answering 304, then all 200.

The feeds are served by a small raw-asyncio HTTP/1.1 server (keep-alive, ETag) in a
subprocess, listening on 25 loopback addresses (127.0.0.1 … 127.0.0.25) so that the poller's
per-host politeness limit (4 at once per host) is exercised as with many real portals. The
poller goes through the real safe fetcher (resolution, address checks, pinned connections).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

DESCRIPTION = "poll cycle: 5,000 feeds on loopback, all 304 / all 200 (target 304s ≤ 15 s)"

HOSTS = 25
ETAG = '"v1"'

_SERVER = r"""
import asyncio, sys
from bench.scenarios.parse import rss

FEED = rss(int(sys.argv[3]))
ETAG = b'"v1"'
OK = (b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml; charset=utf-8\r\n"
      b"ETag: " + ETAG + b"\r\nContent-Length: " + str(len(FEED)).encode() + b"\r\n\r\n" + FEED)
NOT_MODIFIED = b"HTTP/1.1 304 Not Modified\r\nETag: " + ETAG + b"\r\n\r\n"

async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            fresh = b"if-none-match: " + ETAG in head.lower()
            writer.write(NOT_MODIFIED if fresh else OK)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()

async def main():
    port, hosts = int(sys.argv[1]), int(sys.argv[2])
    servers = [await asyncio.start_server(handle, f"127.0.0.{h}", port, backlog=1024)
               for h in range(1, hosts + 1)]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))

asyncio.run(main())
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(port: int, items: int) -> subprocess.Popen[str]:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(port), str(HOSTS), str(items)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": root},
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        process.kill()
        raise RuntimeError("feed server did not start")
    return process


async def _cycle(
    port: int, feeds: int, *, conditional: bool, concurrency: int
) -> tuple[float, dict[str, int]]:
    from publisher.domain import Source, SourceKind
    from publisher.fetch import Fetcher
    from publisher.ingest.poller import Poller
    from publisher.ingest.store import MemoryIngestStore, PollState

    store = MemoryIngestStore()
    sources = [
        Source(
            id=f"feed-{i}",
            unit_code="u",
            kind=SourceKind.FEED,
            url=f"http://127.0.0.{i % HOSTS + 1}:{port}/feeds/{i}.rss",
            allow_private_network=True,
        )
        for i in range(feeds)
    ]
    if conditional:
        for source in sources:
            store.save_poll_state(PollState(source.id, etag=ETAG, backlog_recorded=True))
    async with Fetcher() as fetcher:
        poller = Poller(store, fetcher, concurrency=concurrency, per_host=4)
        started = time.perf_counter()
        report = await poller.run_cycle(sources, now=datetime.now(UTC))
        elapsed = time.perf_counter() - started
    summary = report.summary()
    errors = [o.error for o in report.outcomes if o.status == "error"]
    if errors:
        raise RuntimeError(f"{len(errors)} sources failed, first: {errors[0]}")
    return elapsed, summary


def run(quick: bool = False) -> list[dict[str, Any]]:
    feeds = 500 if quick else 5000
    items = 5
    concurrency = 50
    port = _free_port()
    server = _start_server(port, items)
    try:
        seconds_304, summary_304 = asyncio.run(
            _cycle(port, feeds, conditional=True, concurrency=concurrency)
        )
        seconds_200, summary_200 = asyncio.run(
            _cycle(port, feeds, conditional=False, concurrency=concurrency)
        )
    finally:
        server.kill()
        server.wait()
    assert summary_304.get("not_modified") == feeds, summary_304
    assert summary_200.get("new") == feeds, summary_200
    return [
        {
            "name": f"poll_{feeds}_feeds_304",
            "value": round(seconds_304, 2),
            "unit": "s per cycle",
            "baseline": "target",
            "baseline_value": 15.0 * feeds / 5000,
            "ratio": round(seconds_304 / (15.0 * feeds / 5000), 2),
        },
        {"name": "poll_304_rate", "value": round(feeds / seconds_304), "unit": "feeds/s"},
        {
            "name": f"poll_{feeds}_feeds_200",
            "value": round(seconds_200, 2),
            "unit": f"s per cycle ({items}-item feeds: fetch, parse, sanitise, dedup)",
        },
        {"name": "poll_200_rate", "value": round(feeds / seconds_200), "unit": "feeds/s"},
        {
            "name": "poll_200_new_articles",
            "value": summary_200.get("new_articles", 0),
            "unit": "articles (same items on every feed: 1 article each, rest linked)",
        },
    ]
