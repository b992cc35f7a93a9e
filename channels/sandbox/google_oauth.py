"""Google's OAuth 2.0 token endpoint (`https://oauth2.googleapis.com/token`) for YouTube.

Mounted at `/youtube-oauth` (`POST /youtube-oauth/token`), beside `/youtube`, as Zalo's OAuth
is at `/zalo-oauth`. Only the refresh grant is emulated (consent runs in a browser against
real Google, once): form `grant_type=refresh_token, refresh_token, client_id, client_secret`
and optionally `scope` (which must be within what the refresh token was granted). The reply is
Google's: `{access_token, expires_in: 3599, scope, token_type: "Bearer"}`; errors are HTTP 400
(401 for the client) with `{error, error_description}`: `invalid_grant` "Token has been
expired or revoked." for a revoked refresh token, `invalid_client`, `invalid_scope`,
`unsupported_grant_type`. Google keeps the refresh token (no rotation) and the minted access
token belongs to the client (the API project) that asked, which is whose quota it spends.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels.sandbox.oauth import grant_of, mint_access_token
from channels.sandbox.web import json_reply, read_params, state_of

GOOGLE_ACCESS_TTL_S = 3599
YOUTUBE_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/youtube.upload",
        "https://www.googleapis.com/auth/youtube.readonly",
        "https://www.googleapis.com/auth/youtube.force-ssl",
    }
)


def oauth_error(status: int, error: str, description: str) -> Response:
    return json_reply({"error": error, "error_description": description}, status=status)


async def token(request: Request) -> Response:
    state = state_of(request)
    params, _ = await read_params(request)
    if params.get("grant_type") != "refresh_token":
        return oauth_error(
            400, "unsupported_grant_type", f"Invalid grant_type: {params.get('grant_type', '')}"
        )
    client_id, secret = str(params.get("client_id", "")), str(params.get("client_secret", ""))
    if not client_id or not secret:
        return oauth_error(401, "invalid_client", "The OAuth client was not found.")
    grant = grant_of(state, "youtube", str(params.get("refresh_token", "")), YOUTUBE_SCOPES)
    if grant is None or grant.client_id not in (None, client_id):
        return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
    asked = set(str(params.get("scope", "")).split()) or set(grant.scopes)
    if not asked <= grant.scopes:
        return oauth_error(
            400, "invalid_scope", "The requested scope is not within the granted scopes."
        )
    access = mint_access_token(state, "youtube", grant, asked, client_id, GOOGLE_ACCESS_TTL_S)
    return json_reply(
        {
            "access_token": access,
            "expires_in": GOOGLE_ACCESS_TTL_S,
            "scope": " ".join(sorted(asked)),
            "token_type": "Bearer",
        }
    )


routes = [Route("/token", token, methods=["POST"])]
