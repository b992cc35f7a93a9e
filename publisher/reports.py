"""Coverage reports: what reached citizens, where, and how fast.

Two layers. The pure part takes plain values (units, deliveries, an article, `now`) and
returns plain values (a coverage matrix, roll-ups by level, lag lists, curves); it never
reads the clock or the database, so the TUI's coverage screen and the CLI share it and tests
can check it to the row. The thin query part (`load_*`) reads those values from the store.

Definitions (docs/reports.md):
- targeted: every delivery row of the article (one per unit × channel account), whatever its
  state; a unit that received the post but has no channel account is listed with no cells.
- lag of a sent delivery: its `sent_at` − the article's `published_at`; a cell's lag is the
  first `sent_at` among its accounts. An unsent cell shows how long it has waited since the
  article was published (`now` − `published_at`).
- percentages: sent ÷ targeted × 100, rounded to one decimal.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from publisher.domain import (
    ArticleKind,
    DeliveryState,
    ReceiptNote,
    manual_removal_target,
    receipt_notes_from_json,
)
from publisher.store.archive import history_where
from publisher.store.tables import ArticleRow, PostRow, UnitRow, table_of

# Levels in the order the centre reads them; unknown kinds follow alphabetically.
LEVEL_ORDER = ("central", "ministry", "province", "commune", "site")
LEVEL_LABELS_VI = {
    "central": "Trung ương",
    "ministry": "Bộ, ngành",
    "province": "Tỉnh, thành phố",
    "commune": "Xã, phường, đặc khu",
    "site": "Trang thành phần",
}
PLATFORM_ORDER = ("facebook", "youtube", "zalo", "viber", "telegram", "x")

# When one cell (unit × platform) holds several accounts in different states, the cell shows
# "partial" if some were sent, else the state that most needs a person.
_ATTENTION_ORDER = (
    DeliveryState.NEEDS_REVIEW,
    DeliveryState.FAILED,
    DeliveryState.EXPIRED,
    DeliveryState.UNKNOWN,
    DeliveryState.RECONCILING,
    DeliveryState.SENDING,
    DeliveryState.CLAIMED,
    DeliveryState.RETRY_WAIT,
    DeliveryState.PENDING,
    DeliveryState.AWAITING_APPROVAL,
    DeliveryState.CANCELLED,
)
_ATTENTION_VALUES = tuple(state.value for state in _ATTENTION_ORDER)  # plain str: fast to test
_SENT = DeliveryState.SENT.value
PARTIAL = "partial"
NO_CHANNEL = "no_channel"


def level_sort_key(kind: str) -> tuple[int, str]:
    return (LEVEL_ORDER.index(kind) if kind in LEVEL_ORDER else len(LEVEL_ORDER), kind)


def platform_sort_key(platform: str) -> tuple[int, str]:
    index = PLATFORM_ORDER.index(platform) if platform in PLATFORM_ORDER else len(PLATFORM_ORDER)
    return (index, platform)


def level_label(kind: str) -> str:
    return LEVEL_LABELS_VI.get(kind, kind)


def percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


# --- input values -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnitInfo:
    code: str
    name: str
    kind: str
    path: str = ""  # "/CP/01/01001/": sorts a tree in reading order
    depth: int = 0


@dataclass(frozen=True, slots=True)
class ArticleInfo:
    id: int
    title: str
    kind: str
    published_at: datetime
    unit_code: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryFact:
    article_id: int
    unit_code: str
    account_id: str
    platform: str
    state: str
    sent_at: datetime | None = None
    delivery_id: int | None = None


# --- output values ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CoverageCell:
    """One unit on one platform (usually one account; several are summed)."""

    unit_code: str
    platform: str
    state: str
    accounts: int
    sent: int
    first_sent_at: datetime | None
    lag_s: float | None  # first sent_at − published_at; None when nothing was sent
    waiting_s: float | None  # now − published_at when nothing was sent; else None

    def to_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit_code,
            "platform": self.platform,
            "state": self.state,
            "accounts": self.accounts,
            "sent": self.sent,
            "first_sent_at": self.first_sent_at.isoformat() if self.first_sent_at else None,
            "lag_s": self.lag_s,
            "waiting_s": self.waiting_s,
        }


@dataclass(frozen=True, slots=True)
class UnitCoverage:
    unit: UnitInfo
    cells: tuple[CoverageCell, ...]
    targeted: int
    sent: int

    @property
    def percent_sent(self) -> float:
        return percent(self.sent, self.targeted)

    @property
    def first_lag_s(self) -> float | None:
        lags = [c.lag_s for c in self.cells if c.lag_s is not None]
        return min(lags) if lags else None

    @property
    def state(self) -> str:
        if not self.cells:
            return NO_CHANNEL
        return summarise_states([c.state for c in self.cells])

    def to_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit.code,
            "name": self.unit.name,
            "level": self.unit.kind,
            "state": self.state,
            "targeted": self.targeted,
            "sent": self.sent,
            "percent_sent": self.percent_sent,
            "first_lag_s": self.first_lag_s,
            "cells": [c.to_json() for c in self.cells],
        }


@dataclass(frozen=True, slots=True)
class Rollup:
    """Totals for a group of units: a level (ministries, provinces …), a platform, or all."""

    key: str
    label: str
    units_targeted: int
    units_reached: int  # at least one delivery sent
    units_complete: int  # every delivery sent (units without accounts are never complete)
    targeted: int
    sent: int
    by_state: Mapping[str, int]
    lags_s: tuple[float, ...]  # one per sent delivery, ascending

    @property
    def percent_sent(self) -> float:
        return percent(self.sent, self.targeted)

    @property
    def percent_units_reached(self) -> float:
        return percent(self.units_reached, self.units_targeted)

    @property
    def median_lag_s(self) -> float | None:
        return statistics.median(self.lags_s) if self.lags_s else None

    @property
    def max_lag_s(self) -> float | None:
        return self.lags_s[-1] if self.lags_s else None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "units_targeted": self.units_targeted,
            "units_reached": self.units_reached,
            "units_complete": self.units_complete,
            "percent_units_reached": self.percent_units_reached,
            "targeted": self.targeted,
            "sent": self.sent,
            "percent_sent": self.percent_sent,
            "by_state": dict(self.by_state),
            "median_lag_s": self.median_lag_s,
            "max_lag_s": self.max_lag_s,
        }


@dataclass(frozen=True, slots=True)
class Coverage:
    article: ArticleInfo
    now: datetime
    units: tuple[UnitCoverage, ...]
    platforms: tuple[str, ...]  # the matrix's columns
    levels: tuple[Rollup, ...]
    by_platform: tuple[Rollup, ...]
    total: Rollup

    def cell(self, unit_code: str, platform: str) -> CoverageCell | None:
        for unit in self.units:
            if unit.unit.code == unit_code:
                return next((c for c in unit.cells if c.platform == platform), None)
        return None

    def level(self, kind: str) -> Rollup | None:
        return next((r for r in self.levels if r.key == kind), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "article": {
                "id": self.article.id,
                "title": self.article.title,
                "kind": self.article.kind,
                "published_at": self.article.published_at.isoformat(),
            },
            "generated_at": self.now.isoformat(),
            "platforms": list(self.platforms),
            "total": self.total.to_json(),
            "levels": [r.to_json() for r in self.levels],
            "by_platform": [r.to_json() for r in self.by_platform],
            "units": [u.to_json() for u in self.units],
        }


# --- pure computations --------------------------------------------------------------------


def summarise_states(states: Sequence[str]) -> str:
    distinct = set(states)
    if len(distinct) == 1:
        return states[0]
    if _SENT in distinct:
        return PARTIAL
    for state in _ATTENTION_VALUES:
        if state in distinct:
            return state
    return sorted(distinct)[0]


def lag_seconds(sent_at: datetime, published_at: datetime) -> float:
    return (sent_at - published_at).total_seconds()


def _cell(
    unit_code: str,
    platform: str,
    facts: Sequence[DeliveryFact],
    published_at: datetime,
    now: datetime,
) -> CoverageCell:
    sent_times = sorted(f.sent_at for f in facts if f.state == _SENT and f.sent_at is not None)
    first = sent_times[0] if sent_times else None
    return CoverageCell(
        unit_code=unit_code,
        platform=platform,
        state=summarise_states([f.state for f in facts]),
        accounts=len(facts),
        sent=len(sent_times),
        first_sent_at=first,
        lag_s=lag_seconds(first, published_at) if first else None,
        waiting_s=None if first else max(0.0, (now - published_at).total_seconds()),
    )


def rollup(
    key: str,
    label: str,
    unit_codes: Iterable[str],
    facts: Iterable[DeliveryFact],
    published_at: datetime,
) -> Rollup:
    """Totals over `facts` for the units `unit_codes` (units without facts count as targeted
    but never reached). Reached and complete are judged on these facts only, so a platform's
    roll-up says whether the unit was reached on that platform."""
    fact_list = list(facts)
    per_unit: dict[str, list[int]] = {code: [0, 0] for code in unit_codes}  # targeted, sent
    by_state: dict[str, int] = defaultdict(int)
    lags: list[float] = []
    for fact in fact_list:
        counts = per_unit.setdefault(fact.unit_code, [0, 0])
        counts[0] += 1
        by_state[fact.state] += 1
        if fact.state == _SENT and fact.sent_at is not None:
            counts[1] += 1
            lags.append(lag_seconds(fact.sent_at, published_at))
    return Rollup(
        key=key,
        label=label,
        units_targeted=len(per_unit),
        units_reached=sum(1 for _, sent in per_unit.values() if sent > 0),
        units_complete=sum(
            1 for targeted, sent in per_unit.values() if targeted and sent == targeted
        ),
        targeted=len(fact_list),
        sent=by_state.get(_SENT, 0),
        by_state=dict(sorted(by_state.items())),
        lags_s=tuple(sorted(lags)),
    )


def compute_coverage(
    article: ArticleInfo,
    units: Mapping[str, UnitInfo],
    targeted_units: Iterable[str],
    deliveries: Iterable[DeliveryFact],
    now: datetime,
) -> Coverage:
    """The coverage of one article: the unit × platform matrix and its roll-ups.

    `targeted_units`: units that got a post (they may have no channel account);
    `deliveries`: every delivery of the article. Units only met in `deliveries` are added.
    """
    facts = [d for d in deliveries if d.article_id == article.id]
    by_unit: dict[str, dict[str, list[DeliveryFact]]] = defaultdict(lambda: defaultdict(list))
    for fact in facts:
        by_unit[fact.unit_code][fact.platform].append(fact)
    codes = set(targeted_units) | set(by_unit)

    def info(code: str) -> UnitInfo:
        return units.get(code) or UnitInfo(code=code, name=code, kind="unknown", path=f"/{code}/")

    unit_rows = []
    for code in sorted(codes, key=lambda c: (info(c).path or c, c)):
        unit_facts = by_unit.get(code, {})
        cells = tuple(
            _cell(code, platform, unit_facts[platform], article.published_at, now)
            for platform in sorted(unit_facts, key=platform_sort_key)
        )
        unit_rows.append(
            UnitCoverage(
                unit=info(code),
                cells=cells,
                targeted=sum(c.accounts for c in cells),
                sent=sum(c.sent for c in cells),
            )
        )

    kinds = sorted({u.unit.kind for u in unit_rows}, key=level_sort_key)
    unit_kind = {u.unit.code: u.unit.kind for u in unit_rows}
    levels = tuple(
        rollup(
            kind,
            level_label(kind),
            [u.unit.code for u in unit_rows if u.unit.kind == kind],
            [f for f in facts if unit_kind[f.unit_code] == kind],
            article.published_at,
        )
        for kind in kinds
    )
    platforms = tuple(sorted({f.platform for f in facts}, key=platform_sort_key))
    by_platform = tuple(
        rollup(
            platform,
            platform,
            [u.unit.code for u in unit_rows if any(c.platform == platform for c in u.cells)],
            [f for f in facts if f.platform == platform],
            article.published_at,
        )
        for platform in platforms
    )
    total = rollup("all", "Tổng", [u.unit.code for u in unit_rows], facts, article.published_at)
    return Coverage(
        article=article,
        now=now,
        units=tuple(unit_rows),
        platforms=platforms,
        levels=levels,
        by_platform=by_platform,
        total=total,
    )


def coverage_curve(
    lags_s: Sequence[float], targeted: int, horizon_minutes: float
) -> list[tuple[float, float]]:
    """Cumulative % of `targeted` sent against minutes since publication, as steps.

    Returns points (minute, percent) starting at (0, share already sent at publication) and
    ending at `horizon_minutes`, one point before and after each jump so a plain line plot
    draws the staircase.
    """
    if targeted <= 0:
        return [(0.0, 0.0), (horizon_minutes, 0.0)]
    minutes = sorted(max(0.0, lag / 60.0) for lag in lags_s)
    points: list[tuple[float, float]] = []
    done = sum(1 for m in minutes if m <= 0.0)
    points.append((0.0, 100.0 * done / targeted))
    for index, minute in enumerate(minutes):
        if minute <= 0.0 or minute > horizon_minutes:
            continue
        before = 100.0 * index / targeted
        after = 100.0 * (index + 1) / targeted
        points.append((minute, before))
        points.append((minute, after))
    sent_by_horizon = sum(1 for m in minutes if m <= horizon_minutes)
    points.append((horizon_minutes, 100.0 * sent_by_horizon / targeted))
    return points


# --- a unit's publishing record over a period --------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordRow:
    article: ArticleInfo
    cells: tuple[CoverageCell, ...]

    @property
    def targeted(self) -> int:
        return sum(c.accounts for c in self.cells)

    @property
    def sent(self) -> int:
        return sum(c.sent for c in self.cells)

    def to_json(self) -> dict[str, Any]:
        return {
            "article": self.article.id,
            "title": self.article.title,
            "kind": self.article.kind,
            "published_at": self.article.published_at.isoformat(),
            "targeted": self.targeted,
            "sent": self.sent,
            "cells": [c.to_json() for c in self.cells],
        }


@dataclass(frozen=True, slots=True)
class UnitRecord:
    unit: UnitInfo
    since: datetime
    until: datetime
    rows: tuple[RecordRow, ...]
    platforms: tuple[str, ...]

    @property
    def targeted(self) -> int:
        return sum(r.targeted for r in self.rows)

    @property
    def sent(self) -> int:
        return sum(r.sent for r in self.rows)

    @property
    def percent_sent(self) -> float:
        return percent(self.sent, self.targeted)

    @property
    def lags_s(self) -> tuple[float, ...]:
        return tuple(sorted(c.lag_s for r in self.rows for c in r.cells if c.lag_s is not None))

    @property
    def median_lag_s(self) -> float | None:
        return statistics.median(self.lags_s) if self.lags_s else None

    def to_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit.code,
            "name": self.unit.name,
            "level": self.unit.kind,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "articles": len(self.rows),
            "targeted": self.targeted,
            "sent": self.sent,
            "percent_sent": self.percent_sent,
            "median_lag_s": self.median_lag_s,
            "platforms": list(self.platforms),
            "rows": [r.to_json() for r in self.rows],
        }


def compute_unit_record(
    unit: UnitInfo,
    articles: Iterable[ArticleInfo],
    deliveries: Iterable[DeliveryFact],
    since: datetime,
    until: datetime,
    now: datetime,
) -> UnitRecord:
    """Everything routed to `unit` whose article was published in [since, until)."""
    chosen = sorted(
        (a for a in articles if since <= a.published_at < until),
        key=lambda a: (a.published_at, a.id),
    )
    grouped: dict[int, dict[str, list[DeliveryFact]]] = defaultdict(lambda: defaultdict(list))
    for fact in deliveries:
        if fact.unit_code == unit.code:
            grouped[fact.article_id][fact.platform].append(fact)
    rows = []
    for article in chosen:
        platforms = grouped.get(article.id, {})
        rows.append(
            RecordRow(
                article=article,
                cells=tuple(
                    _cell(unit.code, p, platforms[p], article.published_at, now)
                    for p in sorted(platforms, key=platform_sort_key)
                ),
            )
        )
    platform_set = {c.platform for r in rows for c in r.cells}
    return UnitRecord(
        unit=unit,
        since=since,
        until=until,
        rows=tuple(rows),
        platforms=tuple(sorted(platform_set, key=platform_sort_key)),
    )


# --- thin queries -------------------------------------------------------------------------


class ReportError(Exception):
    """A report cannot be made (no such article, no directive yet, unknown unit)."""


def _article_info(row: ArticleRow) -> ArticleInfo:
    assert row.id is not None
    return ArticleInfo(
        id=row.id,
        title=row.title,
        kind=row.kind,
        published_at=row.published_at,
        unit_code=row.unit_code,
    )


FACT_COLUMNS = ("id", "article_id", "unit_code", "account_id", "platform", "state", "sent_at")


def _fact(row: Any) -> DeliveryFact:
    """A delivery, hot or archived (`publisher.store.archive.history_where`)."""
    return DeliveryFact(
        article_id=row["article_id"],
        unit_code=row["unit_code"],
        account_id=row["account_id"],
        platform=row["platform"],
        state=row["state"],
        sent_at=row["sent_at"],
        delivery_id=row["id"],
    )


def _unit_info(row: UnitRow) -> UnitInfo:
    return UnitInfo(code=row.code, name=row.name, kind=row.kind, path=row.path, depth=row.depth)


def _units(session: Session) -> dict[str, UnitInfo]:
    """Every unit as a plain value (3,400 units: columns, not ORM objects)."""
    unit = table_of(UnitRow)
    found = session.connection().execute(
        sa.select(unit.c.code, unit.c.name, unit.c.kind, unit.c.path, unit.c.depth)
    )
    return {
        code: UnitInfo(code, name, kind, path, depth) for code, name, kind, path, depth in found
    }


def newest_directive_id(session: Session) -> int | None:
    query = (
        select(ArticleRow.id)
        .where(ArticleRow.kind == ArticleKind.DIRECTIVE.value)
        .order_by(col(ArticleRow.published_at).desc(), col(ArticleRow.id).desc())
        .limit(1)
    )
    return session.exec(query).first()


def load_coverage(
    engine: sa.Engine,
    now: datetime,
    article_id: int | None = None,
    subtree_of: str | None = None,
) -> Coverage:
    """Read one article's coverage (default: the newest directive), optionally a subtree."""
    with Session(engine) as session:
        if article_id is None:
            article_id = newest_directive_id(session)
            if article_id is None:
                raise ReportError("no directive has been ingested yet: nothing to report")
        article = session.get(ArticleRow, article_id)
        if article is None:
            raise ReportError(f"--article: no article with id {article_id}")
        units = _units(session)
        posts = session.exec(select(PostRow.unit_code).where(PostRow.article_id == article_id))
        targeted = set(posts)
        facts = [
            _fact(r)
            for r in session.connection()
            .execute(history_where(lambda t: t.c.article_id == article_id, *FACT_COLUMNS))
            .mappings()
        ]
    if subtree_of is not None:
        root = units.get(subtree_of)
        if root is None:
            raise ReportError(f"--unit: unknown unit {subtree_of!r}")
        inside = {c for c, u in units.items() if u.path.startswith(root.path)}
        targeted &= inside
        facts = [f for f in facts if f.unit_code in inside]
    return compute_coverage(_article_info(article), units, targeted, facts, now)


