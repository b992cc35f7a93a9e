"""Zalo Official Account articles through the OA Open API (httpx; no official SDK exists).

Payload (`POST /v2.0/article/create`): `type`, `title` ≤ 150, `author` ≤ 50, `description`
≤ 300, optional `cover`, `body` as typed items `[{type: text, content} | {type: image, url,
caption}]`, `status`, `comment`. Every reply is HTTP 200 with `error` in the body (0 = ok).
Create returns `data.token`; `article/verify` turns it into the article id, answering -214
while Zalo still processes it, so it is polled a bounded number of times.

Broadcast (per account: `broadcasts` maps an account id to its OA package's monthly allowance,
1, 4 or 6): creating an article only puts it on the OA's page; followers are told by a
broadcast, `POST /v2.0/oa/message` with a `media` template whose element is
`{media_type: article, attachment_id: <article id>}` (zalo-java-sdk, SendBroadcastMessage).
It is a second, separate step, run once the article id is known, and idempotent through the
`BroadcastBook`: the broadcast of an article is claimed — and counted against the month, in
Vietnam time — durably *before* the request, so no path (a retry, a crash, a second worker,
reconcile) sends it twice. A broadcast whose reply is lost is never repeated: the receipt
carries a warning. Zalo's -211 (out of quota) means the month's broadcasts are used up: the
article stays published and the broadcast is skipped with a warning until the next month,
never retried hourly. A broadcast message cannot be recalled: `withdraw` removes the article
(`POST /v2.0/article/remove`) and says so.

Reconcile: the match hash is SHA-256 of the title; `article/getslice` lists recent articles
with their titles and creation times. An article found there whose broadcast was never
claimed (its send ended before Zalo gave the id) is broadcast then, once.

Tokens (docs/channels.md, "Zalo tokens"): Zalo access tokens are always minted by OAuth and
live 25 h; a refresh token is single-use. The rule is *store before use*: the new pair from
`oauth.zaloapp.com/v4/oa/access_token` is saved through the `TokenStore` (`channels.base`)
before it is used or returned. If saving fails, the new pair is dropped unused and the send
fails as BEFORE_SEND: Zalo retires the old refresh token only when the new pair is first used
(as the sandbox models it), so the stored old token still refreshes. A per-account lock and a
look at the store before refreshing keep two workers from spending the same refresh token. If
Zalo retired the old token at once (unverified; the sandbox's `zalo_strict_rotation`), a crash
in that window loses the refresh token and the account goes to AUTH: a person re-authorises;
nothing is published twice. A token Zalo refuses (-216/-124) is refreshed once and the
request repeated: a refused request did nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar, Protocol, TypeVar

import httpx
from pydantic import BaseModel

from channels.base import (
    AccountCheck,
    Adapted,
    Channel,
    Credentials,
    ErrorKind,
    Problem,
    Receipt,
    SendError,
    Severity,
    Template,
    TokenSet,
    TokenStore,
    WithdrawMode,
)
from channels.compose import (
    article_body,
    clean_line,
    effective_template,
    hashtags_line,
    source_line,
)
from channels.httpio import json_body, request, status_5xx
from publisher.domain import VIETNAM_TZ, Article, ChannelAccount, Platform, Unit, sha256_hex
from publisher.text import truncate_sentences, truncate_words

TITLE_LIMIT, AUTHOR_LIMIT, DESCRIPTION_LIMIT = 150, 50, 300
AUTH_CODES = frozenset({-216, -124})
PERMANENT_CODES = frozenset({-201, -224, -230, -305})
QUOTA_CODE = -211
NOT_FOUND_CODE = -201  # article/remove of an id Zalo does not have (an invalid parameter)
BROADCAST_ALLOWANCES = (1, 4, 6)  # broadcasts a month, by OA package
T = TypeVar("T")
# A broadcast that did not go is logged as well as stored with the delivery (receipt_notes).
log = logging.getLogger("channels.zalo")


class ZaloSettings(BaseModel):
    verify_attempts: int = 5
    verify_delay_s: float = 2.0
    read_back_pages: int = 3
    refresh_margin_s: float = 600.0  # refresh when the access token has less left than this
    rate_limit_wait_s: float = 60.0
    # -211 (out of quota) on any other call: wait this long, or None = until the next month
    # in Vietnam time (the OA package's quotas are monthly); never an hourly retry
    quota_wait_s: float | None = None
    # `recipient.target` of a broadcast: Zalo's filters (ages, gender, cities …); empty = every
    # follower. Which filters Zalo requires is unverified, so it is a setting.
    broadcast_target: dict[str, int | str] = {}


# --- the monthly broadcast allowance ------------------------------------------------------


def broadcast_month(moment: datetime) -> date:
    """The month a broadcast counts in: the first day of its month in Vietnam time."""
    local = moment.astimezone(VIETNAM_TZ)
    return date(local.year, local.month, 1)


def following_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


class Claim(StrEnum):
    GRANTED = "granted"  # counted and recorded: send the broadcast now
    ALREADY = "already"  # this article's broadcast was claimed before: never send it again
    USED_UP = "used_up"  # the month's allowance is used up


class BroadcastBook(Protocol):
    """Durable record of broadcasts: which articles were broadcast, how many in a month.

    Every method is durable (committed) when it returns, and raises if it is not.
    """

    async def claim(self, account_id: str, article_id: str, month: date, allowance: int) -> Claim:
        """Record that this article's broadcast is about to be sent, counted in `month`."""
        ...

    async def give_back(self, account_id: str, article_id: str, month: date) -> None:
        """The claimed broadcast was proven not sent (Zalo refused it): forget and uncount."""
        ...

    async def use_up(self, account_id: str, month: date, allowance: int) -> None:
        """Zalo answered -211: the month is used up, whatever was counted here."""
        ...

    async def used(self, account_id: str, month: date) -> int: ...


