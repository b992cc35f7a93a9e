"""Zalo Official Account articles through the OA Open API (httpx; no official SDK exists).

Payload (`POST /v2.0/article/create`): `type`, `title` ≤ 150, `author` ≤ 50, `description`
≤ 300, optional `cover`, `body` as typed items `[{type: text, content} | {type: image, url,
caption}]`, `status`, `comment`. Every reply is HTTP 200 with `error` in the body (0 = ok).
Create returns `data.token`; `article/verify` turns it into the article id, answering -214
while Zalo still processes it, so it is polled a bounded number of times.

Reconcile: the match hash is SHA-256 of the title; `article/getslice` lists recent articles
with their titles and creation times.

Token refresh (docs/channels.md, "Zalo tokens"): a refresh token is single-use. The rule is
*store before use*: the new pair from `oauth.zaloapp.com/v4/oa/access_token` is saved through
the `TokenStore` before it is used or returned. If saving fails, the new pair is dropped
unused and the send fails as BEFORE_SEND: Zalo retires the old refresh token only when the
new pair is first used (as the sandbox models it), so the stored old token still refreshes.
A per-account lock and a look at the store before refreshing keep two workers from spending
the same refresh token. If Zalo retired the old token at once (unverified; the sandbox's
`zalo_strict_rotation`), a crash in that window loses the refresh token and the account goes
to AUTH: a person re-authorises; nothing is published twice.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

import httpx
from pydantic import BaseModel

from channels.base import (
    Adapted,
    Channel,
    Credentials,
    ErrorKind,
    Problem,
    Receipt,
    SendError,
    Severity,
    Template,
)
from channels.compose import (
    article_body,
    clean_line,
    effective_template,
    hashtags_line,
    source_line,
)
from channels.httpio import json_body, request, status_5xx
from publisher.domain import Article, ChannelAccount, Platform, Unit, sha256_hex
from publisher.text import truncate_sentences, truncate_words

TITLE_LIMIT, AUTHOR_LIMIT, DESCRIPTION_LIMIT = 150, 50, 300
AUTH_CODES = frozenset({-216, -124})
PERMANENT_CODES = frozenset({-201, -224, -230, -305})


class ZaloSettings(BaseModel):
    verify_attempts: int = 5
    verify_delay_s: float = 2.0
    read_back_pages: int = 3
    refresh_margin_s: float = 600.0  # refresh when the access token has less left than this
    rate_limit_wait_s: float = 60.0
    quota_wait_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class ZaloTokens:
    access_token: str
    refresh_token: str
    expires_at: datetime


class TokenStore(Protocol):
    """Durable storage of an OA's token pair (the lead wires the encrypted store)."""

    async def load(self, account_id: str) -> ZaloTokens | None: ...

    async def save(
        self, account_id: str, access_token: str, refresh_token: str, expires_at: datetime
    ) -> None:
        """Must be durable (committed) when it returns; raise if it is not."""


class InMemoryTokenStore:
    """A `TokenStore` for tests and the sandbox demo."""

    def __init__(self) -> None:
        self.tokens: dict[str, ZaloTokens] = {}

    async def load(self, account_id: str) -> ZaloTokens | None:
        return self.tokens.get(account_id)

    async def save(
        self, account_id: str, access_token: str, refresh_token: str, expires_at: datetime
    ) -> None:
        self.tokens[account_id] = ZaloTokens(access_token, refresh_token, expires_at)


def classify_zalo_error(
    code: int, message: str, settings: ZaloSettings | None = None, *, idempotent: bool = False
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
    if code == -211:
        return SendError(
            ErrorKind.RATE_LIMITED,
            f"Zalo quota used up: {message}",
            retry_after=settings.quota_wait_s,
            platform_code=label,
        )
    if code in PERMANENT_CODES:
        return SendError(ErrorKind.PERMANENT, f"Zalo refused: {message}", platform_code=label)
    kind = ErrorKind.BEFORE_SEND if idempotent else ErrorKind.UNKNOWN_OUTCOME
    return SendError(kind, f"Zalo error {code}: {message}", platform_code=label)


def _paragraph_items(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "content": p} for p in text.split("\n\n") if p.strip()]


