"""Read models for the editors' screens: queries that return frozen values, a page at a time.

Only reads live here (decisions go through `publisher.service`). Every query is scoped to the
units a user may see: a role held at a unit reaches its subtree (materialised path prefix)
unless the grant says otherwise. Pages are LIMIT/OFFSET over indexed columns, and the
per-channel states are fetched only for the rows of the page, so a queue of 100,000
deliveries opens as fast as a queue of ten.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from publisher.domain import (
    VIETNAM_TZ,
    AccountStatus,
    Article,
    ArticleKind,
    ChannelAccount,
    DeliveryState,
    Pause,
    Platform,
    Post,
    PostState,
    ReceiptNote,
    Unit,
    User,
    manual_removal_target,
    receipt_notes_from_json,
)
from publisher.reports import (
    FACT_COLUMNS,
    ArticleInfo,
    Coverage,
    DeliveryFact,
    ReportError,
    UnitInfo,
    compute_coverage,
)
from publisher.store import post_platforms
from publisher.store.archive import DELIVERY_ARCHIVE, history_where
from publisher.store.sql import article_from_mapping, pause_from_mapping, unit_from_mapping
from publisher.store.tables import (
    ArticleRow,
    AuditEventRow,
    ChannelAccountRow,
    DeliveryRow,
    PauseRow,
    PostRow,
    UnitRow,
    WithdrawalRow,
    table_of,
)

ARTICLE = table_of(ArticleRow)
POST = table_of(PostRow)
DELIVERY = table_of(DeliveryRow)
UNIT = table_of(UnitRow)
ACCOUNT = table_of(ChannelAccountRow)
PAUSE = table_of(PauseRow)
AUDIT = table_of(AuditEventRow)
WITHDRAWAL = table_of(WithdrawalRow)

T = TypeVar("T")

# A queue segment with at most this many matching posts is read by sorting its matches;
# a larger one by walking `post.created_at` (Views.queue).
SORT_AT_MOST = 20_000

PROBLEM_STATES = (
    DeliveryState.FAILED.value,
    DeliveryState.UNKNOWN.value,
    DeliveryState.NEEDS_REVIEW.value,
)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    total: int
    offset: int
    limit: int

    @property
    def page_number(self) -> int:
        return self.offset // self.limit + 1 if self.limit else 1

    @property
    def page_count(self) -> int:
        return max(1, -(-self.total // self.limit)) if self.limit else 1

    @property
    def has_next(self) -> bool:
        return self.offset + self.limit < self.total

    @property
    def has_previous(self) -> bool:
        return self.offset > 0


@dataclass(frozen=True, slots=True)
class QueueFilter:
    unit: str | None = None  # a unit code (only that unit)
    channel: str | None = None  # a platform key: posts with a delivery on it
    state: str | None = None  # a post state
    kind: str | None = None  # an article kind
    day: date | None = None  # scheduled on this local (Asia/Ho_Chi_Minh) day
    search: str = ""  # in the title or the unit's name/code


@dataclass(frozen=True, slots=True)
class ChannelState:
    platform: str
    state: str
    delivery_id: int


@dataclass(frozen=True, slots=True)
class QueueItem:
    post_id: int
    unit_code: str
    unit_name: str
    title: str
    kind: str
    state: str
    scheduled_at: datetime | None
    created_at: datetime
    urgent: bool = False
    lead_in: str = ""
    channels: tuple[ChannelState, ...] = ()  # sorted by platform


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: int
    post_id: int
    unit_code: str
    account_id: str
    platform: str
    state: str
    due_at: datetime
    attempt: int = 0
    last_error: str | None = None
    error_kind: str | None = None
    remote_url: str | None = None
    sent_at: datetime | None = None
    title: str = ""
    # What the channel said beside a send that did not fail it (a broadcast's id, its quota)
    receipt_notes: tuple[ReceiptNote, ...] = ()


@dataclass(frozen=True, slots=True)
class WithdrawalView:
    """Taking back one delivery of a recalled post (docs/delivery.md, "Recall")."""

    delivery_id: int
    account_id: str
    platform: str
    state: str  # a WithdrawalState value
    url: str | None = None
    note: str | None = None  # why a person must act, or the last error
    withdrawn_at: datetime | None = None
    remote_id: str | None = None  # the post on the platform (a Viber message token …)

    @property
    def target(self) -> str:
        """Where a person finds it to remove by hand (a link, or why there is none)."""
        return manual_removal_target(self.platform, self.remote_id, self.url)


@dataclass(frozen=True, slots=True)
class PostDetail:
    post: Post
    article: Article
    unit: Unit
    deliveries: tuple[DeliveryView, ...] = ()
    payloads: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # by account id
    withdrawals: tuple[WithdrawalView, ...] = ()  # empty unless the post was recalled


@dataclass(frozen=True, slots=True)
class AccountView:
    account: ChannelAccount
    unit_name: str
    expires_in_days: float | None  # None: no expiry known
    origin: str = "config"  # "config" (accounts.toml) or "connected" (by a unit admin)
    checked_at: datetime | None = None  # the last time the platform was asked
    check_detail: str | None = None  # what it said then (never a secret)
    status_reason: str | None = None

    def expiring(self, within_days: float = 14.0) -> bool:
        return self.expires_in_days is not None and self.expires_in_days <= within_days


@dataclass(frozen=True, slots=True)
class AuditView:
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    details: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DirectiveView:
    article_id: int
    title: str
    published_at: datetime


class Scope:
    """The units one user may see, as a SQL condition on a unit-code column.

    `everything`: a grant at the root reaching its subtree — the whole network, and the
    events that belong to no unit (channel-wide pauses, secret rotation)."""

    def __init__(
        self, subtree_paths: Sequence[str], single_codes: Sequence[str], everything: bool = False
    ) -> None:
        self.subtree_paths = tuple(subtree_paths)
        self.single_codes = tuple(single_codes)
        self.everything = everything

    def unit_codes_query(self) -> sa.Select[tuple[str]]:
        conditions: list[sa.ColumnElement[bool]] = [
            UNIT.c.path.startswith(path, autoescape=True) for path in self.subtree_paths
        ]
        if self.single_codes:
            conditions.append(UNIT.c.code.in_(self.single_codes))
        if not conditions:
            return sa.select(UNIT.c.code).where(sa.false())
        return sa.select(UNIT.c.code).where(sa.or_(*conditions))

    def covers(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        if self.everything:  # every row names a stored unit (foreign keys): no filter needed
            return sa.true()
        return column.in_(self.unit_codes_query())


def _delivery_from(m: Any, title: str = "") -> DeliveryView:
    return DeliveryView(
        id=m["id"],
        post_id=m["post_id"],
        unit_code=m["unit_code"],
        account_id=m["account_id"],
        platform=m["platform"],
        state=m["state"],
        due_at=m["due_at"],
        attempt=m["attempt"],
        last_error=m["last_error"],
        error_kind=m["error_kind"],
        remote_url=m["remote_url"],
        sent_at=m["sent_at"],
        title=title,
        receipt_notes=receipt_notes_from_json(m["receipt_notes"], f"delivery {m['id']}"),
    )


def local_day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC instants where a Vietnamese calendar day starts and ends."""
    start = datetime.combine(day, time(0, 0), tzinfo=VIETNAM_TZ)
    return start, start + timedelta(days=1)


