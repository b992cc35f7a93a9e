"""The directives overview (`publisher report directives`) against a store counted by hand
(directives_world.py), on SQLite and PostgreSQL: every figure, scope, archiving, formats
and bad input."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from directives_world import USERS, DirectivesWorld, build_directives_world, local
from pg import fresh_schema, postgres_url, schema_url

from publisher.domain import DeliveryState, User
from publisher.report_directives import (
    STATE_GROUPS,
    DirectiveFacts,
    DirectivesOverview,
    compute_overview,
    load_overview,
    p95,
)
from publisher.reports import ArticleInfo, ReportError, load_coverage
from publisher.store.archive import DELIVERY, DELIVERY_ARCHIVE, archive_finished
from publisher.store.engine import make_engine, sqlite_url, upgrade

SINCE = local("2026-11-10T00:00")
UNTIL = local("2026-11-15T00:00")  # --until 2026-11-14: that whole day included
NOW = local("2026-11-20T12:00")
ARCHIVE_NOW = datetime(2028, 1, 1, tzinfo=UTC)  # every finished delivery is over a year old

# units targeted, reached, channels planned, sent, attention, on the way, cancelled,
# withdrawn, to withdraw, median lag s, p95 lag s (+ recalled, for a directive)
EXPECTED: dict[tuple[str, str | None], dict[str, tuple[Any, ...]]] = {
    ("admin", None): {
        "D4": (5, 3, 7, 4, 1, 2, 0, 0, 0, 570.0, 3600.0, False),
        "D3": (4, 2, 4, 2, 0, 0, 2, 1, 2, 180.0, 300.0, True),
        "D2": (6, 3, 6, 3, 2, 1, 0, 0, 0, 600.0, 1800.0, True),
        "total": (15, 8, 17, 9, 3, 3, 2, 1, 2, 300.0, 3600.0),
    },
    ("hanoi", None): {
        "D4": (2, 2, 3, 2, 0, 1, 0, 0, 0, 2250.0, 3600.0, False),
        "D3": (2, 1, 2, 1, 0, 0, 1, 0, 1, 300.0, 300.0, True),
        "D2": (2, 2, 3, 2, 1, 0, 0, 0, 0, 1200.0, 1800.0, False),
        "total": (6, 5, 8, 5, 1, 1, 1, 0, 1, 900.0, 3600.0),
    },
    ("admin", "79"): {
        "D4": (2, 0, 2, 0, 1, 1, 0, 0, 0, None, None, False),
        "D3": (1, 0, 1, 0, 0, 0, 1, 0, 0, None, None, True),
        "D2": (2, 0, 2, 0, 1, 1, 0, 0, 0, None, None, True),
        "total": (5, 0, 5, 0, 2, 2, 1, 0, 0, None, None),
    },
    ("hanoi", "00004"): {
        "D4": (1, 1, 2, 1, 0, 1, 0, 0, 0, 3600.0, 3600.0, False),
        "D3": (1, 0, 1, 0, 0, 0, 1, 0, 0, None, None, True),
        "D2": (1, 1, 1, 1, 0, 0, 0, 0, 0, 1800.0, 1800.0, False),
        "total": (3, 2, 4, 2, 0, 1, 1, 0, 0, 2700.0, 3600.0),
    },
}


def user(name: str) -> User:
    return next(u for u in USERS if u.username == name)


def figures(overview: DirectivesOverview, world: DirectivesWorld) -> dict[str, tuple[Any, ...]]:
    names = {article_id: key for key, article_id in world.ids.items()}

    def counts(p: Any) -> tuple[Any, ...]:
        return (
            p.units_targeted,
            p.units_reached,
            p.planned,
            p.sent,
            p.attention,
            p.in_progress,
            p.cancelled,
            p.withdrawn,
            p.withdrawal_channels,
            p.median_lag_s,
            p.p95_lag_s,
        )

    seen = {names[r.article.id]: (*counts(r.progress), r.recalled) for r in overview.rows}
    seen["total"] = counts(overview.total)
    return seen


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DirectivesWorld]:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "publisher.db")
        upgrade(url)
        engine = make_engine(url)
        yield build_directives_world(engine, url)
        engine.dispose()
        return
    url = postgres_url()
    with fresh_schema(url) as (engine, schema):
        upgrade(schema_url(url, schema))
        yield build_directives_world(engine, schema_url(url, schema))


# --- pure parts ---------------------------------------------------------------------------


def test_every_delivery_state_falls_in_one_group() -> None:
    assert set(STATE_GROUPS) == {s.value for s in DeliveryState}
    assert set(STATE_GROUPS.values()) == {"sent", "attention", "in_progress", "cancelled"}


def test_p95_is_the_nearest_rank() -> None:
    assert p95([]) is None
    assert p95([7.0]) == 7.0
    assert p95([float(n) for n in range(1, 21)]) == 19.0  # rank ceil(0.95 × 20) = 19
    assert p95([float(n) for n in range(1, 22)]) == 20.0  # rank ceil(19.95) = 20
    assert p95([float(n) for n in range(1, 101)]) == 95.0


def test_a_state_the_report_does_not_know_is_refused_not_ignored() -> None:
    article = ArticleInfo(1, "Chỉ đạo", "directive", SINCE)
    facts = DirectiveFacts({1: {"sent": 1, "lost": 2}}, {1: 1}, {1: 1}, {}, {}, frozenset())
    with pytest.raises(ReportError, match="'lost'"):
        compute_overview([article], facts, SINCE, UNTIL, NOW, "admin")


# --- the store ----------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "unit"), list(EXPECTED))
def test_every_figure_matches_the_hand_count(
    world: DirectivesWorld, who: str, unit: str | None
) -> None:
    overview = load_overview(world.engine, SINCE, UNTIL, NOW, user(who), unit)
    assert [r.article.id for r in overview.rows] == [world.ids[k] for k in ("D4", "D3", "D2")]
    assert figures(overview, world) == EXPECTED[who, unit]


def test_coverage_percent_and_the_totals_line(world: DirectivesWorld) -> None:
    overview = load_overview(world.engine, SINCE, UNTIL, NOW, user("admin"))
    assert [r.progress.percent_units_reached for r in overview.rows] == [60.0, 50.0, 50.0]
    assert overview.total.percent_units_reached == 53.3
    for row in (*overview.rows, None):
        p = row.progress if row else overview.total
        assert p.sent + p.attention + p.in_progress + p.cancelled == p.planned


def test_each_row_agrees_with_the_coverage_report(world: DirectivesWorld) -> None:
    for who, subtree in (("admin", None), ("hanoi", "01")):
        overview = load_overview(world.engine, SINCE, UNTIL, NOW, user(who))
        for row in overview.rows:
            total = load_coverage(world.engine, NOW, row.article.id, subtree_of=subtree).total
            p = row.progress
            assert (p.units_targeted, p.units_reached, p.planned, p.sent) == (
                total.units_targeted,
                total.units_reached,
                total.targeted,
                total.sent,
            )
            assert p.median_lag_s == total.median_lag_s


def test_the_period_is_local_days_with_both_ends_included(world: DirectivesWorld) -> None:
    admin = user("admin")
    keys = {v: k for k, v in world.ids.items()}

    def period(since: str, until: str) -> list[str]:
        start, end = local(f"{since}T00:00"), local(f"{until}T00:00") + timedelta(days=1)
        return [
            keys[r.article.id] for r in load_overview(world.engine, start, end, NOW, admin).rows
        ]

    assert period("2026-11-14", "2026-11-14") == ["D4"]
    assert period("2026-11-14", "2026-11-15") == ["D5", "D4"]  # D5: 00:00 on the 15th
    assert period("2026-10-01", "2026-11-30") == ["D5", "D4", "D3", "D2", "D1"]
    assert period("2025-01-01", "2025-01-31") == []


def test_archived_rows_count_the_same(world: DirectivesWorld) -> None:
    cases = [(who, unit) for who, unit in EXPECTED]
    before = {c: load_overview(world.engine, SINCE, UNTIL, NOW, user(c[0]), c[1]) for c in cases}
    result = archive_finished(world.engine, ARCHIVE_NOW, timedelta(days=30))
    with world.engine.connect() as conn:
        archived = set(conn.execute(sa.select(DELIVERY_ARCHIVE.c.article_id)).scalars())
    # Sent, failed, expired and cancelled rows of D2 and D4 moved; recalled ones stayed hot.
    assert result.deliveries >= 8
    assert {world.ids["D2"], world.ids["D4"]} <= archived
    for case in cases:
        after = load_overview(world.engine, SINCE, UNTIL, NOW, user(case[0]), case[1])
        assert after == before[case], case
        assert figures(after, world) == EXPECTED[case]


def test_scope_errors_are_clear(world: DirectivesWorld) -> None:
    with pytest.raises(ReportError, match="--unit 79: outside the units hanoi may see"):
        load_overview(world.engine, SINCE, UNTIL, NOW, user("hanoi"), "79")
    with pytest.raises(ReportError, match="--unit: unknown unit 'ZZ'"):
        load_overview(world.engine, SINCE, UNTIL, NOW, user("admin"), "ZZ")
    with pytest.raises(ReportError, match="ghost holds no role"):
        load_overview(world.engine, SINCE, UNTIL, NOW, user("ghost"))


# --- the command --------------------------------------------------------------------------


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(
    world: DirectivesWorld,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Any]:
    """`publisher …` in-process over the world's database, in the sandbox (so `--as` works)."""
    from publisher.cli import main

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("PUBLISHER_HOME", str(home))
    monkeypatch.setenv("DATABASE_URL", world.url)
    monkeypatch.setenv("PUBLISHER_SANDBOX_URL", "http://127.0.0.1:9")

    def run(*args: str) -> Result:
        monkeypatch.setattr(sys, "argv", ["publisher", *args])
        capsys.readouterr()
        code = 0
        try:
            main()
        except SystemExit as done:
            code = int(done.code or 0)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


