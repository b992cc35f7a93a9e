"""Coverage reports on the demo database, compared with hand-computed figures."""

from __future__ import annotations

from datetime import timedelta

import pytest

from publisher.reports import (
    ReportError,
    coverage_curve,
    load_coverage,
    load_unit_record,
)

# (unit, platform) → (state, accounts, sent, lag_s, waiting_s), worked out by hand from the
# table in conftest.py with now = T0 + 60 min.
EXPECTED_CELLS = {
    ("CP", "facebook"): ("sent", 1, 1, 120.0, None),
    ("CP", "telegram"): ("sent", 1, 1, 60.0, None),
    ("BYT", "facebook"): ("sent", 1, 1, 600.0, None),
    ("BYT", "zalo"): ("failed", 1, 0, None, 3600.0),
    ("BTC", "facebook"): ("pending", 1, 0, None, 3600.0),
    ("01", "facebook"): ("sent", 1, 1, 300.0, None),
    ("01", "zalo"): ("sent", 1, 1, 1200.0, None),
    ("01", "telegram"): ("needs_review", 1, 0, None, 3600.0),
    ("79", "facebook"): ("expired", 1, 0, None, 3600.0),
    ("00004", "facebook"): ("sent", 1, 1, 1800.0, None),
    ("00004", "telegram"): ("partial", 2, 1, 2400.0, None),
}

# level → (units targeted, reached, complete, deliveries targeted, sent, % sent,
#          % units reached, median lag s, max lag s)
EXPECTED_LEVELS = {
    "central": (1, 1, 1, 2, 2, 100.0, 100.0, 90.0, 120.0),
    "ministry": (2, 1, 0, 3, 1, 33.3, 50.0, 600.0, 600.0),
    "province": (2, 1, 0, 4, 2, 50.0, 50.0, 750.0, 1200.0),
    "commune": (2, 1, 0, 3, 2, 66.7, 50.0, 2100.0, 2400.0),
}


def _rollup_tuple(r):  # type: ignore[no-untyped-def]
    return (
        r.units_targeted,
        r.units_reached,
        r.units_complete,
        r.targeted,
        r.sent,
        r.percent_sent,
        r.percent_units_reached,
        r.median_lag_s,
        r.max_lag_s,
    )


def test_default_article_is_the_newest_directive(demo_db) -> None:  # type: ignore[no-untyped-def]
    coverage = load_coverage(demo_db.engine, demo_db.now)
    assert coverage.article.id == demo_db.directive_id
    assert coverage.article.title == "Công điện về phòng chống bão số 15"


def test_matrix_cells_to_the_row(demo_db) -> None:  # type: ignore[no-untyped-def]
    coverage = load_coverage(demo_db.engine, demo_db.now, demo_db.directive_id)
    got = {
        (c.unit_code, c.platform): (c.state, c.accounts, c.sent, c.lag_s, c.waiting_s)
        for u in coverage.units
        for c in u.cells
    }
    assert got == EXPECTED_CELLS
    # Reading order follows the tree, and the unit without accounts is listed, with no cells.
    assert [u.unit.code for u in coverage.units] == [
        "CP",
        "01",
        "00004",
        "79",
        "26734",
        "BTC",
        "BYT",
    ]
    no_channel = next(u for u in coverage.units if u.unit.code == "26734")
    assert no_channel.cells == ()
    assert no_channel.state == "no_channel"
    assert coverage.platforms == ("facebook", "zalo", "telegram")


def test_rollups_by_level_and_total(demo_db) -> None:  # type: ignore[no-untyped-def]
    coverage = load_coverage(demo_db.engine, demo_db.now, demo_db.directive_id)
    assert [r.key for r in coverage.levels] == ["central", "ministry", "province", "commune"]
    assert {r.key: _rollup_tuple(r) for r in coverage.levels} == EXPECTED_LEVELS
    assert coverage.level("commune") is not None
    assert coverage.level("commune").lags_s == (1800.0, 2400.0)  # type: ignore[union-attr]
    total = coverage.total
    assert _rollup_tuple(total) == (7, 4, 1, 12, 7, 58.3, 57.1, 600.0, 2400.0)
    assert dict(total.by_state) == {
        "expired": 1,
        "failed": 1,
        "needs_review": 1,
        "pending": 2,
        "sent": 7,
    }
    by_platform = {
        r.key: (
            r.units_targeted,
            r.units_reached,
            r.units_complete,
            r.targeted,
            r.sent,
            r.percent_sent,
        )
        for r in coverage.by_platform
    }
    assert by_platform == {
        "facebook": (6, 4, 4, 6, 4, 66.7),
        "zalo": (2, 1, 1, 2, 1, 50.0),
        "telegram": (3, 2, 1, 4, 2, 50.0),
    }


