"""Bytes from a stranger → a safe XML tree (lxml's; ElementTree's for plain UTF-8 feeds,
`read_plain_utf8`), or a clear `IngestError`.

Two jobs, both about input we do not control:

1. Decoding. Real portal feeds are UTF-16 (with or without a BOM), declare one encoding and
   use another, or are cp1258. Order of evidence: a BOM; UTF-16 byte patterns; strict UTF-8
   (non-UTF-8 Vietnamese text is practically never valid UTF-8, so a success is trusted over
   the declaration); the declared encoding; cp1258. What was decided is reported back.
2. Safety. XML entity declarations are refused before parsing (external entities read local
   files; nested internal ones are the "billion laughs" bomb). The parser itself never loads
   a DTD, never touches the network and never substitutes entities, as a second wall.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from html.entities import name2codepoint
from xml.etree import ElementTree

from lxml import etree

from publisher.ingest.errors import IngestError

_XML_DECL_RE = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:\-]+)[\"']", re.I)
XML_DECLARATION_RE = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)
_ENTITY_DECL_RE = re.compile(r"<!ENTITY\b", re.I)
_SYSTEM_ENTITY_RE = re.compile(r"<!DOCTYPE[^>\[]*\[", re.I)
# A DOCTYPE without an internal subset (RSS 0.91's Netscape DTD): nothing in it is used, and
# libxml2 would try to fetch it, so it is dropped before parsing.
_PLAIN_DOCTYPE_RE = re.compile(r"<!DOCTYPE[^>\[]*>", re.I)
# A `&` that does not start a reference, or a named reference XML does not define.
_AMP_RE = re.compile(
    r"&(?:(#\d+;|#x[0-9A-Fa-f]+;|(?:amp|lt|gt|quot|apos);)|([A-Za-z][A-Za-z0-9]{1,31});)?"
)

_XML_FIVE = frozenset({"amp", "lt", "gt", "quot", "apos"})
# Characters XML 1.0 forbids (C0 controls other than tab/newline/return); feeds leak them.
_BAD_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    encoding: str  # what was used
    declared: str | None  # what the document said
    note: str | None = None  # set when the declaration was wrong or missing


def _codec_name(label: str | None) -> str | None:
    if not label:
        return None
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def declared_xml_encoding(data: bytes) -> str | None:
    match = _XML_DECL_RE.match(data[:200])
    return match.group(1).decode("ascii").lower() if match else None


def decode_document(
    data: bytes, *, http_charset: str | None = None, what: str = "document"
) -> Decoded:
    """Decode feed or page bytes to text, following the evidence (see the module doc)."""
    if not data.strip():
        raise IngestError(f"empty {what}")
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                return Decoded(data[len(bom) :].decode(name), name, None)
            except UnicodeDecodeError as error:
                raise IngestError(
                    f"{what} starts with a {name} mark but is not {name}: {error}"
                ) from error
    head = data[:4]
    for pattern, name in ((b"<\x00?\x00", "utf-16-le"), (b"\x00<\x00?", "utf-16-be"),
                          (b"<\x00\x00\x00", "utf-32-le")):  # fmt: skip
        if head.startswith(pattern):
            try:
                return Decoded(data.decode(name), name, None, "UTF-16 without a byte-order mark")
            except UnicodeDecodeError as error:
                raise IngestError(f"{what} looks like {name} but is not: {error}") from error

    declared_label = declared_xml_encoding(data) or http_charset
    declared = _codec_name(declared_label)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return Decoded(text, "utf-8", declared_label, utf8_note(data, declared_label, declared))
    note = _unknown_label_note(declared_label, declared)
    candidates = [c for c in (declared, "cp1258") if c and c not in ("utf-8", "utf-16", "utf-32")]
    for name in dict.fromkeys(candidates):
        try:
            text = data.decode(name)
        except UnicodeDecodeError:
            continue
        if _BAD_CONTROL_RE.search(text[:4096]) and name != declared:
            continue  # binary garbage decodes as cp1258 too: do not pretend
        if name != declared:
            note = f"declared {declared_label or 'nothing'}, decoded as {name}"
        return Decoded(text, name, declared_label, note)
    raise IngestError(
        f"{what} is not valid UTF-8 and cannot be decoded as {declared_label or 'cp1258'}"
    )


def _unknown_label_note(declared_label: str | None, declared: str | None) -> str | None:
    if declared_label and declared is None:
        return f"unknown declared encoding {declared_label!r}"
    return None


def utf8_note(data: bytes, declared_label: str | None, declared: str | None) -> str | None:
    """`decode_document`'s remark on bytes that are valid UTF-8, given what was declared."""
    if declared not in (None, "utf-8", "ascii") and not data.isascii():
        return f"declared {declared_label} but the bytes are UTF-8"
    return _unknown_label_note(declared_label, declared)


