from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from channels.base import ErrorKind
from publisher.retry import Action, backoff_s, decide

NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(("n", "ceiling"), [(0, 30), (1, 60), (5, 960), (7, 3600), (20, 3600)])
def test_backoff_is_full_jitter_under_the_capped_ceiling(n, ceiling):
    assert backoff_s(n, 1.0) == ceiling
    assert backoff_s(n, 0.0) == 0
    assert backoff_s(n, 0.5) == ceiling / 2


def test_unknown_outcome_is_never_retried():
    assert (
        decide(ErrorKind.UNKNOWN_OUTCOME, retries_done=0, now=NOW, draw=0.5).action
        is Action.UNKNOWN
    )


def test_auth_stops_the_account_and_permanent_fails():
    assert decide(ErrorKind.AUTH, retries_done=0, now=NOW, draw=0.5).action is Action.STOP_ACCOUNT
    assert decide(ErrorKind.PERMANENT, retries_done=0, now=NOW, draw=0.5).action is Action.FAIL


def test_rate_limit_waits_no_less_than_asked():
    d = decide(ErrorKind.RATE_LIMITED, retries_done=0, now=NOW, draw=0.0, retry_after_s=600)
    assert d.action is Action.RETRY
    assert d.at == NOW + timedelta(seconds=600)


def test_rate_limit_waits_what_was_asked_not_our_own_backoff():
    # After three retries our own backoff ceiling is 240 s; the platform asked for 2 s.
    d = decide(ErrorKind.RATE_LIMITED, retries_done=3, now=NOW, draw=1.0, retry_after_s=2)
    assert d.at is not None
    assert NOW + timedelta(seconds=2) <= d.at <= NOW + timedelta(seconds=2.2)
    long = decide(ErrorKind.RATE_LIMITED, retries_done=0, now=NOW, draw=1.0, retry_after_s=3600)
    assert long.at == NOW + timedelta(seconds=3630)  # jitter capped at 30 s


def test_rate_limit_without_a_stated_wait_backs_off():
    d = decide(ErrorKind.RATE_LIMITED, retries_done=2, now=NOW, draw=0.5)
    assert d.at == NOW + timedelta(seconds=60)  # half of min(30 s · 2², 1 h)


def test_retries_are_bounded_and_never_past_expiry():
    assert decide(ErrorKind.BEFORE_SEND, retries_done=6, now=NOW, draw=0.1).action is Action.FAIL
    late = decide(
        ErrorKind.BEFORE_SEND,
        retries_done=3,
        now=NOW,
        draw=1.0,
        expires_at=NOW + timedelta(seconds=60),
    )
    assert late.action is Action.EXPIRE
    ok = decide(ErrorKind.BEFORE_SEND, retries_done=1, now=NOW, draw=0.25)
    assert ok.action is Action.RETRY
    assert ok.at == NOW + timedelta(seconds=15)


def test_a_safe_refusal_with_a_stated_wait_waits_that_long():
    # Facebook 368 (temporarily blocked for policy) is refused, so safe to retry, and the
    # channel states a long wait: our short backoff must not replace it.
    d = decide(ErrorKind.BEFORE_SEND, retries_done=0, now=NOW, draw=0.0, retry_after_s=3600)
    assert d.action is Action.RETRY
    assert d.at == NOW + timedelta(seconds=3600)
