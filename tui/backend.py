"""The real backend: reads from `publisher.views` / `publisher.reports`, decisions through
`publisher.service.DeliveryService` (which checks permissions and writes the audit trail)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa

from channels.base import Channel, Credentials, Template
from publisher import redact
from publisher.accounts import AccountService, CheckOutcome, ConnectRequest, RemoveOutcome
from publisher.domain import Pause, PauseScope, Platform, Unit, User
from publisher.plan_import import PlanRow
from publisher.reports import Coverage, ReportError
from publisher.secrets import SecretsError, credentials_from_text
from publisher.service import DeliveryService, ServiceError
from publisher.text import utf8_length, utf16_length, x_weighted_length
from publisher.views import (
    AccountView,
    AuditView,
    DeliveryView,
    DirectiveView,
    Page,
    PostDetail,
    QueueFilter,
    QueueItem,
    Views,
)
from tui.ports import ActionRefused, ChannelPreview

R = TypeVar("R")
# Builds the account use cases over an HTTP client made for one call (checks run in a worker
# thread with their own event loop, so the client cannot outlive the call).
AccountServiceFactory = Callable[[httpx.AsyncClient], AccountService]
HASHTAG = re.compile(r"#\w+")
TEXT_FIELDS = ("message", "text", "caption", "description")
LINK_FIELDS = ("link", "url")
IMAGE_FIELDS = ("picture", "photo", "cover", "image", "media")
ALBUM_FIELDS = ("photos",)  # Telegram's sendMediaGroup: a list of 2–10 image URLs


def platform_length(platform: str, payload: Mapping[str, Any], text: str) -> int:
    """The text's length the way the platform counts it against `Channel.text_limit`:
    X weighs characters (twitter-text: most non-Latin count 2, a URL 23), Telegram counts
    UTF-16 code units, YouTube's description limit is in UTF-8 bytes; the rest count
    characters."""
    if platform == "x":
        return x_weighted_length(text)
    if platform == "telegram":
        return utf16_length(text)
    if platform == "youtube":
        snippet = payload.get("snippet")
        description = snippet.get("description", "") if isinstance(snippet, Mapping) else text
        return utf8_length(str(description))
    return len(text)


def main_text(payload: Mapping[str, Any]) -> str:
    for name in TEXT_FIELDS:
        value = payload.get(name)
        if isinstance(value, str) and value:
            return value
    snippet = payload.get("snippet")
    if isinstance(snippet, Mapping):
        return f"{snippet.get('title', '')}\n\n{snippet.get('description', '')}".strip()
    body = payload.get("body")
    if isinstance(body, list):
        return "\n".join(str(part.get("content", "")) for part in body if isinstance(part, dict))
    return ""


def images_of(payload: Mapping[str, Any]) -> tuple[str, ...]:
    """Every image the payload posts, in order: an album's list, else the one image."""
    for name in ALBUM_FIELDS:
        value = payload.get(name)
        if isinstance(value, list) and value:
            return tuple(str(url) for url in value)
    image = first_field(payload, IMAGE_FIELDS)
    return (image,) if image else ()


def first_field(payload: Mapping[str, Any], names: Sequence[str]) -> str | None:
    for name in names:
        value = payload.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def preview_of(channel: Channel, account_id: str, detail: PostDetail) -> ChannelPreview:
    adapted = channel.adapt(detail.article, detail.unit, Template(lead_in=detail.post.lead_in))
    payload = adapted.payload or {}
    text = main_text(payload)
    platform = channel.platform.value
    length = platform_length(platform, payload, text)
    images = images_of(payload)
    return ChannelPreview(
        account_id=account_id,
        platform=platform,
        text=text,
        link=first_field(payload, LINK_FIELDS),
        image=images[0] if images else None,
        hashtags=tuple(dict.fromkeys(HASHTAG.findall(text))),
        length=length,
        limit=channel.text_limit,
        problems=adapted.problems,
        payload=dict(payload) if adapted.payload is not None else None,
        images=images,
    )


