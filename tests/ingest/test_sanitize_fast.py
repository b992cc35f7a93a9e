"""The sanitiser's shortcut: fragments already in nh3's own output form are not run through nh3.
Wherever the shortcut answers, its answer must be byte-identical to nh3's — on the corpus and
on generated input built to sit on the edges of the shapes it accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bench.scenarios import parse as parse_bench
from publisher.ingest import sanitize
from publisher.ingest.errors import IngestError
from publisher.ingest.feeds import parse_feed
from publisher.ingest.sanitize import _already_clean, _nh3_clean, clean_html, html_to_text
from publisher.text import nfc

CORPUS = Path(__file__).parent / "corpus"


def reference_clean(fragment: str, base_url: str | None = None) -> str:
    """clean_html as it was before the shortcut: nh3 on everything."""
    if not fragment or not fragment.strip():
        return ""
    cleaned = _nh3_clean(fragment)
    if base_url and sanitize._RELATIVE_URL_RE.search(cleaned):  # (the search, as it was)
        cleaned = sanitize.nh3.clean(
            sanitize._absolutise(cleaned, base_url),
            tags=set(sanitize.ALLOWED_TAGS),
            attributes={t: set(n) for t, n in sanitize.ALLOWED_ATTRIBUTES.items()},
            url_schemes={"http", "https", "mailto"},
            link_rel="noopener noreferrer",
            strip_comments=True,
        )
    return nfc(cleaned.strip())


def reference_text(fragment: str) -> str:
    """html_to_text as it was before the shortcut: lxml for anything with a tag."""
    if not fragment or not fragment.strip():
        return ""
    if "<" not in fragment:
        return nfc(" ".join(sanitize.html.unescape(fragment).split()))
    return sanitize._html_to_text_lxml(fragment)


def corpus_fragments() -> list[str]:
    fragments: list[str] = []
    feeds = [parse_bench.rss(), parse_bench.atom(), parse_bench.rdf()]
    feeds += [p.read_bytes() for p in sorted(CORPUS.glob("*/*")) if p.suffix != ".py"]
    for data in feeds:
        try:
            items = parse_feed(data).items
        except IngestError:
            continue
        for item in items:
            fragments += [item.summary_html, item.content_html, item.title]
    return [f for f in fragments if f]


def check(fragment: str) -> str | None:
    fast = _already_clean(fragment)
    try:
        slow = _nh3_clean(fragment)
    except (UnicodeEncodeError, ValueError):
        assert fast is None  # nh3 refuses it: the shortcut must not take it
        return None
    assert fast is None or fast == slow, (fragment, fast, slow)
    return fast


def test_the_corpus_gives_the_same_html_and_text_both_ways() -> None:
    fragments = corpus_fragments()
    taken = [f for f in fragments if check(f) is not None]
    for fragment in fragments:
        for base in (None, "https://baochinhphu.vn/", "https://danang.gov.vn/tin/"):
            cleaned = clean_html(fragment, base_url=base)
            assert cleaned == reference_clean(fragment, base)
            assert html_to_text(cleaned) == reference_text(cleaned)
    assert len(taken) >= len(fragments) // 3  # the bench feeds' items all take it


# --- generated fragments around the accepted shapes -------------------------------------------

SPECIAL = "<>&\"'=/ \t\n\r\x00\x01\x0b\x0c\x1f\x7f\x85\xa0\u2028\ufdd0\ufeff\U0001f600"
texts = st.text(alphabet=st.sampled_from("aĂ  ơ.,-()đ" + SPECIAL), max_size=12) | st.text(
    max_size=6
)
names = st.sampled_from(
    [
        *("p", "a", "img", "br", "b", "strong", "em", "i", "u", "span", "div", "script", "P"),
        *("li", "table", "td", "style", "iframe", "svg", "pre", "q", "h2", "form", "sub"),
    ]
)
attribute_names = st.sampled_from(
    [
        *("href", "src", "title", "alt", "width", "height", "rel", "onclick", "style"),
        *("class", "HREF", "target", "colspan"),
    ]
)
urls = st.sampled_from(
    [
        "https://baochinhphu.vn/bai-1.htm",
        "http://a.b/c.png?x=1&y=2",
        "https://x.vn/a?b=1&amp;c=2",
        "https://1.2.3.4/x",
        "https://1.2.3.999/x",
        "https://xn--zz.vn/x",
        "https://a.xn--zz/x",
        "https://a..b/x",
        "https://exa mple.vn/",
        "https://x.vn:99999/",
        "https://x.vn:8080/a",
        "https://user@x.vn/",
        "https://X.VN/A",
        "https://x.0x1f/",
        "https://x-.vn/%zz",
        "https://x.vn/ạ",
        "javascript:alert(1)",
        "/relative/path",
        "mailto:a@b.vn",
        "https://x.vn/a'b(c)*!$;,=:@~",
        "#top",
        "",
    ]
) | st.text(alphabet="hts:/.abxn-0123456789%?&=#@[]", max_size=24)
values = urls | texts


@st.composite
def attribute(draw: st.DrawFn) -> str:
    space = draw(st.sampled_from([" ", "  ", "\t", "\n", ""]))
    quote = draw(st.sampled_from(['"', '"', '"', "'", ""]))
    return f"{space}{draw(attribute_names)}={quote}{draw(values)}{quote}"


@st.composite
def tag(draw: st.DrawFn) -> str:
    name = draw(names)
    if draw(st.booleans()):
        return f"</{name}>"
    attributes = "".join(draw(st.lists(attribute(), max_size=3)))
    end = draw(st.sampled_from([">", ">", " />", "/>", " >"]))
    return f"<{name}{attributes}{end}"


@st.composite
def balanced(draw: st.DrawFn, depth: int = 0) -> str:
    pieces = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["text", "text", "element", "void", "tag"]))
        if kind == "text":
            pieces.append(draw(texts))
        elif kind == "void":
            pieces.append(draw(tag()).replace("</", "<", 1))
        elif kind == "tag":
            pieces.append(draw(tag()))
        elif depth < 3:
            name = draw(names)
            attributes = "".join(draw(st.lists(attribute(), max_size=2)))
            inner = draw(balanced(depth + 1))
            pieces.append(f"<{name}{attributes}>{inner}</{name}>")
    return "".join(pieces)


# Mostly inside the accepted shapes, with an occasional step outside: where the edges are.
def mostly(usual: st.SearchStrategy[str], odd: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.integers(0, 19).flatmap(lambda n: usual if n else odd)


simple_texts = mostly(st.text(alphabet=st.sampled_from("aĂ ơ.,-()đ\n\t"), max_size=10), texts)
simple_values = mostly(
    st.sampled_from(["https://baochinhphu.vn/a.htm", "http://x.vn/i.jpg?a=1", "Ảnh 1"]), values
)


@st.composite
def simple_attribute(draw: st.DrawFn, name: str) -> str:
    allowed = {"a": ["href", "title"], "img": ["src", "alt", "title", "width", "height"]}
    if not draw(st.integers(0, 19)):
        return draw(attribute())
    if name not in allowed:
        return ""
    return f' {draw(st.sampled_from(allowed[name]))}="{draw(simple_values)}"'


@st.composite
def near_simple(draw: st.DrawFn, depth: int = 0) -> str:
    pieces = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["text", "text", "element", "element", "void"]))
        if not draw(st.integers(0, 19)):
            kind = "odd"
        if kind == "text":
            pieces.append(draw(simple_texts))
        elif kind == "void":
            name = draw(st.sampled_from(["img", "br"]))
            attributes = "".join(draw(st.lists(simple_attribute(name), max_size=3)))
            pieces.append(f"<{name}{attributes}{draw(st.sampled_from(['>', ' />', '/>']))}")
        elif kind == "odd":
            pieces.append(draw(tag()))
        elif depth < 3:
            name = draw(st.sampled_from(["p", "a", "b", "strong", "em", "i", "u", "span"]))
            attributes = "".join(draw(st.lists(simple_attribute(name), max_size=2)))
            inner = draw(near_simple(depth + 1))
            pieces.append(f"<{name}{attributes}>{inner}</{name}>")
    return "".join(pieces)


fragments = balanced() | near_simple()


@settings(max_examples=3000, deadline=None)
@given(fragments)
@example('<a href="https://x.vn/a" title="t"><img src="https://x.vn/i.jpg" alt="a" /></a>Tin')
@example("<p>a</p>\n<p>b <b>c</b> <i>d</i></p>")
@example("<p><p>x</p></p>")
@example("<b><p>x</p></b>")
@example("<a><a>x</a></a>")
@example('<img src="https://1.2.3.4/x">')
@example('<a href="https://a.xn--zz/x"></a>')
@example('<a href="https://xn--zz.vn/x"></a>')
@example("</br>")
@example('<a href="https://x.vn/a">x</a href="https://x.vn/b">')
@example('<b href="https://x.vn/a">x</b>')
@example('<a src="https://x.vn/a">x</a>')
@example('<img src="https://x.vn/i.jpg"  /><a  href="https://x.vn/a">x</a>')
@example('<img src="https://x.vn/i.jpg" src="https://x.vn/j.jpg">')
@example('<img src="https://x.vn/i.jpg=">')
def test_generated_fragments_give_nh3s_own_output(fragment: str) -> None:
    check(fragment)


@settings(max_examples=1000, deadline=None)
@given(st.text())
def test_any_text_gives_nh3s_own_output(text: str) -> None:
    check(text)


@settings(max_examples=2000, deadline=None)
@given(fragments)
def test_clean_html_and_its_text_are_what_they_were(fragment: str) -> None:
    try:
        reference = reference_clean(fragment, "https://b.vn/x/")
    except (UnicodeEncodeError, ValueError):
        return
    cleaned = clean_html(fragment, base_url="https://b.vn/x/")
    assert cleaned == reference
    assert html_to_text(cleaned) == reference_text(cleaned)


@settings(max_examples=3000, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                *('href="', 'src="', 'HrEf="', 'ſrc="', 'xhref="', '="', "=", '"', " ", "<a "),
                *(">", "https:", "http:", "mailto:", "#", "/x", "HTTPS:", "javaſcript:", "a"),
            ]
        ),
        max_size=8,
    ).map("".join)
)
@example('<a href="/x">')
@example('src="x')
def test_relative_url_check_finds_what_the_search_finds(text: str) -> None:
    assert sanitize._has_relative_url(text) == bool(sanitize._RELATIVE_URL_RE.search(text))


@pytest.mark.parametrize(
    "fragment",
    [
        "Hà Nội triển khai",
        "<p>Hà Nội</p>",
        '<a href="https://baochinhphu.vn/a.htm"><img src="https://b.vn/1.jpg" /></a>Tin',
        "<p>a <b>b</b> <i>c</i></p>\n<p>d<br>e</p>",
    ],
)
def test_the_shortcut_is_taken_for_the_common_shapes(fragment: str) -> None:
    assert check(fragment) is not None
