"""XML defences: the pre-parse refusal, and the parser itself as a second wall."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from publisher.ingest import xmlsafe
from publisher.ingest.errors import IngestError
from publisher.ingest.xmlsafe import decode_document, parse_xml

BOMB = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
    + "]><r>&i;</r>"
)


def xxe(secret: Path) -> str:
    return (
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY s SYSTEM "file://{secret}">]>'
        "<rss><channel><title>&s;</title></channel></rss>"
    )


def test_xxe_refused_before_parsing(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("TOP-SECRET")
    with pytest.raises(IngestError, match="declares XML entities") as caught:
        parse_xml(xxe(secret).encode())
    assert "TOP-SECRET" not in str(caught.value)


def test_parser_alone_never_reads_the_file(tmp_path: Path) -> None:
    """Even without the pre-check, the hardened parser does not substitute the entity."""
    secret = tmp_path / "secret"
    secret.write_text("TOP-SECRET")
    parser = xmlsafe._make_parser()
    try:
        root = etree.fromstring(xxe(secret).encode(), parser)
    except etree.XMLSyntaxError:
        return  # refusing is fine too
    assert "TOP-SECRET" not in etree.tostring(root, encoding="unicode")


def test_parser_alone_does_not_expand_a_bomb() -> None:
    parser = xmlsafe._make_parser()
    try:
        root = etree.fromstring(BOMB.encode(), parser)
    except etree.XMLSyntaxError:
        return
    assert len(etree.tostring(root)) < 10_000  # 10^9 bytes if expanded


def test_bomb_refused() -> None:
    with pytest.raises(IngestError, match="declares XML entities"):
        parse_xml(BOMB.encode())


def test_entity_declaration_in_utf16_is_refused_too(tmp_path: Path) -> None:
    data = "\ufeff" + xxe(tmp_path / "x")
    with pytest.raises(IngestError, match="declares XML entities"):
        parse_xml(data.encode("utf-16-le"))


def test_undefined_html_entities_become_characters() -> None:
    root = parse_xml(b"<r><t>a&nbsp;b &eacute; &amp; & c &bogus;</t></r>")
    assert root.findtext("t") == "a\xa0b é & & c &bogus;"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        ("<r>Thủ tướng</r>".encode(), "utf-8"),
        ("<r>Thủ tướng</r>".encode("utf-16"), "utf-16-le"),
        (b'<?xml version="1.0" encoding="windows-1258"?><r>Th\xf2</r>', "cp1258"),
    ],
)
def test_decode(data: bytes, encoding: str) -> None:
    assert decode_document(data).encoding == encoding


def test_empty_is_an_error() -> None:
    with pytest.raises(IngestError, match="empty"):
        decode_document(b"  \n")