def _fix_references(text: str) -> str:
    """Bare `&` → `&amp;`; HTML named entities (`&nbsp;`, `&agrave;`) → numeric references.

    Both are the commonest reasons a real feed is not well-formed XML.
    """

    def repl(match: re.Match[str]) -> str:
        if match.group(1):
            return match.group(0)
        name = match.group(2)
        if name is None:
            return "&amp;"
        if name in _XML_FIVE:
            return match.group(0)
        code = name2codepoint.get(name)
        return f"&#{code};" if code is not None else "&amp;" + name + ";"

    if "&" not in text:
        return text
    return _AMP_RE.sub(repl, text)


def refuse_entity_declarations(text: str, what: str = "document") -> None:
    """Entity declarations have no place in a feed; refusing them stops XXE and entity bombs.

    A plain DOCTYPE naming an external DTD (RSS 0.91 feeds carry Netscape's) is allowed: the
    parser never loads it.
    """
    suspicious = "<!ENTITY" in text or ("<!DOCTYPE" in text and "[" in text)
    if suspicious and (_ENTITY_DECL_RE.search(text) or _SYSTEM_ENTITY_RE.search(text, 0, 65536)):
        raise IngestError(
            f"{what} declares XML entities or an internal DTD subset: refused "
            "(external entities and entity expansion are never processed)"
        )


def _make_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        recover=False,
        collect_ids=False,
    )


_PARSER = _make_parser()


def _repair(text: str) -> str:
    """The fixes for feeds that are not quite XML: control characters, bare `&`, HTML
    entities. Applied only after a strict parse failed, so well-formed feeds pay nothing."""
    if _BAD_CONTROL_RE.search(text):
        text = _BAD_CONTROL_RE.sub("", text)
    return _fix_references(text)


def _prepare(text: str) -> str:
    text = XML_DECLARATION_RE.sub("", text, count=1).lstrip("\ufeff")
    head = text[:4096]
    if "<!DOCTYPE" in head:
        text = _PLAIN_DOCTYPE_RE.sub("", text, count=1)
    return text


# An XML declaration that says no more than the parser assumes without one (version 1.0,
# UTF-8): a document that starts with it, or with its root element, parses the same from its
# own bytes as from the text decoded, stripped of the declaration and encoded back.
_PLAIN_DECLARATION_RE = re.compile(
    rb"<\?xml version=([\"'])1\.0\1(?: encoding=([\"'])[Uu][Tt][Ff]-8\2)?"
    rb"(?: standalone=([\"'])(?:yes|no)\3)? ?\?>"
)


def _nothing_to_prepare(data: bytes) -> bool:
    """True when, were `data` UTF-8, `_prepare` would leave its text as it is but for a plain
    declaration: no byte-order mark, white space, other declaration or DOCTYPE."""
    if data.startswith(b"<?"):
        declaration = _PLAIN_DECLARATION_RE.match(data)
        if declaration is None or data.startswith(b"<?", declaration.end()):
            return False
    elif not data.startswith(b"<") or data.startswith(b"<!"):
        return False
    return b"<!DOCTYPE" not in data


def _plain_utf8_candidate(data: bytes) -> bool:
    """True for a document that may be plain UTF-8 with nothing to prepare and no entity
    declaration: the only kind the parsers below are given as bytes."""
    # "<" and a name or "?xml": not UTF-16 or UTF-32 by the parser's own guess either.
    if not (data[1:2].isalpha() or data.startswith(b"<?")) or not _nothing_to_prepare(data):
        return False
    return b"<!ENTITY" not in data  # (refuse_entity_declarations: the usual way refuses it)


