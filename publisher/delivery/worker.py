"""The delivery worker: claim due deliveries with a lease, send each exactly once, record it.

For one delivery the order never changes:
  claim (lease, attempt+1) → reserve rate-limit slots → commit `sending` with the body hash →
  call the platform (no transaction open) → commit `sent` with the receipt.
Every write after the claim is fenced by (lease owner, attempt, expected state); a refused
write means another worker or the sweeper has taken over, and this worker stops at once —
before touching the platform if it had not yet.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy.exc

from channels.base import Channel, Credentials, ErrorKind, Receipt, SendError
from publisher import retry
from publisher.delivery.faults import (
    AFTER_ACCEPT,
    AFTER_CLAIM,
    AFTER_SENDING,
    AFTER_SENT,
    DURING_CALL,
    FaultHook,
    no_fault,
)
from publisher.delivery.jobs import DeliveryStore, Job, WithdrawalJob, WithdrawalStore
from publisher.delivery.limits import RateLimits
from publisher.delivery.reconcile import reconcile_once
from publisher.delivery.withdraw import Withdrawer
from publisher.domain import ChannelAccount, DeliveryState
from publisher.store.delivery_sql import account_key

log = logging.getLogger("publisher.delivery")
NO_CREDENTIALS_WAIT_S = 300.0

Clock = Callable[[], datetime]
AccountLookup = Callable[[str], ChannelAccount | None]
CredentialLookup = Callable[[ChannelAccount], Credentials]


class PrepareError(Exception):
    """The payload cannot be built (the channel cannot take this article): fail, do not retry."""


Prepare = Callable[[Job], Mapping[str, Any]]


def stored_payload(job: Job) -> Mapping[str, Any]:
    """The default preparer: the payload stored with the delivery (fan-out or a past attempt)."""
    if job.payload is None:
        raise PrepareError("no payload stored for this delivery")
    return job.payload


def utc_now() -> datetime:
    return datetime.now(UTC)


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    EXPIRED = "expired"
    UNKNOWN = "unknown"
    ACCOUNT_STOPPED = "account_stopped"
    HELD = "held"  # rate-limit slot taken: given back, due at the next slot
    NO_CREDENTIALS = "no_credentials"  # given back untouched; tried again later
    LOST_LEASE = "lost_lease"  # a fenced write was refused: another owner has it


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    owner: str
    batch: int = 50
    concurrency: int = 50
    request_timeout_s: float = 30.0
    lease_margin_s: float = 30.0
    poll_s: float = 0.5
    sweep_every_s: float = 1.0
    max_retries: int = retry.DEFAULT_MAX_RETRIES
    db_retry_s: float = 1.0  # wait after the database was unreachable

    @property
    def lease_s(self) -> float:
        # Long enough for the call to finish or time out, so only a dead worker loses it.
        return self.request_timeout_s + self.lease_margin_s


@dataclass
class WorkerStats:
    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    claimed_ids: list[tuple[int, int]] = field(default_factory=list)  # (delivery, attempt)
    database_errors: int = 0
    withdrawals_claimed: int = 0

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


class Worker:
    def __init__(
        self,
        store: DeliveryStore,
        channels: Mapping[str, Channel],
        accounts: AccountLookup,
        credentials: CredentialLookup,
        config: WorkerConfig,
        *,
        prepare: Prepare = stored_payload,
        limits: RateLimits | None = None,
        clock: Clock = utc_now,
        fault: FaultHook = no_fault,
        rng: random.Random | None = None,
        record_claims: bool = False,
        withdrawals: WithdrawalStore | None = None,
    ) -> None:
        self.store = store
        self.channels = channels
        self.accounts = accounts
        self.credentials = credentials
        self.config = config
        self.prepare = prepare
        self.limits = limits or RateLimits()
        self.clock = clock
        self.fault = fault
        self.rng = rng or random.Random()
        self.record_claims = record_claims
        self.stats = WorkerStats()
        # Recalls: the same process takes sent posts back (publisher/delivery/withdraw.py).
        self.withdrawals = withdrawals
        self.withdrawer = (
            Withdrawer(
                withdrawals,
                channels,
                accounts,
                credentials,
                request_timeout_s=config.request_timeout_s,
                lease_s=config.lease_s,
                lease_margin_s=config.lease_margin_s,
                max_retries=config.max_retries,
                limits=self.limits,
                clock=clock,
                fault=fault,
                rng=self.rng,
            )
            if withdrawals is not None
            else None
        )

    # --- one delivery ------------------------------------------------------------------

    async def process(self, job: Job) -> Outcome:
        outcome = await self._process(job)
        self.stats.count(outcome.value)
        return outcome

    async def _process(self, job: Job) -> Outcome:
        self.fault(AFTER_CLAIM)
        store = self.store
        now = self.clock()
        if job.expires_at is not None and job.expires_at <= now:
            store.mark_final(job, DeliveryState.EXPIRED, "expired", "not out by its deadline", now)
            return Outcome.EXPIRED
        channel = self.channels.get(job.platform)
        account = self.accounts(job.account_id)
        if channel is None or account is None:
            missing = "channel plugin" if channel is None else "channel account"
            reason = f"no {missing} for {job.platform}/{job.account_id}"
            ok = store.mark_final(job, DeliveryState.FAILED, "permanent", reason, now)
            return Outcome.FAILED if ok else Outcome.LOST_LEASE
        held_until = store.reserve(self.limits.gaps_for(job.platform, job.account_id), now)
        if held_until is not None:
            store.release(job, None, now)  # keeps its place; claimable once the slot is free
            return Outcome.HELD
        try:
            payload = self.prepare(job)
        except PrepareError as error:
            ok = store.mark_final(job, DeliveryState.FAILED, "permanent", str(error), now)
            return Outcome.FAILED if ok else Outcome.LOST_LEASE
        # The channel's own hash: one it can recompute from what the platform gives back.
        try:
            credentials = self.credentials(account)
        except Exception as error:  # no token, unreadable secret: nothing was sent
            log.warning("delivery %s: no usable credentials: %s", job.id, error)
            store.release(job, now + timedelta(seconds=NO_CREDENTIALS_WAIT_S), now)
            return Outcome.NO_CREDENTIALS
        body_hash = channel.match_hash(payload)
        if not store.mark_sending(job, body_hash, payload, now, self.config.lease_s):
            log.warning("delivery %s: lease lost before sending; not sent", job.id)
            return Outcome.LOST_LEASE
        self.fault(AFTER_SENDING)
        if self.clock() >= now + timedelta(seconds=self.config.lease_margin_s):
            # Frozen (SIGSTOP, a long GC, a suspended VM) between the commit and the call:
            # the lease may be gone and the sweeper may have handed this post on. Do not call.
            log.warning("delivery %s: stalled before the call; leaving it to the sweeper", job.id)
            return Outcome.LOST_LEASE
        try:
            receipt = await self._call(channel, account, credentials, payload)
        except SendError as error:
            return self._failed(job, error)
        except Exception as error:  # timeout, reset, a bug in a plugin: it may have gone out
            log.warning("delivery %s: call ended without an answer: %r", job.id, error)
            ok = store.mark_unknown(job, f"{type(error).__name__}: {error}", self.clock())
            return Outcome.UNKNOWN if ok else Outcome.LOST_LEASE
        self.fault(AFTER_ACCEPT)
        if not store.mark_sent(job, receipt, self.clock()):
            # The sweeper marked it unknown meanwhile: reconciliation will find this post.
            log.warning("delivery %s: sent as %s but lease lost", job.id, receipt.remote_id)
            return Outcome.LOST_LEASE
        self.fault(AFTER_SENT)
        return Outcome.SENT

    async def _call(
        self,
        channel: Channel,
        account: ChannelAccount,
        credentials: Credentials,
        payload: Mapping[str, Any],
    ) -> Receipt:
        call = asyncio.ensure_future(channel.send(account, credentials, payload))
        try:
            await asyncio.sleep(0)  # let the request start
            self.fault(DURING_CALL)
            if call.done():  # answered at once: nothing to wait for, no deadline to set
                return call.result()
            # A deadline on this task rather than wait_for's extra future and wake-up.
            async with asyncio.timeout(self.config.request_timeout_s):
                return await call
        finally:
            if not call.done():
                call.cancel()

    def _failed(self, job: Job, error: SendError) -> Outcome:
        store = self.store
        now = self.clock()
        retries = (
            store.retries_done(job.id)
            if error.kind in (ErrorKind.BEFORE_SEND, ErrorKind.RATE_LIMITED)
            else 0
        )
        decision = retry.decide(
            error.kind,
            retries_done=retries,
            now=now,
            draw=self.rng.random(),
            retry_after_s=error.retry_after,
            expires_at=job.expires_at,
            max_retries=self.config.max_retries,
        )
        message = f"{error.kind.value}: {error.message}"
        if error.kind is ErrorKind.RATE_LIMITED and error.retry_after:
            store.hold(account_key(job.account_id), now + timedelta(seconds=error.retry_after))
        action = decision.action
        if action is retry.Action.RETRY:
            assert decision.at is not None
            ok = store.mark_retry(job, decision.at, error.kind.value, message, now)
            outcome = Outcome.RETRY
        elif action is retry.Action.UNKNOWN:
            ok = store.mark_unknown(job, message, now)
            outcome = Outcome.UNKNOWN
        elif action is retry.Action.STOP_ACCOUNT:
            ok = store.stop_account(job, message, now)
            outcome = Outcome.ACCOUNT_STOPPED
        elif action is retry.Action.EXPIRE:
            ok = store.mark_final(job, DeliveryState.EXPIRED, error.kind.value, message, now)
            outcome = Outcome.EXPIRED
        else:
            ok = store.mark_final(job, DeliveryState.FAILED, error.kind.value, message, now)
            outcome = Outcome.FAILED
        return outcome if ok else Outcome.LOST_LEASE

    # --- the loop ----------------------------------------------------------------------

    async def withdraw(self, job: WithdrawalJob) -> None:
        assert self.withdrawer is not None
        outcome = await self.withdrawer.process(job)
        self.stats.count(outcome.value)

    async def housekeeping(self) -> None:
        """Sweep expired leases and reconcile unknown outcomes."""
        now = self.clock()
        self.store.sweep(now)
        if self.withdrawals is not None:
            self.withdrawals.sweep_withdrawals(now)
        await reconcile_once(
            self.store,
            self.channels,
            self.accounts,
            self.credentials,
            owner=self.config.owner,
            now=now,
            limit=self.config.batch,
            lease_s=self.config.lease_s,
        )

    async def _guarded(self, job: Job | WithdrawalJob) -> None:
        try:
            if isinstance(job, WithdrawalJob):
                await self.withdraw(job)
            else:
                await self.process(job)
        except sqlalchemy.exc.DBAPIError as error:
            # The row keeps its state; the sweeper turns an abandoned lease into pending or
            # unknown, never into a second blind send.
            self.stats.database_errors += 1
            log.warning("delivery %s: database error, left to the sweeper: %s", job.id, error)

    async def run(self, until_idle: bool = False, stop: asyncio.Event | None = None) -> WorkerStats:
        config = self.config
        inflight: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        next_sweep = 0.0
        while stop is None or not stop.is_set():
            try:
                if loop.time() >= next_sweep:
                    await self.housekeeping()
                    next_sweep = loop.time() + config.sweep_every_s
                free = min(config.concurrency - len(inflight), config.batch)
                # Withdrawals first: a recall is taken back before anything new goes out.
                jobs: list[Job | WithdrawalJob] = []
                if self.withdrawals is not None and free > 0:
                    jobs.extend(
                        self.withdrawals.claim_withdrawals(
                            config.owner, self.clock(), free, config.lease_s
                        )
                    )
                if free > len(jobs):
                    jobs.extend(
                        self.store.claim(
                            config.owner, self.clock(), free - len(jobs), config.lease_s
                        )
                    )
            except sqlalchemy.exc.DBAPIError as error:
                self.stats.database_errors += 1
                log.warning("database unreachable, trying again: %s", error)
                await asyncio.sleep(config.db_retry_s)
                continue
            deliveries = [job for job in jobs if isinstance(job, Job)]
            self.stats.claimed += len(deliveries)
            self.stats.withdrawals_claimed += len(jobs) - len(deliveries)
            if self.record_claims:
                self.stats.claimed_ids.extend((job.id, job.attempt) for job in deliveries)
            for job in jobs:
                task = asyncio.create_task(self._guarded(job))
                inflight.add(task)
                task.add_done_callback(inflight.discard)
            if jobs:
                await asyncio.sleep(0)
                continue
            if inflight:
                await asyncio.wait(
                    inflight, timeout=config.poll_s, return_when=asyncio.FIRST_COMPLETED
                )
                continue
            if until_idle:
                try:
                    await self.housekeeping()
                    now = self.clock()
                    if self.store.is_idle(now) and (
                        self.withdrawals is None or self.withdrawals.withdrawals_idle(now)
                    ):
                        break
                except sqlalchemy.exc.DBAPIError as error:
                    self.stats.database_errors += 1
                    log.warning("database unreachable, trying again: %s", error)
                    await asyncio.sleep(config.db_retry_s)
                    continue
            await asyncio.sleep(config.poll_s)
        if inflight:
            await asyncio.gather(*inflight, return_exceptions=True)
        return self.stats
