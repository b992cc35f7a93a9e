"""`publisher accounts connect|test|rotate|remove` through the real entry point (`main()`), with
the platforms replaced by a fake channel: exit codes, one line per problem, JSON, and no
secret in anything the command prints."""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from account_fakes import ALL_SECRETS, BAD, EXPIRES, GOOD, GOOD_2, fake_channels

from publisher.cli import accounts_cmd, main
from publisher.secrets import generate_key
from publisher.store.engine import make_engine


@dataclass
class Ran:
    code: int
    out: str
    err: str


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("PUBLISHER_HOME", str(folder))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("PUBLISHER_SANDBOX_URL", "http://127.0.0.1:9")  # sandbox: --as allowed
    monkeypatch.setenv("PUBLISHER_SECRET_KEY", generate_key())
    monkeypatch.setattr(accounts_cmd, "make_channels", lambda http, secrets: fake_channels())
    assert run(monkeypatch, "init").code == 0
    return folder


SEEN: list[str] = []


def run(monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = "") -> Ran:
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "argv", ["publisher", *args])
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    try:
        main()
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    finally:
        monkeypatch.setattr(sys, "stdout", sys.__stdout__)
        monkeypatch.setattr(sys, "stderr", sys.__stderr__)
    SEEN.extend([out.getvalue(), err.getvalue()])
    return Ran(code, out.getvalue(), err.getvalue())


def secret_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / f"token-{len(list(tmp_path.iterdir()))}.txt"
    path.write_text(text + "\n", encoding="utf-8")
    path.chmod(mode)
    return path


def account_row(home: Path, account_id: str) -> Any:
    engine = make_engine(f"sqlite:///{home / 'publisher.db'}")
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.text("SELECT * FROM channel_account WHERE id = :id"), {"id": account_id}
            ).first()
    finally:
        engine.dispose()


CONNECT = ["accounts", "connect", "--unit", "S01001", "--platform", "facebook"]


def test_connect_test_rotate_remove_and_reload(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    SEEN.clear()
    token = secret_file(tmp_path, GOOD)
    done = run(
        monkeypatch,
        *CONNECT,
        "--external-id",
        "109000001",
        "--name",
        "Phường Hoàn Kiếm",
        "--id",
        "S01001.fb2",
        "--token-file",
        str(token),
        "--as",
        "admin",
        "--json",
    )
    assert done.code == 0, done.err
    answer = json.loads(done.out)
    assert answer["account"] == "S01001.fb2"
    assert answer["ok"] is True
    assert answer["token_expires_at"] == EXPIRES.isoformat()
    assert account_row(home, "S01001.fb2").origin == "connected"

    tested = run(monkeypatch, "accounts", "test", "S01001.fb2", "--as", "admin")
    assert tested.code == 0, tested.err
    assert tested.out.startswith("Hoạt động · works: S01001.fb2")
    assert "2027-02-01 00:00 (+07)" in tested.out  # shown in Hà Nội time

    monkeypatch.setenv("NEW_FB_TOKEN", GOOD_2)
    rotated = run(
        monkeypatch, "accounts", "rotate", "S01001.fb2", "--token-env", "NEW_FB_TOKEN",
        "--as", "admin",
    )  # fmt: skip
    assert rotated.code == 0, rotated.err
    kept = run(
        monkeypatch, "accounts", "rotate", "S01001.fb2", "--token-stdin", "--as", "admin",
        stdin=BAD,
    )  # fmt: skip
    assert kept.code == 2
    assert "the old ones are kept" in kept.err

    again = run(monkeypatch, "init")
    assert again.code == 0, again.err
    assert account_row(home, "S01001.fb2").status == "active"

    removed = run(
        monkeypatch, "accounts", "remove", "S01001.fb2", "--reason", "trang cũ", "--as", "admin",
        "--json",
    )  # fmt: skip
    assert removed.code == 0, removed.err
    assert json.loads(removed.out)["secret_deleted"] is True
    assert account_row(home, "S01001.fb2").status == "disabled"
    assert run(monkeypatch, "audit", "verify").code == 0
    printed = "\n".join(SEEN)
    for secret in ALL_SECRETS:
        assert secret not in printed


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ([], "exactly one of --token-file"),
        (["--token-stdin", "--token-env", "X"], "exactly one of --token-file"),
        (["--token-env", "NOT_SET_ANYWHERE"], "NOT_SET_ANYWHERE is not set"),
        (["--token-file", "/nonexistent/token"], "/nonexistent/token: "),
    ],
)
def test_bad_secret_options_exit_2_with_one_line(
    home: Path, monkeypatch: pytest.MonkeyPatch, options: list[str], needle: str
) -> None:
    ran = run(monkeypatch, *CONNECT, "--external-id", "1", *options, "--as", "admin")
    assert ran.code == 2
    assert needle in ran.err
    assert len(ran.err.strip().splitlines()) == 1
    assert "Traceback" not in ran.err


