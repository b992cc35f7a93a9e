"""Article HTML → clean HTML (nh3 allowlist) and plain text derived from the clean HTML.

Scripts, styles, iframes, event handlers, `style` attributes and javascript:/data: URLs never
survive: only the tags and attributes below do. Relative links are made absolute first, so
that a clean article still works when shown somewhere else.
"""

from __future__ import annotations

import html
import re

import lxml.html
import nh3
from lxml import etree

from publisher.ingest.urls import absolute_url
from publisher.text import collapse_spaces, nfc

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "div", "dl", "dt",
        "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li",
        "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table", "tbody",
        "td", "tfoot", "th", "thead", "tr", "u", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
}
_DROP_WITH_CONTENT = frozenset(
    {"script", "style", "iframe", "object", "embed", "noscript", "template", "svg", "math",
     "form", "textarea", "select"}
)  # fmt: skip
_BLOCKS = frozenset(
    {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre",
     "figure", "figcaption", "table", "ul", "ol", "dl", "dt", "dd", "hr"}
)  # fmt: skip
# nh3 writes attributes as name="value": a value that is not absolute needs resolving.
_RELATIVE_URL_RE = re.compile(r"""\b(?:href|src)="(?!https?:|mailto:|#)""", re.I)
_TAG_RE = re.compile(r"<[^>]*>")
_MARKUP_RE = re.compile(r"<(?:[A-Za-z/!?][^<>]*)>")
# A script or style element in a one-line field: its content is code, not words.
_SCRIPT_STYLE_RE = re.compile(r"<(script|style)\b[^>]*>.*?(?:</\1\s*>|$)", re.I | re.S)


def _absolutise(fragment: str, base: str) -> str:
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (etree.ParserError, ValueError):
        return fragment
    for element in root.iter("a", "img"):
        attribute = "href" if element.tag == "a" else "src"
        value = element.get(attribute)
        if value is not None and not value.startswith("#"):
            element.set(attribute, absolute_url(value, base))
    return html.escape(root.text or "", quote=False) + "".join(
        etree.tostring(child, encoding="unicode", method="html") for child in root
    )


# The allowlist as nh3 takes it, built once.
_NH3_TAGS = set(ALLOWED_TAGS)
_NH3_ATTRIBUTES = {tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()}
_NH3_SCHEMES = {"http", "https", "mailto"}
_LINK_REL = "noopener noreferrer"

# --- already clean: the shapes nh3 gives back unchanged ------------------------------------
# Most feed items are plain text, or a few paragraphs, links and images written the way nh3
# writes them. For those, and only those, nh3's output is known without running it: the same
# text, tags and attributes, `<img />` as `<img>`, and `rel` added to links. Anything else —
# an entity, a character the HTML parser rewrites, a tag or attribute outside this small set,
# a relative or unusual URL, a tag that would be closed or moved implicitly — goes to nh3.
# tests/ingest/test_sanitize_fast.py checks, on the corpus and on generated input, that both
# ways give byte-identical results.

# Text nh3 returns as it is: no markup or entity characters, no CR (the parser turns it into
# LF), no NUL, no-break space (written back as &nbsp;), byte-order mark (dropped at the
# start), control or non-characters, surrogates.
_TEXT_UNCHANGED_RE = re.compile(
    "[<>&\r\x00-\x08\x0b-\x1f\x7f-\xa0\ud800-\udfff\ufdd0-\ufdef\ufeff\ufffe\uffff]"
)


def _text_unchanged(text: str) -> bool:
    """`_TEXT_UNCHANGED_RE.search(text) is None`, cheaper for the usual text: every character
    that pattern looks for except "<", ">" and "&" is unprintable to Python (tests go through
    all of Unicode), so for printable text only those three are left to look for."""
    if text.isprintable():
        return "<" not in text and ">" not in text and "&" not in text
    return _TEXT_UNCHANGED_RE.search(text) is None


