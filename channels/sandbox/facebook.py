"""Facebook Graph API (Pages) emulator: feed, photos, posts read-back, delete, tokens.

Replies use Graph's error shape `{"error": {"message", "type", "code", "error_subcode",
"fbtrace_id"}}`. A feed post's ledger hash is the SHA-256 of its `message` exactly as received,
which is what `GET /{page}/posts` gives back (channels.facebook matches on it).

Strict where the real Graph is (docs/sandbox.md, "Facebook"): a message over 63,206
characters, an `attached_media` naming a photo this Page did not upload unpublished, and a
photo of 4 MB or more are refused (code 100); a Page configured with `require_proof` refuses
calls without a correct `appsecret_proof`. Tokens: pre-made tokens (not minted here) act as
Page tokens of any Page, as before. Minted ones follow Facebook's lifecycle: a user token
(`mint_user_token`) is exchanged for a long-lived one at `GET /oauth/access_token`, a Page
token is read from `GET /{page}?fields=access_token`, and `GET /debug_token` reports type,
validity, expiry (0 = never) and scopes (inspected with an app token, or a user token
inspecting itself; a Page token cannot inspect, 100). A user token cannot post to a Page
(code 200); a revoked token answers 190/460, an expired one 190/463.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels.sandbox.core import Fault, SandboxState, TokenState, apply_delay
from channels.sandbox.web import LostReply, json_reply, read_params, state_of

# Meta: Page photos "should be less than 4 MB"; the channel re-encodes below this.
PHOTO_LIMIT_BYTES = 4 * 1024 * 1024
# The often-quoted cap on a post's message; unverified (platform-apis.md), so the channel
# keeps to 60,000.
MESSAGE_LIMIT = 63_206
LONG_LIVED_USER_TTL_S = 60 * 86400  # "about 60 days" for an exchanged user token
PAGE_SCOPES = frozenset({"pages_manage_posts", "pages_read_engagement", "pages_show_list"})
POSTING_SCOPE = "pages_manage_posts"
_VERSION_RE = re.compile(r"^v(\d+)\.\d+$")
_URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$")


def graph_error(
    code: int,
    message: str,
    *,
    status: int = 400,
    subcode: int | None = None,
    headers: dict[str, str] | None = None,
    transient: bool = False,
) -> Response:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException" if code in (190, 102, 2500) else "GraphMethodException",
        "code": code,
        "fbtrace_id": "AsandboxTrace",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if transient:
        error["is_transient"] = True
    return json_reply({"error": error}, status=status, headers=headers)


_MESSAGES = {
    1: "An unknown error has occurred.",
    2: "An unexpected error has occurred. Please retry your request later.",
    4: "(#4) Application request limit reached",
    10: "(#10) This endpoint requires the 'pages_manage_posts' permission",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    100: "(#100) Invalid parameter",
    190: "Error validating access token: Session has expired",
    200: "(#200) The user hasn't authorized the application to perform this action",
    341: "(#341) Feed action request limit reached",
    368: "The action attempted has been deemed abusive or is otherwise disallowed",
    3: "(#3) Application does not have the capability to make this API call.",
    506: "(#506) Duplicate status message",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    80001: "There have been too many calls to this Page account. Wait a bit and try again.",
    1609005: "(#1609005) Error posting link: the link could not be read",
}


def _fault_reply(fault: Fault, page_id: str) -> Response:
    if fault.kind == "expired_token":
        return graph_error(190, _MESSAGES[190], subcode=463)
    if fault.kind == "rate_limit":
        minutes = max(1, round(fault.wait / 60))
        usage = {
            page_id: [
                {
                    "type": "pages",
                    "call_count": 100,
                    "total_cputime": 20,
                    "total_time": 25,
                    "estimated_time_to_regain_access": minutes,
                }
            ]
        }
        return graph_error(
            80001,
            _MESSAGES[80001],
            status=400,
            headers={"X-Business-Use-Case-Usage": json.dumps(usage)},
        )
    if fault.kind == "server_error":
        return graph_error(2, _MESSAGES[2], status=fault.status or 500, transient=True)
    code = int(fault.code) if fault.code is not None else 100
    if code == 368:  # Graph's shape for a temporary policy block (subcode 1390008)
        return json_reply(
            {
                "error": {
                    "message": _MESSAGES[368],
                    "type": "OAuthException",
                    "code": 368,
                    "error_subcode": fault.subcode or 1390008,
                    "is_transient": False,
                    "error_user_title": "You can't use this feature right now",
                    "error_user_msg": "We restrict certain activity to protect our community. "
                    "This block will be active for a while; try again later.",
                    "fbtrace_id": "AsandboxTrace",
                }
            },
            status=fault.status or 400,
        )
    return graph_error(
        code,
        _MESSAGES.get(code, f"(#{code}) Error"),
        status=fault.status or 400,
        subcode=fault.subcode,
    )


def _token(request: Request, params: dict[str, Any]) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    token = params.get("access_token")
    return str(token) if token else None


# --- apps, users and tokens (set up by tests and demos through these helpers) -------------


def _fb(state: SandboxState) -> dict[str, Any]:
    return state.platform_state["facebook"]


def register_app(state: SandboxState, app_id: str, app_secret: str) -> None:
    """Make an app known, so its `app_id|app_secret` token and exchanges are accepted."""
    _fb(state).setdefault("apps", {})[app_id] = app_secret


def require_proof(state: SandboxState, page_id: str, app_id: str) -> None:
    """The Page's app has "Require App Secret" on: every call for this Page needs a correct
    `appsecret_proof` (HMAC-SHA256 of the access token keyed with the app's secret)."""
    _fb(state).setdefault("proof_required", {})[page_id] = app_id


def mint_user_token(
    state: SandboxState,
    user: str,
    pages: list[str],
    *,
    app_id: str,
    ttl_s: float | None = 3600.0,
    scopes: frozenset[str] = PAGE_SCOPES,
) -> str:
    """A short-lived user token (what Facebook Login hands out) of an admin of `pages`."""
    _fb(state).setdefault("managers", {}).setdefault(user, set()).update(pages)
    token = state.issue_token("facebook", user, ttl_s=ttl_s, scopes=scopes, kind="u")
    _info(state)[token] = {"type": "USER", "user": user, "app_id": app_id, "long": False}
    return token


def _info(state: SandboxState) -> dict[str, dict[str, Any]]:
    info: dict[str, dict[str, Any]] = _fb(state).setdefault("token_info", {})
    return info


def _token_error(state: SandboxState, token: str, scope: str | None = None) -> Response | None:
    """190 for a dead token (its own or, for a Page token, its parent user token's)."""
    status = state.token_state("facebook", token, scope)
    parent = _info(state).get(token, {}).get("parent")
    if status == TokenState.OK and parent:
        parent_status = state.token_state("facebook", parent)
        if parent_status in (TokenState.REVOKED, TokenState.EXPIRED):
            status = parent_status
    if status == TokenState.REVOKED:
        return graph_error(
            190, "Error validating access token: The session has been invalidated.", subcode=460
        )
    if status == TokenState.EXPIRED:
        return graph_error(190, _MESSAGES[190], subcode=463)
    if status == TokenState.INSUFFICIENT_SCOPE:
        return graph_error(200, f"(#200) Requires the {scope} permission", status=403)
    return None


def _acts_for_page(state: SandboxState, token: str, page_id: str) -> Response | None:
    """Only a Page token of this Page may act for it (pre-made tokens may, as before)."""
    info = _info(state).get(token)
    if info is None:
        return None
    if info["type"] != "PAGE" or info.get("page") != page_id:
        return graph_error(
            200,
            "(#200) If posting to a page, requires both pages_read_engagement and "
            "pages_manage_posts as an admin with sufficient administrative permission "
            "(use the Page access token)",
            status=403,
        )
    return None


def _proof_error(
    state: SandboxState, page_id: str, token: str, params: dict[str, Any]
) -> Response | None:
    app_id = _fb(state).get("proof_required", {}).get(page_id)
    if app_id is None:
        return None
    secret = _fb(state).get("apps", {}).get(app_id, "")
    given = str(params.get("appsecret_proof", ""))
    if not given:
        return graph_error(100, "API calls from the server require an appsecret_proof argument")
    expected = hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given, expected):
        return graph_error(100, "Invalid appsecret_proof provided in the API argument")
    return None


