"""Fault hooks: named points in the delivery path where a test can make the worker die.

In production the hook does nothing. A kill test starts a real worker process with
PUBLISHER_FAULT_KILL_AT=<point>[:n]; the worker then SIGKILLs itself the n-th time (default the
first) it reaches that point, exactly like a power cut or an OOM kill would.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

AFTER_CLAIM = "after_claim"  # claimed, nothing sent: the sweeper gives it back
AFTER_SENDING = "after_sending"  # `sending` committed, no request made yet: unknown → absent
DURING_CALL = "during_call"  # the request is in flight: unknown → reconcile decides
AFTER_ACCEPT = "after_accept"  # the platform accepted it, `sent` not recorded: found by read-back
AFTER_SENT = "after_sent"  # recorded: nothing to do
KILL_POINTS = (AFTER_CLAIM, AFTER_SENDING, DURING_CALL, AFTER_ACCEPT, AFTER_SENT)
# The same for a withdrawal (recall): claimed; `withdrawing` committed; the platform took it
# back but `withdrawn` is not recorded. Each recovers by withdrawing again (idempotent).
WITHDRAW_CLAIMED = "withdraw_claimed"
WITHDRAW_MARKED = "withdraw_marked"
WITHDRAW_CALLED = "withdraw_called"
WITHDRAW_KILL_POINTS = (WITHDRAW_CLAIMED, WITHDRAW_MARKED, WITHDRAW_CALLED)
ENV_VAR = "PUBLISHER_FAULT_KILL_AT"
SIGNAL_ENV_VAR = "PUBLISHER_FAULT_SIGNAL"  # KILL (default) or STOP (freeze: a stalled worker)

FaultHook = Callable[[str], None]


def no_fault(point: str) -> None:
    del point


class KillAt:
    """Signal this process (SIGKILL by default) the `nth` time `point` is reached."""

    def __init__(self, point: str, nth: int = 1, signum: int = signal.SIGKILL) -> None:
        known = KILL_POINTS + WITHDRAW_KILL_POINTS
        if point not in known:
            raise ValueError(f"{ENV_VAR}: unknown point {point!r}; known: {', '.join(known)}")
        self.point = point
        self.nth = nth
        self.seen = 0
        self.signum = signum

    def __call__(self, point: str) -> None:
        if point != self.point:
            return
        self.seen += 1
        if self.seen == self.nth:
            os.kill(os.getpid(), self.signum)


def from_env(environ: dict[str, str] | None = None) -> FaultHook:
    env = environ if environ is not None else dict(os.environ)
    spec = env.get(ENV_VAR, "").strip()
    if not spec:
        return no_fault
    point, _, nth = spec.partition(":")
    name = env.get(SIGNAL_ENV_VAR, "KILL").strip().upper()
    if name not in ("KILL", "STOP"):
        raise ValueError(f"{SIGNAL_ENV_VAR}: KILL or STOP, not {name!r}")
    return KillAt(
        point, int(nth) if nth else 1, signal.SIGKILL if name == "KILL" else signal.SIGSTOP
    )
