"""Vietnamese text primitives: normal form, tone-mark style, diacritic stripping, counting.

Pure functions, no I/O. Channels build truncation and hashtags on these; ingestion builds
matching keys on them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

# Old-style tone placement ("hoà", "thuỷ") vs new style ("hòa", "thủy"): official names now
# use the new style. NFC does not unify them, so matching keys must.
_OLD_TO_NEW_TONE = {
    # oa, oe, uy with the tone on the second vowel (old) → on the first (new) when final
    "oà": "òa", "oá": "óa", "oả": "ỏa", "oã": "õa", "oạ": "ọa",
    "oè": "òe", "oé": "óe", "oẻ": "ỏe", "oẽ": "õe", "oẹ": "ọe",
    "uỳ": "ùy", "uý": "úy", "uỷ": "ủy", "uỹ": "ũy", "uỵ": "ụy",
}  # fmt: skip


def _old_tone_pattern() -> str:
    """Every pair in `_OLD_TO_NEW_TONE`, either letter in either case, at the end of a word.

    The same matches as the plain case-insensitive alternation of the pairs, written as
    character classes: the alternation under IGNORECASE cost ~40 µs on a 250-character lead
    (it tries 15 branches case-insensitively at every position), the classes ~4 µs.
    """
    by_first: dict[str, set[str]] = {}
    for old in _OLD_TO_NEW_TONE:
        by_first.setdefault(old[0], set()).add(old[1])
    branches = [
        "[" + first + first.upper() + "][" + "".join(sorted(s | {c.upper() for c in s})) + "]"
        for first, s in sorted(by_first.items())
    ]
    return "(" + "|".join(branches) + r")(?!\w)"


_OLD_TONE_RE = re.compile(_old_tone_pattern())


def _old_tone_hint_pattern() -> str:
    """Where `_OLD_TONE_RE` matches, seen from the pair's second letter: that letter, the pair
    behind it, no word character after it. A search for it finds something exactly when a
    search for `_OLD_TONE_RE` does, but costs a third: it starts with one character class, so
    the regex engine only stops at those (rarer) letters instead of trying every position.
    """
    by_first: dict[str, set[str]] = {}
    for old in _OLD_TO_NEW_TONE:
        by_first.setdefault(old[0], set()).update({old[1], old[1].upper()})
    seconds = "".join(sorted(set().union(*by_first.values())))
    pairs = "|".join(
        "[" + first + first.upper() + "][" + "".join(sorted(s)) + "]"
        for first, s in sorted(by_first.items())
    )
    return "[" + seconds + "](?<=" + pairs + r")(?!\w)"


_OLD_TONE_HINT_RE = re.compile(_old_tone_hint_pattern())


def nfc(text: str) -> str:
    """Normalise to NFC (decomposed input from cp1258 and old keyboards becomes composed)."""
    return unicodedata.normalize("NFC", text)


def collapse_spaces(text: str) -> str:
    """`" ".join(text.split())`: every run of white space one space, none at either end.

    Most text is like that already, and checking is much cheaper than splitting it into
    words: `str.isprintable()` is false for every white-space character except the space
    itself (tests/unit/test_text.py goes through all of Unicode), so a printable text with no
    double space and no space at either end is its own answer.
    """
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text
    return " ".join(text.split())


def has_old_tone_style(text: str) -> bool:
    """True when `unify_tone_style` would move a tone mark in `text` (taken as NFC)."""
    return _OLD_TONE_HINT_RE.search(text) is not None


def _bytes_alternation(words: list[bytes]) -> bytes:
    """A pattern matching exactly `words` (none a prefix of another), written as a tree of
    their shared beginnings, so that the regex engine decides byte by byte."""
    by_first: dict[bytes, list[bytes]] = {}
    for word in words:
        by_first.setdefault(word[:1], []).append(word[1:])
    branches = [
        re.escape(first) + (_bytes_alternation(rests) if rests != [b""] else b"")
        for first, rests in sorted(by_first.items())
    ]
    return branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"


def _old_tone_key_patterns() -> list[re.Pattern[bytes]]:
    """The old-style pairs as a casefolded text's UTF-8 bytes hold them, one pattern for those
    starting with "o" and one for "u", each followed by anything but an ASCII letter, digit
    or "_".

    Each starts with a fixed byte, which the regex engine looks for as fast as `bytes.find`
    and only then reads on: two such searches cost less than half of one search for 30
    letters tried at every character of the text.
    """
    by_first: dict[bytes, list[bytes]] = {}
    for old in _OLD_TO_NEW_TONE:
        encoded = old.encode()
        by_first.setdefault(encoded[:1], []).append(encoded)
    return [
        re.compile(_bytes_alternation(pairs) + rb"(?![A-Za-z0-9_])")
        for _, pairs in sorted(by_first.items())
    ]


_OLD_TONE_KEY_SEARCHES = tuple(pattern.search for pattern in _old_tone_key_patterns())


def may_have_old_tone_style(casefolded_utf8: bytes) -> bool:
    """False when the text that was casefolded and encoded into these bytes has nothing for
    `unify_tone_style` to move (`has_old_tone_style` is false); True when it may have.

    Any text the tone pattern matches gives a match here: casefolding turns each letter of a
    pair into its lower-case self, and a character that is not a word character into
    characters whose first byte is no ASCII word byte (tests/unit/test_text_fast.py checks
    both over all of Unicode). Not the reverse: a pair before "ữ" is a match here only.
    """
    for search in _OLD_TONE_KEY_SEARCHES:  # noqa: SIM110 (any() and a generator cost more)
        if search(casefolded_utf8) is not None:
            return True
    return False


def unify_tone_style(text: str) -> str:
    """Move old-style tone marks on final oa/oe/uy to the new style, for matching only.

    "Hoà Bình" → "Hòa Bình", "thuỷ" → "thủy". The syllable must end after the pair, so
    "hoàn" and "quyết" are left as they are. Never use the result for display.
    """

    def swap(match: re.Match[str]) -> str:
        found = match.group(1)
        new = _OLD_TO_NEW_TONE[found.lower()]
        if found.isupper():
            return new.upper()
        return new[0].upper() + new[1:] if found[0].isupper() else new

    text = nfc(text)
    if not has_old_tone_style(text):  # the common case: nothing to swap
        return text
    return _OLD_TONE_RE.sub(swap, text)


def strip_diacritics(text: str) -> str:
    """ASCII-ish form for hashtags and slugs: marks removed, Đ/đ → D/d (NFD keeps đ whole)."""
    decomposed = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def matching_key(text: str) -> str:
    """A key for deduplication: NFC, one tone style, case-folded, whitespace collapsed.

    Diacritics are kept on purpose: "báo" (newspaper) and "bão" (storm) must not match.
    """
    # A line break is white space like any other here; as a space it needs no collapsing.
    return collapse_spaces(unify_tone_style(text).casefold().replace("\n", " "))


def utf16_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def utf8_length(text: str) -> int:
    """Length as YouTube counts descriptions: UTF-8 bytes."""
    return len(text.encode("utf-8"))


# --- sentences, truncation, hashtags, platform lengths (channel adaptation) -------------

# Abbreviations whose final dot never ends a sentence. Compared case-sensitively on the
# token before the dot, after stripping opening brackets and quotes. Multi-part titles such
# as "PGS.TS." are split on their dots and every part must be listed here.
ABBREVIATIONS: frozenset[str] = frozenset(
    {
        # titles and degrees
        "GS", "PGS", "TS", "ThS", "CN", "KS", "BS", "DS", "LS", "NCS", "TSKH", "NGƯT", "NGND",
        "NSND", "NSƯT", "Th.S", "Ths", "Ts", "Gs", "Pgs", "Bs",
        # places and bodies
        "TP", "Tp", "tp", "Q", "P", "X", "H", "TX", "TT", "UBND", "HĐND", "Cty", "CTCP",
        # common Latin and Vietnamese shortenings
        "v.v", "vv", "tr", "Tr", "St", "TK", "Mr", "Mrs", "Dr", "Sđd", "ĐT", "TTg", "NĐ", "QĐ",
    }
)  # fmt: skip
_SENTENCE_END_RE = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s)")
_WORD_BEFORE_RE = re.compile(r"(\S+)$")
_OPENERS = "\"'“‘«([{"


def _is_abbreviation(token: str) -> bool:
    """True when `token` (the text before a final dot, without the dot) is an abbreviation."""
    token = token.lstrip(_OPENERS)
    if not token:
        return False
    if token in ABBREVIATIONS or token.casefold() == "v.v":
        return True
    parts = [part for part in token.split(".") if part]
    if parts and all(part in ABBREVIATIONS for part in parts):
        return True  # "PGS.TS", "TP.HCM" with a final dot is still a title or a place
    # a single capital initial: "Nguyễn V. A" / "H. Chí Minh"
    return len(token) == 1 and token.isupper()


def split_sentences(text: str) -> list[str]:
    """Split Vietnamese text into sentences with rules, not a model.

    A sentence ends at `.`, `!`, `?` or `…` (and any closing quote or bracket) followed by
    white space, unless the dot closes a known abbreviation ("TP.", "PGS.TS.", "v.v.") or a
    single initial. A dot inside a token ("TP.HCM", "3.5", "baochinhphu.vn") never splits.
    Line breaks between paragraphs always end a sentence. The pieces keep their text exactly;
    joining them with single spaces reproduces the input up to white space.
    """
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n|\n", text):
        start = 0
        for match in _SENTENCE_END_RE.finditer(paragraph):
            end = match.end()
            if match.group(0).startswith(".") and match.group(0).rstrip("\"'”’»)]") == ".":
                before = _WORD_BEFORE_RE.search(paragraph[start : match.start()])
                if before and _is_abbreviation(before.group(1)):
                    continue
            piece = paragraph[start:end].strip()
            if piece:
                sentences.append(piece)
            start = end
        rest = paragraph[start:].strip()
        if rest:
            sentences.append(rest)
    return sentences


Measure = Callable[[str], int]
ELLIPSIS = "…"


def _with_ellipsis(text: str, ellipsis: str) -> str:
    """ "…" right after a word, " …" after a sentence's own final punctuation."""
    if not text:
        return ""
    return text + (" " + ellipsis if text[-1] in ".!?…" else ellipsis)


