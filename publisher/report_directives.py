"""The directives overview: every directive published in a period, each with how far it got.

`publisher report coverage` looks at one directive unit by unit; this report is the list the
centre and each province read first: one row per directive (newest first) with its units,
channels, what was sent, what needs a person, what is still on the way, what was cancelled
or withdrawn, the share of units reached, and the lag published → sent (median and p95), and
a totals line. Counts are restricted to the units the user may see (`Views.scope_for`, the
TUI's rules: a grant reaches its subtree), optionally narrowed to one unit's subtree.

Two layers, as in `publisher.reports`: `compute_overview` is pure (plain values in, plain
values out); `load_overview` reads those values with a handful of grouped queries — never a
row per delivery except the sent times, fetched as bare numbers — over `delivery` ∪
`delivery_archive`, so a report is the same before and after `publisher archive`.

Definitions (docs/reports.md, "Directives overview"):
- a directive: an article of kind `directive` that is not a source's backlog (backlog items
  are recorded, never published), with `published_at` in [since, until);
- units targeted: units in scope with a post of the directive; reached: with at least one
  delivery sent; coverage % = reached ÷ targeted;
- channels planned: its deliveries in scope (unit × channel account), split by state into
  sent, needs attention, on the way and cancelled — the four always add up to the planned;
- withdrawn N of M: the recall report's "withdrawn on N of M channels";
- lag: `sent_at − published_at` of each sent delivery; median, and p95 by nearest rank
  (the smallest lag with at least 95 % of the lags at or below it).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from publisher.domain import (
    VIETNAM_TZ,
    ArticleKind,
    DeliveryState,
    RecallScope,
    User,
    WithdrawalState,
)
from publisher.reports import ArticleInfo, ReportError, percent
from publisher.store.archive import DELIVERY, DELIVERY_ARCHIVE
from publisher.store.tables import ArticleRow, PostRow, RecallRow, UnitRow, WithdrawalRow, table_of
from publisher.views import Scope, Views

ARTICLE = table_of(ArticleRow)
POST = table_of(PostRow)
UNIT = table_of(UnitRow)
RECALL = table_of(RecallRow)
WITHDRAWAL = table_of(WithdrawalRow)

# Every delivery state falls in exactly one group (a test checks the enum is covered).
SENT = "sent"
ATTENTION = "attention"  # a person must look: failed, expired, outcome unknown, review
IN_PROGRESS = "in_progress"  # still on the way: awaiting approval, queued, retrying, sending
CANCELLED = "cancelled"
STATE_GROUPS: Mapping[str, str] = {
    DeliveryState.SENT.value: SENT,
    DeliveryState.FAILED.value: ATTENTION,
    DeliveryState.EXPIRED.value: ATTENTION,
    DeliveryState.UNKNOWN.value: ATTENTION,
    DeliveryState.NEEDS_REVIEW.value: ATTENTION,
    DeliveryState.AWAITING_APPROVAL.value: IN_PROGRESS,
    DeliveryState.PENDING.value: IN_PROGRESS,
    DeliveryState.CLAIMED.value: IN_PROGRESS,
    DeliveryState.SENDING.value: IN_PROGRESS,
    DeliveryState.RETRY_WAIT.value: IN_PROGRESS,
    DeliveryState.RECONCILING.value: IN_PROGRESS,
    DeliveryState.CANCELLED.value: CANCELLED,
}


def p95(ordered: Sequence[float]) -> float | None:
    """Nearest rank: the smallest value with at least 95 % of the values at or below it."""
    if not ordered:
        return None
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


@dataclass(frozen=True, slots=True)
class Progress:
    """How far one directive (or all of them, for the totals line) got, within scope."""

    units_targeted: int
    units_reached: int
    planned: int
    sent: int
    attention: int
    in_progress: int
    cancelled: int
    withdrawn: int
    withdrawal_channels: int  # the M of "withdrawn on N of M channels"
    median_lag_s: float | None
    p95_lag_s: float | None

    @property
    def percent_units_reached(self) -> float:
        return percent(self.units_reached, self.units_targeted)

    def to_json(self) -> dict[str, Any]:
        return {
            "units_targeted": self.units_targeted,
            "units_reached": self.units_reached,
            "percent_units_reached": self.percent_units_reached,
            "channels_planned": self.planned,
            "sent": self.sent,
            "attention": self.attention,
            "in_progress": self.in_progress,
            "cancelled": self.cancelled,
            "withdrawn": self.withdrawn,
            "withdrawal_channels": self.withdrawal_channels,
            "median_lag_s": self.median_lag_s,
            "p95_lag_s": self.p95_lag_s,
        }


@dataclass(frozen=True, slots=True)
class DirectiveRow:
    article: ArticleInfo
    progress: Progress
    recalled: bool  # a recall of the whole directive, or of a post in scope

    def to_json(self) -> dict[str, Any]:
        return {
            "article": self.article.id,
            "title": self.article.title,
            "published_at": self.article.published_at.astimezone(VIETNAM_TZ).isoformat(),
            "recalled": self.recalled,
            **self.progress.to_json(),
        }


@dataclass(frozen=True, slots=True)
class DirectivesOverview:
    since: datetime
    until: datetime  # exclusive
    generated_at: datetime
    scope: str  # who, and which units, for the heading
    rows: tuple[DirectiveRow, ...]  # newest first
    total: Progress

    def to_json(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "since": self.since.astimezone(VIETNAM_TZ).isoformat(),
            "until": self.until.astimezone(VIETNAM_TZ).isoformat(),
            "scope": self.scope,
            "directives": [r.to_json() for r in self.rows],
            "total": {"directives": len(self.rows), **self.total.to_json()},
        }


# --- pure computation ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DirectiveFacts:
    """What the store says about the directives of a period, each keyed by article id."""

    states: Mapping[int, Mapping[str, int]]  # deliveries by state
    units_targeted: Mapping[int, int]
    units_reached: Mapping[int, int]
    sent_at_s: Mapping[int, Sequence[float]]  # POSIX seconds of each sent delivery's sent_at
    withdrawals: Mapping[int, Mapping[str, int]]  # withdrawals by state
    recalled: frozenset[int]


def _progress(
    states: Mapping[str, int],
    units_targeted: int,
    units_reached: int,
    lags: list[float],
    withdrawals: Mapping[str, int],
) -> Progress:
    groups: dict[str, int] = defaultdict(int)
    for state, count in states.items():
        group = STATE_GROUPS.get(state)
        if group is None:
            raise ReportError(f"delivery state {state!r} is not one the report knows")
        groups[group] += count
    lags.sort()
    return Progress(
        units_targeted=units_targeted,
        units_reached=units_reached,
        planned=sum(states.values()),
        sent=groups[SENT],
        attention=groups[ATTENTION],
        in_progress=groups[IN_PROGRESS],
        cancelled=groups[CANCELLED],
        withdrawn=withdrawals.get(WithdrawalState.WITHDRAWN.value, 0),
        withdrawal_channels=sum(
            n for s, n in withdrawals.items() if s != WithdrawalState.NOT_SENT.value
        ),
        median_lag_s=_milliseconds(statistics.median(lags)) if lags else None,
        p95_lag_s=_milliseconds(p95(lags)),
    )


def _milliseconds(seconds: float | None) -> float | None:
    """Lags to the millisecond: SQLite's julianday arithmetic is exact to ~0.1 ms only."""
    return None if seconds is None else round(seconds, 3)


