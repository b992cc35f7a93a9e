"""Viber channel posts through the Channels Post API (httpx; viberbot is unmaintained).

Payloads, chosen by `adapt`:
- `{"type": "picture", "text", "media"}` when the article has an image: the caption is
  `text`, at most 768 characters, and `media` a JPEG URL of at most 1 MB (Viber REST API,
  picture message: "text … Max 768 characters", "media … Max size 1 MB … JPEG"); the post
  shows the picture with the title, lead and link;
- `{"type": "text", "text"}` (≤ 7000 characters) otherwise.
A `url` message carries only the link (`media`), no text, so it would drop the title and the
directive's wording: `adapt` never chooses it (the emulator accepts it).
`send` adds `from`, the channel's superadmin member id, from `Credentials.extra["from"]` or
by asking `/pa/get_account_info`. Every reply is HTTP 200 with `status` (0 = ok) in the body.

Webhook: Viber refuses every post with status 10 (webhookNotSet) until the channel has a
webhook (`POST /pa/set_webhook {url}`); Viber then calls the URL with `event: webhook`,
signed with `X-Viber-Content-Signature` (HMAC-SHA256 of the body keyed with the channel's
token), and sets it only if the URL answers 200. `publisher run` serves that URL
(`publisher.viber_webhook`, `/viber/webhook/<account id>`). On status 10 this channel sets
the webhook at `<public_url>/viber/webhook/<account id>` and posts once more: status 10
proves nothing was posted, so the second post cannot duplicate the first. Without a public
URL the post fails with a message telling the admin what to configure.

Viber cannot read a channel's posts back (`can_read_back` is False), and the Channels Post
API has no call to delete or edit a post (it offers `post`, `set_webhook` and
`get_account_info` only): `withdraw_mode` is MANUAL, a person removes it in the app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

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
    WithdrawMode,
)
from channels.compose import compose, effective_template
from channels.httpio import json_body, request, status_5xx
from channels.media import VIBER_PICTURE
from publisher.domain import Article, ChannelAccount, Platform, Unit, sha256_hex

TEXT_LIMIT = 7000
CAPTION_LIMIT = 768  # picture message `text`
PICTURE_MAX_BYTES = VIBER_PICTURE.max_bytes
RATE_LIMIT_WAIT_S = 10.0  # Viber allows 500 requests per 10 s and gives no wait time
WEBHOOK_NOT_SET = 10
WEBHOOK_PATH = "/viber/webhook/{account}"

AUTH_STATUSES = frozenset({2})
RATE_STATUSES = frozenset({12})
PERMANENT_STATUSES = frozenset({1, 3, 4, 5, 6, 7, 8, 9, 10, 13})

Fetch = Callable[[str], Awaitable[bytes]]


def classify_viber_status(status: int, message: str) -> SendError:
    code = str(status)
    if status in AUTH_STATUSES:
        return SendError(ErrorKind.AUTH, f"Viber token rejected: {message}", platform_code=code)
    if status in RATE_STATUSES:
        return SendError(
            ErrorKind.RATE_LIMITED,
            f"Viber: {message}",
            retry_after=RATE_LIMIT_WAIT_S,
            platform_code=code,
        )
    if status in PERMANENT_STATUSES:
        return SendError(ErrorKind.PERMANENT, f"Viber refused: {message}", platform_code=code)
    # 11 and anything undocumented: the post may have been processed
    return SendError(
        ErrorKind.UNKNOWN_OUTCOME, f"Viber status {status}: {message}", platform_code=code
    )


def webhook_url(public_url: str, account_id: str) -> str:
    """Where `publisher run` takes this account's Viber callbacks."""
    return public_url.rstrip("/") + WEBHOOK_PATH.format(account=quote(account_id, safe=""))


def _is_jpeg(data: bytes) -> bool:
    return data[:3] == b"\xff\xd8\xff"


