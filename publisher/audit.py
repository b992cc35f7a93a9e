"""The audit trail: every decision is an event, and the events form a hash chain.

Each event's hash is sha256(prev_hash + canonical JSON of the event), so editing, deleting or
reordering any event breaks every hash after it; `verify` names the first bad one. Appending is
serialised (SQLite: the caller's BEGIN IMMEDIATE; PostgreSQL: a transaction advisory lock), so
two writers can never both extend the same tail and fork the chain.

The chain alone cannot know how long it should be, nor stop someone who can write the
database from recomputing every hash. An *anchor* kept outside the database
(`<PUBLISHER_HOME>/audit-head.json`: the head's seq and hash) closes part of that: `verify`
with the anchor reports events cut off after it, and a chain rewritten up to it. The anchor is
written by `publisher audit anchor` and at the end of worker runs, only over a chain that
verifies against the previous anchor, and never moves backwards. The chain is unkeyed (no
HMAC): see docs/threat-model.md for why and what that leaves open.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa

from publisher.domain import AuditEvent, canonical_json, sha256_hex
from publisher.store.tables import AuditEventRow, table_of

GENESIS_HASH = "0" * 64
_ADVISORY_LOCK_KEY = 0x70_75_62_61  # "puba": one lock for the one chain
AUDIT = table_of(AuditEventRow)


def normalise_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """What the database gives back for these details (JSON round trip), so hashes agree."""
    return cast(dict[str, Any], json.loads(canonical_json(dict(details))))


def event_hash(
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, Any],
) -> str:
    body = {
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(),
        "actor": actor,
        "action": action,
        "target": target,
        "details": normalise_details(details),
    }
    return sha256_hex(prev_hash + canonical_json(body))


def make_event(
    prev: AuditEvent | None,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, Any],
) -> AuditEvent:
    """The next event after `prev` (None: the first), with its hash."""
    if at.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = GENESIS_HASH if prev is None else prev.hash
    clean = normalise_details(details)
    return AuditEvent(
        seq=seq,
        at=at.astimezone(UTC),
        actor=actor,
        action=action,
        target=target,
        details=clean,
        prev_hash=prev_hash,
        hash=event_hash(prev_hash, seq, at, actor, action, target, clean),
    )


ANCHOR_FILE_NAME = "audit-head.json"


class AnchorError(Exception):
    """The anchor file cannot be read or written: one line naming the file."""


@dataclass(frozen=True, slots=True)
class Anchor:
    """The chain's head as last seen by someone outside the database."""

    seq: int  # 0: the chain was empty
    hash: str
    written_at: datetime


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""
    anchored_seq: int | None = None  # the anchor checked against, if any
    keyed: bool = False  # always False today: the chain has no HMAC key


def verify(events: Iterable[AuditEvent], anchor: Anchor | None = None) -> Verdict:
    """Walk the chain in stored order; name the first event that does not fit. With an
    `anchor`, the event at the anchored seq must carry the anchored hash, and the chain must
    reach at least that far."""
    anchored = anchor.seq if anchor is not None else None
    prev_hash = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for event in events:
        if event.seq != expected_seq:
            why = "missing or reordered events" if event.seq > expected_seq else "out of order"
            return Verdict(False, checked, event.seq, f"expected seq {expected_seq}: {why}")
        if event.prev_hash != prev_hash:
            return Verdict(False, checked, event.seq, "prev_hash does not match the event before")
        recomputed = event_hash(
            event.prev_hash,
            event.seq,
            event.at,
            event.actor,
            event.action,
            event.target,
            event.details,
        )
        if recomputed != event.hash:
            return Verdict(False, checked, event.seq, "content changed after it was written")
        if anchor is not None and event.seq == anchor.seq and event.hash != anchor.hash:
            return Verdict(
                False,
                checked,
                event.seq,
                f"differs from the anchor written {anchor.written_at.isoformat()}: the chain "
                "up to here was rewritten",
                anchored,
            )
        prev_hash = event.hash
        expected_seq += 1
        checked += 1
    if anchor is not None and checked < anchor.seq:
        return Verdict(
            False,
            checked,
            checked + 1,
            f"the chain ends at event {checked} but the anchor written "
            f"{anchor.written_at.isoformat()} records event {anchor.seq}: the newest events "
            "were cut off",
            anchored,
        )
    return Verdict(True, checked, anchored_seq=anchored)


