"""The use cases the CLI, the TUI and the API call. Each checks permissions and writes an
audit event in the same transaction as the change it records.

A refusal (`PermissionDenied`) rolls that transaction back, so it is audited afterwards in a
fresh one (action "refused": what was attempted, at which unit, and why), then re-raised.
Every use case taking a `username` also takes `actor_label`: the actor written to the audit
trail when that differs from the user whose permissions apply ("hotro as duyet.hanoi").
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa

from publisher import audit, redact, routing, schedule, workflow
from publisher.delivery.jobs import NewDelivery
from publisher.domain import (
    Article,
    ArticleKind,
    ChannelAccount,
    DeliveryState,
    Pause,
    PauseScope,
    PostState,
    Recall,
    RecallScope,
    User,
    WithdrawalState,
)
from publisher.plan_import import PlanRow
from publisher.settings import Config
from publisher.settings.workflow import PolicyFile, RoutingFile, ScheduleFile, policy_kind
from publisher.store.archive import DELIVERY_ARCHIVE
from publisher.store.delivery_sql import (
    ARTICLE,
    POST,
    WITHDRAWAL,
    D,
    PlannedPost,
    SqlDeliveryStore,
    SqlPostStore,
    load_directory,
)
from publisher.store.recall_sql import SqlRecallStore
from publisher.store.repository import Repository
from publisher.store.sql import article_from_mapping
from publisher.workflow import Action

WAITING = (DeliveryState.AWAITING_APPROVAL.value,)
NOT_STARTED = (
    DeliveryState.AWAITING_APPROVAL.value,
    DeliveryState.PENDING.value,
    DeliveryState.RETRY_WAIT.value,
)
RETRYABLE = (
    DeliveryState.FAILED.value,
    DeliveryState.NEEDS_REVIEW.value,
    DeliveryState.EXPIRED.value,
)


class ServiceError(Exception):
    """A refused request: one line for a person."""


class PermissionDenied(ServiceError):
    """`username` may not do `attempted` at `unit` (on `target`, e.g. "post:12")."""

    def __init__(
        self,
        message: str,
        *,
        username: str = "",
        attempted: str = "",
        unit: str = "",
        target: str = "",
    ) -> None:
        super().__init__(message)
        self.username = username
        self.attempted = attempted
        self.unit = unit
        self.target = target


class NotFound(ServiceError):
    pass


class PlanRowError(ServiceError):
    """A plan row that cannot be saved; nothing of the plan was saved."""

    def __init__(self, line: int, reason: str, column: str = "") -> None:
        where = f"dòng {line}" + (f", cột {column}" if column else "")
        super().__init__(f"{where}: {reason}")
        self.line = line
        self.column = column
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PlanResult:
    """What saving a plan did: rows applied, posts and deliveries created."""

    rows: int
    posts_created: int
    deliveries_created: int

    def plus(self, other: PlanResult) -> PlanResult:
        return PlanResult(
            self.rows + other.rows,
            self.posts_created + other.posts_created,
            self.deliveries_created + other.deliveries_created,
        )


@dataclass(frozen=True, slots=True)
class QueueItem:
    post_id: int
    article_id: int
    title: str
    unit_code: str
    state: str
    priority: int
    deliveries: dict[str, int]  # delivery state → count


@dataclass(frozen=True, slots=True)
class RecallResult:
    """What a recall did at once; the workers take the sent posts back afterwards."""

    recall_id: int
    scope: RecallScope
    article_id: int
    posts: tuple[int, ...]  # posts now `recalled`
    cancelled: int  # deliveries stopped before they went out
    to_withdraw: int  # deliveries sent (or possibly sent): withdrawals queued

    def to_json(self) -> dict[str, Any]:
        return {
            "recall": self.recall_id,
            "scope": self.scope.value,
            "article": self.article_id,
            "posts": list(self.posts),
            "cancelled": self.cancelled,
            "to_withdraw": self.to_withdraw,
        }


# Posts whose deliveries never went out: kept as they are (rejected / cancelled) by a recall.
CLOSED_POSTS = (PostState.REJECTED.value, PostState.CANCELLED.value)


# Kept under this name for callers that read articles with Core queries.
article_from_row = article_from_mapping


def utc_now() -> datetime:
    return datetime.now(UTC)


log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def audits_refusals(
    method: Callable[Concatenate[DeliveryService, P], R],
) -> Callable[Concatenate[DeliveryService, P], R]:
    """Audit a `PermissionDenied` raised by `method` once its transaction has rolled back."""

    @functools.wraps(method)
    def wrapper(self: DeliveryService, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except PermissionDenied as refusal:
            label = kwargs.get("actor_label")
            self._audit_refusal(refusal, label if isinstance(label, str) else None)
            raise

    return wrapper


class DeliveryService:
    def __init__(
        self,
        engine: sa.Engine,
        directory: Repository,
        routing_rules: RoutingFile | None = None,
        policy: PolicyFile | None = None,
        schedule_rules: ScheduleFile | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = SqlDeliveryStore(engine)
        self.posts = SqlPostStore(self.store)
        self.directory = directory
        self.routing = routing_rules or RoutingFile()
        self.policy = policy or PolicyFile()
        self.schedule = schedule_rules or ScheduleFile()
        self.clock = clock
        self._tree: routing.UnitTree | None = None

    @classmethod
    def from_config(
        cls,
        engine: sa.Engine,
        directory: Repository,
        config: Config,
        clock: Callable[[], datetime] = utc_now,
    ) -> DeliveryService:
        """The use cases with the deployment's routing, approval policy and schedule."""
        return cls(engine, directory, config.routing, config.policy, config.schedule, clock)

    # --- helpers -----------------------------------------------------------------------

    @property
    def tree(self) -> routing.UnitTree:
        if self._tree is None:
            self._tree = routing.UnitTree(self.directory.list_units())
        return self._tree

    def user(self, username: str) -> User:
        user = self.directory.get_user(username)
        if user is None:
            raise NotFound(f'unknown user "{username}"')
        return user

    def _require(
        self,
        user: User,
        action: Action,
        unit_code: str,
        kind: str = "article",
        target: str = "",
    ) -> None:
        ancestors = self.tree.ancestors(unit_code)
        rule = workflow.policy_for(self.policy, kind, unit_code, ancestors)
        if not workflow.may(user, action, unit_code, ancestors, rule):
            raise PermissionDenied(
                f"{user.username} may not {action.value} for unit {unit_code}",
                username=user.username,
                attempted=action.value,
                unit=unit_code,
                target=target or f"unit:{unit_code}",
            )

    def _audit_refusal(self, refusal: PermissionDenied, actor_label: str | None) -> None:
        """Record a refusal in its own transaction (the refused one has rolled back). The
        reason is our own message, redacted anyway; never the request's free text."""
        try:
            with self.store.write() as conn:
                self._audit(
                    conn,
                    actor_label or refusal.username or "unknown",
                    "refused",
                    refusal.target or (f"unit:{refusal.unit}" if refusal.unit else ""),
                    attempted=refusal.attempted,
                    unit=refusal.unit,
                    reason=redact.redact(str(refusal)),
                )
        except sa.exc.SQLAlchemyError:
            # The refusal stands either way; a lost audit event is an operator's problem.
            log.exception("could not audit a refused %s by %s", refusal.attempted, refusal.username)

    def _audit(
        self, conn: sa.Connection, actor: str, action: str, target: str, **details: Any
    ) -> None:
        audit.append(
            conn,
            self.store.is_sqlite,
            at=self.clock(),
            actor=actor,
            action=action,
            target=target,
            details=details,
        )

    def _post_kind(self, conn: sa.Connection, post: Any) -> str:
        kind = conn.execute(
            sa.select(ARTICLE.c.kind).where(ARTICLE.c.id == post.article_id)
        ).scalar_one()
        nominated = (post.decision_reason or "").startswith("nominated")
        return policy_kind(ArticleKind(kind), nominated)

    def _load_posts(self, conn: sa.Connection, post_ids: Sequence[int]) -> list[Any]:
        rows = {row.id: row for row in self.posts.posts(conn, list(post_ids))}
        missing = [str(i) for i in post_ids if i not in rows]
        if missing:
            raise NotFound(f"unknown post(s): {', '.join(missing)}")
        return [rows[i] for i in post_ids]

    # --- routing -----------------------------------------------------------------------

    def load_article(self, article_id: int) -> Article:
        with self.store.read() as conn:
            row = conn.execute(sa.select(ARTICLE).where(ARTICLE.c.id == article_id)).first()
        if row is None:
            raise NotFound(f"unknown article {article_id}")
        return article_from_row(row._mapping)

    def plan(
        self,
        article: Article,
        targets: list[routing.Target],
        now: datetime,
        nominated: bool = False,
    ) -> list[PlannedPost]:
        assert article.id is not None
        kind = policy_kind(article.kind, nominated)
        priority = schedule.priority_for(article.urgent, self.schedule)
        expires = schedule.expiry_for(now, article.kind, self.schedule)
        plans: list[PlannedPost] = []
        for target in targets:
            rule = workflow.policy_for(
                self.policy, kind, target.unit_code, self.tree.ancestors(target.unit_code)
            )
            approved = workflow.progress(rule, ()).approved
            state = DeliveryState.PENDING if approved else DeliveryState.AWAITING_APPROVAL
            planned: list[NewDelivery] = []
            for account in target.accounts:
                # `_value_`, not `.value`: the enum property cost a sixth of a whole-country
                # fan-out (17,000 accounts).
                platform: str = account.platform._value_
                planned.append(
                    NewDelivery(
                        post_id=0,
                        article_id=article.id,
                        unit_code=target.unit_code,
                        account_id=account.id,
                        platform=platform,
                        due_at=schedule.plan_due(
                            now,
                            self.schedule.for_account(account.id, platform),
                            self.schedule,
                            urgent=article.urgent,
                            stagger_key=f"{article.id}:{account.id}",
                        ),
                        state=state,
                        expires_at=expires,
                        priority=priority,
                    )
                )
            deliveries = tuple(planned)
            plans.append(
                PlannedPost(
                    unit_code=target.unit_code,
                    state=PostState.APPROVED if approved else PostState.AWAITING_APPROVAL,
                    priority=priority,
                    expires_at=expires,
                    deliveries=deliveries,
                )
            )
        return plans

    def route_article(self, article_id: int, actor: str = "system") -> tuple[int, int]:
        """Fan an article out to its units and accounts, all in one transaction."""
        article = self.load_article(article_id)
        now = self.clock()
        units, accounts = load_directory(self.store.engine)
        self._tree = routing.UnitTree(units)
        targets = routing.route(article, self._tree, accounts, self.routing)
        return self.posts.fan_out(article_id, self.plan(article, targets, now), now, actor)

    @audits_refusals
    def nominate(
        self, post_id: int, username: str, *, actor_label: str | None = None
    ) -> tuple[int, int]:
        """Push a unit's article up to its parent (or the central portal), awaiting approval
        there: accepting it is approving that post."""
        user = self.user(username)
        with self.store.read() as conn:
            [post] = self._load_posts(conn, [post_id])
        self._require(user, Action.NOMINATE, post.unit_code, target=f"post:{post_id}")
        target = routing.nomination_target(post.unit_code, self.tree, self.routing)
        if target is None:
            raise ServiceError(f"unit {post.unit_code} has nowhere to nominate to")
        article = self.load_article(post.article_id)
        accounts = self.directory.list_accounts([target])
        account_list = routing.accounts_for(
            target, article.language, {target: accounts}, bool(article.video)
        )
        now = self.clock()
        [plan] = self.plan(article, [routing.Target(target, account_list)], now, nominated=True)
        plan = PlannedPost(
            plan.unit_code,
            PostState.AWAITING_APPROVAL,
            plan.priority,
            plan.expires_at,
            tuple(_awaiting(d) for d in plan.deliveries),
        )
        actor = actor_label or username
        result = self.posts.fan_out(post.article_id, [plan], now, actor)
        with self.store.write() as conn:
            conn.execute(
                sa.update(POST)
                .where(POST.c.article_id == post.article_id, POST.c.unit_code == target)
                .values(decision_reason=f"nominated by {post.unit_code}")
            )
            self._audit(conn, actor, "nominate", f"post:{post_id}", to=target)
        return result

    # --- decisions ---------------------------------------------------------------------

    @audits_refusals
    def approve(
        self, post_ids: Sequence[int], username: str, *, actor_label: str | None = None
    ) -> list[int]:
        """Sign the waiting step; a post whose last step is signed goes to the queue.
        Returns the posts now fully approved."""
        user = self.user(username)
        done: list[int] = []
        with self.store.write() as conn:
            for post in self._load_posts(conn, post_ids):
                if post.state != PostState.AWAITING_APPROVAL.value:
                    raise ServiceError(f"post {post.id} is {post.state}, not awaiting approval")
                kind = self._post_kind(conn, post)
                self._require(user, Action.APPROVE, post.unit_code, kind, f"post:{post.id}")
                ancestors = self.tree.ancestors(post.unit_code)
                rule = workflow.policy_for(self.policy, kind, post.unit_code, ancestors)
                approvals = tuple(post.approvals)
                signed = workflow.sign(rule, approvals, user, post.unit_code, ancestors)
                if signed is None:
                    why = workflow.step_refusal(rule, approvals, user, post.unit_code, ancestors)
                    raise PermissionDenied(
                        f"{username} may not approve post {post.id}: {why}",
                        username=username,
                        attempted=Action.APPROVE.value,
                        unit=post.unit_code,
                        target=f"post:{post.id}",
                    )
                approved = workflow.progress(rule, signed).approved
                now = self.clock()
                self.posts.set_post(
                    conn,
                    post.id,
                    approvals=list(signed),
                    state=(PostState.APPROVED if approved else PostState.AWAITING_APPROVAL).value,
                    decided_by=username,
                    updated_at=now,
                )
                if approved:
                    self.posts.move_deliveries(
                        conn, post.id, WAITING, state=DeliveryState.PENDING.value, updated_at=now
                    )
                    done.append(post.id)
                self._audit(
                    conn, actor_label or username, "approve", f"post:{post.id}", complete=approved
                )
        return done

    def pending_for(self, username: str, unit: str | None = None) -> list[int]:
        """Posts waiting that `username` may approve (optionally within one unit's subtree):
        those whose waiting step they may sign."""
        user = self.user(username)
        scope = set(self.tree.subtree(unit)) if unit else None
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(
                    POST.c.id,
                    POST.c.unit_code,
                    POST.c.article_id,
                    POST.c.decision_reason,
                    POST.c.approvals,
                )
                .where(POST.c.state == PostState.AWAITING_APPROVAL.value)
                .order_by(POST.c.id)
            ).all()
            allowed = []
            for row in rows:
                if scope is not None and row.unit_code not in scope:
                    continue
                kind = self._post_kind(conn, row)
                ancestors = self.tree.ancestors(row.unit_code)
                rule = workflow.policy_for(self.policy, kind, row.unit_code, ancestors)
                if not workflow.may(user, Action.APPROVE, row.unit_code, ancestors, rule):
                    continue
                approvals = tuple(row.approvals or ())
                if workflow.sign(rule, approvals, user, row.unit_code, ancestors) is not None:
                    allowed.append(row.id)
        return allowed

    @audits_refusals
    def reject(
        self,
        post_ids: Sequence[int],
        username: str,
        reason: str,
        *,
        actor_label: str | None = None,
    ) -> None:
        if not reason.strip():
            raise ServiceError("a rejection needs a reason")
        user = self.user(username)
        with self.store.write() as conn:
            for post in self._load_posts(conn, post_ids):
                kind = self._post_kind(conn, post)
                self._require(user, Action.REJECT, post.unit_code, kind, f"post:{post.id}")
                now = self.clock()
                self.posts.set_post(
                    conn,
                    post.id,
                    state=PostState.REJECTED.value,
                    decided_by=username,
                    decision_reason=reason,
                    updated_at=now,
                )
                self.posts.move_deliveries(
                    conn, post.id, NOT_STARTED, state=DeliveryState.CANCELLED.value, updated_at=now
                )
                self._audit(
                    conn, actor_label or username, "reject", f"post:{post.id}", reason=reason
                )

    @audits_refusals
    def edit_lead_in(
        self, post_id: int, username: str, lead_in: str, *, actor_label: str | None = None
    ) -> None:
        user = self.user(username)
        with self.store.write() as conn:
            [post] = self._load_posts(conn, [post_id])
            self._require(user, Action.EDIT, post.unit_code, target=f"post:{post.id}")
            now = self.clock()
            self.posts.set_post(conn, post.id, lead_in=lead_in, updated_at=now)
            # Stored payloads were built from the old text: rebuild them at send time.
            self.posts.move_deliveries(conn, post.id, NOT_STARTED, payload=None, updated_at=now)
            self._audit(conn, actor_label or username, "edit", f"post:{post.id}", lead_in=lead_in)

    @audits_refusals
    def reschedule(
        self,
        post_ids: Sequence[int],
        username: str,
        at: datetime,
        *,
        actor_label: str | None = None,
    ) -> None:
        if at.tzinfo is None:
            raise ServiceError("the time needs a UTC offset, e.g. 2026-11-24T08:00+07:00")
        user = self.user(username)
        with self.store.write() as conn:
            for post in self._load_posts(conn, post_ids):
                self._require(user, Action.SCHEDULE, post.unit_code, target=f"post:{post.id}")
                now = self.clock()
                self.posts.set_post(conn, post.id, scheduled_at=at, updated_at=now)
                self.posts.move_deliveries(conn, post.id, NOT_STARTED, due_at=at, updated_at=now)
                self._audit(
                    conn,
                    actor_label or username,
                    "reschedule",
                    f"post:{post.id}",
                    at=at.isoformat(),
                )

    @audits_refusals
    def post_now(self, post_id: int, username: str, *, actor_label: str | None = None) -> None:
        user = self.user(username)
        with self.store.write() as conn:
            [post] = self._load_posts(conn, [post_id])
            self._require(user, Action.POST_NOW, post.unit_code, target=f"post:{post.id}")
            if post.state != PostState.APPROVED.value:
                raise ServiceError(f"post {post.id} is {post.state}: approve it first")
            now = self.clock()
            self.posts.move_deliveries(
                conn, post.id, NOT_STARTED[1:], due_at=now, priority=1000, updated_at=now
            )
            self._audit(conn, actor_label or username, "post_now", f"post:{post.id}")

    @audits_refusals
    def cancel(
        self, post_id: int, username: str, reason: str = "", *, actor_label: str | None = None
    ) -> None:
        user = self.user(username)
        with self.store.write() as conn:
            [post] = self._load_posts(conn, [post_id])
            self._require(user, Action.CANCEL, post.unit_code, target=f"post:{post.id}")
            now = self.clock()
            self.posts.set_post(conn, post.id, state=PostState.CANCELLED.value, updated_at=now)
            self.posts.move_deliveries(
                conn, post.id, NOT_STARTED, state=DeliveryState.CANCELLED.value, updated_at=now
            )
            self._audit(conn, actor_label or username, "cancel", f"post:{post.id}", reason=reason)

    @audits_refusals
    def retry(
        self, delivery_id: int, username: str, reason: str = "", *, actor_label: str | None = None
    ) -> None:
        """A person has checked: send again a failed, expired or needs-review delivery."""
        user = self.user(username)
        with self.store.write() as conn:
            row = conn.execute(sa.select(D).where(D.c.id == delivery_id)).first()
            if row is None:
                raise NotFound(f"unknown delivery {delivery_id}")
            self._require(user, Action.RETRY, row.unit_code, target=f"delivery:{delivery_id}")
            if row.state not in RETRYABLE:
                raise ServiceError(f"delivery {delivery_id} is {row.state}: nothing to retry")
            recalled = conn.execute(
                sa.select(WITHDRAWAL.c.id).where(WITHDRAWAL.c.delivery_id == delivery_id)
            ).first()
            if recalled is not None:
                raise ServiceError(f"delivery {delivery_id} was recalled: it is never sent again")
            now = self.clock()
            conn.execute(
                sa.update(D)
                .where(D.c.id == delivery_id, D.c.state == row.state)
                .values(
                    state=DeliveryState.PENDING.value,
                    due_at=now,
                    expires_at=None,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
            )
            self._audit(
                conn, actor_label or username, "retry", f"delivery:{delivery_id}", reason=reason
            )

    # --- recall ------------------------------------------------------------------------

    @audits_refusals
    def recall(
        self,
        username: str,
        *,
        reason: str,
        post_id: int | None = None,
        article_id: int | None = None,
        notice: str = "",
        actor_label: str | None = None,
    ) -> RecallResult:
        """Take back one post, or one article from every unit it went to (docs/delivery.md).

        In one transaction: deliveries not yet out are cancelled (a worker that has just
        claimed one is fenced out), every delivery gets one withdrawal row (sent ones are
        then taken back by the workers), the posts become `recalled`, and the audit trail
        gets "recall". Who may: an approver or admin whose reach covers every unit recalled
        — for a central directive recalled everywhere, the root.
        """
        if not reason.strip():
            raise ServiceError("a recall needs a reason (--reason)")
        if (post_id is None) == (article_id is None):
            raise ServiceError("recall one post, or one article everywhere (not both)")
        user = self.user(username)
        actor = actor_label or username
        now = self.clock()
        with self.store.write() as conn:
            if post_id is not None:
                [post] = self._load_posts(conn, [post_id])
                if post.state == PostState.RECALLED.value:
                    raise ServiceError(f"post {post_id} is already recalled")
                scope, article, posts = RecallScope.POST, int(post.article_id), [post]
                target = f"post:{post_id}"
            else:
                assert article_id is not None
                found = conn.execute(
                    sa.select(ARTICLE.c.id).where(ARTICLE.c.id == article_id)
                ).first()
                if found is None:
                    raise NotFound(f"unknown article {article_id}")
                posts = list(
                    conn.execute(
                        sa.select(POST)
                        .where(
                            POST.c.article_id == article_id,
                            POST.c.state != PostState.RECALLED.value,
                        )
                        .order_by(POST.c.id)
                    ).all()
                )
                if not posts:
                    raise ServiceError(f"article {article_id} has no post left to recall")
                scope, article, target = RecallScope.ARTICLE, article_id, f"article:{article_id}"
            for post in posts:
                self._require(user, Action.RECALL, post.unit_code, target=target)
            post_ids = [int(p.id) for p in posts]
            request = Recall(scope, article, reason, username, now, post_id, notice)
            created = SqlRecallStore(self.store).recall_in(conn, request, post_ids, now)
            recalled = tuple(p.id for p in posts if p.state not in CLOSED_POSTS)
            if recalled:
                conn.execute(
                    sa.update(POST)
                    .where(POST.c.id.in_(recalled))
                    .values(
                        state=PostState.RECALLED.value,
                        decided_by=username,
                        decision_reason=f"recalled: {reason}"[:500],
                        updated_at=now,
                    )
                )
            self._audit(
                conn,
                actor,
                "recall",
                target,
                recall=created.recall_id,
                reason=reason,
                notice=notice or None,
                posts=len(post_ids),
                cancelled=created.cancelled,
                to_withdraw=created.to_withdraw,
            )
        return RecallResult(
            created.recall_id, scope, article, recalled, created.cancelled, created.to_withdraw
        )

    def withdrawals_of_post(self, post_id: int) -> list[dict[str, Any]]:
        """The withdrawal of each of the post's deliveries (empty when not recalled)."""
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(
                    WITHDRAWAL.c.delivery_id,
                    WITHDRAWAL.c.account_id,
                    WITHDRAWAL.c.platform,
                    WITHDRAWAL.c.state,
                    WITHDRAWAL.c.remote_url,
                    WITHDRAWAL.c.last_error,
                    WITHDRAWAL.c.withdrawn_at,
                )
                .where(WITHDRAWAL.c.post_id == post_id)
                .order_by(WITHDRAWAL.c.platform, WITHDRAWAL.c.account_id)
            ).all()
        return [
            {
                "delivery": r.delivery_id,
                "account": r.account_id,
                "platform": r.platform,
                "state": WithdrawalState(r.state).value,
                "url": r.remote_url,
                "note": r.last_error,
                "withdrawn_at": r.withdrawn_at.isoformat() if r.withdrawn_at else None,
            }
            for r in rows
        ]

    # --- bulk plan ---------------------------------------------------------------------

    @audits_refusals
    def apply_plan(
        self, rows: Sequence[PlanRow], username: str, *, actor_label: str | None = None
    ) -> PlanResult:
        """Save a checked posting plan: every row or none, in one transaction.

        Per row: the user must be allowed to schedule (and, with a lead-in, edit) at the
        unit; the (article, unit) post is created when missing, in the state routing would
        plan for it; the row's channels get deliveries where missing and are due at the row's
        time. Channels the row does not name are left as they are: a plan schedules, it never
        cancels. A refusal or error names the row and undoes every row.
        """
        user = self.user(username)
        actor = actor_label or username
        articles: dict[int, Article] = {}
        for row in rows:
            if row.article_id not in articles:
                try:
                    articles[row.article_id] = self.load_article(row.article_id)
                except NotFound:
                    raise PlanRowError(row.line, f"không có bài mã {row.article_id}") from None
            if row.unit_code not in self.tree.units:
                raise PlanRowError(row.line, f"không có đơn vị mã {row.unit_code!r}")
        by_unit: dict[str, list[ChannelAccount]] = {}
        for account in self.directory.list_accounts(sorted({r.unit_code for r in rows})):
            by_unit.setdefault(account.unit_code, []).append(account)
        result = PlanResult(rows=0, posts_created=0, deliveries_created=0)
        with self.store.write() as conn:
            for row in rows:
                try:
                    step = self._apply_plan_row(conn, row, user, actor, articles, by_unit)
                except PermissionDenied as refusal:
                    raise PermissionDenied(
                        f"dòng {row.line}: {refusal}",
                        username=refusal.username,
                        attempted=refusal.attempted,
                        unit=refusal.unit,
                        target=refusal.target,
                    ) from None
                except PlanRowError:
                    raise
                except ServiceError as error:
                    raise PlanRowError(row.line, str(error)) from None
                except sa.exc.SQLAlchemyError as error:
                    cause = error.orig if isinstance(error, sa.exc.DBAPIError) else error
                    reason = redact.redact(str(cause)).splitlines()[0]
                    raise PlanRowError(row.line, f"lỗi cơ sở dữ liệu: {reason}") from None
                result = result.plus(step)
            self._audit(
                conn,
                actor,
                "plan",
                "plan",
                rows=result.rows,
                posts_created=result.posts_created,
                deliveries_created=result.deliveries_created,
                lines=[r.line for r in rows],
            )
        return result

    def _apply_plan_row(
        self,
        conn: sa.Connection,
        row: PlanRow,
        user: User,
        actor: str,
        articles: dict[int, Article],
        by_unit: dict[str, list[ChannelAccount]],
    ) -> PlanResult:
        article = articles[row.article_id]
        target = f"article:{row.article_id}/unit:{row.unit_code}"
        self._require(user, Action.SCHEDULE, row.unit_code, target=target)
        if row.lead_in:
            self._require(user, Action.EDIT, row.unit_code, target=target)
        usable = routing.accounts_for(row.unit_code, article.language, by_unit, bool(article.video))
        wanted = set(row.platforms)
        if wanted:
            have = {a.platform for a in usable}
            absent = sorted(p.value for p in wanted - have)
            if absent:
                raise PlanRowError(
                    row.line,
                    f"đơn vị {row.unit_code} không có tài khoản kênh dùng được cho "
                    f"{', '.join(absent)}",
                    column="channels",
                )
            accounts = tuple(a for a in usable if a.platform in wanted)
        else:
            accounts = usable
        if not accounts:
            raise PlanRowError(
                row.line,
                f"đơn vị {row.unit_code} không có tài khoản kênh nào nhận được bài này",
                column="channels",
            )
        now = self.clock()
        existing = conn.execute(
            sa.select(POST).where(
                POST.c.article_id == row.article_id, POST.c.unit_code == row.unit_code
            )
        ).first()
        [planned] = self.plan(article, [routing.Target(row.unit_code, accounts)], now)
        posts_created = 0
        if existing is None:
            post_id = int(
                conn.execute(
                    sa.insert(POST)
                    .values(
                        article_id=row.article_id,
                        unit_code=row.unit_code,
                        state=planned.state.value,
                        priority=planned.priority,
                        expires_at=planned.expires_at,
                        approvals=[],
                        lead_in="",
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(POST.c.id)
                ).scalar_one()
            )
            posts_created = 1
            delivery_state = planned.deliveries[0].state
        else:
            post_id = int(existing.id)
            if existing.state == PostState.APPROVED.value:
                delivery_state = DeliveryState.PENDING
            elif existing.state == PostState.AWAITING_APPROVAL.value:
                delivery_state = DeliveryState.AWAITING_APPROVAL
            else:
                raise PlanRowError(
                    row.line, f"bài ở đơn vị {row.unit_code} đang {existing.state}, không lên lịch"
                )
        # A channel whose delivery was archived (finished long ago) went out already.
        archived = set(
            conn.execute(
                sa.select(DELIVERY_ARCHIVE.c.account_id).where(
                    DELIVERY_ARCHIVE.c.post_id == post_id
                )
            ).scalars()
        )
        news = [
            replace(d, post_id=post_id, due_at=row.at, state=delivery_state)
            for d in planned.deliveries
            if d.account_id not in archived
        ]
        created = self.store.insert_deliveries(conn, news, now)
        platforms = sorted({a.platform.value for a in accounts})
        values: dict[str, Any] = {"scheduled_at": row.at, "updated_at": now}
        if row.lead_in:
            values["lead_in"] = row.lead_in
        self.posts.set_post(conn, post_id, **values)
        moved: dict[str, Any] = {"due_at": row.at, "updated_at": now}
        if row.lead_in:
            moved["payload"] = None  # built from the old lead-in: rebuilt at send time
        conn.execute(
            sa.update(D)
            .where(
                D.c.post_id == post_id,
                D.c.state.in_(NOT_STARTED),
                D.c.platform.in_(platforms),
            )
            .values(**moved)
        )
        self._audit(
            conn,
            actor,
            "plan",
            f"post:{post_id}",
            row=row.line,
            article=row.article_id,
            unit=row.unit_code,
            channels=platforms,
            at=row.at.isoformat(),
            lead_in=row.lead_in or None,
            created=bool(posts_created),
            deliveries_created=created,
        )
        return PlanResult(rows=1, posts_created=posts_created, deliveries_created=created)

    # --- pause -------------------------------------------------------------------------

    def _pause_unit(self, scope: PauseScope, target: str) -> str:
        if scope in (PauseScope.UNIT, PauseScope.SUBTREE):
            if target not in self.tree.units:
                raise NotFound(f'unknown unit "{target}"')
            return target
        if scope is PauseScope.ACCOUNT:
            account = self.directory.get_account(target)
            if account is None:
                raise NotFound(f'unknown channel account "{target}"')
            return account.unit_code
        return self.tree.root or ""

    @audits_refusals
    def pause(
        self,
        scope: PauseScope,
        target: str,
        reason: str,
        username: str,
        until: datetime | None = None,
        *,
        actor_label: str | None = None,
    ) -> int:
        if not reason.strip():
            raise ServiceError("a pause needs a reason")
        user = self.user(username)
        unit = self._pause_unit(scope, target)
        self._require(user, Action.PAUSE, unit, target=f"{scope.value}:{target}")
        now = self.clock()
        pause = Pause(scope, target, reason, username, now, until)
        with self.store.write() as conn:
            pause_id = self.posts.add_pause(conn, pause)
            self._audit(
                conn,
                actor_label or username,
                "pause",
                f"{scope.value}:{target}",
                reason=reason,
                until=until.isoformat() if until else None,
            )
        return pause_id

    @audits_refusals
    def resume(
        self,
        scope: PauseScope,
        target: str,
        reason: str,
        username: str,
        *,
        actor_label: str | None = None,
    ) -> int:
        user = self.user(username)
        unit = self._pause_unit(scope, target)
        self._require(user, Action.RESUME, unit, target=f"{scope.value}:{target}")
        with self.store.write() as conn:
            lifted = self.posts.lift_pauses(conn, scope, target, username, reason, self.clock())
            self._audit(
                conn, actor_label or username, "resume", f"{scope.value}:{target}", reason=reason
            )
        return lifted

    # --- queue -------------------------------------------------------------------------

    def queue(
        self,
        username: str,
        *,
        unit: str | None = None,
        state: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[QueueItem]:
        """Posts of the units the user may see, newest first, with their delivery counts."""
        user = self.user(username)
        roots = [unit] if unit else [g.unit_code for g in user.grants]
        visible: set[str] = set()
        for code in roots:
            if code in self.tree.units and workflow.may(
                user, Action.VIEW, code, self.tree.ancestors(code)
            ):
                visible.update(self.tree.subtree(code))
        if not visible:
            return []
        with self.store.read() as conn:
            query = (
                sa.select(
                    POST.c.id,
                    POST.c.article_id,
                    POST.c.unit_code,
                    POST.c.state,
                    POST.c.priority,
                    ARTICLE.c.title,
                )
                .join(ARTICLE, ARTICLE.c.id == POST.c.article_id)
                .where(POST.c.unit_code.in_(sorted(visible)))
                .order_by(POST.c.priority.desc(), POST.c.id.desc())
                .limit(limit)
                .offset(offset)
            )
            if state:
                query = query.where(POST.c.state == state)
            rows = conn.execute(query).all()
            counts: dict[int, dict[str, int]] = {}
            if rows:
                for post_id, d_state, n in conn.execute(
                    sa.select(D.c.post_id, D.c.state, sa.func.count())
                    .where(D.c.post_id.in_([r.id for r in rows]))
                    .group_by(D.c.post_id, D.c.state)
                ):
                    counts.setdefault(post_id, {})[d_state] = int(n)
        return [
            QueueItem(
                r.id, r.article_id, r.title, r.unit_code, r.state, r.priority, counts.get(r.id, {})
            )
            for r in rows
        ]


def _awaiting(d: NewDelivery) -> NewDelivery:
    from dataclasses import replace

    return replace(d, state=DeliveryState.AWAITING_APPROVAL)
