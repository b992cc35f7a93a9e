"""What a worker holds while it works on one delivery, and the store interface it talks to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from channels.base import Receipt
from publisher.domain import DeliveryState, Pause
from publisher.redact import redact


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed delivery. `lease_owner` and `attempt` are the fence for every later write."""

    id: int
    post_id: int
    article_id: int
    unit_code: str
    account_id: str
    platform: str
    state: DeliveryState
    attempt: int
    lease_owner: str
    lease_until: datetime
    payload: Mapping[str, Any] | None
    body_hash: str | None
    expires_at: datetime | None
    created_at: datetime
    priority: int = 0


@dataclass(frozen=True, slots=True)
class SweepResult:
    reclaimed: int = 0  # expired `claimed` → pending (no call was made)
    unknown: int = 0  # expired `sending` / `reconciling` → unknown (never resent blindly)
    expired: int = 0  # not out by its deadline → expired


@dataclass(frozen=True, slots=True)
class NewDelivery:
    post_id: int
    article_id: int
    unit_code: str
    account_id: str
    platform: str
    due_at: datetime
    state: DeliveryState = DeliveryState.PENDING
    expires_at: datetime | None = None
    priority: int = 0
    payload: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Sending:
    """One delivery about to go out: its `sending` mark (with the match hash of the exact
    body) and its attempt row. `mark_sending_many` writes a whole group in one transaction."""

    job: Job
    body_hash: str
    payload: Mapping[str, Any]


# The states a call can end in; each is written fenced on `sending` (`finish_many`).
FINISH_STATES = frozenset(
    {
        DeliveryState.SENT,
        DeliveryState.RETRY_WAIT,
        DeliveryState.UNKNOWN,
        DeliveryState.FAILED,
        DeliveryState.EXPIRED,
    }
)


def receipt_notes(receipt: Receipt) -> list[dict[str, str]] | None:
    """The receipt's problems as stored with the delivery (`receipt_notes`), None when it has
    none. A platform's words may quote a token: redacted, like error text."""
    if not receipt.problems:
        return None
    return [
        {
            "severity": p.severity.value,
            "code": p.code,
            "message": redact(p.message)[:2000],
        }
        for p in receipt.problems
    ]


@dataclass(frozen=True, slots=True)
class Finish:
    """The outcome of one platform call, to be recorded with its attempt row.

    `kind` is the attempt's outcome ("sent", the error kind, "unknown_outcome"); `receipt` is
    required for SENT and `retry_at` for RETRY_WAIT; `at` is when the call ended."""

    job: Job
    state: DeliveryState
    kind: str
    at: datetime
    receipt: Receipt | None = None
    error: str = ""
    retry_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.state not in FINISH_STATES:
            raise ValueError(f"a call cannot end in {self.state.value}")
        if self.state is DeliveryState.SENT and self.receipt is None:
            raise ValueError("`sent` needs the platform's receipt")
        if self.state is DeliveryState.RETRY_WAIT and self.retry_at is None:
            raise ValueError("`retry_wait` needs the time to try again")