async def _begin(
    request: Request, page_id: str | None = None, scope: str | None = None
) -> tuple[dict[str, Any], dict[str, bytes], Response | None, Fault | None]:
    """Common checks: version, token, proof, faults. Returns (params, files, early reply,
    fault)."""
    state = state_of(request)
    version = request.path_params["version"]
    page_id = page_id or request.path_params["page_id"]
    params, files = await read_params(request)
    match = _VERSION_RE.match(version)
    if not match:
        return params, files, graph_error(2500, f"Unknown path components: /{version}"), None
    if int(match.group(1)) < 25:
        return (
            params,
            files,
            graph_error(2635, f"({version}) is deprecated. Please use v25.0 or higher"),
            None,
        )
    token = _token(request, params)
    if not token:
        return (
            params,
            files,
            graph_error(
                2500,
                "An active access token must be used to query information about the current user.",
            ),
            None,
        )
    refused = (
        _token_error(state, token, scope)
        or _acts_for_page(state, token, page_id)
        or _proof_error(state, page_id, token, params)
    )
    if refused is not None:
        return params, files, refused, None
    fault = await apply_delay(state.pick_fault("facebook", page_id))
    if fault is not None and fault.kind != "reply_lost":
        return params, files, _fault_reply(fault, page_id), None
    return params, files, None, fault


