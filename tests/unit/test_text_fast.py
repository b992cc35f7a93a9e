"""Shortcuts in the text primitives give exactly what the plain formulation gives: collapsing
white space, finding old-style tone marks, matching keys. And the facts about Unicode that
the shortcuts (here and in publisher/ingest) rely on hold for every character."""

from __future__ import annotations

import re
import sys
import unicodedata

from hypothesis import example, given, settings
from hypothesis import strategies as st

from publisher import text as text_module
from publisher.ingest.sanitize import _TEXT_UNCHANGED_RE, _text_unchanged
from publisher.text import (
    collapse_spaces,
    has_old_tone_style,
    matching_key,
    may_have_old_tone_style,
    unify_tone_style,
)
from tests.ingest import before

EVERY_CHARACTER = [chr(c) for c in range(sys.maxunicode + 1)]
WHITE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2002\u2028\u2029\u202f\u3000"
TONE = "oOuUàáảãạèéẻẽẹỳýỷỹỵÀÁẢÃẠÈÉẺẼẸỲÝỶỸỴnhHk.,_1\u0300\u0301\u0345ßİ"
texts = st.text(alphabet=st.sampled_from(WHITE + TONE + "ab"), max_size=30) | st.text(max_size=20)


def test_printable_white_space_is_only_the_space() -> None:
    # collapse_spaces: a printable text has no white space but " ".
    assert [c for c in EVERY_CHARACTER if c.isspace() and c.isprintable()] == [" "]


def test_what_nh3_would_change_is_unprintable_but_for_three_characters() -> None:
    # sanitize._text_unchanged: printable text needs only "<", ">" and "&" looked for.
    found = [c for c in EVERY_CHARACTER if c.isprintable() and _TEXT_UNCHANGED_RE.match(c)]
    assert found == ["&", "<", ">"]


def test_casefolding_and_nfc_make_no_white_space() -> None:
    # normalize._normalised_content_hash: a collapsed NFC text stays collapsed once casefolded.
    for c in EVERY_CHARACTER:
        if not c.isspace() and unicodedata.category(c) != "Cs":
            assert not any(x.isspace() for x in c.casefold()), hex(ord(c))
            assert not any(x.isspace() for x in unicodedata.normalize("NFC", c)), hex(ord(c))


@settings(max_examples=3000)
@given(texts)
@example("")
@example(" a")
@example("a ")
@example("a  b")
@example("a\u00a0b")
def test_collapse_spaces_is_split_and_join(value: str) -> None:
    assert collapse_spaces(value) == " ".join(value.split())


@settings(max_examples=3000)
@given(texts)
@example("a<b")
@example("\ufeffa")
def test_text_unchanged_is_the_search(value: str) -> None:
    assert _text_unchanged(value) == (_TEXT_UNCHANGED_RE.search(value) is None)


@settings(max_examples=5000)
@given(texts)
@example("hoà")
@example("HOÀ.")
@example("thuỷ_")
@example("oà\u0345")
def test_the_tone_hint_finds_what_the_tone_pattern_finds(value: str) -> None:
    value = unicodedata.normalize("NFC", value)
    assert has_old_tone_style(value) == (text_module._OLD_TONE_RE.search(value) is not None)
    assert has_old_tone_style(value) == (before._OLD_TONE_RE.search(value) is not None)


@settings(max_examples=5000)
@given(texts)
@example("HOÀ Bình  thuỷ\nHoàn QUYẾT oà")
def test_matching_key_and_tone_style_are_what_they_were(value: str) -> None:
    assert unify_tone_style(value) == before.unify_tone_style(value)
    assert matching_key(value) == before.matching_key(value)


def test_casefolding_keeps_what_the_tone_check_on_bytes_looks_for() -> None:
    # may_have_old_tone_style: each letter of an old-style pair casefolds to its lower-case
    # self, and no character outside \w casefolds to something that starts with an ASCII
    # letter, digit or "_" (its first UTF-8 byte is what the pattern's lookahead sees).
    for old in text_module._OLD_TO_NEW_TONE:
        for first in (old[0], old[0].upper()):
            for second in (old[1], old[1].upper()):
                assert (first + second).casefold() == old
    word = re.compile(r"\w")
    ascii_word = re.compile(rb"[A-Za-z0-9_]")
    for c in EVERY_CHARACTER:
        if unicodedata.category(c) != "Cs" and not word.match(c):
            assert not ascii_word.match(c.casefold().encode()[:1]), hex(ord(c))


@settings(max_examples=5000)
@given(texts)
@example("hoà")
@example("HOÀ\u0345")
@example("thuỶ.")
@example("oàữ")
def test_the_tone_check_on_casefolded_bytes_misses_nothing(value: str) -> None:
    value = unicodedata.normalize("NFC", value)
    if has_old_tone_style(value):
        assert may_have_old_tone_style(value.casefold().encode())
    # ... and when it says no, the matching key is the plain casefolded text
    if not may_have_old_tone_style(value.casefold().encode()):
        assert unify_tone_style(value) == value


def test_the_hint_is_built_from_the_same_pairs() -> None:
    seconds = {old[1] for old in text_module._OLD_TO_NEW_TONE}
    hinted = set(re.findall(r"\[([^\]]+)\]\(\?<=", text_module._OLD_TONE_HINT_RE.pattern)[0])
    assert hinted == seconds | {c.upper() for c in seconds}
