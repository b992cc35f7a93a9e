"""YouTube Data API v3 emulator: resumable `videos.insert`, and uploads read-back.

Resumable protocol: `POST …/videos?uploadType=resumable&part=…` with the metadata answers 200
and `Location` (the session URI); `PUT <session>` with `Content-Range: bytes a-b/total` answers
308 with `Range: bytes=0-n` until the last byte, then 200 with the video resource;
`Content-Range: bytes */total` asks for the status (a completed session answers the video
again, which is how a client whose last reply was lost learns the id). Metadata is validated
like YouTube (title, description bytes, tags total, category, publishAt). The ledger hash is
SHA-256 of canonical JSON `{"title", "description"}`, which `playlistItems.list` returns.
`DELETE /youtube/v3/videos?id=` removes a video (204; 404 `videoNotFound` when it is gone).

Strict about tokens (channels.sandbox.oauth): the bearer must be an access token minted by the
Google token endpoint emulator (`/youtube-oauth/token`), live, with a scope the call accepts
(`SCOPES_FOR`); otherwise 401 `authError`, or 403 `insufficientPermissions` for a missing
scope. The channel is named by the token (`<account>.a<n>`).

Quota is per API project — the OAuth client the token was minted for — and per Pacific day
(resets at midnight America/Los_Angeles by the sandbox clock): `videos.insert` calls spend
their own bucket (`SandboxSettings.youtube_daily_uploads`, 100), everything else spends units
from `youtube_daily_units` (10,000): list calls 1, `videos.delete` 50. Over either: 403
`quotaExceeded`.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels.sandbox.core import Fault, SandboxState, TokenState, apply_delay
from channels.sandbox.oauth import bearer_token, check_bearer
from channels.sandbox.web import LostReply, json_reply, state_of
from publisher.domain import canonical_json
from publisher.text import utf8_length

CATEGORIES = frozenset(
    {"1", "2", "10", "15", "17", "19", "20", "22", "23", "24", "25", "26", "27", "28", "29"}
)
_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)|bytes \*/(\d+)")
PACIFIC = ZoneInfo("America/Los_Angeles")
_AUTH = "https://www.googleapis.com/auth/"
# Which scopes each call accepts (YouTube Data API reference, "Authorization" of each method).
SCOPES_FOR = {
    "insert": {_AUTH + "youtube.upload", _AUTH + "youtube", _AUTH + "youtube.force-ssl"},
    "read": {_AUTH + "youtube.readonly", _AUTH + "youtube", _AUTH + "youtube.force-ssl"},
    "delete": {_AUTH + "youtube", _AUTH + "youtube.force-ssl"},
}
UNIT_COST = {"read": 1, "delete": 50}


def yt_error(status: int, reason: str, message: str, domain: str = "youtube.video") -> Response:
    return json_reply(
        {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"message": message, "domain": domain, "reason": reason}],
            }
        },
        status=status,
    )


def _auth_error() -> Response:
    return yt_error(401, "authError", "Request had invalid authentication credentials.", "global")


def _fault_reply(fault: Fault) -> Response:
    if fault.kind == "expired_token":
        return _auth_error()
    if fault.kind == "rate_limit":
        return yt_error(
            403,
            "quotaExceeded",
            "The request cannot be completed because you have exceeded your quota.",
            "youtube.quota",
        )
    if fault.kind == "server_error":
        return yt_error(fault.status or 503, "backendError", "Backend Error", "global")
    reason = str(fault.code or "invalidTitle")
    return yt_error(fault.status or 400, reason, f"Sandbox error {reason}")


def tags_length(tags: list[str]) -> int:
    """YouTube's count: characters, plus a comma between tags, plus 2 for a tag with a space."""
    return sum(len(t) + (2 if " " in t else 0) for t in tags) + max(0, len(tags) - 1)


def validate_metadata(body: dict[str, Any]) -> tuple[str, str] | None:
    snippet, status = body.get("snippet") or {}, body.get("status") or {}
    title, description = snippet.get("title", ""), snippet.get("description", "")
    if (
        not isinstance(title, str)
        or not title.strip()
        or len(title) > 100
        or re.search("[<>]", title)
    ):
        return "invalidTitle", "The request metadata specifies an invalid video title."
    if (
        not isinstance(description, str)
        or utf8_length(description) > 5000
        or re.search("[<>]", description)
    ):
        return "invalidDescription", "The request metadata specifies an invalid video description."
    tags = snippet.get("tags", [])
    if (
        not isinstance(tags, list)
        or tags_length([str(t) for t in tags]) > 500
        or any(re.search("[<>]", str(t)) for t in tags)
    ):
        return "invalidTags", "The request metadata specifies invalid video keywords."
    if str(snippet.get("categoryId", "22")) not in CATEGORIES:
        return (
            "invalidCategoryId",
            "The snippet.categoryId property specifies an invalid category ID.",
        )
    privacy = status.get("privacyStatus", "public")
    if privacy not in ("public", "private", "unlisted"):
        return "invalidPrivacyStatus", "Invalid privacy status."
    if status.get("publishAt") is not None:
        try:
            datetime.fromisoformat(str(status["publishAt"]).replace("Z", "+00:00"))
        except ValueError:
            return (
                "invalidPublishAt",
                "The request metadata specifies an invalid scheduled publishing time.",
            )
        if privacy != "private":
            return "invalidPublishAt", "publishAt requires privacyStatus private."
    return None


