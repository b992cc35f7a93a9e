"""X (Twitter) through API v2 `POST /2/tweets` (httpx, OAuth 2 user token as bearer).

Payload: `{"text"}` ≤ 280 weighted characters (twitter-text v3: weight 2 outside
U+0000–U+10FF, so Vietnamese letters in U+1Exx count 2; every URL counts 23). The post is the
title, the link and the source line; hashtags when they fit. `can_read_back` is False: X
rewrites links to t.co in what it returns, and reading timelines needs a paid tier.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

from channels.base import Adapted, Channel, Credentials, ErrorKind, Receipt, SendError, Template
from channels.compose import compose, effective_template
from channels.httpio import json_body, request, retry_after_header
from publisher.domain import Article, ChannelAccount, Platform, Unit, sha256_hex
from publisher.text import X_LIMIT, x_weighted_length


def classify_x_reply(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str], now: float
) -> SendError:
    detail = str(body.get("detail") or body.get("title") or f"HTTP {status}")
    code = str(status)
    if status == 401:
        return SendError(ErrorKind.AUTH, f"X token rejected: {detail}", platform_code=code)
    if status == 429:
        lowered = {k.lower(): v for k, v in headers.items()}
        wait: float | None = None
        reset = lowered.get("x-rate-limit-reset")
        if reset and reset.isdigit():
            wait = max(0.0, float(reset) - now)
        elif lowered.get("retry-after", "").isdigit():
            wait = float(lowered["retry-after"])
        return SendError(
            ErrorKind.RATE_LIMITED, f"X rate limit: {detail}", retry_after=wait, platform_code=code
        )
    if 400 <= status < 500:  # 400 invalid, 403 duplicate or not permitted
        return SendError(ErrorKind.PERMANENT, f"X refused: {detail}", platform_code=code)
    return SendError(
        ErrorKind.UNKNOWN_OUTCOME,
        f"X answered {status} after the request was sent",
        platform_code=code,
    )


class XChannel(Channel):
    platform: ClassVar[Platform] = Platform.X
    display_name: ClassVar[str] = "X"
    can_read_back: ClassVar[bool] = False
    text_limit: ClassVar[int | None] = X_LIMIT
    default_base_url: ClassVar[str] = "https://api.x.com"
    sandbox_prefix: ClassVar[str] = "x"

    def adapt(self, article: Article, unit: Unit, template: Template) -> Adapted:
        template, problems = effective_template(article, template)
        composed = compose(
            article,
            template,
            limit=X_LIMIT,
            measure=x_weighted_length,
            with_body=False,
            separator="\n",
        )
        problems += composed.problems
        if any(p.severity.value == "error" for p in problems):
            return Adapted(None, tuple(problems))
        payload = {"text": composed.text}
        return Adapted(payload, tuple(problems), match_hash=self.match_hash(payload))

    def match_hash(self, payload: Mapping[str, Any]) -> str:
        return sha256_hex(str(payload.get("text", "")))

    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        response = await request(
            self.http,
            "POST",
            f"{self.api_base}/2/tweets",
            json={"text": payload["text"]},
            headers={"Authorization": f"Bearer {credentials.token}"},
        )
        body = json_body(response)
        data = body.get("data")
        if response.status_code in (200, 201) and isinstance(data, dict) and data.get("id"):
            tweet_id = str(data["id"])
            return Receipt(tweet_id, f"https://x.com/i/web/status/{tweet_id}")
        error = classify_x_reply(response.status_code, body, response.headers, time.time())
        if error.retry_after is None and response.status_code == 429:
            error.retry_after = retry_after_header(response)
        raise error