def _permalink(post_id: str) -> str:
    return f"https://www.facebook.com/{post_id}"


async def feed(request: Request) -> Response:
    params, _files, early, fault = await _begin(request, scope=POSTING_SCOPE)
    if early is not None:
        return early
    state = state_of(request)
    page_id = request.path_params["page_id"]
    message = str(params.get("message", ""))
    link = str(params.get("link", ""))
    media = sorted((k, v) for k, v in params.items() if k.startswith("attached_media"))
    if not message and not link and not media:
        return graph_error(100, "(#100) Missing message or attachment")
    if len(message) > MESSAGE_LIMIT:
        return graph_error(100, "(#100) The message is too long")
    if link and not _URL_RE.match(link):
        return graph_error(100, "(#100) The parameter link is not a valid URL", subcode=1609005)
    published = str(params.get("published", "true")).lower() != "false"
    scheduled = params.get("scheduled_publish_time")
    if scheduled is not None:
        try:
            when = int(scheduled)
        except ValueError:
            return graph_error(100, "(#100) Invalid scheduled_publish_time")
        ahead = when - state.now().timestamp()
        if published or not 600 <= ahead <= 30 * 86400:
            return graph_error(
                100, "(#100) The specified scheduled publish time is invalid.", subcode=1363026
            )
    photo_ids = []
    for _, value in media:
        try:
            photo_ids.append(
                str(json.loads(value)["media_fbid"])
                if isinstance(value, str)
                else str(value["media_fbid"])
            )
        except (ValueError, KeyError, TypeError):
            return graph_error(100, '(#100) attached_media must be {"media_fbid": ...}')
    uploaded = state.platform_state["facebook"].setdefault("photos", {})
    for index, photo_id in enumerate(photo_ids):
        if uploaded.get(photo_id) != page_id:  # unknown, or another Page's photo
            return graph_error(
                100, f"(#100) param attached_media[{index}] has invalid media_fbid {photo_id}"
            )
    for entry in state.entries("facebook", page_id):
        if entry.withdrawn:
            continue
        same = entry.payload.get("message") == message and entry.payload.get("link", "") == link
        if same and message and entry.extra.get("kind") == "post":
            return graph_error(506, _MESSAGES[506])
    post_id = f"{page_id}_{state.next_id()}"
    payload: dict[str, Any] = {"message": message, **({"link": link} if link else {})}
    if photo_ids:
        payload["attached_media"] = photo_ids
    state.record("facebook", page_id, post_id, message, payload, kind="post", published=published)
    if fault is not None:
        return LostReply()
    return json_reply({"id": post_id})


