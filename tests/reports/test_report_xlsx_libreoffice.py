"""The XLSX opens in LibreOffice: convert every sheet headless to CSV and check the cells."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import pytest

from publisher.report_output import write_coverage_xlsx
from publisher.reports import load_coverage

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
# Field sep ",", text delimiter '"', UTF-8 (76), first line 1, …, sheet -1: every sheet.
CSV_FILTER = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"


@pytest.mark.skipif(
    SOFFICE is None,
    reason="LibreOffice is not installed (apt-get install libreoffice-calc-nogui); "
    "openpyxl's own reading is checked in test_report_cli.py",
)
def test_libreoffice_reads_every_sheet(demo_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert SOFFICE is not None
    xlsx = write_coverage_xlsx(load_coverage(demo_db.engine, demo_db.now), tmp_path / "cov.xlsx")
    out = tmp_path / "csv"
    profile = (tmp_path / "lo-profile").as_uri()  # a private profile: no clash with others
    result = subprocess.run(
        [
            SOFFICE,
            f"-env:UserInstallation={profile}",
            "--headless",
            "--convert-to",
            CSV_FILTER,
            "--outdir",
            str(out),
            str(xlsx),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr

    def sheet(name: str) -> list[dict[str, str]]:
        path = out / f"cov-{name}.csv"
        assert path.exists(), f"LibreOffice wrote {sorted(p.name for p in out.iterdir())}"
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))

    levels = {r["level"]: r for r in sheet("Theo cấp - levels")}
    assert levels["commune"]["label"] == "Xã, phường, đặc khu"
    assert levels["ministry"]["percent_sent"] == "33.3"
    assert (levels["all"]["deliveries_targeted"], levels["all"]["deliveries_sent"]) == ("12", "7")
    assert levels["province"]["median_lag_min"] == "12.5"
    matrix = {r["unit"]: r for r in sheet("Ma trận - matrix")}
    assert matrix["00004"]["telegram"] == "partial 40m"
    assert matrix["26734"]["facebook"] == ""
    cells = sheet("Chi tiết - cells")
    assert len(cells) == 12
    byt = next(r for r in cells if r["unit"] == "BYT" and r["platform"] == "zalo")
    assert (byt["state"], byt["waiting_min"]) == ("failed", "60")
