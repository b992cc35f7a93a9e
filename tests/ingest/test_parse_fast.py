"""Feed parsing shortcuts give what the longer way gave:

* a feed in plain UTF-8 goes to the XML parser as bytes, not decoded, stripped of its
  declaration and encoded back: the same items, the same remark, the same errors — and the
  parser turns down every byte sequence Python's UTF-8 decoder turns down;
* such a feed is read by the standard library's parser (ElementTree) first: the same items
  as from lxml's tree, both from its bytes and the longer way;
* an Atom entry's children are told apart by one look-up of their full tag: the same item
  as the code before (tests/ingest/before.py).
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


def parse_three_ways(
    data: bytes, monkeypatch: pytest.MonkeyPatch, http_charset: str | None = None
) -> tuple[object, object, object]:
    """What parse_feed gives (ElementTree first), with lxml from the bytes only, and the
    longer way only (decoded, prepared, repaired if need be)."""

    def attempt() -> ParsedFeed | str:
        try:
            return parse_feed(data, base_url="https://b.vn/feed/", http_charset=http_charset)
        except IngestError as error:
            return f"IngestError: {error}"

    fast = attempt()
    with monkeypatch.context() as patch:
        patch.setattr(feeds, "read_plain_utf8", lambda data, http_charset=None: None)
        lxml_bytes = attempt()
        patch.setattr(feeds, "parse_plain_utf8", lambda data, http_charset=None: None)
        slow = attempt()
    return fast, lxml_bytes, slow


def test_corpus_and_bench_feeds_parse_the_same_from_their_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    documents = [p.read_bytes() for p in sorted(CORPUS.glob("*/*")) if p.suffix != ".py"]
    documents += parse_bench.feed_set(0) + parse_bench.feed_set(1)
    taken = stdlib_taken = 0
    for data in documents:
        for charset in (None, "iso-8859-1", "bogus"):
            fast, lxml_bytes, slow = parse_three_ways(data, monkeypatch, charset)
            assert fast == lxml_bytes == slow
        taken += xmlsafe.parse_plain_utf8(data) is not None
        stdlib_taken += xmlsafe.read_plain_utf8(data) is not None
    assert taken >= 6  # the bench feeds and the plain UTF-8 ones in the corpus
    assert stdlib_taken == taken


# --- generated documents around the edges of "nothing to prepare" ------------------------------

odd_declarations = st.sampled_from(
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
odd_preambles = st.sampled_from(
    [
        "",
        "\n",
        "  ",
        "<!-- c -->",
        '<?xml-stylesheet type="text/xsl" href="a.xsl"?>',
        '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "x.dtd">',
        '<!DOCTYPE rss [<!ENTITY a "b">]>',
        '<!ENTITY a "b">',
        "\ufeff",
    ]
)
odd_texts = st.sampled_from(
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
        "\ufffe",
        "]]>",
        "",
    ]
)
broken_bytes = st.sampled_from(
    [
        b"\xed\xa0\x80",  # a surrogate
        b"\xed\xbf\xbf",
        b"\xc0\x80",  # overlong
        b"\xe0\x80\xaf",
        b"\xf4\x90\x80\x80",  # above U+10FFFF
        b"\xf8\x88\x80\x80\x80",
        b"\xc3",  # cut short
        b"\x80",
        b"\xff",
        b"\xef\xbf\xbe",  # U+FFFE: UTF-8, but not an XML character
        b"\xc3\xa9",  # é: fine
        b"\x00",
    ]
) | st.binary(min_size=1, max_size=4)


def mostly(usual: st.SearchStrategy[str], odd: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Usually `usual`, one time in four `odd`: most documents take the shortcut, some not."""
    return st.integers(0, 3).flatmap(lambda n: usual if n else odd)


fine_texts = st.sampled_from(["Thủ tướng", "a &amp; b", "&#233;", "<![CDATA[<p>x</p>]]>", ""])
plain_declarations = st.sampled_from(["", '<?xml version="1.0" encoding="utf-8"?>'])


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    texts = mostly(fine_texts, odd_texts)
    declarations = mostly(plain_declarations, odd_declarations)
    preambles = mostly(st.just(""), odd_preambles)
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
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()):  # bytes that may not be UTF-8 at all, somewhere in it
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(broken_bytes) + data[at:]
    return data


@settings(max_examples=2000, deadline=None)
@given(documents(), st.sampled_from([None, "iso-8859-1", "utf-8", "bogus"]))
@example(
    b'<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel><title>'
    b"\xc3\xa9</title></channel></rss>",
    None,
)
@example(b'<?xml version="1.0"?>\xef\xbb\xbf<rss version="2.0"><channel/></rss>', None)
@example(b'<rss version="2.0"><channel><title>\xed\xa0\x80</title></channel></rss>', None)
@example(b'<rss version="2.0"><channel><title>\xc3\xa9</title></channel></rss>', "latin-1")
@example(b"<\x00r\x00s\x00s\x00/\x00>\x00", None)
def test_generated_documents_parse_the_same_from_their_bytes(
    data: bytes, http_charset: str | None
) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast, lxml_bytes, slow = parse_three_ways(data, monkeypatch, http_charset)
    assert fast == lxml_bytes == slow


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=12), st.sampled_from([b"", b"\xc3\xa9", b"a"]))
def test_the_parser_turns_down_what_the_utf8_decoder_turns_down(junk: bytes, around: bytes) -> None:
    data = b"<r>" + around + junk + around + b"</r>"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        assert xmlsafe.parse_plain_utf8(data) is None
        assert xmlsafe.read_plain_utf8(data) is None


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


# --- ElementTree and lxml read the same feeds alike ---------------------------------------------