_SIMPLE_INLINE = frozenset({"a", "b", "strong", "em", "i", "u", "span"})
_SIMPLE_VOID = frozenset({"img", "br"})
_SIMPLE_ATTRIBUTES = {"a": ("href", "title"), "img": ("src", "alt", "title", "width", "height")}
_SIMPLE_URL_ATTRIBUTES = frozenset({"href", "src"})
_SIMPLE_TAG_RE = re.compile(r"<(/?)([a-z][a-z0-9]*)((?:[ \t\n]+[a-z]+=\"[^\"]*\")*)[ \t\n]*(/?)>")
_SIMPLE_ATTRIBUTE_RE = re.compile(r"[ \t\n]+([a-z]+)=\"([^\"]*)\"")
# An absolute http(s) URL that every URL parser reads the same way: a plain host name whose
# last label starts with a letter (not an IP address, not punycode), no port, no user, and
# only unreserved and sub-delimiter characters after it.
# (Written as "labels each with its dot, then the last label" so that the regex engine does
# not give labels back one by one to find the last.)
_SIMPLE_URL_RE = re.compile(
    r"https?://(?:(?!xn--)[a-z0-9][a-z0-9-]*\.)+(?!xn--)[a-z][a-z0-9-]*"
    r"(?:/[A-Za-z0-9\-._~!$'()*+,;=:@/%?]*)?"
)
# An attribute, with an href or src that is such a URL told apart by the pattern itself (the
# URL pattern has no `"`, so it can only end at the closing quote: a full match of the value).
_SIMPLE_ATTRIBUTE_URL_RE = re.compile(
    r'[ \t\n]+(?:(href|src)="(' + _SIMPLE_URL_RE.pattern + r')"|([a-z]+)="([^"]*)")'
)
# A tag as `_SIMPLE_TAG_RE` reads it, with one more thing told in the same match: whether
# its attributes are a single href or src holding such a URL, with one space before it (the
# usual `<a href="https://…">`, `<img src="https://…" />`). Those need no look at each
# attribute. (Either branch matches where `_SIMPLE_TAG_RE` matches, up to the same ">".)
_SIMPLE_TAG_URL_RE = re.compile(
    r'<(/?)([a-z][a-z0-9]*)(?:( (href|src)="(' + _SIMPLE_URL_RE.pattern + r')")'
    r'|((?:[ \t\n]+[a-z]+="[^"]*")*))[ \t\n]*(/?)>'
)
_SIMPLE_VALUE_RE = re.compile(
    '[^"<>&\x00-\x1f\x7f-\xa0\ud800-\udfff\ufdd0-\ufdef\ufeff\ufffe\uffff]*'
)


def _already_clean(fragment: str) -> str | None:
    """nh3's output for `fragment` when it is one of the simple shapes above, else None."""
    simple = _simple_clean(fragment)
    return simple[0] if simple is not None else None


# What `_simple_clean` reads off a simple fragment in the one pass that checks it:
#   html        nh3's output for it (before clean_html strips it and makes it NFC)
#   text        the text between its tags, with the line breaks html_to_text puts at blocks
#   images      the `src` of its images, in order
#   attributes  how many attributes it wrote (`="` in html that are attributes' own)
#   lone        its text when that is one printable piece (between tags, or all of it)
_Simple = tuple[str, str, list[str], int, str | None]