def load_unit_record(
    engine: sa.Engine, unit_code: str, since: datetime, until: datetime, now: datetime
) -> UnitRecord:
    """A unit's publishing record: every article routed to it and published in the period."""
    with Session(engine) as session:
        unit_row = session.get(UnitRow, unit_code)
        if unit_row is None:
            raise ReportError(f"--unit: unknown unit {unit_code!r}")
        article_rows = session.exec(
            select(ArticleRow)
            .join(PostRow, col(PostRow.article_id) == col(ArticleRow.id))
            .where(PostRow.unit_code == unit_code)
            .where(col(ArticleRow.published_at) >= since, col(ArticleRow.published_at) < until)
        ).all()
        ids = [r.id for r in article_rows]
        facts = [
            _fact(r)
            for r in session.connection()
            .execute(
                history_where(
                    lambda t: sa.and_(t.c.unit_code == unit_code, t.c.article_id.in_(ids)),
                    *FACT_COLUMNS,
                )
            )
            .mappings()
        ]
    return compute_unit_record(
        _unit_info(unit_row), [_article_info(r) for r in article_rows], facts, since, until, now
    )


# --- recall: what was taken back ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecallInfo:
    id: int
    scope: str
    article_id: int
    article_title: str
    post_id: int | None
    reason: str
    notice: str
    requested_by: str
    requested_at: datetime
    cancelled: int  # deliveries stopped before they went out

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scope": self.scope,
            "article": self.article_id,
            "title": self.article_title,
            "post": self.post_id,
            "reason": self.reason,
            "notice": self.notice,
            "requested_by": self.requested_by,
            "requested_at": self.requested_at.isoformat(),
            "cancelled": self.cancelled,
        }