class ViberChannel(Channel):
    platform: ClassVar[Platform] = Platform.VIBER
    display_name: ClassVar[str] = "Viber"
    can_read_back: ClassVar[bool] = False
    text_limit: ClassVar[int | None] = TEXT_LIMIT
    default_base_url: ClassVar[str] = "https://chatapi.viber.com"
    sandbox_prefix: ClassVar[str] = "viber"
    withdraw_mode: ClassVar[WithdrawMode] = WithdrawMode.MANUAL

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str | None = None,
        *,
        public_url: str | None = None,
        fetch: Fetch | None = None,
    ) -> None:
        super().__init__(http, base_url)
        # where `publisher run` is reachable by Viber (PUBLISHER_PUBLIC_URL); None: not set
        self.public_url = public_url.rstrip("/") if public_url else None
        # With a fetcher, a picture is checked (JPEG, ≤ 1 MB) before it is posted.
        self.fetch = fetch

    # --- adapt --------------------------------------------------------------------------
    def adapt(self, article: Article, unit: Unit, template: Template) -> Adapted:
        template, problems = effective_template(article, template)
        images = [u for u in article.images if u.startswith(("http://", "https://"))]
        limit = CAPTION_LIMIT if images else TEXT_LIMIT
        composed = compose(article, template, limit=limit, measure=len, full_body=not images)
        problems += composed.problems
        if any(p.severity is Severity.ERROR for p in problems):
            return Adapted(None, tuple(problems))
        payload: dict[str, Any]
        if images:
            payload = {"type": "picture", "text": composed.text, "media": images[0]}
            if len(images) > 1:
                problems.append(
                    Problem(
                        Severity.INFO,
                        "extra_images_dropped",
                        f"Viber đăng một ảnh; bỏ {len(images) - 1} ảnh còn lại "
                        "(a Viber post carries one picture; the others are left out)",
                    )
                )
        else:
            payload = {"type": "text", "text": composed.text}
        return Adapted(payload, tuple(problems), match_hash=self.match_hash(payload))

    def match_hash(self, payload: Mapping[str, Any]) -> str:
        return sha256_hex(str(payload.get("text", "")))

    # --- HTTP ---------------------------------------------------------------------------
    async def _call(
        self, path: str, token: str, body: dict[str, Any], *, idempotent: bool
    ) -> dict[str, Any]:
        response: httpx.Response = await request(
            self.http,
            "POST",
            f"{self.api_base}{path}",
            idempotent=idempotent,
            json=body,
            headers={"X-Viber-Auth-Token": token},
        )
        if response.status_code >= 500:
            raise status_5xx(response, "Viber", idempotent=idempotent)
        reply = json_body(response)
        status = reply.get("status")
        if response.status_code != 200 or not isinstance(status, int):
            kind = ErrorKind.BEFORE_SEND if idempotent else ErrorKind.UNKNOWN_OUTCOME
            raise SendError(kind, f"Viber answered {response.status_code} without a status")
        if status != 0:
            raise classify_viber_status(status, str(reply.get("status_message", "")))
        return reply

    async def account_info(self, credentials: Credentials) -> dict[str, Any]:
        return await self._call("/pa/get_account_info", credentials.token, {}, idempotent=True)

    async def sender_id(self, credentials: Credentials) -> str:
        known = credentials.extra.get("from")
        if known:
            return known
        info = await self.account_info(credentials)
        for member in info.get("members", []):
            if member.get("role") == "superadmin":
                return str(member["id"])
        raise SendError(ErrorKind.PERMANENT, "Viber channel has no superadmin member to post as")

    # --- webhook ------------------------------------------------------------------------
    async def set_webhook(
        self, account: ChannelAccount, credentials: Credentials, url: str
    ) -> None:
        """Point the channel's webhook at `url` (Viber calls it back first and sets it only
        if it answers 200). Setting the same URL again is harmless."""
        if self.base_url is None and not url.startswith("https://"):
            raise SendError(
                ErrorKind.PERMANENT,
                f"Viber chỉ nhận webhook HTTPS: {url} (Viber webhooks must use HTTPS; "
                "set PUBLISHER_PUBLIC_URL to an https:// address)",
            )
        try:
            await self._call("/pa/set_webhook", credentials.token, {"url": url}, idempotent=True)
        except SendError as error:
            raise SendError(
                error.kind,
                f"Viber không đặt được webhook {url} cho {account.id}: {error.message} "
                f"(could not set the webhook: Viber must reach {url} and get 200; check that "
                "`publisher run` is reachable there)",
                retry_after=error.retry_after,
                platform_code=error.platform_code,
            ) from error

    # --- send ---------------------------------------------------------------------------
    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        sender = await self.sender_id(credentials)
        body, problems = await self._checked(dict(payload))
        body["from"] = sender
        try:
            reply = await self._call("/pa/post", credentials.token, body, idempotent=False)
        except SendError as error:
            if error.platform_code != str(WEBHOOK_NOT_SET):
                raise
            # Viber refused the post for want of a webhook: nothing was posted, so setting
            # the webhook and posting once more cannot make a second copy.
            if self.public_url is None:
                raise SendError(
                    ErrorKind.PERMANENT,
                    f"Kênh Viber {account.id} chưa có webhook và chưa cấu hình "
                    "PUBLISHER_PUBLIC_URL: đặt biến này là địa chỉ HTTPS công khai của "
                    "`publisher run` (docs/deployment.md) rồi gửi lại "
                    f"(Viber refuses posts until a webhook is set; set PUBLISHER_PUBLIC_URL so "
                    f"the publisher can set {WEBHOOK_PATH.format(account=account.id)})",
                    platform_code=error.platform_code,
                ) from error
            try:
                await self.set_webhook(
                    account, credentials, webhook_url(self.public_url, account.id)
                )
            except SendError as hook_error:
                if hook_error.kind is not ErrorKind.PERMANENT:
                    raise
                # e.g. our endpoint was briefly unreachable (a restart): nothing was posted,
                # so the delivery may be tried again later (bounded by the retry policy)
                raise SendError(
                    ErrorKind.BEFORE_SEND,
                    f"{hook_error.message}; nothing was posted",
                    platform_code=hook_error.platform_code,
                ) from hook_error
            reply = await self._call("/pa/post", credentials.token, body, idempotent=False)
        return Receipt(str(reply.get("message_token")), None, problems=tuple(problems))

    async def _checked(self, payload: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
        """A picture Viber would refuse (not a JPEG, over 1 MB, unreachable) goes as a text
        post with the same caption, so the match hash does not change; said in a warning."""
        if payload.get("type") != "picture" or self.fetch is None:
            return payload, []
        url = str(payload.get("media", ""))
        try:
            data = await self.fetch(url)
        except Exception as error:
            why = f"không tải được ảnh (image not fetched: {error})"
        else:
            if not _is_jpeg(data):
                why = "ảnh không phải JPEG (not a JPEG)"
            elif len(data) > PICTURE_MAX_BYTES:
                why = f"ảnh lớn hơn 1 MB ({len(data)} bytes; over 1 MB)"
            else:
                return payload, []
        text = {"type": "text", "text": payload.get("text", "")}
        problem = Problem(
            Severity.WARNING,
            "image_unusable",
            f"Viber: {why}; đăng chữ không kèm ảnh {url} (posted as text without the picture)",
        )
        return text, [problem]

    # --- account check ------------------------------------------------------------------
    async def check(self, account: ChannelAccount, credentials: Credentials) -> AccountCheck:
        """`get_account_info`: the channel's name, a superadmin to post as, the webhook."""
        try:
            info = await self.account_info(credentials)
        except SendError as error:
            if error.kind is not ErrorKind.AUTH:
                raise
            return AccountCheck(False, f"Viber từ chối token (token refused): {error.message}")
        name = str(info.get("name", ""))
        superadmin = any(m.get("role") == "superadmin" for m in info.get("members", []))
        webhook = str(info.get("webhook") or "")
        parts = [f"Kênh {name} ({info.get('id', account.external_id)})"]
        parts.append(
            "có superadmin (superadmin present)"
            if superadmin
            else "không có superadmin để đăng bài (no superadmin to post as)"
        )
        if webhook:
            parts.append(f"webhook {webhook}")
        elif self.public_url:
            parts.append(
                "chưa có webhook, sẽ đặt khi đăng bài đầu tiên (webhook not set; it is set "
                f"on the first post: {webhook_url(self.public_url, account.id)})"
            )
        else:
            parts.append(
                "chưa có webhook và chưa cấu hình PUBLISHER_PUBLIC_URL: chưa đăng được "
                "(no webhook and no PUBLISHER_PUBLIC_URL: posts will be refused)"
            )
        ok = superadmin and bool(webhook or self.public_url)
        return AccountCheck(ok, "; ".join(parts))
