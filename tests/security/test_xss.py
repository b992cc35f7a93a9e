"""Hostile article HTML never reaches any channel's payload.

Two layers are tested: (1) a hostile feed and a hostile article JSON go through ingestion
(nh3 sanitising) and then every registered channel's `adapt`; nothing executable may survive
anywhere in any payload. (2) Defence in depth: an article that skipped sanitising goes straight
to every channel; Telegram's HTML must stay inside its documented subset with http(s) links
only, and every URL field of every payload must be http(s).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from channels.base import Channel, Template
from channels.registry import channel_classes
from publisher.domain import Article, ArticleKind, Unit
from publisher.ingest.errors import IngestError
from publisher.ingest.normalize import SourceContext
from publisher.ingest.reader import read_document

NOW = datetime(2026, 11, 14, 2, 0, tzinfo=UTC)
UNIT = Unit("01", "Thành phố Hà Nội", "province", "CP")
TEMPLATES = [
    Template(),
    Template(
        hashtag_keywords=("Chính phủ", "<script>x</script>"), lead_in="<b onclick=x>Hà Nội</b>"
    ),
]

PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<img src="https://portal.gov.vn/a.jpg" onerror="alert(1)">',
    '<a href="javascript:alert(1)">bấm vào đây</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="  javascript:alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    "<svg onload=alert(1)><circle r=1 /></svg>",
    "<svg><script>alert(1)</script></svg>",
    '<iframe src="https://evil.example/"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<p style="background:url(javascript:alert(1))">đoạn văn</p>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    "<body onload=alert(1)>",
    '<form action="javascript:alert(1)"><button>gửi</button></form>',
    '<div onmouseover="alert(1)">di chuột</div>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<!--<img src=x onerror=alert(1)>-->",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<input autofocus onfocus="alert(1)">',
    '<details open ontoggle="alert(1)">',
    '<video><source onerror="alert(1)"></video>',
]

# What may never appear in a payload built from sanitised input (case-insensitive, also after
# decoding HTML entities).
FORBIDDEN = re.compile(
    r"<\s*/?\s*(script|iframe|svg|style|object|embed|form|math|meta|base|input|video|details|"
    r"body|noscript)\b|\bon[a-z]+\s*=|javascript:|vbscript:|data:\s*(text|image)|srcdoc|"
    r"expression\s*\(",
    re.IGNORECASE,
)


def article_body() -> str:
    return "<p>Thủ tướng chỉ đạo các bộ, ngành.</p>" + "".join(
        f"<p>Mục {i}: {payload}</p>" for i, payload in enumerate(PAYLOADS)
    )


def hostile_rss() -> bytes:
    items = []
    for i, payload in enumerate(PAYLOADS):
        items.append(
            f"""<item>
  <title>{html.escape(payload)} Tin số {i}</title>
  <link>https://portal.gov.vn/tin/{i}.htm</link>
  <guid>https://portal.gov.vn/tin/{i}.htm</guid>
  <pubDate>Sat, 14 Nov 2026 09:0{i % 10}:00 +0700</pubDate>
  <description><![CDATA[<p>Tóm tắt {i}</p>{payload}]]></description>
  <content:encoded><![CDATA[{article_body()}]]></content:encoded>
</item>"""
        )
    items.append(
        """<item><title>Liên kết độc</title><link>javascript:alert(1)</link>
