"""The delivery commands end to end on a fresh working folder (SQLite)."""

from __future__ import annotations

import sqlalchemy as sa
from typer.testing import CliRunner

from publisher.cli import app
from publisher.cli.common import UserError
from publisher.store.engine import make_engine

runner = CliRunner()


def code(result) -> int:
    """The exit code `publisher` gives: main() turns a UserError into exit 2."""
    return 2 if isinstance(result.exception, UserError) else result.exit_code


def test_pause_resume_approve_and_audit_verify(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("PUBLISHER_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("PUBLISHER_SANDBOX_URL", "http://127.0.0.1:9")  # sandbox: --as allowed
    assert runner.invoke(app, ["init"]).exit_code == 0
    paused = runner.invoke(
        app,
        [
            "pause",
            "--unit",
            "01",
            "--subtree",
            "--reason",
            "đính chính",
            "--as",
            "admin",
            "--until",
            "2026-11-30T08:00+07:00",
        ],
    )
    assert paused.exit_code == 0, paused.output
    both = runner.invoke(app, ["pause", "--unit", "01", "--all", "--reason", "x", "--as", "admin"])
    assert code(both) == 2
    naive = runner.invoke(app, ["schedule", "1", "--at", "2026-11-24T08:00", "--as", "admin"])
    assert code(naive) == 2
    refused = runner.invoke(app, ["pause", "--unit", "79", "--reason", "x", "--as", "duyet.hanoi"])
    assert code(refused) == 2
    resumed = runner.invoke(
        app, ["resume", "--unit", "01", "--subtree", "--reason", "xong", "--as", "admin"]
    )
    assert resumed.exit_code == 0, resumed.output
    assert runner.invoke(app, ["approve", "--all-pending", "--as", "admin"]).exit_code == 0
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0
    assert "3 events" in ok.output  # pause, the refused pause (audited), resume
    engine = make_engine(f"sqlite:///{home / 'publisher.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_event SET actor = 'mallory' WHERE seq = 1"))
    engine.dispose()
    broken = runner.invoke(app, ["audit", "verify"])
    assert broken.exit_code == 1
    assert "event 1" in broken.output


def test_audit_anchor_finds_truncation_through_the_cli(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("PUBLISHER_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("PUBLISHER_SANDBOX_URL", "http://127.0.0.1:9")
    assert runner.invoke(app, ["init"]).exit_code == 0
    for unit in ("01", "79", "22"):
        paused = runner.invoke(app, ["pause", "--unit", unit, "--reason", "x", "--as", "admin"])
        assert paused.exit_code == 0, paused.output
    unanchored = runner.invoke(app, ["audit", "verify"])
    assert unanchored.exit_code == 0
    assert "unkeyed" in unanchored.output
    assert "no anchor" in unanchored.output
    anchored = runner.invoke(app, ["audit", "anchor"])
    assert anchored.exit_code == 0, anchored.output
    assert (home / "audit-head.json").is_file()
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0
    assert "anchored at event 3" in ok.output
    engine = make_engine(f"sqlite:///{home / 'publisher.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_event WHERE seq = 3"))
    engine.dispose()
    cut = runner.invoke(app, ["audit", "verify"])
    assert cut.exit_code == 1
    assert "cut off" in cut.output
    refused = runner.invoke(app, ["audit", "anchor"])
    assert refused.exit_code == 1


def test_a_worker_run_moves_the_audit_anchor(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("PUBLISHER_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("PUBLISHER_SANDBOX_URL", "http://127.0.0.1:9")
    assert runner.invoke(app, ["init"]).exit_code == 0
    paused = runner.invoke(app, ["pause", "--unit", "01", "--reason", "x", "--as", "admin"])
    assert paused.exit_code == 0, paused.output
    ran = runner.invoke(app, ["worker", "--until-idle", "--id", "w-test"])
    assert ran.exit_code == 0, ran.output
    assert '"audit_anchor": 1' in ran.output
    assert '"seq": 1' in (home / "audit-head.json").read_text(encoding="utf-8")


def test_acting_for_someone_else_names_both_people_in_the_audit(tmp_path, monkeypatch):
    from publisher import audit
    from publisher.identity import current_os_user, resolve_identity
    from publisher.store.sql import SqlRepository

    home = tmp_path / "home"
    monkeypatch.setenv("PUBLISHER_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("PUBLISHER_SANDBOX_URL", "http://127.0.0.1:9")  # sandbox: --as allowed
    assert runner.invoke(app, ["init"]).exit_code == 0
    ok = runner.invoke(app, ["pause", "--unit", "01", "--reason", "x", "--as", "duyet.hanoi"])
    assert ok.exit_code == 0, ok.output
    refused = runner.invoke(app, ["pause", "--unit", "79", "--reason", "x", "--as", "duyet.hanoi"])
    assert code(refused) == 2
    engine = make_engine(f"sqlite:///{home / 'publisher.db'}")
    with engine.connect() as conn:
        events = audit.load(conn)
    label = resolve_identity(current_os_user(), "duyet.hanoi", SqlRepository(engine), True)
    engine.dispose()
    # "<real user, or os:ACCOUNT> as duyet.hanoi": both people, as the identity module says
    assert label.actor_label.endswith(" as duyet.hanoi")
    assert [(e.actor, e.action) for e in events] == [
        (label.actor_label, "pause"),
        (label.actor_label, "refused"),
    ]