PERIOD = ("--since", "2026-11-10", "--until", "2026-11-14")


def test_json_on_stdout(cli: Any, world: DirectivesWorld) -> None:
    result = cli("report", "directives", *PERIOD, "--as", "hanoi", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["since"], data["until"]) == (
        "2026-11-10T00:00:00+07:00",
        "2026-11-15T00:00:00+07:00",
    )
    assert data["scope"] == "hanoi: 01 +"
    assert [d["article"] for d in data["directives"]] == [world.ids[k] for k in ("D4", "D3", "D2")]
    d3 = data["directives"][1]
    assert d3["published_at"] == "2026-11-13T09:00:00+07:00"
    assert (d3["recalled"], d3["cancelled"], d3["withdrawn"], d3["withdrawal_channels"]) == (
        True,
        1,
        0,
        1,
    )
    assert data["total"] == {
        "directives": 3,
        "units_targeted": 6,
        "units_reached": 5,
        "percent_units_reached": 83.3,
        "channels_planned": 8,
        "sent": 5,
        "attention": 1,
        "in_progress": 1,
        "cancelled": 1,
        "withdrawn": 0,
        "withdrawal_channels": 1,
        "median_lag_s": 900.0,
        "p95_lag_s": 3600.0,
    }


def test_csv_and_xlsx_files_with_the_totals_line(
    cli: Any, world: DirectivesWorld, tmp_path: Path
) -> None:
    result = cli("report", "directives", *PERIOD, "--as", "admin", "--format", "csv")
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path == tmp_path / "home" / "reports" / "directives-20261110-20261114.csv"
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert [r["article_id"] for r in rows] == [str(world.ids[k]) for k in ("D4", "D3", "D2")] + [""]
    assert rows[0]["published_at"] == "2026-11-14T09:00:00+07:00"
    assert (rows[0]["median_lag_min"], rows[0]["p95_lag_min"]) == ("9.5", "60.0")
    total = rows[-1]
    assert total["title"].startswith("Tổng · total (3")
    assert (total["units_targeted"], total["units_reached"], total["percent_units_reached"]) == (
        "15",
        "8",
        "53.3",
    )
    assert (total["channels_planned"], total["sent"], total["attention"]) == ("17", "9", "3")

    from openpyxl import load_workbook

    target = tmp_path / "out" / "overview.xlsx"
    result = cli(
        "report",
        "directives",
        *PERIOD,
        "--as",
        "admin",
        "--format",
        "xlsx",
        "--output",
        str(target),
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == target
    sheet = load_workbook(target)["Chỉ đạo - directives"]
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][:3] == ["Mã · id", "Ban hành · published (+07)", "Tiêu đề · title"]
    assert [v[0] for v in values[1:]] == [world.ids[k] for k in ("D4", "D3", "D2")] + [None]
    assert values[2][3] == "yes"  # D3 was recalled
    assert values[-1][4:12] == [15, 8, 53.3, 17, 9, 3, 3, 2]