def test_a_token_file_readable_by_others_is_refused(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loose = secret_file(tmp_path, GOOD, mode=0o644)
    ran = run(
        monkeypatch, *CONNECT, "--external-id", "1", "--token-file", str(loose), "--as", "admin"
    )
    assert ran.code == 2
    assert "chmod 600" in ran.err
    assert GOOD not in ran.err


def test_refusals_and_failed_checks(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    refused = run(
        monkeypatch, *CONNECT, "--external-id", "1", "--token-stdin", "--as", "bientap.hanoi",
        stdin=GOOD,
    )  # fmt: skip
    assert refused.code == 2
    assert "may not connect channel accounts of unit S01001" in refused.err
    bad = run(
        monkeypatch, *CONNECT, "--external-id", "1", "--token-stdin", "--as", "admin",
        stdin=BAD,
    )  # fmt: skip
    assert bad.code == 2
    assert "nothing was stored" in bad.err
    assert BAD not in bad.err
    assert account_row(home, "S01001.facebook.1") is None
    sideways = run(
        monkeypatch, "accounts", "remove", "01.zalo", "--reason", "x", "--as", "quantri.quangninh"
    )
    assert sideways.code == 2
    assert account_row(home, "01.zalo").status == "active"


def test_test_exits_1_when_the_platform_refuses(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        run(monkeypatch, "accounts", "set-token", "01.zalo", "--as", "admin", stdin=BAD).code == 0
    )
    ran = run(monkeypatch, "accounts", "test", "01.zalo", "--as", "admin", "--json")
    assert ran.code == 1
    assert json.loads(ran.out)["verdict"] == "refused"
    assert account_row(home, "01.zalo").status == "auth_failed"


def test_an_accounts_toml_entry_clashing_with_a_connected_account_stops_init(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = run(
        monkeypatch, *CONNECT, "--external-id", "77", "--id", "S01001.new", "--token-stdin",
        "--as", "admin", stdin=GOOD,
    )  # fmt: skip
    assert ran.code == 0, ran.err
    accounts = home / "config" / "accounts.toml"
    accounts.write_text(
        accounts.read_text(encoding="utf-8")
        + '\n[[account]]\nid = "S01001.new"\nunit = "S01001"\nplatform = "zalo"\n'
        'external_id = "5"\ncredentials = "store:"\n',
        encoding="utf-8",
    )
    clash = run(monkeypatch, "init")
    assert clash.code == 2
    assert "accounts.toml: account[" in clash.err
    assert '"S01001.new" is a connected account' in clash.err
    assert account_row(home, "S01001.new").platform == "facebook"


def test_each_bad_field_gets_its_own_line(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ran = run(
        monkeypatch, "accounts", "connect", "--unit", "01", "--platform", "myspace",
        "--external-id", " ", "--language", "Vietnamese", "--token-stdin", "--as", "admin",
        stdin=GOOD,
    )  # fmt: skip
    assert ran.code == 2
    lines = ran.err.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["--platform", "--external-id", "--language"]
