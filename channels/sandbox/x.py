"""X API v2 emulator: POST /2/tweets.

Counts text with twitter-text v3 weights (publisher.text.x_weighted_length), refuses
duplicates like X (403), and answers rate limits with 429 and `x-rate-limit-reset`.
The posting user is named by the bearer token (`<account>[.<anything>]`).
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels.sandbox.core import Fault, apply_delay
from channels.sandbox.web import LostReply, json_reply, state_of
from publisher.text import X_LIMIT, x_weighted_length


def problem(
    status: int,
    title: str,
    detail: str,
    kind: str = "about:blank",
    headers: dict[str, str] | None = None,
) -> Response:
    return json_reply(
        {"title": title, "detail": detail, "type": kind, "status": status},
        status=status,
        headers=headers,
    )


def _fault_reply(fault: Fault, now: float) -> Response:
    if fault.kind == "expired_token":
        return problem(401, "Unauthorized", "Unauthorized")
    if fault.kind == "rate_limit":
        reset = int(now + fault.wait)
        return problem(
            429,
            "Too Many Requests",
            "Too Many Requests",
            headers={
                "x-rate-limit-limit": "100",
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(reset),
            },
        )
    if fault.kind == "server_error":
        status = fault.status or 503
        return problem(status, "Service Unavailable", "Service Unavailable")
    status = fault.status or 403
    return problem(
        status, "Forbidden", str(fault.code or "You are not permitted to perform this action.")
    )


async def create_tweet(request: Request) -> Response:
    state = state_of(request)
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    if not state.token_valid(token):
        return problem(401, "Unauthorized", "Unauthorized")
    account = state.account_of_token(token)
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return problem(
            400,
            "Invalid Request",
            "One or more parameters to your request was invalid.",
            "https://api.twitter.com/2/problems/invalid-request",
        )
    fault = await apply_delay(state.pick_fault("x", account))
    if fault is not None and fault.kind != "reply_lost":
        return _fault_reply(fault, state.now().timestamp())
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        return problem(
            400,
            "Invalid Request",
            "text: must not be empty",
            "https://api.twitter.com/2/problems/invalid-request",
        )
    if x_weighted_length(text) > X_LIMIT:
        return problem(
            400,
            "Invalid Request",
            "Your Tweet text is too long.",
            "https://api.twitter.com/2/problems/invalid-request",
        )
    if any(e.payload.get("text") == text for e in state.entries("x", account)):
        return problem(
            403, "Forbidden", "You are not allowed to create a Tweet with duplicate content."
        )
    tweet_id = str(1_900_000_000_000_000_000 + state.next_id())
    state.record("x", account, tweet_id, text, {"text": text})
    if fault is not None:
        return LostReply()
    return json_reply(
        {"data": {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}}, status=201
    )


routes = [Route("/2/tweets", create_tweet, methods=["POST"])]
