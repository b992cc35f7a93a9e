from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from publisher.audit import GENESIS_HASH, Anchor, make_event, verify

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


def test_an_anchor_finds_the_newest_events_cut_off():
    events = chain(6)
    anchor = Anchor(6, events[-1].hash, T)
    assert verify(events, anchor).ok
    assert verify(events, anchor).anchored_seq == 6
    verdict = verify(events[:4], anchor)
    assert not verdict.ok
    assert verdict.first_bad_seq == 5
    assert "cut off" in verdict.reason
    assert verify(events[:4]).ok  # without the anchor, nothing to compare with


def test_an_anchor_finds_a_chain_rebuilt_from_scratch():
    events = chain(3)
    anchor = Anchor(3, events[-1].hash, T)
    rebuilt = []
    prev = None
    for event in events:
        prev = make_event(prev, event.at, "mallory", event.action, event.target, event.details)
        rebuilt.append(prev)
    assert verify(rebuilt).ok
    verdict = verify(rebuilt, anchor)
    assert not verdict.ok
    assert verdict.first_bad_seq == 3


def test_an_anchor_on_an_empty_chain_accepts_any_chain():
    assert verify([], Anchor(0, GENESIS_HASH, T)).ok
    assert verify(chain(2), Anchor(0, GENESIS_HASH, T)).ok
