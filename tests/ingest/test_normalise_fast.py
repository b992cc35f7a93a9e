"""Normalising with the fast paths gives byte-identical articles to normalising as before them
(tests/ingest/before.py): on the corpus, on the benchmark's feeds and on generated items.

Compared are every field of every article (the publication time down to its zone and fold),
the dedup keys, and for items that cannot be normalised, the error."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bench.scenarios import parse as parse_bench
from publisher.domain import Article, ArticleKind
from publisher.ingest.errors import IngestError
from publisher.ingest.feeds import RawItem, parse_feed
from publisher.ingest.normalize import (
    SourceContext,
    _normalised_content_hash,
    normalise_feed,
    normalise_item,
)
from publisher.ingest.pipeline import keys_of
from publisher.ingest.sanitize import clean_with_text
from publisher.ingest.store import DedupKeys
from publisher.text import collapse_spaces, nfc
from tests.ingest import before
from tests.ingest.test_sanitize_fast import fragments, texts
from tests.ingest.test_sanitize_fast import urls as url_values

CORPUS = Path(__file__).parent / "corpus"
NOW = datetime(2025, 1, 1, 3, 4, 5, tzinfo=UTC)
ZONES = ["+07:00", "Asia/Ho_Chi_Minh", "UTC", "-05:30"]


def same_article(fast: Article, slow: Article) -> None:
    assert fast == slow
    # Aware datetimes compare by instant: the zone and fold are compared as well.
    assert fast.published_at.isoformat() == slow.published_at.isoformat()
    assert fast.published_at.tzinfo == slow.published_at.tzinfo
    assert fast.published_at.fold == slow.published_at.fold
    assert keys_of(fast) == DedupKeys(
        guid=slow.guid,
        canonical_url=before.canonical_url(slow.url),
        content_hash=slow.content_hash,
    )


def outcome(normalise: Any, item: RawItem, context: SourceContext) -> Article | str:
    try:
        return normalise(item, context, now=NOW)  # type: ignore[no-any-return]
    except (ValueError, IngestError, UnicodeError) as error:
        return f"{type(error).__name__}: {error}"


def compare(item: RawItem, context: SourceContext) -> None:
    fast, slow = (
        outcome(normalise_item, item, context),
        outcome(before.normalise_item, item, context),
    )
    if isinstance(slow, Article) and isinstance(fast, Article):
        same_article(fast, slow)
    else:
        assert fast == slow


def feeds_to_compare() -> list[bytes]:
    feeds = [p.read_bytes() for p in sorted(CORPUS.glob("*/*")) if p.suffix not in (".py",)]
    for variant in range(4):
        feeds += parse_bench.feed_set(variant)
    return feeds


@pytest.mark.parametrize("zone", ZONES)
def test_the_corpus_and_the_bench_feeds_normalise_as_before(zone: str) -> None:
    compared = 0
    for data in feeds_to_compare():
        try:
            feed = parse_feed(data)
        except IngestError:
            continue
        for base in ("", "https://baochinhphu.vn/tin/", feed.link):
            context = SourceContext(id="src", name="Nguồn", timezone=zone, base_url=base)
            for item in feed.items:
                compare(item, context)
                compared += 1
        # And the whole feed, as the poller calls it.
        fast = normalise_feed(feed, SourceContext(id="src", timezone=zone), now=NOW)
        for article in fast.articles:
            assert article.content_hash == before.content_hash(article.title, article.body_text)
    assert compared > 1000


# --- generated items --------------------------------------------------------------------------

TONE_TEXT = "oOuUàáảãạèéẻẽẹỳýỷỹỵÀÁẢÃẠÈÉẺẼẸỲÝỶỸỴ hHk.,\n\u0300\u0301\u0338ßİ"
tone_texts = st.text(alphabet=st.sampled_from(TONE_TEXT), max_size=16)
titles = (
    tone_texts
    | texts
    | fragments
    | st.sampled_from(
        [
            "Thủ tướng chủ trì Phiên họp",
            "Hoà Bình, Thuỷ lợi",
            "&lt;b&gt;Tin&lt;/b&gt; &amp;amp;",
            "",
        ]
    )
)
dates = st.sampled_from(
    [
        "11/14/2024 9:05:00 AM",
        "1/2/2025 12:30:00 PM",
        "13/2/2025 1:00:00 PM",
        "2/30/2024 9:05:00 AM",
        "Thu, 14 Nov 2024 09:05:00 +0700",
        "14 Nov 2024 09:05 GMT",
        "2024-11-14T09:05:00+07:00",
        "2024-11-14T02:05:00Z",
        "2024-02-30T09:05:00+07:00",
        "14/11/2024 09:05",
        "không rõ",
        "",
    ]
)
links = url_values | st.sampled_from(["", "/tin/1.htm", "tin/2.htm?a=1#x", "javascript:x()"])
guids = links | st.sampled_from(["", "1022411140905", "tag:a.vn,2024:1", "urn:x:1", " 12 "])


@st.composite
def raw_items(draw: st.DrawFn) -> RawItem:
    return RawItem(
        guid=draw(guids),
        link=draw(links),
        title=draw(titles),
        title_is_html=draw(st.booleans()),
        summary_html=draw(fragments | tone_texts | texts),
        content_html=draw(st.sampled_from(["", ""]) | fragments),
        published=draw(dates),
        updated=draw(dates),
        images=draw(st.lists(url_values | st.just(""), max_size=2)),
        video=draw(st.none() | url_values),
        categories=draw(st.lists(st.sampled_from(["Tin", "Chỉ đạo"]), max_size=2)),
    )


contexts = st.builds(
    SourceContext,
    id=st.sampled_from(["src", "hanoi"]),
    name=st.sampled_from(["", "baochinhphu.vn"]),
    unit_code=st.sampled_from([None, "01"]),
    kind=st.sampled_from(list(ArticleKind)),
    timezone=st.sampled_from(ZONES),
    base_url=st.sampled_from(["", "https://b.vn/x/", "https://baochinhphu.vn"]),
    category=st.sampled_from([None, "Thời sự"]),
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_items(), contexts)
def test_generated_items_normalise_as_before(item: RawItem, context: SourceContext) -> None:
    compare(item, context)


# --- the pieces the fast paths are made of ----------------------------------------------------


@settings(max_examples=3000, deadline=None)
@given(fragments | tone_texts | texts, st.sampled_from([None, "https://b.vn/x/"]))
@example('<a href="https://x.vn/a"><img src="https://x.vn/i.jpg" /></a>(Chinhphu.vn) - Tin', None)
@example("<p>e</p>\u0301", None)
@example("<b>a</b>\u0338b", None)
@example("x<b>\u0338</b>", None)
@example('<img alt="src=" src="https://x.vn/a.jpg">"q"', None)
@example('<a href="https://x.vn/?a=">x</a> src="y', "https://b.vn/x/")
@example("  Hà  Nội  ", None)
@example("<p> Hà Nội</p>", None)
@example(" Hà Nội ", None)
@example('src="x', "https://b.vn/x/")
@example("e\u0301 \u0301", None)
@example("\u0301a", None)
@example("Hà\u00a0Nội", None)
@example("a > b", None)
def test_clean_with_text_is_the_three_functions(fragment: str, base: str | None) -> None:
    try:
        expected = before.clean_html(fragment, base_url=base)
    except (UnicodeEncodeError, ValueError):
        with pytest.raises((UnicodeEncodeError, ValueError)):
            clean_with_text(fragment, base_url=base)
        return
    assert clean_with_text(fragment, base_url=base) == (
        expected,
        before.html_to_text(expected),
        before.image_sources(expected),
    )


@st.composite
def normalised_title_and_text(draw: st.DrawFn) -> tuple[str, str]:
    """A title and text made the way normalise_item makes them."""
    raw_title = draw(titles)
    title = before.plain_text(raw_title) if draw(st.booleans()) else nfc(collapse_spaces(raw_title))
    try:
        body = before.html_to_text(before.clean_html(draw(fragments | tone_texts | texts)))
    except (UnicodeEncodeError, ValueError):
        body = draw(tone_texts)
        body = before.html_to_text(nfc(body).replace("<", ""))
    return title, body


@settings(max_examples=3000, deadline=None)
@given(normalised_title_and_text())
@example(("Hoà Bình", "Thuỷ lợi"))
@example(("Tin", "oà\u0345"))
@example(("", "a\nb"))
@example(("Straße", "İstanbul ﬁ"))
def test_the_content_hash_of_normalised_text_is_the_content_hash(pair: tuple[str, str]) -> None:
    title, body = pair
    try:
        expected = before.content_hash(title, body)
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            _normalised_content_hash(title, body)
        return
    assert _normalised_content_hash(title, body) == expected
