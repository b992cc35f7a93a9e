"""Saving a bulk posting plan: every row in one transaction, or nothing at all."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from delivery_fakes import T0, create_schema, sqlite_engine
from sqlmodel import SQLModel

from publisher import audit, routing
from publisher.domain import (
    ArticleKind,
    ChannelAccount,
    DeliveryState,
    Platform,
    PostState,
    Role,
    RoleGrant,
    Unit,
    User,
)
from publisher.plan_import import PlanRow
from publisher.service import DeliveryService, PermissionDenied, PlanRowError
from publisher.settings.workflow import ScheduleFile
from publisher.store.delivery_sql import ARTICLE, POST, D
from publisher.store.engine import make_engine
from publisher.store.sql import SqlRepository

FB, ZALO, TG, VIBER = Platform.FACEBOOK, Platform.ZALO, Platform.TELEGRAM, Platform.VIBER
AT1 = T0 + timedelta(days=1)
AT2 = T0 + timedelta(days=2)
AT3 = T0 + timedelta(days=3)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        engine = sqlite_engine(tmp_path / "plan.db")
    else:
        engine = make_engine(request.getfixturevalue("postgres_url"))
        create_schema(engine)
    yield engine
    engine.dispose()


def build(engine: sa.Engine) -> DeliveryService:
    repo = SqlRepository(engine)
    units = [
        Unit("CP", "Central", "central"),
        Unit("P0", "P0", "province", "CP"),
        Unit("P0C0", "c", "commune", "P0"),
        Unit("P0C1", "c", "commune", "P0"),
        Unit("P1", "P1", "province", "CP"),
    ]
    repo.upsert_units(units)
    repo.upsert_accounts(
        ChannelAccount(f"{u.code}.{p.value}", u.code, p, u.code)
        for u in units
        for p in (FB, ZALO, TG)
    )
    repo.upsert_users(
        [
            User("admin", grants=(RoleGrant("CP", Role.ADMIN),)),
            User("ed0", grants=(RoleGrant("P0", Role.EDITOR),)),
        ]
    )
    return DeliveryService(
        engine,
        repo,
        schedule_rules=ScheduleFile(stagger_seconds=60, default={"quiet_hours": []}),
        clock=lambda: T0,
    )


def add_article(engine: sa.Engine, unit: str = "P0C0") -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                sa.insert(ARTICLE)
                .values(
                    guid=f"g-{unit}",
                    url="u",
                    canonical_url="u",
                    content_hash="h",
                    title="Tin xã",
                    published_at=T0,
                    images=[],
                    kind=ArticleKind.ARTICLE.value,
                    unit_code=unit,
                    urgent=False,
                    created_at=T0,
                )
                .returning(ARTICLE.c.id)
            ).scalar_one()
        )


def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def deliveries(engine: sa.Engine) -> set[tuple[str, str, str, datetime | None]]:
    with engine.connect() as conn:
        return {
            (r.unit_code, r.platform, r.state, utc(r.due_at))
            for r in conn.execute(sa.select(D.c.unit_code, D.c.platform, D.c.state, D.c.due_at))
        }


def snapshot(engine: sa.Engine) -> dict[str, Any]:
    """Row counts of every table and a checksum of every delivery and post row."""
    with engine.connect() as conn:
        counts = {
            name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for name, table in SQLModel.metadata.tables.items()
        }
        digest = hashlib.sha256()
        for table in (D, POST):
            for row in conn.execute(sa.select(table).order_by(table.c.id)):
                digest.update(repr(tuple(row)).encode())
    return {"counts": counts, "checksum": digest.hexdigest()}


def events(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        return audit.load(conn)


def routed(engine: sa.Engine, service: DeliveryService) -> int:
    article_id = add_article(engine)
    assert service.route_article(article_id) == (1, 3)  # P0C0's own post, three channels
    return article_id


def test_plan_creates_limits_and_schedules_in_one_go(db: sa.Engine) -> None:
    service = build(db)
    article_id = routed(db, service)
    routed_due = due_of(db, "P0C0.telegram")
    rows = [
        PlanRow(2, article_id, "P0C0", (FB, ZALO), AT1, "Xã thông tin:"),
        PlanRow(3, article_id, "P0C1", (TG,), AT2),
        PlanRow(4, article_id, "P0", (), AT3),
    ]
    result = service.apply_plan(rows, "ed0")
    assert (result.rows, result.posts_created, result.deliveries_created) == (3, 2, 4)
    waiting = DeliveryState.AWAITING_APPROVAL.value
    assert deliveries(db) == {
        ("P0C0", "facebook", waiting, AT1),
        ("P0C0", "zalo", waiting, AT1),
        # Not named by the row: left as routing planned it (a plan never cancels).
        ("P0C0", "telegram", waiting, routed_due),
        ("P0C1", "telegram", waiting, AT2),
        ("P0", "facebook", waiting, AT3),
        ("P0", "zalo", waiting, AT3),
        ("P0", "telegram", waiting, AT3),
    }
    with db.connect() as conn:
        posts = {
            r.unit_code: (r.state, utc(r.scheduled_at), r.lead_in)
            for r in conn.execute(sa.select(POST))
        }
    # The state routing gives an article at those units (the default policy: approval).
    article = service.load_article(article_id)
    targets = [routing.Target(u, ()) for u in ("P0C1", "P0")]
    planned = {p.unit_code: p.state.value for p in service.plan(article, targets, T0)}
    assert set(planned.values()) == {PostState.AWAITING_APPROVAL.value}
    assert posts == {
        "P0C0": (PostState.AWAITING_APPROVAL.value, AT1, "Xã thông tin:"),
        "P0C1": (planned["P0C1"], AT2, ""),
        "P0": (planned["P0"], AT3, ""),
    }
    plan_events = [e for e in events(db) if e.action == "plan"]
    assert [e.details.get("row") for e in plan_events] == [2, 3, 4, None]
    assert plan_events[-1].target == "plan"
    assert plan_events[-1].details["rows"] == 3
    assert all(e.actor == "ed0" for e in plan_events)
    assert audit.verify_database(db).ok


def due_of(engine: sa.Engine, account_id: str) -> datetime | None:
    with engine.connect() as conn:
        due = conn.execute(sa.select(D.c.due_at).where(D.c.account_id == account_id)).scalar_one()
    assert utc(due) != AT1
    return utc(due)


def test_approved_post_gets_pending_deliveries_and_all_means_every_channel(
    db: sa.Engine,
) -> None:
    service = build(db)
    article_id = routed(db, service)
    [post_id] = service.pending_for("admin")
    service.approve([post_id], "admin")
    result = service.apply_plan([PlanRow(2, article_id, "P0C0", (), AT2)], "admin")
    assert (result.posts_created, result.deliveries_created) == (0, 0)
    pending = DeliveryState.PENDING.value
    assert deliveries(db) == {("P0C0", p, pending, AT2) for p in ("facebook", "zalo", "telegram")}


BAD_ROWS: dict[str, tuple[Callable[[int], PlanRow], type[Exception], str]] = {
    "unit outside reach": (lambda a: PlanRow(4, a, "P1", (FB,), AT3), PermissionDenied, "P1"),
    "no account for channel": (
        lambda a: PlanRow(4, a, "P0C1", (VIBER,), AT3),
        PlanRowError,
        "viber",
    ),
    "article missing": (
        lambda a: PlanRow(4, a + 999, "P0", (FB,), AT3),
        PlanRowError,
        "không có bài",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_one_bad_row_saves_nothing(db: sa.Engine, case: str) -> None:
    service = build(db)
    article_id = routed(db, service)
    make_bad, error, words = BAD_ROWS[case]
    rows = [
        PlanRow(2, article_id, "P0C0", (FB,), AT1, "Mở đầu:"),
        PlanRow(3, article_id, "P0C1", (TG, ZALO), AT2),
        make_bad(article_id),
    ]
    before = snapshot(db)
    audit_before = events(db)
    with pytest.raises(error) as raised:
        service.apply_plan(rows, "ed0")
    assert str(raised.value).startswith("dòng 4")
    assert words in str(raised.value)
    after = snapshot(db)
    added = events(db)[len(audit_before) :]
    if error is PermissionDenied:
        # The refusal is audited after the rollback, and nothing else is.
        assert [(e.action, e.actor, e.details["unit"]) for e in added] == [("refused", "ed0", "P1")]
        after["counts"]["audit_event"] -= 1
    else:
        assert added == []
    assert after == before
    assert audit.verify_database(db).ok


def test_a_database_error_mid_plan_rolls_every_row_back(
    db: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = build(db)
    article_id = routed(db, service)
    real = service.store.insert_deliveries
    calls = {"n": 0}

    def second_fails(conn: sa.Connection, news: Any, now: datetime) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            conn.execute(sa.text("SELECT * FROM no_such_table"))
        return real(conn, news, now)

    monkeypatch.setattr(service.store, "insert_deliveries", second_fails)
    before = snapshot(db)
    with pytest.raises(PlanRowError, match=r"^dòng 3: lỗi cơ sở dữ liệu"):
        service.apply_plan(
            [PlanRow(2, article_id, "P0", (FB,), AT1), PlanRow(3, article_id, "P0C1", (), AT2)],
            "admin",
        )
    assert snapshot(db) == before