class InMemoryBroadcastBook:
    """A `BroadcastBook` for tests (the service keeps it in the database: publisher.store)."""

    def __init__(self) -> None:
        self.claimed: dict[tuple[str, str], date] = {}
        self.counts: dict[tuple[str, date], int] = {}

    async def claim(self, account_id: str, article_id: str, month: date, allowance: int) -> Claim:
        if (account_id, article_id) in self.claimed:
            return Claim.ALREADY
        if self.counts.get((account_id, month), 0) >= allowance:
            return Claim.USED_UP
        self.claimed[(account_id, article_id)] = month
        self.counts[(account_id, month)] = self.counts.get((account_id, month), 0) + 1
        return Claim.GRANTED

    async def give_back(self, account_id: str, article_id: str, month: date) -> None:
        if self.claimed.pop((account_id, article_id), None) is not None:
            self.counts[(account_id, month)] = max(0, self.counts.get((account_id, month), 0) - 1)

    async def use_up(self, account_id: str, month: date, allowance: int) -> None:
        self.counts[(account_id, month)] = max(allowance, self.counts.get((account_id, month), 0))

    async def used(self, account_id: str, month: date) -> int:
        return self.counts.get((account_id, month), 0)


def quota_problem(allowance: int, month: date) -> Problem:
    resume = following_month(month)
    return Problem(
        Severity.WARNING,
        "broadcast_quota_used",
        f"Đã dùng hết {allowance} lượt broadcast của gói OA trong tháng "
        f"{month:%m/%Y}: bài đã đăng nhưng không gửi broadcast; gửi lại được từ "
        f"{resume:%d/%m/%Y} (monthly broadcast quota of {allowance} used up: the article is "
        f"published, the broadcast skipped until {resume.isoformat()})",
    )


def until_next_month(now: datetime) -> float:
    """Seconds from `now` to the first midnight of next month in Vietnam time."""
    start = following_month(broadcast_month(now))
    resume = datetime(start.year, start.month, 1, tzinfo=VIETNAM_TZ)
    return max(0.0, (resume - now).total_seconds())


