"""X (Twitter) through API v2 `POST /2/tweets` (httpx, OAuth 2 user token as bearer).

Payload: `{"text"}` ≤ 280 weighted characters (twitter-text v3: weight 2 outside
U+0000–U+10FF, so Vietnamese letters in U+1Exx count 2; every URL counts 23). The post is the
title, the link and the source line; hashtags when they fit. `can_read_back` is False: X
rewrites links to t.co in what it returns, and reading timelines needs a paid tier.

Tokens (docs/channels.md, "YouTube and X tokens"): OAuth 2.0 user-context access tokens live
two hours. With `offline.access` the account's secret carries a refresh token and `client_id`
(and `client_secret` for a confidential client); `channels.token_renewal.TokenRenewal` renews
the access token before it expires or once after a 401, through `channels.x_oauth.refresh`,
and saves the rotated pair through the `TokenStore` before using it. Consent:
`python -m channels.x authorize …` / `exchange …` (channels.x_oauth).

Recall: `withdraw` is `DELETE /2/tweets/:id` (404 = already gone). `check` is
`GET /2/users/me`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel

from channels import x_oauth
from channels.base import (
    AccountCheck,
    Adapted,
    Channel,
    Credentials,
    ErrorKind,
    Receipt,
    SendError,
    Template,
    TokenSet,
    TokenStore,
    WithdrawMode,
)
from channels.compose import compose, effective_template
from channels.httpio import json_body, request, retry_after_header
from channels.token_renewal import Renewed, TokenRenewal
from publisher.domain import Article, ChannelAccount, Platform, Unit, sha256_hex
from publisher.text import X_LIMIT, x_weighted_length

POST_SCOPES = frozenset({"tweet.read", "tweet.write", "users.read"})


class XSettings(BaseModel):
    refresh_margin_s: float = 300.0  # renew when the access token has less left than this


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
    default_base_url: ClassVar[str] = x_oauth.API_BASE
    sandbox_prefix: ClassVar[str] = "x"
    withdraw_mode: ClassVar[WithdrawMode] = WithdrawMode.DELETE

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str | None = None,
        *,
        settings: XSettings | None = None,
        token_store: TokenStore | None = None,
    ) -> None:
        super().__init__(http, base_url)
        self.settings = settings or XSettings()
        self.tokens = TokenRenewal(
            self.display_name,
            token_store,
            margin_s=self.settings.refresh_margin_s,
            how_to_reauthorise=x_oauth.REAUTHORISE,
        )

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

    # --- tokens -------------------------------------------------------------------------
    def _refresher(self, credentials: Credentials) -> Callable[[str], Awaitable[Renewed]]:
        async def renew(refresh_token: str) -> Renewed:
            client_id = credentials.extra.get("client_id", "")
            if not client_id:
                raise SendError(
                    ErrorKind.AUTH,
                    f"X token cannot be renewed: client_id is missing from the account's "
                    f"credentials; {x_oauth.REAUTHORISE}",
                )
            return await x_oauth.refresh(
                self.http,
                self.api_base,
                client_id,
                credentials.extra.get("client_secret") or None,
                refresh_token,
            )

        return renew

    async def _call(
        self,
        account: ChannelAccount,
        credentials: Credentials,
        needs: frozenset[str],
        call: Callable[[str], Awaitable[httpx.Response]],
    ) -> httpx.Response:
        """`call(access_token)` with a fresh token, renewed once if X answers 401. A 401 is a
        refusal: nothing was published, so calling again is safe."""
        refresher = self._refresher(credentials)
        tokens, renewed = await self.tokens.fresh(account.id, credentials, refresher)
        self._require(account, credentials, needs)
        response = await call(tokens.access_token)
        if response.status_code != 401 or renewed or not self._can_renew(credentials, tokens):
            return response
        tokens = await self.tokens.renew(account.id, credentials, tokens, refresher)
        self._require(account, credentials, needs)
        return await call(tokens.access_token)

    @staticmethod
    def _can_renew(credentials: Credentials, tokens: TokenSet) -> bool:
        return bool(tokens.refresh_token or credentials.extra.get("refresh_token"))

    def _require(
        self, account: ChannelAccount, credentials: Credentials, needs: frozenset[str]
    ) -> None:
        """Fail clearly, before calling, when the token is known to lack a scope: every call
        of the account would fail the same way, so it is AUTH (re-consent), not one post."""
        granted = self.tokens.scopes(account.id, credentials)
        if granted is None:
            return
        missing = needs - granted
        if missing:
            raise SendError(
                ErrorKind.AUTH,
                f"Token X thiếu quyền {', '.join(sorted(missing))} (the X token lacks "
                f"{', '.join(sorted(missing))}); {x_oauth.REAUTHORISE}",
                platform_code="insufficient_scope",
            )

    # --- send ---------------------------------------------------------------------------
    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        async def post(token: str) -> httpx.Response:
            return await request(
                self.http,
                "POST",
                f"{self.api_base}/2/tweets",
                json={"text": payload["text"]},
                headers={"Authorization": f"Bearer {token}"},
            )

        response = await self._call(account, credentials, POST_SCOPES, post)
        body = json_body(response)
        data = body.get("data")
        if response.status_code in (200, 201) and isinstance(data, dict) and data.get("id"):
            tweet_id = str(data["id"])
            return Receipt(tweet_id, f"https://x.com/i/web/status/{tweet_id}")
        error = classify_x_reply(response.status_code, body, response.headers, time.time())
        if error.retry_after is None and response.status_code == 429:
            error.retry_after = retry_after_header(response)
        raise error

    # --- recall and account checks --------------------------------------------------------
    async def withdraw(
        self,
        account: ChannelAccount,
        credentials: Credentials,
        remote_id: str,
        *,
        notice: str,
    ) -> Receipt:
        """`DELETE /2/tweets/:id`; a post X no longer has counts as withdrawn."""
        del notice  # X posts are deleted, not edited

        async def delete(token: str) -> httpx.Response:
            # deleting twice is harmless, so a lost reply is safe to retry (idempotent)
            return await request(
                self.http,
                "DELETE",
                f"{self.api_base}/2/tweets/{remote_id}",
                idempotent=True,
                headers={"Authorization": f"Bearer {token}"},
            )

        response = await self._call(account, credentials, POST_SCOPES, delete)
        body = json_body(response)
        data = body.get("data")
        if response.status_code == 404:
            return Receipt(remote_id, None)
        if response.status_code == 200 and isinstance(data, dict) and data.get("deleted") is True:
            return Receipt(remote_id, None)
        if response.status_code == 200:
            raise SendError(
                ErrorKind.BEFORE_SEND,
                f"X did not delete post {remote_id} ({body}); try again",
                platform_code="200",
            )
        error = classify_x_reply(response.status_code, body, response.headers, time.time())
        if error.kind is ErrorKind.UNKNOWN_OUTCOME:
            error.kind = ErrorKind.BEFORE_SEND  # a delete can be repeated
        raise error

    async def check(self, account: ChannelAccount, credentials: Credentials) -> AccountCheck:
        """`GET /2/users/me`: whose token this is, its scopes and when it expires."""

        async def me(token: str) -> httpx.Response:
            return await request(
                self.http,
                "GET",
                f"{self.api_base}/2/users/me",
                idempotent=True,
                headers={"Authorization": f"Bearer {token}"},
            )

        try:
            response = await self._call(
                account, credentials, frozenset({"tweet.read", "users.read"}), me
            )
        except SendError as refused:
            if refused.kind is ErrorKind.AUTH:
                return AccountCheck(False, refused.message)
            raise
        body = json_body(response)
        data = body.get("data")
        if response.status_code != 200 or not isinstance(data, dict):
            failed = classify_x_reply(response.status_code, body, response.headers, time.time())
            if failed.kind in (ErrorKind.AUTH, ErrorKind.PERMANENT):
                return AccountCheck(False, failed.message)
            if failed.kind is ErrorKind.UNKNOWN_OUTCOME:
                failed.kind = ErrorKind.BEFORE_SEND
            raise failed
        tokens = await self.tokens.current(account.id, credentials)
        scopes = self.tokens.scopes(account.id, credentials) or frozenset()
        username, user_id = str(data.get("username", "")), str(data.get("id", ""))
        detail = f"Tài khoản X @{username} ({user_id}) · X account @{username} ({user_id})"
        ok = True
        if scopes and not scopes >= POST_SCOPES:
            ok = False
            lacking = " ".join(sorted(POST_SCOPES - scopes))
            detail += f"; thiếu quyền đăng bài (cannot post: lacks {lacking})"
        if scopes and "offline.access" not in scopes:
            detail += (
                "; không có offline.access: token hết hạn sau 2 giờ (no refresh: expires in 2 h)"
            )
        return AccountCheck(ok, detail, tokens.expires_at, tuple(sorted(scopes)))


# --- one-time consent (a person runs it; never in tests) ---------------------------------------


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m channels.x", description="X OAuth 2.0 consent with PKCE"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("authorize", help="print the URL a person opens to approve")
    start.add_argument("--client-id", required=True)
    start.add_argument("--redirect-uri", required=True)
    start.add_argument("--scopes", default=" ".join(x_oauth.DEFAULT_SCOPES))
    start.add_argument("--authorize-url", default=x_oauth.AUTHORIZE_URL)
    finish = sub.add_parser("exchange", help="trade the code for tokens; prints the secret")
    finish.add_argument("--client-id", required=True)
    finish.add_argument("--redirect-uri", required=True)
    finish.add_argument("--verifier", required=True)
    finish.add_argument("--code", required=True)
    finish.add_argument("--api-base", default=x_oauth.API_BASE)
    args = parser.parse_args(argv)
    if args.command == "authorize":
        pkce, state = x_oauth.new_pkce(), secrets.token_urlsafe(16)
        url = x_oauth.authorize_url(
            args.client_id,
            args.redirect_uri,
            state,
            pkce.challenge,
            tuple(args.scopes.split()),
            base=args.authorize_url,
        )
        print(json.dumps({"url": url, "state": state, "verifier": pkce.verifier}, indent=2))
        return 0

    async def exchange() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30.0) as http:
            return await x_oauth.exchange_code(
                http,
                args.client_id,
                os.environ.get("X_CLIENT_SECRET") or None,
                args.code,
                args.redirect_uri,
                args.verifier,
                api_base=args.api_base,
            )

    try:
        print(json.dumps(asyncio.run(exchange()), indent=2, ensure_ascii=False))
    except SendError as error:
        print(f"exchange failed: {error.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover - interactive
    raise SystemExit(_main(sys.argv[1:]))