def _simple_clean(fragment: str) -> _Simple | None:
    """nh3's output for `fragment` and what goes with it (`_Simple`) when `fragment` is one
    of the simple shapes above, else None."""
    if "<" not in fragment:
        if fragment.isprintable():
            if ">" in fragment or "&" in fragment:
                return None
            return fragment, fragment, [], 0, fragment
        return (fragment, fragment, [], 0, None) if _text_unchanged(fragment) else None
    out: list[str] = []
    text: list[str] = []
    images: list[str] = []
    attributes_written = 0
    open_tags: list[str] = []
    pieces = 0
    lone: str | None = None
    position = 0
    printable = True  # (every piece so far)
    for tag in _SIMPLE_TAG_URL_RE.finditer(fragment):
        start, end = tag.span()
        if start != position:
            piece = fragment[position:start]
            if piece.isprintable():  # (`_text_unchanged`, keeping what isprintable said)
                if "<" in piece or ">" in piece or "&" in piece:
                    return None
            elif _TEXT_UNCHANGED_RE.search(piece):
                return None
            else:
                printable = False
            out.append(piece)
            text.append(piece)
            pieces += 1
            lone = piece
        position = end
        closing, name, url_attribute, url_key, url, attributes, self_closing = tag.groups()
        if closing:
            if (
                url_attribute
                or attributes
                or self_closing
                or not open_tags
                or open_tags.pop() != name
            ):
                return None
            out.append(f"</{name}>")
            if name == "p":
                text.append("\n")
            continue
        if name == "p":
            if open_tags:  # a paragraph only at the top: nested, the parser would move it
                return None
            open_tags.append(name)
            text.append("\n")
        elif name in _SIMPLE_INLINE:
            if name == "a" and "a" in open_tags:
                return None
            open_tags.append(name)
        elif name == "br":
            text.append("\n\n")
        elif name != "img":
            return None
        if self_closing and name not in _SIMPLE_VOID:
            return None
        if url_attribute:  # (one plain absolute URL: nothing else to check in it)
            if url_key not in _SIMPLE_ATTRIBUTES.get(name, ()):
                return None
            if url_key == "src":
                images.append(url)
            attributes_written += 1
            attributes = url_attribute
        elif attributes:
            allowed = _SIMPLE_ATTRIBUTES.get(name, ())
            keys: list[str] = []
            for url_key, url, key, value in _SIMPLE_ATTRIBUTE_URL_RE.findall(attributes):
                if url_key:  # a plain absolute URL (and so a plain attribute value too)
                    if url_key not in allowed:
                        return None
                    if url_key == "src":
                        images.append(url)
                    keys.append(url_key)
                    continue
                if (
                    key not in allowed
                    or key in _SIMPLE_URL_ATTRIBUTES  # (not such a URL)
                    or not _SIMPLE_VALUE_RE.fullmatch(value)
                ):
                    return None
                keys.append(key)
            if len(keys) > 1 and len(set(keys)) < len(keys):
                return None  # the same attribute twice
            attributes_written += len(keys)
            if "\t" in attributes or "\n" in attributes or "  " in attributes:
                # written back with one space before each (values have no tab or newline)
                attributes = "".join(
                    f' {key}="{value}"' for key, value in _SIMPLE_ATTRIBUTE_RE.findall(attributes)
                )
        if name == "a":
            out.append(f'<a{attributes} rel="{_LINK_REL}">')
            attributes_written += 1
        else:
            out.append(f"<{name}{attributes}>")
    rest = fragment[position:]
    if open_tags:
        return None
    if rest:
        if rest.isprintable():
            if "<" in rest or ">" in rest or "&" in rest:
                return None
        elif _TEXT_UNCHANGED_RE.search(rest):
            return None
        else:
            printable = False
        out.append(rest)
        text.append(rest)
        pieces += 1
        lone = rest
    if pieces != 1 or not printable:
        lone = None
    return "".join(out), "".join(text), images, attributes_written, lone


def _has_relative_url(cleaned: str) -> bool:
    """`_RELATIVE_URL_RE.search(cleaned)`, tried only where a match can start: four or three
    characters before each `="` (`href` or `src`, one character per letter whatever the
    case). The case-insensitive search over the whole fragment cost more than nh3's shortcut."""
    end = cleaned.find('="')
    while end != -1:
        if _RELATIVE_URL_RE.match(cleaned, max(end - 4, 0)) or _RELATIVE_URL_RE.match(
            cleaned, max(end - 3, 0)
        ):
            return True
        end = cleaned.find('="', end + 2)
    return False


def _nh3_clean(fragment: str) -> str:
    return nh3.clean(
        fragment,
        tags=_NH3_TAGS,
        clean_content_tags=set(_DROP_WITH_CONTENT),
        attributes=_NH3_ATTRIBUTES,
        url_schemes=_NH3_SCHEMES,
        link_rel=_LINK_REL,
        strip_comments=True,
    )