@pytest.mark.parametrize("columns", ["80", "140"])
def test_table_names_the_period_scope_titles_and_totals(
    cli: Any, monkeypatch: pytest.MonkeyPatch, columns: str
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    result = cli("report", "directives", *PERIOD, "--as", "hanoi")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "2026-11-10 → 2026-11-14" in lines[0]
    assert "hanoi: 01 +" in lines[1]
    assert max(len(line) for line in lines) <= int(columns)
    d3 = next(line for line in lines if "↩ Chỉ đạo D3" in line)  # recalled
    total = next(line for line in lines if line.lstrip().startswith(("Tổng · total", "Σ ")))
    assert total.split()[-9:] == ["5/6", "83%", "8", "5", "1", "1", "1", "0/1", "15m/1h00m"]
    if columns == "140":  # one line a directive, its title in the table
        assert d3.split()[-9:] == ["1/2", "50%", "2", "1", "0", "0", "1", "0/1", "5m/5m"]
        assert "Tổng · total (3)" in total
    else:  # the titles listed above the table, the table by id
        assert d3.startswith("#")
        assert "Σ: Tổng · total (3)" in result.stdout


def test_default_period_is_the_last_30_days(cli: Any) -> None:
    result = cli("report", "directives", "--as", "admin", "--format", "json")
    assert result.returncode == 0, result.stderr
    from publisher.domain import VIETNAM_TZ

    today = datetime.now(VIETNAM_TZ).date()
    if result.stdout.startswith("{"):
        data = json.loads(result.stdout)
        assert data["since"] == f"{today - timedelta(days=29)}T00:00:00+07:00"
    else:  # the world's directives are from November 2026: nothing may be that recent
        assert f"{today - timedelta(days=29)} → {today}" in result.stdout


def test_an_empty_period_says_so_and_succeeds(cli: Any, tmp_path: Path) -> None:
    result = cli(
        "report",
        "directives",
        "--since",
        "2025-01-01",
        "--until",
        "2025-01-31",
        "--as",
        "admin",
        "--format",
        "csv",
    )
    assert result.returncode == 0, result.stderr
    assert "no directive was published in 2025-01-01 → 2025-01-31" in result.stdout
    assert not (tmp_path / "home" / "reports").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "2026-13-01"), "--since: '2026-13-01' is not a date (YYYY-MM-DD)"),
        (("--until", "14/11/2026"), "--until: '14/11/2026' is not a date (YYYY-MM-DD)"),
        (
            ("--since", "2026-11-14", "--until", "2026-11-10"),
            "--until: 2026-11-10 is before --since 2026-11-14",
        ),
        (("--since", "2999-01-01"), "--since: 2999-01-01 is after today ("),
        (("--format", "png"), "--format: 'png' is not one of table, csv, xlsx, json"),
        (("--unit", "79", "--as", "hanoi"), "--unit 79: outside the units hanoi may see"),
        (("--unit", "ZZ"), "--unit: unknown unit 'ZZ'"),
        (("--as", "ghost"), "ghost holds no role at any unit: there is nothing to report"),
        (("--as", "nobody"), "--as nobody: no such publisher user"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli: Any, args: tuple[str, ...], message: str) -> None:
    if "--as" not in args:
        args = (*args, "--as", "admin")
    result = cli("report", "directives", *args)
    assert result.returncode == 2
    assert result.stderr.strip() == message or (
        message.endswith("(") and result.stderr.startswith(message)  # today's date follows
    )
    assert len(result.stderr.strip().splitlines()) == 1


