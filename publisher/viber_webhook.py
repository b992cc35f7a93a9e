"""Viber's callbacks to `publisher run`: `POST /viber/webhook/{account id}`.

Viber posts to a channel only once it has a webhook, and sets one only after calling the URL
with `event: webhook` and getting 200 (channels/viber.py). Every callback is signed:
`X-Viber-Content-Signature` is the hex HMAC-SHA256 of the raw body keyed with the channel's
auth token, so the account's own token (resolved as the worker resolves it) checks it.
A callback that is not signed by that token is refused (403) and logged; an unknown account
is 404. Events are written to the log (`publisher.viber`): `webhook` (the set-up check),
`subscribed`, `unsubscribed`, and `failed` (a message Viber could not deliver, as a warning);
anything else is acknowledged and logged at debug level.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from channels.base import Credentials
from publisher.domain import ChannelAccount, Platform

log = logging.getLogger("publisher.viber")
SIGNATURE_HEADER = "x-viber-content-signature"
# Viber's messages are at most 30 KB; a callback far larger is not Viber's (413, unread).
MAX_BODY_BYTES = 256 * 1024


def signature(token: str, body: bytes) -> str:
    return hmac.new(token.encode("utf-8"), body, hashlib.sha256).hexdigest()


async def read_capped(request: Request) -> bytes | None:
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def make_viber_webhook_app(
    accounts: Callable[[str], ChannelAccount | None],
    credentials: Callable[[ChannelAccount], Credentials],
) -> Starlette:
    """Mounted at `/viber` by `publisher run` (publisher.server)."""

    async def webhook(request: Request) -> JSONResponse:
        account_id = request.path_params["account_id"]
        account = accounts(account_id)
        if account is None or account.platform is not Platform.VIBER:
            return JSONResponse({"error": f"no Viber account {account_id}"}, status_code=404)
        try:
            token = credentials(account).token
        except Exception as error:  # no usable token: cannot check, so cannot accept
            log.warning("viber %s: callback refused, no token to check it: %s", account_id, error)
            return JSONResponse({"error": "no credentials for this account"}, status_code=503)
        body = await read_capped(request)
        if body is None:
            return JSONResponse({"error": "body too large"}, status_code=413)
        given = request.headers.get(SIGNATURE_HEADER, "")
        if not hmac.compare_digest(given.lower(), signature(token, body)):
            log.warning("viber %s: callback with a bad signature refused", account_id)
            return JSONResponse({"error": "bad signature"}, status_code=403)
        try:
            event: Any = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        kind = str(event.get("event", "")) if isinstance(event, dict) else ""
        if kind == "webhook":
            log.info("viber %s: webhook confirmed", account_id)
        elif kind in ("subscribed", "unsubscribed"):
            user = (event.get("user") or {}).get("id") or event.get("user_id") or "?"
            log.info("viber %s: %s (user %s)", account_id, kind, user)
        elif kind == "failed":
            log.warning(
                "viber %s: message %s failed: %s",
                account_id,
                event.get("message_token"),
                event.get("desc", ""),
            )
        else:
            log.debug("viber %s: event %s", account_id, kind or "(none)")
        return JSONResponse({"status": 0})

    return Starlette(routes=[Route("/webhook/{account_id}", webhook, methods=["POST"])])
