"""The delivery engine's store over SQL: the claim queries, fenced writes, sweeper and limits.

SQLite has one writer: every write transaction starts with BEGIN IMMEDIATE, and a claim is
`UPDATE … WHERE id IN (SELECT … LIMIT k) RETURNING`. PostgreSQL claims with a CTE that selects
due rows `FOR UPDATE SKIP LOCKED`, so several workers never wait on (or take) the same rows.
Every transaction is short; none is ever held open across a platform call.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler

from channels.base import Receipt
from publisher.delivery.jobs import Finish, Job, NewDelivery, Sending, SweepResult, receipt_notes
from publisher.domain import (
    AccountStatus,
    ChannelAccount,
    DeliveryState,
    Pause,
    PauseScope,
    PostState,
    Unit,
)
from publisher.redact import redact
from publisher.store import post_platforms
from publisher.store.bulk import BulkInsert
from publisher.store.sql import account_from_mapping, pause_from_mapping, unit_from_mapping
from publisher.store.tables import (
    ArticleRow,
    ChannelAccountRow,
    DeliveryAttemptRow,
    DeliveryRow,
    IncidentRow,
    PauseRow,
    PostRow,
    RateLimitRow,
    UnitRow,
    UTCDateTime,
    WithdrawalRow,
    table_of,
)

D = table_of(DeliveryRow)
ATTEMPT = table_of(DeliveryAttemptRow)
ACCOUNT = table_of(ChannelAccountRow)
PAUSE = table_of(PauseRow)
LIMIT = table_of(RateLimitRow)
UNIT = table_of(UnitRow)
INCIDENT = table_of(IncidentRow)
WITHDRAWAL = table_of(WithdrawalRow)

CLAIMABLE = (DeliveryState.PENDING.value, DeliveryState.RETRY_WAIT.value)
IN_FLIGHT = (
    DeliveryState.CLAIMED.value,
    DeliveryState.SENDING.value,
    DeliveryState.UNKNOWN.value,
    DeliveryState.RECONCILING.value,
)
EXPIRABLE = (
    DeliveryState.AWAITING_APPROVAL.value,
    DeliveryState.PENDING.value,
    DeliveryState.RETRY_WAIT.value,
)
RETRY_OUTCOMES = ("before_send", "rate_limited")
JOB_COLUMNS = (
    D.c.id,
    D.c.post_id,
    D.c.article_id,
    D.c.unit_code,
    D.c.account_id,
    D.c.platform,
    D.c.state,
    D.c.attempt,
    D.c.lease_owner,
    D.c.lease_until,
    D.c.payload,
    D.c.body_hash,
    D.c.expires_at,
    D.c.created_at,
    D.c.priority,
)


# The columns the fan-out writes, in the order of its row tuples.
DELIVERY_COLUMNS = (
    "post_id",
    "article_id",
    "unit_code",
    "account_id",
    "platform",
    "state",
    "due_at",
    "expires_at",
    "priority",
    "attempt",
    "payload",
    "created_at",
    "updated_at",
)
POST_COLUMNS = (
    "article_id",
    "unit_code",
    "state",
    "priority",
    "expires_at",
    "approvals",
    "lead_in",
    "created_at",
    "updated_at",
    "platforms",
)


def account_key(account_id: str) -> str:
    return f"account:{account_id}"


def platform_key(platform: str) -> str:
    return f"platform:{platform}"


# The claim builds Jobs from its RETURNING rows by position.
assert tuple(c.name for c in JOB_COLUMNS) == tuple(f.name for f in fields(Job))
assert fields(Job)[6].name == "state"


def _job(m: Mapping[Any, Any]) -> Job:
    return Job(
        id=m["id"],
        post_id=m["post_id"],
        article_id=m["article_id"],
        unit_code=m["unit_code"],
        account_id=m["account_id"],
        platform=m["platform"],
        state=DeliveryState(m["state"]),
        attempt=m["attempt"],
        lease_owner=m["lease_owner"],
        lease_until=m["lease_until"],
        payload=m["payload"],
        body_hash=m["body_hash"],
        expires_at=m["expires_at"],
        created_at=m["created_at"],
        priority=m["priority"],
    )


def _bind(name: str, type_: Any = None) -> Any:
    return sa.bindparam(name, type_=type_)


_TIME = UTCDateTime()
# A send without notes stores SQL NULL, not the JSON `null`.
_NOTES = sa.JSON(none_as_null=True)
# The two commits around every platform call are built once: building SQLAlchemy expressions
# per delivery cost more than the database work itself.
_FENCE_CLAIMED = sa.and_(
    D.c.id == _bind("f_id"),
    D.c.lease_owner == _bind("f_owner"),
    D.c.attempt == _bind("f_attempt"),
    D.c.state == DeliveryState.CLAIMED.value,
    D.c.lease_until >= _bind("f_now", _TIME),
)
_MARK_SENDING = (
    sa.update(D)
    .where(_FENCE_CLAIMED)
    .values(
        state=DeliveryState.SENDING.value,
        body_hash=_bind("v_hash"),
        payload=_bind("v_payload", sa.JSON()),
        lease_until=_bind("v_lease_until", _TIME),
        updated_at=_bind("v_now", _TIME),
    )
)
# The same write when the body is the stored payload: no need to serialise it again.
_MARK_SENDING_SAME_BODY = (
    sa.update(D)
    .where(_FENCE_CLAIMED)
    .values(
        state=DeliveryState.SENDING.value,
        body_hash=_bind("v_hash"),
        lease_until=_bind("v_lease_until", _TIME),
        updated_at=_bind("v_now", _TIME),
    )
)
_INSERT_ATTEMPT = sa.insert(ATTEMPT).values(
    delivery_id=_bind("a_delivery"),
    attempt=_bind("a_attempt"),
    worker=_bind("a_worker"),
    started_at=_bind("a_started", _TIME),
    outcome="sending",
)
_MARK_SENT = (
    sa.update(D)
    .where(
        D.c.id == _bind("f_id"),
        D.c.lease_owner == _bind("f_owner"),
        D.c.attempt == _bind("f_attempt"),
        D.c.state == DeliveryState.SENDING.value,
    )
    .values(
        state=DeliveryState.SENT.value,
        remote_id=_bind("v_remote_id"),
        remote_url=_bind("v_remote_url"),
        sent_at=_bind("v_sent_at", _TIME),
        receipt_notes=_bind("v_notes", _NOTES),
        lease_until=None,
        last_error=None,
        error_kind=None,
        updated_at=_bind("v_now", _TIME),
    )
)
_FINISH_ATTEMPT = (
    sa.update(ATTEMPT)
    .where(ATTEMPT.c.delivery_id == _bind("a_delivery"), ATTEMPT.c.attempt == _bind("a_attempt"))
    .values(
        finished_at=_bind("a_finished", _TIME),
        outcome=_bind("a_outcome"),
        detail=_bind("a_detail"),
    )
)
_FENCE_SENDING = sa.and_(
    D.c.id == _bind("f_id"),
    D.c.lease_owner == _bind("f_owner"),
    D.c.attempt == _bind("f_attempt"),
    D.c.state == DeliveryState.SENDING.value,
)
# The other ends of a call: tried again later (the lease is given up), outcome unknown (owner
# and lease stay: the sweeper and reconcile take it from there), failed or expired for good.
_MARK_RETRY = (
    sa.update(D)
    .where(_FENCE_SENDING)
    .values(
        state=DeliveryState.RETRY_WAIT.value,
        due_at=_bind("v_due_at", _TIME),
        lease_owner=None,
        lease_until=None,
        last_error=_bind("v_error"),
        error_kind=_bind("v_kind"),
        updated_at=_bind("v_now", _TIME),
    )
)
_MARK_UNKNOWN = (
    sa.update(D)
    .where(_FENCE_SENDING)
    .values(
        state=DeliveryState.UNKNOWN.value,
        last_error=_bind("v_error"),
        error_kind="unknown_outcome",
        updated_at=_bind("v_now", _TIME),
    )
)
_MARK_ENDED = (
    sa.update(D)
    .where(_FENCE_SENDING)
    .values(
        state=_bind("v_state"),
        lease_until=None,
        last_error=_bind("v_error"),
        error_kind=_bind("v_kind"),
        updated_at=_bind("v_now", _TIME),
    )
)
# The fenced writes that group commits run, by name: SQLAlchemy runs them on PostgreSQL, the
# driver runs their compiled form on SQLite (`_DriverStatement`).
_FENCED = {
    "mark_sending": _MARK_SENDING,
    "mark_sending_same_body": _MARK_SENDING_SAME_BODY,
    "insert_attempt": _INSERT_ATTEMPT,
    "mark_sent": _MARK_SENT,
    "mark_retry": _MARK_RETRY,
    "mark_unknown": _MARK_UNKNOWN,
    "mark_ended": _MARK_ENDED,
    "finish_attempt": _FINISH_ATTEMPT,
}
# Which write ends a call in each state.
_FINISH_STATEMENT = {
    DeliveryState.SENT: "mark_sent",
    DeliveryState.RETRY_WAIT: "mark_retry",
    DeliveryState.UNKNOWN: "mark_unknown",
    DeliveryState.FAILED: "mark_ended",
    DeliveryState.EXPIRED: "mark_ended",
}


_DATETIME_TEXT = (
    "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"
)


# Recent conversions, by time value: within a group the same few times (now, the lease end,
# each outcome's time) are bound several times each. Equal aware datetimes are the same
# instant, so they have the same UTC text; naive ones are refused before they get here.
_converted: dict[datetime, str] = {}


def _sqlite_utc_text(value: datetime | None) -> str | None:
    """UTCDateTime's bind conversion followed by SQLite DATETIME's, in one step: the same
    refusal of naive times and the same text (tests/delivery/test_driver_statements.py
    compares them), at a third of the cost of the two processors chained, and a recent
    time's text is not worked out again."""
    if value is None:
        return None
    text = _converted.get(value)
    if text is not None:
        return text
    if value.tzinfo is UTC:  # the clock's own times: the text without its "+00:00"
        text = value.isoformat(" ", "microseconds")[:26]
    elif value.tzinfo is None:
        raise ValueError("naive datetime refused: store timezone-aware times only")
    else:
        text = value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    if len(_converted) >= 64:
        _converted.clear()
    _converted[value] = text
    return text