@dataclass(frozen=True, slots=True)
class WithdrawalFact:
    delivery_id: int
    unit_code: str
    account_id: str
    platform: str
    state: str  # a WithdrawalState value
    url: str | None
    note: str | None
    withdrawn_at: datetime | None
    remote_id: str | None = None  # the post on the platform (a Viber message token …)

    @property
    def target(self) -> str:
        """Where a person finds it to remove by hand (a link, or why there is none)."""
        return manual_removal_target(self.platform, self.remote_id, self.url)

    def to_json(self) -> dict[str, Any]:
        return {
            "delivery": self.delivery_id,
            "unit": self.unit_code,
            "account": self.account_id,
            "platform": self.platform,
            "state": self.state,
            "url": self.url,
            "remote_id": self.remote_id,
            "where": self.target,
            "note": self.note,
            "withdrawn_at": self.withdrawn_at.isoformat() if self.withdrawn_at else None,
        }


@dataclass(frozen=True, slots=True)
class RecallRollup:
    """One platform (or the total). `channels` counts deliveries that went out or may have
    (every withdrawal but `not_sent`): the M of "withdrawn on N of M channels"."""

    label: str
    channels: int
    withdrawn: int
    needs_manual_removal: int
    failed: int
    waiting: int  # pending, claimed or withdrawing: the workers are still on it
    not_sent: int  # never went out: cancelled by the recall or before it
    median_lag_s: float | None
    max_lag_s: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "channels": self.channels,
            "withdrawn": self.withdrawn,
            "needs_manual_removal": self.needs_manual_removal,
            "failed": self.failed,
            "waiting": self.waiting,
            "not_sent": self.not_sent,
            "median_lag_s": self.median_lag_s,
            "max_lag_s": self.max_lag_s,
        }


