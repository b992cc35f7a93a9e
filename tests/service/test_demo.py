"""`publisher demo`: the README's first command, end to end on SQLite and the sandbox."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from publisher.demo.run import MARKER, DemoError, DemoReport, run_demo
from publisher.workspace import Workspace

FIVE_PLATFORMS = {"facebook", "youtube", "zalo", "viber", "telegram"}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> DemoReport:
    home = tmp_path_factory.mktemp("demo") / "demo"
    return run_demo(home, Console(file=io.StringIO(), width=120))


def test_posts_reach_the_ledger_on_every_platform(first_run: DemoReport) -> None:
    assert set(first_run.ledger) >= FIVE_PLATFORMS
    assert all(first_run.ledger[p] > 0 for p in FIVE_PLATFORMS)
    assert first_run.ledger["youtube"] == 1  # only the pushed article carries a video


def test_backlog_is_recorded_and_never_published(first_run: DemoReport) -> None:
    assert first_run.backlog == 3
    assert first_run.status["articles"] == 8  # 3 backlog + 4 polled later + 1 pushed


def test_faults_are_handled_without_duplicates_or_limbo(first_run: DemoReport) -> None:
    deliveries = first_run.status["deliveries"]
    assert isinstance(deliveries, dict)
    # (Failed once in a full run on a heavily loaded machine and never since: should it
    # fail again, the counts and the problems the run met say which step went otherwise.)
    print("deliveries:", deliveries, "problems:", first_run.problems)
    # Nothing left half-done: no claim, no send in flight, no unknown outcome unresolved.
    assert deliveries["claimed"] == deliveries["sending"] == deliveries["unknown"] == 0
    # Telegram cannot read back: its lost reply waits for a person, never resent.
    assert deliveries["needs_review"] == 1
    # The expired token (it stays expired) stopped the account: both of Nghệ An's Facebook
    # deliveries keep their place, whichever was in flight when the account stopped.
    assert deliveries["pending"] == 2
    assert any(line.startswith("account 40.facebook: auth_failed") for line in first_run.problems)
    assert deliveries["failed"] == 0
    # Exactly once: no account received the same body twice …
    assert len(set(first_run.ledger_keys)) == len(first_run.ledger_keys)
    # … and the ledger holds every sent delivery (the reconciled Zalo one included) plus the
    # Telegram post whose reply was lost: accepted by the platform, waiting for a person.
    assert len(first_run.ledger_keys) == deliveries["sent"] + deliveries["needs_review"]


def test_approval_leaves_the_central_news_item_waiting(first_run: DemoReport) -> None:
    posts = first_run.status["posts"]
    assert isinstance(posts, dict)
    assert posts["awaiting_approval"] == 1
    assert first_run.approved == 2  # Hà Nội's feed item and TP.HCM's pushed article


def test_directive_coverage_is_reported_by_level(first_run: DemoReport) -> None:
    levels = {label: (reached, units) for label, reached, units, _, _ in first_run.coverage}
    assert levels["Tỉnh, thành phố"] == (34, 34)
    assert levels["Bộ, ngành"] == (17, 17)


def test_safe_to_run_twice_and_refuses_a_foreign_folder(
    first_run: DemoReport, tmp_path: Path
) -> None:
    again = run_demo(first_run.home, Console(file=io.StringIO(), width=120))
    # Nothing planned twice. The states may move on (on a loaded machine a call that timed out
    # in the first run is retried or reconciled in the second), but never back from sent.
    before, after = first_run.status["deliveries"], again.status["deliveries"]
    assert sum(after.values()) == sum(before.values())
    assert after.get("sent", 0) >= before.get("sent", 0)
    assert (first_run.home / MARKER).exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(DemoError, match="not made by `publisher demo`"):
        run_demo(foreign, Console(file=io.StringIO()))
    assert (foreign / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_the_directive_is_recalled_everywhere_and_the_figures_add_up(first_run: DemoReport) -> None:
    recall = first_run.recall
    assert recall["recall"]["scope"] == "article"
    total = recall["total"]
    coverage_total = first_run.coverage[-1]
    sent, targeted = coverage_total[3], coverage_total[4]
    # Every delivery of the directive has one withdrawal: the sent (and possibly sent) ones
    # are the channels to take back; the rest never went out and are stopped for good.
    assert total["channels"] + total["not_sent"] == targeted
    assert total["channels"] >= sent
    assert total["channels"] > 0
    # Settled: each was withdrawn or listed for a person; nothing left half-way or failed.
    assert total["waiting"] == 0
    assert total["failed"] == 0
    assert total["withdrawn"] + total["needs_manual_removal"] == total["channels"]
    assert len(recall["needs_manual_removal"]) == total["needs_manual_removal"]
    assert sum(p["channels"] for p in recall["by_platform"]) == total["channels"]
    # The sandbox ledger agrees: exactly the withdrawn ones are marked taken back.
    assert first_run.ledger_withdrawn == total["withdrawn"]
    # And `status` counts the same withdrawals (the demo's only recall).
    withdrawals = Workspace.from_env(first_run.home).repository().status_counts().withdrawals
    assert withdrawals["withdrawn"] == total["withdrawn"]
    assert withdrawals["needs_manual_removal"] == total["needs_manual_removal"]
    assert withdrawals["not_sent"] == total["not_sent"]
    if total["withdrawn"]:
        assert total["median_lag_s"] is not None
        assert total["max_lag_s"] >= total["median_lag_s"]
    for item in recall["needs_manual_removal"]:
        assert item["note"]  # why a person must do it
