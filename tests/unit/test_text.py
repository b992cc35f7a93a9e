"""Vietnamese text helpers: sentences, truncation, hashtags, X weighted length."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

import publisher.text as text_module
from publisher.text import (
    hashtag,
    matching_key,
    split_sentences,
    strip_diacritics,
    truncate_sentences,
    truncate_words,
    utf8_length,
    utf16_length,
    x_weighted_length,
)


def test_abbreviations_do_not_end_sentences() -> None:
    text = (
        "Đoàn công tác làm việc tại TP.HCM và TP. Hà Nội. PGS.TS. Nguyễn Văn A phát biểu về "
        "kinh tế, xã hội, v.v. và nhiều vấn đề khác. Ông Trần B. cho biết kết quả tốt! "
        "Giá 1.000 đồng?"
    )
    assert split_sentences(text) == [
        "Đoàn công tác làm việc tại TP.HCM và TP. Hà Nội.",
        "PGS.TS. Nguyễn Văn A phát biểu về kinh tế, xã hội, v.v. và nhiều vấn đề khác.",
        "Ông Trần B. cho biết kết quả tốt!",
        "Giá 1.000 đồng?",
    ]


def test_paragraph_breaks_end_sentences() -> None:
    assert split_sentences("Dòng một\n\nDòng hai") == ["Dòng một", "Dòng hai"]


def test_truncate_prefers_sentences_and_marks_the_cut() -> None:
    text = "Câu thứ nhất khá dài để thử nghiệm. Câu thứ hai cũng dài tương tự như vậy. Câu ba."
    assert truncate_sentences(text, 60) == "Câu thứ nhất khá dài để thử nghiệm. …"
    assert truncate_sentences(text, 200) == text


def test_truncate_words_never_cuts_a_word() -> None:
    assert truncate_words("Thủ tướng chỉ đạo quyết liệt", 14) == "Thủ tướng chỉ…"
    assert truncate_words("Thủ tướng, chỉ đạo", 11) == "Thủ tướng…"  # no dangling comma
    assert truncate_words("Siêucựcdài", 3) == ""


def test_truncate_counts_with_the_given_measure() -> None:
    text = "ế " * 100
    assert utf8_length(truncate_words(text, 50, utf8_length)) <= 50
    assert x_weighted_length(truncate_words(text, 50, x_weighted_length)) <= 50


@pytest.mark.parametrize(
    ("keyword", "tag"),
    [
        ("Chuyển đổi số", "#ChuyenDoiSo"),
        ("Đà Nẵng", "#DaNang"),
        ("đường sắt cao tốc", "#DuongSatCaoToc"),
        ("COVID-19", "#COVID19"),
        ("!!!", ""),
    ],
)
def test_hashtags_have_no_diacritics(keyword: str, tag: str) -> None:
    assert hashtag(keyword) == tag


def test_x_weights() -> None:
    assert x_weighted_length("abc") == 3
    assert x_weighted_length("ế") == 2  # U+1EBF is outside U+0000–U+10FF
    assert x_weighted_length("é") == 1  # U+00E9 is inside
    assert x_weighted_length("e\u0301") == 1  # NFC first
    assert x_weighted_length("xem https://baochinhphu.vn/" + "a" * 200 + ".htm") == 4 + 23
    assert x_weighted_length("“x”") == 3  # U+201C/D are in the light punctuation range


def test_lengths() -> None:
    assert utf16_length("😀") == 2
    assert utf8_length("ế") == 3


LETTERS = [*"aăâbcdđeêghiklmnoôơpqrstuưvxyÁÀẢÃẠẾỀỂỄỆỮỰỘ .,!?…", "\n", "TP.HCM", "v.v."]
vietnamese = st.lists(st.sampled_from(LETTERS), max_size=200).map("".join)


@given(text=vietnamese, limit=st.integers(min_value=0, max_value=300))
def test_truncation_properties(text: str, limit: int) -> None:
    for measure in (len, utf8_length, utf16_length, x_weighted_length):
        result = truncate_sentences(text, limit, measure)
        assert measure(result) <= limit or measure(" ".join(text.split())) <= limit
        flat = " ".join(text.split())
        if result == flat:
            continue  # nothing was cut (the text may end with its own "…")
        stem = result.removesuffix("…").rstrip()
        assert flat.startswith(stem)
        # the cut falls between words: the next character of the source is a space or the end
        rest = flat[len(stem) :]
        assert rest == "" or rest[0] == " " or stem == "" or stem[-1] in ",;:–-—"


@given(text=vietnamese)
def test_sentences_keep_the_text(text: str) -> None:
    assert " ".join(" ".join(split_sentences(text)).split()) == " ".join(text.split())


@given(text=st.text(max_size=50))
def test_strip_diacritics_leaves_no_marks(text: str) -> None:
    stripped = strip_diacritics(text)
    assert not any(
        unicodedata.combining(c) for c in unicodedata.normalize("NFD", stripped) if c not in text
    )


# --- matching keys: the tone-style pattern --------------------------------------------------

_TONE_LETTERS = "oOuUàáảãạèéẻẽẹỳýỷỹỵÀÁẢÃẠÈÉẺẼẸỲÝỶỸỴnhHk .,\n"


def _reference_tone_re() -> re.Pattern[str]:
    # The pattern as first written: the case-insensitive alternation of the listed pairs.
    return re.compile(
        "(" + "|".join(sorted(text_module._OLD_TO_NEW_TONE, key=len, reverse=True)) + r")(?!\w)",
        re.IGNORECASE,
    )


@given(st.text(alphabet=_TONE_LETTERS) | st.text())
def test_tone_pattern_matches_exactly_where_the_case_insensitive_alternation_does(
    text: str,
) -> None:
    reference = _reference_tone_re()
    found = [(m.start(), m.group(1)) for m in text_module._OLD_TONE_RE.finditer(text)]
    assert found == [(m.start(), m.group(1)) for m in reference.finditer(text)]


def test_tone_pattern_letters_are_every_case_insensitive_equivalent() -> None:
    # Each letter of a pair matches, case-insensitively, exactly its two cases: the classes
    # lose nothing that IGNORECASE would have matched.
    every_character = "".join(map(chr, range(sys.maxunicode + 1)))
    for letter in {c for pair in text_module._OLD_TO_NEW_TONE for c in pair}:
        equivalents = set(re.findall(re.escape(letter), every_character, re.IGNORECASE))
        assert equivalents == {letter, letter.upper()}, letter


def test_matching_key_unifies_tone_style() -> None:
    assert matching_key("HOÀ Bình  thuỷ\nHoàn QUYẾT oà") == "hòa bình thủy hoàn quyết òa"
