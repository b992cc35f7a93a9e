"""X API v2 emulator: `POST /2/tweets`, `DELETE /2/tweets/:id`, `GET /2/users/me`, and X's
OAuth 2.0 (`GET /i/oauth2/authorize`, `POST /2/oauth2/token`).

Counts text with twitter-text v3 weights (publisher.text.x_weighted_length), refuses
duplicates like X (403), and answers rate limits with 429 and `x-rate-limit-reset`.

Strict about tokens (channels.sandbox.oauth): X's OAuth 2.0 user-context access tokens are
minted by its token endpoint and live two hours, so only a token minted here (`<account>.a<n>`,
7200 s) with the call's scopes (`SCOPES_FOR`) is accepted; anything else gets 401
Unauthorized, a missing scope 403 Forbidden. Refresh (`grant_type=refresh_token`, `client_id`
in the form or Basic auth for a confidential client) returns a new refresh token and retires
the old one at once — X rotates refresh tokens, so a lost reply or an unsaved rotation costs a
re-authorisation. (A fake refresh token the sandbox did not mint is a standing consent and is
not retired, so a restarted publisher against a long-running sandbox still renews.)
The authorize page consents at once for the sandbox user `sandbox_account` (a sandbox-only
parameter, default `xuser`) and redirects with a code that the token endpoint exchanges after
checking the PKCE S256 verifier.
"""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from channels.sandbox.core import Fault, TokenState, apply_delay
from channels.sandbox.oauth import (
    Grant,
    bearer_token,
    check_bearer,
    grant_of,
    grant_refresh_token,
    mint_access_token,
)
from channels.sandbox.web import LostReply, json_reply, read_params, state_of
from publisher.text import X_LIMIT, x_weighted_length

X_ACCESS_TTL_S = 7200
X_SCOPES = frozenset({"tweet.read", "tweet.write", "users.read", "offline.access"})
# Every scope the call needs (X API v2 reference, "OAuth 2.0 scopes required by this endpoint").
SCOPES_FOR = {
    "create": ("tweet.read", "tweet.write", "users.read"),
    "delete": ("tweet.read", "tweet.write", "users.read"),
    "me": ("tweet.read", "users.read"),
}


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


def _authorize(request: Request, call: str) -> str | Response:
    """The account of a live minted token holding every scope `call` needs, or the reply."""
    state, token = state_of(request), bearer_token(request)
    for scope in SCOPES_FOR[call]:
        found = check_bearer(state, "x", token, {scope})
        if found.state == TokenState.INSUFFICIENT_SCOPE:
            return problem(403, "Forbidden", "Forbidden")
        if found.state != TokenState.OK:
            return problem(401, "Unauthorized", "Unauthorized")
        account = found.account
    return account


async def create_tweet(request: Request) -> Response:
    state = state_of(request)
    authorized = _authorize(request, "create")
    if isinstance(authorized, Response):
        return authorized
    account = authorized
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


async def delete_tweet(request: Request) -> Response:
    """`{"data": {"deleted": true}}`; 404 when the post is gone, 403 when it is not the user's."""
    state = state_of(request)
    authorized = _authorize(request, "delete")
    if isinstance(authorized, Response):
        return authorized
    fault = await apply_delay(state.pick_fault("x", authorized))
    if fault is not None and fault.kind != "reply_lost":
        return _fault_reply(fault, state.now().timestamp())
    entry = state.find_entry("x", request.path_params["id"])
    if entry is None or entry.withdrawn is not None:
        return problem(
            404,
            "Not Found Error",
            f"Could not find tweet with id: [{request.path_params['id']}].",
            "https://api.twitter.com/2/problems/resource-not-found",
        )
    if entry.account != authorized:
        return problem(403, "Forbidden", "You are not authorized to delete this Tweet.")
    state.withdraw(entry, "deleted")
    if fault is not None:
        return LostReply()
    return json_reply({"data": {"deleted": True}})


async def users_me(request: Request) -> Response:
    authorized = _authorize(request, "me")
    if isinstance(authorized, Response):
        return authorized
    return json_reply(
        {"data": {"id": f"u{authorized}", "name": f"Sandbox {authorized}", "username": authorized}}
    )