class Views:
    """Read queries over the shared tables (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def _rows(self, query: sa.Executable) -> list[sa.RowMapping]:
        with self.engine.connect() as conn:
            return list(conn.execute(query).mappings())

    def _scalar(self, query: sa.Executable) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    # --- who sees what ---------------------------------------------------------------

    def scope_for(self, user: User) -> Scope:
        codes = {grant.unit_code for grant in user.grants}
        if not codes:
            return Scope((), ())
        found = self._rows(
            sa.select(UNIT.c.code, UNIT.c.path, UNIT.c.parent_code).where(UNIT.c.code.in_(codes))
        )
        paths = {r["code"]: r["path"] for r in found}
        roots = {r["code"] for r in found if r["parent_code"] is None}
        subtree = sorted(
            {paths[g.unit_code] for g in user.grants if g.subtree and g.unit_code in paths}
        )
        singles = sorted({g.unit_code for g in user.grants if not g.subtree})
        everything = any(g.subtree and g.unit_code in roots for g in user.grants)
        return Scope(subtree, singles, everything)

    def units(self, user: User) -> list[Unit]:
        scope = self.scope_for(user)
        query = sa.select(UNIT).where(scope.covers(UNIT.c.code)).order_by(UNIT.c.depth, UNIT.c.code)
        return [unit_from_mapping(r) for r in self._rows(query)]

    # --- the queue -------------------------------------------------------------------

    def _queue_conditions(
        self, scope: Scope, wanted: QueueFilter, per_row: bool = False, counting: bool = False
    ) -> list[sa.ColumnElement[bool]]:
        """The filter as SQL conditions on `post` joined with its article and unit.

        Three forms, the same posts (tests/views/test_queue_segments.py holds each to a plain
        reference). The default — kind, channel and search as `post.<indexed column> IN (a
        small or index-only set)` — lets the matches of a small segment be gathered through
        indexes. `counting` is the default with the channel read from `post.platforms`: every
        condition is then on a column of `ix_post_queue_count`, so a count reads that index
        alone instead of looking each of 440,000 posts up (post_platforms.py). `per_row` —
        the same tests on each joined row — suits a page read by walking `post.created_at`
        until it is full: the planner keeps that walk instead of gathering every match of a
        large set and sorting it (docs/tui.md)."""
        conditions: list[sa.ColumnElement[bool]] = [scope.covers(POST.c.unit_code)]
        if wanted.unit:
            conditions.append(POST.c.unit_code == wanted.unit)
        if wanted.state:
            conditions.append(POST.c.state == wanted.state)
        if wanted.kind:
            conditions.append(
                ARTICLE.c.kind == wanted.kind
                if per_row
                else POST.c.article_id.in_(
                    sa.select(ARTICLE.c.id).where(ARTICLE.c.kind == wanted.kind)
                )
            )
        if wanted.channel:
            # A count or a walk tests post.platforms (kept by triggers: every platform of
            # the post's deliveries, hot or archived); a small segment's matches come from
            # ix_delivery_platform_post and ix_delivery_archive_platform_post (platform,
            # post_id), read from the indexes only.
            platform = wanted.channel
            conditions.append(
                post_platforms.has_platform(POST.c.platforms, platform, self.engine.dialect.name)
                if per_row or counting
                else POST.c.id.in_(history_where(lambda t: t.c.platform == platform, "post_id"))
            )
        if wanted.day:
            # A post moved by a person has its own time; otherwise its channels' due times
            # (the schedule's slots) say when it goes out.
            start, end = local_day_bounds(wanted.day)
            conditions.append(
                sa.or_(
                    sa.and_(POST.c.scheduled_at >= start, POST.c.scheduled_at < end),
                    sa.and_(
                        POST.c.scheduled_at.is_(None),
                        sa.or_(
                            *(
                                sa.exists().where(
                                    t.c.post_id == POST.c.id, t.c.due_at >= start, t.c.due_at < end
                                )
                                for t in (DELIVERY, DELIVERY_ARCHIVE)
                            )
                        ),
                    ),
                )
            )
        text = wanted.search.strip()
        if text:
            like = f"%{text}%"
            if per_row:
                conditions.append(
                    sa.or_(
                        ARTICLE.c.title.ilike(like),
                        POST.c.unit_code.ilike(like),
                        UNIT.c.name.ilike(like),
                    )
                )
            else:
                # The text is looked for in the article titles and the unit codes and names
                # (thousands of rows, each read once), not in 400,000 joined post rows; the
                # posts then come through their article_id and unit_code indexes.
                conditions.append(
                    sa.or_(
                        POST.c.article_id.in_(
                            sa.select(ARTICLE.c.id).where(ARTICLE.c.title.ilike(like))
                        ),
                        POST.c.unit_code.in_(
                            sa.select(UNIT.c.code).where(
                                sa.or_(UNIT.c.code.ilike(like), UNIT.c.name.ilike(like))
                            )
                        ),
                    )
                )
        return conditions

    def queue(
        self, user: User, wanted: QueueFilter = QueueFilter(), offset: int = 0, limit: int = 50
    ) -> Page[QueueItem]:
        """Waiting posts first, then urgent ones, then the newest (see `_queue`)."""
        return self._queue(user, wanted, offset, limit, with_counts=False)[0]

    def queue_and_counts(
        self, user: User, wanted: QueueFilter = QueueFilter(), offset: int = 0, limit: int = 50
    ) -> tuple[Page[QueueItem], dict[str, int]]:
        """`queue(...)` and `queue_counts(user)` — what the queue screen shows.

        With no filter, or a channel or a kind alone or together, the count reads every post
        of the user's units anyway (no index leads with the platforms; the kind is the
        article's, and most posts are of one kind): then one pass gives both — the segment
        sizes count the posts that match, the state counts every post — at ~0.7× the cost
        of two passes over 440,000 posts (docs/tui.md). Any other filter can narrow its
        count through an index (state, unit, a title, a unit name), so there two passes
        stay cheaper."""
        narrowed = wanted.state or wanted.unit or wanted.day or wanted.search.strip()
        if narrowed:
            return self.queue(user, wanted, offset, limit), self.queue_counts(user)
        page, counts = self._queue(user, wanted, offset, limit, with_counts=True)
        if counts is None:  # with_counts=True always counts; this keeps the type exact
            raise AssertionError("the queue was read without its counts")
        return page, counts

    def _queue(
        self, user: User, wanted: QueueFilter, offset: int, limit: int, with_counts: bool
    ) -> tuple[Page[QueueItem], dict[str, int] | None]:
        """Waiting posts first, then urgent ones, then the newest (created_at desc, id).

        The order has four segments — (waiting, urgent), (waiting, not urgent), (not waiting,
        urgent), (not waiting, not urgent) — each sorted by (created_at desc, id). One GROUP BY
        counts the segments; the page is then read from the one or two segments it falls in,
        walking the `post.created_at` index, so the first page of 400,000 posts does not sort
        them all (docs/tui.md). Same rows, same order as one ORDER BY over everything."""
        scope = self.scope_for(user)
        joined = POST.join(ARTICLE, ARTICLE.c.id == POST.c.article_id).join(
            UNIT, UNIT.c.code == POST.c.unit_code
        )
        # A kind in the one pass: every (article, state) is counted and the articles of the
        # kind are told apart below, as the urgent ones are, instead of a join per post.
        of_kind = with_counts and wanted.kind is not None
        counting = self._queue_conditions(
            scope, replace(wanted, kind=None) if of_kind else wanted, counting=True
        )
        conditions = self._queue_conditions(scope, wanted)
        walking = self._queue_conditions(scope, wanted, per_row=True)
        is_waiting = POST.c.state == PostState.AWAITING_APPROVAL.value
        urgent_articles = sa.select(ARTICLE.c.id).where(ARTICLE.c.urgent.is_(True))
        if with_counts:
            # counting[0] is the scope: every post of the user's units is read once, the
            # filter only decides which of them the segment sizes count.
            filters = counting[1:]
            in_scope = counting[:1]
            counted: list[sa.ColumnElement[Any]] = [
                sa.func.count().filter(sa.and_(*filters)) if filters else sa.func.count(),
                sa.func.count(),
            ]
        else:
            in_scope, counted = counting, [sa.func.count()]
        with self.engine.connect() as conn:
            urgent = set(conn.execute(urgent_articles).scalars())
            kind_articles = (
                set(
                    conn.execute(
                        sa.select(ARTICLE.c.id).where(ARTICLE.c.kind == wanted.kind)
                    ).scalars()
                )
                if of_kind
                else None
            )
            per_article = conn.execute(
                sa.select(POST.c.article_id, POST.c.state, *counted)
                .select_from(POST)  # every condition is on post's columns: no join
                .where(*in_scope)
                .group_by(POST.c.article_id, POST.c.state)  # ix_post_queue_count's order
            ).all()
        sizes = {(w, u): 0 for w in (True, False) for u in (True, False)}
        by_state: dict[str, int] = dict.fromkeys((s.value for s in PostState), 0)
        for article_id, state, n, *every in per_article:
            waiting = state == PostState.AWAITING_APPROVAL.value
            if kind_articles is None or article_id in kind_articles:
                sizes[(waiting, article_id in urgent)] += int(n)
            if every and state in by_state:  # as queue_counts: the states the app knows
                by_state[state] += int(every[0])
        total = sum(sizes.values())
        rows: list[sa.RowMapping] = []
        start = offset
        for (waiting, is_urgent), size in sizes.items():  # in the queue's order
            if start >= size:
                start -= size
                continue
            if len(rows) >= limit:
                break
            segment = [
                is_waiting if waiting else sa.not_(is_waiting),
                POST.c.article_id.in_(urgent_articles)
                if is_urgent
                else POST.c.article_id.not_in(urgent_articles),
            ]
            query = (
                sa.select(
                    POST.c.id,
                    POST.c.unit_code,
                    POST.c.state,
                    POST.c.scheduled_at,
                    POST.c.created_at,
                    POST.c.lead_in,
                    UNIT.c.name.label("unit_name"),
                    ARTICLE.c.title,
                    ARTICLE.c.kind,
                    ARTICLE.c.urgent,
                )
                .select_from(joined)
                # Which form of the filter leads the planner to the cheap plan:
                # - one post state (the waiting segments, a state filter): start from the
                #   state index and test each post (a backlog of hundreds, not the 400,000
                #   ids of a channel's set);
                # - a large segment: walk created_at, testing each row, until the page is
                #   full (a filter matching most posts fills it soon);
                # - else a small set (a search, a rare kind or channel): gather its matches
                #   through the indexes and sort them (a walk could pass every post before
                #   finding a few old ones).
                .where(
                    *(walking if waiting or wanted.state or size > SORT_AT_MOST else conditions),
                    *segment,
                )
                .order_by(POST.c.created_at.desc(), POST.c.id)
                .offset(start)
                # no more than the segment holds: a walk stops at its last match
                .limit(min(limit - len(rows), size - start))
            )
            rows.extend(self._rows(query))
            start = 0
        channels = self._channels_of([r["id"] for r in rows])
        items = tuple(
            QueueItem(
                post_id=r["id"],
                unit_code=r["unit_code"],
                unit_name=r["unit_name"],
                title=r["title"],
                kind=r["kind"],
                state=r["state"],
                scheduled_at=r["scheduled_at"],
                created_at=r["created_at"],
                urgent=bool(r["urgent"]),
                lead_in=r["lead_in"],
                channels=tuple(
                    sorted(channels.get(r["id"], []), key=lambda c: (c.platform, c.delivery_id))
                ),
            )
            for r in rows
        )
        return Page(items, total, offset, limit), (by_state if with_counts else None)

    def _channels_of(self, post_ids: Sequence[int]) -> dict[int, list[ChannelState]]:
        if not post_ids:
            return {}
        query = history_where(
            lambda t: t.c.post_id.in_(post_ids), "id", "post_id", "platform", "state"
        )
        found: dict[int, list[ChannelState]] = {}
        for r in self._rows(query):
            found.setdefault(r["post_id"], []).append(
                ChannelState(r["platform"], r["state"], r["id"])
            )
        return found

    def queue_counts(self, user: User) -> dict[str, int]:
        """Posts per state in the user's units (every state present, even when zero)."""
        scope = self.scope_for(user)
        query = (
            sa.select(POST.c.state, sa.func.count())
            .where(scope.covers(POST.c.unit_code))
            .group_by(POST.c.state)
        )
        with self.engine.connect() as conn:
            found = {state: int(n) for state, n in conn.execute(query)}
        return {state.value: found.get(state.value, 0) for state in PostState}

    # --- one post --------------------------------------------------------------------

    def post(self, user: User, post_id: int) -> PostDetail | None:
        scope = self.scope_for(user)
        query = sa.select(POST).where(POST.c.id == post_id, scope.covers(POST.c.unit_code))
        rows = self._rows(query)
        if not rows:
            return None
        p = rows[0]
        post = Post(
            article_id=p["article_id"],
            unit_code=p["unit_code"],
            state=PostState(p["state"]),
            lead_in=p["lead_in"],
            scheduled_at=p["scheduled_at"],
            expires_at=p["expires_at"],
            priority=p["priority"],
            approvals=tuple(p["approvals"] or ()),
            id=p["id"],
        )
        a = self._rows(sa.select(ARTICLE).where(ARTICLE.c.id == post.article_id))[0]
        article = article_from_mapping(a)
        unit = unit_from_mapping(
            self._rows(sa.select(UNIT).where(UNIT.c.code == post.unit_code))[0]
        )
        history = history_where(lambda t: t.c.post_id == post_id).subquery()
        drows = self._rows(sa.select(history).order_by(history.c.platform, history.c.id))
        deliveries = tuple(_delivery_from(d, article.title) for d in drows)
        payloads = {d["account_id"]: d["payload"] for d in drows if d["payload"]}
        wrows = self._rows(
            sa.select(WITHDRAWAL)
            .where(WITHDRAWAL.c.post_id == post_id)
            .order_by(WITHDRAWAL.c.platform, WITHDRAWAL.c.account_id)
        )
        withdrawals = tuple(
            WithdrawalView(
                delivery_id=w["delivery_id"],
                account_id=w["account_id"],
                platform=w["platform"],
                state=w["state"],
                url=w["remote_url"],
                note=w["last_error"],
                withdrawn_at=w["withdrawn_at"],
                remote_id=w["remote_id"],
            )
            for w in wrows
        )
        return PostDetail(post, article, unit, deliveries, payloads, withdrawals)

    # --- calendar ---------------------------------------------------------------------

    def calendar(
        self,
        user: User,
        start: datetime,
        end: datetime,
        unit: str | None = None,
        channel: str | None = None,
        limit: int = 2000,
    ) -> list[DeliveryView]:
        """Deliveries due in [start, end) in the user's units, soonest first (archived ones
        too: a past week still shows what went out)."""
        scope = self.scope_for(user)

        def wanted(table: sa.Table) -> sa.ColumnElement[bool]:
            conditions = [
                scope.covers(table.c.unit_code),
                table.c.due_at >= start,
                table.c.due_at < end,
                table.c.state.notin_([DeliveryState.CANCELLED.value, DeliveryState.EXPIRED.value]),
            ]
            if unit:
                conditions.append(table.c.unit_code == unit)
            if channel:
                conditions.append(table.c.platform == channel)
            return sa.and_(*conditions)

        history = history_where(wanted).subquery()
        query = (
            sa.select(history, ARTICLE.c.title.label("_title"))
            .join(ARTICLE, ARTICLE.c.id == history.c.article_id)
            .order_by(history.c.due_at, history.c.id)
            .limit(limit)
        )
        return [_delivery_from(r, r["_title"]) for r in self._rows(query)]

    # --- units, accounts, pauses --------------------------------------------------------

    def accounts(self, user: User, now: datetime, unit: str | None = None) -> list[AccountView]:
        scope = self.scope_for(user)
        conditions = [scope.covers(ACCOUNT.c.unit_code)]
        if unit:
            conditions.append(ACCOUNT.c.unit_code == unit)
        query = (
            sa.select(ACCOUNT, UNIT.c.name.label("_unit_name"))
            .join(UNIT, UNIT.c.code == ACCOUNT.c.unit_code)
            .where(*conditions)
            .order_by(ACCOUNT.c.unit_code, ACCOUNT.c.platform, ACCOUNT.c.id)
        )
        views = []
        for r in self._rows(query):
            expires = r["token_expires_at"]
            account = ChannelAccount(
                id=r["id"],
                unit_code=r["unit_code"],
                platform=Platform(r["platform"]),
                external_id=r["external_id"],
                display_name=r["display_name"],
                credentials_ref=r["credentials_ref"],
                token_expires_at=expires,
                status=AccountStatus(r["status"]),
                language=r["language"],
            )
            days = None if expires is None else (expires - now).total_seconds() / 86400
            views.append(
                AccountView(
                    account,
                    r["_unit_name"],
                    days,
                    origin=r["origin"],
                    checked_at=r["checked_at"],
                    check_detail=r["check_detail"],
                    status_reason=r["status_reason"],
                )
            )
        return views

    def pauses(self, now: datetime) -> list[Pause]:
        """Pauses in force now (not lifted, not past their end)."""
        query = (
            sa.select(PAUSE)
            .where(
                PAUSE.c.lifted_at.is_(None),
                sa.or_(PAUSE.c.until.is_(None), PAUSE.c.until > now),
            )
            .order_by(PAUSE.c.created_at)
        )
        return [pause_from_mapping(r) for r in self._rows(query)]

    # --- problems ---------------------------------------------------------------------

    def problems(self, user: User, offset: int = 0, limit: int = 50) -> Page[DeliveryView]:
        scope = self.scope_for(user)
        conditions = [scope.covers(DELIVERY.c.unit_code), DELIVERY.c.state.in_(PROBLEM_STATES)]
        total = self._scalar(sa.select(sa.func.count()).select_from(DELIVERY).where(*conditions))
        query = (
            sa.select(DELIVERY, ARTICLE.c.title.label("_title"))
            .join(ARTICLE, ARTICLE.c.id == DELIVERY.c.article_id)
            .where(*conditions)
            .order_by(DELIVERY.c.updated_at.desc(), DELIVERY.c.id)
            .offset(offset)
            .limit(limit)
        )
        items = tuple(_delivery_from(r, r["_title"]) for r in self._rows(query))
        return Page(items, total, offset, limit)

    # --- audit ------------------------------------------------------------------------

    def _audit_targets(self, scope: Scope) -> sa.CompoundSelect[tuple[str]]:
        """Every audit target that belongs to the scope's units, as the text events carry:
        `post:N`, `delivery:N`, `article:N` (an article routed to or owned by one of them),
        pauses `unit:CODE` / `subtree:CODE` / `account:ID`, and bare account ids."""

        def tagged(prefix: str, column: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
            return sa.literal(prefix, sa.String) + sa.cast(column, sa.String)

        return sa.union(
            sa.select(tagged("post:", POST.c.id)).where(scope.covers(POST.c.unit_code)),
            sa.select(tagged("delivery:", DELIVERY.c.id)).where(scope.covers(DELIVERY.c.unit_code)),
            sa.select(tagged("delivery:", DELIVERY_ARCHIVE.c.id)).where(
                scope.covers(DELIVERY_ARCHIVE.c.unit_code)
            ),
            sa.select(tagged("article:", POST.c.article_id)).where(scope.covers(POST.c.unit_code)),
            sa.select(tagged("article:", ARTICLE.c.id)).where(scope.covers(ARTICLE.c.unit_code)),
            sa.select(tagged("unit:", UNIT.c.code)).where(scope.covers(UNIT.c.code)),
            sa.select(tagged("subtree:", UNIT.c.code)).where(scope.covers(UNIT.c.code)),
            sa.select(tagged("account:", ACCOUNT.c.id)).where(scope.covers(ACCOUNT.c.unit_code)),
            sa.select(sa.cast(ACCOUNT.c.id, sa.String)).where(scope.covers(ACCOUNT.c.unit_code)),
        )

    def audit(
        self, user: User, text: str = "", offset: int = 0, limit: int = 50
    ) -> Page[AuditView]:
        """The decision trail, newest first: events about the user's units only; a user with
        the whole network (a grant at the root) sees every event."""
        scope = self.scope_for(user)
        conditions: list[sa.ColumnElement[bool]] = []
        if not scope.everything:
            conditions.append(AUDIT.c.target.in_(self._audit_targets(scope)))
        if text.strip():
            like = f"%{text.strip()}%"
            conditions.append(
                sa.or_(
                    AUDIT.c.actor.ilike(like),
                    AUDIT.c.action.ilike(like),
                    AUDIT.c.target.ilike(like),
                )
            )
        total = self._scalar(sa.select(sa.func.count()).select_from(AUDIT).where(*conditions))
        query = (
            sa.select(AUDIT)
            .where(*conditions)
            .order_by(AUDIT.c.seq.desc())
            .offset(offset)
            .limit(limit)
        )
        items = tuple(
            AuditView(r["seq"], r["at"], r["actor"], r["action"], r["target"], r["details"])
            for r in self._rows(query)
        )
        return Page(items, total, offset, limit)

    # --- directives (for the coverage screen) --------------------------------------------

    def directives(self, limit: int = 50) -> list[DirectiveView]:
        query = (
            sa.select(ARTICLE.c.id, ARTICLE.c.title, ARTICLE.c.published_at)
            .where(ARTICLE.c.kind == ArticleKind.DIRECTIVE.value, ARTICLE.c.routed.is_(True))
            .order_by(ARTICLE.c.published_at.desc())
            .limit(limit)
        )
        return [DirectiveView(r["id"], r["title"], r["published_at"]) for r in self._rows(query)]

    def coverage(self, user: User, article_id: int, now: datetime) -> Coverage:
        """One article's coverage over the user's units only (the whole tree for the root):
        the same matrix and roll-ups as `publisher report coverage`, restricted by scope."""
        scope = self.scope_for(user)
        found = self._rows(sa.select(ARTICLE).where(ARTICLE.c.id == article_id))
        if not found:
            raise ReportError(f"no article with id {article_id}")
        a = found[0]
        article = ArticleInfo(a["id"], a["title"], a["kind"], a["published_at"], a["unit_code"])
        units = {
            r["code"]: UnitInfo(r["code"], r["name"], r["kind"], r["path"], r["depth"])
            for r in self._rows(
                sa.select(UNIT.c.code, UNIT.c.name, UNIT.c.kind, UNIT.c.path, UNIT.c.depth).where(
                    scope.covers(UNIT.c.code)
                )
            )
        }
        targeted = [
            r["unit_code"]
            for r in self._rows(
                sa.select(POST.c.unit_code).where(
                    POST.c.article_id == article_id, scope.covers(POST.c.unit_code)
                )
            )
        ]
        facts = [
            DeliveryFact(
                article_id=r["article_id"],
                unit_code=r["unit_code"],
                account_id=r["account_id"],
                platform=r["platform"],
                state=r["state"],
                sent_at=r["sent_at"],
                delivery_id=r["id"],
            )
            for r in self._rows(
                history_where(
                    lambda t: sa.and_(t.c.article_id == article_id, scope.covers(t.c.unit_code)),
                    *FACT_COLUMNS,
                )
            )
        ]
        return compute_coverage(article, units, targeted, facts, now)

    # --- plan import -------------------------------------------------------------------

    def existing_articles(self, ids: Sequence[int]) -> set[int]:
        """Which of these article ids are stored."""
        found: set[int] = set()
        wanted = sorted(set(ids))
        for start in range(0, len(wanted), 500):  # stay under every driver's parameter limit
            chunk = wanted[start : start + 500]
            query = sa.select(ARTICLE.c.id).where(ARTICLE.c.id.in_(chunk))
            found.update(int(r["id"]) for r in self._rows(query))
        return found

    def posts_for(self, pairs: Sequence[tuple[int, str]]) -> dict[tuple[int, str], PlannedPostView]:
        """The existing posts of (article id, unit code) pairs, with their channels."""
        found: dict[tuple[int, str], PlannedPostView] = {}
        wanted = sorted(set(pairs))
        for start in range(0, len(wanted), 200):
            chunk = wanted[start : start + 200]
            condition = sa.or_(
                *(sa.and_(POST.c.article_id == a, POST.c.unit_code == u) for a, u in chunk)
            )
            query = (
                sa.select(POST.c.id, POST.c.article_id, POST.c.unit_code, DELIVERY.c.platform)
                .select_from(POST.outerjoin(DELIVERY, DELIVERY.c.post_id == POST.c.id))
                .where(condition)
            )
            for r in self._rows(query):
                key = (r["article_id"], r["unit_code"])
                view = found.get(key) or PlannedPostView(r["id"], frozenset())
                if r["platform"]:
                    view = PlannedPostView(view.post_id, view.platforms | {r["platform"]})
                found[key] = view
        return found


@dataclass(frozen=True, slots=True)
class PlannedPostView:
    post_id: int
    platforms: frozenset[str]