def compute_overview(
    articles: Sequence[ArticleInfo],
    facts: DirectiveFacts,
    since: datetime,
    until: datetime,
    now: datetime,
    scope: str,
) -> DirectivesOverview:
    """One row per article (newest first) and the totals line over them all."""
    ordered = sorted(articles, key=lambda a: (a.published_at, a.id), reverse=True)
    rows = []
    all_states: dict[str, int] = defaultdict(int)
    all_withdrawals: dict[str, int] = defaultdict(int)
    all_lags: list[float] = []
    for article in ordered:
        published_s = article.published_at.timestamp()
        lags = [s - published_s for s in facts.sent_at_s.get(article.id, ())]
        states = facts.states.get(article.id, {})
        withdrawals = facts.withdrawals.get(article.id, {})
        for state, count in states.items():
            all_states[state] += count
        for state, count in withdrawals.items():
            all_withdrawals[state] += count
        progress = _progress(
            states,
            facts.units_targeted.get(article.id, 0),
            facts.units_reached.get(article.id, 0),
            lags,
            withdrawals,
        )
        rows.append(DirectiveRow(article, progress, article.id in facts.recalled))
        # `_progress` sorted them: the totals' sort then merges one sorted run per directive
        # (timsort finds them) instead of sorting 900,000 lags from scratch.
        all_lags += lags
    total = _progress(
        all_states,
        sum(r.progress.units_targeted for r in rows),
        sum(r.progress.units_reached for r in rows),
        all_lags,
        all_withdrawals,
    )
    return DirectivesOverview(since, until, now, scope, tuple(rows), total)


# --- the query ----------------------------------------------------------------------------