def _ystate(state: SandboxState) -> dict[str, Any]:
    return state.platform_state["youtube"]


def _insufficient_scope(needed: set[str]) -> Response:
    reply = yt_error(
        403, "insufficientPermissions", "Request had insufficient authentication scopes.", "global"
    )
    reply.headers["www-authenticate"] = (
        'Bearer realm="https://accounts.google.com/", error="insufficient_scope", '
        f'scope="{" ".join(sorted(needed))}"'
    )
    return reply


def _authorize(request: Request, call: str) -> tuple[str, str] | Response:
    """(account, client id) of a live minted token with a scope `call` accepts, or the reply."""
    needed = SCOPES_FOR[call]
    found = check_bearer(state_of(request), "youtube", bearer_token(request), needed)
    if found.state == TokenState.OK:
        return found.account, found.client_id
    if found.state == TokenState.INSUFFICIENT_SCOPE:
        return _insufficient_scope(needed)
    return _auth_error()


def channel_id(account: str) -> str:
    """The channel id of the account a token names (`UC…` kept as it is)."""
    return account if account.startswith("UC") else f"UC{account}"


def uploads_playlist(account: str) -> str:
    """YouTube's uploads playlist id: the channel id with `UU` for `UC`."""
    return "UU" + channel_id(account)[2:]


def quota_day(state: SandboxState) -> str:
    """YouTube's quota day: it resets at midnight Pacific time."""
    return state.now().astimezone(PACIFIC).date().isoformat()


def _quota_exceeded() -> Response:
    return yt_error(
        403,
        "quotaExceeded",
        "The request cannot be completed because you have exceeded your quota.",
        "youtube.quota",
    )


def spend_quota(state: SandboxState, client_id: str, call: str) -> bool:
    """Charge the project's quota for one call; False (nothing charged) when it is used up."""
    used = _ystate(state).setdefault("quota", {})
    day = quota_day(state)
    if call == "insert":
        key, cost, limit = (client_id, day, "insert"), 1, state.settings.youtube_daily_uploads
    else:
        key, cost, limit = (
            (client_id, day, "units"),
            UNIT_COST[call],
            (state.settings.youtube_daily_units),
        )
    if used.get(key, 0) + cost > limit:
        return False
    used[key] = used.get(key, 0) + cost
    return True


async def start_upload(request: Request) -> Response:
    state = state_of(request)
    authorized = _authorize(request, "insert")
    if isinstance(authorized, Response):
        return authorized
    account, client_id = authorized
    if request.query_params.get("uploadType") != "resumable":
        return yt_error(
            400, "uploadTypeUnsupported", "Only resumable uploads are emulated", "global"
        )
    fault = await apply_delay(state.pick_fault("youtube", account))
    if fault is not None and fault.kind != "reply_lost":
        return _fault_reply(fault)
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return yt_error(400, "parseError", "Parse Error", "global")
    invalid = validate_metadata(body if isinstance(body, dict) else {})
    if invalid:
        return yt_error(400, *invalid)
    if not spend_quota(state, client_id, "insert"):
        return _quota_exceeded()
    session = f"s{state.next_id()}"
    total = request.headers.get("x-upload-content-length")
    _ystate(state).setdefault("sessions", {})[session] = {
        "account": account,
        "meta": body,
        "data": bytearray(),
        "fault": fault,
        "total": int(total) if total and total.isdigit() else None,
    }
    location = str(request.url.include_query_params(upload_id=session))
    return Response(
        status_code=200, headers={"Location": location, "X-GUploader-UploadID": session}
    )


async def upload_chunk(request: Request) -> Response:
    state = state_of(request)
    session = _ystate(state).get("sessions", {}).get(request.query_params.get("upload_id", ""))
    if session is None:
        return yt_error(404, "notFound", "Upload session not found", "global")
    match = _RANGE_RE.fullmatch(request.headers.get("content-range", "").strip())
    data: bytearray = session["data"]
    chunk = await request.body()
    if "video" in session:  # completed: a status query or a repeated last chunk gets the video
        return json_reply(session["video"])
    if match is None:
        if request.headers.get("content-range"):
            return yt_error(400, "badContent", "Invalid Content-Range", "global")
        data.extend(chunk)  # single PUT with the whole media
        total = len(data)
    elif match.group(4) is not None:  # status query: bytes */total
        total = int(match.group(4))
    else:
        first, total_raw = int(match.group(1)), match.group(3)
        if first != len(data):
            return Response(status_code=308, headers=_range(data))
        data.extend(chunk)
        total = int(total_raw) if total_raw != "*" else -1
    if total != len(data):
        return Response(status_code=308, headers=_range(data))
    if not data:
        return yt_error(400, "mediaBodyRequired", "The request does not include the video content.")
    return _finish(state, session)


