"""Dates in the usual forms (ISO 8601, the portal's "11/14/2024 9:05:00 AM", RFC 822) are read
with one anchored pattern each; whatever they give is exactly what the general way gave
(tests/ingest/before.py): the same instant, in the same zone, with the same fold — or None."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from publisher.ingest import dates
from publisher.ingest.dates import parse_date
from tests.ingest import before

ZONES = ["+07:00", "Asia/Ho_Chi_Minh", "UTC", "-05:30", "Europe/London"]


def described(value: datetime | None) -> tuple[str, object, int] | None:
    if value is None:
        return None
    return value.isoformat(), value.tzinfo, value.fold


def check(text: str, zone: str) -> None:
    try:
        expected = described(before.parse_date(text, default_zone=zone))
    except ValueError as error:  # e.g. an offset of 24 hours or more
        with pytest.raises(ValueError, match=re.escape(str(error))):
            parse_date(text, default_zone=zone)
        return
    assert described(parse_date(text, default_zone=zone)) == expected


def numeral(low: int, high: int) -> st.SearchStrategy[str]:
    """A number as a feed might write it: one or two digits, sometimes out of range."""
    return st.integers(low, high).flatmap(
        lambda n: st.sampled_from([str(n), f"{n:02d}", f"{n:03d}"])
    )


spaces = st.sampled_from([" ", " ", " ", "  ", "\t", "\u00a0", ""])


@st.composite
def iso_dates(draw: st.DrawFn) -> str:
    date = f"{draw(numeral(0, 10000))}-{draw(numeral(0, 13))}-{draw(numeral(0, 32))}"
    sep = draw(st.sampled_from(["T", "T", " ", "t"]))
    clock = f"{draw(numeral(0, 25))}:{draw(numeral(0, 61))}:{draw(numeral(0, 61))}"
    fraction = draw(st.sampled_from(["", "", ".123", ",5"]))
    zone = draw(
        st.sampled_from(["Z", "z", "", "+07:00", "-05:30", "+0700", "+24:00", "-00:00", "+23:59"])
        | st.builds(
            lambda s, h, m: f"{s}{h}:{m}", st.sampled_from("+-"), numeral(0, 25), numeral(0, 61)
        )
    )
    return date + sep + clock + fraction + zone


@st.composite
def portal_dates(draw: st.DrawFn) -> str:
    return (
        f"{draw(numeral(0, 32))}/{draw(numeral(0, 32))}/{draw(numeral(0, 10000))}"
        f"{draw(spaces)}{draw(numeral(0, 25))}:{draw(numeral(0, 61))}:{draw(numeral(0, 61))}"
        f"{draw(spaces)}{draw(st.sampled_from(['AM', 'PM', 'am', 'Pm', 'SA', 'CH', '']))}"
    )


@st.composite
def rfc822_dates(draw: st.DrawFn) -> str:
    day_name = draw(st.sampled_from(["Thu, ", "Mon, ", "thu, ", "Thứ, ", "", "Xyz, "]))
    month = draw(st.sampled_from(["Nov", "Jan", "Dec", "nov", "November", "Foo"]))
    year = draw(numeral(0, 10000))
    clock = f"{draw(numeral(0, 25))}:{draw(numeral(0, 61))}"
    if draw(st.booleans()):
        clock += f":{draw(numeral(0, 61))}"
    zone = draw(
        st.sampled_from(
            ["GMT", "+0700", "-0000", "+0000", "-0530", "ICT", "UT", "EST", "+2400", ""]
        )
        | st.builds(
            lambda s, h, m: f"{s}{h}{m}", st.sampled_from("+-"), numeral(0, 25), numeral(0, 61)
        )
    )
    return f"{day_name}{draw(numeral(0, 32))} {month} {year} {clock} {zone}".strip()


date_texts = iso_dates() | portal_dates() | rfc822_dates() | st.text(max_size=24)


@settings(max_examples=5000, deadline=None)
@given(date_texts, st.sampled_from(ZONES))
@example("11/14/2024 9:05:00 AM", "+07:00")
@example("11/14/2024 12:30:00 AM", "+07:00")
@example("13/14/2024 9:05:00 PM", "+07:00")
@example("2024-11-14T09:05:00+07:00", "+07:00")
@example("2024-11-14T09:05:00+07:00", "Asia/Ho_Chi_Minh")
@example("2024-11-14T09:05:00Z", "UTC")
@example("2024-02-30T09:05:00Z", "UTC")
@example("2024-10-27T01:30:00+01:00", "Europe/London")  # the hour that happens twice
@example("Thu, 14 Nov 2024 09:05:00 -0000", "+07:00")
@example("Thu, 14 Nov 0099 09:05:00 +0700", "+07:00")
@example("31 Feb 2024 09:05 GMT", "+07:00")
@example("Sun, 27 Oct 2024 01:30:00 +0100", "Europe/London")
def test_usual_forms_read_as_the_general_way_reads_them(text: str, zone: str) -> None:
    check(text, zone)


@pytest.mark.parametrize("value", [None, "", "   ", "\t\n", "11/14/2024 9:05:00 AM"])
def test_an_unknown_zone_is_an_error_only_for_a_date_to_read(value: str | None) -> None:
    def outcome(parse: object) -> str:
        try:
            return repr(parse(value, default_zone="Nowhere/Atlantis"))  # type: ignore[operator]
        except Exception as error:  # (the same error, whatever it is)
            return f"{type(error).__name__}: {error}"

    assert outcome(parse_date) == outcome(before.parse_date)


def test_the_usual_forms_take_the_shortcut() -> None:
    tz = dates.zone_of("+07:00")
    for text in (
        "11/14/2024 9:05:00 AM",
        "2024-11-14T09:05:00+07:00",
        "2024-11-14T02:05:00Z",
        "Thu, 14 Nov 2024 09:05:00 +0700",
        "14 Nov 2024 09:05 GMT",
    ):
        assert dates._parse_common(text, tz) is not None, text
