"""`publisher units import` as an operator runs it, through the real entry point (issue 13).

Expected counts come from the pinned package itself, never from a number typed here.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from vietnam_provinces import Province, Ward

from publisher.settings import load_config

PROVINCES = len(list(Province.iter_all()))
COMMUNES = len(list(Ward.iter_all()))
SAMPLE = Path(__file__).resolve().parents[2] / "config"


def publisher(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PUBLISHER_SANDBOX_URL")
    }
    env["PUBLISHER_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-c", "from publisher.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def scalar(home: Path, query: str) -> object:
    with sqlite3.connect(home / "publisher.db") as db:
        return db.execute(query).fetchone()[0]


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """A working folder with a post and a delivery at a sample commune, then imported."""
    home = tmp_path_factory.mktemp("national")
    assert publisher(home, "init").returncode == 0
    with sqlite3.connect(home / "publisher.db") as db:
        db.execute(
            "INSERT INTO article (id, guid, url, canonical_url, content_hash, title, "
            "published_at, images, kind, unit_code, created_at, routed, urgent, language, "
            "summary, body_html, body_text, source_name, backlog) VALUES (1, 'g', 'u', 'u', "
            "'h', 'Chỉ đạo', '2026-11-24 02:00:00', '[]', 'directive', 'CP', "
            "'2026-11-24 02:00:00', 1, 0, 'vi', '', '', '', '', 0)"
        )
        db.execute(
            "INSERT INTO post (id, article_id, unit_code, state, priority, approvals, lead_in, "
            "created_at, updated_at) VALUES (1, 1, 'S01001', 'approved', 0, '[]', '', "
            "'2026-11-24 02:00:00', '2026-11-24 02:00:00')"
        )
        db.execute(
            "INSERT INTO delivery (post_id, article_id, unit_code, account_id, platform, state, "
            "due_at, priority, attempt, created_at, updated_at) VALUES (1, 1, 'S01001', "
            "'S01001.facebook', 'facebook', 'pending', '2026-11-24 02:00:00', 0, 0, "
            "'2026-11-24 02:00:00', '2026-11-24 02:00:00')"
        )
    result = publisher(home, "units", "import", "--json", "--as", "admin")
    assert result.returncode == 0, result.stderr
    return home, json.loads(result.stdout)


def test_import_brings_every_province_and_commune_of_the_package(
    imported: tuple[Path, dict[str, object]],
) -> None:
    home, report = imported
    assert report["provinces_imported"] == PROVINCES
    assert report["communes"] == COMMUNES
    assert report["problems"] == []
    config = load_config(home / "config")
    communes = [u for u in config.units if u.code_list == "QD19/2025" and u.kind == "commune"]
    provinces = [u for u in config.units if u.kind == "province"]
    assert len(communes) == COMMUNES
    assert len(provinces) == PROVINCES
    assert {u.parent_code for u in communes} == {u.code for u in provinces}
    assert all(len(u.code) == 5 and u.code.isdigit() for u in communes)
    assert all(unicodedata.is_normalized("NFC", u.name) for u in config.units)
    hoan_kiem = next(u for u in communes if u.name == "Phường Hoàn Kiếm")
    assert hoan_kiem.parent_code == "01"
    assert scalar(home, "SELECT count(*) FROM unit WHERE kind = 'commune' AND active") == COMMUNES


def test_sample_communes_are_replaced_and_old_rows_stay_valid(
    imported: tuple[Path, dict[str, object]],
) -> None:
    home, report = imported
    replaced = report["samples_replaced"]
    assert isinstance(replaced, dict)
    official = replaced["S01001"]
    assert scalar(home, "SELECT name FROM unit WHERE code = '" + official + "'") == (
        "Phường Hoàn Kiếm"
    )
    # The sample unit stays (the post and delivery point at it), inactive and merged.
    assert scalar(home, "SELECT active FROM unit WHERE code = 'S01001'") == 0
    assert scalar(home, "SELECT merged_into FROM unit WHERE code = 'S01001'") == official
    assert scalar(home, "SELECT unit_code FROM post WHERE id = 1") == "S01001"
    assert scalar(home, "SELECT unit_code FROM channel_account WHERE id = 'S01001.facebook'") == (
        official
    )
    assert (
        scalar(home, "SELECT unit_code FROM role_grant WHERE username = 'duyet.hoankiem'")
        == official
    )
    with sqlite3.connect(home / "publisher.db") as db:
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_config_check_passes_afterwards(imported: tuple[Path, dict[str, object]]) -> None:
    home, report = imported
    check = publisher(home, "config", "check")
    assert check.returncode == 0, check.stderr
    assert f"{report['units_total']} units" in check.stdout
    assert "replaced by official ones" in check.stdout


def test_running_again_changes_nothing(imported: tuple[Path, dict[str, object]]) -> None:
    home, first = imported
    path = home / "config" / "units-national.toml"
    before = path.read_bytes()
    units = scalar(home, "SELECT count(*) FROM unit")
    again = publisher(home, "units", "import", "--json", "--as", "admin")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["changed"] is False
    assert report["units_total"] == first["units_total"]
    assert path.read_bytes() == before
    assert scalar(home, "SELECT count(*) FROM unit") == units
    # Both runs were audited.
    assert scalar(home, "SELECT count(*) FROM audit_event WHERE action = 'units_import'") == 2


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    assert publisher(tmp_path, "init").returncode == 0
    units = scalar(tmp_path, "SELECT count(*) FROM unit")
    events = scalar(tmp_path, "SELECT count(*) FROM audit_event")
    result = publisher(tmp_path, "units", "import", "--dry-run", "--json", "--as", "admin")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dry_run"] is True
    assert report["communes"] == COMMUNES
    assert not (tmp_path / "config" / "units-national.toml").exists()
    assert sorted(p.name for p in (tmp_path / "config").iterdir()) == sorted(
        p.name for p in SAMPLE.glob("*.toml")
    )
    assert scalar(tmp_path, "SELECT count(*) FROM unit") == units
    assert scalar(tmp_path, "SELECT count(*) FROM audit_event") == events


@pytest.mark.parametrize("user", ["quantri.quangninh", "bientap.cp", "duyet.hanoi"])
def test_only_a_root_admin_may_import(tmp_path: Path, user: str) -> None:
    assert publisher(tmp_path, "init").returncode == 0
    result = publisher(tmp_path, "units", "import", "--as", user)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f'{user} may not import units: only an admin of the root unit "CP" (with its subtree) may'
    ]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "config" / "units-national.toml").exists()
    assert scalar(tmp_path, "SELECT count(*) FROM unit") == 64
    assert scalar(tmp_path, "SELECT action FROM audit_event ORDER BY seq DESC") == "refused"


def test_unknown_province_is_one_line_and_exit_2(tmp_path: Path) -> None:
    assert publisher(tmp_path, "init").returncode == 0
    result = publisher(tmp_path, "units", "import", "--province", "02", "--as", "admin")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("--province 02: not a province in QD19/2025")
    assert not (tmp_path / "config" / "units-national.toml").exists()