@dataclass(frozen=True, slots=True)
class RecallReport:
    recall: RecallInfo
    generated_at: datetime
    total: RecallRollup
    by_platform: tuple[RecallRollup, ...]
    withdrawals: tuple[WithdrawalFact, ...]

    @property
    def manual(self) -> tuple[WithdrawalFact, ...]:
        return tuple(w for w in self.withdrawals if w.state == "needs_manual_removal")

    @property
    def failed(self) -> tuple[WithdrawalFact, ...]:
        return tuple(w for w in self.withdrawals if w.state == "failed")

    def lag_s(self, fact: WithdrawalFact) -> float | None:
        if fact.withdrawn_at is None:
            return None
        return (fact.withdrawn_at - self.recall.requested_at).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {
            "recall": self.recall.to_json(),
            "generated_at": self.generated_at.isoformat(),
            "total": self.total.to_json(),
            "by_platform": [r.to_json() for r in self.by_platform],
            "needs_manual_removal": [w.to_json() for w in self.manual],
            "failed": [w.to_json() for w in self.failed],
            "withdrawals": [w.to_json() for w in self.withdrawals],
        }


_WAITING_STATES = frozenset({"pending", "claimed", "withdrawing"})


def _recall_rollup(
    label: str, facts: Sequence[WithdrawalFact], requested_at: datetime
) -> RecallRollup:
    states = [f.state for f in facts]
    lags = [
        (f.withdrawn_at - requested_at).total_seconds()
        for f in facts
        if f.state == "withdrawn" and f.withdrawn_at is not None
    ]
    return RecallRollup(
        label=label,
        channels=sum(1 for s in states if s != "not_sent"),
        withdrawn=states.count("withdrawn"),
        needs_manual_removal=states.count("needs_manual_removal"),
        failed=states.count("failed"),
        waiting=sum(1 for s in states if s in _WAITING_STATES),
        not_sent=states.count("not_sent"),
        median_lag_s=float(statistics.median(lags)) if lags else None,
        max_lag_s=max(lags) if lags else None,
    )


