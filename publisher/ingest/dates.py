"""Dates as portals write them → aware datetimes in the source's zone.

Seen in the wild: RFC 822 (`Thu, 14 Nov 2024 09:05:00 +0700`), ISO 8601 with and without an
offset, baochinhphu.vn's `11/14/2024 9:05:00 AM` (US month-first, 12-hour, no zone),
Vietnamese day-first `14/11/2024 09:05` and `Thứ Năm, 14/11/2024 - 09:05`, and empty dates.

A date without a zone is read in the source's configured zone (default +07:00). Pure: no
clock reads; a missing date is the caller's decision (it passes the time it fetched).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from publisher.ingest.errors import IngestError
from publisher.text import collapse_spaces

_OFFSET_RE = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2}):?(\d{2})?$", re.I)
_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?)?\s*"
    r"(Z|[+-]\d{2}:?\d{2})?$",
    re.I,
)
_SLASH_RE = re.compile(
    r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})"
    r"(?:\s*(?:-|,|lúc)?\s*(\d{1,2})[:h](\d{2})(?::(\d{2}))?\s*(AM|PM|SA|CH)?)?",
    re.I,
)
_TIME_FIRST_RE = re.compile(
    r"(\d{1,2})[:h](\d{2})(?::(\d{2}))?\s*(AM|PM)?\s*(?:,|-|ngày)?\s*"
    r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})",
    re.I,
)
_RFC822_NO_DAY_RE = re.compile(r"^\d{1,2} [A-Za-z]{3} \d{2,4}")
# The forms most feeds use, written the usual way, each read with one anchored pattern
# instead of trying the general patterns in turn (see `_parse_common`).
_ISO_COMMON_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)"
)
_US_PORTAL_RE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{2}):(\d{2}) ([AP]M)")
_RFC822_COMMON_RE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d{1,2}) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([1-9]\d{3}) "
    r"([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))? (?:([+-])([01]\d)([0-5]\d)|GMT)"
)
_MONTHS = {
    name: n
    for n, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
# "0".."99" and "00".."09" → their numbers: `int()` of a one- or two-digit string costs more
# than a look-up in this table (a fixed table of numerals, not a cache of what was read).
_SMALL = {str(n): n for n in range(100)} | {f"{n:02d}": n for n in range(10)}
# Zone abbreviations that RFC 822 parsing does not know but Vietnamese servers send.
_ZONE_WORDS = {"ict": "+0700", "ict+7": "+0700", "gmt+7": "+0700", "utc+7": "+0700"}


@lru_cache(maxsize=64)
def zone_of(spec: str) -> tzinfo:
    """ "+07:00", "UTC", "Asia/Ho_Chi_Minh" → a tzinfo."""
    spec = spec.strip()
    match = _OFFSET_RE.match(spec)
    if match:
        sign, hours, minutes = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        return timezone(-delta if sign == "-" else delta)
    if spec.upper() in ("UTC", "Z", "GMT"):
        return UTC
    try:
        return ZoneInfo(spec)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise IngestError(f"unknown time zone {spec!r}") from error


def _build(
    tz: tzinfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime | None:
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=tz)
    except ValueError:
        return None


def _twelve_hour(hour: int, marker: str | None) -> int:
    if not marker:
        return hour
    pm = marker.upper() in ("PM", "CH")  # CH = chiều (afternoon), SA = sáng (morning)
    if hour == 12:
        return 12 if pm else 0
    return hour + 12 if pm else hour


def _from_slashes(
    tz: tzinfo, a: int, b: int, year: int, hour: int, minute: int, second: int, twelve: bool
) -> datetime | None:
    # 12-hour clock with AM/PM is the .NET en-US format: month first. Otherwise Vietnamese
    # day first. A part above 12 settles it either way.
    month_first = twelve
    if a > 12 >= b:
        month_first = False
    elif b > 12 >= a:
        month_first = True
    month, day = (a, b) if month_first else (b, a)
    return _build(tz, year, month, day, hour, minute, second)


def parse_date(value: str | None, *, default_zone: str = "+07:00") -> datetime | None:
    """An aware datetime in the source's zone, or None when `value` is empty or unreadable."""
    if not value or value.isspace():  # (None, or nothing left once collapsed)
        return None
    tz = zone_of(default_zone)
    # The usual forms are matched as they come: a text one of their patterns matches whole
    # has single spaces only, and is its own collapsed form.
    parsed = _parse_common(value, tz) or _parse(collapse_spaces(value), tz)
    return parsed.astimezone(tz) if parsed is not None else None


