"""The plan CSV: every bad cell named by row and column, good rows parsed to UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from publisher.domain import Platform
from publisher.plan_import import parse_plan

NOW = datetime(2026, 11, 14, 2, 0, tzinfo=UTC)


def test_good_rows_parse_to_utc() -> None:
    text = "article;unit;channels;time;lead_in\n7;01;facebook|zalo;15/11/2026 09:00;Tin:\n"
    result = parse_plan(text, {"01"}, {7}, NOW)
    assert result.ok
    [row] = result.rows
    assert row.platforms == (Platform.FACEBOOK, Platform.ZALO)
    assert row.at == datetime(2026, 11, 15, 2, 0, tzinfo=UTC)
    assert row.lead_in == "Tin:"


def test_every_problem_is_named() -> None:
    text = (
        "article,unit,channels,time\nx,99,myspace,31/02/2026 09:00\n\n7,01,all,13/11/2026 09:00\n"
    )
    result = parse_plan(text, {"01"}, {7}, NOW)
    where = {(e.line, e.column) for e in result.errors}
    assert where == {(2, "article"), (2, "unit"), (2, "channels"), (2, "time"), (4, "time")}
    assert not result.rows


def test_missing_column_stops_early() -> None:
    result = parse_plan("article,unit,time\n1,01,15/11/2026 09:00\n", {"01"}, {1}, NOW)
    assert [(e.line, e.column) for e in result.errors] == [(1, "channels")]
