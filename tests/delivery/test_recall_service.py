"""Recall through the service (permissions, audit, post states), the CLI, and the recall
report's figures against a hand-computed fixture."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import timedelta

import pytest
import sqlalchemy as sa
from delivery_fakes import T0, DeletingLedgerChannel, Ledger, LedgerChannel
from test_service import add_article, build
from typer.testing import CliRunner

from channels.base import Credentials
from publisher import audit
from publisher.cli import app
from publisher.cli.common import UserError
from publisher.delivery.worker import Worker, WorkerConfig
from publisher.domain import (
    ArticleKind,
    DeliveryState,
    Role,
    RoleGrant,
    User,
    WithdrawalState,
)
from publisher.report_output import recall_csv, recall_renderable
from publisher.reports import RecallInfo, WithdrawalFact, compute_recall, load_recall
from publisher.service import PermissionDenied, ServiceError
from publisher.store.delivery_sql import POST, D
from publisher.store.recall_sql import SqlRecallStore
from publisher.store.tables import AuditEventRow, WithdrawalRow

W = WithdrawalRow.__table__
AUDIT = AuditEventRow.__table__


def world(engine):
    service, _units, clock = build(engine, provinces=2, communes=1)
    service.directory.upsert_users(
        [
            User("ap0c", grants=(RoleGrant("P0C0", Role.APPROVER),)),
            User("adm1", grants=(RoleGrant("P1", Role.ADMIN),)),
        ]
    )
    article = add_article(engine)
    service.route_article(article)
    return service, clock, article


def posts_of(engine, article):
    with engine.connect() as conn:
        return dict(
            conn.execute(
                sa.select(POST.c.unit_code, POST.c.id).where(POST.c.article_id == article)
            ).all()
        )


def send_all(service, clock, ledger, channel_cls=DeletingLedgerChannel):
    accounts = {a.id: a for a in service.directory.list_accounts()}
    channel = channel_cls(ledger)
    worker = Worker(
        service.store,
        {"facebook": channel, "zalo": channel},
        accounts.get,
        lambda a: Credentials("t"),
        WorkerConfig(owner="w", request_timeout_s=5, lease_margin_s=5),
        clock=lambda: clock["now"],
        prepare=lambda job: {"message": f"delivery {job.id}"},
        rng=random.Random(1),
        withdrawals=SqlRecallStore(service.store),
    )
    return asyncio.run(worker.run(until_idle=True))


# Who may recall what: (user, scope, target) → allowed. A grant reaches down, never sideways;
# an article-wide recall needs reach over every unit it went to (the root for a directive).
PERMISSIONS = [
    ("admin", "post", "P0C0", True),
    ("admin", "article", None, True),
    ("ap0", "post", "P0", True),
    ("ap0", "post", "P0C0", True),
    ("ap0", "post", "P1", False),
    ("ap0", "article", None, False),
    ("ap0c", "post", "P0C0", True),
    ("ap0c", "post", "P0", False),
    ("ed0", "post", "P0", False),  # editors may not recall
    ("adm1", "post", "P1C0", True),
    ("adm1", "article", None, False),
]


@pytest.mark.parametrize(("user", "scope", "unit", "allowed"), PERMISSIONS)
def test_permission_table(sqlite_db, user, scope, unit, allowed):
    service, _, article = world(sqlite_db)
    target = {"post_id": posts_of(sqlite_db, article)[unit]} if unit else {"article_id": article}
    if allowed:
        result = service.recall(user, reason="sai số liệu", **target)
        assert result.posts
    else:
        with pytest.raises(PermissionDenied):
            service.recall(user, reason="sai số liệu", **target)
        with sqlite_db.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(W)).scalar_one() == 0
            refused = conn.execute(
                sa.select(AUDIT.c.actor, AUDIT.c.details).where(AUDIT.c.action == "refused")
            ).all()
        assert [(r.actor, r.details["attempted"]) for r in refused] == [(user, "recall")]


def test_recall_everywhere_stops_unsent_withdraws_sent_and_audits(db, tmp_path):
    service, clock, article = world(db)
    posts = posts_of(db, article)
    ledger = Ledger(tmp_path / "l.db")
    # Half goes out: P0's subtree is sent, P1's is still waiting.
    with db.begin() as conn:
        conn.execute(
            sa.update(D)
            .where(D.c.unit_code.in_(["P1", "P1C0"]))
            .values(due_at=T0 + timedelta(hours=5))
        )
    clock["now"] = T0 + timedelta(hours=1)
    send_all(service, clock, ledger)
    sent = len(ledger.entries())
    assert sent > 0
    result = service.recall(
        "admin", article_id=article, reason="ban hành nhầm", notice="Đính chính"
    )
    assert sorted(result.posts) == sorted(posts.values())
    assert result.to_withdraw == sent
    with db.connect() as conn:
        states = dict(conn.execute(sa.select(POST.c.id, POST.c.state)).all())
        cancelled = conn.execute(
            sa.select(sa.func.count()).select_from(D).where(D.c.state == "cancelled")
        ).scalar_one()
    assert set(states.values()) == {"recalled"}
    assert cancelled == result.cancelled > 0
    clock["now"] = T0 + timedelta(hours=6)  # P1's deliveries are due: never sent
    stats = send_all(service, clock, ledger)
    assert stats.claimed == 0
    assert len(ledger.entries()) == sent
    assert len(ledger.removed()) == sent
    report = load_recall(db, clock["now"])
    assert (report.total.withdrawn, report.total.channels) == (sent, sent)
    assert report.total.not_sent == result.cancelled
    with db.connect() as conn:
        actions = [r.action for r in conn.execute(sa.select(AUDIT.c.action).order_by(AUDIT.c.seq))]
    assert actions.count("recall") == 1
    # One event per withdrawal the engine settled; those stopped before sending are counted
    # in the recall's own event.
    assert actions.count("withdrawal") == sent
    assert audit.verify_database(db, None).ok
    # Asked again: nothing left to recall; a recalled delivery is never retried.
    with pytest.raises(ServiceError, match="no post left"):
        service.recall("admin", article_id=article, reason="again")
    with pytest.raises(ServiceError, match="already recalled"):
        service.recall("admin", post_id=posts["P0"], reason="again")


def test_recalled_delivery_is_never_retried(sqlite_db):
    service, _clock, article = world(sqlite_db)
    with sqlite_db.begin() as conn:
        failed = conn.execute(sa.select(D.c.id).limit(1)).scalar_one()
        conn.execute(sa.update(D).where(D.c.id == failed).values(state="failed"))
    service.recall("admin", article_id=article, reason="nhầm")
    with pytest.raises(ServiceError, match="recalled"):
        service.retry(failed, "admin")


def test_bad_requests_say_what(sqlite_db):
    service, _, article = world(sqlite_db)
    with pytest.raises(ServiceError, match="reason"):
        service.recall("admin", article_id=article, reason="  ")
    with pytest.raises(ServiceError, match="not both"):
        service.recall("admin", article_id=article, post_id=1, reason="x")
    with pytest.raises(ServiceError, match="unknown article"):
        service.recall("admin", article_id=999, reason="x")


def test_report_figures_against_a_hand_computed_fixture():
    at = T0
    info = RecallInfo(7, "article", 3, "Chỉ đạo", None, "nhầm", "", "admin", at, cancelled=2)

    def fact(i, platform, state, lag_s=None, url=None, remote_id=None):
        done = at + timedelta(seconds=lag_s) if lag_s is not None else None
        return WithdrawalFact(
            i, f"U{i}", f"U{i}.{platform}", platform, state, url, None, done, remote_id
        )

    facts = [
        fact(1, "facebook", "withdrawn", 10),
        fact(2, "facebook", "withdrawn", 30),
        fact(3, "facebook", "withdrawn", 50),
        fact(4, "facebook", "not_sent"),
        # Viber messages have no public link: the message token names them
        fact(5, "viber", "needs_manual_removal", remote_id="5491128475830393125"),
        fact(6, "viber", "needs_manual_removal", remote_id="5491128475830393126"),
        fact(7, "telegram", "withdrawn", 100),
        fact(8, "telegram", "failed"),
        fact(9, "telegram", "pending"),
        fact(10, "telegram", "not_sent"),
    ]
    report = compute_recall(info, facts, at + timedelta(minutes=5))
    t = report.total
    # M = 10 − 2 not sent = 8; N = 4 withdrawn; lags 10, 30, 50, 100 → median 40, max 100.
    assert (t.channels, t.withdrawn, t.needs_manual_removal, t.failed, t.waiting, t.not_sent) == (
        8,
        4,
        2,
        1,
        1,
        2,
    )
    assert (t.median_lag_s, t.max_lag_s) == (40.0, 100.0)
    by = {r.label: r for r in report.by_platform}
    assert [r.label for r in report.by_platform] == ["facebook", "viber", "telegram"]
    assert (by["facebook"].channels, by["facebook"].withdrawn, by["facebook"].median_lag_s) == (
        3,
        3,
        30.0,
    )
    assert (by["viber"].channels, by["viber"].needs_manual_removal, by["viber"].max_lag_s) == (
        2,
        2,
        None,
    )
    assert (by["telegram"].channels, by["telegram"].withdrawn, by["telegram"].failed) == (3, 1, 1)
    assert [w.remote_id for w in report.manual] == ["5491128475830393125", "5491128475830393126"]
    assert [w.delivery_id for w in report.failed] == [8]
    rows = recall_csv(report).splitlines()
    assert rows[0] == (
        "recall_id,unit,account,platform,state,url,remote_id,withdrawn_at,lag_s,note"
    )
    assert len(rows) == 11
    assert rows[1].startswith(
        "7,U1,U1.facebook,facebook,withdrawn,,,2026-11-24T08:00:10+07:00,10.0"
    )
    assert rows[5].startswith("7,U5,U5.viber,viber,needs_manual_removal,,5491128475830393125,")
    as_json = report.to_json()
    assert as_json["total"]["withdrawn"] == 4
    assert len(as_json["needs_manual_removal"]) == 2
    from rich.console import Console

    console = Console(record=True, width=160)
    console.print(recall_renderable(report))
    text = console.export_text()
    assert "withdrawn on 4 of 8 channels" in text
    assert "message token 5491128475830393126" in text


runner = CliRunner()


def code(result) -> int:
    return 2 if isinstance(result.exception, UserError) else result.exit_code


def test_cli_recall_and_report(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("PUBLISHER_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("PUBLISHER_SANDBOX_URL", "http://127.0.0.1:9")  # sandbox: --as allowed
    assert runner.invoke(app, ["init"]).exit_code == 0
    from publisher.store.engine import make_engine
    from publisher.workspace import Workspace

    engine = make_engine(f"sqlite:///{home / 'publisher.db'}")
    add_article(engine, kind=ArticleKind.DIRECTIVE)
    from publisher.runtime import delivery_service

    workspace = Workspace.from_env()
    delivery_service(workspace, workspace.load_config()).route_article(1)
    none_yet = runner.invoke(app, ["report", "recall"])
    assert code(none_yet) == 2
    both = runner.invoke(app, ["recall", "1", "--article", "1", "--reason", "x", "--as", "admin"])
    assert code(both) == 2
    refused = runner.invoke(
        app, ["recall", "--article", "1", "--reason", "x", "--as", "duyet.hanoi"]
    )
    assert code(refused) == 2
    done = runner.invoke(
        app, ["recall", "--article", "1", "--reason", "ban hành nhầm", "--as", "admin", "--json"]
    )
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert result["scope"] == "article"
    assert result["cancelled"] > 0
    assert result["to_withdraw"] == 0  # nothing had gone out yet
    shown = runner.invoke(app, ["report", "recall", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert report["recall"]["id"] == result["recall"]
    assert report["total"]["not_sent"] == result["cancelled"]
    assert report["total"]["channels"] == 0
    bad = runner.invoke(app, ["report", "recall", "--format", "png"])
    assert code(bad) == 2
    assert code(runner.invoke(app, ["report", "recall", "--recall", "99"])) == 2
    with engine.connect() as conn:
        assert {s for (s,) in conn.execute(sa.select(D.c.state).distinct())} == {
            DeliveryState.CANCELLED.value
        }
        assert {s for (s,) in conn.execute(sa.select(W.c.state).distinct())} == {
            WithdrawalState.NOT_SENT.value
        }
    engine.dispose()


def test_manual_channel_is_listed_for_a_person(sqlite_db, tmp_path):
    service, clock, article = world(sqlite_db)
    ledger = Ledger(tmp_path / "l.db")
    clock["now"] = T0 + timedelta(hours=1)
    send_all(service, clock, ledger, LedgerChannel)  # no withdraw: MANUAL
    sent = len(ledger.entries())
    service.recall("admin", article_id=article, reason="nhầm")
    send_all(service, clock, ledger, LedgerChannel)
    report = load_recall(sqlite_db, clock["now"])
    assert report.total.needs_manual_removal == sent == report.total.channels
    assert all(w.url and w.url.startswith("https://fake/") for w in report.manual)
    assert ledger.removed() == {}


async def test_what_a_person_must_remove_is_told_once_per_unit(sqlite_db, tmp_path):
    from test_notify_helpers import Recording

    from publisher.notify import Notifier, directory_from_engine
    from publisher.recall_notify import removal_pass
    from publisher.settings.notify import Contact

    service, clock, article = world(sqlite_db)
    ledger = Ledger(tmp_path / "l.db")
    clock["now"] = T0 + timedelta(hours=1)
    await asyncio.to_thread(send_all, service, clock, ledger, LedgerChannel)
    service.recall("admin", article_id=article, reason="nhầm")
    await asyncio.to_thread(send_all, service, clock, ledger, LedgerChannel)
    recording = Recording()
    contacts = [Contact(user="ed0", email=["bientap.p0@example.gov.vn"])]
    directory = directory_from_engine(sqlite_db)
    now = clock["now"] + timedelta(minutes=1)
    summary = await removal_pass(sqlite_db, Notifier([recording]), directory, contacts, now)
    assert summary.opened == len(ledger.entries()) == 10
    by_unit = {n.unit_code: n for n in recording.notices}
    assert sorted(by_unit) == ["CP", "P0", "P0C0", "P1", "P1C0"]  # one message per unit
    p0 = by_unit["P0C0"]
    assert p0.text.count("\n- recall #") == 2  # facebook and zalo
    assert "https://fake/" in p0.text
    assert [r.name for r in p0.recipients] == ["ed0"]  # the editor reaching down from P0
    again = await removal_pass(
        sqlite_db, Notifier([recording]), directory, contacts, now + timedelta(minutes=1)
    )
    assert again.opened == 0
    assert len(recording.notices) == 5
