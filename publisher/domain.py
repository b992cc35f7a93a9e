"""The domain: plain frozen values and enums that every layer speaks.

Nothing here touches a database, the network or the clock. Persistence tables live in
`publisher.store.tables` and convert to and from these values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

VIETNAM_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

_Frozen = TypeVar("_Frozen", bound=type)


def init_through_slots(cls: _Frozen) -> _Frozen:
    """Give a frozen, slotted dataclass an `__init__` that stores each field through its slot.

    The `__init__` a frozen dataclass gets stores every field with `object.__setattr__` (its
    own `__setattr__` refuses); the slot's descriptor stores it just the same in half the
    time. For values made for every item of every poll (articles, dedup keys). Same
    parameters, defaults and result: tests/unit/test_domain_init.py.
    """
    parameters, lines, space = [], [], {}
    for n, each in enumerate(fields(cls)):
        if each.default_factory is not MISSING:
            raise TypeError(f"{cls.__name__}.{each.name}: a default factory is not supported")
        if each.default is MISSING:
            parameters.append(each.name)
        else:
            space[f"_default{n}"] = each.default
            parameters.append(f"{each.name}=_default{n}")
        space[f"_store{n}"] = cls.__dict__[each.name].__set__
        lines.append(f"    _store{n}(self, {each.name})\n")
    exec(f"def __init__(self, {', '.join(parameters)}):\n{''.join(lines)}", space)
    init = space["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = dict(cls.__init__.__annotations__)  # type: ignore[misc]
    cls.__init__ = init  # type: ignore[misc]
    return cls


# --- units and people -------------------------------------------------------------------


class UnitKind(StrEnum):
    """Level labels. The tree may be any depth; these are the labels the sample uses."""

    CENTRAL = "central"
    MINISTRY = "ministry"
    PROVINCE = "province"
    COMMUNE = "commune"
    SITE = "site"  # a component site (trang thành phần) under any unit


@dataclass(frozen=True, slots=True)
class Unit:
    code: str
    name: str
    kind: str
    parent_code: str | None = None
    code_list: str = ""  # the code list the code comes from, e.g. "QD19/2025" (codes get reused)
    short_name: str = ""
    active: bool = True
    merged_into: str | None = None  # set when the unit was merged into another


class Role(StrEnum):
    EDITOR = "editor"
    APPROVER = "approver"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class RoleGrant:
    """A role held at one unit; with `subtree` it reaches every unit below it too."""

    unit_code: str
    role: Role
    subtree: bool = True


@dataclass(frozen=True, slots=True)
class User:
    username: str
    display_name: str = ""
    grants: tuple[RoleGrant, ...] = ()
    os_users: tuple[str, ...] = ()  # operating-system accounts mapped to this user
    may_act_for_others: bool = False


# --- channels ---------------------------------------------------------------------------


class Platform(StrEnum):
    FACEBOOK = "facebook"
    YOUTUBE = "youtube"
    ZALO = "zalo"
    VIBER = "viber"
    TELEGRAM = "telegram"
    X = "x"


# Platforms that publish only video: an article without one has nothing to post there.
VIDEO_ONLY_PLATFORMS = frozenset({Platform.YOUTUBE})


class AccountStatus(StrEnum):
    ACTIVE = "active"
    AUTH_FAILED = "auth_failed"  # token expired or revoked: nothing is sent until fixed
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class ChannelAccount:
    id: str  # stable key, e.g. "01.facebook"
    unit_code: str
    platform: Platform
    external_id: str  # page id, channel id, OA id, chat id …
    display_name: str = ""
    credentials_ref: str = ""  # where the secret lives (env var name / secret store key)
    token_expires_at: datetime | None = None
    status: AccountStatus = AccountStatus.ACTIVE
    language: str | None = None  # bound to one language: only articles in it reach here


# --- sources and articles ---------------------------------------------------------------


class SourceKind(StrEnum):
    FEED = "feed"
    PAGE = "page"
    PUSH = "push"


class ArticleKind(StrEnum):
    DIRECTIVE = "directive"  # thông tin chỉ đạo, điều hành: cascades down the tree
    ARTICLE = "article"  # a unit's own news


@dataclass(frozen=True, slots=True)
class Source:
    id: str
    unit_code: str
    kind: SourceKind
    url: str = ""
    article_kind: ArticleKind = ArticleKind.ARTICLE
    poll_interval_s: int = 600
    timezone: str = "+07:00"  # assumed for dates that carry none
    allow_private_network: bool = False  # only for the sandbox and tests
    selectors: Mapping[str, str] = field(default_factory=dict)  # page sources: CSS selectors
    etag: str | None = None
    last_modified: str | None = None
    category: str | None = None


@init_through_slots
@dataclass(frozen=True, slots=True)
class Article:
    """A normalised, sanitised article. Text fields are NFC; `published_at` is aware."""

    guid: str
    url: str
    title: str
    published_at: datetime
    summary: str = ""
    body_html: str = ""
    body_text: str = ""
    images: tuple[str, ...] = ()
    video: str | None = None
    language: str = "vi"
    source: str = ""  # display name of the origin, e.g. "baochinhphu.vn"
    kind: ArticleKind = ArticleKind.ARTICLE
    unit_code: str | None = None  # the unit that owns it (directives: the root)
    category: str | None = None
    urgent: bool = False
    content_hash: str = ""
    id: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The article JSON of the public interface (docs/cli.md)."""
        return {
            "guid": self.guid,
            "url": self.url,
            "title": self.title,
            "summary": self.summary,
            "body_html": self.body_html,
            "body_text": self.body_text,
            "published_at": self.published_at.isoformat(),
            "images": list(self.images),
            "video": self.video,
            "language": self.language,
            "source": self.source,
            "kind": self.kind.value,
        }


