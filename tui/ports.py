"""What the screens need from the core: one small interface, so tests can pass a fake.

Reads return the frozen values of `publisher.views` and `publisher.reports`; decisions go to
`publisher.service` (see `tui.backend.CoreBackend`). A decision the service refuses raises
`ActionRefused` with the reason, which the screen shows as a notification.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from channels.base import Problem
from publisher.accounts import CheckOutcome, ConnectRequest, RemoveOutcome
from publisher.domain import Pause, PauseScope, Unit, User
from publisher.plan_import import PlanRow
from publisher.reports import Coverage
from publisher.views import (
    AccountView,
    AuditView,
    DeliveryView,
    DirectiveView,
    Page,
    PostDetail,
    QueueFilter,
    QueueItem,
)


class ActionRefused(Exception):
    """The core said no (permission, state, validation); `reason` is for the person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ChannelPreview:
    """How a post will look on one channel account, with the platform's counter."""

    account_id: str
    platform: str
    text: str  # the main text as the platform shows it
    link: str | None = None
    image: str | None = None  # the first (or only) image
    hashtags: tuple[str, ...] = ()
    length: int = 0  # counted the way the platform counts
    limit: int | None = None
    problems: tuple[Problem, ...] = ()
    payload: dict[str, object] | None = field(default=None)
    images: tuple[str, ...] = ()  # every image posted, in order (a Telegram album: 2–10)


class Backend(Protocol):
    """Reads and decisions for one signed-in user (`user` is passed on every call)."""

    # reads
    def units(self, user: User) -> list[Unit]: ...
    def queue(
        self, user: User, wanted: QueueFilter, offset: int, limit: int
    ) -> Page[QueueItem]: ...
    def queue_counts(self, user: User) -> dict[str, int]: ...
    def queue_and_counts(
        self, user: User, wanted: QueueFilter, offset: int, limit: int
    ) -> tuple[Page[QueueItem], dict[str, int]]: ...
    def post(self, user: User, post_id: int) -> PostDetail | None: ...
    def previews(self, detail: PostDetail) -> list[ChannelPreview]: ...
    def calendar(
        self, user: User, start: datetime, end: datetime, unit: str | None, channel: str | None
    ) -> list[DeliveryView]: ...
    def accounts(self, user: User, now: datetime) -> list[AccountView]: ...
    def pauses(self, now: datetime) -> list[Pause]: ...
    def problems(self, user: User, offset: int, limit: int) -> Page[DeliveryView]: ...
    def audit(self, user: User, text: str, offset: int, limit: int) -> Page[AuditView]: ...
    def directives(self) -> list[DirectiveView]: ...
    def existing_articles(self, ids: Sequence[int]) -> set[int]: ...
    def coverage(self, user: User, article_id: int, now: datetime) -> Coverage: ...

    # decisions (each checked and audited by the core)
    def approve(self, user: User, post_ids: Sequence[int]) -> int: ...
    def reject(self, user: User, post_id: int, reason: str) -> None: ...
    def edit_lead_in(self, user: User, post_id: int, lead_in: str) -> None: ...
    def reschedule(self, user: User, post_id: int, when: datetime) -> None: ...
    def post_now(self, user: User, post_id: int) -> None: ...
    def retry(self, user: User, delivery_id: int) -> None: ...
    def cancel(self, user: User, post_id: int, reason: str) -> None: ...
    def recall(self, user: User, post_id: int, reason: str, notice: str) -> None: ...
    def pause(
        self,
        user: User,
        scope: PauseScope,
        target: str,
        reason: str,
        until: datetime | None,
    ) -> None: ...
    def resume(self, user: User, pause_id: int, reason: str) -> None: ...
    def import_plan(self, user: User, rows: Sequence[PlanRow]) -> int: ...

    # channel accounts (issue 12): only admins reaching the unit; the platform checks every
    # secret before it is stored; a failed check or a refusal raises ActionRefused
    def connect_account(self, user: User, request: ConnectRequest, secret: str) -> CheckOutcome: ...
    def test_account(self, user: User, account_id: str) -> CheckOutcome: ...
    def rotate_account(self, user: User, account_id: str, secret: str) -> CheckOutcome: ...
    def remove_account(self, user: User, account_id: str, reason: str) -> RemoveOutcome: ...