<guid>evil-link</guid><description>x</description>
<pubDate>Sat, 14 Nov 2026 09:00:00 +0700</pubDate></item>"""
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        "<title>Cổng TTĐT</title><link>https://portal.gov.vn/</link>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def hostile_article_json(images: list[str] | None = None) -> bytes:
    return json.dumps(
        {
            "guid": "xss-1",
            "url": "https://portal.gov.vn/tin/xss.htm",
            "title": "<script>alert(1)</script>Chỉ đạo <img src=x onerror=alert(1)>",
            "summary": '<a href="javascript:alert(1)">tóm tắt</a>',
            "body_html": article_body(),
            "body_text": "",
            "published_at": "2026-11-14T09:05:00+07:00",
            "images": images or ["https://portal.gov.vn/a.jpg"],
            "video": None,
            "language": "vi",
            "source": "<b>portal.gov.vn</b>",
            "kind": "directive",
        },
        ensure_ascii=False,
    ).encode()


def ingested() -> list[Article]:
    context = SourceContext(id="hostile", name="portal.gov.vn", base_url="https://portal.gov.vn/")
    articles, _ = read_document(hostile_rss(), context, now=NOW)
    from_json, _ = read_document(hostile_article_json(), context, now=NOW)
    return articles + from_json


@pytest.fixture
async def channels() -> AsyncIterator[list[Channel]]:
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(500))
    ) as http:
        yield [cls(http) for cls in channel_classes().values()]


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


def test_every_channel_is_covered() -> None:
    assert {"facebook", "youtube", "zalo", "viber", "telegram", "x"} <= set(channel_classes())


@pytest.mark.parametrize(
    "image", ["javascript:alert(1)", "data:image/svg+xml;base64,AAAA", "file:///etc/passwd"]
)
def test_article_json_with_a_script_url_is_refused(image: str) -> None:
    context = SourceContext(id="hostile", name="portal.gov.vn")
    with pytest.raises(IngestError, match="http"):
        read_document(hostile_article_json([image]), context, now=NOW)


def test_ingestion_drops_executable_content_and_bad_links() -> None:
    articles = ingested()
    assert len(articles) >= len(PAYLOADS)  # hostile items are cleaned, not lost
    for article in articles:
        for text in (article.title, article.summary, article.body_html, article.body_text):
            decoded = html.unescape(text)
            assert not FORBIDDEN.search(text), (article.guid, text)
            assert not FORBIDDEN.search(decoded) or text is article.body_text, (article.guid, text)
        assert article.url == "" or article.url.startswith(("http://", "https://")), article.url
        assert all(u.startswith(("http://", "https://")) for u in article.images), article.images
        for href in re.findall(r'(?:href|src)="([^"]*)"', article.body_html):
            assert href.startswith(("http://", "https://", "mailto:", "#")), href


async def test_no_payload_of_any_channel_carries_executable_content(
    channels: list[Channel],
) -> None:
    checked = 0
    for article in ingested():
        for channel in channels:
            for template in TEMPLATES:
                adapted = channel.adapt(article, UNIT, template)
                if adapted.payload is None:
                    continue
                checked += 1
                for text in strings(adapted.payload):
                    for form in (text, html.unescape(text)):
                        assert not FORBIDDEN.search(form), (channel.platform, article.guid, form)
    assert checked > len(PAYLOADS) * 5  # every channel but YouTube (no video) took them


# --- defence in depth: unsanitised input straight into the channels -------------------------

TELEGRAM_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
    "blockquote", "tg-spoiler", "span", "tg-emoji",
}  # fmt: skip


class TelegramSubset(HTMLParser):
    """Collects every tag and attribute Telegram would see in an HTML-mode message."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.bad: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TELEGRAM_TAGS:
            self.bad.append(f"<{tag}>")
        for name, value in attrs:
            if tag == "a" and name == "href":
                if not (value or "").startswith(("http://", "https://", "tg://")):
                    self.bad.append(f"href={value!r}")
            elif (
                not (tag == "span" and name == "class" and value == "tg-spoiler")
                and not (tag in ("pre", "code") and name == "class")
                and not (tag == "blockquote" and name == "expandable")
            ):
                self.bad.append(f"{tag} {name}={value!r}")


URL_FIELDS = {"link", "url", "photo", "cover", "media", "thumbnail", "picture", "href", "src"}


def url_values(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in URL_FIELDS and isinstance(item, str):
                yield item
            else:
                yield from url_values(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from url_values(item)


def raw_article() -> Article:
    return Article(
        guid="raw",
        url="https://portal.gov.vn/tin/raw.htm",
        title='<script>alert(1)</script><a href="javascript:alert(1)">Tiêu đề</a>',
        published_at=NOW,
        summary="<img src=x onerror=alert(1)> tóm tắt <svg onload=alert(1)>",
        body_html=article_body(),
        body_text="<iframe src=https://evil.example></iframe> " + " ".join(PAYLOADS),
        images=("javascript:alert(1)", "https://portal.gov.vn/a.jpg"),
        source='<a href="javascript:alert(1)">nguồn</a>',
        kind=ArticleKind.ARTICLE,
    )


async def test_unsanitised_input_still_yields_safe_payloads(channels: list[Channel]) -> None:
    article = raw_article()
    for channel in channels:
        for template in TEMPLATES:
            adapted = channel.adapt(article, UNIT, template)
            if adapted.payload is None:
                continue
            for url in url_values(adapted.payload):
                assert url.startswith(("http://", "https://")), (channel.platform, url)
            if adapted.payload.get("parse_mode") == "HTML":
                parser = TelegramSubset()
                parser.feed(str(adapted.payload.get("text") or adapted.payload.get("caption")))
                assert parser.bad == [], (channel.platform, parser.bad)
            for text in strings(adapted.payload):
                # Markup must never arrive as markup: after the channel's own cleaning there is
                # no tag, handler or script URL left in any text the platform receives.
                assert not re.search(r"<\s*(script|iframe|svg|img|style)\b", text, re.I), (
                    channel.platform,
                    text,
                )
                assert "javascript:" not in text.lower() or channel.platform.value not in (
                    "telegram",
                ), text
