"""Service use cases over SQL: fan-out as one transaction, approval, pause, audit chain."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from delivery_fakes import T0

from publisher import audit
from publisher.domain import (
    ArticleKind,
    ChannelAccount,
    DeliveryState,
    PauseScope,
    Platform,
    Role,
    RoleGrant,
    Unit,
    User,
)
from publisher.service import DeliveryService, PermissionDenied
from publisher.settings.workflow import PolicyFile, PolicyRule, ScheduleFile
from publisher.store.delivery_sql import ARTICLE, POST, D, SqlDeliveryStore
from publisher.store.sql import SqlRepository

PLATFORMS = (Platform.FACEBOOK, Platform.ZALO)


def build(engine, provinces=2, communes=3, policy=None):
    repo = SqlRepository(engine)
    units = [Unit("CP", "Central", "central")]
    for p in range(provinces):
        code = f"P{p}"
        units.append(Unit(code, code, "province", "CP"))
        units += [Unit(f"{code}C{c}", "c", "commune", code) for c in range(communes)]
    repo.upsert_units(units)
    repo.upsert_accounts(
        ChannelAccount(f"{u.code}.{pl.value}", u.code, pl, u.code)
        for u in units
        for pl in PLATFORMS
    )
    repo.upsert_users(
        [
            User("admin", grants=(RoleGrant("CP", Role.ADMIN),)),
            User("ap0", grants=(RoleGrant("P0", Role.APPROVER),)),
            User("ed0", grants=(RoleGrant("P0", Role.EDITOR),)),
        ]
    )
    clock = {"now": T0}
    service = DeliveryService(
        engine,
        repo,
        policy=policy,
        schedule_rules=ScheduleFile(stagger_seconds=60, default={"quiet_hours": []}),
        clock=lambda: clock["now"],
    )
    return service, units, clock


def add_article(engine, kind=ArticleKind.DIRECTIVE, unit="CP", urgent=False) -> int:
    with engine.begin() as conn:
        return conn.execute(
            sa.insert(ARTICLE)
            .values(
                guid="g",
                url="u",
                canonical_url="u",
                content_hash="h",
                title="Chỉ đạo",
                published_at=T0,
                images=[],
                kind=kind.value,
                unit_code=unit,
                urgent=urgent,
                created_at=T0,
            )
            .returning(ARTICLE.c.id)
        ).scalar_one()


def count(engine, table, *where):
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar()


def test_directive_fans_out_to_every_unit_and_account_once(db):
    service, units, _ = build(db)
    article_id = add_article(db)
    posts, deliveries = service.route_article(article_id)
    assert (posts, deliveries) == (len(units), len(units) * len(PLATFORMS))
    assert service.route_article(article_id) == (0, 0)  # idempotent: ON CONFLICT DO NOTHING
    assert count(db, D, D.c.state == "pending") == len(units) * len(PLATFORMS)
    assert audit.verify_database(db).ok


def test_fan_out_is_all_or_nothing(db, monkeypatch):
    service, _, _ = build(db)
    article_id = add_article(db)
    store = service.store
    real = store.insert_delivery_rows  # what fan_out writes its deliveries with

    def crash(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("power cut during fan-out")

    monkeypatch.setattr(store, "insert_delivery_rows", crash)
    with pytest.raises(RuntimeError):
        service.route_article(article_id)
    assert count(db, POST) == 0
    assert count(db, D) == 0


def test_unit_articles_wait_for_approval_within_reach(db):
    service, _, _ = build(db)
    article_id = add_article(db, kind=ArticleKind.ARTICLE, unit="P0C1")
    service.route_article(article_id)
    assert count(db, D, D.c.state == DeliveryState.AWAITING_APPROVAL.value) == 2
    assert SqlDeliveryStore(db).claim("w", T0 + timedelta(days=1), 10, 30) == []
    [post_id] = service.pending_for("ap0")
    with pytest.raises(PermissionDenied):
        service.approve([post_id], "ed0")
    other = add_article(db, kind=ArticleKind.ARTICLE, unit="P1C0")
    service.route_article(other)
    assert service.pending_for("ap0") == [post_id]  # never another province's posts
    assert service.approve([post_id], "ap0") == [post_id]
    assert count(db, D, D.c.state == "pending") == 2
    assert len(service.queue("ap0")) == 1


def test_policy_can_require_two_steps(db):
    policy = PolicyFile(
        rule=[
            PolicyRule(
                kinds=["article"], steps=[{"mode": "any"}, {"mode": "all", "users": ["admin"]}]
            )
        ]
    )
    service, _, _ = build(db, policy=policy)
    service.route_article(add_article(db, kind=ArticleKind.ARTICLE, unit="P0"))
    [post_id] = service.pending_for("admin")
    assert service.approve([post_id], "ap0") == []
    assert service.approve([post_id], "admin") == [post_id]


def test_reject_cancels_and_pause_holds_a_subtree_in_place(db):
    service, _, _clock = build(db)
    service.route_article(add_article(db))
    service.pause(PauseScope.SUBTREE, "P0", "sai sót cần đính chính", "ap0")
    store = SqlDeliveryStore(db)
    later = T0 + timedelta(hours=1)
    claimed = store.claim("w", later, 1000, 30)
    assert claimed
    assert not any(j.unit_code.startswith("P0") for j in claimed)
    assert count(db, D, D.c.unit_code.like("P0%"), D.c.state == "pending") == 8
    with pytest.raises(PermissionDenied):
        service.pause(PauseScope.SUBTREE, "P1", "x", "ap0")
    assert service.resume(PauseScope.SUBTREE, "P0", "đã xử lý", "ap0") == 1
    assert {j.unit_code for j in store.claim("w", later, 1000, 30)} >= {"P0", "P0C0"}
    verdict = audit.verify_database(db)
    assert verdict.ok
    assert verdict.checked == 4  # pause, the refused pause of P1, resume
    with db.connect() as conn:
        actions = [(e.actor, e.action, e.target) for e in audit.load(conn)]
    assert actions[-2:] == [("ap0", "refused", "subtree:P1"), ("ap0", "resume", "subtree:P0")]


def test_audit_tampering_is_found(db):
    service, _, _ = build(db)
    service.route_article(add_article(db))
    service.pause(PauseScope.ALL, "", "drill", "admin")
    service.resume(PauseScope.ALL, "", "drill over", "admin")
    table = audit.AUDIT
    with db.begin() as conn:
        conn.execute(sa.update(table).where(table.c.seq == 2).values(actor="mallory"))
    verdict = audit.verify_database(db)
    assert not verdict.ok
    assert verdict.first_bad_seq == 2


def test_concurrent_audit_writers_never_fork_the_chain(db):
    service, _, _ = build(db)
    errors = []

    def writer(n):
        try:
            for i in range(15):
                service.pause(PauseScope.CHANNEL, "zalo", f"w{n}-{i}", "admin")
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    verdict = audit.verify_database(db)
    assert verdict.ok
    assert verdict.checked == 60
