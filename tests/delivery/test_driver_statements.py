"""The SQLite hot path runs statements compiled once, straight on the driver connection: the
SQL and every parameter must be exactly what SQLAlchemy itself would send."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from delivery_fakes import T0, add_posts, seed_world, sqlite_engine
from hypothesis import given
from hypothesis import strategies as st

from publisher.domain import Pause, PauseScope, Platform, Recall, RecallScope
from publisher.store import delivery_sql
from publisher.store.delivery_sql import SqlDeliveryStore, SqlPostStore, _sqlite_utc_text
from publisher.store.recall_sql import SqlRecallStore
from publisher.store.tables import (
    ChannelAccountRow,
    DeliveryRow,
    PostRow,
    UTCDateTime,
    WithdrawalRow,
)

aware = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
) | st.builds(
    lambda d, minutes: d.replace(tzinfo=timezone(timedelta(minutes=minutes))),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(-23 * 60, 23 * 60),
)


def _chained(value: datetime | None, dialect: sa.Dialect) -> Any:
    """What SQLAlchemy does: UTCDateTime's conversion, then SQLite DATETIME's."""
    process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    return process(value)


@given(aware)
def test_one_step_time_text_is_the_chained_processors_text(value: datetime) -> None:
    dialect = sa.create_engine("sqlite://").dialect
    expected = _chained(value, dialect)
    assert _sqlite_utc_text(value) == expected
    assert _sqlite_utc_text(value) == expected  # the kept conversion of the same object
    assert _sqlite_utc_text(value + timedelta(microseconds=1)) == _chained(
        value + timedelta(microseconds=1), dialect
    )


def test_the_driver_statements_use_the_one_step_time_text(sqlite_db: sa.Engine) -> None:
    statement = SqlDeliveryStore(sqlite_db)._driver["mark_sent"]
    processors = {name: process for name, _, process in statement.slots}
    assert processors["v_sent_at"] is _sqlite_utc_text


def test_one_step_time_text_refuses_naive_times_and_keeps_none() -> None:
    dialect = sa.create_engine("sqlite://").dialect
    with pytest.raises(ValueError, match="naive"):
        _sqlite_utc_text(datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        _chained(datetime(2025, 1, 1), dialect)
    assert _sqlite_utc_text(None) is None is _chained(None, dialect)


NOW = datetime(2025, 11, 14, 2, 5, 7, 123456, tzinfo=UTC)
GIVEN: dict[str, dict[str, Any]] = {
    "mark_sending": {
        "f_id": 7,
        "f_owner": "w1",
        "f_attempt": 2,
        "f_now": NOW,
        "v_hash": "h" * 64,
        "v_payload": {"message": "Hà Nội", "n": [1, 2]},
        "v_lease_until": NOW + timedelta(seconds=60),
        "v_now": NOW,
    },
    "mark_sending_same_body": {
        "f_id": 7,
        "f_owner": "w1",
        "f_attempt": 2,
        "f_now": NOW.astimezone(timezone(timedelta(hours=7))),
        "v_hash": "h" * 64,
        "v_lease_until": NOW + timedelta(seconds=60),
        "v_now": NOW,
    },
    "insert_attempt": {"a_delivery": 7, "a_attempt": 2, "a_worker": "w1", "a_started": NOW},
    "mark_sent": {
        "f_id": 7,
        "f_owner": "w1",
        "f_attempt": 2,
        "v_remote_id": "r1",
        "v_remote_url": None,
        "v_sent_at": NOW,
        "v_notes": [{"severity": "warning", "code": "broadcast_quota_used", "message": "Hết"}],
        "v_now": NOW,
    },
    "finish_attempt": {
        "a_delivery": 7,
        "a_attempt": 2,
        "a_finished": NOW,
        "a_outcome": "sent",
        "a_detail": None,
    },
}
STATEMENTS = {
    "mark_sending": delivery_sql._MARK_SENDING,
    "mark_sending_same_body": delivery_sql._MARK_SENDING_SAME_BODY,
    "insert_attempt": delivery_sql._INSERT_ATTEMPT,
    "mark_sent": delivery_sql._MARK_SENT,
    "finish_attempt": delivery_sql._FINISH_ATTEMPT,
}


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_driver_statement_sends_what_sqlalchemy_sends(sqlite_db: sa.Engine, name: str) -> None:
    sent: list[tuple[str, Any]] = []

    class Captured(Exception):
        pass

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.startswith("BEGIN"):
            return
        sent.append((statement, tuple(parameters)))
        raise Captured  # what would go to the driver is all this test needs

    sa.event.listen(sqlite_db, "before_cursor_execute", capture)
    try:
        with pytest.raises(Captured), sqlite_db.connect() as conn, conn.begin():
            conn.execute(STATEMENTS[name], GIVEN[name])
    finally:
        sa.event.remove(sqlite_db, "before_cursor_execute", capture)
    statement = SqlDeliveryStore(sqlite_db)._driver[name]
    assert [(statement.sql, statement.parameters(GIVEN[name]))] == sent


# --- the claim: compiled once per shape on SQLite, built by SQLAlchemy elsewhere -------------

PAUSES = {
    "none": [],
    "unit and channel": [
        Pause(PauseScope.UNIT, "U0001", "r", "admin", T0),
        Pause(PauseScope.CHANNEL, "zalo", "r", "admin", T0, until=T0 + timedelta(hours=1)),
    ],
    "subtree and account": [
        Pause(PauseScope.SUBTREE, "U0002", "r", "admin", T0),
        Pause(PauseScope.ACCOUNT, "U0003.facebook", "r", "admin", T0),
    ],
    "ended": [Pause(PauseScope.ALL, "", "r", "admin", T0, until=T0 + timedelta(seconds=1))],
    "all": [Pause(PauseScope.ALL, "", "r", "admin", T0)],
}


def _world_twice(tmp_path: Path, pauses: list[Pause]) -> tuple[SqlDeliveryStore, SqlDeliveryStore]:
    engine = sqlite_engine(tmp_path / "a.db")
    world = seed_world(engine, units=6, platforms=(Platform.FACEBOOK, Platform.ZALO))
    add_posts(world, 3, due_at=T0 - timedelta(minutes=5))
    add_posts(world, 2, due_at=T0, expires_in=timedelta(minutes=1))
    add_posts(world, 2, due_at=T0 + timedelta(minutes=2))
    with engine.begin() as conn:
        conn.execute(
            sa.update(DeliveryRow.__table__)
            .where(DeliveryRow.__table__.c.id % 7 == 0)
            .values(priority=5)
        )
        conn.execute(
            sa.update(ChannelAccountRow.__table__)
            .where(ChannelAccountRow.__table__.c.id == "U0004.zalo")
            .values(status="auth_failed")
        )
        for pause in pauses:
            SqlPostStore(world.store).add_pause(conn, pause)
    world.store.hold("account:U0005.facebook", T0 + timedelta(minutes=10))
    world.store.hold("platform:youtube", T0 + timedelta(minutes=10))
    # Recalled posts whose deliveries a race left claimable again: never claimed.
    with engine.connect() as conn:
        posts = [p for (p,) in conn.execute(sa.select(PostRow.__table__.c.id).limit(4))]
    recall = Recall(RecallScope.POST, 1, "error", "admin", T0, post_id=posts[0])
    SqlRecallStore(world.store).recall(recall, posts, T0)
    with engine.begin() as conn:
        table = DeliveryRow.__table__
        again = conn.execute(
            sa.update(table).where(table.c.state == "cancelled").values(state="pending")
        ).rowcount
    assert again > 0
    engine.dispose()
    shutil.copyfile(tmp_path / "a.db", tmp_path / "b.db")
    return (
        SqlDeliveryStore(sqlite_engine(tmp_path / "a.db")),
        SqlDeliveryStore(sqlite_engine(tmp_path / "b.db")),
    )


def _withdrawals(store: SqlDeliveryStore) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(WithdrawalRow.__table__)).all())


def _rows(store: SqlDeliveryStore) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(DeliveryRow.__table__).order_by("id")).all())


@pytest.mark.parametrize("withdrawals", ["few", "many"])
@pytest.mark.parametrize("pauses", sorted(PAUSES))
def test_claim_on_the_driver_takes_what_sqlalchemy_takes(
    tmp_path: Path, pauses: str, withdrawals: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if withdrawals == "many":  # the claim's other form of the recalled condition
        monkeypatch.setattr(delivery_sql, "FEW_WITHDRAWALS", 0)
    driver, reference = _world_twice(tmp_path, PAUSES[pauses])
    taken = 0
    for step, (limit, later) in enumerate([(1, 0), (3, 0), (50, 30), (7, 90), (50, 200)]):
        now = T0 + timedelta(seconds=later)
        jobs = driver._claim_on_driver(f"w{step}", now, limit, 60.0)
        assert jobs == reference._claim_with_sqlalchemy(f"w{step}", now, limit, 60.0)
        taken += len(jobs)
    assert _rows(driver) == _rows(reference)
    recalled = {r.delivery_id for r in _withdrawals(driver)}
    assert recalled
    assert all(r.state == "pending" for r in _rows(driver) if r.id in recalled)
    if pauses == "all":
        assert taken == 0
    else:
        assert taken > 10
    driver.engine.dispose()
    reference.engine.dispose()


# --- the held connection ----------------------------------------------------------------------


def _connection_of(store: SqlDeliveryStore) -> Any:
    with store.driver_write() as run:
        run(delivery_sql._DriverStatement("SELECT 1", ()), {})
    return store._local.held[2]


def test_the_hot_path_keeps_one_connection_per_thread(sqlite_db: sa.Engine) -> None:
    store = SqlDeliveryStore(sqlite_db)
    first = _connection_of(store)
    assert _connection_of(store) is first
    elsewhere: list[Any] = []
    thread = threading.Thread(target=lambda: elsewhere.append(_connection_of(store)))
    thread.start()
    thread.join()
    assert len(elsewhere) == 1
    assert elsewhere[0] is not first
    store.release_connection()
    assert getattr(store._local, "held", None) is None


def test_a_driver_error_or_a_new_pool_gives_a_fresh_connection(sqlite_db: sa.Engine) -> None:
    store = SqlDeliveryStore(sqlite_db)
    first = _connection_of(store)
    with pytest.raises(sa.exc.DBAPIError), store.driver_write() as run:
        run(delivery_sql._DriverStatement("SELEC 1", ()), {})
    with pytest.raises(sqlite3.ProgrammingError):
        first.execute("SELECT 1")  # closed, not handed out again
    second = _connection_of(store)
    assert second is not first
    sqlite_db.dispose()
    third = _connection_of(store)
    assert third is not second
    assert store._local.held[0] is sqlite_db.pool
    store.release_connection()


def test_an_exception_inside_the_transaction_rolls_it_back(sqlite_db: sa.Engine) -> None:
    store = SqlDeliveryStore(sqlite_db)
    insert = delivery_sql._DriverStatement(
        "INSERT INTO rate_limit (key, window_count) VALUES ('k', 0)", ()
    )

    def insert_then_fail() -> None:
        with store.driver_write() as run:
            run(insert, {})
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        insert_then_fail()
    connection = _connection_of(store)
    assert not connection.in_transaction
    assert connection.execute("SELECT count(*) FROM rate_limit").fetchone() == (0,)
    store.release_connection()