def classify_zalo_error(
    code: int,
    message: str,
    settings: ZaloSettings | None = None,
    *,
    idempotent: bool = False,
    now: datetime | None = None,
) -> SendError:
    settings = settings or ZaloSettings()
    label = str(code)
    if code in AUTH_CODES:
        return SendError(
            ErrorKind.AUTH, f"Zalo access token invalid: {message}", platform_code=label
        )
    if code == -32:
        return SendError(
            ErrorKind.RATE_LIMITED,
            f"Zalo rate limit: {message}",
            retry_after=settings.rate_limit_wait_s,
            platform_code=label,
        )
    if code == QUOTA_CODE:
        wait = settings.quota_wait_s
        if wait is None:
            wait = until_next_month(now or datetime.now(UTC))
        return SendError(
            ErrorKind.RATE_LIMITED,
            f"Zalo: hết hạn mức của gói OA, chờ {wait / 86400:.1f} ngày "
            f"(quota used up: {message}; not retried before {wait:.0f} s)",
            retry_after=wait,
            platform_code=label,
        )
    if code in PERMANENT_CODES:
        return SendError(ErrorKind.PERMANENT, f"Zalo refused: {message}", platform_code=label)
    kind = ErrorKind.BEFORE_SEND if idempotent else ErrorKind.UNKNOWN_OUTCOME
    return SendError(kind, f"Zalo error {code}: {message}", platform_code=label)


def _paragraph_items(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "content": p} for p in text.split("\n\n") if p.strip()]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _with_problem(receipt: Receipt, severity: Severity, code: str, message: str) -> Receipt:
    return _with(receipt, Problem(severity, code, message))


def _with(receipt: Receipt, problem: Problem) -> Receipt:
    if problem.severity is Severity.WARNING:
        log.warning("zalo article %s: %s", receipt.remote_id, problem.message)
    return dataclasses.replace(receipt, problems=(*receipt.problems, problem))


