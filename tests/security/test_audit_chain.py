"""The audit hash chain finds any edited, deleted, reordered or forged event and names it.

Tests the delivery engineer's `publisher.audit` against a real SQLite file, tampering with the
stored rows through a separate raw `sqlite3` connection, as an intruder with file access would.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from publisher import audit
from publisher.store.engine import make_engine, upgrade

T0 = datetime(2026, 11, 14, 2, 0, tzinfo=UTC)
EVENTS = 12


@pytest.fixture
def chain(tmp_path: Path) -> tuple[sa.Engine, Path]:
    path = tmp_path / "audit.db"
    upgrade(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    for n in range(1, EVENTS + 1):
        with engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                audit.append(
                    conn,
                    True,
                    at=T0 + timedelta(seconds=n),
                    actor="duyet.hanoi" if n % 2 else "quantri.quangninh",
                    action="approve" if n % 3 else "pause",
                    target=f"post:{n}",
                    details={"reason": f"Lý do số {n}", "complete": True, "n": n},
                )
    verdict = audit.verify_database(engine)
    assert verdict.ok, verdict
    assert verdict.checked == EVENTS
    return engine, path


def raw(path: Path, sql: str, *params: object) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(sql, params)


def raw_value(path: Path, column: str, seq: int) -> str:
    with sqlite3.connect(path) as conn:
        return str(
            conn.execute(f"SELECT {column} FROM audit_event WHERE seq = ?", (seq,)).fetchone()[0]
        )


def flip_one_byte(text: str, at: int | None = None) -> str:
    """The same text with one byte's low bit flipped (an ASCII byte, so it stays valid UTF-8)."""
    data = bytearray(text.encode("utf-8"))
    positions = [i for i, b in enumerate(data) if 0x30 <= b < 0x7A and chr(b ^ 1).isalnum()]
    index = positions[len(positions) // 2] if at is None else positions[at]
    data[index] ^= 0x01
    return data.decode("utf-8")


@pytest.mark.parametrize(
    "column", ["details", "actor", "action", "target", "at", "hash", "prev_hash"]
)
@pytest.mark.parametrize("seq", [1, 7, EVENTS])
def test_one_flipped_byte_anywhere_is_found_and_named(
    chain: tuple[sa.Engine, Path], column: str, seq: int
) -> None:
    engine, path = chain
    before = raw_value(path, column, seq)
    after = flip_one_byte(before)
    if column == "at":  # keep it a readable timestamp: flip a digit of the seconds
        after = before[:-8] + str((int(before[-8]) + 1) % 10) + before[-7:]
    assert after != before
    raw(path, f"UPDATE audit_event SET {column} = ? WHERE seq = ?", after, seq)
    verdict = audit.verify_database(engine)
    assert not verdict.ok
    assert verdict.first_bad_seq == seq, (column, verdict)
    assert verdict.reason


def test_a_flipped_byte_inside_a_vietnamese_detail_is_found(chain: tuple[sa.Engine, Path]) -> None:
    engine, path = chain
    details = json.loads(raw_value(path, "details", 5))
    assert details["reason"] == "Lý do số 5"
    details["reason"] = "Ly do số 5"  # one character
    raw(path, "UPDATE audit_event SET details = ? WHERE seq = 5", json.dumps(details))
    assert audit.verify_database(engine).first_bad_seq == 5


def test_reformatted_but_equal_details_are_not_a_false_alarm(chain: tuple[sa.Engine, Path]) -> None:
    engine, path = chain
    details = json.loads(raw_value(path, "details", 3))
    reordered = json.dumps(dict(reversed(list(details.items()))), indent=2)
    raw(path, "UPDATE audit_event SET details = ? WHERE seq = 3", reordered)
    assert audit.verify_database(engine).ok


TAMPERING: dict[str, tuple[Callable[[Path], None], int]] = {
    "a middle event deleted": (lambda p: raw(p, "DELETE FROM audit_event WHERE seq = 6"), 7),
    "the first event deleted": (lambda p: raw(p, "DELETE FROM audit_event WHERE seq = 1"), 2),
    "two events swapped": (
        lambda p: (
            raw(p, "UPDATE audit_event SET seq = -1 WHERE seq = 4"),
            raw(p, "UPDATE audit_event SET seq = 4 WHERE seq = 5"),
            raw(p, "UPDATE audit_event SET seq = 5 WHERE seq = -1"),
        ),
        4,
    ),
    "contents of two events swapped, seq kept": (
        lambda p: raw(
            p,
            "UPDATE audit_event SET actor = CASE seq WHEN 8 THEN 'duyet.hanoi' "
            "ELSE 'quantri.quangninh' END WHERE seq IN (8, 9)",
        ),
        8,
    ),
    "a forged event appended": (
        lambda p: raw(
            p,
            "INSERT INTO audit_event (seq, at, actor, action, target, details, prev_hash, hash) "
            "VALUES (13, '2026-11-14 03:00:00.000000', 'admin', 'approve', 'post:99', '{}', "
            "(SELECT hash FROM audit_event WHERE seq = 12), ?)",
            "f" * 64,
        ),
        13,
    ),
    "a forged event inserted with a gap": (
        lambda p: raw(
            p,
            "INSERT INTO audit_event (seq, at, actor, action, target, details, prev_hash, hash) "
            "VALUES (20, '2026-11-14 03:00:00.000000', 'admin', 'approve', 'post:99', '{}', "
            "(SELECT hash FROM audit_event WHERE seq = 12), ?)",
            "e" * 64,
        ),
        20,
    ),
}


@pytest.mark.parametrize("name", list(TAMPERING))
def test_deleted_reordered_and_forged_events_are_found(
    chain: tuple[sa.Engine, Path], name: str
) -> None:
    engine, path = chain
    tamper, first_bad = TAMPERING[name]
    tamper(path)
    verdict = audit.verify_database(engine)
    assert not verdict.ok, name
    assert verdict.first_bad_seq == first_bad, (name, verdict)


def test_truncating_the_newest_events_is_found(chain: tuple[sa.Engine, Path]) -> None:
    """An anchor kept outside the database (the working folder) remembers the head."""
    engine, path = chain
    anchor_file = path.parent / audit.ANCHOR_FILE_NAME
    assert audit.anchor_database(engine, anchor_file, T0).ok
    raw(path, "DELETE FROM audit_event WHERE seq > 9")
    verdict = audit.verify_database(engine, audit.read_anchor(anchor_file))
    assert not verdict.ok
    assert verdict.first_bad_seq == 10
    assert "cut off" in verdict.reason
    assert verdict.checked == 9
    # and the anchor refuses to move back to the shortened head
    assert not audit.anchor_database(engine, anchor_file, T0).ok
    assert audit.read_anchor(anchor_file) is not None
    assert audit.read_anchor(anchor_file).seq == EVENTS  # type: ignore[union-attr]


def test_without_an_anchor_truncation_is_not_seen(chain: tuple[sa.Engine, Path]) -> None:
    """The known limit the anchor closes: the chain alone cannot know its own length."""
    engine, path = chain
    raw(path, "DELETE FROM audit_event WHERE seq > 9")
    assert audit.verify_database(engine).ok


def test_a_recomputed_chain_no_longer_matches_the_anchor(chain: tuple[sa.Engine, Path]) -> None:
    """An intruder edits event 3 and recomputes every hash after it: the unkeyed chain verifies
    on its own, but its head no longer matches the anchored one."""
    engine, path = chain
    anchor_file = path.parent / audit.ANCHOR_FILE_NAME
    assert audit.anchor_database(engine, anchor_file, T0).ok
    with engine.connect() as conn:
        events = audit.load(conn)
    rebuilt: list[audit.AuditEvent] = []
    for event in events:
        actor = "mallory" if event.seq == 3 else event.actor
        rebuilt.append(
            audit.make_event(
                rebuilt[-1] if rebuilt else None,
                event.at,
                actor,
                event.action,
                event.target,
                event.details,
            )
        )
    for event in rebuilt:
        raw(
            path,
            "UPDATE audit_event SET actor = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            event.actor,
            event.prev_hash,
            event.hash,
            event.seq,
        )
    assert audit.verify_database(engine).ok  # the chain alone is fooled
    verdict = audit.verify_database(engine, audit.read_anchor(anchor_file))
    assert not verdict.ok
    assert verdict.first_bad_seq == EVENTS
    assert "anchor" in verdict.reason


def test_the_anchor_moves_forward_with_the_chain(chain: tuple[sa.Engine, Path]) -> None:
    engine, path = chain
    anchor_file = path.parent / audit.ANCHOR_FILE_NAME
    assert audit.read_anchor(anchor_file) is None
    assert audit.anchor_database(engine, anchor_file, T0).ok
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            audit.append(
                conn, True, at=T0, actor="admin", action="pause", target="all:", details={}
            )
    verdict = audit.verify_database(engine, audit.read_anchor(anchor_file))
    assert verdict.ok  # newer events than the anchor are fine
    assert verdict.anchored_seq == EVENTS
    assert audit.anchor_database(engine, anchor_file, T0).ok
    anchor = audit.read_anchor(anchor_file)
    assert anchor is not None
    assert anchor.seq == EVENTS + 1


def test_a_damaged_anchor_file_is_named(tmp_path: Path) -> None:
    anchor_file = tmp_path / audit.ANCHOR_FILE_NAME
    anchor_file.write_text("{not json", encoding="utf-8")
    with pytest.raises(audit.AnchorError, match=str(anchor_file)):
        audit.read_anchor(anchor_file)
    anchor_file.write_text('{"seq": "x", "hash": 1}', encoding="utf-8")
    with pytest.raises(audit.AnchorError, match="seq"):
        audit.read_anchor(anchor_file)
