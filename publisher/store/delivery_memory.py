"""The delivery store in memory: the same contract as `SqlDeliveryStore`, for fast tests.

One lock stands in for the database's transactions; every fenced write checks owner, attempt
and expected state exactly as the SQL does. `tests/delivery/test_store_contract.py` runs the
same checks on both.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from channels.base import Receipt
from publisher.delivery.jobs import Finish, Job, NewDelivery, Sending, SweepResult, receipt_notes
from publisher.domain import AccountStatus, DeliveryState, Pause, PauseScope

CLAIMABLE = {DeliveryState.PENDING, DeliveryState.RETRY_WAIT}
IN_FLIGHT = {
    DeliveryState.CLAIMED,
    DeliveryState.SENDING,
    DeliveryState.UNKNOWN,
    DeliveryState.RECONCILING,
}
EXPIRABLE = {DeliveryState.AWAITING_APPROVAL, DeliveryState.PENDING, DeliveryState.RETRY_WAIT}


@dataclass
class _Row:
    id: int
    new: NewDelivery
    state: DeliveryState
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    attempt: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = None
    payload: Mapping[str, Any] | None = None
    body_hash: str | None = None
    remote_id: str | None = None
    remote_url: str | None = None
    error_kind: str | None = None
    last_error: str | None = None
    receipt_notes: list[dict[str, str]] | None = None

    def job(self) -> Job:
        assert self.lease_owner is not None
        assert self.lease_until is not None
        return Job(
            id=self.id,
            post_id=self.new.post_id,
            article_id=self.new.article_id,
            unit_code=self.new.unit_code,
            account_id=self.new.account_id,
            platform=self.new.platform,
            state=self.state,
            attempt=self.attempt,
            lease_owner=self.lease_owner,
            lease_until=self.lease_until,
            payload=self.payload,
            body_hash=self.body_hash,
            expires_at=self.new.expires_at,
            created_at=self.created_at,
            priority=self.new.priority,
        )


class MemoryDeliveryStore:
    def __init__(self, unit_paths: Mapping[str, str] | None = None) -> None:
        self.rows: dict[int, _Row] = {}
        self.pauses: list[Pause] = []
        self.account_status: dict[str, AccountStatus] = {}
        self.limits: dict[str, datetime] = {}
        self.attempts: dict[tuple[int, int], str] = {}  # (delivery, attempt) → outcome
        self.unit_paths = dict(unit_paths or {})  # "/CP/01/00004/" for subtree pauses
        self.recalled: set[int] = set()  # deliveries with a withdrawal: never claimed again
        self._lock = threading.Lock()

    # --- enqueue and claim -----------------------------------------------------------------

    def enqueue(self, deliveries: list[NewDelivery], now: datetime) -> int:
        with self._lock:
            keys = {(r.new.post_id, r.new.account_id) for r in self.rows.values()}
            added = 0
            for d in deliveries:
                if (d.post_id, d.account_id) in keys:
                    continue
                keys.add((d.post_id, d.account_id))
                row_id = len(self.rows) + 1
                self.rows[row_id] = _Row(row_id, d, d.state, d.due_at, now, now, payload=d.payload)
                added += 1
            return added

    def _paused(self, row: _Row, now: datetime) -> bool:
        for pause in self.pauses:
            if not pause.active_at(now):
                continue
            new = row.new
            if (
                pause.scope is PauseScope.ALL
                or (pause.scope is PauseScope.UNIT and pause.target == new.unit_code)
                or (pause.scope is PauseScope.ACCOUNT and pause.target == new.account_id)
                or (pause.scope is PauseScope.CHANNEL and pause.target == new.platform)
                or (
                    pause.scope is PauseScope.SUBTREE
                    and f"/{pause.target}/" in self.unit_paths.get(new.unit_code, "")
                )
            ):
                return True
        return False

    def _runnable(self, row: _Row, now: datetime, limits: bool = True) -> bool:
        new = row.new
        if row.state not in CLAIMABLE or row.due_at > now or row.id in self.recalled:
            return False
        if new.expires_at is not None and new.expires_at <= now:
            return False
        if self._paused(row, now):
            return False
        if (
            self.account_status.get(new.account_id, AccountStatus.ACTIVE)
            is not AccountStatus.ACTIVE
        ):
            return False
        if limits:
            for key in (f"account:{new.account_id}", f"platform:{new.platform}"):
                held = self.limits.get(key)
                if held is not None and held > now:
                    return False
        return True

    def _take(
        self, rows: list[_Row], state: DeliveryState, owner: str, now: datetime, lease_s: float
    ) -> list[Job]:
        for row in rows:
            row.state = state
            row.lease_owner = owner
            row.lease_until = now + timedelta(seconds=lease_s)
            row.attempt += 1
            row.updated_at = now
        return [row.job() for row in rows]

    def claim(self, owner: str, now: datetime, limit: int, lease_s: float) -> list[Job]:
        with self._lock:
            due = [r for r in self.rows.values() if self._runnable(r, now)]
            due.sort(key=lambda r: (-r.new.priority, r.due_at, r.id))
            return self._take(due[:limit], DeliveryState.CLAIMED, owner, now, lease_s)

    # --- fenced writes ---------------------------------------------------------------------

    def _fenced(self, job: Job, *expected: DeliveryState) -> _Row | None:
        row = self.rows.get(job.id)
        if (
            row is None
            or row.lease_owner != job.lease_owner
            or row.attempt != job.attempt
            or row.state not in expected
        ):
            return None
        return row

    def release(self, job: Job, due_at: datetime | None, now: datetime) -> bool:
        with self._lock:
            row = self._fenced(job, DeliveryState.CLAIMED)
            if row is None:
                return False
            row.state, row.lease_owner, row.lease_until = DeliveryState.PENDING, None, None
            row.due_at = due_at or row.due_at
            row.updated_at = now
            return True

    def mark_sending(
        self, job: Job, body_hash: str, payload: Mapping[str, Any], now: datetime, lease_s: float
    ) -> bool:
        return self.mark_sending_many([Sending(job, body_hash, payload)], now, lease_s)[0]

    def mark_sending_many(
        self, sends: Sequence[Sending], now: datetime, lease_s: float
    ) -> list[bool]:
        done = []
        with self._lock:
            for one in sends:
                row = self._fenced(one.job, DeliveryState.CLAIMED)
                if row is None or row.lease_until is None or row.lease_until < now:
                    done.append(False)
                    continue
                row.state = DeliveryState.SENDING
                row.body_hash, row.payload = one.body_hash, dict(one.payload)
                row.lease_until = now + timedelta(seconds=lease_s)
                row.updated_at = now
                self.attempts[(row.id, row.attempt)] = "sending"
                done.append(True)
        return done

    def _finish(self, job: Job, outcome: str) -> None:
        self.attempts[(job.id, job.attempt)] = outcome

    def extend_sending(self, job: Job, now: datetime, lease_s: float) -> bool:
        with self._lock:
            row = self._fenced(job, DeliveryState.SENDING)
            if row is None or row.lease_until is None or row.lease_until < now:
                return False
            row.lease_until = now + timedelta(seconds=lease_s)
            row.updated_at = now
            return True

    def mark_sent(self, job: Job, receipt: Receipt, now: datetime) -> bool:
        return self.finish_many([Finish(job, DeliveryState.SENT, "sent", now, receipt)])[0]

    def mark_retry(self, job: Job, at: datetime, kind: str, error: str, now: datetime) -> bool:
        finish = Finish(job, DeliveryState.RETRY_WAIT, kind, now, error=error, retry_at=at)
        return self.finish_many([finish])[0]

    def mark_unknown(self, job: Job, error: str, now: datetime) -> bool:
        finish = Finish(job, DeliveryState.UNKNOWN, "unknown_outcome", now, error=error)
        return self.finish_many([finish])[0]

    def finish_many(self, finishes: Sequence[Finish]) -> list[bool]:
        done = []
        with self._lock:
            for finish in finishes:
                row = self._fenced(finish.job, DeliveryState.SENDING)
                if row is None:
                    done.append(False)
                    continue
                row.state, row.updated_at = finish.state, finish.at
                if finish.state is DeliveryState.SENT:
                    assert finish.receipt is not None  # Finish checks it
                    row.lease_until = None
                    row.remote_id, row.remote_url = finish.receipt.remote_id, finish.receipt.url
                    row.receipt_notes = receipt_notes(finish.receipt)
                    row.error_kind = row.last_error = None
                elif finish.state is DeliveryState.UNKNOWN:
                    row.error_kind, row.last_error = "unknown_outcome", finish.error
                else:
                    row.error_kind, row.last_error = finish.kind, finish.error
                    row.lease_until = None
                    if finish.state is DeliveryState.RETRY_WAIT:
                        assert finish.retry_at is not None  # Finish checks it
                        row.due_at, row.lease_owner = finish.retry_at, None
                self._finish(finish.job, finish.kind)
                done.append(True)
        return done

    def mark_final(
        self, job: Job, state: DeliveryState, kind: str, error: str, now: datetime
    ) -> bool:
        with self._lock:
            row = self._fenced(job, DeliveryState.CLAIMED, DeliveryState.SENDING)
            if row is None:
                return False
            row.state, row.lease_until = state, None
            row.error_kind, row.last_error, row.updated_at = kind, error, now
            self._finish(job, kind)
            return True

    def stop_account(self, job: Job, error: str, now: datetime) -> bool:
        with self._lock:
            row = self._fenced(job, DeliveryState.SENDING)
            if row is None:
                return False
            row.state, row.lease_owner, row.lease_until = DeliveryState.PENDING, None, None
            row.error_kind, row.last_error, row.updated_at = "auth", error, now
            self._finish(job, "auth")
            self.account_status[job.account_id] = AccountStatus.AUTH_FAILED
            return True

    def retries_done(self, delivery_id: int) -> int:
        with self._lock:
            return sum(
                1
                for (d, _), outcome in self.attempts.items()
                if d == delivery_id and outcome in ("before_send", "rate_limited")
            )

    # --- sweeper and reconcile -------------------------------------------------------------

    def sweep(self, now: datetime) -> SweepResult:
        reclaimed = unknown = expired = 0
        with self._lock:
            for row in self.rows.values():
                lease_over = row.lease_until is not None and row.lease_until < now
                if row.state is DeliveryState.CLAIMED and lease_over:
                    row.state, row.lease_owner, row.lease_until = DeliveryState.PENDING, None, None
                    reclaimed += 1
                elif row.state in (DeliveryState.SENDING, DeliveryState.RECONCILING) and lease_over:
                    row.state, row.error_kind = DeliveryState.UNKNOWN, "lease_expired"
                    unknown += 1
                elif (
                    row.state in EXPIRABLE
                    and row.new.expires_at is not None
                    and row.new.expires_at <= now
                ):
                    row.state, row.lease_owner, row.lease_until = DeliveryState.EXPIRED, None, None
                    expired += 1
                else:
                    continue
                row.updated_at = now
        return SweepResult(reclaimed, unknown, expired)

    def claim_unknown(self, owner: str, now: datetime, limit: int, lease_s: float) -> list[Job]:
        with self._lock:
            due = [
                r
                for r in self.rows.values()
                if r.state is DeliveryState.UNKNOWN and r.updated_at <= now
            ]
            due.sort(key=lambda r: (r.updated_at, r.id))
            return self._take(due[:limit], DeliveryState.RECONCILING, owner, now, lease_s)

    def resolve(
        self,
        job: Job,
        state: DeliveryState,
        now: datetime,
        receipt: Receipt | None = None,
        note: str = "",
    ) -> bool:
        if state is DeliveryState.SENT and receipt is None:
            raise ValueError("a reconciled `sent` needs the platform's receipt")
        with self._lock:
            row = self._fenced(job, DeliveryState.RECONCILING)
            if row is None:
                return False
            row.state, row.lease_until, row.updated_at = state, None, now
            if receipt is not None:
                row.remote_id, row.remote_url = receipt.remote_id, receipt.url
                row.receipt_notes = receipt_notes(receipt)
            if state is DeliveryState.PENDING:
                row.due_at, row.lease_owner, row.error_kind = now, None, "proven_absent"
            if state is DeliveryState.UNKNOWN:
                row.updated_at = now + timedelta(seconds=30)
            row.last_error = note or row.last_error
            return True

    # --- limits and questions --------------------------------------------------------------

    def reserve(self, gaps: Mapping[str, float], now: datetime) -> datetime | None:
        keys = [k for k, gap in gaps.items() if gap > 0]
        with self._lock:
            held = [self.limits[k] for k in keys if k in self.limits and self.limits[k] > now]
            if held:
                return max(held)
            for key in keys:
                self.limits[key] = now + timedelta(seconds=gaps[key])
            return None

    def hold(self, key: str, until: datetime) -> None:
        with self._lock:
            current = self.limits.get(key)
            if current is None or current < until:
                self.limits[key] = until

    def is_idle(self, now: datetime) -> bool:
        with self._lock:
            if any(r.state in IN_FLIGHT for r in self.rows.values()):
                return False
            return not any(self._runnable(r, now, limits=False) for r in self.rows.values())

    def active_pauses(self, now: datetime) -> list[Pause]:
        with self._lock:
            return [p for p in self.pauses if p.active_at(now)]

    def add_pause(self, pause: Pause) -> None:
        with self._lock:
            self.pauses.append(replace(pause, id=len(self.pauses) + 1))

    def state_of(self, delivery_id: int) -> DeliveryState:
        return self.rows[delivery_id].state