class DeliveryStore(Protocol):
    """The delivery engine's persistence. Every write after a claim is fenced by
    (lease_owner, attempt, expected state); a False return means the lease is lost.

    The `_many` writes are group commits: one transaction for the group, the fence checked
    row by row, one result per row in order (a refused row changes nothing, its attempt row
    included; the others are written)."""

    def enqueue(self, deliveries: list[NewDelivery], now: datetime) -> int: ...
    def claim(self, owner: str, now: datetime, limit: int, lease_s: float) -> list[Job]: ...
    def release(self, job: Job, due_at: datetime | None, now: datetime) -> bool: ...
    def mark_sending(
        self,
        job: Job,
        body_hash: str,
        payload: Mapping[str, Any],
        now: datetime,
        lease_s: float,
    ) -> bool: ...
    def mark_sending_many(
        self, sends: Sequence[Sending], now: datetime, lease_s: float
    ) -> list[bool]: ...
    def extend_sending(self, job: Job, now: datetime, lease_s: float) -> bool: ...
    def mark_sent(self, job: Job, receipt: Receipt, now: datetime) -> bool: ...
    def finish_many(self, finishes: Sequence[Finish]) -> list[bool]: ...
    def mark_retry(self, job: Job, at: datetime, kind: str, error: str, now: datetime) -> bool: ...
    def mark_final(
        self, job: Job, state: DeliveryState, kind: str, error: str, now: datetime
    ) -> bool: ...
    def mark_unknown(self, job: Job, error: str, now: datetime) -> bool: ...
    def stop_account(self, job: Job, error: str, now: datetime) -> bool: ...
    def retries_done(self, delivery_id: int) -> int: ...
    def sweep(self, now: datetime) -> SweepResult: ...
    def claim_unknown(self, owner: str, now: datetime, limit: int, lease_s: float) -> list[Job]: ...
    def resolve(
        self,
        job: Job,
        state: DeliveryState,
        now: datetime,
        receipt: Receipt | None = None,
        note: str = "",
    ) -> bool: ...
    def reserve(self, gaps: Mapping[str, float], now: datetime) -> datetime | None: ...
    def hold(self, key: str, until: datetime) -> None: ...
    def is_idle(self, now: datetime) -> bool: ...
    def active_pauses(self, now: datetime) -> list[Pause]: ...


# --- recall: taking sent posts back ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecallCreated:
    """What recording a recall did, in the same transaction."""

    recall_id: int
    cancelled: int  # deliveries stopped before they went out
    withdrawals: int  # withdrawal rows made (one per delivery not already recalled)
    to_withdraw: int  # of which sent or possibly sent: the engine takes them back


@dataclass(frozen=True, slots=True)
class WithdrawalJob:
    """A claimed withdrawal, with what the engine needs from its delivery and recall.

    `lease_owner` and `attempt` fence every later write, as for deliveries.
    """

    id: int
    recall_id: int
    delivery_id: int
    post_id: int
    unit_code: str
    account_id: str
    platform: str
    attempt: int
    lease_owner: str
    lease_until: datetime
    retries: int
    delivery_state: DeliveryState
    remote_id: str | None
    remote_url: str | None
    notice: str
    reason: str
    requested_at: datetime


class WithdrawalStore(Protocol):
    """The recall engine's persistence (SQL and in memory share one contract test).

    A False return from a fenced write means the lease is lost: another worker (or the
    sweeper) has the withdrawal now.
    """

    def claim_withdrawals(
        self, owner: str, now: datetime, limit: int, lease_s: float
    ) -> list[WithdrawalJob]: ...
    def release_withdrawal(self, job: WithdrawalJob, due_at: datetime, now: datetime) -> bool: ...
    def mark_withdrawing(self, job: WithdrawalJob, now: datetime, lease_s: float) -> bool: ...
    def mark_withdrawn(
        self, job: WithdrawalJob, receipt: Receipt, mode: str, now: datetime
    ) -> bool: ...
    def mark_manual(self, job: WithdrawalJob, kind: str, note: str, now: datetime) -> bool: ...
    def mark_not_sent(self, job: WithdrawalJob, now: datetime) -> bool: ...
    def mark_withdrawal_failed(
        self, job: WithdrawalJob, kind: str, error: str, now: datetime
    ) -> bool: ...
    def retry_withdrawal(
        self, job: WithdrawalJob, at: datetime, kind: str, error: str, now: datetime
    ) -> bool: ...
    def stop_account_withdrawal(self, job: WithdrawalJob, error: str, now: datetime) -> bool: ...
    def sweep_withdrawals(self, now: datetime) -> int: ...
    def withdrawals_idle(self, now: datetime) -> bool: ...
    def reserve(self, gaps: Mapping[str, float], now: datetime) -> datetime | None: ...
    def hold(self, key: str, until: datetime) -> None: ...
