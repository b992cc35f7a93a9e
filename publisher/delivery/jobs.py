"""What a worker holds while it works on one delivery, and the store interface it talks to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from channels.base import Receipt
from publisher.domain import DeliveryState, Pause


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


class DeliveryStore(Protocol):
    """The delivery engine's persistence. Every write after a claim is fenced by
    (lease_owner, attempt, expected state); a False return means the lease is lost."""

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
    def mark_sent(self, job: Job, receipt: Receipt, now: datetime) -> bool: ...
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
