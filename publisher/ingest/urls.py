"""URL identity: canonical URLs for deduplication, relative links made absolute, GUID scope."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

# Query parameters that say how a reader arrived, not what they read.
_TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "hsa_")
_TRACKING_NAMES = frozenset(
    {
        "fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "zarsrc", "zaloid", "_hsenc",
        "_hsmi", "ref", "ref_src", "cmpid", "spm", "share", "mkt_tok", "gidzl",
    }
)  # fmt: skip
_DEFAULT_PORTS = {"http": 80, "https": 443}


# A URL already in canonical form except perhaps for an empty path: lower-case http(s)
# scheme and host name, no user, port, query or fragment, only plain path characters. The
# full parse would give it back as it is (with "/" for an empty path); most feed links look
# like this. tests/ingest/test_urls_fast.py compares both ways on generated URLs.
# (A label is written "letters or digits, then any hyphens each followed by more": the same
# labels as "[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", read without backtracking.)
_PLAIN_URL_RE = re.compile(
    r"(https?://[a-z0-9]+(?:-+[a-z0-9]+)*(?:\.[a-z0-9]+(?:-+[a-z0-9]+)*)*)"
    r"(/[A-Za-z0-9\-._~!$'()*+,;=:@/%]*)?"
)


# Plain canonical URLs given lately. Every polled item's link is made canonical when it is
# normalised, and asked about again when its dedup keys are taken: a plain canonical URL is
# its own canonical form, so the second time it is found here instead of matched again.
# (Only plain ones: the parsed way is not promised to be a fixed point for odd queries.)
_RECENT_PLAIN: dict[str, None] = {}
_RECENT_PLAIN_LIMIT = 4096


def canonical_url(url: str) -> str:
    """One spelling per page: lower-case scheme and host, no default port, no fragment, no
    tracking parameters, remaining parameters sorted. Path case is kept (servers differ)."""
    if url in _RECENT_PLAIN:
        return url
    url = url.strip()
    if not url:
        return ""
    plain = _PLAIN_URL_RE.fullmatch(url)
    if plain is None:
        return _canonical_url_parsed(url)
    if plain.lastindex != 2:  # no path: "/" for none
        url += "/"
    if len(_RECENT_PLAIN) >= _RECENT_PLAIN_LIMIT:
        _RECENT_PLAIN.clear()
    _RECENT_PLAIN[url] = None
    return url


def _canonical_url_parsed(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if port is not None and _DEFAULT_PORTS.get(scheme) != port:
        host = f"{host}:{port}"
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not key.lower().startswith(_TRACKING_PREFIXES) and key.lower() not in _TRACKING_NAMES
    ]
    path = parts.path or "/"
    return urlunsplit((scheme, host, path, urlencode(sorted(query)), ""))


def absolute_url(url: str | None, base: str | None) -> str:
    """`url` resolved against `base`; only http(s) results survive (javascript: is dropped)."""
    if not url:
        return ""
    url = url.strip()
    if url.startswith(("https://", "http://")) and " " not in url:
        return url  # already absolute: the common case, no parsing needed
    joined = urljoin(base, url) if base else url
    scheme = urlsplit(joined).scheme.lower()
    return joined if scheme in ("http", "https") else ""


def is_absolute_uri(value: str) -> bool:
    if "[" not in value and "]" not in value:  # (brackets: the full parse may refuse it)
        if ":" not in value:
            return False  # no scheme
        if value.startswith(("https://", "http://", "tag:", "urn:")):
            return True  # (a scheme of letters, and for these four the answer either way)
    scheme = urlsplit(value).scheme
    return bool(scheme) and (value.startswith(("tag:", "urn:")) or "//" in value)


def scoped_guid(guid: str, source_id: str) -> str:
    """A GUID that is unique across sources.

    URLs, `tag:` and `urn:` GUIDs are global already; bare ones ("12345", Liferay and
    SharePoint item numbers) only mean something inside their feed, so they get its id.
    """
    guid = guid.strip()
    if not guid or is_absolute_uri(guid):
        return guid
    return f"{source_id}#{guid}"
