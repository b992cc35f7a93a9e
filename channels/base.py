"""The channel plugin contract: what every platform plugin provides and returns.

A channel has two halves:
- `adapt` is pure: article + unit + template → the platform's request payload and problems.
- `send` does I/O: payload → a `Receipt`, or raises `SendError` with a classified `ErrorKind`.

The channel only classifies errors; the delivery engine decides what to do about them.
The HTTP client is injected (never created inside a channel), so tests mount the sandbox
emulators in-process through `httpx.ASGITransport`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol

import httpx

from publisher.domain import Article, ChannelAccount, Platform, Unit, canonical_json, sha256_hex


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"  # the post goes out, but a person may want to look
    ERROR = "error"  # the post cannot go to this channel as it is


@dataclass(frozen=True, slots=True)
class Problem:
    severity: Severity
    code: str  # stable, machine-readable: "truncated", "no_video", "image_missing" …
    message: str  # a sentence for a person (Vietnamese first is the UI's job)

    def to_json(self) -> dict[str, str]:
        return {"severity": self.severity.value, "code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class Template:
    """How a unit wants its posts to look on one channel (configurable; no legal rule coded)."""

    source_line: str = "Nguồn: {source}"  # "" for none
    hashtag_keywords: tuple[str, ...] = ()  # keywords that become diacritic-free hashtags
    lead_in: str = ""  # the unit's own opening line (the only edit allowed on a directive)
    include_link: bool = True
    include_summary: bool = True


@dataclass(frozen=True, slots=True)
class Adapted:
    """The outcome of `adapt`: a payload (None when the channel cannot take the article)."""

    payload: dict[str, Any] | None
    problems: tuple[Problem, ...] = ()
    # The channel's reconcile hash of the payload (`Channel.match_hash`), computable from what
    # the platform gives back. When set, `body_hash` is this value.
    match_hash: str | None = None

    @property
    def ok(self) -> bool:
        return self.payload is not None and not any(
            p.severity is Severity.ERROR for p in self.problems
        )

    @property
    def body_hash(self) -> str | None:
        """The hash to record with `sending` and to pass to `find_published` later."""
        if self.payload is None:
            return None
        return self.match_hash or payload_hash(self.payload)


def payload_hash(payload: Mapping[str, Any]) -> str:
    """The hash recorded before a send and matched when reconciling (canonical JSON, SHA-256)."""
    return sha256_hex(canonical_json(payload))


@dataclass(frozen=True, slots=True)
class Receipt:
    remote_id: str
    url: str | None = None
    accepted_at: datetime | None = None
    # Things that went out differently than adapted (e.g. an image that could not be fetched
    # was left out): the post is published, a person may want to look.
    problems: tuple[Problem, ...] = ()


class ErrorKind(StrEnum):
    RATE_LIMITED = "rate_limited"  # retry after `retry_after` seconds
    BEFORE_SEND = "before_send"  # proven not to have reached the platform: safe to retry
    UNKNOWN_OUTCOME = "unknown_outcome"  # may have been published: never resend blindly
    AUTH = "auth"  # token expired or revoked: stop the whole account
    PERMANENT = "permanent"  # invalid request, permission, duplicate: do not retry


class SendError(Exception):
    """A classified failure of `send` or `find_published`."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        retry_after: float | None = None,
        platform_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after
        self.platform_code = platform_code

    def __repr__(self) -> str:
        return f"SendError({self.kind.value}, {self.message!r}, code={self.platform_code})"


@dataclass(frozen=True, slots=True)
class Credentials:
    """Secrets resolved for one account at send time (never logged, never stored in payloads)."""

    token: str
    extra: Mapping[str, str] = field(default_factory=dict)  # e.g. Zalo refresh token, app id

    def __repr__(self) -> str:
        return "Credentials(<redacted>)"


class WithdrawMode(StrEnum):
    """How a sent post can be taken back on a platform (see `Channel.withdraw`)."""

    DELETE = "delete"  # the post is removed
    EDIT = "edit"  # the post's text is replaced by a correction notice
    MANUAL = "manual"  # the API offers neither: a person removes it by hand


@dataclass(frozen=True, slots=True)
class AccountCheck:
    """What a platform said about one account's credentials."""

    ok: bool
    detail: str  # a sentence for a person: whose token it is, or what is wrong
    expires_at: datetime | None = None  # None: does not expire (or the platform does not say)
    scopes: tuple[str, ...] = ()
    credentials: Credentials | None = None  # durable credentials to store instead, if traded


