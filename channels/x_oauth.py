"""X OAuth 2.0 (authorization code with PKCE) for posting as a user: consent and refresh.

Facts (docs.x.com, "OAuth 2.0 Authorization Code Flow with PKCE"): the user approves at
`https://x.com/i/oauth2/authorize` (`response_type=code, client_id, redirect_uri, scope, state,
code_challenge, code_challenge_method=S256`); the code is exchanged at
`POST https://api.x.com/2/oauth2/token` (`grant_type=authorization_code, code, redirect_uri,
code_verifier`, and `client_id` — or HTTP Basic `client_id:client_secret` for a confidential
client). Access tokens live two hours (`expires_in: 7200`); a refresh token is issued only
with the `offline.access` scope and renews with `grant_type=refresh_token`. X rotates the
refresh token on every refresh (the reply carries a new one and the old one stops working;
practitioner reports, which the sandbox models strictly), so the new pair must be stored before
it is used (channels.token_renewal).

One-time consent, by a person, outside tests:

    python -m channels.x authorize --client-id ID --redirect-uri URI
        → prints the URL to open, and the `state` and `verifier` to keep
    python -m channels.x exchange --client-id ID --redirect-uri URI --verifier V --code C
        → prints the JSON to store as the account's secret (`publisher accounts set-token`)

A confidential client's secret is read from the `X_CLIENT_SECRET` environment variable, never
from the command line (it would stay in the shell history).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from channels.base import ErrorKind, SendError, TokenSet
from channels.httpio import json_body, request
from channels.token_renewal import Renewed

AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
API_BASE = "https://api.x.com"
TOKEN_PATH = "/2/oauth2/token"
# post and delete need tweet.read + tweet.write + users.read; offline.access brings the
# refresh token without which the account stops after two hours
DEFAULT_SCOPES = ("tweet.read", "tweet.write", "users.read", "offline.access")
REAUTHORISE = (
    "a person must re-authorise the X account (python -m channels.x authorize …, then "
    "exchange …) and store the JSON it prints"
)


@dataclass(frozen=True, slots=True)
class Pkce:
    verifier: str  # kept by the person between authorize and exchange; never sent until then
    challenge: str  # BASE64URL(SHA256(verifier)) without padding (RFC 7636, S256)


def new_pkce() -> Pkce:
    verifier = secrets.token_urlsafe(64)  # 86 characters of the unreserved set (43–128 allowed)
    return Pkce(verifier, s256(verifier))


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(
    client_id: str,
    redirect_uri: str,
    state: str,
    challenge: str,
    scopes: tuple[str, ...] = DEFAULT_SCOPES,
    base: str = AUTHORIZE_URL,
) -> str:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return f"{base}?{urlencode(query)}"


def _auth(client_id: str, client_secret: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, form fields) naming the client: Basic auth when it has a secret."""
    if client_secret:
        pair = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")
        return {"Authorization": f"Basic {pair}"}, {}
    return {}, {"client_id": client_id}


async def _token_request(
    http: httpx.AsyncClient,
    api_base: str,
    client_id: str,
    client_secret: str | None,
    form: dict[str, str],
    now: datetime,
) -> tuple[TokenSet, frozenset[str] | None]:
    headers, client_fields = _auth(client_id, client_secret)
    # Nothing is published by a token request, so any failure is BEFORE_SEND for the post.
    # (A lost reply to a refresh still costs the refresh token: X spent it on arrival.)
    response = await request(
        http,
        "POST",
        f"{api_base.rstrip('/')}{TOKEN_PATH}",
        idempotent=True,
        headers=headers,
        data={**form, **client_fields},
    )
    reply = json_body(response)
    if response.status_code >= 500:
        raise SendError(
            ErrorKind.BEFORE_SEND,
            f"X token endpoint answered {response.status_code}",
            platform_code=str(response.status_code),
        )
    access = reply.get("access_token")
    if response.status_code != 200 or not isinstance(access, str) or not access:
        error = reply.get("error") or f"HTTP {response.status_code}"
        description = reply.get("error_description") or ""
        raise SendError(
            ErrorKind.AUTH,
            f"X refused the token request ({error}: {description}); {REAUTHORISE}",
            platform_code=str(error),
        )
    expires_in = reply.get("expires_in")
    expires_at = (
        now + timedelta(seconds=float(expires_in))
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool)
        else None
    )
    refresh = reply.get("refresh_token")
    scope = reply.get("scope")
    return (
        TokenSet(access, refresh if isinstance(refresh, str) and refresh else None, expires_at),
        frozenset(scope.split()) if isinstance(scope, str) else None,
    )


async def refresh(
    http: httpx.AsyncClient,
    api_base: str,
    client_id: str,
    client_secret: str | None,
    refresh_token: str,
    *,
    now: datetime | None = None,
) -> Renewed:
    """`grant_type=refresh_token`: the new access token and the rotated refresh token."""
    tokens, scopes = await _token_request(
        http,
        api_base,
        client_id,
        client_secret,
        {"grant_type": "refresh_token", "refresh_token": refresh_token},
        now or datetime.now(UTC),
    )
    if tokens.refresh_token is None:
        # X always rotates; a reply without a new refresh token leaves the account unable to
        # renew once this access token expires — say so now rather than in two hours
        raise SendError(
            ErrorKind.AUTH, f"X renewed the token without a new refresh token; {REAUTHORISE}"
        )
    return Renewed(tokens, scopes)


async def exchange_code(
    http: httpx.AsyncClient,
    client_id: str,
    client_secret: str | None,
    code: str,
    redirect_uri: str,
    verifier: str,
    *,
    api_base: str = API_BASE,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Trade the authorization code for tokens; returns the JSON to store for the account."""
    moment = now or datetime.now(UTC)
    tokens, scopes = await _token_request(
        http,
        api_base,
        client_id,
        client_secret,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        moment,
    )
    extra: dict[str, str] = {"client_id": client_id}
    if client_secret:
        extra["client_secret"] = client_secret
    if tokens.refresh_token:
        extra["refresh_token"] = tokens.refresh_token
    if tokens.expires_at is not None:
        extra["expires_at"] = tokens.expires_at.isoformat()
    if scopes is not None:
        extra["scopes"] = " ".join(sorted(scopes))
    return {"token": tokens.access_token, "extra": extra}