def compute_recall(
    info: RecallInfo, facts: Iterable[WithdrawalFact], now: datetime
) -> RecallReport:
    """Pure: a recall's coverage (withdrawn on N of M channels, by platform, lag
    requested → withdrawn, what needs a person)."""
    ordered = tuple(
        sorted(facts, key=lambda f: (platform_sort_key(f.platform), f.unit_code, f.account_id))
    )
    platforms = sorted({f.platform for f in ordered}, key=platform_sort_key)
    return RecallReport(
        recall=info,
        generated_at=now,
        total=_recall_rollup("total", ordered, info.requested_at),
        by_platform=tuple(
            _recall_rollup(p, [f for f in ordered if f.platform == p], info.requested_at)
            for p in platforms
        ),
        withdrawals=ordered,
    )


def load_recall(engine: sa.Engine, now: datetime, recall_id: int | None = None) -> RecallReport:
    """Read one recall (default: the newest) and its withdrawals."""
    from publisher.store.tables import RecallRow, WithdrawalRow

    with Session(engine) as session:
        if recall_id is None:
            recall_id = session.exec(
                select(RecallRow.id).order_by(col(RecallRow.id).desc()).limit(1)
            ).first()
            if recall_id is None:
                raise ReportError("nothing has been recalled yet: nothing to report")
        row = session.get(RecallRow, recall_id)
        if row is None:
            raise ReportError(f"--recall: no recall with id {recall_id}")
        article = session.get(ArticleRow, row.article_id)
        info = RecallInfo(
            id=recall_id,
            scope=row.scope,
            article_id=row.article_id,
            article_title=article.title if article is not None else "",
            post_id=row.post_id,
            reason=row.reason,
            notice=row.notice,
            requested_by=row.requested_by,
            requested_at=row.requested_at,
            cancelled=row.cancelled,
        )
        facts = [
            WithdrawalFact(
                delivery_id=w.delivery_id,
                unit_code=w.unit_code,
                account_id=w.account_id,
                platform=w.platform,
                state=w.state,
                url=w.remote_url,
                note=w.last_error,
                withdrawn_at=w.withdrawn_at,
                remote_id=w.remote_id,
            )
            for w in session.exec(select(WithdrawalRow).where(WithdrawalRow.recall_id == recall_id))
        ]
    return compute_recall(info, facts, now)