# --- posts and deliveries ---------------------------------------------------------------


class PostState(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    RECALLED = "recalled"  # taken back after a mistake: nothing more goes out (docs/delivery.md)


@dataclass(frozen=True, slots=True)
class Post:
    """An article as one unit will publish it."""

    article_id: int
    unit_code: str
    state: PostState
    lead_in: str = ""  # the unit's own opening line (the only edit a directive allows)
    scheduled_at: datetime | None = None
    expires_at: datetime | None = None
    priority: int = 0  # higher goes first; urgent directives are high
    approvals: tuple[str, ...] = ()  # usernames that approved (for "all" policies)
    id: int | None = None


class DeliveryState(StrEnum):
    """States of one post on one channel account (docs/delivery-design.md)."""

    AWAITING_APPROVAL = "awaiting_approval"  # its post is not approved yet: never claimed
    PENDING = "pending"
    CLAIMED = "claimed"
    SENDING = "sending"
    SENT = "sent"
    RETRY_WAIT = "retry_wait"
    FAILED = "failed"
    UNKNOWN = "unknown"
    RECONCILING = "reconciling"
    NEEDS_REVIEW = "needs_review"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


FINAL_DELIVERY_STATES = frozenset(
    {DeliveryState.SENT, DeliveryState.FAILED, DeliveryState.CANCELLED, DeliveryState.EXPIRED}
)


@dataclass(frozen=True, slots=True)
class Delivery:
    post_id: int
    account_id: str
    state: DeliveryState
    due_at: datetime
    expires_at: datetime | None = None
    priority: int = 0
    attempt: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = None
    body_hash: str | None = None
    remote_id: str | None = None
    remote_url: str | None = None
    last_error: str | None = None
    error_kind: str | None = None
    sent_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class ReceiptNote:
    """One thing a channel said beside a send that did not fail it (a Zalo broadcast's
    message id, its monthly quota used up, an image left out), stored with the delivery
    (`delivery.receipt_notes`). `message` is the channel's sentence, Vietnamese first."""

    severity: str  # info | warning | error (channels.base.Severity)
    code: str  # stable: "broadcast_sent", "broadcast_quota_used" …
    message: str

    def to_json(self) -> dict[str, str]:
        return {"severity": self.severity, "code": self.code, "message": self.message}

    @property
    def is_warning(self) -> bool:
        return self.severity != "info"


def receipt_notes_from_json(stored: Any, where: str) -> tuple[ReceiptNote, ...]:
    """`delivery.receipt_notes` as notes; a value not in the form written is an error naming
    `where` (the delivery), not notes quietly dropped."""
    if stored is None:
        return ()
    if not isinstance(stored, list):
        raise ValueError(f"{where}: receipt_notes is not a list: {stored!r:.200}")
    notes = []
    for index, item in enumerate(stored):
        if not (
            isinstance(item, dict)
            and all(isinstance(item.get(k), str) for k in ("severity", "code", "message"))
        ):
            raise ValueError(
                f"{where}: receipt_notes[{index}] needs severity, code and message: {item!r:.200}"
            )
        notes.append(ReceiptNote(item["severity"], item["code"], item["message"]))
    return tuple(notes)


class RecallScope(StrEnum):
    POST = "post"  # one unit's post
    ARTICLE = "article"  # every unit's post of one article (a central directive everywhere)


class WithdrawalState(StrEnum):
    """States of taking back one delivery (docs/delivery.md, "Recall")."""

    PENDING = "pending"  # due; held while the delivery's own outcome is not known yet
    CLAIMED = "claimed"
    WITHDRAWING = "withdrawing"  # the platform call may be under way (idempotent: safe to redo)
    WITHDRAWN = "withdrawn"  # deleted, or replaced by the correction notice
    NEEDS_MANUAL_REMOVAL = "needs_manual_removal"  # a person removes it by hand (URL given)
    FAILED = "failed"  # gave up after repeated errors: a person must look
    NOT_SENT = "not_sent"  # the delivery never went out: nothing to take back


FINAL_WITHDRAWAL_STATES = frozenset(
    {
        WithdrawalState.WITHDRAWN,
        WithdrawalState.NEEDS_MANUAL_REMOVAL,
        WithdrawalState.FAILED,
        WithdrawalState.NOT_SENT,
    }
)


@dataclass(frozen=True, slots=True)
class Recall:
    """A request to take back a post, or one article on every unit's channels."""

    scope: RecallScope
    article_id: int
    reason: str
    requested_by: str
    requested_at: datetime
    post_id: int | None = None  # scope POST only
    notice: str = ""  # the correction text an `edit` channel writes in place of the post
    id: int | None = None


def manual_removal_target(platform: str, remote_id: str | None, url: str | None) -> str:
    """Where a person finds a post to remove by hand, for the recall's manual-removal list
    (report, notice, TUI), Vietnamese first.

    Viber channel and bot messages have no public address, whatever was stored: the message
    token names the message. Telegram's t.me link is built at send time from the chat Telegram
    returned (channels.telegram.message_url): a public channel's `t.me/<username>/<id>` or a
    private one's `t.me/c/<internal id>/<id>`; a chat with neither has message ids only."""
    if platform == Platform.VIBER.value:
        if remote_id is None:
            return (
                "Viber: không rõ tin đã gửi chưa, không có mã tin; hãy xem kênh "
                "(no message token: the send's outcome was never known; check the channel)"
            )
        return (
            f"Viber không có đường dẫn công khai; mã tin (message token) {remote_id} "
            f"(Viber messages have no public link: message token {remote_id})"
        )
    if url:
        return url
    if remote_id is None:
        return (
            "không có đường dẫn: không rõ bài đã lên chưa; hãy xem kênh "
            "(no link: the send's outcome was never known; check the channel)"
        )
    if platform == Platform.TELEGRAM.value:
        return (
            f"Telegram: nhóm này không có đường dẫn t.me; mã tin {remote_id} "
            f"(no t.me link for this chat: message id(s) {remote_id})"
        )
    return f"không có đường dẫn; mã {remote_id} (no link: id {remote_id})"


class PauseScope(StrEnum):
    UNIT = "unit"  # one unit
    SUBTREE = "subtree"  # a unit and everything below it
    CHANNEL = "channel"  # one platform everywhere
    ACCOUNT = "account"  # one channel account
    ALL = "all"  # everything


@dataclass(frozen=True, slots=True)
class Pause:
    scope: PauseScope
    target: str  # unit code, platform key, account id, or "" for ALL
    reason: str
    created_by: str
    created_at: datetime
    until: datetime | None = None
    id: int | None = None

    def active_at(self, now: datetime) -> bool:
        return self.until is None or now < self.until


@dataclass(frozen=True, slots=True)
class AuditEvent:
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str


def canonical_json(value: Any) -> str:
    """One spelling of a JSON value, so that equal values hash equally."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