async def photos(request: Request) -> Response:
    params, files, early, fault = await _begin(request, scope=POSTING_SCOPE)
    if early is not None:
        return early
    state = state_of(request)
    page_id = request.path_params["page_id"]
    source = files.get("source")
    url = str(params.get("url", ""))
    if source is None and not url:
        return graph_error(324, "(#324) Requires upload file")
    if source is not None and len(source) >= PHOTO_LIMIT_BYTES:
        return graph_error(100, "(#100) Photo file is too large: photos must be under 4 MB")
    if source is not None and not source.startswith((b"\xff\xd8", b"\x89PNG", b"GIF8")):
        return graph_error(324, "(#324) Missing or invalid image file")
    published = str(params.get("published", "true")).lower() != "false"
    photo_id = str(state.next_id())
    if not published:
        state.platform_state["facebook"].setdefault("photos", {})[photo_id] = page_id
        return json_reply({"id": photo_id})
    message = str(params.get("message", ""))
    post_id = f"{page_id}_{photo_id}"
    state.record(
        "facebook",
        page_id,
        post_id,
        message,
        {"message": message, "photo": url or "<upload>"},
        kind="post",
    )
    if fault is not None:
        return LostReply()
    return json_reply({"id": photo_id, "post_id": post_id})


async def posts(request: Request) -> Response:
    params, _files, early, _fault = await _begin(request)
    if early is not None:
        return early
    state = state_of(request)
    page_id = request.path_params["page_id"]
    since = params.get("since")
    limit = min(int(params.get("limit", 25)), 100)
    after = int(params.get("after", 0))
    entries = [
        e
        for e in reversed(state.entries("facebook", page_id))
        if e.extra.get("kind") == "post" and e.withdrawn is None
    ]
    if since is not None:
        threshold = datetime.fromtimestamp(int(since), UTC)
        entries = [e for e in entries if e.accepted_at >= threshold]
    page = entries[after : after + limit]
    data = [
        {
            "id": e.id,
            "message": e.payload.get("message", ""),
            "created_time": e.accepted_at.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "permalink_url": _permalink(e.id),
        }
        for e in page
    ]
    reply: dict[str, Any] = {"data": data}
    if after + limit < len(entries):
        base = str(request.url.remove_query_params(["after"]))
        sep = "&" if "?" in base else "?"
        reply["paging"] = {"next": f"{base}{sep}after={after + limit}"}
    return json_reply(reply)


async def delete_object(request: Request) -> Response:
    """`DELETE /{post-id}`: the Page's post is removed; an unknown or removed one is 100/33."""
    state = state_of(request)
    object_id = request.path_params["object_id"]
    page_id = object_id.split("_", 1)[0]
    _params, _files, early, fault = await _begin(request, page_id=page_id, scope=POSTING_SCOPE)
    if early is not None:
        return early
    entry = state.find_entry("facebook", object_id)
    if entry is None or entry.withdrawn is not None or entry.account != page_id:
        return graph_error(
            100,
            f"Unsupported delete request. Object with ID '{object_id}' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation.",
            subcode=33,
        )
    state.withdraw(entry, "deleted")
    if fault is not None:
        return LostReply()
    return json_reply({"success": True})


async def page_node(request: Request) -> Response:
    """`GET /{page}?fields=access_token`: with a user token of one of the Page's admins, the
    Page's own token (non-expiring when the user token is long-lived, else it dies with it)."""
    state = state_of(request)
    page_id = request.path_params["page_id"]
    params, _files = await read_params(request)
    token = _token(request, params)
    if not token:
        return graph_error(2500, "An active access token must be used.")
    refused = _token_error(state, token) or _proof_error(state, page_id, token, params)
    if refused is not None:
        return refused
    reply: dict[str, Any] = {"id": page_id}
    if "access_token" not in str(params.get("fields", "")).split(","):
        return json_reply({**reply, "name": "Sandbox Page"})
    info = _info(state).get(token)
    if info is None or (info["type"] == "PAGE" and info.get("page") == page_id):
        return json_reply({**reply, "access_token": token})  # a Page token reads itself
    managed = _fb(state).get("managers", {}).get(info.get("user"), set())
    if info["type"] != "USER" or page_id not in managed:
        return json_reply(reply)  # no role on the Page: Graph leaves the field out
    user = state.issued[token]
    ttl: float | None = None
    if not info["long"] and user.expires_at is not None:
        ttl = max(1.0, (user.expires_at - state.now()).total_seconds())
    page_token = state.issue_token("facebook", page_id, ttl_s=ttl, scopes=user.scopes, kind="p")
    _info(state)[page_token] = {
        "type": "PAGE",
        "page": page_id,
        "user": info["user"],
        "app_id": info["app_id"],
        "parent": token,
    }
    return json_reply({**reply, "access_token": page_token})


