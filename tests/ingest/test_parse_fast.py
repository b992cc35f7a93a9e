"""Feed parsing shortcuts give what the longer way gave:

* UTF-8 bytes that need no preparing go to the XML parser as they are, instead of decoded,
  stripped of their declaration and encoded back: same tree, same items, same errors;
* an Atom entry's children are told apart by one look-up of their full tag: same item as the
  code before (tests/ingest/before.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from lxml import etree

from bench.scenarios import parse as parse_bench
from publisher.ingest import feeds, xmlsafe
from publisher.ingest.errors import IngestError
from publisher.ingest.feeds import NS_ATOM, NS_ATOM03, ParsedFeed, parse_feed
from tests.ingest import before

CORPUS = Path(__file__).parent / "corpus"


def parse_both_ways(data: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    def attempt() -> ParsedFeed | str:
        try:
            return parse_feed(data, base_url="https://b.vn/feed/")
        except IngestError as error:
            return f"IngestError: {error}"

    fast = attempt()
    with monkeypatch.context() as patch:
        patch.setattr(xmlsafe, "_same_as_utf8_bytes", lambda data: False)
        slow = attempt()
    return fast, slow


def test_corpus_and_bench_feeds_parse_the_same_from_their_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    documents = [p.read_bytes() for p in sorted(CORPUS.glob("*/*")) if p.suffix != ".py"]
    documents += parse_bench.feed_set(0) + parse_bench.feed_set(1)
    taken = 0
    for data in documents:
        fast, slow = parse_both_ways(data, monkeypatch)
        assert fast == slow
        taken += xmlsafe._same_as_utf8_bytes(data)
    assert taken >= 6  # the bench feeds and the plain UTF-8 ones in the corpus


# --- generated documents around the edges of "nothing to prepare" ------------------------------

declarations = st.sampled_from(
    [
        "",
        '<?xml version="1.0" encoding="utf-8"?>',
        "<?xml version='1.0' encoding='UTF-8'?>",
        '<?xml version="1.0"?>',
        '<?xml version="1.0" encoding="utf-8" standalone="yes"?>',
        '<?xml version="1.0" encoding="utf-8" ?>',
        '<?xml version="1.0"  encoding="utf-8"?>',
        '<?xml version="1.1" encoding="utf-8"?>',
        '<?xml version="1.0" encoding="iso-8859-1"?>',
        '<?xml version="1.0" encoding="windows-1258"?>',
        '<?xml version="1.0" encoding="utf-16"?>',
        '<?xml version="1.0" encoding="utf-8\'?>',
        '<?XML version="1.0"?>',
        '<?xml-stylesheet href="a.xsl"?>',
        "\ufeff",
    ]
)
preambles = st.sampled_from(
    [
        "",
        "\n",
        "  ",
        "<!-- c -->",
        '<?xml-stylesheet type="text/xsl" href="a.xsl"?>',
        '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "x.dtd">',
        '<!DOCTYPE rss [<!ENTITY a "b">]>',
        "\ufeff",
    ]
)
texts = st.sampled_from(
    [
        "Thủ tướng",
        "a &amp; b",
        "a &nbsp; b",
        "a & b",
        "&eacute;&#233;&#xE9;",
        "&bogus;",
        "<![CDATA[<p>x</p>]]>",
        "x\x01y",
        "\u0085\u2028",
        "]]>",
        "",
    ]
)


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    items = "".join(
        f"<item><title>{draw(texts)}</title><link>https://x.vn/{n}</link>"
        f"<description>{draw(texts)}</description></item>"
        for n in range(draw(st.integers(0, 2)))
    )
    text = (
        draw(declarations)
        + draw(preambles)
        + '<rss version="2.0"><channel><title>'
        + draw(texts)
        + "</title><link>https://x.vn/</link>"
        + items
        + "</channel></rss>"
        + draw(st.sampled_from(["", "\n", "<!-- end -->", "<x/>"]))
    )
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "latin-1", "cp1258"]))
    return text.encode(encoding, errors="replace")


@settings(max_examples=1500, deadline=None)
@given(documents())
@example(
    b'<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel><title>'
    b"\xc3\xa9</title></channel></rss>"
)
@example(b'<?xml version="1.0"?>\xef\xbb\xbf<rss version="2.0"><channel/></rss>')
def test_generated_documents_parse_the_same_from_their_bytes(data: bytes) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast, slow = parse_both_ways(data, monkeypatch)
    assert fast == slow


# --- Atom entries -------------------------------------------------------------------------------

ATOM_CHILDREN = [
    "<title>Tin &amp; bài</title>",
    '<title type="html">&lt;b&gt;Tin&lt;/b&gt;</title>',
    '<title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><b>T</b></div></title>',
    "<id>tag:a.vn,2024:1</id>",
    "<id> 42 </id>",
    '<link href="https://a.vn/1"/>',
    '<link rel="alternate" href="/2" type="text/html"/>',
    '<link rel="alternate" href="3.pdf" type="application/pdf"/>',
    '<link rel="enclosure" href="https://a.vn/v.mp4" type="video/mp4"/>',
    '<link rel="enclosure" href="i.jpg" type="image/jpeg"/>',
    '<link rel="self" href="https://a.vn/feed"/>',
    '<link href="4" xml:base="https://c.vn/d/"/>',
    "<published>2024-11-14T09:05:00+07:00</published>",
    "<published></published>",
    "<updated>2024-11-15T09:05:00Z</updated>",
    "<issued>2024-11-14T09:05:00Z</issued>",
    "<modified>2024-11-16</modified>",
    "<created>2024-11-13</created>",
    '<summary type="html">&lt;p&gt;Tóm tắt&lt;/p&gt;</summary>',
    "<summary>a &lt; b</summary>",
    '<content type="html">&lt;p&gt;Nội dung&lt;/p&gt;</content>',
    '<content mode="xml"><p xmlns="http://www.w3.org/1999/xhtml">x</p></content>',
    '<category term="Thời sự"/>',
    "<category/>",
    "<author><name>Phóng viên</name></author>",
    '<media:thumbnail xmlns:media="http://search.yahoo.com/mrss/" url="https://a.vn/t.jpg"/>',
    '<media:content xmlns:media="http://search.yahoo.com/mrss/" url="v.mp4" medium="video"/>',
    '<media:group xmlns:media="http://search.yahoo.com/mrss/"><media:content url="g.jpg" '
    'type="image/jpeg"/></media:group>',
    '<m:group xmlns:m="http://search.yahoo.com/mrss/x"><m:content url="h.jpg" type="image/png"/>'
    "</m:group>",
    '<other xmlns="urn:x">x</other>',
    "<!-- a comment -->",
]


@st.composite
def atom_documents(draw: st.DrawFn) -> tuple[bytes, str]:
    ns = draw(st.sampled_from([NS_ATOM, NS_ATOM03]))
    entries = "".join(
        "<entry"
        + draw(st.sampled_from(["", ' xml:base="https://e.vn/x/"']))
        + ">"
        + "".join(draw(st.lists(st.sampled_from(ATOM_CHILDREN), max_size=8)))
        + "</entry>"
        for _ in range(draw(st.integers(1, 3)))
    )
    return f'<feed xmlns="{ns}"><title>F</title>{entries}</feed>'.encode(), ns


@settings(max_examples=2000, deadline=None)
@given(atom_documents(), st.sampled_from(["", "https://b.vn/feed/"]))
def test_atom_entries_read_as_before(document: tuple[bytes, str], base: str) -> None:
    data, ns = document
    root = etree.fromstring(data, xmlsafe._PARSER)
    for entry in root.iterfind(f"{{{ns}}}entry"):
        assert feeds._atom_entry(entry, ns, base) == before.atom_entry(entry, ns, base)


def test_corpus_atom_entries_read_as_before() -> None:
    for name, ns in (("good/atom10.atom", NS_ATOM), ("good/atom03.xml", NS_ATOM03)):
        root = xmlsafe.parse_xml((CORPUS / name).read_bytes())
        entries = list(root.iterfind(f"{{{ns}}}entry"))
        assert entries
        for entry in entries:
            assert feeds._atom_entry(entry, ns, "https://b.vn/") == before.atom_entry(
                entry, ns, "https://b.vn/"
            )
