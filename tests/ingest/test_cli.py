"""`publisher ingest`: dry-run JSON output, clear errors, storing into the working folder."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from publisher.cli import main

CORPUS = Path(__file__).parent / "corpus"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """`publisher ARGS…` in-process (the same `main()` as the installed script)."""

    def invoke(*args: str, home: Path) -> Result:
        monkeypatch.setenv("PUBLISHER_HOME", str(home))
        monkeypatch.delenv("DATABASE_URL", raising=False)
        monkeypatch.setattr(sys, "argv", ["publisher", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as done:
            code = int(done.code or 0)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return invoke


def test_dry_run_json(run: Any, tmp_path: Path) -> None:
    result = run(
        "ingest", str(CORPUS / "good/baochinhphu_home.rss"), "--dry-run", "--json", home=tmp_path
    )
    assert result.returncode == 0, result.stderr
    articles = json.loads(result.stdout)
    assert len(articles) == 3
    first = articles[0]
    assert set(first) == {
        "guid", "url", "title", "summary", "body_html", "body_text", "published_at", "images",
        "video", "language", "source", "kind",
    }  # fmt: skip
    assert first["published_at"] == "2024-11-14T09:05:00+07:00"
    assert first["source"] == "baochinhphu.vn"
    assert first["kind"] == "article"
    assert not (tmp_path / "publisher.db").exists()  # nothing written


def test_directive_kind_and_article_json(run: Any, tmp_path: Path) -> None:
    result = run(
        "ingest", str(CORPUS / "good/article.json"), "--kind", "directive", "--dry-run", "--json",
        home=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [article] = json.loads(result.stdout)
    assert article["kind"] == "directive"
    assert "<script" not in article["body_html"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("hostile/xxe_file.xml", "declares XML entities"),
        ("hostile/truncated.xml", "not well-formed XML"),
        ("hostile/garbage.bin", "not valid UTF-8"),
        ("does-not-exist.rss", "no such file"),
    ],
)
def test_errors_are_one_line_exit_2(run: Any, tmp_path: Path, name: str, message: str) -> None:
    result = run("ingest", str(CORPUS / name), "--dry-run", "--json", home=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(str(CORPUS / name))
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_url_to_private_address_is_refused(run: Any, tmp_path: Path) -> None:
    result = run("ingest", "http://169.254.169.254/latest/meta-data", "--dry-run", home=tmp_path)
    assert result.returncode == 2
    assert "link-local" in result.stderr


def test_store_without_dry_run(run: Any, tmp_path: Path) -> None:
    feed = str(CORPUS / "good/rss10_rdf.rdf")
    refused = run("ingest", feed, "--json", home=tmp_path)
    assert refused.returncode == 2  # no configuration: nothing stored, one clear line
    assert "run `publisher init` first" in refused.stderr
    assert run("init", home=tmp_path).returncode == 0
    first = run("ingest", feed, "--unit", "01", "--json", home=tmp_path)
    assert first.returncode == 0, first.stderr
    # Stored, then routed at once: one post for Hà Nội, one delivery per Hà Nội account.
    assert json.loads(first.stdout) == {
        "new": [1, 2], "linked": [], "duplicates": 0, "posts": 2, "deliveries": 8
    }  # fmt: skip
    again = run("ingest", feed, "--unit", "01", "--json", home=tmp_path)
    assert json.loads(again.stdout) == {
        "new": [], "linked": [], "duplicates": 2, "posts": 0, "deliveries": 0
    }  # fmt: skip
