"""The audit trail: every decision is an event, and the events form a hash chain.

Each event's hash is sha256(prev_hash + canonical JSON of the event), so editing, deleting or
reordering any event breaks every hash after it; `verify` names the first bad one. Appending is
serialised (SQLite: the caller's BEGIN IMMEDIATE; PostgreSQL: a transaction advisory lock), so
two writers can never both extend the same tail and fork the chain.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa

from publisher.domain import AuditEvent, canonical_json, sha256_hex
from publisher.store.tables import AuditEventRow


def table_of(model: type[Any]) -> sa.Table:
    """The Core table behind a sqlmodel class (for bulk statements without the ORM)."""
    return cast(sa.Table, model.__table__)


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


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""


def verify(events: Iterable[AuditEvent]) -> Verdict:
    """Walk the chain in stored order; name the first event that does not fit."""
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
        prev_hash = event.hash
        expected_seq += 1
        checked += 1
    return Verdict(True, checked)


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


def verify_database(engine: sa.Engine) -> Verdict:
    with engine.connect() as conn:
        return verify(load(conn))
