"""The recall store in memory: the same contract as `SqlRecallStore`, for fast tests.

It works on a `MemoryDeliveryStore`'s rows under that store's lock (one lock stands in for
the database's transactions), so a recall and a delivery claim exclude each other exactly as
they do in SQL. `tests/delivery/test_recall_store_contract.py` runs the same checks on both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from channels.base import Receipt
from publisher.delivery.jobs import RecallCreated, WithdrawalJob
from publisher.domain import (
    AccountStatus,
    DeliveryState,
    Recall,
    WithdrawalState,
)
from publisher.store.delivery_memory import MemoryDeliveryStore

# Not started yet: stopped at once, never sent later (a claimed row's worker is fenced out).
CANCELLABLE = frozenset(
    {
        DeliveryState.AWAITING_APPROVAL,
        DeliveryState.PENDING,
        DeliveryState.RETRY_WAIT,
        DeliveryState.CLAIMED,
    }
)
# Never went out: nothing to take back.
NEVER_SENT = frozenset({DeliveryState.CANCELLED, DeliveryState.FAILED, DeliveryState.EXPIRED})
# The send's outcome is not known yet: the withdrawal waits until it is.
OUTCOME_PENDING = frozenset(
    {
        DeliveryState.CLAIMED,
        DeliveryState.SENDING,
        DeliveryState.UNKNOWN,
        DeliveryState.RECONCILING,
    }
)


@dataclass
class _Withdrawal:
    id: int
    recall: Recall
    delivery_id: int
    state: WithdrawalState
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    attempt: int = 0
    retries: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = None
    remote_id: str | None = None
    remote_url: str | None = None
    error_kind: str | None = None
    last_error: str | None = None
    withdrawn_at: datetime | None = None


class MemoryRecallStore:
    def __init__(self, deliveries: MemoryDeliveryStore) -> None:
        self.deliveries = deliveries
        self.recalls: dict[int, Recall] = {}
        self.rows: dict[int, _Withdrawal] = {}
        self.by_delivery: dict[int, int] = {}
        self.events: list[tuple[str, dict[str, Any]]] = []  # (action, details): the audit
        self._lock = deliveries._lock

    # --- recording a recall ------------------------------------------------------------

    def recall(self, recall: Recall, post_ids: list[int], now: datetime) -> RecallCreated:
        with self._lock:
            recall_id = len(self.recalls) + 1
            stored = Recall(
                recall.scope,
                recall.article_id,
                recall.reason,
                recall.requested_by,
                recall.requested_at,
                recall.post_id,
                recall.notice,
                recall_id,
            )
            self.recalls[recall_id] = stored
            posts = set(post_ids)
            cancelled = made = to_withdraw = 0
            for row in sorted(self.deliveries.rows.values(), key=lambda r: r.id):
                if row.new.post_id not in posts:
                    continue
                if row.state in CANCELLABLE:
                    row.state, row.lease_until = DeliveryState.CANCELLED, None
                    row.error_kind, row.last_error = "recalled", recall.reason
                    row.updated_at = now
                    cancelled += 1
                self.deliveries.recalled.add(row.id)  # never claimed again
                if row.id in self.by_delivery:
                    continue
                never = row.state in NEVER_SENT
                state = WithdrawalState.NOT_SENT if never else WithdrawalState.PENDING
                withdrawal_id = len(self.rows) + 1
                self.rows[withdrawal_id] = _Withdrawal(
                    withdrawal_id, stored, row.id, state, now, now, now
                )
                self.by_delivery[row.id] = withdrawal_id
                made += 1
                to_withdraw += not never
            return RecallCreated(recall_id, cancelled, made, to_withdraw)

    # --- claim -------------------------------------------------------------------------

    def _job(self, w: _Withdrawal) -> WithdrawalJob:
        d = self.deliveries.rows[w.delivery_id]
        assert w.lease_owner is not None
        assert w.lease_until is not None
        assert w.recall.id is not None
        return WithdrawalJob(
            id=w.id,
            recall_id=w.recall.id,
            delivery_id=w.delivery_id,
            post_id=d.new.post_id,
            unit_code=d.new.unit_code,
            account_id=d.new.account_id,
            platform=d.new.platform,
            attempt=w.attempt,
            lease_owner=w.lease_owner,
            lease_until=w.lease_until,
            retries=w.retries,
            delivery_state=d.state,
            remote_id=d.remote_id,
            remote_url=d.remote_url,
            notice=w.recall.notice,
            reason=w.recall.reason,
            requested_at=w.recall.requested_at,
        )

    def _claimable(self, w: _Withdrawal, now: datetime) -> bool:
        return (
            w.state is WithdrawalState.PENDING
            and w.due_at <= now
            and self.deliveries.rows[w.delivery_id].state not in OUTCOME_PENDING
        )

    def claim_withdrawals(
        self, owner: str, now: datetime, limit: int, lease_s: float
    ) -> list[WithdrawalJob]:
        with self._lock:
            due = [w for w in self.rows.values() if self._claimable(w, now)]
            due.sort(key=lambda w: (w.due_at, w.id))
            for w in due[:limit]:
                w.state, w.lease_owner = WithdrawalState.CLAIMED, owner
                w.lease_until = now + timedelta(seconds=lease_s)
                w.attempt += 1
                w.updated_at = now
            return [self._job(w) for w in due[:limit]]

    # --- fenced writes -----------------------------------------------------------------

    def _fenced(self, job: WithdrawalJob, *expected: WithdrawalState) -> _Withdrawal | None:
        w = self.rows.get(job.id)
        if (
            w is None
            or w.lease_owner != job.lease_owner
            or w.attempt != job.attempt
            or w.state not in expected
        ):
            return None
        return w

    def _event(self, job: WithdrawalJob, w: _Withdrawal, **details: Any) -> None:
        self.events.append(
            (
                "withdrawal",
                {
                    "delivery": job.delivery_id,
                    "recall": job.recall_id,
                    "state": w.state.value,
                    "account": job.account_id,
                    **details,
                },
            )
        )

    def release_withdrawal(self, job: WithdrawalJob, due_at: datetime, now: datetime) -> bool:
        with self._lock:
            w = self._fenced(job, WithdrawalState.CLAIMED)
            if w is None:
                return False
            w.state, w.lease_owner, w.lease_until = WithdrawalState.PENDING, None, None
            w.due_at, w.updated_at = due_at, now
            return True

    def mark_withdrawing(self, job: WithdrawalJob, now: datetime, lease_s: float) -> bool:
        with self._lock:
            w = self._fenced(job, WithdrawalState.CLAIMED)
            if w is None or w.lease_until is None or w.lease_until < now:
                return False
            w.state = WithdrawalState.WITHDRAWING
            w.lease_until = now + timedelta(seconds=lease_s)
            w.remote_id, w.remote_url = job.remote_id, job.remote_url
            w.updated_at = now
            return True

    def mark_withdrawn(
        self, job: WithdrawalJob, receipt: Receipt, mode: str, now: datetime
    ) -> bool:
        with self._lock:
            w = self._fenced(job, WithdrawalState.WITHDRAWING)
            if w is None:
                return False
            w.state, w.lease_until = WithdrawalState.WITHDRAWN, None
            w.withdrawn_at = receipt.accepted_at or now
            w.error_kind, w.last_error, w.updated_at = None, None, now
            self._event(job, w, mode=mode)
            return True

    def mark_manual(self, job: WithdrawalJob, kind: str, note: str, now: datetime) -> bool:
        with self._lock:
            w = self._fenced(job, WithdrawalState.CLAIMED, WithdrawalState.WITHDRAWING)
            if w is None:
                return False
            w.state, w.lease_until = WithdrawalState.NEEDS_MANUAL_REMOVAL, None
            w.remote_id, w.remote_url = job.remote_id, job.remote_url
            w.error_kind, w.last_error, w.updated_at = kind, note, now
            self._event(job, w, url=job.remote_url, why=note)
            return True

    def mark_not_sent(self, job: WithdrawalJob, now: datetime) -> bool:
        with self._lock:
            w = self._fenced(job, WithdrawalState.CLAIMED)
            if w is None:
                return False
            d = self.deliveries.rows[w.delivery_id]
            if d.state in CANCELLABLE:  # proven absent after the recall: it never goes out
                d.state, d.lease_until = DeliveryState.CANCELLED, None
                d.error_kind, d.last_error, d.updated_at = "recalled", job.reason, now
            elif d.state not in NEVER_SENT:
                return False  # it went out meanwhile: not this write's call
            w.state, w.lease_until, w.updated_at = WithdrawalState.NOT_SENT, None, now
            self._event(job, w)
            return True

    def mark_withdrawal_failed(
        self, job: WithdrawalJob, kind: str, error: str, now: datetime
    ) -> bool:
        with self._lock:
            w = self._fenced(job, WithdrawalState.CLAIMED, WithdrawalState.WITHDRAWING)
            if w is None:
                return False
            w.state, w.lease_until = WithdrawalState.FAILED, None
            w.error_kind, w.last_error, w.updated_at = kind, error, now
            self._event(job, w, error=error)
            return True

    def retry_withdrawal(
        self, job: WithdrawalJob, at: datetime, kind: str, error: str, now: datetime
    ) -> bool:
        with self._lock:
            w = self._fenced(job, WithdrawalState.WITHDRAWING)
            if w is None:
                return False
            w.state, w.lease_owner, w.lease_until = WithdrawalState.PENDING, None, None
            w.due_at, w.retries = at, w.retries + 1
            w.error_kind, w.last_error, w.updated_at = kind, error, now
            return True

    def stop_account_withdrawal(self, job: WithdrawalJob, error: str, now: datetime) -> bool:
        with self._lock:
            w = self._fenced(job, WithdrawalState.WITHDRAWING)
            if w is None:
                return False
            w.state, w.lease_owner, w.lease_until = WithdrawalState.PENDING, None, None
            w.error_kind, w.last_error, w.updated_at = "auth", error, now
            self.deliveries.account_status[job.account_id] = AccountStatus.AUTH_FAILED
            self.events.append(("account_stopped", {"account": job.account_id, "reason": error}))
            return True

    # --- sweeper and questions ---------------------------------------------------------

    def sweep_withdrawals(self, now: datetime) -> int:
        """Expired leases go back to pending: withdrawing again is safe (idempotent)."""
        swept = 0
        with self._lock:
            for w in self.rows.values():
                if (
                    w.state in (WithdrawalState.CLAIMED, WithdrawalState.WITHDRAWING)
                    and w.lease_until is not None
                    and w.lease_until < now
                ):
                    w.state, w.lease_until, w.updated_at = WithdrawalState.PENDING, None, now
                    swept += 1
        return swept

    def withdrawals_idle(self, now: datetime) -> bool:
        with self._lock:
            return not any(
                w.state in (WithdrawalState.CLAIMED, WithdrawalState.WITHDRAWING)
                or self._claimable(w, now)
                for w in self.rows.values()
            )

    def reserve(self, gaps: Mapping[str, float], now: datetime) -> datetime | None:
        return self.deliveries.reserve(gaps, now)

    def hold(self, key: str, until: datetime) -> None:
        self.deliveries.hold(key, until)

    def withdrawal_state(self, delivery_id: int) -> WithdrawalState | None:
        with self._lock:
            found = self.by_delivery.get(delivery_id)
            return None if found is None else self.rows[found].state
