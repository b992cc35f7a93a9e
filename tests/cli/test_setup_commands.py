"""`init`, `config check` and `status` as a new user runs them, through the real entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "config"


def publisher(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PUBLISHER_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-c", "from publisher.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("home")
    first = publisher(folder, "init")
    assert first.returncode == 0, first.stderr
    return folder


def test_init_twice_keeps_edits_and_succeeds(home: Path) -> None:
    users = home / "config" / "users.toml"
    users.write_text(users.read_text(encoding="utf-8") + "\n# local edit\n", encoding="utf-8")
    again = publisher(home, "init")
    assert again.returncode == 0, again.stderr
    assert "# local edit" in users.read_text(encoding="utf-8")


def test_config_check_passes_on_the_sample(home: Path) -> None:
    result = publisher(home, "config", "check")
    assert result.returncode == 0, result.stderr
    assert "34" not in result.stderr
    assert "units" in result.stdout


def test_status_json_is_zero_on_a_new_database(tmp_path: Path) -> None:
    result = publisher(tmp_path / "fresh", "status", "--json")
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    assert counts["articles"] == 0
    assert counts["deliveries"]["pending"] == 0
    assert counts["deliveries"]["needs_review"] == 0
    assert set(counts["posts"]) == {
        "awaiting_approval",
        "approved",
        "rejected",
        "cancelled",
        "recalled",
    }
    assert all(n == 0 for n in counts["deliveries"].values())
    assert counts["deliveries_archived"] == dict.fromkeys(counts["deliveries"], 0)
    assert all(n == 0 for n in counts["posts"].values())
    assert counts["withdrawals"] == {
        "pending": 0,
        "claimed": 0,
        "withdrawing": 0,
        "withdrawn": 0,
        "needs_manual_removal": 0,
        "failed": 0,
        "not_sent": 0,
    }


BROKEN = [
    ("units.toml", 'short_name = "Hà Nội"', "short_name = 5", "units.toml: unit[18].short_name:"),
    (
        "units.toml",
        'kind = "central"',
        'kind = "central"\ncolour = "red"',
        "units.toml: unit[0].colour: unknown key",
    ),
    (
        "units.toml",
        '[[unit]]\ncode = "BCA"',
        '[[unit]]\ncode = "BQP"\nname = "Trùng mã"\nkind = "ministry"\nparent = "CP"\n\n'
        '[[unit]]\ncode = "BCA"',
        'units.toml: unit[2].code: duplicate code "BQP" (first at unit[1])',
    ),
    (
        "units.toml",
        'parent = "CP"\ncode_list = "internal"\n\n[[unit]]\ncode = "BCA"\n'
        'name = "Bộ Công an"\nkind = "ministry"\nparent = "CP"',
        'parent = "BCA"\ncode_list = "internal"\n\n[[unit]]\ncode = "BCA"\n'
        'name = "Bộ Công an"\nkind = "ministry"\nparent = "BQP"',
        "units.toml: unit[1].parent: cycle in the unit tree: BQP → BCA → BQP",
    ),
    (
        "accounts.toml",
        'unit = "BYT"',
        'unit = "XYZ"',
        'accounts.toml: account[32].unit: unknown unit "XYZ"',
    ),
    (
        "accounts.toml",
        'credentials = "store:"',
        'credentials = "EAAG-secret-token"',
        "accounts.toml: account[0].credentials: Value error, must be a reference",
    ),
]


@pytest.mark.parametrize(("file", "old", "new", "expected"), BROKEN)
def test_each_bad_configuration_gives_one_clear_line(
    tmp_path: Path, file: str, old: str, new: str, expected: str
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    for sample in SAMPLE.glob("*.toml"):
        (config / sample.name).write_text(sample.read_text(encoding="utf-8"), encoding="utf-8")
    path = config / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    result = publisher(tmp_path, "config", "check")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(expected), lines[0]
    assert "Traceback" not in result.stderr