# --- receipt notes ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceiptFact:
    """A sent delivery (hot or archived) and what its channel said beside the send."""

    delivery_id: int
    post_id: int
    unit_code: str
    account_id: str
    platform: str
    sent_at: datetime | None
    title: str
    notes: tuple[ReceiptNote, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id,
            "post_id": self.post_id,
            "unit": self.unit_code,
            "account": self.account_id,
            "platform": self.platform,
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
            "title": self.title,
            "notes": [n.to_json() for n in self.notes],
        }


@dataclass(frozen=True, slots=True)
class ReceiptsReport:
    since: datetime
    until: datetime
    warnings_only: bool
    deliveries: tuple[ReceiptFact, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "warnings_only": self.warnings_only,
            "deliveries": [d.to_json() for d in self.deliveries],
        }


def load_receipts(
    engine: sa.Engine, since: datetime, until: datetime, *, warnings_only: bool = False
) -> ReceiptsReport:
    """Deliveries sent in [since, until) whose channel said something beside the send (a Zalo
    broadcast's message id, its monthly quota used up …), newest first; with `warnings_only`
    the informational notes are left out, and deliveries with nothing else."""
    if since >= until:
        raise ReportError(f"--since {since.isoformat()} is not before {until.isoformat()}")
    history = history_where(
        lambda t: sa.and_(
            t.c.state == DeliveryState.SENT.value,
            t.c.sent_at >= since,
            t.c.sent_at < until,
            t.c.receipt_notes.is_not(None),
        ),
        "id",
        "post_id",
        "article_id",
        "unit_code",
        "account_id",
        "platform",
        "sent_at",
        "receipt_notes",
    ).subquery()
    article = table_of(ArticleRow)
    query = (
        sa.select(history, article.c.title)
        .join(article, article.c.id == history.c.article_id)
        .order_by(history.c.sent_at.desc(), history.c.id)
    )
    facts = []
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            notes = receipt_notes_from_json(row["receipt_notes"], f"delivery {row['id']}")
            if warnings_only:
                notes = tuple(n for n in notes if n.is_warning)
            if not notes:
                continue
            facts.append(
                ReceiptFact(
                    delivery_id=row["id"],
                    post_id=row["post_id"],
                    unit_code=row["unit_code"],
                    account_id=row["account_id"],
                    platform=row["platform"],
                    sent_at=row["sent_at"],
                    title=row["title"],
                    notes=notes,
                )
            )
    return ReceiptsReport(since, until, warnings_only, tuple(facts))
