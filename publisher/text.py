"""Vietnamese text primitives: normal form, tone-mark style, diacritic stripping, counting.

Pure functions, no I/O. Channels build truncation and hashtags on these; ingestion builds
matching keys on them.
"""

from __future__ import annotations

import re
import unicodedata

# Old-style tone placement ("hoà", "thuỷ") vs new style ("hòa", "thủy"): official names now
# use the new style. NFC does not unify them, so matching keys must.
_OLD_TO_NEW_TONE = {
    # oa, oe, uy with the tone on the second vowel (old) → on the first (new) when final
    "oà": "òa", "oá": "óa", "oả": "ỏa", "oã": "õa", "oạ": "ọa",
    "oè": "òe", "oé": "óe", "oẻ": "ỏe", "oẽ": "õe", "oẹ": "ọe",
    "uỳ": "ùy", "uý": "úy", "uỷ": "ủy", "uỹ": "ũy", "uỵ": "ụy",
}  # fmt: skip
_OLD_TONE_RE = re.compile(
    "(" + "|".join(sorted(_OLD_TO_NEW_TONE, key=len, reverse=True)) + r")(?!\w)",
    re.IGNORECASE,
)


def nfc(text: str) -> str:
    """Normalise to NFC (decomposed input from cp1258 and old keyboards becomes composed)."""
    return unicodedata.normalize("NFC", text)


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

    return _OLD_TONE_RE.sub(swap, nfc(text))


def strip_diacritics(text: str) -> str:
    """ASCII-ish form for hashtags and slugs: marks removed, Đ/đ → D/d (NFD keeps đ whole)."""
    decomposed = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def matching_key(text: str) -> str:
    """A key for deduplication: NFC, one tone style, case-folded, whitespace collapsed.

    Diacritics are kept on purpose: "báo" (newspaper) and "bão" (storm) must not match.
    """
    return " ".join(unify_tone_style(text).casefold().split())


def utf16_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def utf8_length(text: str) -> int:
    """Length as YouTube counts descriptions: UTF-8 bytes."""
    return len(text.encode("utf-8"))
