"""Facebook Graph API (Pages) emulator: feed, photos, posts read-back.

Replies use Graph's error shape `{"error": {"message", "type", "code", "error_subcode",
"fbtrace_id"}}`. A feed post's ledger hash is the SHA-256 of its `message` exactly as received,
which is what `GET /{page}/posts` gives back (channels.facebook matches on it).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels.sandbox.core import Fault, apply_delay
from channels.sandbox.web import LostReply, json_reply, read_params, state_of

PHOTO_LIMIT_BYTES = 10 * 1024 * 1024
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


async def _begin(
    request: Request,
) -> tuple[dict[str, Any], dict[str, bytes], Response | None, Fault | None]:
    """Common checks: version, token, faults. Returns (params, files, early reply, fault)."""
    state = state_of(request)
    version = request.path_params["version"]
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
    if not state.token_valid(token):
        return params, files, graph_error(190, _MESSAGES[190], subcode=463), None
    fault = await apply_delay(state.pick_fault("facebook", request.path_params["page_id"]))
    if fault is not None and fault.kind != "reply_lost":
        return params, files, _fault_reply(fault, request.path_params["page_id"]), None
    return params, files, None, fault


def _permalink(post_id: str) -> str:
    return f"https://www.facebook.com/{post_id}"


async def feed(request: Request) -> Response:
    params, _files, early, fault = await _begin(request)
    if early is not None:
        return early
    state = state_of(request)
    page_id = request.path_params["page_id"]
    message = str(params.get("message", ""))
    link = str(params.get("link", ""))
    media = sorted((k, v) for k, v in params.items() if k.startswith("attached_media"))
    if not message and not link and not media:
        return graph_error(100, "(#100) Missing message or attachment")
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
    for entry in state.entries("facebook", page_id):
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
    params, files, early, fault = await _begin(request)
    if early is not None:
        return early
    state = state_of(request)
    page_id = request.path_params["page_id"]
    source = files.get("source")
    url = str(params.get("url", ""))
    if source is None and not url:
        return graph_error(324, "(#324) Requires upload file")
    if source is not None and len(source) >= PHOTO_LIMIT_BYTES:
        return graph_error(100, "(#100) Photo file is too large (limit 10 MB)")
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
        e for e in reversed(state.entries("facebook", page_id)) if e.extra.get("kind") == "post"
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


routes = [
    Route("/{version}/{page_id}/feed", feed, methods=["POST"]),
    Route("/{version}/{page_id}/photos", photos, methods=["POST"]),
    Route("/{version}/{page_id}/posts", posts, methods=["GET"]),
]
