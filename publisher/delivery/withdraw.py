"""The recall engine: take each sent delivery of a recalled post back, exactly once.

For one withdrawal the order mirrors a delivery's:
  claim (lease, attempt+1) → decide from the delivery's state → reserve rate-limit slots →
  commit `withdrawing` → call `Channel.withdraw` (no transaction open) → commit `withdrawn`.
Every write after the claim is fenced by (lease owner, attempt, expected state).

Unlike a send, an interrupted withdrawal is simply done again: `withdraw` is idempotent (a
post the platform no longer has counts as withdrawn), so a lost reply, a timeout or a killed
worker cannot make a second, different effect — at worst the platform is asked twice to
remove the same post. That is why `UNKNOWN_OUTCOME` retries here, where a send reconciles.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum

from channels.base import Channel, Credentials, ErrorKind, SendError, WithdrawMode
from publisher import retry
from publisher.delivery.faults import (
    WITHDRAW_CALLED,
    WITHDRAW_CLAIMED,
    WITHDRAW_MARKED,
    FaultHook,
    no_fault,
)
from publisher.delivery.jobs import WithdrawalJob, WithdrawalStore
from publisher.delivery.limits import RateLimits
from publisher.domain import AccountStatus, ChannelAccount, DeliveryState
from publisher.store.delivery_sql import account_key

log = logging.getLogger("publisher.delivery")

# Written in place of the post by a channel that edits (the recall's notice when it has one).
DEFAULT_NOTICE = "Thông tin này đã được thu hồi. · This information has been withdrawn."
ACCOUNT_WAIT_S = 300.0  # an account stopped or without credentials: look again later

NEVER_SENT = frozenset(
    {
        DeliveryState.AWAITING_APPROVAL,
        DeliveryState.PENDING,
        DeliveryState.RETRY_WAIT,
        DeliveryState.CANCELLED,
        DeliveryState.FAILED,
        DeliveryState.EXPIRED,
    }
)


class WithdrawOutcome(StrEnum):
    WITHDRAWN = "withdrawn"
    MANUAL = "needs_manual_removal"
    NOT_SENT = "not_sent"
    RETRY = "withdraw_retry"
    FAILED = "withdraw_failed"
    ACCOUNT_STOPPED = "withdraw_account_stopped"
    HELD = "withdraw_held"  # given back untouched (rate slot, account stopped, no credentials)
    LOST_LEASE = "withdraw_lost_lease"


class Withdrawer:
    def __init__(
        self,
        store: WithdrawalStore,
        channels: Mapping[str, Channel],
        accounts: Callable[[str], ChannelAccount | None],
        credentials: Callable[[ChannelAccount], Credentials],
        *,
        request_timeout_s: float,
        lease_s: float,
        lease_margin_s: float,
        max_retries: int = retry.DEFAULT_MAX_RETRIES,
        limits: RateLimits | None = None,
        clock: Callable[[], datetime],
        fault: FaultHook = no_fault,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.channels = channels
        self.accounts = accounts
        self.credentials = credentials
        self.request_timeout_s = request_timeout_s
        self.lease_s = lease_s
        self.lease_margin_s = lease_margin_s
        self.max_retries = max_retries
        self.limits = limits or RateLimits()
        self.clock = clock
        self.fault = fault
        self.rng = rng or random.Random()

    async def process(self, job: WithdrawalJob) -> WithdrawOutcome:
        self.fault(WITHDRAW_CLAIMED)
        store = self.store
        now = self.clock()
        lost = WithdrawOutcome.LOST_LEASE
        state = job.delivery_state
        if state in NEVER_SENT:
            return WithdrawOutcome.NOT_SENT if store.mark_not_sent(job, now) else lost
        if state is DeliveryState.NEEDS_REVIEW:
            note = (
                "the send's outcome is unknown and cannot be read back: check the account "
                "and remove the post by hand if it is there"
            )
            return WithdrawOutcome.MANUAL if store.mark_manual(job, "outcome", note, now) else lost
        channel = self.channels.get(job.platform)
        account = self.accounts(job.account_id)
        if channel is None or account is None or job.remote_id is None:
            missing = (
                "channel plugin"
                if channel is None
                else "channel account"
                if account is None
                else "platform id"
            )
            note = f"no {missing} for {job.platform}/{job.account_id}: remove it by hand"
            return WithdrawOutcome.MANUAL if store.mark_manual(job, "missing", note, now) else lost
        if channel.withdraw_mode is WithdrawMode.MANUAL:
            note = f"{channel.display_name} cannot remove a post through its API: remove it by hand"
            return WithdrawOutcome.MANUAL if store.mark_manual(job, "manual", note, now) else lost
        if account.status is not AccountStatus.ACTIVE:
            later = now + timedelta(seconds=ACCOUNT_WAIT_S)
            return WithdrawOutcome.HELD if store.release_withdrawal(job, later, now) else lost
        held_until = store.reserve(self.limits.gaps_for(job.platform, job.account_id), now)
        if held_until is not None:
            return WithdrawOutcome.HELD if store.release_withdrawal(job, held_until, now) else lost
        try:
            credentials = self.credentials(account)
        except Exception as error:  # no token, unreadable secret: nothing was called
            log.warning("withdrawal %s: no usable credentials: %s", job.id, error)
            later = now + timedelta(seconds=ACCOUNT_WAIT_S)
            return WithdrawOutcome.HELD if store.release_withdrawal(job, later, now) else lost
        if not store.mark_withdrawing(job, now, self.lease_s):
            return lost
        self.fault(WITHDRAW_MARKED)
        if self.clock() >= now + timedelta(seconds=self.lease_margin_s):
            log.warning("withdrawal %s: stalled before the call; left to the sweeper", job.id)
            return lost
        try:
            receipt = await asyncio.wait_for(
                channel.withdraw(
                    account, credentials, job.remote_id, notice=job.notice or DEFAULT_NOTICE
                ),
                timeout=self.request_timeout_s,
            )
        except SendError as error:
            return self._failed(job, error)
        except Exception as error:  # timeout, reset, a bug in a plugin: ask again later
            log.warning("withdrawal %s: call ended without an answer: %r", job.id, error)
            failure = SendError(ErrorKind.UNKNOWN_OUTCOME, f"{type(error).__name__}: {error}")
            return self._failed(job, failure)
        self.fault(WITHDRAW_CALLED)
        mode = "edited" if channel.withdraw_mode is WithdrawMode.EDIT else "deleted"
        ok = store.mark_withdrawn(job, receipt, mode, self.clock())
        return WithdrawOutcome.WITHDRAWN if ok else lost

    def _failed(self, job: WithdrawalJob, error: SendError) -> WithdrawOutcome:
        store = self.store
        now = self.clock()
        message = f"{error.kind.value}: {error.message}"
        lost = WithdrawOutcome.LOST_LEASE
        if error.kind is ErrorKind.PERMANENT:
            ok = store.mark_manual(job, "permanent", message, now)
            return WithdrawOutcome.MANUAL if ok else lost
        if error.kind is ErrorKind.AUTH:
            ok = store.stop_account_withdrawal(job, message, now)
            return WithdrawOutcome.ACCOUNT_STOPPED if ok else lost
        if error.kind is ErrorKind.RATE_LIMITED and error.retry_after:
            store.hold(account_key(job.account_id), now + timedelta(seconds=error.retry_after))
        if job.retries >= self.max_retries:
            ok = store.mark_withdrawal_failed(
                job, error.kind.value, f"gave up after {job.retries} retries: {message}", now
            )
            return WithdrawOutcome.FAILED if ok else lost
        # Rate limits wait what the platform said; before-send and unknown outcomes back off.
        # An unknown outcome is safe to retry: withdraw is idempotent.
        if error.kind is ErrorKind.RATE_LIMITED and error.retry_after is not None:
            wait = error.retry_after + retry.rate_limit_jitter_s(
                error.retry_after, self.rng.random()
            )
        else:
            wait = retry.backoff_s(job.retries, self.rng.random())
        at = now + timedelta(seconds=wait)
        ok = store.retry_withdrawal(job, at, error.kind.value, message, now)
        return WithdrawOutcome.RETRY if ok else lost
