"""The delivery worker: claim due deliveries with a lease, send each exactly once, record it.

For one delivery the order never changes:
  claim (lease, attempt+1) → reserve rate-limit slots → commit `sending` with the body hash →
  call the platform (no transaction open) → commit `sent` with the receipt.
Every write after the claim is fenced by (lease owner, attempt, expected state); a refused
write means another worker or the sweeper has taken over, and this worker stops at once —
before touching the platform if it had not yet.

Group commit: the deliveries of one claimed batch that are cleared to go have their `sending`
marks written in one transaction just before their calls start (they are in flight together,
so a crash leaves the same set uncertain either way), and outcomes that come back close
together are written in one transaction: at once when the last call in flight has ended or
`outcome_flush_rows` are waiting, else at most `outcome_flush_s` after the first. Each row is
still fenced on its own. A crash before an outcome is written leaves the row `sending`: the
sweeper makes it `unknown` and reconcile reads it back — never a blind resend
(docs/delivery.md, "Group commit").
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, cast

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
from publisher.delivery.jobs import (
    DeliveryStore,
    Finish,
    Job,
    Sending,
    WithdrawalJob,
    WithdrawalStore,
)
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
    # Group commit of outcomes: written when no call is left in flight, when this many are
    # waiting, or this long after the first one came back, whichever is first. The bound is
    # the window in which a crash leaves a finished call `sending` (→ unknown → reconcile).
    outcome_flush_s: float = 0.005
    outcome_flush_rows: int = 50

    @property
    def lease_s(self) -> float:
        # Long enough for the call to finish or time out, so only a dead worker loses it.
        return self.request_timeout_s + self.lease_margin_s


@dataclass(slots=True)
class _Ready:
    """A claimed delivery cleared to go: what its call needs."""

    job: Job
    channel: Channel
    account: ChannelAccount
    credentials: Credentials
    payload: Mapping[str, Any]
    body_hash: str
    # The group's `sending` commit time + lease margin (set at that commit): a worker still
    # before its call by then has stalled, and does not call.
    stall_at: datetime


class _Started:
    """A channel's send coroutine already run to its first wait (in the task that awaits
    it), awaited to its end: what `await` does, with the first step taken apart so that the
    worker knows the request is under way (the `during_call` fault point) without a second
    task per call, and a call answered without waiting costs no turn of the event loop."""

    __slots__ = ("call", "first")

    def __init__(self, call: Coroutine[Any, Any, Receipt], first: Any) -> None:
        self.call = call
        self.first = first

    def __await__(self) -> Generator[Any, Any, Receipt]:
        call, waiting_on = self.call, self.first
        while True:
            try:
                given = yield waiting_on
            except GeneratorExit:
                call.close()
                raise
            except BaseException as error:  # cancellation, a timeout: passed on to the call
                try:
                    waiting_on = call.throw(error)
                except StopIteration as done:
                    return cast(Receipt, done.value)
            else:
                try:
                    waiting_on = call.send(given)
                except StopIteration as done:
                    return cast(Receipt, done.value)


async def _awaiting(awaitable: Awaitable[Receipt]) -> Receipt:
    return await awaitable


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
        # Group commit of outcomes (`_send_in_group`, `_flush`).
        self._outcomes: list[tuple[Finish, Outcome]] = []
        self._calls_in_flight = 0
        self._withdrawals_in_flight = 0
        self._flush_timer: asyncio.TimerHandle | None = None
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
        """One delivery on its own, start to finish, through the same steps as the loop (a
        group of one): its outcome is written before this returns."""
        going, settled = self._start([job], keep_going=False)
        if not going:
            [outcome] = settled
            return outcome
        ready = going[0]
        step = self._begin_call(ready)
        finish, outcome = await self._end_call(ready, step) if isinstance(step, _Started) else step
        if finish is None:
            self.stats.count(outcome.value)
            return outcome
        [outcome] = self._settle([(finish, outcome)])
        return outcome

    def _start(
        self, jobs: list[Job], keep_going: bool = True
    ) -> tuple[list[_Ready], list[Outcome]]:
        """Get claimed deliveries ready and commit `sending` for all that may go, in one
        transaction. Returns those cleared to call the platform (nothing is sent for a row
        whose fence failed: lease lost, recalled, cancelled) and the outcomes of the others
        (counted). With `keep_going`, a database error on one delivery's preparation leaves
        that one `claimed` (the sweeper gives it back) and the others go on."""
        now = self.clock()
        ready: list[_Ready] = []
        settled: list[Outcome] = []
        for job in jobs:
            try:
                got = self._prepare(job, now)
            except sqlalchemy.exc.DBAPIError as error:
                if not keep_going:
                    raise
                # Still `claimed`: the sweeper gives it back once the lease is over.
                self.stats.database_errors += 1
                log.warning("delivery %s: database error, left to the sweeper: %s", job.id, error)
                continue
            if isinstance(got, Outcome):
                self.stats.count(got.value)
                settled.append(got)
            else:
                ready.append(got)
        if not ready:
            return [], settled
        # The commit's own time, not the group's start: getting 50 deliveries ready (slots,
        # payloads, credentials) takes time that must not eat into their leases.
        marked_at = self.clock()
        marked = self.store.mark_sending_many(
            [Sending(r.job, r.body_hash, r.payload) for r in ready], marked_at, self.config.lease_s
        )
        stall_at = marked_at + timedelta(seconds=self.config.lease_margin_s)
        going = []
        for one, ok in zip(ready, marked, strict=True):
            if ok:
                one.stall_at = stall_at
                going.append(one)
            else:
                log.warning("delivery %s: lease lost before sending; not sent", one.job.id)
                self.stats.count(Outcome.LOST_LEASE.value)
                settled.append(Outcome.LOST_LEASE)
        for _ in going:
            self.fault(AFTER_SENDING)  # every mark is committed, no call has started
        return going, settled

    def _prepare(self, job: Job, now: datetime) -> _Ready | Outcome:
        """Everything before `sending`: deadline, plugin and account, rate-limit slots,
        payload, credentials. Returns what the call needs, or the outcome (already written)
        of a delivery that does not go now."""
        self.fault(AFTER_CLAIM)
        store = self.store
        if job.expires_at is not None and job.expires_at <= now:
            ok = store.mark_final(
                job, DeliveryState.EXPIRED, "expired", "not out by its deadline", now
            )
            return Outcome.EXPIRED if ok else Outcome.LOST_LEASE
        channel = self.channels.get(job.platform)
        account = self.accounts(job.account_id)
        if channel is None or account is None:
            missing = "channel plugin" if channel is None else "channel account"
            reason = f"no {missing} for {job.platform}/{job.account_id}"
            ok = store.mark_final(job, DeliveryState.FAILED, "permanent", reason, now)
            return Outcome.FAILED if ok else Outcome.LOST_LEASE
        gaps = self.limits.gaps_for(job.platform, job.account_id)
        if gaps and store.reserve(gaps, now) is not None:
            store.release(job, None, now)  # keeps its place; claimable once the slot is free
            return Outcome.HELD
        try:
            payload = self.prepare(job)
        except PrepareError as error:
            ok = store.mark_final(job, DeliveryState.FAILED, "permanent", str(error), now)
            return Outcome.FAILED if ok else Outcome.LOST_LEASE
        try:
            credentials = self.credentials(account)
        except Exception as error:  # no token, unreadable secret: nothing was sent
            log.warning("delivery %s: no usable credentials: %s", job.id, error)
            store.release(job, now + timedelta(seconds=NO_CREDENTIALS_WAIT_S), now)
            return Outcome.NO_CREDENTIALS
        # The channel's own hash: one it can recompute from what the platform gives back.
        body_hash = channel.match_hash(payload)
        return _Ready(job, channel, account, credentials, payload, body_hash, stall_at=now)

    def _begin_call(self, ready: _Ready) -> _Started | tuple[Finish | None, Outcome]:
        """Start the platform call of a delivery marked `sending`, running the channel up to
        its first wait. An answer without a wait (an error raised at once, an instant
        platform) is the outcome to record, with no task to schedule; otherwise the started
        call, to be awaited by `_end_call`. None as the Finish: the outcome is already
        written or final (account stopped, lease lost)."""
        job = ready.job
        # Late in its group, or frozen (SIGSTOP, a long GC, a suspended VM) since the commit:
        # the lease may not outlast the call. Call only with a fresh lease, which is refused
        # once the lease is over or the sweeper has handed this post on.
        if self.clock() >= ready.stall_at and not self.store.extend_sending(
            job, self.clock(), self.config.lease_s
        ):
            log.warning("delivery %s: stalled before the call; left to the sweeper", job.id)
            return None, Outcome.LOST_LEASE
        call = ready.channel.send(ready.account, ready.credentials, ready.payload)
        if not isinstance(call, Coroutine):  # an awaitable that is not a coroutine
            call = _awaiting(call)
        try:
            first = call.send(None)
        except StopIteration as done:
            self.fault(DURING_CALL)
            return self._answered(job, done.value)
        except Exception as error:
            self.fault(DURING_CALL)
            return self._no_answer(job, error)
        self.fault(DURING_CALL)  # the request is under way
        return _Started(call, first)

    async def _end_call(self, ready: _Ready, call: _Started) -> tuple[Finish | None, Outcome]:
        """Wait for a started call's answer, within the request timeout."""
        try:
            async with asyncio.timeout(self.config.request_timeout_s):
                receipt = await call
        except Exception as error:
            return self._no_answer(ready.job, error)
        return self._answered(ready.job, receipt)

    def _answered(self, job: Job, receipt: Receipt) -> tuple[Finish, Outcome]:
        self.fault(AFTER_ACCEPT)
        return Finish(job, DeliveryState.SENT, "sent", self.clock(), receipt), Outcome.SENT

    def _no_answer(self, job: Job, error: Exception) -> tuple[Finish | None, Outcome]:
        if isinstance(error, SendError):
            return self._failed(job, error)
        # Timeout, reset, a bug in a plugin: it may have gone out.
        log.warning("delivery %s: call ended without an answer: %r", job.id, error)
        message = f"{type(error).__name__}: {error}"
        finish = Finish(job, DeliveryState.UNKNOWN, "unknown_outcome", self.clock(), error=message)
        return finish, Outcome.UNKNOWN

    def _failed(self, job: Job, error: SendError) -> tuple[Finish | None, Outcome]:
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
        kind = error.kind.value
        if action is retry.Action.RETRY:
            assert decision.at is not None
            retry_at = decision.at
            return Finish(
                job, DeliveryState.RETRY_WAIT, kind, now, error=message, retry_at=retry_at
            ), Outcome.RETRY
        if action is retry.Action.UNKNOWN:
            finish = Finish(job, DeliveryState.UNKNOWN, "unknown_outcome", now, error=message)
            return finish, Outcome.UNKNOWN
        if action is retry.Action.STOP_ACCOUNT:
            # Not grouped: it stops the account and opens an incident in its own transaction.
            ok = store.stop_account(job, message, now)
            return None, Outcome.ACCOUNT_STOPPED if ok else Outcome.LOST_LEASE
        if action is retry.Action.EXPIRE:
            return Finish(job, DeliveryState.EXPIRED, kind, now, error=message), Outcome.EXPIRED
        return Finish(job, DeliveryState.FAILED, kind, now, error=message), Outcome.FAILED

    def _settle(self, results: list[tuple[Finish, Outcome]]) -> list[Outcome]:
        """Write a group of call outcomes in one transaction; count them. A refused row (the
        sweeper marked it unknown meanwhile) is a lost lease: reconciliation finds the post."""
        written = self.store.finish_many([finish for finish, _ in results])
        outcomes = []
        for (finish, outcome), ok in zip(results, written, strict=True):
            if not ok:
                log.warning("delivery %s: ended %s but lease lost", finish.job.id, outcome.value)
                outcome = Outcome.LOST_LEASE
            self.stats.count(outcome.value)
            outcomes.append(outcome)
        for outcome in outcomes:
            if outcome is Outcome.SENT:
                self.fault(AFTER_SENT)
        return outcomes

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

    async def _guarded(self, job: WithdrawalJob) -> None:
        try:
            await self.withdraw(job)
        except sqlalchemy.exc.DBAPIError as error:
            # The row keeps its state; the sweeper gives an abandoned lease back.
            self.stats.database_errors += 1
            log.warning("withdrawal %s: database error, left to the sweeper: %s", job.id, error)
        finally:
            self._withdrawals_in_flight -= 1

    def _launch(self, going: list[_Ready], inflight: set[asyncio.Task[None]]) -> None:
        """Start the calls of a group just marked `sending`, one task each: the whole call
        runs in its task (a channel's timeouts and cancel scopes belong to the task that
        entered them)."""
        self._calls_in_flight += len(going)
        for ready in going:
            task = asyncio.create_task(self._send_in_group(ready))
            inflight.add(task)
            task.add_done_callback(inflight.discard)

    async def _send_in_group(self, ready: _Ready) -> None:
        """One call of a launched group; its outcome joins the next outcome commit."""
        try:
            step = self._begin_call(ready)
            if isinstance(step, _Started):
                step = await self._end_call(ready, step)
            self._record(*step)
        except sqlalchemy.exc.DBAPIError as error:
            self._database_error(ready, error)
        finally:
            self._calls_in_flight -= 1
        self._flush_when_due()

    def _database_error(self, ready: _Ready, error: sqlalchemy.exc.DBAPIError) -> None:
        # A hold, retry count or account stop could not be written: the row stays `sending`,
        # and the sweeper turns it into unknown, never into a blind resend.
        self.stats.database_errors += 1
        log.warning("delivery %s: database error, left to the sweeper: %s", ready.job.id, error)

    def _record(self, finish: Finish | None, outcome: Outcome) -> None:
        if finish is None:
            self.stats.count(outcome.value)
        else:
            self._outcomes.append((finish, outcome))

    def _flush_when_due(self) -> None:
        """Write the waiting outcomes now if no call is left in flight or enough are
        waiting; otherwise at most `outcome_flush_s` after the first one came back."""
        if self._calls_in_flight == 0 or len(self._outcomes) >= self.config.outcome_flush_rows:
            self._flush()
        elif self._outcomes and self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(
                self.config.outcome_flush_s, self._flush
            )

    def _flush(self) -> None:
        """Write the waiting outcomes in one transaction (see `WorkerConfig.outcome_flush_s`)."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        waiting, self._outcomes = self._outcomes, []
        if not waiting:
            return
        try:
            self._settle(waiting)
        except sqlalchemy.exc.DBAPIError as error:
            # Nothing of the group was written: the rows stay `sending`; the sweeper makes
            # them unknown and reconcile reads them back (the sent ones are found).
            self.stats.database_errors += 1
            log.warning("%d outcomes not recorded, left to the sweeper: %s", len(waiting), error)

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
                # Counted as each call ends (a task's done callbacks come a turn later).
                busy = self._calls_in_flight + self._withdrawals_in_flight
                free = min(config.concurrency - busy, config.batch)
                # Withdrawals first: a recall is taken back before anything new goes out.
                withdrawals: list[WithdrawalJob] = []
                if self.withdrawals is not None and free > 0:
                    withdrawals = self.withdrawals.claim_withdrawals(
                        config.owner, self.clock(), free, config.lease_s
                    )
                deliveries: list[Job] = []
                if free > len(withdrawals):
                    deliveries = self.store.claim(
                        config.owner, self.clock(), free - len(withdrawals), config.lease_s
                    )
                self.stats.claimed += len(deliveries)
                self.stats.withdrawals_claimed += len(withdrawals)
                if self.record_claims:
                    self.stats.claimed_ids.extend((job.id, job.attempt) for job in deliveries)
                # One `sending` commit for the whole group, just before the calls start.
                going = self._start(deliveries)[0] if deliveries else []
            except sqlalchemy.exc.DBAPIError as error:
                # Rows already claimed stay `claimed`: the sweeper gives them back.
                self.stats.database_errors += 1
                log.warning("database unreachable, trying again: %s", error)
                await asyncio.sleep(config.db_retry_s)
                continue
            self._withdrawals_in_flight += len(withdrawals)
            for withdrawal in withdrawals:
                task = asyncio.create_task(self._guarded(withdrawal))
                inflight.add(task)
                task.add_done_callback(inflight.discard)
            self._launch(going, inflight)
            if withdrawals or deliveries:
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
        self._flush()  # the last call to end has written them; this only drops a spare timer
        return self.stats
