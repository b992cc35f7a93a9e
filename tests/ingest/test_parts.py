"""Dates, URLs and sanitising: the pure pieces."""

from __future__ import annotations

import pytest

from publisher.ingest.dates import parse_date
from publisher.ingest.sanitize import clean_html, html_to_text, plain_text
from publisher.ingest.urls import canonical_url, scoped_guid


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("11/14/2024 9:05:00 AM", "2024-11-14T09:05:00+07:00"),
        ("11/14/2024 12:30:00 AM", "2024-11-14T00:30:00+07:00"),
        ("11/14/2024 12:30:00 PM", "2024-11-14T12:30:00+07:00"),
        ("1/2/2025 3:00:00 PM", "2025-01-02T15:00:00+07:00"),  # AM/PM: month first
        ("02/01/2025 15:00", "2025-01-02T15:00:00+07:00"),  # 24 h: day first (Vietnamese)
        ("Thứ Năm, 14/11/2024 - 09:05", "2024-11-14T09:05:00+07:00"),
        ("09:05 14/11/2024", "2024-11-14T09:05:00+07:00"),
        ("Thu, 14 Nov 2024 02:05:00 GMT", "2024-11-14T09:05:00+07:00"),
        ("Thu, 14 Nov 2024 09:05:00 +0700", "2024-11-14T09:05:00+07:00"),
        ("Thu, 14 Nov 2024 09:05:00 ICT", "2024-11-14T09:05:00+07:00"),
        ("2024-11-14T09:05:00+07:00", "2024-11-14T09:05:00+07:00"),
        ("2024-11-14T02:05:00Z", "2024-11-14T09:05:00+07:00"),
        ("2024-11-14T09:05:00.123", "2024-11-14T09:05:00+07:00"),
        ("2024-11-14", "2024-11-14T00:00:00+07:00"),
    ],
)
def test_dates(written: str, expected: str) -> None:
    parsed = parse_date(written)
    assert parsed is not None
    assert parsed.isoformat() == expected


@pytest.mark.parametrize("written", ["", "   ", None, "không rõ", "31/02/2024 10:00", "13/13/2024"])
def test_unreadable_dates_are_none(written: str | None) -> None:
    assert parse_date(written) is None


def test_named_zone() -> None:
    parsed = parse_date("2024-11-14 09:05", default_zone="Asia/Ho_Chi_Minh")
    assert parsed is not None
    assert parsed.utcoffset() is not None
    assert parsed.isoformat() == "2024-11-14T09:05:00+07:00"


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTPS://BaoChinhPhu.VN:443/a.htm#top", "https://baochinhphu.vn/a.htm"),
        (
            "https://x.gov.vn/t?utm_source=fb&id=2&fbclid=abc&a=1&zarsrc=30",
            "https://x.gov.vn/t?a=1&id=2",
        ),
        ("http://x.gov.vn:8080", "http://x.gov.vn:8080/"),
        ("https://x.gov.vn/Tin/ABC.htm", "https://x.gov.vn/Tin/ABC.htm"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_scoped_guid() -> None:
    assert scoped_guid("12345", "hanoi") == "hanoi#12345"
    assert scoped_guid("https://a.vn/1", "hanoi") == "https://a.vn/1"
    assert scoped_guid("tag:a.vn,2025:1", "hanoi") == "tag:a.vn,2025:1"


@pytest.mark.parametrize(
    "dirty",
    [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        '<a href="javascript:alert(1)">x</a>',
        '<a href="JaVaScRiPt:alert(1)">x</a>',
        '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
        '<iframe src="https://evil.example"></iframe>',
        '<p style="background:url(javascript:alert(1))">x</p>',
        "<style>*{}</style>",
        '<svg onload="alert(1)"><script>alert(1)</script></svg>',
        '<form action="https://evil.example"><input name="p"></form>',
        "<object data='x.swf'></object><embed src='x.swf'>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    ],
)
def test_nothing_active_survives(dirty: str) -> None:
    clean = clean_html(dirty, base_url="https://portal.gov.vn/").lower()
    for marker in ("<script", "onerror", "onload", "javascript:", "data:", "<iframe", "style",
                   "<svg", "<form", "<input", "<object", "<embed"):  # fmt: skip
        assert marker not in clean, (dirty, clean)


def test_text_from_clean_html() -> None:
    html = "<h2>Tiêu đề</h2><p>Đoạn <b>một</b>.</p><ul><li>ý 1</li><li>ý 2</li></ul>"
    assert html_to_text(html) == "Tiêu đề\nĐoạn một.\ný 1\ný 2"


def test_plain_text_titles() -> None:
    assert plain_text("Tin &amp;quot;nóng&amp;quot; <b>hôm nay</b>") == 'Tin "nóng" hôm nay'
    assert plain_text("Thu\u0309 tu\u031bo\u031b\u0301ng") == "Thủ tướng"  # NFD → NFC
