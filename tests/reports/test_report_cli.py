"""`publisher report coverage` and `publisher accounts check` through the real entry point."""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from report_world import build_demo_db
from sqlmodel import Session

from publisher.store.tables import ChannelAccountRow


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def publisher(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """The real entry point (`publisher.cli.main`), in-process: a subprocess per call would
    spend seconds importing matplotlib each time."""
    from publisher.cli import main

    monkeypatch.delenv("DATABASE_URL", raising=False)

    def run(home: Path, *args: str) -> Result:
        monkeypatch.setenv("PUBLISHER_HOME", str(home))
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


@pytest.fixture
def home(tmp_path: Path):  # type: ignore[no-untyped-def]
    folder = tmp_path / "home"
    folder.mkdir()
    db = build_demo_db(folder / "publisher.db")
    yield folder, db
    db.engine.dispose()


def test_json_to_stdout_matches_the_fixture(publisher, home) -> None:  # type: ignore[no-untyped-def]
    folder, db = home
    result = publisher(folder, "report", "coverage", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["article"]["id"] == db.directive_id
    assert (data["total"]["targeted"], data["total"]["sent"]) == (12, 7)
    levels = {r["key"]: r["percent_sent"] for r in data["levels"]}
    assert levels == {"central": 100.0, "ministry": 33.3, "province": 50.0, "commune": 66.7}


def test_csv_goes_to_the_reports_folder(publisher, home) -> None:  # type: ignore[no-untyped-def]
    folder, db = home
    result = publisher(folder, "report", "coverage", "--format", "csv")
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path == folder / "reports" / f"coverage-{db.directive_id}.csv"
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert len(rows) == 12  # 11 cells + the unit without a channel account
    byt_zalo = next(r for r in rows if r["unit"] == "BYT" and r["platform"] == "zalo")
    assert byt_zalo["state"] == "failed"
    assert byt_zalo["lag_min"] == ""
    cp_fb = next(r for r in rows if r["unit"] == "CP" and r["platform"] == "facebook")
    assert cp_fb["lag_min"] == "2.0"
    assert cp_fb["first_sent_at"] == "2026-11-14T09:02:00+07:00"


def test_png_and_xlsx_are_written(publisher, home, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder, _db = home
    png = tmp_path / "out" / "chart.png"
    result = publisher(folder, "report", "coverage", "--format", "png", "--output", str(png))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(png) as image:
        assert image.size[0] > 1200
    result = publisher(folder, "report", "coverage", "--format", "xlsx")
    assert result.returncode == 0, result.stderr
    from openpyxl import load_workbook

    workbook = load_workbook(result.stdout.strip())
    assert workbook.sheetnames == ["Theo cấp - levels", "Ma trận - matrix", "Chi tiết - cells"]
    levels = [list(r) for r in workbook["Theo cấp - levels"].iter_rows(values_only=True)]
    assert levels[-1][:9] == ["all", "Tổng", 7, 4, 1, 57.1, 12, 7, 58.3]


def test_table_and_unit_record(publisher, home) -> None:  # type: ignore[no-untyped-def]
    folder, _db = home
    result = publisher(folder, "report", "coverage", "--unit", "01")
    assert result.returncode == 0, result.stderr
    assert "00004" in result.stdout
    assert "BYT" not in result.stdout
    result = publisher(
        folder, "report", "coverage", "--unit", "01", "--since", "2026-11-13", "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert (record["articles"], record["targeted"], record["sent"]) == (2, 4, 2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--format", "pdf"), "--format: 'pdf' is not one of"),
        (("--article", "999"), "--article: no article with id 999"),
        (("--unit", "NOPE"), "--unit: unknown unit 'NOPE'"),
        (("--since", "2026-11-01"), "--since: needs --unit"),
        (("--unit", "01", "--since", "yesterday"), "--since: 'yesterday' is not a date"),
    ],
)
def test_bad_input_exits_2_with_one_line(publisher, home, args, message) -> None:  # type: ignore[no-untyped-def]
    folder, _db = home
    result = publisher(folder, "report", "coverage", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_no_directive_yet(publisher, tmp_path: Path) -> None:
    result = publisher(tmp_path, "report", "coverage")
    assert result.returncode == 2
    assert "no directive has been ingested yet" in result.stderr


def test_accounts_check_lists_expiring_and_failed(publisher, home) -> None:  # type: ignore[no-untyped-def]
    folder, db = home
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    with Session(db.engine) as session:
        soon = session.get(ChannelAccountRow, "01.facebook")
        later = session.get(ChannelAccountRow, "79.facebook")
        failed = session.get(ChannelAccountRow, "BYT.zalo")
        assert soon is not None
        assert later is not None
        assert failed is not None
        soon.token_expires_at = now + timedelta(days=3)
        later.token_expires_at = now + timedelta(days=30)
        failed.status = "auth_failed"
        failed.status_reason = "OAuthException 190: token revoked by the user"
        session.add_all([soon, later, failed])
        session.commit()
    result = publisher(folder, "accounts", "check", "--json")
    assert result.returncode == 0, result.stderr
    problems = {(p["account"], p["problem"]) for p in json.loads(result.stdout)["problems"]}
    assert problems == {("01.facebook", "expiring"), ("BYT.zalo", "revoked")}
    wider = publisher(folder, "accounts", "check", "--json", "--horizon-days", "60")
    problems = {(p["account"], p["problem"]) for p in json.loads(wider.stdout)["problems"]}
    assert ("79.facebook", "expiring") in problems
    table = publisher(folder, "accounts", "check")
    assert table.returncode == 0, table.stderr
    assert "01.facebook" in table.stdout


def test_report_receipts_lists_what_channels_said_beside_sent_posts(  # type: ignore[no-untyped-def]
    publisher, home, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    from publisher.store.delivery_sql import D

    folder, db = home
    quota = {
        "severity": "warning",
        "code": "broadcast_quota_used",
        "message": "Đã dùng hết 4 lượt broadcast của gói OA (monthly broadcast quota used up)",
    }
    sent_id = {"severity": "info", "code": "broadcast_sent", "message": "Đã broadcast (sent)"}
    with db.engine.begin() as conn:
        ids = list(
            conn.execute(
                sa.select(D.c.id).where(D.c.state == "sent").order_by(D.c.id).limit(2)
            ).scalars()
        )
        assert len(ids) == 2
        conn.execute(sa.update(D).where(D.c.id == ids[0]).values(receipt_notes=[quota]))
        conn.execute(sa.update(D).where(D.c.id == ids[1]).values(receipt_notes=[sent_id]))
    every = publisher(folder, "report", "receipts", "--since", "2000-01-01", "--format", "json")
    assert every.returncode == 0, every.stderr
    listed = json.loads(every.stdout)["deliveries"]
    assert sorted(d["delivery_id"] for d in listed) == ids
    warnings = publisher(
        folder, "report", "receipts", "--since", "2000-01-01", "--warnings", "--format", "json"
    )
    assert [d["delivery_id"] for d in json.loads(warnings.stdout)["deliveries"]] == [ids[0]]
    monkeypatch.setenv("COLUMNS", "250")  # one line a note
    table = publisher(folder, "report", "receipts", "--since", "2000-01-01", "--warnings")
    assert table.returncode == 0, table.stderr
    assert "cảnh báo · warning" in table.stdout
    assert "broadcast_quota_used: Đã dùng hết 4 lượt broadcast" in table.stdout
    # the last 7 days by default: the demo's sends are older
    assert (
        json.loads(publisher(folder, "report", "receipts", "--format", "json").stdout)["deliveries"]
        == []
    )
    for args, message in (
        (("--since", "2026-12-01", "--until", "2026-11-01"), "is not before"),
        (("--since", "hôm qua"), "--since: 'hôm qua' is not a date"),
        (("--format", "csv"), "--format: 'csv' is not one of table, json"),
    ):
        bad = publisher(folder, "report", "receipts", *args)
        assert bad.returncode == 2, args
        assert message in bad.stderr
        assert "Traceback" not in bad.stderr
