"""`publisher archive` through the real entry point: JSON, dry run, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_setup_commands import publisher


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("archive-home")
    assert publisher(folder, "init").returncode == 0
    return folder


def test_dry_run_and_run_print_json(home: Path) -> None:
    dry = publisher(home, "archive", "--older-than", "30", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    figures = json.loads(dry.stdout)
    assert figures["dry_run"] is True
    assert (figures["deliveries"], figures["attempts"]) == (0, 0)
    done = publisher(home, "archive", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["batches"] == 0
    text = publisher(home, "archive", "--older-than", "7")
    assert text.returncode == 0, text.stderr
    assert "moved 0 deliveries" in text.stdout


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--older-than", "-1"], "--older-than"),
        (["--batch", "0"], "--batch"),
        (["--older-than", "soon"], "--older-than"),
        (["--batch", "many"], "--batch"),
        (["--nope"], "--nope"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(home: Path, args: list[str], option: str) -> None:
    result = publisher(home, "archive", *args)
    assert result.returncode == 2
    assert option in result.stderr
    assert "Traceback" not in result.stderr