def clean_html(fragment: str, *, base_url: str | None = None) -> str:
    """Sanitised, NFC HTML. Relative `href`/`src` are resolved against `base_url`."""
    if not fragment or not fragment.strip():
        return ""
    cleaned = _already_clean(fragment)
    if cleaned is None:
        cleaned = _nh3_clean(fragment)
    if base_url and _has_relative_url(cleaned):
        # Resolve on the already clean tree, then clean again: the second pass is the
        # guarantee, whatever the rewrite produced.
        cleaned = nh3.clean(
            _absolutise(cleaned, base_url),
            tags=_NH3_TAGS,
            attributes=_NH3_ATTRIBUTES,
            url_schemes=_NH3_SCHEMES,
            link_rel=_LINK_REL,
            strip_comments=True,
        )
    return nfc(cleaned.strip())


_TEXT_TAG_RE = re.compile(r"<(/?)([a-z][a-z0-9]*)(?:[ \t\n]+[a-z]+=\"[^\"<>&]*\")*[ \t\n]*(/?)>")


def _simple_text(fragment: str) -> str | None:
    """html_to_text of a fragment in the simple shapes `_already_clean` accepts (any
    attributes), read off the tags directly; None for anything else."""
    pieces: list[str] = []
    open_tags: list[str] = []
    position = 0
    for tag in _TEXT_TAG_RE.finditer(fragment):
        text = fragment[position : tag.start()]
        if text and not _text_unchanged(text):
            return None
        pieces.append(text)
        position = tag.end()
        closing, name, self_closing = tag.groups()
        if closing:
            if self_closing or not open_tags or open_tags.pop() != name:
                return None
            if name == "p":
                pieces.append("\n")
            continue
        if name == "p":
            if open_tags or self_closing:
                return None
            open_tags.append(name)
            pieces.append("\n")
        elif name in _SIMPLE_INLINE:
            if self_closing or (name == "a" and "a" in open_tags):
                return None
            open_tags.append(name)
        elif name == "br":
            pieces.append("\n\n")
        elif name != "img":
            return None
    rest = fragment[position:]
    if open_tags or (rest and not _text_unchanged(rest)):
        return None
    pieces.append(rest)
    return _lines_text("".join(pieces))


def _lines_text(joined: str) -> str:
    """Text with its blocks' line breaks as html_to_text gives it: white space collapsed in
    each line, empty lines dropped, NFC."""
    single = joined.strip("\n")  # (empty lines are dropped: those at the ends first)
    if "\n" not in single:
        return nfc(collapse_spaces(single))
    lines = (collapse_spaces(line) for line in single.split("\n"))
    return nfc("\n".join(line for line in lines if line))


def html_to_text(fragment: str) -> str:
    """Readable plain text of (clean) HTML: blocks become lines, spaces collapsed, NFC."""
    if not fragment or not fragment.strip():
        return ""
    if "<" not in fragment:
        return nfc(collapse_spaces(html.unescape(fragment)))
    simple = _simple_text(fragment)
    return simple if simple is not None else _html_to_text_lxml(fragment)


def _html_to_text_lxml(fragment: str) -> str:
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (etree.ParserError, ValueError):
        return nfc(" ".join(html.unescape(_TAG_RE.sub(" ", fragment)).split()))
    pieces: list[str] = []

    def walk(element: etree._Element) -> None:
        if not isinstance(element.tag, str):  # comments, processing instructions
            if element.tail:
                pieces.append(element.tail)
            return
        block = element.tag in _BLOCKS
        if block:
            pieces.append("\n")
        if element.text:
            pieces.append(element.text)
        for child in element:
            walk(child)
        if block:
            pieces.append("\n")
        if element.tail:
            pieces.append(element.tail)

    walk(root)
    return _lines_text("".join(pieces))


def clean_with_text(fragment: str, *, base_url: str | None = None) -> tuple[str, str, list[str]]:
    """`clean_html(fragment, base_url=base_url)`, the `html_to_text` of that and its
    `image_sources`: exactly those three, for a simple fragment read off the one pass that
    checks it (`_simple_clean`) instead of a pass each. tests/ingest/test_sanitize_fast.py
    compares this with the three functions on the corpus and on generated fragments.
    """
    if not fragment or not fragment.strip():
        return "", "", []
    if "<" not in fragment:
        text = _plain_text_as_is(fragment)
        if text is not None:
            return text, text, []
    simple = _simple_clean(fragment)
    if simple is not None:
        done = _finish_simple(simple, base_url)
        if done is not None:
            return done
    clean = clean_html(fragment, base_url=base_url)
    return clean, html_to_text(clean), image_sources(clean)