def test_subtree_limits_the_matrix(demo_db) -> None:  # type: ignore[no-untyped-def]
    coverage = load_coverage(demo_db.engine, demo_db.now, demo_db.directive_id, subtree_of="01")
    assert [u.unit.code for u in coverage.units] == ["01", "00004"]
    assert (coverage.total.targeted, coverage.total.sent, coverage.total.percent_sent) == (
        6,
        4,
        66.7,
    )


def test_json_is_complete_and_serialisable(demo_db) -> None:  # type: ignore[no-untyped-def]
    import json

    data = json.loads(json.dumps(load_coverage(demo_db.engine, demo_db.now).to_json()))
    assert data["total"]["percent_sent"] == 58.3
    assert data["article"]["published_at"] == "2026-11-14T02:00:00+00:00"
    cp = next(u for u in data["units"] if u["unit"] == "CP")
    assert cp["first_lag_s"] == 60.0
    assert cp["percent_sent"] == 100.0


def test_coverage_curve_is_a_staircase() -> None:
    points = coverage_curve([1800.0, 2400.0], 3, 60.0)
    assert [(m, round(p, 2)) for m, p in points] == [
        (0.0, 0.0),
        (30.0, 0.0),
        (30.0, 33.33),
        (40.0, 33.33),
        (40.0, 66.67),
        (60.0, 66.67),
    ]
    assert coverage_curve([], 0, 10.0) == [(0.0, 0.0), (10.0, 0.0)]


def test_unit_record_over_a_period(demo_db) -> None:  # type: ignore[no-untyped-def]
    t0 = demo_db.t0
    record = load_unit_record(
        demo_db.engine, "01", t0 - timedelta(days=1), t0 + timedelta(days=1), demo_db.now
    )
    assert [r.article.id for r in record.rows] == [demo_db.directive_id, demo_db.article_id]
    assert (record.targeted, record.sent, record.percent_sent) == (4, 2, 50.0)
    assert record.lags_s == (300.0, 1200.0)
    longer = load_unit_record(
        demo_db.engine, "01", t0 - timedelta(days=3), t0 + timedelta(days=1), demo_db.now
    )
    assert [r.article.id for r in longer.rows] == [
        demo_db.old_directive_id,
        demo_db.directive_id,
        demo_db.article_id,
    ]
    assert (longer.targeted, longer.sent, longer.percent_sent, longer.median_lag_s) == (
        5,
        3,
        60.0,
        300.0,
    )


def test_bad_requests_are_report_errors(demo_db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ReportError, match="no article with id 999"):
        load_coverage(demo_db.engine, demo_db.now, 999)
    with pytest.raises(ReportError, match="unknown unit"):
        load_coverage(demo_db.engine, demo_db.now, subtree_of="NOPE")
    with pytest.raises(ReportError, match="unknown unit"):
        load_unit_record(demo_db.engine, "NOPE", demo_db.t0, demo_db.now, demo_db.now)


def test_json_text_is_the_same_value_as_to_json(demo_db) -> None:  # type: ignore[no-untyped-def]
    import json

    from publisher import report_output

    coverage = load_coverage(demo_db.engine, demo_db.now)
    text = report_output.to_json_text(coverage)
    assert json.loads(text) == json.loads(json.dumps(coverage.to_json()))
    assert text.startswith('{\n  "article": {')
    record = load_unit_record(
        demo_db.engine, "01", demo_db.t0 - timedelta(days=3), demo_db.now, demo_db.now
    )
    assert json.loads(report_output.to_json_text(record)) == json.loads(
        json.dumps(record.to_json())
    )