# --- OAuth 2.0 with PKCE ---------------------------------------------------------------------


def oauth_error(description: str, error: str = "invalid_request", status: int = 400) -> Response:
    return json_reply({"error": error, "error_description": description}, status=status)


def _client_of(request: Request, params: dict[str, object]) -> tuple[str, bool]:
    """(client id, confidential?) from Basic auth or the form's `client_id`."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(auth[6:].strip()).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return "", True
        client_id, _, secret = decoded.partition(":")
        return (client_id if secret else ""), True
    return str(params.get("client_id", "")), False


def _tokens_reply(request: Request, grant: Grant, client_id: str) -> Response:
    state = state_of(request)
    access = mint_access_token(state, "x", grant, set(grant.scopes), client_id, X_ACCESS_TTL_S)
    body: dict[str, object] = {
        "token_type": "bearer",
        "expires_in": X_ACCESS_TTL_S,
        "access_token": access,
        "scope": " ".join(sorted(grant.scopes)),
    }
    if "offline.access" in grant.scopes:
        body["refresh_token"] = grant_refresh_token(
            state, "x", grant.account, set(grant.scopes), client_id
        )
    return json_reply(body)


async def token(request: Request) -> Response:
    state = state_of(request)
    params, _ = await read_params(request)
    client_id, _confidential = _client_of(request, params)
    if not client_id:
        return oauth_error("Missing valid authorization header", "unauthorized_client", 401)
    grant_type = params.get("grant_type")
    if grant_type == "refresh_token":
        old = str(params.get("refresh_token", ""))
        grant = grant_of(state, "x", old, X_SCOPES)
        if grant is None or grant.client_id not in (None, client_id):
            return oauth_error("Value passed for the token was invalid.")
        if grant.client_id is not None:  # minted here: X rotates, the old one is spent
            state.revoked_tokens.add(old)
        return _tokens_reply(request, grant, client_id)
    if grant_type == "authorization_code":
        codes = state.platform_state["x"].setdefault("codes", {})
        code = codes.pop(str(params.get("code", "")), None)
        if code is None or code["client_id"] != client_id:
            return oauth_error("Value passed for the authorization code was invalid.")
        verifier = str(params.get("code_verifier", "")).encode("ascii", "replace")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        wrong_redirect = params.get("redirect_uri") != code["redirect"]
        if challenge.decode() != code["challenge"] or wrong_redirect:
            return oauth_error("Value passed for the authorization code was invalid.")
        return _tokens_reply(request, Grant(code["account"], code["scopes"], client_id), client_id)
    return oauth_error(f"Invalid grant_type: {grant_type}", "unsupported_grant_type")


async def authorize(request: Request) -> Response:
    """Consent at once for the sandbox user and redirect back with a code (S256 only)."""
    state, query = state_of(request), request.query_params
    scopes = frozenset(query.get("scope", "").split())
    if (
        query.get("response_type") != "code"
        or not query.get("client_id")
        or not query.get("redirect_uri")
        or query.get("code_challenge_method") != "S256"
        or not query.get("code_challenge")
        or not scopes
        or not scopes <= X_SCOPES
    ):
        return problem(400, "Invalid Request", "Something went wrong: invalid authorize request")
    code = f"code{state.next_id()}"
    state.platform_state["x"].setdefault("codes", {})[code] = {
        "client_id": query["client_id"],
        "redirect": query["redirect_uri"],
        "challenge": query["code_challenge"],
        "scopes": scopes,
        "account": query.get("sandbox_account", "xuser"),
    }
    target = f"{query['redirect_uri']}?{urlencode({'state': query.get('state', ''), 'code': code})}"
    return RedirectResponse(target, status_code=302)


routes = [
    Route("/2/tweets", create_tweet, methods=["POST"]),
    Route("/2/tweets/{id}", delete_tweet, methods=["DELETE"]),
    Route("/2/users/me", users_me, methods=["GET"]),
    Route("/2/oauth2/token", token, methods=["POST"]),
    Route("/i/oauth2/authorize", authorize, methods=["GET"]),
]
