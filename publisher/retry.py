"""What to do after a failed send: error kind × attempt → decision. Pure: `now` and the random
draw are passed in, so every branch is testable without a clock.

Only failures proven to happen before the platform got the request are retried (and rate
limits); when the platform states a wait (Retry-After, Facebook's 368 block) it is honoured.
An unknown outcome is never retried blindly: it goes to reconciliation. Backoff is
`min(30 s · 2ⁿ, 1 h)` with full jitter, bounded, never past expiry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from channels.base import ErrorKind

BASE_DELAY_S = 30.0
MAX_DELAY_S = 3600.0
DEFAULT_MAX_RETRIES = 6


class Action(StrEnum):
    RETRY = "retry"  # back to the queue at `at`
    FAIL = "fail"  # final: do not try again
    UNKNOWN = "unknown"  # may have been published: reconcile, never resend blindly
    STOP_ACCOUNT = "stop_account"  # credentials broken: stop the whole account, alert a person
    EXPIRE = "expire"  # the next try would come too late: a stale post is worse than none


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    at: datetime | None = None  # when to try again (RETRY only)
    reason: str = ""


def backoff_s(retries_done: int, draw: float) -> float:
    """Full jitter: a uniform draw in [0, min(30 s · 2ⁿ, 1 h)]; `draw` is in [0, 1)."""
    if not 0.0 <= draw <= 1.0:
        raise ValueError(f"draw must be in [0, 1], got {draw}")
    ceiling = min(BASE_DELAY_S * 2.0 ** max(retries_done, 0), MAX_DELAY_S)
    return ceiling * draw


def rate_limit_jitter_s(retry_after_s: float, draw: float) -> float:
    """Spread for retries after a stated wait: up to 10 % of it, at most 30 s."""
    return min(0.1 * retry_after_s, 30.0) * draw


def decide(
    kind: ErrorKind,
    *,
    retries_done: int,
    now: datetime,
    draw: float,
    retry_after_s: float | None = None,
    expires_at: datetime | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
) -> Decision:
    """The engine's answer to one classified send failure."""
    if kind is ErrorKind.UNKNOWN_OUTCOME:
        return Decision(Action.UNKNOWN, reason="outcome unknown: reconcile")
    if kind is ErrorKind.AUTH:
        return Decision(Action.STOP_ACCOUNT, reason="credentials refused")
    if kind is ErrorKind.PERMANENT:
        return Decision(Action.FAIL, reason="permanent error")
    if retries_done >= max_retries:
        return Decision(Action.FAIL, reason=f"gave up after {retries_done} retries")
    if retry_after_s is not None:
        # The platform said how long: wait exactly that, never less, plus a little jitter so
        # the deliveries it held back do not all return in the same instant. Piling our own
        # exponential backoff on top would only make an urgent directive later. A refusal
        # that is safe to retry can state a wait too (Facebook 368: blocked for a while).
        wait = retry_after_s + rate_limit_jitter_s(retry_after_s, draw)
    else:
        wait = backoff_s(retries_done, draw)
    at = now + timedelta(seconds=wait)
    if expires_at is not None and at >= expires_at:
        return Decision(Action.EXPIRE, reason="the next try would come after the post expires")
    return Decision(Action.RETRY, at=at, reason=kind.value)
