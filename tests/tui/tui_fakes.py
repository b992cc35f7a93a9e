"""An in-memory stand-in for the core, with the same rules the screens rely on.

Permissions: approvers approve, reject and reschedule; editors edit lead-ins; both act only
inside the units their grants reach. Anything else raises ActionRefused with a reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from channels.base import Problem, Severity
from publisher.accounts import CheckOutcome, ConnectRequest, RemoveOutcome
from publisher.domain import (
    AccountStatus,
    Article,
    ArticleKind,
    ChannelAccount,
    Pause,
    PauseScope,
    Platform,
    Post,
    PostState,
    Role,
    RoleGrant,
    Unit,
    User,
)
from publisher.plan_import import PlanRow
from publisher.reports import ArticleInfo, Coverage, DeliveryFact, UnitInfo, compute_coverage
from publisher.views import (
    AccountView,
    AuditView,
    ChannelState,
    DeliveryView,
    DirectiveView,
    Page,
    PostDetail,
    QueueFilter,
    QueueItem,
    WithdrawalView,
    local_day_bounds,
)
from tui.app import PublisherApp, TuiSettings, make_app
from tui.ports import ActionRefused, ChannelPreview

NOW = datetime(2026, 11, 14, 2, 0, tzinfo=UTC)  # 09:00 in Hà Nội

UNITS = [
    Unit("CP", "Cổng Thông tin điện tử Chính phủ", "central", short_name="Cổng TTĐT Chính phủ"),
    Unit("01", "Thành phố Hà Nội", "province", "CP"),
    Unit("01001", "Phường Hoàn Kiếm", "commune", "01"),
    Unit("79", "Thành phố Hồ Chí Minh", "province", "CP"),
]
ADMIN = User("admin", "Quản trị", (RoleGrant("CP", Role.ADMIN),))
APPROVER_HN = User(
    "duyet.hanoi",
    "Lãnh đạo duyệt tin Hà Nội",
    (RoleGrant("01", Role.APPROVER), RoleGrant("01", Role.EDITOR)),
)
ADMIN_HN = User("quantri.hanoi", "Quản trị Hà Nội", (RoleGrant("01", Role.ADMIN),))
EDITOR_HN = User("bientap.hanoi", "Biên tập viên Hà Nội", (RoleGrant("01", Role.EDITOR),))

TITLES = [
    "Thủ tướng chỉ đạo ứng phó bão số 13",
    "Hà Nội khai mạc Lễ hội Văn hóa ẩm thực",
    "Chính phủ ban hành Nghị định về chuyển đổi số",
    "Phường Hoàn Kiếm ra quân vệ sinh môi trường",
    "Thông báo lịch tiếp công dân tháng 11",
]


@dataclass
class FakeBackend:
    now: datetime = NOW
    articles: dict[int, Article] = field(default_factory=dict)
    posts: dict[int, Post] = field(default_factory=dict)
    deliveries: dict[int, DeliveryView] = field(default_factory=dict)
    accounts_list: list[ChannelAccount] = field(default_factory=list)
    pause_list: list[Pause] = field(default_factory=list)
    events: list[AuditView] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)
    calls: list[tuple[str, object]] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)  # account id → token
    checked: dict[str, datetime] = field(default_factory=dict)  # account id → last check
    origins: dict[str, str] = field(default_factory=dict)  # account id → "connected"
    withdrawals: dict[int, tuple[WithdrawalView, ...]] = field(default_factory=dict)  # by post

    # --- seeding ---------------------------------------------------------------------

    @classmethod
    def sample(cls, posts: int = 6) -> FakeBackend:
        fake = cls()
        for code, platforms in (
            ("CP", "facebook zalo telegram"),
            ("01", "facebook zalo"),
            ("01001", "facebook"),
            ("79", "facebook"),
        ):
            for platform in platforms.split():
                fake.accounts_list.append(
                    ChannelAccount(
                        id=f"{code}.{platform}",
                        unit_code=code,
                        platform=Platform(platform),
                        external_id="100",
                        display_name=f"Trang {code}",
                        token_expires_at=NOW + timedelta(days=5 if code == "01001" else 200),
                        status=AccountStatus.AUTH_FAILED if code == "79" else AccountStatus.ACTIVE,
                    )
                )
        for n in range(1, posts + 1):
            unit = ["01", "01001", "01", "79", "CP"][n % 5]
            kind = ArticleKind.DIRECTIVE if n % 3 == 1 else ArticleKind.ARTICLE
            fake.add_post(n, unit, TITLES[n % len(TITLES)], kind)
        # one failure for the problems screen
        failed = next(d for d in fake.deliveries.values() if d.unit_code == "01")
        fake.deliveries[failed.id] = replace(
            failed, state="failed", error_kind="auth", last_error="OAuthException code 190"
        )
        fake.posts[failed.post_id] = replace(fake.posts[failed.post_id], state=PostState.APPROVED)
        fake.pause_list.append(
            Pause(
                PauseScope.UNIT,
                "79",
                "Bảo trì trang",
                "admin",
                NOW - timedelta(hours=1),
                NOW + timedelta(hours=5),
                id=1,
            )
        )
        fake.record("admin", "pause", "unit:79", {"reason": "Bảo trì trang"})
        hanoi = min(p.id or 0 for p in fake.posts.values() if p.unit_code == "01")
        fake.record("bientap.hanoi", "edit", f"post:{hanoi}", {"lead_in": "Tin Hà Nội:"})
        return fake

    def add_post(self, n: int, unit: str, title: str, kind: ArticleKind) -> None:
        published = NOW - timedelta(minutes=30 * n)
        self.articles[n] = Article(
            guid=f"g{n}",
            url=f"https://baochinhphu.vn/bai-{n}.htm",
            title=title,
            published_at=published,
            summary="Tóm tắt: " + title,
            body_text="Nội dung chi tiết của bài viết. " * 5,
            source="baochinhphu.vn",
            kind=kind,
            unit_code="CP",
            id=n,
        )
        self.posts[n] = Post(
            article_id=n,
            unit_code=unit,
            state=PostState.AWAITING_APPROVAL,
            scheduled_at=NOW + timedelta(hours=n),
            id=n,
        )
        for account in self.accounts_list:
            if account.unit_code == unit:
                delivery_id = len(self.deliveries) + 1
                self.deliveries[delivery_id] = DeliveryView(
                    id=delivery_id,
                    post_id=n,
                    unit_code=unit,
                    account_id=account.id,
                    platform=account.platform.value,
                    state="awaiting_approval",
                    due_at=NOW + timedelta(hours=n),
                    title=title,
                )

    def record(self, actor: str, action: str, target: str, details: dict[str, object]) -> None:
        seq = len(self.events) + 1
        self.events.append(
            AuditView(seq, self.now + timedelta(minutes=seq), actor, action, target, details)
        )

    # --- scope -----------------------------------------------------------------------

    def _subtree(self, code: str) -> set[str]:
        found = {code}
        grew = True
        while grew:
            more = {u.code for u in UNITS if u.parent_code in found} - found
            grew = bool(more)
            found |= more
        return found

    def _visible(self, user: User) -> set[str]:
        codes: set[str] = set()
        for grant in user.grants:
            codes |= self._subtree(grant.unit_code) if grant.subtree else {grant.unit_code}
        return codes

    def _may(self, user: User, unit: str, roles: tuple[Role, ...]) -> None:
        for grant in user.grants:
            reach = self._subtree(grant.unit_code) if grant.subtree else {grant.unit_code}
            if unit in reach and (grant.role in roles or grant.role is Role.ADMIN):
                return
        names = "/".join(r.value for r in roles)
        raise ActionRefused(f"{user.username} không có quyền {names} tại đơn vị {unit}")

    def _post(self, user: User, post_id: int, roles: tuple[Role, ...]) -> Post:
        post = self.posts.get(post_id)
        if post is None:
            raise ActionRefused(f"không có bài {post_id}")
        self._may(user, post.unit_code, roles)
        return post

    # --- reads -----------------------------------------------------------------------

    def units(self, user: User) -> list[Unit]:
        visible = self._visible(user)
        return [u for u in UNITS if u.code in visible]

    def queue(self, user: User, wanted: QueueFilter, offset: int, limit: int) -> Page[QueueItem]:
        visible = self._visible(user)
        names = {u.code: u.name for u in UNITS}
        items = []
        for post in sorted(self.posts.values(), key=lambda p: p.id or 0):
            article = self.articles[post.article_id]
            channels = tuple(
                ChannelState(d.platform, d.state, d.id)
                for d in self.deliveries.values()
                if d.post_id == post.id
            )
            if post.unit_code not in visible:
                continue
            if wanted.unit and post.unit_code != wanted.unit:
                continue
            if wanted.state and post.state.value != wanted.state:
                continue
            if wanted.kind and article.kind.value != wanted.kind:
                continue
            if wanted.channel and not any(c.platform == wanted.channel for c in channels):
                continue
            if wanted.day:
                start, end = local_day_bounds(wanted.day)
                if not (post.scheduled_at and start <= post.scheduled_at < end):
                    continue
            if wanted.search and wanted.search.lower() not in article.title.lower():
                continue
            items.append(
                QueueItem(
                    post_id=post.id or 0,
                    unit_code=post.unit_code,
                    unit_name=names[post.unit_code],
                    title=article.title,
                    kind=article.kind.value,
                    state=post.state.value,
                    scheduled_at=post.scheduled_at,
                    created_at=article.published_at,
                    lead_in=post.lead_in,
                    channels=channels,
                )
            )
        items.sort(key=lambda i: i.state != "awaiting_approval")
        return Page(tuple(items[offset : offset + limit]), len(items), offset, limit)

    def queue_counts(self, user: User) -> dict[str, int]:
        visible = self._visible(user)
        counts = {s.value: 0 for s in PostState}
        for post in self.posts.values():
            if post.unit_code in visible:
                counts[post.state.value] += 1
        return counts

    def queue_and_counts(
        self, user: User, wanted: QueueFilter, offset: int, limit: int
    ) -> tuple[Page[QueueItem], dict[str, int]]:
        return self.queue(user, wanted, offset, limit), self.queue_counts(user)

    def post(self, user: User, post_id: int) -> PostDetail | None:
        post = self.posts.get(post_id)
        if post is None or post.unit_code not in self._visible(user):
            return None
        unit = next(u for u in UNITS if u.code == post.unit_code)
        deliveries = tuple(d for d in self.deliveries.values() if d.post_id == post_id)
        return PostDetail(
            post,
            self.articles[post.article_id],
            unit,
            deliveries,
            withdrawals=self.withdrawals.get(post_id, ()),
        )

    def previews(self, detail: PostDetail) -> list[ChannelPreview]:
        out = []
        for d in detail.deliveries:
            text = "\n\n".join(
                p for p in (detail.post.lead_in, detail.article.title, detail.article.summary) if p
            )
            limit = {"x": 280, "zalo": 2000}.get(d.platform, 63206)
            problems: tuple[Problem, ...] = ()
            if d.platform == "zalo":
                problems = (Problem(Severity.WARNING, "no_cover", "Thiếu ảnh bìa cho bài Zalo"),)
            out.append(
                ChannelPreview(
                    d.account_id,
                    d.platform,
                    text,
                    detail.article.url,
                    detail.article.images[0] if detail.article.images else None,
                    ("#ChinhPhu",),
                    len(text),
                    limit,
                    problems,
                    # Telegram sends 2–10 images as one album; the others the first image only
                    images=tuple(detail.article.images[: 10 if d.platform == "telegram" else 1]),
                )
            )
        return out

    def calendar(
        self, user: User, start: datetime, end: datetime, unit: str | None, channel: str | None
    ) -> list[DeliveryView]:
        visible = self._visible(user)
        return sorted(
            (
                d
                for d in self.deliveries.values()
                if d.unit_code in visible
                and start <= d.due_at < end
                and (unit is None or d.unit_code == unit)
                and (channel is None or d.platform == channel)
            ),
            key=lambda d: (d.due_at, d.id),
        )

    def accounts(self, user: User, now: datetime) -> list[AccountView]:
        visible = self._visible(user)
        names = {u.code: u.name for u in UNITS}
        return [
            AccountView(
                a,
                names[a.unit_code],
                (a.token_expires_at - now).total_seconds() / 86400 if a.token_expires_at else None,
                origin=self.origins.get(a.id, "config"),
                checked_at=self.checked.get(a.id),
                check_detail="token ok" if a.id in self.checked else None,
            )
            for a in self.accounts_list
            if a.unit_code in visible
        ]

    def pauses(self, now: datetime) -> list[Pause]:
        return [p for p in self.pause_list if p.active_at(now)]

    def problems(self, user: User, offset: int, limit: int) -> Page[DeliveryView]:
        visible = self._visible(user)
        found = [
            d
            for d in self.deliveries.values()
            if d.unit_code in visible and d.state in ("failed", "unknown", "needs_review")
        ]
        return Page(tuple(found[offset : offset + limit]), len(found), offset, limit)

    def _target_unit(self, target: str) -> str | None:
        """The unit an audit target belongs to (None: no unit, e.g. a channel-wide pause)."""
        kind, _, key = target.partition(":")
        if kind == "post" and key.isdigit() and int(key) in self.posts:
            return self.posts[int(key)].unit_code
        if kind == "delivery" and key.isdigit() and int(key) in self.deliveries:
            return self.deliveries[int(key)].unit_code
        if kind in ("unit", "subtree"):
            return key
        account = next((a for a in self.accounts_list if a.id in (key, target)), None)
        return account.unit_code if account else None

    def audit(self, user: User, text: str, offset: int, limit: int) -> Page[AuditView]:
        everything = any(g.subtree and g.unit_code == "CP" for g in user.grants)
        visible = self._visible(user)
        found = [
            e
            for e in reversed(self.events)
            if (everything or self._target_unit(e.target) in visible)
            and (not text or text.lower() in f"{e.actor} {e.action} {e.target}".lower())
        ]
        return Page(tuple(found[offset : offset + limit]), len(found), offset, limit)

    def directives(self) -> list[DirectiveView]:
        return [
            DirectiveView(a.id or 0, a.title, a.published_at)
            for a in self.articles.values()
            if a.kind is ArticleKind.DIRECTIVE
        ]

    def existing_articles(self, ids: Sequence[int]) -> set[int]:
        return {i for i in ids if i in self.articles}

    def coverage(self, user: User, article_id: int, now: datetime) -> Coverage:
        article = self.articles[article_id]
        info = ArticleInfo(article_id, article.title, article.kind.value, article.published_at)
        visible = self._visible(user)
        units = {u.code: UnitInfo(u.code, u.name, u.kind, f"/{u.code}/") for u in UNITS}
        facts = [
            DeliveryFact(
                article_id, d.unit_code, d.account_id, d.platform, d.state, d.sent_at, d.id
            )
            for d in self.deliveries.values()
            if self.posts[d.post_id].article_id == article_id and d.unit_code in visible
        ]
        targeted = {
            p.unit_code
            for p in self.posts.values()
            if p.article_id == article_id and p.unit_code in visible
        }
        return compute_coverage(info, units, targeted, facts, now)

    # --- decisions -------------------------------------------------------------------

    def approve(self, user: User, post_ids: Sequence[int]) -> int:
        for post_id in post_ids:
            post = self._post(user, post_id, (Role.APPROVER,))
            if post.state is not PostState.AWAITING_APPROVAL:
                raise ActionRefused(f"bài {post_id} không ở trạng thái chờ duyệt")
        for post_id in post_ids:
            self.posts[post_id] = replace(self.posts[post_id], state=PostState.APPROVED)
            for d in list(self.deliveries.values()):
                if d.post_id == post_id:
                    self.deliveries[d.id] = replace(d, state="pending")
            self.record(user.username, "approve", f"post:{post_id}", {})
        self.calls.append(("approve", tuple(post_ids)))
        return len(post_ids)

    def reject(self, user: User, post_id: int, reason: str) -> None:
        self._post(user, post_id, (Role.APPROVER,))
        self.posts[post_id] = replace(self.posts[post_id], state=PostState.REJECTED)
        self.reasons[post_id] = reason
        self.record(user.username, "reject", f"post:{post_id}", {"reason": reason})
        self.calls.append(("reject", (post_id, reason)))

    def edit_lead_in(self, user: User, post_id: int, lead_in: str) -> None:
        self._post(user, post_id, (Role.EDITOR, Role.APPROVER))
        self.posts[post_id] = replace(self.posts[post_id], lead_in=lead_in)
        self.record(user.username, "edit_lead_in", f"post:{post_id}", {"lead_in": lead_in})
        self.calls.append(("edit_lead_in", (post_id, lead_in)))

    def reschedule(self, user: User, post_id: int, when: datetime) -> None:
        self._post(user, post_id, (Role.APPROVER, Role.EDITOR))
        self.posts[post_id] = replace(self.posts[post_id], scheduled_at=when)
        for d in list(self.deliveries.values()):
            if d.post_id == post_id:
                self.deliveries[d.id] = replace(d, due_at=when)
        self.record(user.username, "reschedule", f"post:{post_id}", {"at": when.isoformat()})
        self.calls.append(("reschedule", (post_id, when)))

    def post_now(self, user: User, post_id: int) -> None:
        self.reschedule(user, post_id, self.now)
        self.calls.append(("post_now", post_id))

    def retry(self, user: User, delivery_id: int) -> None:
        d = self.deliveries[delivery_id]
        self._may(user, d.unit_code, (Role.APPROVER,))
        self.deliveries[delivery_id] = replace(d, state="pending", last_error=None, error_kind=None)
        self.record(user.username, "retry", f"delivery:{delivery_id}", {})
        self.calls.append(("retry", delivery_id))

    def cancel(self, user: User, post_id: int, reason: str) -> None:
        self._post(user, post_id, (Role.APPROVER,))
        self.posts[post_id] = replace(self.posts[post_id], state=PostState.CANCELLED)
        self.calls.append(("cancel", (post_id, reason)))

    def recall(self, user: User, post_id: int, reason: str, notice: str) -> None:
        """Like the core: sent deliveries wait to be withdrawn, the rest never go out."""
        self._post(user, post_id, (Role.APPROVER,))
        if self.posts[post_id].state is PostState.RECALLED:
            raise ActionRefused(f"post {post_id} is already recalled")
        self.posts[post_id] = replace(self.posts[post_id], state=PostState.RECALLED)
        views = []
        for d in sorted(self.deliveries.values(), key=lambda d: d.id):
            if d.post_id != post_id:
                continue
            sent = d.state == "sent"
            if not sent:
                self.deliveries[d.id] = replace(d, state="cancelled")
            state = "pending" if sent else "not_sent"
            views.append(WithdrawalView(d.id, d.account_id, d.platform, state, d.remote_url))
        self.withdrawals[post_id] = tuple(views)
        self.record(user.username, "recall", f"post:{post_id}", {"reason": reason})
        self.calls.append(("recall", (post_id, reason, notice)))

    def pause(
        self, user: User, scope: PauseScope, target: str, reason: str, until: datetime | None
    ) -> None:
        if scope in (PauseScope.UNIT, PauseScope.SUBTREE):
            self._may(user, target, (Role.APPROVER,))
        elif not any(g.role is Role.ADMIN for g in user.grants):
            raise ActionRefused("chỉ quản trị mới dừng được cả một kênh")
        self.pause_list.append(
            Pause(
                scope, target, reason, user.username, self.now, until, id=len(self.pause_list) + 1
            )
        )
        self.record(user.username, "pause", f"{scope.value}:{target}", {"reason": reason})
        self.calls.append(("pause", (scope, target, reason, until)))

    def resume(self, user: User, pause_id: int, reason: str) -> None:
        pause = next(p for p in self.pause_list if p.id == pause_id)
        if pause.scope in (PauseScope.UNIT, PauseScope.SUBTREE):
            self._may(user, pause.target, (Role.APPROVER,))
        self.pause_list.remove(pause)
        self.record(user.username, "resume", f"{pause.scope.value}:{pause.target}", {})
        self.calls.append(("resume", (pause_id, reason)))

    def import_plan(self, user: User, rows: Sequence[PlanRow]) -> int:
        for row in rows:
            self._may(user, row.unit_code, (Role.EDITOR, Role.APPROVER))
        self.calls.append(("import_plan", len(rows)))
        return len(rows)

    # --- channel accounts (admins only, within their reach; "bad" tokens are refused) ---

    def _account(self, user: User, account_id: str) -> ChannelAccount:
        account = next((a for a in self.accounts_list if a.id == account_id), None)
        if account is None:
            raise ActionRefused(f"không có tài khoản {account_id}")
        self._may(user, account.unit_code, ())
        return account

    def _replace_account(self, account: ChannelAccount) -> None:
        self.accounts_list = [account if a.id == account.id else a for a in self.accounts_list]

    def connect_account(self, user: User, request: ConnectRequest, secret: str) -> CheckOutcome:
        self._may(user, request.unit_code, ())
        account_id = request.resolved_id()
        if any(a.id == account_id for a in self.accounts_list):
            raise ActionRefused(f"account {account_id} already exists; choose another --id")
        if "bad" in secret:
            raise ActionRefused(f"{account_id}: the platform refused it; nothing was stored")
        self.accounts_list.append(
            ChannelAccount(
                account_id,
                request.unit_code,
                Platform(request.platform),
                request.external_id,
                request.display_name,
                "store:",
                self.now + timedelta(days=60),
            )
        )
        self.secrets[account_id] = secret
        self.checked[account_id] = self.now
        self.origins[account_id] = "connected"
        self.calls.append(("connect_account", (account_id, request.unit_code)))
        self.record(user.username, "account_connected", f"account:{account_id}", {})
        return CheckOutcome(
            account_id, request.unit_code, request.platform, "ok", "token ok", "active"
        )

    def test_account(self, user: User, account_id: str) -> CheckOutcome:
        account = self._account(user, account_id)
        self.checked[account_id] = self.now
        self.calls.append(("test_account", account_id))
        if "bad" in self.secrets.get(account_id, ""):
            self._replace_account(replace(account, status=AccountStatus.AUTH_FAILED))
            return CheckOutcome(
                account_id, account.unit_code, account.platform.value, "refused",
                "invalid token", "auth_failed",
            )  # fmt: skip
        back = account.status is AccountStatus.AUTH_FAILED
        held = sum(
            1
            for d in self.deliveries.values()
            if d.account_id == account_id and d.state in ("pending", "retry_wait")
        )
        self._replace_account(replace(account, status=AccountStatus.ACTIVE))
        return CheckOutcome(
            account_id, account.unit_code, account.platform.value, "ok", "token ok", "active",
            reactivated=back, held_deliveries=held,
        )  # fmt: skip

    def rotate_account(self, user: User, account_id: str, secret: str) -> CheckOutcome:
        account = self._account(user, account_id)
        if "bad" in secret:
            raise ActionRefused(f"{account_id}: the platform refused it; the old ones are kept")
        self.secrets[account_id] = secret
        self.calls.append(("rotate_account", account_id))
        self._replace_account(replace(account, status=AccountStatus.ACTIVE))
        return CheckOutcome(
            account_id, account.unit_code, account.platform.value, "ok", "token ok", "active"
        )

    def remove_account(self, user: User, account_id: str, reason: str) -> RemoveOutcome:
        account = self._account(user, account_id)
        if account.status is AccountStatus.DISABLED:
            raise ActionRefused(f"account {account_id} is already removed")
        self._replace_account(replace(account, status=AccountStatus.DISABLED))
        self.secrets.pop(account_id, None)
        cancelled = 0
        for key, d in list(self.deliveries.items()):
            if d.account_id == account_id and d.state in (
                "awaiting_approval",
                "pending",
                "retry_wait",
            ):
                self.deliveries[key] = replace(d, state="cancelled")
                cancelled += 1
        self.calls.append(("remove_account", (account_id, reason)))
        origin = self.origins.get(account_id, "config")
        return RemoveOutcome(account_id, account.unit_code, origin, cancelled, 0, True)


def build(fake: FakeBackend, user: User = APPROVER_HN, language: str = "vi") -> PublisherApp:
    settings = TuiSettings(user=user, language=language, poll_seconds=0, clock=lambda: NOW)
    return make_app(settings, fake)


async def settle(pilot: Any) -> None:
    """Wait until the workers (reads and decisions) are done and the screen has redrawn."""
    for _ in range(3):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()
