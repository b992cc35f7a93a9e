"""URL shortcuts: a link already in canonical form, and a GUID that plainly is (or is not) an
absolute URI, are answered without the full parse — with exactly the full parse's answer."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from publisher.ingest import urls
from publisher.ingest.urls import canonical_url, is_absolute_uri

PIECES = [
    *("http://", "https://", "HTTPS://", "ftp://", "https:", "//", "mailto:"),
    *("baochinhphu.vn", "x.vn", "a-b.gov.vn", "A.vn", "xn--x.vn", "1.2.3.4", "x.", "-x.vn"),
    *("/", "/tin/1.htm", "/a b", "?", "?utm_source=x&b=2", "#frag", ":8080", ":443", "@"),
    *("%20", "%zz", "[", "]", "[::1]", ";", "'", "(", ")", "*", "~", "ạ", " ", "\t", "\n"),
]
url_like = st.lists(st.sampled_from(PIECES), max_size=6).map("".join) | st.text(
    alphabet="htps:/.abvnx-0123456789%?&=#@[]~;'()*+,$!_ \t", max_size=30
)


def reference_canonical(url: str) -> str:
    """canonical_url without the shortcut."""
    url = url.strip()
    return urls._canonical_url_parsed(url) if url else ""


def reference_is_absolute(value: str) -> bool:
    scheme = urlsplit(value).scheme
    return bool(scheme) and (value.startswith(("tag:", "urn:")) or "//" in value)


@settings(max_examples=3000)
@given(url_like)
@example("https://baochinhphu.vn")
@example("https://baochinhphu.vn/bai-viet-1.htm")
@example("https://x.vn//a")
@example("http://x.vn/a:b@c")
def test_canonical_url_shortcut_gives_the_full_parses_answer(url: str) -> None:
    try:
        expected = reference_canonical(url)
    except ValueError:
        with pytest.raises(ValueError):
            canonical_url(url)
        return
    assert canonical_url(url) == expected


@settings(max_examples=1000)
@given(st.lists(url_like, min_size=1, max_size=20))
def test_recent_canonical_urls_are_given_back_as_computed(batch: list[str]) -> None:
    """A URL found among the recent answers gets the answer the full reading gives."""
    for url in batch:
        try:
            expected = reference_canonical(url)
        except ValueError:
            continue
        answer = canonical_url(url)
        assert answer == expected
        # Asked again about its own answer (as the dedup step does): what the full reading
        # of that answer gives, found among the recent ones or not.
        assert canonical_url(answer) == reference_canonical(answer)
    assert len(urls._RECENT_PLAIN) <= urls._RECENT_PLAIN_LIMIT


def test_recent_canonical_urls_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(urls, "_RECENT_PLAIN", {})
    monkeypatch.setattr(urls, "_RECENT_PLAIN_LIMIT", 3)
    answers = [canonical_url(f"https://a.vn/{n}") for n in range(10)]
    assert answers == [f"https://a.vn/{n}" for n in range(10)]
    assert 1 <= len(urls._RECENT_PLAIN) <= 3


@settings(max_examples=3000)
@given(url_like | st.text(max_size=12))
@example("http://[::1")
@example("1022411140905000")
@example("tag:danang.gov.vn,2024:1")
def test_absolute_uri_shortcut_gives_the_full_parses_answer(value: str) -> None:
    try:
        expected = reference_is_absolute(value)
    except ValueError:
        with pytest.raises(ValueError):
            is_absolute_uri(value)
        return
    assert is_absolute_uri(value) == expected


def test_the_shortcuts_are_taken_for_feed_links() -> None:
    assert urls._PLAIN_URL_RE.fullmatch("https://baochinhphu.vn/bai-viet-so-0-1022.htm")
    assert canonical_url("https://danang.gov.vn") == "https://danang.gov.vn/"