def _longest_fitting(count: int, fits: Callable[[int], bool]) -> int:
    """The largest k in 0..count with fits(k), for fits monotone (true, then false)."""
    low, high = 0, count
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def truncate_words(
    text: str, limit: int, measure: Measure = len, *, ellipsis: str = ELLIPSIS
) -> str:
    """The longest prefix of `text` ending at a word boundary with `measure(result) <= limit`.

    When the text is cut, `ellipsis` is appended (and counted). Words are white-space
    separated, so a word, and with it every grapheme (NFC letters with their marks), is
    either kept whole or dropped. Returns "" when not even one word fits.
    """
    text = " ".join(text.split())
    if measure(text) <= limit:
        return text
    words = text.split(" ")

    def candidate(count: int) -> str:
        return _with_ellipsis(" ".join(words[:count]).rstrip(",;:–-— "), ellipsis)

    kept = _longest_fitting(len(words), lambda k: k == 0 or measure(candidate(k)) <= limit)
    return candidate(kept) if kept else ""


def truncate_sentences(
    text: str,
    limit: int,
    measure: Measure = len,
    *,
    ellipsis: str = ELLIPSIS,
    min_fill: float = 0.5,
) -> str:
    """Shorten `text` to fit `limit`, preferring to end after a whole sentence.

    Whole sentences are kept while they fit (with the ellipsis counted); when that keeps less
    than `min_fill` of the limit, the cut falls at the last fitting word boundary instead.
    Never cuts inside a word. Returns the text unchanged (white space collapsed) if it fits.
    """
    flat = " ".join(text.split())
    if measure(flat) <= limit:
        return flat
    sentences = [" ".join(s.split()) for s in split_sentences(text)]

    def candidate(count: int) -> str:
        return _with_ellipsis(" ".join(sentences[:count]), ellipsis)

    kept = _longest_fitting(len(sentences), lambda k: k == 0 or measure(candidate(k)) <= limit)
    by_sentence = candidate(kept)
    if by_sentence and measure(by_sentence) >= min_fill * limit:
        return by_sentence
    by_word = truncate_words(flat, limit, measure, ellipsis=ellipsis)
    return by_word if measure(by_word) >= measure(by_sentence) else by_sentence


