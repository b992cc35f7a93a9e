"""OAuth as the strict emulators (YouTube through Google's token endpoint, X) model it.

Real Google and X access tokens are always minted by their token endpoints, expire (Google
3599 s, X 7200 s) and carry the scopes the user consented to. So a strict emulator accepts as
a bearer only an access token its own token endpoint minted (`SandboxState.issue_token`),
not expired, not revoked, with one of the scopes the call needs; anything else gets the
platform's 401 (or 403 for a missing scope).

Refresh tokens: one minted here (`grant_refresh_token`, used by tests and the sandbox's X
authorize page) carries its account, scopes and client; one the sandbox did not mint — the
clearly fake `<account>.sandbox-refresh-<id>` of `publisher.secrets.sandbox_credentials` —
stands for a consent to every scope the platform's channel asks for by default, for any
client, so the demo delivers without a browser; it is a standing consent, never rotated away
(a restarted publisher, whose renewed tokens were in memory, starts from it again). A revoked
refresh token is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from channels.sandbox.core import SandboxState, TokenState


@dataclass(frozen=True, slots=True)
class Grant:
    """What a refresh token stands for."""

    account: str
    scopes: frozenset[str]
    client_id: str | None  # None: any client (a sandbox fake refresh token)


@dataclass(frozen=True, slots=True)
class Bearer:
    """The outcome of checking an access token for one call."""

    state: str  # a TokenState value
    account: str = ""
    client_id: str = ""


def _oauth(state: SandboxState, platform: str) -> dict[str, Any]:
    found: dict[str, Any] = state.platform_state[platform].setdefault(
        "oauth", {"refresh": {}, "access_client": {}}
    )
    return found


def bearer_token(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else ""


def grant_refresh_token(
    state: SandboxState, platform: str, account: str, scopes: set[str], client_id: str
) -> str:
    """Mint a refresh token, as a completed consent would (`<account>.r<n>`)."""
    token = state.issue_token(platform, account, ttl_s=None, scopes=scopes, kind="r")
    _oauth(state, platform)["refresh"][token] = Grant(account, frozenset(scopes), client_id)
    return token


def grant_of(
    state: SandboxState, platform: str, refresh_token: str, default_scopes: frozenset[str]
) -> Grant | None:
    """What this refresh token grants, or None when it is revoked, empty or an access token."""
    if not refresh_token or refresh_token in state.revoked_tokens:
        return None
    minted: Grant | None = _oauth(state, platform)["refresh"].get(refresh_token)
    if minted is not None:
        return minted
    if refresh_token in state.issued:  # an access token is not a refresh token
        return None
    return Grant(state.account_of_token(refresh_token), default_scopes, None)


def mint_access_token(
    state: SandboxState, platform: str, grant: Grant, scopes: set[str], client_id: str, ttl_s: int
) -> str:
    token = state.issue_token(platform, grant.account, ttl_s=ttl_s, scopes=scopes)
    _oauth(state, platform)["access_client"][token] = client_id
    return token


def check_bearer(state: SandboxState, platform: str, token: str, any_of: set[str]) -> Bearer:
    """OK when the token was minted here as an access token, is live and has one of `any_of`."""
    client = _oauth(state, platform)["access_client"].get(token)
    if client is None:  # a refresh token, another platform's token, or a pre-made one
        found = state.token_state(platform, token)
        return Bearer(TokenState.STATIC if found == TokenState.OK else found)
    found = TokenState.INSUFFICIENT_SCOPE
    for scope in sorted(any_of):
        found = state.token_state(platform, token, scope)
        if found != TokenState.INSUFFICIENT_SCOPE:
            break
    account = state.account_of_token(token)
    return Bearer(found, account if found == TokenState.OK else "", str(client))


def scopes_of(state: SandboxState, token: str) -> frozenset[str]:
    issued = state.issued.get(token)
    return issued.scopes if issued is not None else frozenset()