RSS_CHILDREN = [
    "<title>Tin &amp; bài</title>",
    "<title>a<b>b</b>c<!-- x -->d<?pi x?>e</title>",
    "<title><![CDATA[<b>Tin</b> &amp;]]></title>",
    "<title>  \n Thủ tướng\t</title>",
    "<link>https://a.vn/1</link>",
    "<link> /tin/2 </link>",
    "<link></link>",
    '<guid isPermaLink="false">42</guid>',
    '<guid isPermaLink="TRUE">https://a.vn/g</guid>',
    "<guid>tin-3</guid>",
    '<description><![CDATA[<p>Tóm <img src="/i.jpg"/> tắt</p>]]></description>',
    "<description>a &lt; b &#233; &#x1EA1;</description>",
    "<description><p>x</p>y</description>",
    "<pubDate>11/14/2024 9:05:00 AM</pubDate>",
    "<pubDate>Thu, 14 Nov 2024 09:05:00 +0700</pubDate>",
    '<enclosure url="https://a.vn/v.mp4" type="video/mp4" length="1"/>',
    '<enclosure url="i.jpg" type="image/jpeg"/>',
    "<category>Thời sự</category>",
    "<author>a@b.vn (Phóng viên)</author>",
    '<content:encoded xmlns:content="http://purl.org/rss/1.0/modules/content/">'
    "<![CDATA[<p>Nội dung</p>]]></content:encoded>",
    '<dc:date xmlns:dc="http://purl.org/dc/elements/1.1/">2024-11-14T09:05:00+07:00</dc:date>',
    '<dc:creator xmlns:dc="http://purl.org/dc/elements/1.1/">Ban biên tập</dc:creator>',
    '<dc:subject xmlns:dc="http://purl.org/dc/elements/1.1/">Kinh tế</dc:subject>',
    '<media:thumbnail xmlns:media="http://search.yahoo.com/mrss/" url="https://a.vn/t.jpg"/>',
    '<media:content xmlns:media="http://search.yahoo.com/mrss/" url="v.mp4" medium="video"/>',
    '<media:group xmlns:media="http://search.yahoo.com/mrss/"><media:content url="g.jpg" '
    'type="image/jpeg"/><media:thumbnail url="h.jpg"/></media:group>',
    '<atom:link xmlns:atom="http://www.w3.org/2005/Atom" href="https://a.vn/al"/>',
    '<other xmlns="urn:x" a="&quot;&apos;">x</other>',
    "<!-- a comment -->",
    "<?pi data?>",
    "\n  ",
]


@st.composite
def rss_documents(draw: st.DrawFn) -> bytes:
    items = "".join(
        "<item"
        + draw(st.sampled_from(["", ' xml:base="https://e.vn/x/"', ' rdf:about="urn:a"']))
        + ">"
        + "".join(draw(st.lists(st.sampled_from(RSS_CHILDREN), max_size=8)))
        + "</item>"
        for _ in range(draw(st.integers(0, 3)))
    )
    channel_base = draw(st.sampled_from(["", ' xml:base="https://c.vn/k/"']))
    head = draw(st.sampled_from(["", '<?xml version="1.0" encoding="utf-8"?>\n']))
    if draw(st.booleans()):  # RSS 1.0: items beside the channel
        return (
            f'{head}<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            f'xmlns="http://purl.org/rss/1.0/"><channel><title>F</title>'
            f"<link>https://f.vn/</link></channel>{items}</rdf:RDF>"
        ).encode()
    return (
        f'{head}<rss version="2.0" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f"<channel{channel_base}><title>F &amp; G</title><link>https://f.vn/</link>{items}"
        "</channel></rss>"
    ).encode()


@settings(max_examples=1500, deadline=None)
@given(rss_documents())
def test_generated_rss_reads_the_same_with_either_tree(data: bytes) -> None:
    assert xmlsafe.read_plain_utf8(data) is not None
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast, lxml_bytes, slow = parse_three_ways(data, monkeypatch)
    assert fast == lxml_bytes == slow


@settings(max_examples=1500, deadline=None)
@given(atom_documents())
def test_generated_atom_reads_the_same_with_either_tree(document: tuple[bytes, str]) -> None:
    """Including the entries with XHTML content, which ElementTree hands over to lxml."""
    data, _ = document
    assert xmlsafe.read_plain_utf8(data) is not None
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast, lxml_bytes, slow = parse_three_ways(data, monkeypatch)
    assert fast == lxml_bytes == slow


def test_a_feed_too_large_for_one_lxml_text_node_is_not_read_by_elementtree() -> None:
    """Above STDLIB_MAX_BYTES lxml decides (and refuses a text node over its limit)."""
    text = b"a" * (xmlsafe.STDLIB_MAX_BYTES + 1)
    big = b"<rss><channel><title>" + text + b"</title></channel></rss>"
    assert xmlsafe.read_plain_utf8(big) is None
    with pytest.raises(IngestError):
        parse_feed(big)


def test_a_deeply_nested_feed_is_read_by_elementtree() -> None:
    """lxml refuses a tree deeper than 256 to protect libxml2's recursive code; expat and
    ElementTree do not recurse, so ElementTree reads it (the only documents the two trees
    treat differently, written down in docs/decisions/feed-parser.md)."""
    nested = "<x>" * 2000 + "deep" + "</x>" * 2000
    data = (
        "<rss><channel><title>F</title><item><title>T</title><link>https://a.vn/1</link>"
        f"<description>{nested}</description></item></channel></rss>"
    ).encode()
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(data, xmlsafe._PARSER)
    (item,) = parse_feed(data).items
    assert (item.title, item.summary_html) == ("T", "deep")