class Channel(ABC):
    """One platform. Subclasses declare what the platform is with class attributes."""

    platform: ClassVar[Platform]
    display_name: ClassVar[str]
    can_read_back: ClassVar[bool] = False  # can `find_published` resolve unknown outcomes?
    text_limit: ClassVar[int | None] = None  # the main text limit as the platform counts it
    default_base_url: ClassVar[str] = ""  # the real platform's API root
    sandbox_prefix: ClassVar[str] = ""  # path prefix of this platform's emulator in the sandbox

    def __init__(self, http: httpx.AsyncClient, base_url: str | None = None) -> None:
        self.http = http
        self.base_url = base_url  # None: the real platform; set: the sandbox

    @property
    def api_base(self) -> str:
        """Where requests go: the sandbox prefix when `base_url` is set, else the platform."""
        return (self.base_url or self.default_base_url).rstrip("/")

    def match_hash(self, payload: Mapping[str, Any]) -> str:
        """The reconcile hash of a payload: computable from what the platform gives back.

        Channels override it (e.g. SHA-256 of the message text); `adapt` stores it in
        `Adapted.match_hash`, so `Adapted.body_hash` is this value.
        """
        return payload_hash(payload)

    @abstractmethod
    def adapt(self, article: Article, unit: Unit, template: Template) -> Adapted:
        """Pure: the exact payload `send` would use, and the problems found."""

    @abstractmethod
    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        """Publish; raise `SendError` with a classified kind on any failure."""

    async def find_published(
        self,
        account: ChannelAccount,
        credentials: Credentials,
        body_hash: str,
        since: datetime,
    ) -> Receipt | None:
        """Read back recent posts and return the one with this body hash, or None.

        Only channels with `can_read_back` implement it; others cannot tell.
        """
        raise SendError(
            ErrorKind.PERMANENT, f"{self.display_name} cannot read back published posts"
        )

    # --- account lifecycle and recall (issue 12) ------------------------------------------
    # How a sent post can be taken back here; `manual` posts are marked needs_manual_removal.
    withdraw_mode: ClassVar[WithdrawMode] = WithdrawMode.MANUAL

    async def withdraw(
        self,
        account: ChannelAccount,
        credentials: Credentials,
        remote_id: str,
        *,
        notice: str,
    ) -> Receipt:
        """Take back a sent post (`remote_id` is the `Receipt.remote_id` of its send).

        Idempotent: a post the platform no longer has counts as withdrawn (return a receipt,
        do not raise). `notice` is the correction text an `edit` channel writes in place of
        the post. Raise `SendError` with a classified kind on failure, as `send` does.
        """
        raise SendError(
            ErrorKind.PERMANENT, f"{self.display_name} cannot withdraw a post through its API"
        )

    async def check(self, account: ChannelAccount, credentials: Credentials) -> AccountCheck:
        """Ask the platform whether these credentials work for this account (read-only).

        Used by `publisher accounts connect|test|rotate`. Returns what the platform said:
        who the token belongs to, when it expires, which scopes it has, and — where the
        platform trades a short-lived token for a durable one (Facebook page tokens) — the
        credentials to store instead. Never publishes anything.
        """
        raise SendError(ErrorKind.PERMANENT, f"{self.display_name} cannot check credentials")


# --- tokens that change while the service runs ---------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenSet:
    """An access token with what renews it. Stored encrypted (publisher.secrets)."""

    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None  # timezone-aware; None: long-lived

    def __repr__(self) -> str:
        return f"TokenSet(<redacted>, expires_at={self.expires_at})"

    def fresh(self, now: datetime, margin_s: float) -> bool:
        """Usable for at least `margin_s` more seconds."""
        return self.expires_at is None or (self.expires_at - now).total_seconds() > margin_s


class TokenStore(Protocol):
    """Durable storage of the tokens a channel renews itself (refresh, rotation).

    `save` must be durable (committed) when it returns, and raise if it is not: a channel
    saves a renewed token *before* it uses it, so a crash never loses a rotated refresh token.
    """

    async def load(self, account_id: str) -> TokenSet | None: ...

    async def save(self, account_id: str, tokens: TokenSet) -> None: ...


class InMemoryTokenStore:
    """A `TokenStore` for tests and the sandbox demo."""

    def __init__(self) -> None:
        self.tokens: dict[str, TokenSet] = {}

    async def load(self, account_id: str) -> TokenSet | None:
        return self.tokens.get(account_id)

    async def save(self, account_id: str, tokens: TokenSet) -> None:
        self.tokens[account_id] = tokens
