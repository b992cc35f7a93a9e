"""The corpus: every real-world defect ingests into exactly the right articles."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest

from publisher.domain import Article
from publisher.ingest.normalize import SourceContext
from publisher.ingest.reader import read_document
from publisher.text import matching_key

CORPUS = Path(__file__).parent / "corpus"
FETCHED_AT = datetime(2025, 1, 1, 0, 0, tzinfo=UTC)


def read(name: str, source_id: str = "src") -> tuple[list[Article], list[str]]:
    data = (CORPUS / name).read_bytes()
    return read_document(data, SourceContext(id=source_id), now=FETCHED_AT)


def iso(article: Article) -> str:
    return article.published_at.isoformat()


def test_baochinhphu_rss_dates_without_zone_and_lead_tag() -> None:
    articles, problems = read("good/baochinhphu_home.rss")
    assert problems == []
    assert [a.title for a in articles] == [
        "Thủ tướng Phạm Minh Chính chủ trì Phiên họp Chính phủ thường kỳ tháng 10",
        "Công điện của Thủ tướng về ứng phó bão số 8",
        "Nghị định quy định chi tiết Luật Đất đai có hiệu lực từ 1/8",
    ]
    assert [iso(a) for a in articles] == [
        "2024-11-14T09:05:00+07:00",
        "2024-11-13T21:30:00+07:00",
        "2024-07-31T12:00:00+07:00",
    ]
    first, second, third = articles
    assert first.url == (
        "https://baochinhphu.vn/thu-tuong-chu-tri-phien-hop-chinh-phu-thuong-ky-thang-10-"
        "102241114090500123.htm"
    )
    assert first.summary.startswith("Sáng 14/11, Thủ tướng")  # "(Chinhphu.vn) - " removed
    assert first.guid == "src#102241114090500123"  # bare GUIDs are scoped to their source
    assert first.images == (
        "https://bcp.cdnchinhphu.vn/334894974524682240/2024/11/14/phien-hop-1.jpg",
    )
    assert second.body_text == (
        "Thủ tướng Chính phủ vừa ký Công điện số 118/CĐ-TTg.\n"
        "Các địa phương từ Quảng Ninh đến Thanh Hóa theo dõi chặt chẽ diễn biến của bão."
    )
    assert second.images == ("https://bcp.cdnchinhphu.vn/2024/11/13/bao-so-8.jpg",)
    assert third.images == ("https://bcp.cdnchinhphu.vn/2024/07/31/dat-dai.png",)
    assert all(a.content_hash for a in articles)


def test_rss091_with_netscape_doctype() -> None:
    articles, _ = read("good/rss091_netscape.xml")
    assert [(a.title, iso(a)) for a in articles] == [
        ("Lịch tiếp công dân tháng 12", "2024-12-02T09:00:00+07:00"),  # 02:00 GMT
        ("Phổ biến Luật Căn cước tới người dân", "2024-12-03T15:45:00+07:00"),
    ]


def test_rss10_rdf() -> None:
    articles, _ = read("good/rss10_rdf.rdf")
    assert [(a.title, iso(a), a.url) for a in articles] == [
        (
            "Ngày Chuyển đổi số quốc gia 2025",
            "2025-10-10T08:00:00+07:00",
            "https://mst.gov.vn/tin-tuc/chuyen-doi-so-quoc-gia-2025.htm",
        ),
        (
            "Gặp mặt nhân Ngày Báo chí Cách mạng Việt Nam",
            "2025-06-20T08:30:00+07:00",
            "https://mst.gov.vn/tin-tuc/bao-chi-cach-mang.htm",
        ),
    ]
    assert articles[0].guid == "https://mst.gov.vn/tin-tuc/chuyen-doi-so-quoc-gia-2025.htm"


def test_atom10_xml_base_xhtml_content_and_double_escaped_title() -> None:
    articles, _ = read("good/atom10.atom")
    first, second = articles
    assert first.title == "Đà Nẵng khai mạc Lễ hội pháo hoa quốc tế & chương trình nghệ thuật"
    assert first.url == "https://danang.gov.vn/web/guest/chi-tiet?id=58123"  # utm_source gone
    assert first.guid == "tag:danang.gov.vn,2025:58123"
    assert iso(first) == "2025-05-31T20:00:00+07:00"
    assert first.images == ("https://danang.gov.vn/images/phao-hoa.jpg",)
    assert "<p>Năm nay có 6 đội pháo hoa tham gia.</p>" in first.body_html
    assert iso(second) == "2025-06-02T17:30:00+07:00"  # only <updated>, in UTC
    assert second.body_text == "Điện lực Hải Châu tạm ngừng cấp điện từ 7h đến 11h."


def test_atom03() -> None:
    articles, _ = read("good/atom03.xml")
    assert [(a.title, iso(a), a.summary) for a in articles] == [
        (
            "Kế hoạch tuyển sinh lớp 10 năm học 2024-2025",
            "2024-03-15T09:00:00+07:00",
            "Thí sinh đăng ký nguyện vọng trực tuyến.",
        )
    ]


def test_json_feed() -> None:
    articles, _ = read("good/jsonfeed.json")
    photo, video = articles
    assert photo.title == "Sa Pa đón hơn 300.000 lượt khách trong quý I"
    assert photo.images == (
        "https://laocai.gov.vn/uploads/sapa-cover.jpg",
        "https://laocai.gov.vn/uploads/sapa.jpg",  # relative src resolved
    )
    assert video.video == "https://laocai.gov.vn/media/y-ty.mp4"
    assert iso(video) == "2025-05-20T18:00:00+07:00"


def test_article_json_is_sanitised() -> None:
    [article], _ = read("good/article.json")
    assert article.body_html == "<p>Thủ tướng yêu cầu <b>khẩn trương</b> hỗ trợ người dân.</p>"
    assert article.body_text == "Thủ tướng yêu cầu khẩn trương hỗ trợ người dân."
    assert article.summary == "Thủ tướng yêu cầu khẩn trương hỗ trợ người dân."
    assert article.kind.value == "directive"
    assert iso(article) == "2025-11-14T09:05:00+07:00"


def test_html_article_page_generic_extractor() -> None:
    [article], _ = read("good/article_page.html")
    assert article.title == "Chỉ thị về tăng cường công tác phòng cháy, chữa cháy"
    assert article.url == "https://chinhphu.vn/chi-thi-19-ct-ttg.htm"
    assert iso(article) == "2025-09-08T16:40:00+07:00"
    assert article.summary == "Thủ tướng ban hành Chỉ thị số 19/CT-TTg."
    assert 'href="https://chinhphu.vn/van-ban/19-ct-ttg.pdf"' in article.body_html
    assert "track()" not in article.body_html
    assert article.images == ("https://chinhphu.vn/data/images/pccc.jpg",)


@pytest.mark.parametrize(
    ("name", "titles", "dates"),
    [
        (
            "defective/utf16_bom.xml",
            [
                "Quảng Ninh đón 1,5 triệu lượt khách dịp lễ",
                "Hạ Long triển khai chuyển đổi số cấp phường",
            ],
            ["2024-05-03T16:30:00+07:00", "2024-05-04T08:00:00+07:00"],
        ),
        (
            "defective/utf16_nobom.xml",
            ["Đồng Nai tăng cường phòng chống sốt xuất huyết"],
            ["2024-07-22T10:15:00+07:00"],
        ),
        (
            "defective/cp1258_declared.xml",
            ["Thủ tướng chỉ đạo ứng phó bão số 4"],
            ["2024-09-19T07:45:00+07:00"],
        ),
        (
            "defective/cp1258_declared_utf8.xml",
            ["Hướng dẫn phòng chống rét cho cây trồng, vật nuôi"],
            ["2025-01-06T09:00:00+07:00"],
        ),
        (
            "defective/wrong_declared_latin1.xml",
            ["Bộ Tài chính hướng dẫn quyết toán thuế năm 2024"],
            ["2025-03-11T14:20:00+07:00"],
        ),
        (
            "defective/decomposed_nfd.xml",
            ["Hoà Bình sáp nhập vào Phú Thọ: công tác chuẩn bị"],
            ["2025-07-02T08:30:00+07:00"],
        ),
    ],
)
def test_encodings_end_as_nfc_text(name: str, titles: list[str], dates: list[str]) -> None:
    articles, _ = read(name)
    assert [a.title for a in articles] == titles
    assert [iso(a) for a in articles] == dates
    for article in articles:
        for text in (article.title, article.summary, article.body_text):
            assert unicodedata.is_normalized("NFC", text), text


def test_wrong_declarations_are_reported() -> None:
    _, problems = read("defective/cp1258_declared_utf8.xml")
    assert problems == ["encoding: declared utf-8, decoded as cp1258"]
    _, problems = read("defective/wrong_declared_latin1.xml")
    assert problems == ["encoding: declared iso-8859-1 but the bytes are UTF-8"]


def test_decomposed_and_old_tone_style_match_the_composed_new_style() -> None:
    [decomposed], _ = read("defective/decomposed_nfd.xml")
    assert decomposed.body_text == "Thuỷ điện Hoà Bình tiếp tục vận hành an toàn."  # shown as sent
    assert matching_key(decomposed.title) == matching_key(
        "Hòa Bình sáp nhập vào Phú Thọ: công tác chuẩn bị"
    )


def test_dates_without_zone_empty_and_unreadable() -> None:
    articles, _ = read("defective/dates_without_zone.rss")
    assert [iso(a) for a in articles] == [
        "2024-11-14T21:05:00+07:00",  # 11/14/2024 9:05:00 PM
        "2024-11-14T09:05:00+07:00",  # 2024-11-14 09:05:00
        "2024-11-14T09:05:00+07:00",  # 14/11/2024 09:05 (day first)
        "2025-01-01T07:00:00+07:00",  # empty: the time it was fetched
        "2025-01-01T07:00:00+07:00",  # missing
        "2024-11-14T09:05:00+07:00",  # RFC 822 without a zone
        "2025-01-01T07:00:00+07:00",  # "không rõ"
    ]


def test_source_zone_is_configurable() -> None:
    data = (CORPUS / "defective/dates_without_zone.rss").read_bytes()
    articles, _ = read_document(data, SourceContext(id="s", timezone="UTC"), now=FETCHED_AT)
    assert articles[1].published_at.isoformat() == "2024-11-14T09:05:00+00:00"


def test_relative_links() -> None:
    first, second = read("defective/relative_links.rss")[0]
    assert first.url == "https://sxd.bacninh.gov.vn/tin-tuc/quy-hoach-chung.html"
    assert 'href="https://sxd.bacninh.gov.vn/van-ban/qh.pdf"' in first.body_html
    assert first.images == ("https://sxd.bacninh.gov.vn/anh/qh.jpg",)
    assert second.url == "https://sxd.bacninh.gov.vn/tin-tuc/cap-phep.html?id=7"  # no fragment


def test_html_entities_in_titles() -> None:
    articles, _ = read("defective/html_entities.rss")
    assert [a.title for a in articles] == [
        'Triển lãm "Sài Gòn xưa & nay"',
        "Giải bóng đá thiếu niên",
        "Lễ hội Tết Việt – 2025",
    ]
    assert articles[0].url == "https://svhtt.hochiminhcity.gov.vn/tin?cat=2&id=1"  # bare & ok


def test_dirty_html_never_survives() -> None:
    [article], _ = read("defective/dirty_html.rss")
    html = article.body_html.lower()
    for forbidden in ("<script", "onmouseover", "onerror", "onclick", "javascript:", "<iframe",
                      "<style", "style=", "evil.example", "document.cookie"):  # fmt: skip
        assert forbidden not in html, forbidden
    assert article.body_text == "Nội dung chính.\nbấmVăn bản"  # inline runs join, as shown
    assert 'href="https://example-portal.gov.vn/van-ban.pdf"' in article.body_html
