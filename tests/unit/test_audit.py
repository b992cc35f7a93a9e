from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from publisher.audit import GENESIS_HASH, make_event, verify

T = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def chain(n: int):
    events = []
    prev = None
    for i in range(n):
        prev = make_event(
            prev, T + timedelta(seconds=i), "admin", "approve", f"post:{i}", {"i": i, "lý do": "ổn"}
        )
        events.append(prev)
    return events


def test_a_clean_chain_verifies():
    events = chain(5)
    assert events[0].prev_hash == GENESIS_HASH
    verdict = verify(events)
    assert verdict.ok
    assert verdict.checked == 5


def test_an_edited_event_is_named():
    events = chain(5)
    events[2] = replace(events[2], details={"i": 99})
    verdict = verify(events)
    assert not verdict.ok
    assert verdict.first_bad_seq == 3


def test_a_deleted_event_is_named():
    events = chain(5)
    del events[1]
    verdict = verify(events)
    assert not verdict.ok
    assert verdict.first_bad_seq == 3


def test_reordered_events_are_named():
    events = chain(5)
    events[1], events[2] = events[2], events[1]
    verdict = verify(events)
    assert not verdict.ok
    assert verdict.first_bad_seq == 3


def test_a_rehashed_edit_still_breaks_the_next_link():
    events = chain(4)
    forged = make_event(events[0], events[1].at, "mallory", "approve", "post:1", {})
    events[1] = forged
    verdict = verify(events)
    assert not verdict.ok
    assert verdict.first_bad_seq == 3