class ZaloChannel(Channel):
    platform: ClassVar[Platform] = Platform.ZALO
    display_name: ClassVar[str] = "Zalo OA"
    can_read_back: ClassVar[bool] = True
    text_limit: ClassVar[int | None] = DESCRIPTION_LIMIT
    default_base_url: ClassVar[str] = "https://openapi.zalo.me"
    default_oauth_url: ClassVar[str] = "https://oauth.zaloapp.com"
    sandbox_prefix: ClassVar[str] = "zalo"
    withdraw_mode: ClassVar[WithdrawMode] = WithdrawMode.DELETE

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str | None = None,
        *,
        settings: ZaloSettings | None = None,
        token_store: TokenStore | None = None,
        oauth_base_url: str | None = None,
        broadcasts: Mapping[str, int] | None = None,
        broadcast_book: BroadcastBook | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        super().__init__(http, base_url)
        self.settings = settings or ZaloSettings()
        self.token_store = token_store
        # the sandbox serves OAuth at <sandbox>/zalo-oauth beside <sandbox>/zalo
        self.oauth_base = (
            oauth_base_url or (f"{self.api_base}-oauth" if base_url else self.default_oauth_url)
        ).rstrip("/")
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        # account id → broadcasts a month in its OA package; an account not named never
        # broadcasts (the article is only put on the OA's page)
        self.broadcasts = dict(broadcasts or {})
        for account_id, allowance in self.broadcasts.items():
            if allowance not in BROADCAST_ALLOWANCES:
                raise ValueError(
                    f"{account_id}: broadcasts a month must be one of {BROADCAST_ALLOWANCES}"
                )
        self.broadcast_book: BroadcastBook = broadcast_book or InMemoryBroadcastBook()
        self.clock = clock

    # --- adapt --------------------------------------------------------------------------
    def adapt(self, article: Article, unit: Unit, template: Template) -> Adapted:
        template, problems = effective_template(article, template)
        title = clean_line(article.title)
        if len(title) > TITLE_LIMIT:
            title = truncate_words(title, TITLE_LIMIT)
            problems.append(
                Problem(
                    Severity.WARNING,
                    "title_truncated",
                    f"Tiêu đề rút gọn còn {TITLE_LIMIT} ký tự (title shortened)",
                )
            )
        author = truncate_words(
            clean_line(article.source or unit.short_name or unit.name), AUTHOR_LIMIT
        )
        lead = article_body(article, full=False)
        description = truncate_sentences(lead or title, DESCRIPTION_LIMIT)
        if len(" ".join((lead or title).split())) > DESCRIPTION_LIMIT:
            problems.append(
                Problem(
                    Severity.INFO,
                    "description_truncated",
                    "Mô tả rút gọn còn 300 ký tự (description shortened)",
                )
            )
        body: list[dict[str, Any]] = []
        if template.lead_in:
            body += _paragraph_items(clean_line(template.lead_in))
        paragraphs = (
            _paragraph_items(article_body(article, full=True)) if (template.include_summary) else []
        )
        images = [u for u in article.images if u.startswith(("http://", "https://"))]
        body += paragraphs[:1]
        body += [{"type": "image", "url": url, "caption": ""} for url in images]
        body += paragraphs[1:]
        closing = [source_line(article, template)]
        if template.include_link and article.url:
            closing.append(f"Xem chi tiết: {article.url}")
        closing.append(hashtags_line(template))
        closing_text = "\n".join(line for line in closing if line)
        if closing_text:
            body.append({"type": "text", "content": closing_text})
        if not any(item["type"] == "text" for item in body):
            body.insert(0, {"type": "text", "content": description})
        payload: dict[str, Any] = {
            "type": "normal",
            "title": title,
            "author": author,
            "description": description,
            "body": body,
            "status": "show",
            "comment": "show",
        }
        if images:
            payload["cover"] = {"cover_type": "photo", "photo_url": images[0], "status": "show"}
        else:
            problems.append(
                Problem(Severity.INFO, "no_cover", "Bài không có ảnh bìa (no cover image)")
            )
        if not title or not description:
            problems.append(Problem(Severity.ERROR, "empty", "Thiếu tiêu đề hoặc mô tả (empty)"))
            return Adapted(None, tuple(problems))
        return Adapted(payload, tuple(problems), match_hash=self.match_hash(payload))

    def match_hash(self, payload: Mapping[str, Any]) -> str:
        return sha256_hex(str(payload.get("title", "")))

    # --- HTTP ---------------------------------------------------------------------------
    async def _api(
        self, method: str, path: str, token: str, *, idempotent: bool, **kwargs: Any
    ) -> dict[str, Any]:
        response = await request(
            self.http,
            method,
            f"{self.api_base}{path}",
            idempotent=idempotent,
            headers={"access_token": token},
            **kwargs,
        )
        if response.status_code >= 500:
            raise status_5xx(response, "Zalo", idempotent=idempotent)
        reply = json_body(response)
        code = reply.get("error")
        if response.status_code != 200 or not isinstance(code, int):
            kind = ErrorKind.BEFORE_SEND if idempotent else ErrorKind.UNKNOWN_OUTCOME
            raise SendError(kind, f"Zalo answered {response.status_code} without an error code")
        if code != 0 and code != -214:
            raise classify_zalo_error(
                code,
                str(reply.get("message", "")),
                self.settings,
                idempotent=idempotent,
                now=self.clock(),
            )
        return reply

    async def _authorised(
        self,
        account: ChannelAccount,
        credentials: Credentials,
        call: Callable[[Credentials], Awaitable[T]],
    ) -> tuple[Credentials, T]:
        """Run `call`; if Zalo refuses the token, refresh once and run it again.

        A request refused for its token (-216, -124) did nothing, so repeating it is safe.
        """
        try:
            return credentials, await call(credentials)
        except SendError as error:
            if error.kind is not ErrorKind.AUTH or not self._can_refresh(credentials):
                raise
        credentials = await self.refresh(account, credentials)
        return credentials, await call(credentials)

    # --- tokens -------------------------------------------------------------------------
    def _can_refresh(self, credentials: Credentials) -> bool:
        return self.token_store is not None and bool(credentials.extra.get("app_id"))

    async def current(self, account: ChannelAccount, credentials: Credentials) -> Credentials:
        """The credentials to use now: a pair stored since these were resolved (another
        worker refreshed), refreshed first when the access token is about to expire."""
        if self.token_store is not None:
            stored = await self.token_store.load(account.id)
            if (
                stored is not None
                and stored.access_token != credentials.token
                and stored.expires_at is not None
                and stored.fresh(self.clock(), self.settings.refresh_margin_s)
            ):
                credentials = self._credentials(credentials, stored)
        if self._can_refresh(credentials) and self._expiring(credentials):
            credentials = await self.refresh(account, credentials)
        return credentials

    async def refresh(self, account: ChannelAccount, credentials: Credentials) -> Credentials:
        """Rotate the token pair, storing the new pair before anything uses it."""
        if self.token_store is None:
            raise SendError(ErrorKind.AUTH, "Zalo token expired and no token store is configured")
        async with self._locks[account.id]:
            stored = await self.token_store.load(account.id)
            now = self.clock()
            if (
                stored is not None
                and stored.access_token != credentials.token
                and stored.expires_at is not None
                and stored.fresh(now, self.settings.refresh_margin_s)
            ):
                return self._credentials(credentials, stored)  # another worker rotated already
            refresh_token = (stored.refresh_token if stored else None) or credentials.extra.get(
                "refresh_token", ""
            )
            app_id, secret = credentials.extra.get("app_id"), credentials.extra.get("secret_key")
            if not refresh_token or not app_id or not secret:
                raise SendError(
                    ErrorKind.AUTH, "Zalo refresh needs refresh_token, app_id and secret_key"
                )
            response = await request(
                self.http,
                "POST",
                f"{self.oauth_base}/v4/oa/access_token",
                idempotent=True,
                headers={"secret_key": secret},
                data={
                    "refresh_token": refresh_token,
                    "app_id": app_id,
                    "grant_type": "refresh_token",
                },
            )
            reply = json_body(response)
            if response.status_code >= 500 or (response.status_code != 200 and not reply):
                raise SendError(
                    ErrorKind.BEFORE_SEND, f"Zalo OAuth answered {response.status_code}"
                )
            if not reply.get("access_token") or not reply.get("refresh_token"):
                name = reply.get("error_name") or reply.get("message") or "no tokens in reply"
                raise SendError(
                    ErrorKind.AUTH,
                    f"Zalo refresh refused ({reply.get('error')}): "
                    f"{name}; a person must re-authorise the OA",
                    platform_code=str(reply.get("error")),
                )
            tokens = TokenSet(
                str(reply["access_token"]),
                str(reply["refresh_token"]),
                now + timedelta(seconds=float(reply.get("expires_in", 90000))),
            )
            try:
                await self.token_store.save(account.id, tokens)
            except Exception as error:
                # The new pair is dropped unused: the old refresh token stays the valid one.
                raise SendError(
                    ErrorKind.BEFORE_SEND,
                    f"could not store rotated Zalo tokens ({error}); the new pair was not used",
                ) from error
            return self._credentials(credentials, tokens)

    @staticmethod
    def _credentials(base: Credentials, tokens: TokenSet) -> Credentials:
        extra = dict(base.extra)
        if tokens.refresh_token:
            extra["refresh_token"] = tokens.refresh_token
        if tokens.expires_at is not None:
            extra["expires_at"] = tokens.expires_at.isoformat()
        return Credentials(tokens.access_token, extra)

    def _expiring(self, credentials: Credentials) -> bool:
        raw = credentials.extra.get("expires_at")
        if not raw:
            return False  # not known: use it; a refusal (-216) refreshes then
        try:
            expires = datetime.fromisoformat(raw)
        except ValueError:
            return True  # cannot tell: refresh to be safe
        if expires.tzinfo is None:
            return True
        left = (expires - self.clock()).total_seconds()
        return left < self.settings.refresh_margin_s

    # --- send ---------------------------------------------------------------------------
    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        credentials = await self.current(account, credentials)

        async def create(c: Credentials) -> dict[str, Any]:
            return await self._api(
                "POST", "/v2.0/article/create", c.token, idempotent=False, json=dict(payload)
            )

        credentials, created = await self._authorised(account, credentials, create)
        token = str((created.get("data") or {}).get("token", ""))
        if not token:
            raise SendError(ErrorKind.UNKNOWN_OUTCOME, "Zalo accepted the article without a token")
        receipt = await self._verify(credentials, token)
        # From here the article exists: nothing may raise, or a retry would create it again.
        return await self.broadcast(account, credentials, receipt)

    async def _verify(self, credentials: Credentials, token: str) -> Receipt:
        for attempt in range(self.settings.verify_attempts):
            try:
                reply = await self._api(
                    "POST",
                    "/v2.0/article/verify",
                    credentials.token,
                    idempotent=True,
                    json={"token": token},
                )
            except SendError as error:
                raise SendError(
                    ErrorKind.UNKNOWN_OUTCOME,
                    f"Zalo accepted the article (token {token}) but verify failed: {error.message}",
                    platform_code=error.platform_code,
                ) from error
            if reply.get("error") == 0 and (reply.get("data") or {}).get("id"):
                return Receipt(str(reply["data"]["id"]), None)
            if attempt + 1 < self.settings.verify_attempts:
                await asyncio.sleep(self.settings.verify_delay_s)
        raise SendError(
            ErrorKind.UNKNOWN_OUTCOME,
            f"Zalo still processing article (token {token}); reconcile later",
            platform_code="-214",
        )

    # --- broadcast ----------------------------------------------------------------------
    async def broadcast(
        self, account: ChannelAccount, credentials: Credentials, receipt: Receipt
    ) -> Receipt:
        """Tell the OA's followers about a published article, at most once, within the
        month's allowance. Never raises: the article is published whatever happens here, so
        the outcome is a problem on the receipt (the article id stays `remote_id`)."""
        allowance = self.broadcasts.get(account.id)
        if allowance is None:
            return receipt
        article_id = receipt.remote_id
        month = broadcast_month(self.clock())
        book = self.broadcast_book
        try:
            claim = await book.claim(account.id, article_id, month, allowance)
        except Exception as error:  # unrecorded, it could go twice: do not send it
            return _with_problem(
                receipt,
                Severity.WARNING,
                "broadcast_not_sent",
                f"Chưa gửi broadcast: không ghi được sổ broadcast ({error}) "
                "(broadcast not sent: it could not be recorded first)",
            )
        if claim is Claim.ALREADY:
            return _with_problem(
                receipt,
                Severity.INFO,
                "broadcast_already_sent",
                "Bài này đã được broadcast, không gửi lại (already broadcast; not sent again)",
            )
        if claim is Claim.USED_UP:
            return _with(receipt, quota_problem(allowance, month))
        body = {
            "recipient": {"target": dict(self.settings.broadcast_target)},
            "message": {
                "attachment": {
                    "type": "template",
                    "payload": {
                        "template_type": "media",
                        "elements": [{"media_type": "article", "attachment_id": article_id}],
                    },
                }
            },
        }

        async def send_broadcast(c: Credentials) -> dict[str, Any]:
            return await self._api("POST", "/v2.0/oa/message", c.token, idempotent=False, json=body)

        try:
            _, reply = await self._authorised(account, credentials, send_broadcast)
        except SendError as error:
            return await self._broadcast_failed(account, receipt, month, allowance, error)
        message_id = str((reply.get("data") or {}).get("message_id", ""))
        return _with_problem(
            receipt,
            Severity.INFO,
            "broadcast_sent",
            f"Đã broadcast tới người quan tâm, message_id {message_id} "
            f"(broadcast sent; article {article_id}, message {message_id})",
        )

    async def _broadcast_failed(
        self,
        account: ChannelAccount,
        receipt: Receipt,
        month: date,
        allowance: int,
        error: SendError,
    ) -> Receipt:
        article_id = receipt.remote_id
        if error.kind is ErrorKind.UNKNOWN_OUTCOME:
            # It may have gone out; the claim stays, so it is never sent a second time.
            return _with_problem(
                receipt,
                Severity.WARNING,
                "broadcast_unknown",
                "Không rõ broadcast đã gửi chưa; không gửi lại để tránh gửi hai lần, hãy kiểm "
                f"tra trên Zalo OA Manager (broadcast outcome unknown: {error.message})",
            )
        # Zalo answered with an error, or nothing left: proven not sent.
        try:
            await self.broadcast_book.give_back(account.id, article_id, month)
            if error.platform_code == str(QUOTA_CODE):
                await self.broadcast_book.use_up(account.id, month, allowance)
        except Exception as book_error:  # the claim stays: at worst a broadcast is skipped
            error = SendError(error.kind, f"{error.message}; book: {book_error}")
        if error.platform_code == str(QUOTA_CODE):
            return _with(receipt, quota_problem(allowance, month))
        return _with_problem(
            receipt,
            Severity.WARNING,
            "broadcast_failed",
            "Bài đã đăng nhưng broadcast không gửi được; có thể gửi từ Zalo OA Manager "
            f"(broadcast not sent: {error.message})",
        )

    # --- reconcile ----------------------------------------------------------------------
    async def find_published(
        self, account: ChannelAccount, credentials: Credentials, body_hash: str, since: datetime
    ) -> Receipt | None:
        since_ms = since.timestamp() * 1000
        credentials = await self.current(account, credentials)
        for page in range(self.settings.read_back_pages):

            async def read(c: Credentials, offset: int = page * 10) -> dict[str, Any]:
                return await self._api(
                    "GET",
                    "/v2.0/article/getslice",
                    c.token,
                    idempotent=True,
                    params={"offset": offset, "limit": 10, "type": "normal"},
                )

            credentials, reply = await self._authorised(account, credentials, read)
            medias = (reply.get("data") or {}).get("medias") or []
            for media in medias:
                if float(media.get("create_date", 0)) < since_ms:
                    return None  # newest first: everything after is older
                if sha256_hex(str(media.get("title", ""))) == body_hash:
                    found = Receipt(str(media["id"]), media.get("link_view") or None)
                    # its send ended before the id was known: the broadcast was not sent
                    return await self.broadcast(account, credentials, found)
            if len(medias) < 10:
                break
        return None

    # --- withdraw -----------------------------------------------------------------------
    async def withdraw(
        self,
        account: ChannelAccount,
        credentials: Credentials,
        remote_id: str,
        *,
        notice: str,
    ) -> Receipt:
        """Remove the article (`POST /v2.0/article/remove {id}`); an article Zalo no longer
        has (-201) counts as removed. A broadcast already delivered stays with the followers."""
        credentials = await self.current(account, credentials)

        async def remove(c: Credentials) -> dict[str, Any]:
            return await self._api(
                "POST", "/v2.0/article/remove", c.token, idempotent=True, json={"id": remote_id}
            )

        problems: list[Problem] = []
        try:
            await self._authorised(account, credentials, remove)
        except SendError as error:
            if error.platform_code != str(NOT_FOUND_CODE):
                raise
            problems.append(
                Problem(
                    Severity.INFO,
                    "already_withdrawn",
                    "Zalo không còn bài này: coi như đã gỡ (the article was already gone)",
                )
            )
        if account.id in self.broadcasts:
            problems.append(
                Problem(
                    Severity.WARNING,
                    "broadcast_not_recalled",
                    "Tin broadcast đã gửi tới người quan tâm không thu hồi được qua API "
                    "(a broadcast message cannot be recalled; only the article was removed)",
                )
            )
        return Receipt(remote_id, None, accepted_at=self.clock(), problems=tuple(problems))

    # --- account check ------------------------------------------------------------------
    async def check(self, account: ChannelAccount, credentials: Credentials) -> AccountCheck:
        """`GET /v2.0/oa/getoa`: whose OA the token opens (read-only; a refused token is
        refreshed once, which stores the new pair, as sending would)."""
        credentials = await self.current(account, credentials)

        async def getoa(c: Credentials) -> dict[str, Any]:
            return await self._api("GET", "/v2.0/oa/getoa", c.token, idempotent=True)

        try:
            credentials, reply = await self._authorised(account, credentials, getoa)
        except SendError as error:
            if error.kind is not ErrorKind.AUTH:
                raise
            return AccountCheck(False, f"Zalo từ chối token (token refused): {error.message}")
        data = reply.get("data") or {}
        oa_id, name = str(data.get("oa_id", "")), str(data.get("name", ""))
        expires_at = None
        raw = credentials.extra.get("expires_at")
        if raw:
            try:
                expires_at = datetime.fromisoformat(raw)
            except ValueError:
                expires_at = None
        if oa_id and oa_id != account.external_id:
            return AccountCheck(
                False,
                f"Token thuộc OA {oa_id} ({name}), không phải {account.external_id} "
                f"(the token opens OA {oa_id}, not {account.external_id})",
                expires_at,
            )
        followers = data.get("num_follower")
        detail = f"OA {name} ({oa_id or account.external_id})"
        if followers is not None:
            detail += f", {followers} người quan tâm (followers)"
        allowance = self.broadcasts.get(account.id)
        if allowance is not None:
            month = broadcast_month(self.clock())
            used = await self.broadcast_book.used(account.id, month)
            detail += f"; broadcast {used}/{allowance} tháng {month:%m/%Y}"
        return AccountCheck(True, detail, expires_at)