def _app_of(state: SandboxState, app_token: str) -> str | None:
    """The app id of a valid `app_id|app_secret` token, else None."""
    app_id, sep, secret = app_token.partition("|")
    apps = _fb(state).get("apps", {})
    if sep and app_id in apps and hmac.compare_digest(apps[app_id], secret):
        return app_id
    return None


async def debug_token(request: Request) -> Response:
    state = state_of(request)
    params, _files = await read_params(request)
    inspector = _token(request, params)
    if not inspector:
        return graph_error(2500, "An active access token must be used.")
    if "|" in inspector:
        if _app_of(state, inspector) is None:
            return graph_error(190, "Invalid OAuth access token signature.")
    else:
        refused = _token_error(state, inspector)
        if refused is not None:
            return refused
        if _info(state).get(inspector, {}).get("type") != "USER":
            return graph_error(
                100,
                "(#100) You must provide an app access token, or a user access token that is "
                "an owner or developer of the app",
            )
    input_token = str(params.get("input_token", ""))
    if not input_token:
        return graph_error(100, "(#100) The parameter input_token is required")
    status = state.token_state("facebook", input_token)
    info = _info(state).get(input_token)
    parent = (info or {}).get("parent")
    if status == TokenState.OK and parent:
        parent_status = state.token_state("facebook", parent)
        if parent_status in (TokenState.REVOKED, TokenState.EXPIRED):
            status = parent_status
    issued = state.issued.get(input_token)
    expires = issued.expires_at if issued is not None else None
    data: dict[str, Any] = {
        "app_id": (info or {}).get("app_id", "sandbox-app"),
        "type": (info or {}).get("type", "PAGE"),
        "application": "Sandbox App",
        "expires_at": int(expires.timestamp()) if expires else 0,
        "is_valid": status in (TokenState.OK, TokenState.STATIC),
        "scopes": sorted(issued.scopes) if issued is not None else sorted(PAGE_SCOPES),
    }
    if info is not None:
        data["user_id"] = info.get("user")
        if info["type"] == "PAGE":
            data["profile_id"] = info["page"]
    if not data["is_valid"]:
        subcode = 463 if status == TokenState.EXPIRED else 460
        data["error"] = {"code": 190, "message": _MESSAGES[190], "subcode": subcode}
    return json_reply({"data": data})


async def exchange_token(request: Request) -> Response:
    """`GET /oauth/access_token?grant_type=fb_exchange_token`: a long-lived user token."""
    state = state_of(request)
    params, _files = await read_params(request)
    if params.get("grant_type") != "fb_exchange_token":
        return graph_error(100, "(#100) Unsupported grant_type")
    app_id = str(params.get("client_id", ""))
    apps = _fb(state).get("apps", {})
    if app_id not in apps:
        return graph_error(101, "Error validating application. Invalid application ID.")
    if not hmac.compare_digest(apps[app_id], str(params.get("client_secret", ""))):
        return graph_error(1, "Error validating client secret.")
    short = str(params.get("fb_exchange_token", ""))
    info = _info(state).get(short)
    refused = _token_error(state, short) if short else None
    if refused is not None:
        return refused
    if info is None or info["type"] != "USER" or info["app_id"] != app_id:
        return graph_error(190, "Invalid OAuth access token.")
    issued = state.issued[short]
    token = state.issue_token(
        "facebook", info["user"], ttl_s=LONG_LIVED_USER_TTL_S, scopes=issued.scopes, kind="u"
    )
    _info(state)[token] = {**info, "long": True}
    return json_reply(
        {"access_token": token, "token_type": "bearer", "expires_in": LONG_LIVED_USER_TTL_S}
    )


routes = [
    Route("/{version}/debug_token", debug_token, methods=["GET"]),
    Route("/{version}/oauth/access_token", exchange_token, methods=["GET"]),
    Route("/{version}/{page_id}/feed", feed, methods=["POST"]),
    Route("/{version}/{page_id}/photos", photos, methods=["POST"]),
    Route("/{version}/{page_id}/posts", posts, methods=["GET"]),
    Route("/{version}/{object_id}", delete_object, methods=["DELETE"]),
    Route("/{version}/{page_id}", page_node, methods=["GET"]),
]