class CoreBackend:
    def __init__(
        self,
        engine: sa.Engine,
        service: DeliveryService,
        channels: Mapping[Platform, Channel],
        accounts: AccountServiceFactory | None = None,
    ) -> None:
        self.engine = engine
        self.views = Views(engine)
        self.service = service
        self.channels = channels
        self.account_service = accounts

    @staticmethod
    def _decide(action: Callable[[], R]) -> R:
        try:
            return action()
        except ServiceError as refused:
            raise ActionRefused(str(refused)) from None

    # --- reads -----------------------------------------------------------------------

    def units(self, user: User) -> list[Unit]:
        return self.views.units(user)

    def queue(self, user: User, wanted: QueueFilter, offset: int, limit: int) -> Page[QueueItem]:
        return self.views.queue(user, wanted, offset, limit)

    def queue_counts(self, user: User) -> dict[str, int]:
        return self.views.queue_counts(user)

    def queue_and_counts(
        self, user: User, wanted: QueueFilter, offset: int, limit: int
    ) -> tuple[Page[QueueItem], dict[str, int]]:
        return self.views.queue_and_counts(user, wanted, offset, limit)

    def post(self, user: User, post_id: int) -> PostDetail | None:
        return self.views.post(user, post_id)

    def previews(self, detail: PostDetail) -> list[ChannelPreview]:
        previews = []
        for delivery in detail.deliveries:
            channel = self.channels.get(Platform(delivery.platform))
            if channel is not None:
                previews.append(preview_of(channel, delivery.account_id, detail))
        return previews

    def calendar(
        self, user: User, start: datetime, end: datetime, unit: str | None, channel: str | None
    ) -> list[DeliveryView]:
        return self.views.calendar(user, start, end, unit, channel)

    def accounts(self, user: User, now: datetime) -> list[AccountView]:
        return self.views.accounts(user, now)

    def pauses(self, now: datetime) -> list[Pause]:
        return self.views.pauses(now)

    def problems(self, user: User, offset: int, limit: int) -> Page[DeliveryView]:
        return self.views.problems(user, offset, limit)

    def audit(self, user: User, text: str, offset: int, limit: int) -> Page[AuditView]:
        return self.views.audit(user, text, offset, limit)

    def directives(self) -> list[DirectiveView]:
        return self.views.directives()

    def existing_articles(self, ids: Sequence[int]) -> set[int]:
        return self.views.existing_articles(ids)

    def coverage(self, user: User, article_id: int, now: datetime) -> Coverage:
        # Only the user's own units (several separate grants stay separate); the root: all.
        try:
            return self.views.coverage(user, article_id, now)
        except ReportError as error:
            raise ActionRefused(str(error)) from None

    # --- decisions -------------------------------------------------------------------

    def approve(self, user: User, post_ids: Sequence[int]) -> int:
        return len(self._decide(lambda: self.service.approve(post_ids, user.username)))

    def reject(self, user: User, post_id: int, reason: str) -> None:
        self._decide(lambda: self.service.reject([post_id], user.username, reason))

    def edit_lead_in(self, user: User, post_id: int, lead_in: str) -> None:
        self._decide(lambda: self.service.edit_lead_in(post_id, user.username, lead_in))

    def reschedule(self, user: User, post_id: int, when: datetime) -> None:
        self._decide(lambda: self.service.reschedule([post_id], user.username, when))

    def post_now(self, user: User, post_id: int) -> None:
        self._decide(lambda: self.service.post_now(post_id, user.username))

    def retry(self, user: User, delivery_id: int) -> None:
        self._decide(lambda: self.service.retry(delivery_id, user.username, "from the TUI"))

    def cancel(self, user: User, post_id: int, reason: str) -> None:
        self._decide(lambda: self.service.cancel(post_id, user.username, reason))

    def recall(self, user: User, post_id: int, reason: str, notice: str) -> None:
        self._decide(
            lambda: self.service.recall(
                user.username, post_id=post_id, reason=reason, notice=notice
            )
        )

    def pause(
        self, user: User, scope: PauseScope, target: str, reason: str, until: datetime | None
    ) -> None:
        self._decide(lambda: self.service.pause(scope, target, reason, user.username, until))

    def resume(self, user: User, pause_id: int, reason: str) -> None:
        pause = next((p for p in self.views.pauses(self.service.clock()) if p.id == pause_id), None)
        if pause is None:
            raise ActionRefused(f"pause {pause_id} is no longer in force")
        self._decide(lambda: self.service.resume(pause.scope, pause.target, reason, user.username))

    def import_plan(self, user: User, rows: Sequence[PlanRow]) -> int:
        """Save a checked plan through the service: every row in one transaction, or none
        (the refusal names the row). Posts missing at a unit are created there."""
        return self._decide(lambda: self.service.apply_plan(rows, user.username)).rows

    # --- channel accounts --------------------------------------------------------------

    def _accounts(self, use: Callable[[AccountService], Awaitable[R]]) -> R:
        """Run one account use case (called off the UI thread, so it has its own loop)."""
        factory = self.account_service
        if factory is None:
            raise ActionRefused("channel accounts cannot be managed from this session")

        async def go() -> R:
            async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0)) as http:
                return await use(factory(http))

        try:
            return asyncio.run(go())
        except ServiceError as refused:  # CheckFailed and PermissionDenied included
            raise ActionRefused(redact.redact(str(refused))) from None

    @staticmethod
    def _secret(secret: str) -> Credentials:
        try:
            return credentials_from_text(secret, "secret")
        except SecretsError as error:
            raise ActionRefused(redact.redact(str(error))) from None

    def connect_account(self, user: User, request: ConnectRequest, secret: str) -> CheckOutcome:
        credentials = self._secret(secret)
        return self._accounts(lambda s: s.connect(request, credentials, user.username))

    def test_account(self, user: User, account_id: str) -> CheckOutcome:
        return self._accounts(lambda s: s.test(account_id, user.username))

    def rotate_account(self, user: User, account_id: str, secret: str) -> CheckOutcome:
        credentials = self._secret(secret)
        return self._accounts(lambda s: s.rotate(account_id, credentials, user.username))

    def remove_account(self, user: User, account_id: str, reason: str) -> RemoveOutcome:
        async def remove(service: AccountService) -> RemoveOutcome:
            return service.remove(account_id, reason, user.username)

        return self._accounts(remove)