def _epoch_seconds(column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[float]:
    """A UTC time column as POSIX seconds, computed by the database: fetching 200,000 bare
    numbers is several times cheaper than 200,000 datetimes through the column type."""
    if dialect == "sqlite":  # stored as naive UTC text; 2440587.5 is 1970-01-01 as a Julian day
        return (sa.func.julianday(column) - 2440587.5) * 86400.0
    if dialect == "postgresql":
        # date_part is float8 arithmetic: EXTRACT gives numeric since PostgreSQL 14, ~3× the
        # cost over 900,000 rows; both are the exact microseconds ÷ 10⁶ correctly rounded
        # (the microseconds fit a double exactly), so the same floats.
        return sa.func.date_part("epoch", column, type_=sa.Float)
    raise ReportError(f"the directives report does not know the {dialect} database")


def _gathered(value: sa.ColumnElement[float], dialect: str) -> sa.FunctionElement[Any]:
    """An aggregate of every `value` of a group as one column (see `_numbers`)."""
    if dialect == "sqlite":
        return sa.func.group_concat(value)  # "1763.5,1802.25,…"
    if dialect == "postgresql":
        return sa.func.array_agg(value)  # a list of floats through psycopg
    raise ReportError(f"the directives report does not know the {dialect} database")


def _numbers(gathered: str | list[float] | None) -> list[float]:
    if gathered is None:  # no value passed the filter
        return []
    if isinstance(gathered, str):
        return list(map(float, gathered.split(",")))
    return list(gathered)


def scope_label(user: User, scope: Scope, unit: str | None) -> str:
    """Who reads the report and over which units, for its heading."""
    if scope.everything:
        units = "toàn mạng · whole network"
    else:
        # "01 +": unit 01 and its subtree; a unit may carry several roles: named once.
        units = ", ".join(
            sorted({f"{g.unit_code}{' +' if g.subtree else ''}" for g in user.grants})
        )
    label = f"{user.username}: {units}"
    return f"{label}; --unit {unit}" if unit is not None else label


def _unit_condition(
    conn: sa.Connection, scope: Scope, who: str, unit: str | None
) -> Callable[[sa.ColumnElement[Any]], sa.ColumnElement[bool]]:
    """A condition on a unit-code column: what `who` may see, within `unit`'s subtree."""
    if not scope.everything and not scope.subtree_paths and not scope.single_codes:
        raise ReportError(f"{who} holds no role at any unit: there is nothing to report")
    if unit is None:
        return scope.covers
    found = conn.execute(
        sa.select(UNIT.c.path, scope.covers(UNIT.c.code)).where(UNIT.c.code == unit)
    ).first()
    if found is None:
        raise ReportError(f"--unit: unknown unit {unit!r}")
    path, visible = found
    if not visible:
        raise ReportError(f"--unit {unit}: outside the units {who} may see")
    subtree = sa.select(UNIT.c.code).where(UNIT.c.path.startswith(path, autoescape=True))

    def inside(column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        return sa.and_(scope.covers(column), column.in_(subtree))

    return inside


def load_overview(
    engine: sa.Engine,
    since: datetime,
    until: datetime,
    now: datetime,
    user: User,
    unit: str | None = None,
) -> DirectivesOverview:
    """Every directive published in [since, until), counted over the units `user` may see
    (within `unit`'s subtree when given)."""
    scope = Views(engine).scope_for(user)
    with engine.connect() as conn:
        covers = _unit_condition(conn, scope, user.username, unit)
        articles = [
            ArticleInfo(r.id, r.title, r.kind, r.published_at, r.unit_code)
            for r in conn.execute(
                sa.select(
                    ARTICLE.c.id,
                    ARTICLE.c.title,
                    ARTICLE.c.kind,
                    ARTICLE.c.published_at,
                    ARTICLE.c.unit_code,
                ).where(
                    ARTICLE.c.kind == ArticleKind.DIRECTIVE.value,
                    ARTICLE.c.backlog.is_(False),
                    ARTICLE.c.published_at >= since,
                    ARTICLE.c.published_at < until,
                )
            )
        ]
        ids = [a.id for a in articles]
        facts = (
            _facts(conn, ids, covers) if ids else DirectiveFacts({}, {}, {}, {}, {}, frozenset())
        )
    label = scope_label(user, scope, unit)
    return compute_overview(articles, facts, since, until, now, label)


def _facts(
    conn: sa.Connection,
    ids: list[int],
    covers: Callable[[sa.ColumnElement[Any]], sa.ColumnElement[bool]],
) -> DirectiveFacts:
    def chosen(table: sa.Table) -> sa.ColumnElement[bool]:
        return sa.and_(table.c.article_id.in_(ids), covers(table.c.unit_code))

    # Each table grouped on its own (ix_delivery_report, ix_delivery_archive_report: article,
    # state, unit, sent_at): the scan reads the index alone and the groups come in its order,
    # so nothing is sorted — grouping their UNION ALL sorted every row of the period first
    # (docs/reports.md). Deliveries by state add up across the two; the sent times are
    # gathered by the database into one value per group (a row per sent delivery took twice
    # as long at national scale).
    dialect = conn.dialect.name
    sent = DeliveryState.SENT.value
    states: dict[int, dict[str, int]] = defaultdict(dict)
    sent_at_s: dict[int, list[float]] = {}
    units_by_table: dict[str, dict[int, int]] = {}
    sent_rows: dict[str, int] = {}
    for table in (DELIVERY, DELIVERY_ARCHIVE):
        units_by_table[table.name] = units = {}
        sent_rows[table.name] = 0
        for article_id, state, deliveries, distinct_units, times in conn.execute(
            sa.select(
                table.c.article_id,
                table.c.state,
                sa.func.count(),
                sa.func.count(sa.distinct(table.c.unit_code)),
                _gathered(_epoch_seconds(table.c.sent_at, dialect), dialect).filter(
                    table.c.state == sent, table.c.sent_at.is_not(None)
                ),
            )
            .where(chosen(table))
            .group_by(table.c.article_id, table.c.state)
        ):
            found = states[article_id]
            found[state] = found.get(state, 0) + deliveries
            if state == sent:
                units[article_id] = distinct_units
                sent_rows[table.name] += deliveries
                sent_at_s.setdefault(article_id, []).extend(_numbers(times))
    reached = _units_reached(conn, chosen, units_by_table, sent_rows)
    targeted: dict[int, int] = {
        article_id: units
        for article_id, units in conn.execute(
            sa.select(POST.c.article_id, sa.func.count())
            .where(POST.c.article_id.in_(ids), covers(POST.c.unit_code))
            .group_by(POST.c.article_id)
        )
    }

    withdrawals: dict[int, dict[str, int]] = defaultdict(dict)
    for article_id, state, count in conn.execute(
        sa.select(RECALL.c.article_id, WITHDRAWAL.c.state, sa.func.count())
        .join(RECALL, RECALL.c.id == WITHDRAWAL.c.recall_id)
        .where(RECALL.c.article_id.in_(ids), covers(WITHDRAWAL.c.unit_code))
        .group_by(RECALL.c.article_id, WITHDRAWAL.c.state)
    ):
        withdrawals[article_id][state] = count
    recalled = frozenset(
        conn.execute(
            sa.select(RECALL.c.article_id)
            .distinct()
            .outerjoin(POST, POST.c.id == RECALL.c.post_id)
            .where(
                RECALL.c.article_id.in_(ids),
                sa.or_(RECALL.c.scope == RecallScope.ARTICLE.value, covers(POST.c.unit_code)),
            )
        ).scalars()
    )
    return DirectiveFacts(states, targeted, reached, sent_at_s, withdrawals, recalled)


def _units_reached(
    conn: sa.Connection,
    chosen: Callable[[sa.Table], sa.ColumnElement[bool]],
    units_by_table: Mapping[str, Mapping[int, int]],
    sent_rows: Mapping[str, int],
) -> dict[int, int]:
    """Units with a sent delivery in either table, per directive: a unit's deliveries may be
    split between the hot table and the archive, so the distinct counts of the two do not
    add up. Those of the table with more sent rows, plus the units of the other one that
    it lacks — found by probing its index once per (directive, unit) of the smaller side:
    before archiving the archive holds none of them, after it the hot table a few."""
    big, small = sorted((DELIVERY, DELIVERY_ARCHIVE), key=lambda t: -sent_rows[t.name])
    reached = dict(units_by_table[big.name])
    if not sent_rows[small.name]:
        return reached
    sent = DeliveryState.SENT.value
    pairs = (
        sa.select(small.c.article_id, small.c.unit_code)
        .where(
            chosen(small),
            small.c.state == sent,
            ~sa.exists().where(
                big.c.article_id == small.c.article_id,
                big.c.state == sent,
                big.c.unit_code == small.c.unit_code,
            ),
        )
        .group_by(small.c.article_id, small.c.unit_code)
        .subquery()
    )
    for article_id, units in conn.execute(
        sa.select(pairs.c.article_id, sa.func.count()).group_by(pairs.c.article_id)
    ):
        reached[article_id] = reached.get(article_id, 0) + units
    return reached
