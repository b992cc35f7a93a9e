"""Viber channel posts through the Channels Post API (httpx; viberbot is unmaintained).

Payload: `{"type": "text", "text"}` (≤ 7000 characters). `send` adds `from`, the channel's
superadmin member id, from `Credentials.extra["from"]` or by asking `/pa/get_account_info`.
Every reply is HTTP 200 with `status` (0 = ok) in the body, so the body is always read.
Viber cannot read a channel's posts back: `can_read_back` is False.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from channels.base import Adapted, Channel, Credentials, ErrorKind, Receipt, SendError, Template
from channels.compose import compose, effective_template
from channels.httpio import json_body, request, status_5xx
from publisher.domain import Article, ChannelAccount, Platform, Unit, sha256_hex

TEXT_LIMIT = 7000
RATE_LIMIT_WAIT_S = 10.0  # Viber allows 500 requests per 10 s and gives no wait time

AUTH_STATUSES = frozenset({2})
RATE_STATUSES = frozenset({12})
PERMANENT_STATUSES = frozenset({1, 3, 4, 5, 6, 7, 8, 9, 10, 13})


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


class ViberChannel(Channel):
    platform: ClassVar[Platform] = Platform.VIBER
    display_name: ClassVar[str] = "Viber"
    can_read_back: ClassVar[bool] = False
    text_limit: ClassVar[int | None] = TEXT_LIMIT
    default_base_url: ClassVar[str] = "https://chatapi.viber.com"
    sandbox_prefix: ClassVar[str] = "viber"

    def adapt(self, article: Article, unit: Unit, template: Template) -> Adapted:
        template, problems = effective_template(article, template)
        composed = compose(article, template, limit=TEXT_LIMIT, measure=len, full_body=True)
        problems += composed.problems
        if any(p.severity.value == "error" for p in problems):
            return Adapted(None, tuple(problems))
        payload: dict[str, Any] = {"type": "text", "text": composed.text}
        return Adapted(payload, tuple(problems), match_hash=self.match_hash(payload))

    def match_hash(self, payload: Mapping[str, Any]) -> str:
        return sha256_hex(str(payload.get("text", "")))

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

    async def sender_id(self, credentials: Credentials) -> str:
        known = credentials.extra.get("from")
        if known:
            return known
        info = await self._call("/pa/get_account_info", credentials.token, {}, idempotent=True)
        for member in info.get("members", []):
            if member.get("role") == "superadmin":
                return str(member["id"])
        raise SendError(ErrorKind.PERMANENT, "Viber channel has no superadmin member to post as")

    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        sender = await self.sender_id(credentials)
        reply = await self._call(
            "/pa/post", credentials.token, {**payload, "from": sender}, idempotent=False
        )
        return Receipt(str(reply.get("message_token")), None)