def _from_row(m: Any) -> AuditEvent:
    return AuditEvent(
        seq=m["seq"],
        at=m["at"],
        actor=m["actor"],
        action=m["action"],
        target=m["target"],
        details=m["details"],
        prev_hash=m["prev_hash"],
        hash=m["hash"],
    )


def append(
    conn: sa.Connection,
    is_sqlite: bool,
    *,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, Any],
) -> AuditEvent:
    """Append inside the caller's write transaction (SQLite callers must use BEGIN IMMEDIATE)."""
    if not is_sqlite:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
    last = conn.execute(sa.select(AUDIT).order_by(AUDIT.c.seq.desc()).limit(1)).first()
    prev = _from_row(last._mapping) if last is not None else None
    event = make_event(prev, at, actor, action, target, details)
    conn.execute(
        sa.insert(AUDIT).values(
            seq=event.seq,
            at=event.at,
            actor=event.actor,
            action=event.action,
            target=event.target,
            details=dict(event.details),
            prev_hash=event.prev_hash,
            hash=event.hash,
        )
    )
    return event


def load(conn: sa.Connection) -> list[AuditEvent]:
    return [_from_row(r._mapping) for r in conn.execute(sa.select(AUDIT).order_by(AUDIT.c.seq))]


def verify_database(engine: sa.Engine, anchor: Anchor | None = None) -> Verdict:
    with engine.connect() as conn:
        return verify(load(conn), anchor)


# --- the anchor outside the database ------------------------------------------------------


def read_anchor(path: Path) -> Anchor | None:
    """The anchor in `path`, None when there is none yet, `AnchorError` when it is damaged."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise AnchorError(f"{path}: cannot read the audit anchor: {error.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise AnchorError(f"{path}: the audit anchor is not JSON ({error.msg})") from None
    if not isinstance(data, dict):
        raise AnchorError(f"{path}: the audit anchor must be a JSON object")
    seq, digest, written = data.get("seq"), data.get("hash"), data.get("written_at")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise AnchorError(f"{path}: the audit anchor's seq must be a whole number ≥ 0")
    if not isinstance(digest, str) or len(digest) != 64:
        raise AnchorError(f"{path}: the audit anchor's hash must be 64 hex characters")
    try:
        written_at = datetime.fromisoformat(str(written))
    except ValueError:
        raise AnchorError(f"{path}: the audit anchor's written_at is not a time") from None
    if written_at.tzinfo is None:
        raise AnchorError(f"{path}: the audit anchor's written_at needs a UTC offset")
    return Anchor(seq, digest, written_at)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One anchor writer at a time (a worker ending while someone runs `audit anchor`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_anchor(path: Path, anchor: Anchor) -> None:
    body = {
        "seq": anchor.seq,
        "hash": anchor.hash,
        "written_at": anchor.written_at.astimezone(UTC).isoformat(),
    }
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)  # readers see the old anchor or the new one, never half


def anchor_database(engine: sa.Engine, path: Path, now: datetime) -> Verdict:
    """Move the anchor in `path` to the chain's head, only if the chain verifies against the
    anchor already there (else the anchor is left alone and the verdict says why). Never moves
    it backwards."""
    with _locked(path):
        previous = read_anchor(path)
        with engine.connect() as conn:
            events = load(conn)
        verdict = verify(events, previous)
        if not verdict.ok:
            return verdict
        head = events[-1] if events else None
        seq, digest = (head.seq, head.hash) if head is not None else (0, GENESIS_HASH)
        if previous is None or seq > previous.seq:
            _write_anchor(path, Anchor(seq, digest, now.astimezone(UTC)))
        return Verdict(True, verdict.checked, anchored_seq=max(seq, verdict.anchored_seq or 0))
