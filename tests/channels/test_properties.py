"""Hypothesis: random Vietnamese text, HTML and lengths never break a limit or cut a word."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_contract import check_payload

from channels.base import Template
from channels.compose import clean_text
from channels.registry import channel_names, load_channels
from publisher.domain import Article, ArticleKind, Unit

WORDS = [
    "Thủ",
    "tướng",
    "chỉ",
    "đạo",
    "quyết",
    "liệt",
    "phòng",
    "chống",
    "thiên",
    "tai",
    "bão",
    "lũ",
    "Quảng",
    "Ngãi",
    "TP.HCM",
    "PGS.TS.",
    "v.v.",
    "ứng",
    "phó",
    "khẩn",
    "trương",
    "người",
    "dân",
    "ữ",
    "ộ",
    "ế",
    "Đắk",
    "Lắk",
    "<b>",
    "<script>alert(1)</script>",
    "&amp;",
    "a<b",
    "x>y",
    "😀",
    "🇻🇳",
    "👨‍👩‍👧",
    "https://baochinhphu.vn/a-b.htm",
    "100%",
    "—",
    "…",
    "1.000",
    "\u0301",
    "e\u0301",
    "\t",
    "Hòa",
    "thuỷ",
    "\u200b",
    "\u202e",
]
word = st.one_of(st.sampled_from(WORDS), st.text(min_size=1, max_size=12))
sentence = st.lists(word, min_size=1, max_size=40).map(lambda ws: " ".join(ws) + ".")
paragraph = st.lists(sentence, min_size=1, max_size=12).map(" ".join)
body = st.lists(paragraph, min_size=0, max_size=8).map("\n\n".join)

CHANNELS = {p.value: c for p, c in load_channels(__import__("httpx").AsyncClient()).items()}
UNIT = Unit(code="51", name="Tỉnh Quảng Ngãi", kind="province")


@st.composite
def articles(draw: st.DrawFn) -> Article:
    title = draw(st.lists(word, min_size=1, max_size=80).map(" ".join))
    images = draw(st.lists(st.just("https://example.gov.vn/a.jpg"), max_size=12))
    return Article(
        guid="g",
        url="https://baochinhphu.vn/" + draw(st.text("abc-", max_size=300)) + ".htm",
        title=title,
        published_at=datetime(2026, 11, 14, tzinfo=UTC),
        summary=draw(paragraph),
        body_text=draw(body),
        body_html=draw(body),
        images=tuple(images),
        video=draw(st.sampled_from([None, "https://v.gov.vn/a.mp4"])),
        source=draw(st.sampled_from(["baochinhphu.vn", "Cổng TTĐT tỉnh Quảng Ngãi " * 5, ""])),
        kind=draw(st.sampled_from(list(ArticleKind))),
    )


templates = st.builds(
    Template,
    source_line=st.sampled_from(["Nguồn: {source}", "", "{source} – " + "dài " * 100]),
    hashtag_keywords=st.lists(
        st.sampled_from(["Chuyển đổi số", "Đà Nẵng", "Phòng chống bão lũ", "x" * 120, "<b>", ""]),
        max_size=8,
    ).map(tuple),
    lead_in=st.sampled_from(["", "Đơn vị giới thiệu:", "Lời dẫn " * 200]),
    include_link=st.booleans(),
    include_summary=st.booleans(),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(article=articles(), template=templates, name=st.sampled_from(channel_names()))
def test_no_payload_ever_exceeds_a_limit(article: Article, template: Template, name: str) -> None:
    adapted = CHANNELS[name].adapt(article, UNIT, template)
    if adapted.payload is not None:
        check_payload(name, adapted.payload)


@settings(max_examples=60, deadline=None)
@given(article=articles(), name=st.sampled_from(["facebook", "telegram", "viber", "x"]))
def test_no_word_is_cut(article: Article, name: str) -> None:
    """Every word of the post body comes whole from the source (only "…" is added)."""
    adapted = CHANNELS[name].adapt(article, UNIT, Template())
    if adapted.payload is None:
        return
    text = (
        adapted.payload.get("message")
        or adapted.payload.get("text")
        or adapted.payload.get("caption")
        or ""
    )
    fields = [article.title, article.summary, article.body_text, article.url, article.source]
    source_words = {w for f in [*fields, "Nguồn:"] for w in clean_text(f).split()}
    for raw in text.replace("<b>", " ").replace("</b>", " ").split():
        token = raw.removesuffix("…")
        if not token or token == "…":
            continue
        unescaped = token.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        assert any(
            t in source_words or _inside_cleaned(t, source_words) for t in (unescaped, token)
        ), raw


def _inside_cleaned(token: str, words: set[str]) -> bool:
    # cleaning removes tags and control characters, which can split or join a word
    return any(token in w for w in words)
