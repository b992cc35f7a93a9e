"""Page sources: a listing with per-source selectors, then each new article page."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from publisher.domain import ArticleKind, Source, SourceKind
from publisher.fetch import Fetcher
from publisher.ingest.errors import IngestError
from publisher.ingest.pages import check_selectors, listing_links
from publisher.ingest.poller import Poller
from publisher.ingest.store import MemoryIngestStore

from .localserver import serve

NOW = datetime(2025, 3, 1, 1, 0, tzinfo=UTC)


def to_cp1258(text: str) -> bytes:
    """Windows' Vietnamese bytes: precomposed base letters, combining tone marks."""
    tones = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
    out = bytearray()
    for ch in text:
        try:
            out += ch.encode("cp1258")
        except UnicodeEncodeError:
            parts = unicodedata.normalize("NFD", ch)
            base = unicodedata.normalize("NFC", "".join(c for c in parts if c not in tones))
            out += (base + "".join(c for c in parts if c in tones)).encode("cp1258")
    return bytes(out)


LISTING = """<html><body><div class="menu"><a href="/">Trang chủ</a></div>
<ul class="list-vb">
 <li><a class="tieu-de" href="/chi-dao/cd-118.htm?utm_source=home">Công điện 118/CĐ-TTg</a></li>
 <li><a class="tieu-de" href="chi-dao/ct-19.htm">Chỉ thị 19/CT-TTg</a></li>
 <li><a class="tieu-de" href="/chi-dao/missing.htm">Văn bản đã gỡ</a></li>
</ul></body></html>"""

PAGE = """<html><head><meta charset="windows-1258"></head><body>
<h1 class="tieu-de">{title}</h1><span class="ngay">Thứ Năm, 14/11/2024 - 09:05</span>
<div class="sapo">(Chinhphu.vn) - {lead}</div>
<div class="noi-dung"><p>{body}</p><div class="share">Chia sẻ</div><img src="/anh/{slug}.jpg"></div>
</body></html>"""

SELECTORS = {
    "links": "ul.list-vb a.tieu-de",
    "title": "h1.tieu-de",
    "date": ".ngay",
    "lead": ".sapo",
    "body": ".noi-dung",
    "images": ".noi-dung img",
    "remove": ".share",
}


def site() -> Starlette:
    async def listing(request: Request) -> Response:
        return HTMLResponse(LISTING)

    async def page(request: Request) -> Response:
        slug = request.path_params["slug"]
        if slug == "missing":
            return Response("gone", status_code=404)
        title = {"cd-118": "Công điện về ứng phó bão", "ct-19": "Chỉ thị về phòng cháy"}[slug]
        html = PAGE.format(title=title, lead="Tóm tắt " + slug, body="Nội dung " + slug, slug=slug)
        # cp1258 page, declared by its meta tag: decoded and normalised to NFC.
        return Response(to_cp1258(html), media_type="text/html")

    return Starlette(routes=[Route("/chi-dao", listing), Route("/chi-dao/{slug}.htm", page)])


def test_listing_links_are_absolute_canonical_and_in_order() -> None:
    links = listing_links(
        LISTING.encode(), page_url="https://chinhphu.vn/chi-dao", selectors=SELECTORS
    )
    assert links == [
        "https://chinhphu.vn/chi-dao/cd-118.htm",
        "https://chinhphu.vn/chi-dao/ct-19.htm",
        "https://chinhphu.vn/chi-dao/missing.htm",
    ]


def test_bad_selectors_are_reported() -> None:
    problems = check_selectors({"title": "h1[", "colour": "x"})
    assert len(problems) == 2
    assert problems[0].startswith("selectors.title: invalid CSS 'h1['")
    assert problems[1] == (
        "selectors: unknown key 'colour' (known: body, date, images, lead, links, remove, title)"
    )
    with pytest.raises(IngestError, match=r"selectors\.links"):
        listing_links(b"<html></html>", page_url="https://a.vn/", selectors={"links": "a["})


async def test_directives_section_read_from_its_html_listing() -> None:
    store = MemoryIngestStore()
    async with serve(site()) as base, Fetcher() as fetcher:
        source = Source(
            id="chinhphu-chidao",
            unit_code="root",
            kind=SourceKind.PAGE,
            url=f"{base}/chi-dao",
            article_kind=ArticleKind.DIRECTIVE,
            allow_private_network=True,
            selectors=SELECTORS,
        )
        poller = Poller(store, fetcher)
        outcome = await poller.poll_source(source, now=NOW)
        assert outcome.status == "new", outcome.error
        assert outcome.new == 2
        assert len(outcome.problems) == 1
        assert "missing.htm" in outcome.problems[0]
        assert "HTTP 404" in outcome.problems[0]
        first, second = (stored.article for stored in store.articles.values())
        assert first.title == "Công điện về ứng phó bão"
        assert first.kind is ArticleKind.DIRECTIVE
        assert first.published_at.isoformat() == "2024-11-14T09:05:00+07:00"
        assert first.summary == "Tóm tắt cd-118"
        assert first.body_text == "Nội dung cd-118"  # the share bar was removed
        assert first.images == (f"{base}/anh/cd-118.jpg",)
        assert first.url == f"{base}/chi-dao/cd-118.htm"
        assert second.title == "Chỉ thị về phòng cháy"
        # Second poll: known links are not fetched again.
        again = await poller.poll_source(source, now=NOW)
        assert again.new == 0
        assert len(store.articles) == 2
