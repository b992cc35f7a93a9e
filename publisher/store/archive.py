"""Archiving finished deliveries: keep the hot tables small, lose no history.

`archive_finished` moves deliveries in a final state (sent, failed, expired, cancelled — never
pending, claimed, sending, unknown, reconciling, needs_review …) that were due and last changed
more than N days ago, with their attempts, from `delivery` / `delivery_attempt` into
`delivery_archive` / `delivery_attempt_archive`.

- In batches, one transaction each (SQLite: BEGIN IMMEDIATE): copy the attempts, delete them,
  copy the deliveries, delete them, append one audit event. A kill between batches (or inside
  one) leaves every delivery in exactly one of the two tables: the next run carries on.
- Idempotent: an archived row is no longer a candidate; running again moves nothing new.
- The rows keep their ids, so `delivery:N` audit targets and reports still find them;
  `history_deliveries()` is the union that reports and history views read.
- Final states never change (docs/delivery.md), so a worker never wants an archived row back.
  A person can no longer retry an archived failure: it is older than the horizon.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from publisher import audit
from publisher.domain import FINAL_DELIVERY_STATES
from publisher.store.tables import (
    DeliveryArchiveRow,
    DeliveryAttemptArchiveRow,
    DeliveryAttemptRow,
    DeliveryRow,
    WithdrawalRow,
    table_of,
)

DELIVERY = table_of(DeliveryRow)
ATTEMPT = table_of(DeliveryAttemptRow)
DELIVERY_ARCHIVE = table_of(DeliveryArchiveRow)
ATTEMPT_ARCHIVE = table_of(DeliveryAttemptArchiveRow)
WITHDRAWAL = table_of(WithdrawalRow)

FINAL_STATES = tuple(sorted(state.value for state in FINAL_DELIVERY_STATES))
DEFAULT_OLDER_THAN_DAYS = 30
DEFAULT_BATCH = 5000
ACTOR = "system:archive"

_DELIVERY_COLUMNS = [c.name for c in DELIVERY.columns]
_ATTEMPT_COLUMNS = [c.name for c in ATTEMPT.columns]


class ArchiveError(Exception):
    """Bad archiving parameters (a negative age, an empty batch)."""


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    cutoff: datetime
    dry_run: bool
    deliveries: int  # moved (or, for a dry run, that would move)
    attempts: int
    batches: int
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        moved = self.deliveries + self.attempts
        return round(moved / self.seconds, 1) if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
            "deliveries": self.deliveries,
            "attempts": self.attempts,
            "batches": self.batches,
            "seconds": round(self.seconds, 3),
            "rows_per_second": self.rows_per_second,
        }


def _candidates(cutoff: datetime) -> list[sa.ColumnElement[bool]]:
    # `due_at` first: the (state, due_at) index narrows the scan; `updated_at` is when the
    # final state was reached. Both must be older than the cutoff.
    return [
        DELIVERY.c.state.in_(FINAL_STATES),
        DELIVERY.c.due_at < cutoff,
        DELIVERY.c.updated_at < cutoff,
        # A recalled delivery stays hot: its withdrawal points at it and is worked on there.
        ~sa.exists().where(WITHDRAWAL.c.delivery_id == DELIVERY.c.id),
    ]


def restore_posts(conn: sa.Connection, post_ids: list[int]) -> int:
    """Move the archived deliveries of these posts (and their attempts) back into the hot
    tables, inside the caller's transaction, and say how many moved.

    A recall needs every delivery of the posts it takes back, however old: an archived post
    is still published, so it must be withdrawn like any other. Ids are kept both ways."""
    archived = sa.select(DELIVERY_ARCHIVE.c.id).where(DELIVERY_ARCHIVE.c.post_id.in_(post_ids))
    ids = [int(i) for i in conn.execute(archived).scalars()]
    if not ids:
        return 0
    conn.execute(
        DELIVERY.insert().from_select(
            _DELIVERY_COLUMNS,
            sa.select(*(DELIVERY_ARCHIVE.c[n] for n in _DELIVERY_COLUMNS)).where(
                DELIVERY_ARCHIVE.c.id.in_(ids)
            ),
        )
    )
    conn.execute(
        ATTEMPT.insert().from_select(
            _ATTEMPT_COLUMNS,
            sa.select(*(ATTEMPT_ARCHIVE.c[n] for n in _ATTEMPT_COLUMNS)).where(
                ATTEMPT_ARCHIVE.c.delivery_id.in_(ids)
            ),
        )
    )
    conn.execute(ATTEMPT_ARCHIVE.delete().where(ATTEMPT_ARCHIVE.c.delivery_id.in_(ids)))
    conn.execute(DELIVERY_ARCHIVE.delete().where(DELIVERY_ARCHIVE.c.id.in_(ids)))
    return len(ids)


def history_deliveries(*columns: str) -> sa.Subquery:
    """`delivery` ∪ `delivery_archive` with these columns (default: every delivery column),
    as a subquery named `delivery_history`. A row is in exactly one of the two tables."""
    names = list(columns) or _DELIVERY_COLUMNS
    return sa.union_all(
        sa.select(*(DELIVERY.c[name] for name in names)),
        sa.select(*(DELIVERY_ARCHIVE.c[name] for name in names)),
    ).subquery("delivery_history")


def history_where(
    condition: Callable[[sa.Table], sa.ColumnElement[bool]], *columns: str
) -> sa.CompoundSelect[Any]:
    """Rows of `delivery` and `delivery_archive` matching `condition(table)`, each side
    filtered on its own indexes (a filter outside a UNION ALL is not always pushed in)."""
    names = list(columns) or _DELIVERY_COLUMNS
    return sa.union_all(
        sa.select(*(DELIVERY.c[name] for name in names)).where(condition(DELIVERY)),
        sa.select(*(DELIVERY_ARCHIVE.c[name] for name in names)).where(condition(DELIVERY_ARCHIVE)),
    )


def count_candidates(engine: sa.Engine, cutoff: datetime) -> tuple[int, int]:
    """(deliveries, attempts) that an archive run with this cutoff would move."""
    with engine.connect() as conn:
        ids = sa.select(DELIVERY.c.id).where(*_candidates(cutoff))
        deliveries = conn.execute(
            sa.select(sa.func.count()).select_from(ids.subquery())
        ).scalar_one()
        attempts = conn.execute(
            sa.select(sa.func.count()).where(ATTEMPT.c.delivery_id.in_(ids))
        ).scalar_one()
    return int(deliveries), int(attempts)


def _move_batch(
    engine: sa.Engine, cutoff: datetime, now: datetime, batch: int, older_than_days: float
) -> tuple[int, int]:
    """One transaction: move up to `batch` candidate deliveries and their attempts."""
    is_sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if is_sqlite:
            conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            pick = sa.select(DELIVERY.c.id).where(*_candidates(cutoff)).limit(batch)
            if not is_sqlite:
                pick = pick.with_for_update(skip_locked=True)
            ids = [int(i) for i in conn.execute(pick).scalars()]
            if not ids:
                return 0, 0
            conn.execute(
                ATTEMPT_ARCHIVE.insert().from_select(
                    _ATTEMPT_COLUMNS,
                    sa.select(*(ATTEMPT.c[n] for n in _ATTEMPT_COLUMNS)).where(
                        ATTEMPT.c.delivery_id.in_(ids)
                    ),
                )
            )
            attempts = conn.execute(ATTEMPT.delete().where(ATTEMPT.c.delivery_id.in_(ids)))
            # The candidate condition again: a row that left its final state in between
            # (it cannot, but the fence costs nothing) stays where it is.
            conn.execute(
                DELIVERY_ARCHIVE.insert().from_select(
                    [*_DELIVERY_COLUMNS, "archived_at"],
                    sa.select(
                        *(DELIVERY.c[n] for n in _DELIVERY_COLUMNS),
                        sa.literal(now, DELIVERY_ARCHIVE.c.archived_at.type),
                    ).where(DELIVERY.c.id.in_(ids), *_candidates(cutoff)),
                )
            )
            deleted = conn.execute(
                DELIVERY.delete().where(DELIVERY.c.id.in_(ids), *_candidates(cutoff))
            )
            copied = conn.execute(
                sa.select(sa.func.count()).where(DELIVERY_ARCHIVE.c.id.in_(ids))
            ).scalar_one()
            if copied != deleted.rowcount:  # never: one transaction, one condition
                raise RuntimeError(
                    f"archive: copied {copied} deliveries but deleted {deleted.rowcount}"
                )
            audit.append(
                conn,
                is_sqlite,
                at=now,
                actor=ACTOR,
                action="archive",
                target="delivery_archive",
                details={
                    "deliveries": deleted.rowcount,
                    "attempts": attempts.rowcount,
                    "first_id": min(ids),
                    "last_id": max(ids),
                    "cutoff": cutoff.isoformat(),
                    "older_than_days": older_than_days,
                },
            )
            return int(deleted.rowcount), int(attempts.rowcount)


def archive_finished(
    engine: sa.Engine,
    now: datetime,
    older_than: timedelta = timedelta(days=DEFAULT_OLDER_THAN_DAYS),
    *,
    dry_run: bool = False,
    batch: int = DEFAULT_BATCH,
    max_batches: int | None = None,
    between_batches: Callable[[int], None] | None = None,
    clock: Callable[[], float] | None = None,
) -> ArchiveResult:
    """Move finished deliveries older than `older_than` (and their attempts) to the archive.

    `between_batches(n)` is called after the n-th committed batch (tests kill the process
    there); `max_batches` bounds one run (the scheduled archiver does a little at a time)."""
    import time

    if older_than < timedelta(0):
        raise ArchiveError("--older-than: must be 0 days or more")
    if batch < 1:
        raise ArchiveError("--batch: must be 1 or more")
    if now.tzinfo is None:
        raise ArchiveError("now must be timezone-aware")
    timer = clock or time.perf_counter
    cutoff = now - older_than
    started = timer()
    if dry_run:
        deliveries, attempts = count_candidates(engine, cutoff)
        return ArchiveResult(cutoff, True, deliveries, attempts, 0, timer() - started)
    days = older_than.total_seconds() / 86400
    moved_deliveries = moved_attempts = batches = 0
    while max_batches is None or batches < max_batches:
        deliveries, attempts = _move_batch(engine, cutoff, now, batch, days)
        if deliveries == 0:
            break
        batches += 1
        moved_deliveries += deliveries
        moved_attempts += attempts
        if between_batches is not None:
            between_batches(batches)
        if deliveries < batch:
            break
    return ArchiveResult(
        cutoff, False, moved_deliveries, moved_attempts, batches, timer() - started
    )
