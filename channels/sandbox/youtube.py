"""YouTube Data API v3 emulator: resumable `videos.insert`, and uploads read-back.

Resumable protocol: `POST …/videos?uploadType=resumable&part=…` with the metadata answers 200
and `Location` (the session URI); `PUT <session>` with `Content-Range: bytes a-b/total` answers
308 with `Range: bytes=0-n` until the last byte, then 200 with the video resource;
`Content-Range: bytes */total` asks for the status. Metadata is validated like YouTube
(title, description bytes, tags total, category, publishAt) and the daily insert quota is
enforced. The ledger hash is SHA-256 of canonical JSON `{"title", "description"}`, which
`playlistItems.list` returns. The channel is named by its bearer token.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels.sandbox.core import Fault, SandboxState, apply_delay
from channels.sandbox.web import LostReply, json_reply, state_of
from publisher.domain import canonical_json
from publisher.text import utf8_length

CATEGORIES = frozenset(
    {"1", "2", "10", "15", "17", "19", "20", "22", "23", "24", "25", "26", "27", "28", "29"}
)
_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)|bytes \*/(\d+)")


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


def _token_account(request: Request) -> str | None:
    state = state_of(request)
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    return state.account_of_token(token) if state.token_valid(token) else None


async def start_upload(request: Request) -> Response:
    state = state_of(request)
    account = _token_account(request)
    if account is None:
        return _auth_error()
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
    day = state.now().date().isoformat()
    used = _ystate(state).setdefault("quota", {})
    if used.get((account, day), 0) >= state.settings.youtube_daily_uploads:
        return yt_error(
            403,
            "quotaExceeded",
            "The request cannot be completed because you have exceeded your quota.",
            "youtube.quota",
        )
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
    if "video" in session:
        return json_reply(session["video"])
    return _finish(state, session)


def _range(data: bytearray) -> dict[str, str]:
    return {"Range": f"bytes=0-{len(data) - 1}"} if data else {}


def _finish(state: SandboxState, session: dict[str, Any]) -> Response:
    account, meta = session["account"], session["meta"]
    day = state.now().date().isoformat()
    used = _ystate(state).setdefault("quota", {})
    used[(account, day)] = used.get((account, day), 0) + 1
    video_id = f"vid{state.next_id()}"
    snippet = {
        **meta.get("snippet", {}),
        "channelId": f"UC{account}",
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
    account = _token_account(request)
    if account is None:
        return _auth_error()
    return json_reply(
        {
            "kind": "youtube#channelListResponse",
            "items": [
                {
                    "kind": "youtube#channel",
                    "id": f"UC{account}",
                    "contentDetails": {"relatedPlaylists": {"uploads": f"UU{account}"}},
                }
            ],
        }
    )


async def playlist_items(request: Request) -> Response:
    state = state_of(request)
    account = _token_account(request)
    if account is None:
        return _auth_error()
    if request.query_params.get("playlistId") != f"UU{account}":
        return yt_error(
            404, "playlistNotFound", "The playlist cannot be found.", "youtube.playlistItem"
        )
    limit = min(int(request.query_params.get("maxResults", 5)), 50)
    entries = list(reversed(state.entries("youtube", account)))[:limit]
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


routes = [
    Route("/upload/youtube/v3/videos", start_upload, methods=["POST"]),
    Route("/resumable/upload/youtube/v3/videos", start_upload, methods=["POST"]),
    Route("/upload/youtube/v3/videos", upload_chunk, methods=["PUT"]),
    Route("/resumable/upload/youtube/v3/videos", upload_chunk, methods=["PUT"]),
    Route("/youtube/v3/channels", channels_list, methods=["GET"]),
    Route("/youtube/v3/playlistItems", playlist_items, methods=["GET"]),
]