def _plain_facts(
    world: DirectivesWorld, who: str, unit: str | None, ids: list[int]
) -> dict[str, Any]:
    """What `_facts` reads from the deliveries, read the obvious way: every row of both
    tables in Python, each unit tested against the user's scope and the --unit subtree."""
    from publisher.views import Views

    scope = Views(world.engine).scope_for(user(who))
    with world.engine.connect() as conn:
        paths = dict(conn.execute(sa.text("SELECT code, path FROM unit")).all())
        rows = [
            r
            for table in (DELIVERY, DELIVERY_ARCHIVE)
            for r in conn.execute(
                sa.select(table.c.article_id, table.c.unit_code, table.c.state, table.c.sent_at)
            )
        ]
        posts = list(conn.execute(sa.text("SELECT article_id, unit_code FROM post")))

    def shown(code: str) -> bool:
        visible = (
            scope.everything
            or code in scope.single_codes
            or any(paths[code].startswith(p) for p in scope.subtree_paths)
        )
        return visible and (unit is None or paths[code].startswith(paths[unit]))

    states: dict[int, dict[str, int]] = {}
    reached: dict[int, set[str]] = {}
    times: dict[int, list[float]] = {}
    for article_id, code, state, sent_at in rows:
        if article_id not in ids or not shown(code):
            continue
        by_state = states.setdefault(article_id, {})
        by_state[state] = by_state.get(state, 0) + 1
        if state == DeliveryState.SENT.value:
            reached.setdefault(article_id, set()).add(code)
            if sent_at is not None:
                times.setdefault(article_id, []).append(sent_at.timestamp())
    targeted: dict[int, int] = {}
    for article_id, code in posts:
        if article_id in ids and shown(code):
            targeted[article_id] = targeted.get(article_id, 0) + 1
    return {
        "states": states,
        "units_targeted": targeted,
        "units_reached": {a: len(u) for a, u in reached.items()},
        "sent_at_s": {a: sorted(t) for a, t in times.items()},
    }


