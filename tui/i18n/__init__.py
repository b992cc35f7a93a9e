"""Translations: gettext catalogs in `tui/i18n/<lang>/LC_MESSAGES/tui.po` (vi, en).

Message ids are English; Vietnamese is the default language. The .po files are compiled to
.mo bytes at import with `compile_po` (Python's own `gettext.GNUTranslations` then reads
them), so no build step is needed; `python -m tui.i18n` writes .mo files next to the .po
files for tools that want them.
"""

from __future__ import annotations

import ast
import gettext
import io
import struct
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
DOMAIN = "tui"
LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"


def parse_po(text: str) -> dict[str, str]:
    """msgid → msgstr of a .po file (plain entries; empty msgstr means untranslated)."""
    entries: dict[str, str] = {}
    msgid: list[str] | None = None
    msgstr: list[str] | None = None
    current: list[str] | None = None

    def flush() -> None:
        if msgid is not None and msgstr is not None:
            key, value = "".join(msgid), "".join(msgstr)
            if value:
                entries[key] = value

    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("msgid "):
            flush()
            msgid, msgstr = [ast.literal_eval(line[6:])], None
            current = msgid
        elif line.startswith("msgstr "):
            msgstr = [ast.literal_eval(line[7:])]
            current = msgstr
        elif line.startswith('"') and current is not None:
            current.append(ast.literal_eval(line))
    flush()
    return entries


def compile_mo(entries: dict[str, str]) -> bytes:
    """The GNU .mo binary for these entries (the format gettext reads)."""
    keys = sorted(entries)
    ids = [k.encode("utf-8") for k in keys]
    strs = [entries[k].encode("utf-8") for k in keys]
    count = len(keys)
    header_size = 7 * 4
    ids_table = header_size
    strs_table = ids_table + count * 8
    data_start = strs_table + count * 8
    offsets: list[tuple[int, int]] = []
    data = io.BytesIO()
    for blob in ids + strs:
        offsets.append((len(blob), data_start + data.tell()))
        data.write(blob + b"\0")
    out = io.BytesIO()
    out.write(struct.pack("<7I", 0x950412DE, 0, count, ids_table, strs_table, 0, 0))
    for length, offset in offsets:
        out.write(struct.pack("<2I", length, offset))
    out.write(data.getvalue())
    return out.getvalue()


def po_path(language: str) -> Path:
    return HERE / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def compile_po(language: str) -> bytes:
    entries = parse_po(po_path(language).read_text(encoding="utf-8"))
    entries[""] = "Content-Type: text/plain; charset=UTF-8\n"
    return compile_mo(entries)


def load(language: str) -> gettext.NullTranslations:
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r} (known: {', '.join(LANGUAGES)})")
    return gettext.GNUTranslations(io.BytesIO(compile_po(language)))


@dataclass
class _Current:
    language: str
    translations: gettext.NullTranslations


_CATALOGS: dict[str, gettext.NullTranslations] = {}
_current = _Current(DEFAULT_LANGUAGE, gettext.NullTranslations())


def set_language(language: str) -> None:
    if language not in _CATALOGS:
        _CATALOGS[language] = load(language)
    _current.language = language
    _current.translations = _CATALOGS[language]


def language() -> str:
    return _current.language


def _(message: str) -> str:
    """The message in the current language."""
    return _current.translations.gettext(message)


set_language(DEFAULT_LANGUAGE)
