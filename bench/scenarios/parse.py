"""Feed parsing throughput: our lxml parser vs feedparser (and fastfeedparser) on the same feeds.

The feeds are built here to look like baochinhphu.vn's: 50 items, ~23 KiB, Vietnamese titles
and leads, "(Chinhphu.vn) - " prefixes, zone-less pubDates; plus Atom and RSS 1.0 variants.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import fastfeedparser
import feedparser

from publisher.ingest.feeds import parse_feed
from publisher.ingest.normalize import SourceContext, normalise_feed
from publisher.ingest.pipeline import keys_of

DESCRIPTION = "feed parsing: feeds/s and items/s, ours vs feedparser (target ≥ 20×)"

_TITLES = [
    "Thủ tướng chủ trì Phiên họp Chính phủ thường kỳ tháng {n}",
    "Công điện về việc chủ động ứng phó bão số {n} và mưa lũ",
    "Nghị định số {n}/2024/NĐ-CP quy định chi tiết Luật Đất đai",
    "Phó Thủ tướng kiểm tra tiến độ cao tốc Bắc - Nam đoạn {n}",
    "Hội nghị trực tuyến toàn quốc về chuyển đổi số lần thứ {n}",
]
_LEAD = (
    "(Chinhphu.vn) - Sáng {d}/11, tại trụ sở Chính phủ, Thủ tướng Phạm Minh Chính chủ trì "
    "cuộc họp với các bộ, ngành, địa phương về tình hình kinh tế - xã hội, giải ngân vốn đầu tư "
    "công và các nhiệm vụ trọng tâm trong thời gian tới."
)


def rss(n_items: int = 50) -> bytes:
    items = []
    for i in range(n_items):
        items.append(
            "<item>"
            f"<title>{_TITLES[i % 5].format(n=i + 1)}</title>"
            f"<link>https://baochinhphu.vn/bai-viet-so-{i}-1022411140905{i:05d}.htm</link>"
            f'<guid isPermaLink="false">1022411140905{i:05d}</guid>'
            f'<description><![CDATA[<a href="https://baochinhphu.vn/bai-{i}.htm"><img '
            f'src="https://bcp.cdnchinhphu.vn/2024/11/14/anh-{i}.jpg" /></a>'
            f"{_LEAD.format(d=(i % 28) + 1)}]]></description>"
            f"<pubDate>11/{(i % 28) + 1}/2024 {(i % 12) + 1}:05:00 AM</pubDate>"
            "</item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        "<title>Báo Điện tử Chính phủ</title><link>https://baochinhphu.vn</link>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def atom(n_items: int = 50) -> bytes:
    entries = "".join(
        "<entry>"
        f"<title>{_TITLES[i % 5].format(n=i + 1)}</title>"
        f'<link rel="alternate" href="https://danang.gov.vn/tin/{i}.html"/>'
        f"<id>tag:danang.gov.vn,2024:{i}</id>"
        f"<published>2024-11-{(i % 28) + 1:02d}T09:05:00+07:00</published>"
        f'<summary type="html">&lt;p&gt;{_LEAD.format(d=1)}&lt;/p&gt;</summary>'
        "</entry>"
        for i in range(n_items)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        '<title>Đà Nẵng</title><link href="https://danang.gov.vn/"/>' + entries + "</feed>"
    ).encode()


def rdf(n_items: int = 50) -> bytes:
    items = "".join(
        f'<item rdf:about="https://mst.gov.vn/tin/{i}.htm">'
        f"<title>{_TITLES[i % 5].format(n=i + 1)}</title>"
        f"<link>https://mst.gov.vn/tin/{i}.htm</link>"
        f"<description>{_LEAD.format(d=2)}</description>"
        f"<dc:date>2024-11-{(i % 28) + 1:02d}T09:05:00+07:00</dc:date></item>"
        for i in range(n_items)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<channel rdf:about="https://mst.gov.vn/"><title>Bộ KH&amp;CN</title>'
        "<link>https://mst.gov.vn</link></channel>" + items + "</rdf:RDF>"
    ).encode()


def _ours(data: bytes) -> int:
    return len(parse_feed(data).items)


_CONTEXT = SourceContext(id="bench", name="bench")
_NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _ours_normalised(data: bytes) -> int:
    """What the poller does with a fetched feed before touching the database: parse, then
    normalise every item (NFC, sanitise, dates, links, content hash) and take its dedup keys."""
    articles = normalise_feed(parse_feed(data), _CONTEXT, now=_NOW).articles
    for article in articles:
        keys_of(article)
    return len(articles)


def _feedparser(data: bytes) -> int:
    return len(feedparser.parse(data).entries)


def _fastfeedparser(data: bytes) -> int:
    return len(fastfeedparser.parse(data).entries)


def _rates(
    parsers: dict[str, Callable[[bytes], int]], feeds: list[bytes], seconds: float
) -> dict[str, tuple[float, float]]:
    """(feeds/s, items/s) per parser: median of passes over all feeds, the parsers taking
    turns pass by pass (so a noisy neighbour weighs on all of them alike), for about
    `seconds` in all."""
    for parse in parsers.values():
        parse(feeds[0])  # warm up imports and caches
    rates: dict[str, list[float]] = {name: [] for name in parsers}
    items: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or min(len(r) for r in rates.values()) < 5:
        for name, parse in parsers.items():
            started = time.perf_counter()
            items[name] = sum(parse(feed) for feed in feeds)
            rates[name].append(len(feeds) / (time.perf_counter() - started))
    result = {}
    for name, passes in rates.items():
        feeds_per_s = statistics.median(passes)
        result[name] = (feeds_per_s, feeds_per_s * items[name] / len(feeds))
    return result


def run(quick: bool = False) -> list[dict[str, Any]]:
    feeds = [rss(), atom(), rdf()]
    rates = _rates(
        {
            "ours": _ours,
            "full": _ours_normalised,
            "feedparser": _feedparser,
            "fastfeedparser": _fastfeedparser,
        },
        feeds,
        2.0 if quick else 12.0,
    )
    (ours_fps, ours_ips), (full_fps, full_ips) = rates["ours"], rates["full"]
    (fp_fps, fp_ips), (ffp_fps, ffp_ips) = rates["feedparser"], rates["fastfeedparser"]
    size = sum(len(f) for f in feeds) // len(feeds)
    return [
        {"name": "feed_size", "value": size, "unit": "bytes (mean of 3 feeds, 50 items each)"},
        {
            "name": "parse_ours",
            "value": round(ours_fps, 1),
            "unit": "feeds/s",
            "baseline": "feedparser",
            "baseline_value": round(fp_fps, 1),
            "ratio": round(ours_fps / fp_fps, 1),
        },
        {"name": "parse_ours_items", "value": round(ours_ips), "unit": "items/s"},
        {"name": "parse_feedparser_items", "value": round(fp_ips), "unit": "items/s"},
        {
            "name": "parse_and_normalise_ours",
            "value": round(full_fps, 1),
            "unit": "feeds/s (parse + sanitise + dates + links + hashes + dedup keys)",
            "baseline": "feedparser",
            "baseline_value": round(fp_fps, 1),
            "ratio": round(full_fps / fp_fps, 1),
        },
        {"name": "parse_and_normalise_ours_items", "value": round(full_ips), "unit": "items/s"},
        {
            "name": "parse_fastfeedparser",
            "value": round(ffp_fps, 1),
            "unit": "feeds/s",
            "baseline": "feedparser",
            "baseline_value": round(fp_fps, 1),
            "ratio": round(ffp_fps / fp_fps, 1),
        },
        {"name": "parse_fastfeedparser_items", "value": round(ffp_ips), "unit": "items/s"},
    ]
