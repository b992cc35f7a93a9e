"""Writes the encoded corpus files (UTF-16, cp1258, decomposed text, garbage) from readable text.

Run once: `python tests/ingest/corpus/make_corpus.py`. The files are committed; this script
documents how the byte-level defects were made.
"""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

HERE = Path(__file__).parent
_TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}


def to_cp1258(text: str) -> bytes:
    """cp1258 as Windows writes Vietnamese: precomposed base letters, combining tone marks."""
    out = bytearray()
    for ch in unicodedata.normalize("NFC", text):
        try:
            out += ch.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        parts = unicodedata.normalize("NFD", ch)
        tones = "".join(c for c in parts if c in _TONES)
        base = unicodedata.normalize("NFC", "".join(c for c in parts if c not in _TONES))
        out += (base + tones).encode("cp1258")
    return bytes(out)


RSS_HEAD = (
    '<?xml version="1.0" encoding="{enc}"?>\n<rss version="2.0"><channel>\n'
    "<title>{title}</title><link>{link}</link>\n"
)
RSS_TAIL = "</channel></rss>\n"


def item(title: str, link: str, date: str, desc: str, guid: str | None = None) -> str:
    guid_xml = f'<guid isPermaLink="false">{guid}</guid>' if guid else ""
    return (
        f"<item><title>{title}</title><link>{link}</link>{guid_xml}"
        f"<description>{desc}</description><pubDate>{date}</pubDate></item>\n"
    )


def main() -> None:
    # UTF-16 LE with a BOM, declaring utf-16.
    body = RSS_HEAD.format(
        enc="utf-16", title="Cổng TTĐT tỉnh Quảng Ninh", link="https://www.quangninh.gov.vn"
    )
    body += item(
        "Quảng Ninh đón 1,5 triệu lượt khách dịp lễ",
        "https://www.quangninh.gov.vn/tin-tuc/du-lich-1.html",
        "Fri, 03 May 2024 16:30:00 +0700",
        "Tỉnh đón lượng khách kỷ lục trong kỳ nghỉ.",
    )
    body += item(
        "Hạ Long triển khai chuyển đổi số cấp phường",
        "https://www.quangninh.gov.vn/tin-tuc/cds-2.html",
        "Sat, 04 May 2024 08:00:00 +0700",
        "Các phường hoàn thành cấp tài khoản định danh.",
    )
    body += RSS_TAIL
    (HERE / "defective/utf16_bom.xml").write_bytes(b"\xff\xfe" + body.encode("utf-16-le"))

    # UTF-16 BE, no BOM, declaration says utf-16.
    body = RSS_HEAD.format(
        enc="UTF-16", title="Sở Y tế Đồng Nai", link="https://soyte.dongnai.gov.vn"
    )
    body += item(
        "Đồng Nai tăng cường phòng chống sốt xuất huyết",
        "https://soyte.dongnai.gov.vn/tin/sxh.aspx",
        "2024-07-22T10:15:00+07:00",
        "Ngành y tế phun hóa chất diệt muỗi tại 40 xã, phường.",
    )
    body += RSS_TAIL
    (HERE / "defective/utf16_nobom.xml").write_bytes(body.encode("utf-16-be"))

    # cp1258, declared correctly as windows-1258.
    body = RSS_HEAD.format(
        enc="windows-1258", title="UBND tỉnh Thừa Thiên Huế", link="https://thuathienhue.gov.vn"
    )
    body += item(
        "Thủ tướng chỉ đạo ứng phó bão số 4",
        "https://thuathienhue.gov.vn/vi-vn/tin-tuc/bao-so-4.aspx",
        "Thu, 19 Sep 2024 07:45:00 +0700",
        "Tỉnh sơ tán hơn 3.000 hộ dân vùng trũng thấp.",
    )
    body += RSS_TAIL
    (HERE / "defective/cp1258_declared.xml").write_bytes(to_cp1258(body))

    # cp1258 bytes but the declaration says UTF-8.
    body = RSS_HEAD.format(
        enc="utf-8", title="Sở Nông nghiệp Hòa Bình", link="https://snn.hoabinh.gov.vn"
    )
    body += item(
        "Hướng dẫn phòng chống rét cho cây trồng, vật nuôi",
        "https://snn.hoabinh.gov.vn/tin/ret.html",
        "Mon, 06 Jan 2025 09:00:00 +0700",
        "Nhiệt độ có nơi xuống dưới 10 độ C.",
    )
    body += RSS_TAIL
    (HERE / "defective/cp1258_declared_utf8.xml").write_bytes(to_cp1258(body))

    # UTF-8 bytes, declaration says ISO-8859-1.
    body = RSS_HEAD.format(enc="ISO-8859-1", title="Bộ Tài chính", link="https://mof.gov.vn")
    body += item(
        "Bộ Tài chính hướng dẫn quyết toán thuế năm 2024",
        "https://mof.gov.vn/webcenter/portal/tin/qtt",
        "Tue, 11 Mar 2025 14:20:00 +0700",
        "Người nộp thuế quyết toán trực tuyến qua eTax Mobile.",
    )
    body += RSS_TAIL
    (HERE / "defective/wrong_declared_latin1.xml").write_bytes(body.encode("utf-8"))

    # UTF-8 but decomposed (NFD) and old-style tone placement.
    body = RSS_HEAD.format(
        enc="utf-8", title="Cổng TTĐT tỉnh Phú Thọ", link="https://phutho.gov.vn"
    )
    body += item(
        "Hoà Bình sáp nhập vào Phú Thọ: công tác chuẩn bị",
        "https://phutho.gov.vn/tin/sap-nhap.html",
        "Wed, 02 Jul 2025 08:30:00 +0700",
        "Thuỷ điện Hoà Bình tiếp tục vận hành an toàn.",
    )
    body += RSS_TAIL
    (HERE / "defective/decomposed_nfd.xml").write_bytes(
        unicodedata.normalize("NFD", body).encode("utf-8")
    )

    # Binary garbage (deterministic).
    rng = random.Random(3)
    (HERE / "hostile/garbage.bin").write_bytes(bytes(rng.randrange(256) for _ in range(4096)))
    # A UTF-16 mark followed by an odd number of bytes that are not UTF-16 text.
    (HERE / "hostile/bad_utf16.xml").write_bytes(b"\xff\xfe<\x00r\x00\x00\xd8\x41")


if __name__ == "__main__":
    main()