def _parse_common(text: str, tz: tzinfo) -> datetime | None:
    """ISO 8601, the portal form and RFC 822 as most servers write them, or None for
    anything else (and for an impossible date, which `_parse` then turns down itself).

    Each gives the instant `_parse` gives for the same text: those texts reach one branch of
    it (the ISO branch first; the portal form has no comma and no month name), which reads
    the same numbers. The ISO form is read by the datetime module, in C. Zones aside (the
    caller converts to the source's zone), the results are equal.
    tests/ingest/test_dates_fast.py compares both ways.
    """
    if _ISO_COMMON_RE.fullmatch(text):
        try:
            return datetime.fromisoformat(text)
        except ValueError:  # a day or month that does not exist
            return None
    us = _US_PORTAL_RE.fullmatch(text)
    if us is not None:
        a, b, year, hour, minute, second, marker = us.groups()
        return _from_slashes(
            tz,
            _SMALL[a],
            _SMALL[b],
            int(year),
            _twelve_hour(_SMALL[hour], marker),
            _SMALL[minute],
            _SMALL[second],
            twelve=True,
        )
    rfc = _RFC822_COMMON_RE.fullmatch(text)
    if rfc is not None:
        day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = rfc.groups()
        if sign is None:  # GMT
            zone: tzinfo = UTC
        elif sign == "-" and zone_hours == zone_minutes == "00":
            zone = tz  # "-0000": no zone known (RFC 2822), so the source's, as in `_parse`
        else:
            offset = timedelta(hours=int(zone_hours), minutes=int(zone_minutes))
            zone = timezone(-offset if sign == "-" else offset)
        return _build(
            zone,
            int(year),
            _MONTHS[month],
            _SMALL[day],
            _SMALL[hour],
            _SMALL[minute],
            _SMALL[second or "0"],
        )
    return None


def _parse(text: str, tz: tzinfo) -> datetime | None:
    iso = _ISO_RE.match(text)
    if iso:
        year, month, day, hour, minute, second, zone = iso.groups()
        when = _build(
            tz, int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
        if when is not None and zone:
            own = UTC if zone.upper() == "Z" else zone_of(zone)
            if own is not tz:  # (the source's own zone written out: nothing to replace)
                when = when.replace(tzinfo=own)
        return when
    if "," in text[:5] or _RFC822_NO_DAY_RE.match(text):
        rfc = _parse_rfc822(text, tz)
        if rfc is not None:
            return rfc
    slash = _SLASH_RE.search(text)
    time_first = _TIME_FIRST_RE.search(text)
    if slash and (slash.group(4) is not None or time_first is None):
        a, b, year, hour, minute, second, marker = slash.groups()
        return _from_slashes(
            tz,
            int(a),
            int(b),
            int(year),
            _twelve_hour(int(hour or 0), marker),
            int(minute or 0),
            int(second or 0),
            twelve=bool(marker and marker.upper() in ("AM", "PM")),
        )
    if time_first:
        hour, minute, second, marker, a, b, year = time_first.groups()
        return _from_slashes(
            tz,
            int(a),
            int(b),
            int(year),
            _twelve_hour(int(hour), marker),
            int(minute),
            int(second or 0),
            twelve=bool(marker),
        )
    return _parse_rfc822(text, tz)


def _parse_rfc822(text: str, tz: tzinfo) -> datetime | None:
    words = text.rsplit(" ", 1)
    if len(words) == 2 and words[1].lower() in _ZONE_WORDS:
        text = f"{words[0]} {_ZONE_WORDS[words[1].lower()]}"
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # "-0000" or no zone: the source's zone
        return parsed.replace(tzinfo=tz)
    return parsed