def _move_to_archive(world: DirectivesWorld, delivery_id: int) -> None:
    """One delivery into the archive by hand (the world's deliveries have no attempts)."""
    columns = [c.name for c in DELIVERY.columns]
    with world.engine.begin() as conn:
        conn.execute(
            DELIVERY_ARCHIVE.insert().from_select(
                [*columns, "archived_at"],
                sa.select(
                    *DELIVERY.c, sa.literal(ARCHIVE_NOW, DELIVERY_ARCHIVE.c.archived_at.type)
                ).where(DELIVERY.c.id == delivery_id),
            )
        )
        conn.execute(DELIVERY.delete().where(DELIVERY.c.id == delivery_id))


def test_the_store_facts_match_a_plain_reading(world: DirectivesWorld) -> None:
    """Hot only; one unit's sent deliveries split between the tables; most archived: the
    grouped reads of each table, merged, say what one pass over every row says."""
    from publisher.report_directives import _facts, _unit_condition
    from publisher.views import Views

    ids = [world.ids[k] for k in ("D1", "D2", "D3", "D4", "D5")]
    with world.engine.connect() as conn:
        sent = conn.execute(
            sa.select(DELIVERY.c.id, DELIVERY.c.article_id, DELIVERY.c.unit_code)
            .where(DELIVERY.c.state == DeliveryState.SENT.value, DELIVERY.c.article_id.in_(ids))
            .order_by(DELIVERY.c.id)
        ).all()
    by_pair: dict[tuple[int, str], list[int]] = {}
    for delivery_id, article_id, code in sent:
        by_pair.setdefault((article_id, code), []).append(delivery_id)
    split = next(d for d in by_pair.values() if len(d) >= 2)  # a unit with two sent
    for stage in ("hot", "split", "archived"):
        if stage == "split":
            _move_to_archive(world, split[0])
        if stage == "archived":
            assert archive_finished(world.engine, ARCHIVE_NOW, timedelta(days=30)).deliveries
        for who, unit in EXPECTED:
            scope = Views(world.engine).scope_for(user(who))
            with world.engine.connect() as conn:
                facts = _facts(conn, ids, _unit_condition(conn, scope, who, unit))
            plain = _plain_facts(world, who, unit, ids)
            assert {a: dict(s) for a, s in facts.states.items() if s} == plain["states"]
            assert dict(facts.units_targeted) == plain["units_targeted"]
            assert {a: n for a, n in facts.units_reached.items() if n} == plain["units_reached"]
            got = {a: sorted(t) for a, t in facts.sent_at_s.items() if t}
            assert got.keys() == plain["sent_at_s"].keys(), (stage, who, unit)
            for article_id, seconds in got.items():
                assert seconds == pytest.approx(plain["sent_at_s"][article_id], abs=1e-3)
    with world.engine.connect() as conn:
        hot = set(conn.execute(sa.select(DELIVERY.c.article_id, DELIVERY.c.unit_code)).all())
        cold = set(
            conn.execute(
                sa.select(DELIVERY_ARCHIVE.c.article_id, DELIVERY_ARCHIVE.c.unit_code)
            ).all()
        )
    assert hot & cold, "some unit should have deliveries in both tables at the end"