def parse_plain_utf8(
    data: bytes, *, http_charset: str | None = None
) -> tuple[etree._Element, str | None] | None:
    """(root, decoding remark) for a document in UTF-8 that needs nothing prepared, parsed
    from its bytes without decoding them first; None for any other document, and for one
    the parser refuses, which then goes the usual way (`decode_document`, `parse_xml_text`)
    from the start and meets the same refusal, or the repairs.

    Decoding first would only check that the bytes are UTF-8: the parser checks that itself,
    as strictly as Python's decoder (tests/ingest/test_parse_fast.py feeds it broken bytes).
    What it accepts, `decode_document` would have decoded as UTF-8, and `parse_xml_text`
    would have parsed from these same bytes: the same tree, and the same remark, below.
    """
    if not _plain_utf8_candidate(data):
        return None
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError:
        return None
    return _checked(root, "feed"), _plain_utf8_note(data, http_charset)


# The largest document read with the standard library's parser: below libxml2's limit on one
# text node (10,000,000 bytes without XML_PARSE_HUGE), so that it never reads a document
# `parse_plain_utf8` would turn down for its size.
STDLIB_MAX_BYTES = 10_000_000


def read_plain_utf8(
    data: bytes, *, http_charset: str | None = None
) -> tuple[ElementTree.Element, str | None] | None:
    """`parse_plain_utf8` with the standard library's parser (expat into ElementTree's C
    tree) instead of lxml: the same documents, read into the same elements, about a third
    sooner for a feed, because walking an lxml tree makes a Python object for every element
    and decodes every text as it is read, while ElementTree's elements and texts are Python
    objects from the start. docs/decisions/feed-parser.md has the figures.

    Safe for the same reasons: no DTD and no entity declaration reach it
    (`_plain_utf8_candidate`), so nothing can be loaded or expanded — expat knows only the
    five predefined entities and refuses any other reference, and comments and processing
    instructions are dropped as lxml drops them here. Whatever expat refuses goes on to
    `parse_plain_utf8` and the usual way, which give their own answer (a repair, or a clear
    error). tests/ingest/test_parse_fast.py checks both parsers give the same items.
    """
    if len(data) > STDLIB_MAX_BYTES or not _plain_utf8_candidate(data):
        return None
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        return None
    return root, _plain_utf8_note(data, http_charset)


def _plain_utf8_note(data: bytes, http_charset: str | None) -> str | None:
    """`decode_document`'s remark on a plain UTF-8 document either parser has read."""
    declared_label = declared_xml_encoding(data) or http_charset
    return utf8_note(data, declared_label, _codec_name(declared_label))


def xml_text_to_bytes(text: str) -> bytes:
    """Text with its declaration removed (lxml refuses str with one) as UTF-8 bytes."""
    return _repair(_prepare(text)).encode("utf-8")


def parse_xml(
    data: bytes, *, http_charset: str | None = None, what: str = "feed"
) -> etree._Element:
    """Decode, refuse entity declarations, parse with a hardened parser."""
    decoded = decode_document(data, http_charset=http_charset, what=what)
    return parse_xml_text(decoded.text, what=what)


def parse_xml_text(text: str, *, what: str = "feed") -> etree._Element:
    """Parse decoded XML text: strictly first, then once more after the usual repairs."""
    refuse_entity_declarations(text, what)
    prepared = _prepare(text)
    try:
        root = etree.fromstring(prepared.encode("utf-8"), _PARSER)
    except etree.XMLSyntaxError:
        try:
            root = etree.fromstring(_repair(prepared).encode("utf-8"), _PARSER)
        except etree.XMLSyntaxError as error:
            raise IngestError(
                f"{what} is not well-formed XML: {error.msg} (line {error.lineno})"
            ) from error
    return _checked(root, what)


def _checked(root: etree._Element | None, what: str) -> etree._Element:
    if root is None:
        raise IngestError(f"{what} is empty")
    # Second wall: an entity reference that somehow survived is never expanded, and refused.
    for node in root.iter(etree.Entity):
        raise IngestError(f"{what} uses an undeclared entity {node.text!r}: refused")
    return root