def _range(data: bytearray) -> dict[str, str]:
    return {"Range": f"bytes=0-{len(data) - 1}"} if data else {}


def _finish(state: SandboxState, session: dict[str, Any]) -> Response:
    account, meta = session["account"], session["meta"]
    video_id = f"vid{state.next_id()}"
    snippet = {
        **meta.get("snippet", {}),
        "channelId": channel_id(account),
        "publishedAt": state.now().isoformat().replace("+00:00", "Z"),
    }
    status = {"privacyStatus": "public", **meta.get("status", {}), "uploadStatus": "uploaded"}
    video = {
        "kind": "youtube#video",
        "etag": "sandbox",
        "id": video_id,
        "snippet": snippet,
        "status": status,
    }
    session["video"] = video
    body = canonical_json(
        {"title": snippet.get("title", ""), "description": snippet.get("description", "")}
    )
    state.record("youtube", account, video_id, body, meta, bytes=len(session["data"]))
    if session.get("fault") is not None:
        return LostReply()
    return json_reply(video)


async def channels_list(request: Request) -> Response:
    state = state_of(request)
    authorized = _authorize(request, "read")
    if isinstance(authorized, Response):
        return authorized
    account, client_id = authorized
    if not spend_quota(state, client_id, "read"):
        return _quota_exceeded()
    return json_reply(
        {
            "kind": "youtube#channelListResponse",
            "items": [
                {
                    "kind": "youtube#channel",
                    "id": channel_id(account),
                    "snippet": {"title": f"Sandbox channel {account}"},
                    "contentDetails": {"relatedPlaylists": {"uploads": uploads_playlist(account)}},
                }
            ],
        }
    )


async def playlist_items(request: Request) -> Response:
    state = state_of(request)
    authorized = _authorize(request, "read")
    if isinstance(authorized, Response):
        return authorized
    account, client_id = authorized
    if not spend_quota(state, client_id, "read"):
        return _quota_exceeded()
    if request.query_params.get("playlistId") != uploads_playlist(account):
        return yt_error(
            404, "playlistNotFound", "The playlist cannot be found.", "youtube.playlistItem"
        )
    limit = min(int(request.query_params.get("maxResults", 5)), 50)
    live = [e for e in state.entries("youtube", account) if e.withdrawn is None]
    entries = list(reversed(live))[:limit]
    items = [
        {
            "kind": "youtube#playlistItem",
            "id": f"pi{e.id}",
            "snippet": {
                "publishedAt": e.accepted_at.isoformat().replace("+00:00", "Z"),
                "title": e.payload.get("snippet", {}).get("title", ""),
                "description": e.payload.get("snippet", {}).get("description", ""),
                "resourceId": {"kind": "youtube#video", "videoId": e.id},
            },
        }
        for e in entries
    ]
    return json_reply({"kind": "youtube#playlistItemListResponse", "items": items})


async def delete_video(request: Request) -> Response:
    """`videos.delete`: 204; 404 `videoNotFound` when the video is gone (or never was)."""
    state = state_of(request)
    authorized = _authorize(request, "delete")
    if isinstance(authorized, Response):
        return authorized
    account, client_id = authorized
    fault = await apply_delay(state.pick_fault("youtube", account))
    if fault is not None and fault.kind != "reply_lost":
        return _fault_reply(fault)
    if not spend_quota(state, client_id, "delete"):
        return _quota_exceeded()
    entry = state.find_entry("youtube", request.query_params.get("id", ""))
    if entry is None or entry.withdrawn is not None:
        return yt_error(
            404,
            "videoNotFound",
            "The video that you are trying to delete cannot be found.",
        )
    if entry.account != account:
        return yt_error(403, "forbidden", "The video that you are trying to delete is not yours.")
    state.withdraw(entry, "deleted")
    if fault is not None:
        return LostReply()
    return Response(status_code=204)


routes = [
    Route("/upload/youtube/v3/videos", start_upload, methods=["POST"]),
    Route("/resumable/upload/youtube/v3/videos", start_upload, methods=["POST"]),
    Route("/upload/youtube/v3/videos", upload_chunk, methods=["PUT"]),
    Route("/resumable/upload/youtube/v3/videos", upload_chunk, methods=["PUT"]),
    Route("/youtube/v3/channels", channels_list, methods=["GET"]),
    Route("/youtube/v3/playlistItems", playlist_items, methods=["GET"]),
    Route("/youtube/v3/videos", delete_video, methods=["DELETE"]),
]
