"""The recall store over SQL: recording a recall, and the withdrawal engine's claim, fenced
writes and sweeper (docs/delivery.md, "Recall").

A recall is one transaction: lock the deliveries of the recalled posts, stop the ones not yet
out (`cancelled`, fencing out a worker that has just claimed one), make one withdrawal row
per delivery (unique per delivery: done once, whoever asks again), and — with the service —
mark the posts `recalled` and audit it. From then on the delivery claim skips every delivery
that has a withdrawal row, so nothing recalled is ever sent, whatever state a race leaves it in.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from channels.base import Receipt
from publisher import audit
from publisher.delivery.jobs import RecallCreated, WithdrawalJob
from publisher.domain import DeliveryState, Recall, WithdrawalState
from publisher.redact import redact
from publisher.store.archive import restore_posts
from publisher.store.delivery_sql import (
    WITHDRAWAL,
    D,
    SqlDeliveryStore,
    _DriverStatement,
    stop_account_in,
)
from publisher.store.tables import RecallRow, UTCDateTime, table_of

UTC_TIME = UTCDateTime()

RECALL = table_of(RecallRow)
W = WITHDRAWAL

CANCELLABLE = (
    DeliveryState.AWAITING_APPROVAL.value,
    DeliveryState.PENDING.value,
    DeliveryState.RETRY_WAIT.value,
    DeliveryState.CLAIMED.value,
)
NEVER_SENT = (
    DeliveryState.CANCELLED.value,
    DeliveryState.FAILED.value,
    DeliveryState.EXPIRED.value,
)
OUTCOME_PENDING = (
    DeliveryState.CLAIMED.value,
    DeliveryState.SENDING.value,
    DeliveryState.UNKNOWN.value,
    DeliveryState.RECONCILING.value,
)
LEASED = (WithdrawalState.CLAIMED.value, WithdrawalState.WITHDRAWING.value)
JOB_COLUMNS = (
    W.c.id,
    W.c.recall_id,
    W.c.delivery_id,
    W.c.post_id,
    W.c.unit_code,
    W.c.account_id,
    W.c.platform,
    W.c.attempt,
    W.c.lease_owner,
    W.c.lease_until,
    W.c.retries,
    D.c.state.label("delivery_state"),
    D.c.remote_id,
    D.c.remote_url,
    RECALL.c.notice,
    RECALL.c.reason,
    RECALL.c.requested_at,
)


def _job(row: Any) -> WithdrawalJob:
    m = row._mapping
    return WithdrawalJob(
        id=m["id"],
        recall_id=m["recall_id"],
        delivery_id=m["delivery_id"],
        post_id=m["post_id"],
        unit_code=m["unit_code"],
        account_id=m["account_id"],
        platform=m["platform"],
        attempt=m["attempt"],
        lease_owner=m["lease_owner"],
        lease_until=m["lease_until"],
        retries=m["retries"],
        delivery_state=DeliveryState(m["delivery_state"]),
        remote_id=m["remote_id"],
        remote_url=m["remote_url"],
        notice=m["notice"],
        reason=m["reason"],
        requested_at=m["requested_at"],
    )


# Is any withdrawal due? Asked by every worker round; almost always no.
_ANY_DUE = (
    sa.select(W.c.id)
    .where(
        W.c.state == WithdrawalState.PENDING.value,
        W.c.due_at <= sa.bindparam("now", type_=UTC_TIME),
    )
    .limit(1)
)


class SqlRecallStore:
    def __init__(self, deliveries: SqlDeliveryStore) -> None:
        self.deliveries = deliveries
        self.is_sqlite = deliveries.is_sqlite
        # SQLite: the probe compiled once and run on the held driver connection.
        self._any_due = (
            _DriverStatement.of(_ANY_DUE, deliveries.engine.dialect) if self.is_sqlite else None
        )

    # --- recording a recall ------------------------------------------------------------

    def recall(self, recall: Recall, post_ids: list[int], now: datetime) -> RecallCreated:
        with self.deliveries.write() as conn:
            return self.recall_in(conn, recall, post_ids, now)

    def recall_in(
        self, conn: sa.Connection, recall: Recall, post_ids: list[int], now: datetime
    ) -> RecallCreated:
        """Inside the caller's write transaction (the service audits in the same one)."""
        # Archived deliveries of these posts were published too: bring them back first.
        restore_posts(conn, post_ids)
        # Lock the posts' deliveries first (PostgreSQL; SQLite holds the one write lock):
        # a worker's next fenced write waits for this transaction and then finds the row
        # cancelled, and a claim skips locked rows.
        if not self.is_sqlite:
            conn.execute(sa.select(D.c.id).where(D.c.post_id.in_(post_ids)).with_for_update()).all()
        recall_id = int(
            conn.execute(
                sa.insert(RECALL)
                .values(
                    scope=recall.scope.value,
                    article_id=recall.article_id,
                    post_id=recall.post_id,
                    reason=recall.reason,
                    notice=recall.notice,
                    requested_by=recall.requested_by,
                    requested_at=recall.requested_at,
                    cancelled=0,
                )
                .returning(RECALL.c.id)
            ).scalar_one()
        )
        cancelled = int(
            conn.execute(
                sa.update(D)
                .where(D.c.post_id.in_(post_ids), D.c.state.in_(CANCELLABLE))
                .values(
                    state=DeliveryState.CANCELLED.value,
                    lease_until=None,
                    error_kind="recalled",
                    last_error=recall.reason[:2000],
                    updated_at=now,
                )
            ).rowcount
        )
        conn.execute(sa.update(RECALL).where(RECALL.c.id == recall_id).values(cancelled=cancelled))
        state = sa.case(
            (D.c.state.in_(NEVER_SENT), WithdrawalState.NOT_SENT.value),
            else_=WithdrawalState.PENDING.value,
        )
        source = sa.select(
            sa.literal(recall_id),
            D.c.id,
            D.c.post_id,
            D.c.unit_code,
            D.c.account_id,
            D.c.platform,
            state,
            sa.literal(now, UTC_TIME),
            sa.literal(0),
            sa.literal(0),
            sa.literal(now, UTC_TIME),
            sa.literal(now, UTC_TIME),
        ).where(D.c.post_id.in_(post_ids))
        columns = [
            "recall_id",
            "delivery_id",
            "post_id",
            "unit_code",
            "account_id",
            "platform",
            "state",
            "due_at",
            "attempt",
            "retries",
            "created_at",
            "updated_at",
        ]
        statement = (
            self.deliveries.insert_ignoring(W, ("delivery_id",))
            .from_select(columns, source)
            .returning(W.c.state)
        )
        states = list(conn.execute(statement).scalars())
        to_withdraw = sum(1 for s in states if s == WithdrawalState.PENDING.value)
        return RecallCreated(recall_id, cancelled, len(states), to_withdraw)

    # --- claim -------------------------------------------------------------------------

    def claim_withdrawals(
        self, owner: str, now: datetime, limit: int, lease_s: float
    ) -> list[WithdrawalJob]:
        """Due withdrawals whose delivery's outcome is known, oldest first."""
        # Recalls are rare and every worker round asks: look first without the write lock.
        if self._any_due is not None:
            due_any = bool(self.deliveries.driver_read(self._any_due, {"now": now}))
        else:
            with self.deliveries.read() as conn:
                due_any = conn.execute(_ANY_DUE, {"now": now}).first() is not None
        if not due_any:
            return []
        with self.deliveries.write() as conn:
            due = W.alias("due")
            pick = (
                sa.select(due.c.id)
                .where(
                    due.c.state == WithdrawalState.PENDING.value,
                    due.c.due_at <= now,
                    ~sa.exists().where(D.c.id == due.c.delivery_id, D.c.state.in_(OUTCOME_PENDING)),
                )
                .order_by(due.c.due_at, due.c.id)
                .limit(limit)
            )
            chosen: Any
            if self.is_sqlite:
                chosen = pick.scalar_subquery()
            else:
                cte = pick.with_for_update(skip_locked=True, of=due).cte("picked")
                chosen = sa.select(cte.c.id)
            ids = list(
                conn.execute(
                    sa.update(W)
                    .where(W.c.id.in_(chosen))
                    .values(
                        state=WithdrawalState.CLAIMED.value,
                        lease_owner=owner,
                        lease_until=now + timedelta(seconds=lease_s),
                        attempt=W.c.attempt + 1,
                        updated_at=now,
                    )
                    .returning(W.c.id)
                ).scalars()
            )
            if not ids:
                return []
            rows = conn.execute(
                sa.select(*JOB_COLUMNS)
                .select_from(
                    W.join(D, D.c.id == W.c.delivery_id).join(RECALL, RECALL.c.id == W.c.recall_id)
                )
                .where(W.c.id.in_(ids))
                .order_by(W.c.due_at, W.c.id)
            )
            return [_job(row) for row in rows]

    # --- fenced writes -----------------------------------------------------------------

    def _fence(self, job: WithdrawalJob, *expected: WithdrawalState) -> Any:
        return sa.and_(
            W.c.id == job.id,
            W.c.lease_owner == job.lease_owner,
            W.c.attempt == job.attempt,
            W.c.state.in_([e.value for e in expected]),
        )

    def _to_pending(
        self,
        conn: sa.Connection,
        job: WithdrawalJob,
        expected: WithdrawalState,
        now: datetime,
        **values: Any,
    ) -> bool:
        """Fenced: the withdrawal goes back to `pending` with its lease cleared (released,
        retried later, or held for its account), plus `values`."""
        result = conn.execute(
            sa.update(W)
            .where(self._fence(job, expected))
            .values(
                state=WithdrawalState.PENDING.value,
                lease_owner=None,
                lease_until=None,
                updated_at=now,
                **values,
            )
        )
        return bool(result.rowcount == 1)

    def _audit(
        self, conn: sa.Connection, job: WithdrawalJob, now: datetime, **details: Any
    ) -> None:
        audit.append(
            conn,
            self.is_sqlite,
            at=now,
            actor=f"worker:{job.lease_owner}",
            action="withdrawal",
            target=f"delivery:{job.delivery_id}",
            details={
                "recall": job.recall_id,
                "post": job.post_id,
                "unit": job.unit_code,
                "account": job.account_id,
                **details,
            },
        )

    def release_withdrawal(self, job: WithdrawalJob, due_at: datetime, now: datetime) -> bool:
        """Give a claimed withdrawal back untouched (no call was made), due at `due_at`."""
        with self.deliveries.write() as conn:
            return self._to_pending(conn, job, WithdrawalState.CLAIMED, now, due_at=due_at)

    def mark_withdrawing(self, job: WithdrawalJob, now: datetime, lease_s: float) -> bool:
        """The last write before the platform call; refused once the lease is lost or over."""
        with self.deliveries.write() as conn:
            result = conn.execute(
                sa.update(W)
                .where(self._fence(job, WithdrawalState.CLAIMED), W.c.lease_until >= now)
                .values(
                    state=WithdrawalState.WITHDRAWING.value,
                    lease_until=now + timedelta(seconds=lease_s),
                    remote_id=job.remote_id,
                    remote_url=job.remote_url,
                    updated_at=now,
                )
            )
            return result.rowcount == 1

    def mark_withdrawn(
        self, job: WithdrawalJob, receipt: Receipt, mode: str, now: datetime
    ) -> bool:
        with self.deliveries.write() as conn:
            result = conn.execute(
                sa.update(W)
                .where(self._fence(job, WithdrawalState.WITHDRAWING))
                .values(
                    state=WithdrawalState.WITHDRAWN.value,
                    lease_until=None,
                    withdrawn_at=receipt.accepted_at or now,
                    last_error=None,
                    error_kind=None,
                    updated_at=now,
                )
            )
            if result.rowcount != 1:
                return False
            self._audit(conn, job, now, state=WithdrawalState.WITHDRAWN.value, mode=mode)
            return True

    def mark_manual(self, job: WithdrawalJob, kind: str, note: str, now: datetime) -> bool:
        """A person must remove it by hand: the API cannot, or refused for good."""
        note = redact(note)
        with self.deliveries.write() as conn:
            result = conn.execute(
                sa.update(W)
                .where(self._fence(job, WithdrawalState.CLAIMED, WithdrawalState.WITHDRAWING))
                .values(
                    state=WithdrawalState.NEEDS_MANUAL_REMOVAL.value,
                    lease_until=None,
                    remote_id=job.remote_id,
                    remote_url=job.remote_url,
                    error_kind=kind[:24],
                    last_error=note[:2000],
                    updated_at=now,
                )
            )
            if result.rowcount != 1:
                return False
            self._audit(
                conn,
                job,
                now,
                state=WithdrawalState.NEEDS_MANUAL_REMOVAL.value,
                url=job.remote_url,
                why=note[:500],
            )
            return True

    def mark_not_sent(self, job: WithdrawalJob, now: datetime) -> bool:
        """The delivery never went out (or was proven absent after the recall): stop it for
        good and close the withdrawal. Refused if the delivery has gone out meanwhile."""
        with self.deliveries.write() as conn:
            state = conn.execute(sa.select(D.c.state).where(D.c.id == job.delivery_id)).scalar_one()
            if state not in CANCELLABLE and state not in NEVER_SENT:
                return False  # it went out meanwhile: not this write's call
            result = conn.execute(
                sa.update(W)
                .where(self._fence(job, WithdrawalState.CLAIMED))
                .values(state=WithdrawalState.NOT_SENT.value, lease_until=None, updated_at=now)
            )
            if result.rowcount != 1:
                return False
            if state in CANCELLABLE:  # proven absent after the recall: it never goes out
                conn.execute(
                    sa.update(D)
                    .where(D.c.id == job.delivery_id, D.c.state == state)
                    .values(
                        state=DeliveryState.CANCELLED.value,
                        lease_until=None,
                        error_kind="recalled",
                        last_error=job.reason[:2000],
                        updated_at=now,
                    )
                )
            self._audit(conn, job, now, state=WithdrawalState.NOT_SENT.value)
            return True

    def mark_withdrawal_failed(
        self, job: WithdrawalJob, kind: str, error: str, now: datetime
    ) -> bool:
        error = redact(error)
        with self.deliveries.write() as conn:
            result = conn.execute(
                sa.update(W)
                .where(self._fence(job, WithdrawalState.CLAIMED, WithdrawalState.WITHDRAWING))
                .values(
                    state=WithdrawalState.FAILED.value,
                    lease_until=None,
                    error_kind=kind[:24],
                    last_error=error[:2000],
                    updated_at=now,
                )
            )
            if result.rowcount != 1:
                return False
            self._audit(conn, job, now, state=WithdrawalState.FAILED.value, error=error[:500])
            return True

    def retry_withdrawal(
        self, job: WithdrawalJob, at: datetime, kind: str, error: str, now: datetime
    ) -> bool:
        error = redact(error)
        with self.deliveries.write() as conn:
            return self._to_pending(
                conn,
                job,
                WithdrawalState.WITHDRAWING,
                now,
                due_at=at,
                retries=W.c.retries + 1,
                error_kind=kind[:24],
                last_error=error[:2000],
            )

    def stop_account_withdrawal(self, job: WithdrawalJob, error: str, now: datetime) -> bool:
        """Credentials refused: the withdrawal waits (pending) and the whole account stops,
        with an open incident and an audit event, as for a delivery."""
        error = redact(error)
        with self.deliveries.write() as conn:
            if not self._to_pending(
                conn,
                job,
                WithdrawalState.WITHDRAWING,
                now,
                error_kind="auth",
                last_error=error[:2000],
            ):
                return False
            stop_account_in(
                conn,
                self.is_sqlite,
                job.account_id,
                job.unit_code,
                error,
                now,
                actor=f"worker:{job.lease_owner}",
                during="withdraw",
            )
            return True

    # --- sweeper and questions ---------------------------------------------------------

    def sweep_withdrawals(self, now: datetime) -> int:
        """Expired leases go back to pending: withdrawing again is safe (idempotent). The
        next claim raises the attempt, so the old worker's late writes are refused."""
        with self.deliveries.write() as conn:
            return int(
                conn.execute(
                    sa.update(W)
                    .where(W.c.state.in_(LEASED), W.c.lease_until < now)
                    .values(
                        state=WithdrawalState.PENDING.value,
                        lease_until=None,
                        error_kind="lease_expired",
                        updated_at=now,
                    )
                ).rowcount
            )

    def withdrawals_idle(self, now: datetime) -> bool:
        with self.deliveries.read() as conn:
            busy = conn.execute(sa.select(W.c.id).where(W.c.state.in_(LEASED)).limit(1)).first()
            if busy is not None:
                return False
            due = conn.execute(
                sa.select(W.c.id)
                .where(
                    W.c.state == WithdrawalState.PENDING.value,
                    W.c.due_at <= now,
                    ~sa.exists().where(D.c.id == W.c.delivery_id, D.c.state.in_(OUTCOME_PENDING)),
                )
                .limit(1)
            ).first()
            return due is None

    def next_withdrawal_due(self) -> datetime | None:
        with self.deliveries.read() as conn:
            value = conn.execute(
                sa.select(sa.func.min(W.c.due_at)).where(W.c.state == WithdrawalState.PENDING.value)
            ).scalar_one_or_none()
            return value if isinstance(value, datetime) else None

    def reserve(self, gaps: Any, now: datetime) -> datetime | None:
        return self.deliveries.reserve(gaps, now)

    def hold(self, key: str, until: datetime) -> None:
        self.deliveries.hold(key, until)