class ZaloChannel(Channel):
    platform: ClassVar[Platform] = Platform.ZALO
    display_name: ClassVar[str] = "Zalo OA"
    can_read_back: ClassVar[bool] = True
    text_limit: ClassVar[int | None] = DESCRIPTION_LIMIT
    default_base_url: ClassVar[str] = "https://openapi.zalo.me"
    default_oauth_url: ClassVar[str] = "https://oauth.zaloapp.com"
    sandbox_prefix: ClassVar[str] = "zalo"

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str | None = None,
        *,
        settings: ZaloSettings | None = None,
        token_store: TokenStore | None = None,
        oauth_base_url: str | None = None,
    ) -> None:
        super().__init__(http, base_url)
        self.settings = settings or ZaloSettings()
        self.token_store = token_store
        # the sandbox serves OAuth at <sandbox>/zalo-oauth beside <sandbox>/zalo
        self.oauth_base = (
            oauth_base_url or (f"{self.api_base}-oauth" if base_url else self.default_oauth_url)
        ).rstrip("/")
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

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
                code, str(reply.get("message", "")), self.settings, idempotent=idempotent
            )
        return reply

    # --- tokens -------------------------------------------------------------------------
    async def refresh(self, account: ChannelAccount, credentials: Credentials) -> Credentials:
        """Rotate the token pair, storing the new pair before anything uses it."""
        if self.token_store is None:
            raise SendError(ErrorKind.AUTH, "Zalo token expired and no token store is configured")
        async with self._locks[account.id]:
            stored = await self.token_store.load(account.id)
            now = datetime.now(UTC)
            if (
                stored is not None
                and stored.access_token != credentials.token
                and (stored.expires_at - now).total_seconds() > self.settings.refresh_margin_s
            ):
                return self._credentials(credentials, stored)  # another worker rotated already
            refresh_token = (
                stored.refresh_token if stored else credentials.extra.get("refresh_token", "")
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
            tokens = ZaloTokens(
                str(reply["access_token"]),
                str(reply["refresh_token"]),
                now + timedelta(seconds=float(reply.get("expires_in", 90000))),
            )
            try:
                await self.token_store.save(
                    account.id, tokens.access_token, tokens.refresh_token, tokens.expires_at
                )
            except Exception as error:
                # The new pair is dropped unused: the old refresh token stays the valid one.
                raise SendError(
                    ErrorKind.BEFORE_SEND,
                    f"could not store rotated Zalo tokens ({error}); the new pair was not used",
                ) from error
            return self._credentials(credentials, tokens)

    @staticmethod
    def _credentials(base: Credentials, tokens: ZaloTokens) -> Credentials:
        extra = {
            **base.extra,
            "refresh_token": tokens.refresh_token,
            "expires_at": tokens.expires_at.isoformat(),
        }
        return Credentials(tokens.access_token, extra)

    def _expiring(self, credentials: Credentials) -> bool:
        raw = credentials.extra.get("expires_at")
        if not raw:
            return False
        try:
            expires = datetime.fromisoformat(raw)
        except ValueError:
            return False
        if expires.tzinfo is None:
            return True  # cannot tell: refresh to be safe
        left = (expires - datetime.now(UTC)).total_seconds()
        return left < self.settings.refresh_margin_s

    # --- send ---------------------------------------------------------------------------
    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        can_refresh = self.token_store is not None and "app_id" in credentials.extra
        if can_refresh and self._expiring(credentials):
            credentials = await self.refresh(account, credentials)
        try:
            created = await self._api(
                "POST",
                "/v2.0/article/create",
                credentials.token,
                idempotent=False,
                json=dict(payload),
            )
        except SendError as error:
            if error.kind is not ErrorKind.AUTH or not can_refresh:
                raise
            # the create was refused for the token: nothing was published, refresh and retry
            credentials = await self.refresh(account, credentials)
            created = await self._api(
                "POST",
                "/v2.0/article/create",
                credentials.token,
                idempotent=False,
                json=dict(payload),
            )
        token = str((created.get("data") or {}).get("token", ""))
        if not token:
            raise SendError(ErrorKind.UNKNOWN_OUTCOME, "Zalo accepted the article without a token")
        return await self._verify(credentials, token)

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

    # --- reconcile ----------------------------------------------------------------------
    async def find_published(
        self, account: ChannelAccount, credentials: Credentials, body_hash: str, since: datetime
    ) -> Receipt | None:
        since_ms = since.timestamp() * 1000
        for page in range(self.settings.read_back_pages):
            reply = await self._api(
                "GET",
                "/v2.0/article/getslice",
                credentials.token,
                idempotent=True,
                params={"offset": page * 10, "limit": 10, "type": "normal"},
            )
            medias = (reply.get("data") or {}).get("medias") or []
            for media in medias:
                if float(media.get("create_date", 0)) < since_ms:
                    return None  # newest first: everything after is older
                if sha256_hex(str(media.get("title", ""))) == body_hash:
                    return Receipt(str(media["id"]), media.get("link_view") or None)
            if len(medias) < 10:
                break
        return None