def _plain_text_as_is(fragment: str) -> str | None:
    """The clean HTML of a fragment with no tags when it is its own text as well: printable
    (a space is its only white space), nothing for nh3 to escape or decode (no ">" or "&";
    no "<" is the caller's check), no `="` for clean_html to take for a relative link, and
    no run of spaces once stripped. None for any other text, which goes the longer way.

    clean_html gives such a text back stripped and NFC; html_to_text of that is the same
    text, as collapsing has nothing to do in it (a space is left between any two other
    characters, so no NFC composition can come of it either). Its image_sources: none.
    """
    if not fragment.isprintable() or ">" in fragment or "&" in fragment or '="' in fragment:
        return None
    clean = nfc(fragment.strip())
    return clean if "  " not in clean else None


def _finish_simple(simple: _Simple, base_url: str | None) -> tuple[str, str, list[str]] | None:
    """What clean_html, html_to_text and image_sources give for a simple fragment, or None
    when a relative link is to be resolved (clean_html's longer way).

    Why each shortcut gives the same:
    * `="` that are all the attributes' own (each written as ` name="`) are no relative link
      (href and src hold absolute URLs here) and no `src=` for image_sources to find other
      than the real ones; a text or a value ending in "=" can make more, and then both
      searches are made as clean_html and image_sources make them.
    * clean_html's last step, NFC, is checked; if it changes anything, the text and images
      are read from its result the usual way.
    * Text in one piece (between two tags, or all of it) needs no NFC of its own: NFC acts
      within what lies between "<", ">" and the ends here (no character composes with ">"
      or combines into "<" unless the whole is not NFC already), so a piece of NFC HTML is
      NFC. Printable, with single spaces and none at its ends, it needs no collapsing.
    """
    html, text, images, attributes, lone = simple
    plain = html.count('="') == attributes
    if base_url and not plain and _has_relative_url(html):
        return None
    stripped = html.strip()
    clean = nfc(stripped)
    if clean != stripped:
        return clean, html_to_text(clean), image_sources(clean)
    if lone is not None and "  " not in lone and lone[:1] != " " and lone[-1:] != " ":
        text = lone
    elif "<" not in clean:  # no tags: html_to_text's rule for plain text (no "&" to decode)
        return clean, nfc(collapse_spaces(clean)), []
    else:
        text = _lines_text(text)
    if not plain:
        return clean, text, image_sources(clean)
    # (`images` is this fragment's own new list: given as it is when it cannot repeat)
    return clean, text, images if len(images) < 2 else list(dict.fromkeys(images))


def plain_text(value: str) -> str:
    """A title or other one-line field: tags removed, entities decoded (even double-escaped
    ones like `&amp;quot;`), whitespace collapsed, NFC."""
    if not value:
        return ""
    text = _TAG_RE.sub(" ", _SCRIPT_STYLE_RE.sub(" ", value)) if "<" in value else value
    for _ in range(2):  # "&amp;quot;" → "&quot;" → '"'
        if "&" not in text:
            break
        text = html.unescape(text)
        # An escaped tag ("&lt;script&gt;…") only becomes markup now: drop it too, with a
        # script's or style's content. Only real tag shapes (a letter after "<"), so a text
        # like "lãi suất < 5%" keeps its sign.
        if "<" in text:
            text = _MARKUP_RE.sub(" ", _SCRIPT_STYLE_RE.sub(" ", text))
    return nfc(collapse_spaces(text))


_IMG_SRC_RE = re.compile(r"<img\b[^>]*?\bsrc=\"([^\"]+)\"")


def image_sources(clean_fragment: str) -> list[str]:
    """`src` of every <img> in clean HTML, in order, without repeats."""
    if "<img" not in clean_fragment:
        return []
    found = _IMG_SRC_RE.findall(clean_fragment)
    return list(dict.fromkeys(html.unescape(src) for src in found))