def _bind_processor(type_: Any, dialect: sa.Dialect) -> Callable[[Any], Any] | None:
    adapted: Any = type_.dialect_impl(dialect)
    if (
        isinstance(type_, UTCDateTime)
        and dialect.name == "sqlite"
        and getattr(adapted.impl_instance, "_storage_format", None) == _DATETIME_TEXT
    ):
        return _sqlite_utc_text
    return cast(Callable[[Any], Any] | None, adapted.bind_processor(dialect))


# What `driver_write`'s run takes: one parameter set, or a list of them (executemany).
_Given = Mapping[str, Any] | list[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class _DriverStatement:
    """A statement compiled once for SQLite: its SQL text, and per positional parameter the
    name, the default (literals in the statement) and the type's own bind conversion — the
    same conversion SQLAlchemy applies, so stored values are identical."""

    sql: str
    slots: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]
    # Rows it returns (SELECT, RETURNING): per column the name and the type's own result
    # conversion, as SQLAlchemy applies it.
    columns: tuple[tuple[str, Callable[[Any], Any] | None], ...] = ()
    times: tuple[bool, ...] = ()  # per column: a UTCDateTime (its conversions can be shared)
    # `slots` taken apart for `parameters`: names and defaults in order, and only the
    # positions that have a conversion.
    _names: tuple[str, ...] = field(init=False)
    _defaults: tuple[Any, ...] = field(init=False)
    _conversions: tuple[tuple[int, Callable[[Any], Any]], ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_names", tuple(name for name, _, _ in self.slots))
        object.__setattr__(self, "_defaults", tuple(default for _, default, _ in self.slots))
        conversions = tuple(
            (i, process) for i, (_, _, process) in enumerate(self.slots) if process is not None
        )
        object.__setattr__(self, "_conversions", conversions)

    @classmethod
    def of(cls, statement: sa.ClauseElement, dialect: sa.Dialect) -> _DriverStatement:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        if "POSTCOMPILE" in compiled.string:
            # IN lists: written out one placeholder per value, as SQLAlchemy does per call.
            compiled = cast(
                SQLCompiler,
                statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True}),
            )
        # Each value of an IN list has its own placeholder, named after the list's parameter.
        expanded = compiled._post_compile_expanded_state
        origin = (
            {one: name for name, ones in expanded.parameter_expansion.items() for one in ones}
            if expanded is not None
            else {}
        )
        slots = []
        for name in compiled.positiontup or []:
            if name in origin:
                assert expanded is not None
                bind, default = compiled.binds[origin[name]], expanded.parameters[name]
            else:
                bind = compiled.binds[name]
                default = bind.value
            slots.append((name, default, _bind_processor(bind.type, dialect)))
        columns = tuple(
            (column.keyname, column.type._cached_result_processor(dialect, None))
            for column in compiled._result_columns
        )
        times = tuple(isinstance(c.type, UTCDateTime) for c in compiled._result_columns)
        return cls(compiled.string, tuple(slots), columns, times)

    def mappings(self, rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
        names = [name for name, _ in self.columns]
        return [dict(zip(names, values, strict=True)) for values in self.values(rows)]

    def values(self, rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
        """The rows' values in column order, each through its type's result conversion."""
        # Times repeat down a claim (one lease, one enqueue time): a text already converted
        # in this call is not parsed again (datetimes are immutable, so one can be shared).
        times: dict[Any, Any] = {}
        converted = []
        for row in rows:
            one = list(row)
            for i, ((_, process), is_time) in enumerate(zip(self.columns, self.times, strict=True)):
                if process is None:
                    continue
                value = one[i]
                if is_time:
                    known = times.get(value, times)
                    if known is times:
                        known = times[value] = process(value)
                    one[i] = known
                else:
                    one[i] = process(value)
            converted.append(one)
        return converted

    def parameters(self, given: Mapping[str, Any]) -> tuple[Any, ...]:
        # Every value goes through its processor, None included, exactly as SQLAlchemy does.
        values = list(map(given.get, self._names, self._defaults))
        for i, process in self._conversions:
            values[i] = process(values[i])
        return tuple(values)


_ACTIVE_PAUSES = sa.select(PAUSE).where(
    PAUSE.c.lifted_at.is_(None),
    sa.or_(PAUSE.c.until.is_(None), PAUSE.c.until > _bind("now", _TIME)),
)
_HELD_PLATFORMS = sa.select(LIMIT.c.key).where(
    LIMIT.c.key.like("platform:%"), LIMIT.c.next_allowed_at > _bind("now", _TIME)
)


def _conditions(
    table: sa.FromClause, pauses: list[Pause], held_platforms: list[str], now: Any, limits: bool
) -> list[Any]:
    """The runnable conditions for these active pauses and held platforms (`now` a time or a
    bound parameter). Everything paused gives `[false]`."""
    conditions: list[Any] = []
    for pause in pauses:
        if pause.scope is PauseScope.ALL:
            return [sa.false()]
        if pause.scope is PauseScope.UNIT:
            conditions.append(table.c.unit_code != pause.target)
        elif pause.scope is PauseScope.ACCOUNT:
            conditions.append(table.c.account_id != pause.target)
        elif pause.scope is PauseScope.CHANNEL:
            conditions.append(table.c.platform != pause.target)
        elif pause.scope is PauseScope.SUBTREE:
            below = sa.select(UNIT.c.code).where(UNIT.c.path.like(f"%/{pause.target}/%"))
            conditions.append(table.c.unit_code.not_in(below))
    # Uncorrelated NOT IN rather than NOT EXISTS: SQLite reads the (few) stopped accounts
    # and held keys once per claim instead of probing them for every due row (the claim
    # took half as long on 10,000 due rows). Neither column is ever NULL (primary keys).
    conditions.append(
        table.c.account_id.not_in(
            sa.select(ACCOUNT.c.id).where(ACCOUNT.c.status != AccountStatus.ACTIVE.value)
        )
    )
    if not limits:
        return conditions
    if held_platforms:
        conditions.append(table.c.platform.not_in(held_platforms))
    # The held accounts' ids are cut out of their keys once per claim, rather than a key
    # built for every due row ('account:' || account_id): a fifth of the claim's time.
    prefix = account_key("")
    conditions.append(
        table.c.account_id.not_in(
            sa.select(sa.func.substr(LIMIT.c.key, len(prefix) + 1)).where(
                sa.func.substr(LIMIT.c.key, 1, len(prefix)) == prefix,
                LIMIT.c.next_allowed_at > now,
            )
        )
    )
    return conditions


# Up to this many withdrawal rows (by the highest id), the SQLite claim reads their delivery
# ids once into a list instead of probing the withdrawal index for every due row.
FEW_WITHDRAWALS = 1000
_LAST_WITHDRAWAL = sa.select(sa.func.max(WITHDRAWAL.c.id))


def _pick_due(
    pauses: list[Pause],
    held_platforms: list[str],
    now: Any,
    limit: int,
    few_withdrawals: bool = False,
) -> tuple[sa.Select[Any], sa.FromClause]:
    due = D.alias("due")
    # Recalled: never sent, whatever state a race left it in. With few withdrawals the list
    # is read once per claim (a quarter of the claim's time on 10,000 due rows); with many,
    # building that list would cost more than the probes. delivery_id is NOT NULL, so the
    # two forms take the same rows.
    recalled = (
        due.c.id.not_in(sa.select(WITHDRAWAL.c.delivery_id))
        if few_withdrawals
        else ~sa.exists().where(WITHDRAWAL.c.delivery_id == due.c.id)
    )
    pick = (
        sa.select(due.c.id)
        .where(
            due.c.state.in_(CLAIMABLE),
            due.c.due_at <= now,
            sa.or_(due.c.expires_at.is_(None), due.c.expires_at > now),
            *_conditions(due, pauses, held_platforms, now, limits=True),
            recalled,
        )
        .order_by(due.c.priority.desc(), due.c.due_at, due.c.id)
        .limit(limit)
    )
    return pick, due


def _take_statement(
    pick: sa.Select[Any],
    due: sa.FromClause,
    state: DeliveryState,
    owner: Any,
    now: Any,
    lease_until: Any,
    is_sqlite: bool = True,
) -> sa.Update:
    chosen: Any = pick.scalar_subquery() if is_sqlite else pick
    return (
        sa.update(D)
        .where(D.c.id.in_(chosen))
        .values(
            state=state.value,
            lease_owner=owner,
            lease_until=lease_until,
            attempt=D.c.attempt + 1,
            updated_at=now,
        )
        .returning(*JOB_COLUMNS)
    )


class SqlDeliveryStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        # The two commits around every platform call, ready for the driver (SQLite only):
        # SQLAlchemy's per-statement work cost more than the database's.
        self._driver: dict[str, _DriverStatement] = (
            {
                name: _DriverStatement.of(statement, engine.dialect)
                for name, statement in (
                    *_FENCED.items(),
                    ("active_pauses", _ACTIVE_PAUSES),
                    ("held", _HELD_PLATFORMS),
                    ("last_withdrawal", _LAST_WITHDRAWAL),
                )
            }
            if self.is_sqlite
            else {}
        )
        self._claims: dict[tuple[Any, ...], _DriverStatement] = {}
        self._local = threading.local()

        # The fan-out's bulk inserts, compiled on first use (publisher/store/bulk.py).
        self._insert_delivery: BulkInsert | None = None
        self._insert_post: BulkInsert | None = None

    # --- transactions ------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A short write transaction (SQLite: BEGIN IMMEDIATE takes the one write lock first,
        so a read-then-write never fails half-way on a busy snapshot)."""
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    @contextmanager
    def driver_write(self) -> Iterator[Callable[[_DriverStatement, _Given], Any]]:
        """SQLite only: the same short BEGIN IMMEDIATE … COMMIT transaction as `write`, with
        the prepared statements run straight on this thread's driver connection. Yields
        `run(statement, parameters) -> the driver's cursor` (rowcount, fetchall); given a
        list of parameter sets, it runs the statement once per set (executemany). Driver
        errors come out as SQLAlchemy's DBAPIError, as they would from `write`."""
        connection, cursor = self._held_connection()
        sql = "BEGIN IMMEDIATE"
        params: Any = ()
        try:
            cursor.execute(sql)

            def run(statement: _DriverStatement, given: _Given) -> Any:
                nonlocal sql, params
                sql = statement.sql
                if isinstance(given, list):
                    params = [statement.parameters(one) for one in given]
                    return cursor.executemany(sql, params)
                params = statement.parameters(given)
                return cursor.execute(sql, params)

            yield run
            sql, params = "COMMIT", ()
            cursor.execute(sql)
        except sqlite3.Error as error:
            # Whatever state the connection is in, it is closed; the next write opens another.
            self.release_connection(invalidate=True)
            raise sa.exc.DBAPIError.instance(sql, params, error, sqlite3.Error) from error
        except BaseException:
            if connection.in_transaction:
                connection.rollback()
            raise

    def driver_read(self, statement: _DriverStatement, given: Mapping[str, Any]) -> list[Any]:
        """SQLite only: one read on this thread's held connection, outside any transaction
        (its own snapshot), every row fetched so no read stays open. For the questions a
        worker asks every round, where a pool checkout cost more than the query."""
        _, cursor = self._held_connection()
        params = statement.parameters(given)
        try:
            return cursor.execute(statement.sql, params).fetchall()
        except sqlite3.Error as error:
            self.release_connection(invalidate=True)
            raise sa.exc.DBAPIError.instance(statement.sql, params, error, sqlite3.Error) from error

    def _held_connection(self) -> tuple[sqlite3.Connection, sqlite3.Cursor]:
        """This thread's pooled connection for the hot path, kept checked out between
        transactions: a pool checkout and return cost more than a short commit. A new
        pool (engine.dispose) or a driver error gets a fresh one."""
        held = getattr(self._local, "held", None)
        if held is not None and held[0] is self.engine.pool:
            return held[2], held[3]
        self.release_connection()
        pooled = self.engine.raw_connection()
        connection = cast(sqlite3.Connection, pooled.driver_connection)
        held = (self.engine.pool, pooled, connection, connection.cursor())
        self._local.held = held
        return held[2], held[3]

    def release_connection(self, invalidate: bool = False) -> None:
        """Give this thread's held connection back to the pool (taken again when needed), or
        with `invalidate` close it for good."""
        held = self._local.__dict__.pop("held", None)
        if held is None:
            return
        if invalidate:
            held[1].invalidate()
            return
        try:
            held[3].close()
        finally:
            held[1].close()

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # --- enqueue -----------------------------------------------------------------------

    def enqueue(self, deliveries: list[NewDelivery], now: datetime) -> int:
        with self.write() as conn:
            return self.insert_deliveries(conn, deliveries, now)

    def insert_deliveries(
        self, conn: sa.Connection, deliveries: list[NewDelivery], now: datetime
    ) -> int:
        """Insert new deliveries; an existing (post, account) pair is left as it is. Returns
        how many rows were inserted."""
        return self.insert_delivery_rows(
            conn,
            [
                (
                    d.post_id,
                    d.article_id,
                    d.unit_code,
                    d.account_id,
                    d.platform,
                    d.state.value,
                    d.due_at,
                    d.expires_at,
                    d.priority,
                    0,
                    dict(d.payload) if d.payload is not None else None,
                    now,
                    now,
                )
                for d in deliveries
            ],
        )

    def insert_delivery_rows(self, conn: sa.Connection, rows: list[tuple[Any, ...]]) -> int:
        """Rows in `DELIVERY_COLUMNS` order, in one statement (PostgreSQL) or one executemany
        (SQLite) with ON CONFLICT (post_id, account_id) DO NOTHING (publisher/store/bulk.py).
        The rowcount is exact on both, so nothing is counted before and after."""
        if self._insert_delivery is None:
            self._insert_delivery = BulkInsert(
                D, DELIVERY_COLUMNS, ("post_id", "account_id"), self.engine.dialect
            )
        return self._insert_delivery.run(conn, rows)

    def insert_ignoring(self, table: sa.Table, key: tuple[str, ...]) -> Any:
        """INSERT … ON CONFLICT (key) DO NOTHING in this database's dialect."""
        if self.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert(table).on_conflict_do_nothing(index_elements=list(key))
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=list(key))

    # --- claim -------------------------------------------------------------------------

    def active_pauses(self, now: datetime) -> list[Pause]:
        with self.read() as conn:
            return self._active_pauses(conn, now)

    def _active_pauses(self, conn: sa.Connection, now: datetime) -> list[Pause]:
        return [pause_from_mapping(r._mapping) for r in conn.execute(_ACTIVE_PAUSES, {"now": now})]

    def _held_platforms(self, conn: sa.Connection, now: datetime) -> list[str]:
        keys = conn.execute(_HELD_PLATFORMS, {"now": now}).scalars()
        return [key.removeprefix("platform:") for key in keys]

    def _runnable(
        self, table: sa.FromClause, conn: sa.Connection, now: datetime, limits: bool = True
    ) -> list[Any]:
        """Conditions a due row must meet: not paused, account working, not rate-held
        (with `limits`). Everything paused gives `[false]`."""
        pauses = self._active_pauses(conn, now)
        held = self._held_platforms(conn, now) if limits else []
        return _conditions(table, pauses, held, now, limits)

    def claim(self, owner: str, now: datetime, limit: int, lease_s: float) -> list[Job]:
        """Take up to `limit` due deliveries, highest priority and oldest first."""
        if self.is_sqlite:
            return self._claim_on_driver(owner, now, limit, lease_s)
        return self._claim_with_sqlalchemy(owner, now, limit, lease_s)

    def _claim_with_sqlalchemy(
        self, owner: str, now: datetime, limit: int, lease_s: float
    ) -> list[Job]:
        with self.write() as conn:
            pauses = self._active_pauses(conn, now)
            held = self._held_platforms(conn, now)
            pick, due = _pick_due(pauses, held, now, limit)
            return self._take(conn, pick, due, DeliveryState.CLAIMED, owner, now, lease_s)

    def _claim_on_driver(self, owner: str, now: datetime, limit: int, lease_s: float) -> list[Job]:
        """SQLite: the same reads and the same claim in one BEGIN IMMEDIATE transaction, the
        claim compiled once per shape (active pauses, held platforms, limit, few or many
        withdrawal rows) rather than
        built and compiled by SQLAlchemy on every call."""
        given = {"now": now, "owner": owner, "lease_until": now + timedelta(seconds=lease_s)}
        active_pauses, held_platforms = self._driver["active_pauses"], self._driver["held"]
        with self.driver_write() as run:
            pauses = [
                pause_from_mapping(m)
                for m in active_pauses.mappings(run(active_pauses, given).fetchall())
            ]
            held = [key.removeprefix("platform:") for (key,) in run(held_platforms, given)]
            [(last,)] = run(self._driver["last_withdrawal"], given).fetchall()
            few = (last or 0) <= FEW_WITHDRAWALS
            statement = self._claim_statement(pauses, held, limit, few)
            rows = run(statement, given).fetchall()
        # JOB_COLUMNS are Job's fields in order (checked where they are defined).
        jobs = []
        for values in statement.values(rows):
            values[6] = DeliveryState(values[6])
            jobs.append(Job(*values))
        return jobs

    def _claim_statement(
        self, pauses: list[Pause], held: list[str], limit: int, few_withdrawals: bool = False
    ) -> _DriverStatement:
        shape = (tuple((p.scope, p.target) for p in pauses), tuple(held), limit, few_withdrawals)
        statement = self._claims.get(shape)
        if statement is None:
            if len(self._claims) >= 256:  # pauses come and go: keep the cache small
                self._claims.clear()
            # Given on every call (`given` above); a value here only lets the IN lists be
            # written out at compile time.
            now = sa.bindparam("now", None, type_=_TIME)
            owner = sa.bindparam("owner", None, type_=sa.String())
            lease_until = sa.bindparam("lease_until", None, type_=_TIME)
            pick, due = _pick_due(pauses, held, now, limit, few_withdrawals)
            update = _take_statement(pick, due, DeliveryState.CLAIMED, owner, now, lease_until)
            statement = _DriverStatement.of(update, self.engine.dialect)
            self._claims[shape] = statement
        return statement

    def _take(
        self,
        conn: sa.Connection,
        pick: sa.Select[Any],
        due: sa.FromClause,
        state: DeliveryState,
        owner: str,
        now: datetime,
        lease_s: float,
    ) -> list[Job]:
        if not self.is_sqlite:
            cte = pick.with_for_update(skip_locked=True, of=due).cte("picked")
            pick = sa.select(cte.c.id)
        lease_until = now + timedelta(seconds=lease_s)
        statement = _take_statement(pick, due, state, owner, now, lease_until, self.is_sqlite)
        return [_job(row._mapping) for row in conn.execute(statement)]

    # --- fenced writes -----------------------------------------------------------------

    def _fence(self, job: Job, expected: DeliveryState) -> Any:
        return sa.and_(
            D.c.id == job.id,
            D.c.lease_owner == job.lease_owner,
            D.c.attempt == job.attempt,
            D.c.state == expected.value,
        )

    def _finish_attempt(
        self, conn: sa.Connection, job: Job, outcome: str, detail: str, now: datetime
    ) -> None:
        conn.execute(
            _FINISH_ATTEMPT,
            {
                "a_delivery": job.id,
                "a_attempt": job.attempt,
                "a_finished": now,
                "a_outcome": outcome,
                "a_detail": detail,
            },
        )

    def release(self, job: Job, due_at: datetime | None, now: datetime) -> bool:
        """Give a claimed row back untouched (no call was made). With `due_at` None it keeps
        its place in the queue (a rate-limit hold: the claim query skips held accounts)."""
        values: dict[str, Any] = {
            "state": DeliveryState.PENDING.value,
            "lease_owner": None,
            "lease_until": None,
            "updated_at": now,
        }
        if due_at is not None:
            values["due_at"] = due_at
        with self.write() as conn:
            result = conn.execute(
                sa.update(D).where(self._fence(job, DeliveryState.CLAIMED)).values(**values)
            )
            return result.rowcount == 1

    def mark_sending(
        self,
        job: Job,
        body_hash: str,
        payload: Mapping[str, Any],
        now: datetime,
        lease_s: float,
    ) -> bool:
        """The last write before the platform call. Refused when the lease is lost or over.
        The `delivery_attempt` row is written in the same transaction."""
        return self.mark_sending_many([Sending(job, body_hash, payload)], now, lease_s)[0]

    def mark_sending_many(
        self, sends: Sequence[Sending], now: datetime, lease_s: float
    ) -> list[bool]:
        """Group commit of the `sending` marks (and attempt rows) of deliveries that go out
        together: one transaction, each row fenced on its own (owner, attempt, `claimed`,
        lease not over). A refused row is not marked and must not be sent."""
        lease_until = now + timedelta(seconds=lease_s)
        steps = []
        for one in sends:
            job = one.job
            values: dict[str, Any] = {
                "f_id": job.id,
                "f_owner": job.lease_owner,
                "f_attempt": job.attempt,
                "f_now": now,
                "v_hash": one.body_hash,
                "v_lease_until": lease_until,
                "v_now": now,
            }
            # The stored payload going out unchanged (a fan-out body or a retry) is not
            # written back: serialising it again would store the very same value.
            same_body = one.payload is job.payload
            if not same_body:
                values["v_payload"] = dict(one.payload)
            attempt = {
                "a_delivery": job.id,
                "a_attempt": job.attempt,
                "a_worker": job.lease_owner,
                "a_started": now,
            }
            name = "mark_sending_same_body" if same_body else "mark_sending"
            steps.append((name, values, attempt))
        return self._fenced_group(steps, "insert_attempt")

    def extend_sending(self, job: Job, now: datetime, lease_s: float) -> bool:
        """A fresh lease for a `sending` row whose call has not started yet (late in its
        group): refused once the lease is over or the row is no longer this worker's."""
        with self.write() as conn:
            result = conn.execute(
                sa.update(D)
                .where(self._fence(job, DeliveryState.SENDING), D.c.lease_until >= now)
                .values(lease_until=now + timedelta(seconds=lease_s), updated_at=now)
            )
            return result.rowcount == 1

    def mark_sent(self, job: Job, receipt: Receipt, now: datetime) -> bool:
        return self.finish_many([Finish(job, DeliveryState.SENT, "sent", now, receipt)])[0]

    def mark_retry(self, job: Job, at: datetime, kind: str, error: str, now: datetime) -> bool:
        finish = Finish(job, DeliveryState.RETRY_WAIT, kind, now, error=error, retry_at=at)
        return self.finish_many([finish])[0]

    def mark_unknown(self, job: Job, error: str, now: datetime) -> bool:
        finish = Finish(job, DeliveryState.UNKNOWN, "unknown_outcome", now, error=error)
        return self.finish_many([finish])[0]

    def finish_many(self, finishes: Sequence[Finish]) -> list[bool]:
        """Group commit of call outcomes (sent, retry_wait, unknown, failed, expired) with
        their attempt rows: one transaction, each row fenced on its own (owner, attempt,
        `sending`). A refused row changes nothing: the sweeper or another worker has it."""
        steps = []
        for finish in finishes:
            job, now = finish.job, finish.at
            values: dict[str, Any] = {
                "f_id": job.id,
                "f_owner": job.lease_owner,
                "f_attempt": job.attempt,
                "v_now": now,
            }
            if finish.state is DeliveryState.SENT:
                receipt = finish.receipt
                assert receipt is not None  # Finish checks it
                values["v_remote_id"] = receipt.remote_id
                values["v_remote_url"] = receipt.url
                values["v_sent_at"] = receipt.accepted_at or now
                values["v_notes"] = receipt_notes(receipt)
                detail: str | None = receipt.remote_id
            else:
                # Platform error text may quote a token.
                detail = redact(finish.error)[:2000]
                values["v_error"] = detail
                if finish.state is not DeliveryState.UNKNOWN:  # its kind is in the statement
                    values["v_kind"] = finish.kind
                if finish.state is DeliveryState.RETRY_WAIT:
                    values["v_due_at"] = finish.retry_at
                elif finish.state is not DeliveryState.UNKNOWN:
                    values["v_state"] = finish.state.value
            attempt = {
                "a_delivery": job.id,
                "a_attempt": job.attempt,
                "a_finished": now,
                "a_outcome": finish.kind,
                "a_detail": detail,
            }
            steps.append((_FINISH_STATEMENT[finish.state], values, attempt))
        return self._fenced_group(steps, "finish_attempt")

    def _fenced_group(
        self, steps: Sequence[tuple[str, dict[str, Any], dict[str, Any]]], attempt_statement: str
    ) -> list[bool]:
        """In one transaction, per step: the fenced write, then (only where the fence held)
        its attempt-row write. Returns per step whether the fence held."""
        if not steps:
            return []
        done: list[bool] = []
        held: list[Mapping[str, Any]] = []
        if self.is_sqlite:
            driver = self._driver
            with self.driver_write() as run:
                for name, values, attempt in steps:
                    ok = run(driver[name], values).rowcount == 1
                    if ok:
                        held.append(attempt)
                    done.append(ok)
                # The attempt rows of the rows whose fence held, in one executemany.
                if held:
                    run(driver[attempt_statement], held)
            return done
        with self.write() as conn:
            for name, values, attempt in steps:
                ok = conn.execute(_FENCED[name], values).rowcount == 1
                if ok:
                    held.append(attempt)
                done.append(ok)
            if held:
                conn.execute(_FENCED[attempt_statement], held)
        return done

    def mark_final(
        self, job: Job, state: DeliveryState, kind: str, error: str, now: datetime
    ) -> bool:
        """failed / expired / cancelled from `claimed` or `sending`."""
        error = redact(error)  # platform error text may quote a token
        with self.write() as conn:
            result = conn.execute(
                sa.update(D)
                .where(
                    D.c.id == job.id,
                    D.c.lease_owner == job.lease_owner,
                    D.c.attempt == job.attempt,
                    D.c.state.in_((DeliveryState.CLAIMED.value, DeliveryState.SENDING.value)),
                )
                .values(
                    state=state.value,
                    lease_until=None,
                    last_error=error[:2000],
                    error_kind=kind,
                    updated_at=now,
                )
            )
            if result.rowcount != 1:
                return False
            self._finish_attempt(conn, job, kind, error[:2000], now)
            return True

    def stop_account(self, job: Job, error: str, now: datetime) -> bool:
        """Credentials refused: the delivery waits (pending) and the whole account stops,
        with an open incident so the unit's admins are told."""

        error = redact(error)  # platform error text may quote a token
        with self.write() as conn:
            result = conn.execute(
                sa.update(D)
                .where(self._fence(job, DeliveryState.SENDING))
                .values(
                    state=DeliveryState.PENDING.value,
                    lease_owner=None,
                    lease_until=None,
                    last_error=error[:2000],
                    error_kind="auth",
                    updated_at=now,
                )
            )
            if result.rowcount != 1:
                return False
            self._finish_attempt(conn, job, "auth", error[:2000], now)
            stop_account_in(
                conn,
                self.is_sqlite,
                job.account_id,
                job.unit_code,
                error,
                now,
                actor=f"worker:{job.lease_owner}",
            )
            return True

    def retries_done(self, delivery_id: int) -> int:
        with self.read() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(ATTEMPT)
                    .where(
                        ATTEMPT.c.delivery_id == delivery_id,
                        ATTEMPT.c.outcome.in_(RETRY_OUTCOMES),
                    )
                ).scalar_one()
            )

    # --- sweeper and reconcile -----------------------------------------------------------

    def sweep(self, now: datetime) -> SweepResult:
        with self.write() as conn:
            reclaimed = conn.execute(
                sa.update(D)
                .where(D.c.state == DeliveryState.CLAIMED.value, D.c.lease_until < now)
                .values(
                    state=DeliveryState.PENDING.value,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
            ).rowcount
            # Owner and attempt stay: a late write from the old worker is still fenced out.
            unknown = conn.execute(
                sa.update(D)
                .where(
                    D.c.state.in_((DeliveryState.SENDING.value, DeliveryState.RECONCILING.value)),
                    D.c.lease_until < now,
                )
                .values(
                    state=DeliveryState.UNKNOWN.value,
                    error_kind="lease_expired",
                    last_error="the worker's lease ran out during the call",
                    updated_at=now,
                )
            ).rowcount
            expired = conn.execute(
                sa.update(D)
                .where(
                    D.c.state.in_(EXPIRABLE),
                    D.c.expires_at.is_not(None),
                    D.c.expires_at <= now,
                )
                .values(
                    state=DeliveryState.EXPIRED.value,
                    lease_owner=None,
                    lease_until=None,
                    error_kind="expired",
                    updated_at=now,
                )
            ).rowcount
            return SweepResult(reclaimed=reclaimed, unknown=unknown, expired=expired)

    def claim_unknown(self, owner: str, now: datetime, limit: int, lease_s: float) -> list[Job]:
        with self.write() as conn:
            due = D.alias("due")
            pick = (
                sa.select(due.c.id)
                .where(due.c.state == DeliveryState.UNKNOWN.value)
                .where(due.c.updated_at <= now)
                .order_by(due.c.updated_at, due.c.id)
                .limit(limit)
            )
            return self._take(conn, pick, due, DeliveryState.RECONCILING, owner, now, lease_s)

    def resolve(
        self,
        job: Job,
        state: DeliveryState,
        now: datetime,
        receipt: Receipt | None = None,
        note: str = "",
    ) -> bool:
        """End a reconciliation: sent (found), pending (proven absent), needs_review, or back
        to unknown (the read-back failed; try later)."""
        values: dict[str, Any] = {"state": state.value, "updated_at": now, "lease_until": None}
        if state is DeliveryState.SENT:
            if receipt is None:
                raise ValueError("a reconciled `sent` needs the platform's receipt")
            values.update(
                remote_id=receipt.remote_id,
                remote_url=receipt.url,
                sent_at=receipt.accepted_at or now,
                # a Zalo article found by reconcile is broadcast then: its notes too
                receipt_notes=receipt_notes(receipt),
                last_error=None,
                error_kind=None,
            )
        elif state is DeliveryState.PENDING:
            values.update(due_at=now, lease_owner=None, error_kind="proven_absent", last_error=note)
        else:
            values.update(last_error=note[:2000], error_kind=state.value)
        if state is DeliveryState.UNKNOWN:
            # Not picked again before the next round of reconciliation.
            values["updated_at"] = now + timedelta(seconds=30)
        with self.write() as conn:
            result = conn.execute(
                sa.update(D).where(self._fence(job, DeliveryState.RECONCILING)).values(**values)
            )
            return result.rowcount == 1

    # --- shared rate limits --------------------------------------------------------------

    def reserve(self, gaps: Mapping[str, float], now: datetime) -> datetime | None:
        """Take the next slot on every key at once (per account, per platform), or none:
        returns None when taken, else the earliest time worth trying again."""
        keys = [key for key, gap in gaps.items() if gap > 0]
        if not keys:
            return None
        with self.write() as conn:
            conn.execute(
                self.insert_ignoring(LIMIT, ("key",)),
                [{"key": key, "next_allowed_at": None, "window_count": 0} for key in keys],
            )
            held = conn.execute(
                sa.select(sa.func.max(LIMIT.c.next_allowed_at)).where(
                    LIMIT.c.key.in_(keys), LIMIT.c.next_allowed_at > now
                )
            ).scalar_one_or_none()
            if held is not None:
                return cast(datetime, held)
            for key in keys:
                conn.execute(
                    sa.update(LIMIT)
                    .where(LIMIT.c.key == key)
                    .values(next_allowed_at=now + timedelta(seconds=gaps[key]))
                )
            return None

    def hold(self, key: str, until: datetime) -> None:
        """The platform said wait: no worker sends on this key before `until`."""
        with self.write() as conn:
            conn.execute(
                self.insert_ignoring(LIMIT, ("key",)),
                [{"key": key, "next_allowed_at": None, "window_count": 0}],
            )
            conn.execute(
                sa.update(LIMIT)
                .where(
                    LIMIT.c.key == key,
                    sa.or_(LIMIT.c.next_allowed_at.is_(None), LIMIT.c.next_allowed_at < until),
                )
                .values(next_allowed_at=until)
            )

    # --- questions -----------------------------------------------------------------------

    def is_idle(self, now: datetime) -> bool:
        """Nothing runnable is due and nothing is in flight."""
        with self.read() as conn:
            in_flight = conn.execute(
                sa.select(D.c.id).where(D.c.state.in_(IN_FLIGHT)).limit(1)
            ).first()
            if in_flight is not None:
                return False
            due = D.alias("due")
            runnable = conn.execute(
                sa.select(due.c.id)
                .where(
                    due.c.state.in_(CLAIMABLE),
                    due.c.due_at <= now,
                    sa.or_(due.c.expires_at.is_(None), due.c.expires_at > now),
                    *self._runnable(due, conn, now, limits=False),
                    ~sa.exists().where(WITHDRAWAL.c.delivery_id == due.c.id),
                )
                .limit(1)
            ).first()
            return runnable is None

    def next_due_at(self, now: datetime) -> datetime | None:
        with self.read() as conn:
            value = conn.execute(
                sa.select(sa.func.min(D.c.due_at)).where(D.c.state.in_(CLAIMABLE))
            ).scalar_one_or_none()
            return cast(datetime | None, value)

    def counts(self) -> dict[str, int]:
        with self.read() as conn:
            rows = conn.execute(sa.select(D.c.state, sa.func.count()).group_by(D.c.state))
            return {state: int(n) for state, n in rows}


# --- posts: fan-out and decisions ------------------------------------------------------------

POST = table_of(PostRow)
ARTICLE = table_of(ArticleRow)


@dataclass(frozen=True, slots=True)
class PlannedPost:
    unit_code: str
    state: PostState
    priority: int
    expires_at: datetime | None
    deliveries: tuple[NewDelivery, ...]  # post_id is filled in at insert (0 here)


class SqlPostStore:
    """Posts and the decisions on them; shares the delivery store's transactions."""

    def __init__(self, deliveries: SqlDeliveryStore) -> None:
        self.deliveries = deliveries
        self.is_sqlite = deliveries.is_sqlite

    def fan_out(
        self, article_id: int, plans: list[PlannedPost], now: datetime, actor: str
    ) -> tuple[int, int]:
        """All posts and deliveries of one article in one transaction (an outbox): one bulk
        insert of the posts, one of the deliveries (publisher/store/bulk.py), existing
        (article, unit) and (post, account) pairs left alone."""
        from publisher import audit

        store = self.deliveries
        if store._insert_post is None:
            store._insert_post = BulkInsert(
                POST, POST_COLUMNS, ("article_id", "unit_code"), store.engine.dialect
            )
        with store.write() as conn:
            # Enum members' `_value_`: the `.value` property costs ~1 µs, 20,000 times here.
            posts = store._insert_post.run(
                conn,
                [
                    (
                        article_id,
                        plan.unit_code,
                        plan.state._value_,
                        plan.priority,
                        plan.expires_at,
                        [],
                        "",
                        now,
                        now,
                        # What the triggers would make of the deliveries inserted below, in
                        # this transaction (a new post gets every one of them): they then
                        # find each platform listed and leave the post alone. Rewriting the
                        # post and its ix_post_queue_count entry once per delivery made
                        # SQLite's national fan-out 1.5× slower (post_platforms.py).
                        post_platforms.listing(d.platform for d in plan.deliveries),
                    )
                    for plan in plans
                ],
            )
            ids = dict(
                conn.execute(
                    sa.select(POST.c.unit_code, POST.c.id).where(POST.c.article_id == article_id)
                ).all()
            )
            deliveries = store.insert_delivery_rows(
                conn,
                [
                    (
                        ids[plan.unit_code],
                        d.article_id,
                        d.unit_code,
                        d.account_id,
                        d.platform,
                        d.state._value_,
                        d.due_at,
                        d.expires_at,
                        d.priority,
                        0,
                        dict(d.payload) if d.payload is not None else None,
                        now,
                        now,
                    )
                    for plan in plans
                    for d in plan.deliveries
                ],
            )
            conn.execute(sa.update(ARTICLE).where(ARTICLE.c.id == article_id).values(routed=True))
            audit.append(
                conn,
                self.is_sqlite,
                at=now,
                actor=actor,
                action="route",
                target=f"article:{article_id}",
                details={"posts": posts, "deliveries": deliveries},
            )
            return posts, deliveries

    def posts(self, conn: sa.Connection, post_ids: list[int]) -> list[Any]:
        return list(conn.execute(sa.select(POST).where(POST.c.id.in_(post_ids))).all())

    def set_post(self, conn: sa.Connection, post_id: int, **values: Any) -> None:
        conn.execute(sa.update(POST).where(POST.c.id == post_id).values(**values))

    def move_deliveries(
        self,
        conn: sa.Connection,
        post_id: int,
        from_states: tuple[str, ...],
        **values: Any,
    ) -> int:
        """Change the post's deliveries that are in `from_states` (never in-flight ones)."""
        return int(
            conn.execute(
                sa.update(D)
                .where(D.c.post_id == post_id, D.c.state.in_(from_states))
                .values(**values)
            ).rowcount
        )

    def add_pause(self, conn: sa.Connection, pause: Pause) -> int:
        return int(
            conn.execute(
                sa.insert(PAUSE)
                .values(
                    scope=pause.scope.value,
                    target=pause.target,
                    reason=pause.reason,
                    created_by=pause.created_by,
                    created_at=pause.created_at,
                    until=pause.until,
                )
                .returning(PAUSE.c.id)
            ).scalar_one()
        )

    def lift_pauses(
        self,
        conn: sa.Connection,
        scope: PauseScope,
        target: str,
        by: str,
        reason: str,
        now: datetime,
    ) -> int:
        return int(
            conn.execute(
                sa.update(PAUSE)
                .where(
                    PAUSE.c.scope == scope.value,
                    PAUSE.c.target == target,
                    PAUSE.c.lifted_at.is_(None),
                )
                .values(lifted_at=now, lifted_by=by, lift_reason=reason)
            ).rowcount
        )


def load_directory(engine: sa.Engine) -> tuple[list[Unit], list[ChannelAccount]]:
    """Units and channel accounts read with plain Core queries (routing a directive to 5,000
    units reads 20,000 accounts; ORM object loading would cost more than the fan-out)."""
    # Only the columns the domain values hold (not secrets, timestamps or the unit path):
    # converting 17,000 rows' unused columns cost a fifth of the whole fan-out.
    unit_columns = [UNIT.c[name] for name in UNIT_FIELDS]
    account_columns = [ACCOUNT.c[name] for name in ACCOUNT_FIELDS]
    with engine.connect() as conn:
        units = [unit_from_mapping(r._mapping) for r in conn.execute(sa.select(*unit_columns))]
        accounts = [
            account_from_mapping(r._mapping)
            for r in conn.execute(sa.select(*account_columns).order_by(ACCOUNT.c.id))
        ]
    return units, accounts


UNIT_FIELDS = (
    "code",
    "name",
    "kind",
    "parent_code",
    "code_list",
    "short_name",
    "active",
    "merged_into",
)
ACCOUNT_FIELDS = (
    "id",
    "unit_code",
    "platform",
    "external_id",
    "display_name",
    "credentials_ref",
    "token_expires_at",
    "status",
    "language",
)


def stop_account_in(
    conn: sa.Connection,
    is_sqlite: bool,
    account_id: str,
    unit_code: str,
    error: str,
    now: datetime,
    *,
    actor: str,
    **details: str,
) -> None:
    """Inside the caller's transaction: a working account whose credentials were refused
    becomes `auth_failed`, with an open incident (so the unit's admins are told) and an
    audit event. An account already stopped is left as it is. `error` is redacted already."""
    from publisher import audit

    changed = conn.execute(
        sa.update(ACCOUNT)
        .where(ACCOUNT.c.id == account_id, ACCOUNT.c.status == AccountStatus.ACTIVE.value)
        .values(status=AccountStatus.AUTH_FAILED.value, status_reason=error[:500], updated_at=now)
    ).rowcount
    if not changed:
        return
    conn.execute(
        sa.insert(INCIDENT).values(
            key=f"auth:{account_id}",
            kind="auth_failed",
            unit_code=unit_code,
            detail=error[:2000],
            opened_at=now,
        )
    )
    audit.append(
        conn,
        is_sqlite,
        at=now,
        actor=actor,
        action="account_stopped",
        target=account_id,
        details={"reason": error[:500], "unit": unit_code, **details},
    )