def hashtag(keyword: str) -> str:
    """A diacritic-free hashtag: "Chuyển đổi số" → "#ChuyenDoiSo", "Đà Nẵng" → "#DaNang".

    Returns "" when nothing usable remains.
    """
    plain = strip_diacritics(nfc(keyword))
    words = re.findall(r"[A-Za-z0-9]+", plain)
    if not words:
        return ""
    return "#" + "".join(word[:1].upper() + word[1:] for word in words)


# twitter-text v3 configuration: weight 100 (counted as 1) for these code point ranges,
# 200 (counted as 2) for every other code point; every URL counts 23.
_X_LIGHT_RANGES = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
X_URL_LENGTH = 23
X_LIMIT = 280
_URL_RE = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)


def _x_char_weight(char: str) -> int:
    point = ord(char)
    return 1 if any(low <= point <= high for low, high in _X_LIGHT_RANGES) else 2


def x_weighted_length(text: str) -> int:
    """Length as X counts a post: NFC, weight 2 outside U+0000–U+10FF (and a few punctuation
    ranges), every http(s) URL 23. Emoji sequences count per code point, which can only
    over-count (safe for a limit)."""
    text = nfc(text)
    total = 0
    position = 0
    for match in _URL_RE.finditer(text):
        total += sum(_x_char_weight(ch) for ch in text[position : match.start()])
        total += X_URL_LENGTH
        position = match.end()
    total += sum(_x_char_weight(ch) for ch in text[position:])
    return total
