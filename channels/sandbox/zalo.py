"""Zalo OA emulator: article create / verify / getslice / remove, broadcast (`oa/message`),
OA info (`oa/getoa`), and the OAuth v4 refresh.

Every API reply is HTTP 200 with `{"error": 0|code, "message", "data"}`. `article/create`
returns `data.token`; `article/verify` answers -214 (still processing) a configurable number
of times, then `data.id`. The ledger hash is the SHA-256 of the title, which `getslice`
returns. The OA is named by its access token (`<account>[.<anything>]`).

Strict, as the real platform (docs/sandbox.md):
- Access tokens must be minted by the OAuth endpoint here and live `zalo_access_ttl_s`
  (90,000 s) on the sandbox clock; a pre-made access token is refused with -216 (real Zalo
  access tokens are always minted), an expired one with -124. A pre-made *refresh* token is
  accepted (it stands for one obtained through the consent flow), so a channel with a stored
  refresh token gets a working pair.
- An article is listed by `getslice` only once processed: after `verify` gave its id, or
  `zalo_processing_s` sandbox seconds after it was created.
- `oa/message` broadcasts an article of this OA (a `media` template with
  `{media_type: article, attachment_id}`), counting the OA package's monthly allowance
  (`zalo_broadcasts_per_month`, months in Vietnam time); when it is used up: -211.
- `article/remove` marks the ledger entry withdrawn (`deleted`); an article it does not have
  (or no longer has) is -201.

Refresh-token rotation: a refresh returns a new access and refresh token. The old refresh
token stays usable until the new pair is first used; then it is revoked. Re-using the old one
before that returns a fresh pair and revokes the unused one. `zalo_strict_rotation` revokes
the old refresh token at once (worst case).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels.sandbox.core import Fault, LedgerEntry, SandboxState, TokenState, apply_delay
from channels.sandbox.web import LostReply, json_reply, read_params, state_of
from publisher.domain import VIETNAM_TZ

TITLE_LIMIT, AUTHOR_LIMIT, DESCRIPTION_LIMIT = 150, 50, 300
REFRESH_TTL_S = 90 * 86_400  # a refresh token lives 3 months


def zalo_reply(error: int, message: str, data: dict[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {"error": error, "message": message}
    if data is not None:
        body["data"] = data
    return json_reply(body)


_MESSAGES = {
    -32: "Exceeded rate limit",
    -201: "Parameters are invalid",
    -211: "Out of quota",
    -214: "Article is being processed",
    -216: "Access token is invalid",
    -124: "Access token has expired",
    -224: "OA has not purchased a service package",
    -230: "User has not interacted with OA in the last 7 days",
}


def _fault_reply(fault: Fault) -> Response:
    if fault.kind == "expired_token":
        return zalo_reply(-216, _MESSAGES[-216])
    if fault.kind == "rate_limit":
        return zalo_reply(-32, _MESSAGES[-32])
    if fault.kind == "server_error":
        return Response("Service Unavailable", status_code=fault.status or 503)
    code = int(fault.code) if fault.code is not None else -201
    return zalo_reply(code, _MESSAGES.get(code, "Error"))


def _zstate(state: SandboxState) -> dict[str, Any]:
    return state.platform_state["zalo"]


def _use_token(state: SandboxState, token: str) -> None:
    """First use of a rotated pair retires the refresh token it replaced."""
    rotations: dict[str, str] = _zstate(state).setdefault("retire_on_use", {})
    old = rotations.pop(token, None)
    if old is not None:
        state.revoked_tokens.add(old)
        for key in [k for k, v in rotations.items() if v == old]:
            rotations.pop(key)


async def _auth(request: Request) -> tuple[str, Response | None]:
    state = state_of(request)
    token = request.headers.get("access_token", "")
    verdict = state.token_state("zalo", token)
    if verdict == TokenState.EXPIRED:
        return "", zalo_reply(-124, _MESSAGES[-124])
    if verdict != TokenState.OK:  # pre-made (never minted here), revoked or missing
        return "", zalo_reply(-216, _MESSAGES[-216])
    _use_token(state, token)
    return state.account_of_token(token), None


def _invalid(why: str) -> Response:
    return zalo_reply(-201, f"Parameters are invalid: {why}")


def _processed(state: SandboxState, entry: LedgerEntry) -> bool:
    waited = state.now() - entry.accepted_at
    return bool(entry.extra.get("verified")) or waited >= timedelta(
        seconds=state.settings.zalo_processing_s
    )


def _article(state: SandboxState, account: str, article_id: Any) -> LedgerEntry | None:
    """This OA's article by id, if it has it (processed, not removed)."""
    entry = state.find_entry("zalo", str(article_id))
    if entry is None or entry.account != account or entry.withdrawn is not None:
        return None
    return entry if _processed(state, entry) else None


def validate_article(body: dict[str, Any]) -> str | None:
    if body.get("type") != "normal":
        return "type must be normal"
    title, author = body.get("title"), body.get("author", "")
    description = body.get("description")
    if not isinstance(title, str) or not title.strip() or len(title) > TITLE_LIMIT:
        return f"title must be 1-{TITLE_LIMIT} characters"
    if not isinstance(author, str) or len(author) > AUTHOR_LIMIT:
        return f"author must be at most {AUTHOR_LIMIT} characters"
    if (
        not isinstance(description, str)
        or not description.strip()
        or len(description) > DESCRIPTION_LIMIT
    ):
        return f"description must be 1-{DESCRIPTION_LIMIT} characters"
    items = body.get("body")
    if not isinstance(items, list) or not items:
        return "body must be a non-empty list"
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            return f"body[{index}] must be an object"
        kind = item.get("type")
        if kind == "text" and isinstance(item.get("content"), str) and item["content"].strip():
            continue
        if kind == "image" and isinstance(item.get("url"), str) and item["url"].startswith("http"):
            continue
        if kind == "video" and (item.get("url") or item.get("video_id")):
            continue
        return f"body[{index}] is not a valid text, image or video item"
    cover = body.get("cover")
    if cover is not None and (
        not isinstance(cover, dict)
        or cover.get("cover_type") != "photo"
        or not str(cover.get("photo_url", "")).startswith("http")
    ):
        return "cover must be {cover_type: photo, photo_url, status}"
    for key in ("status", "comment"):
        if body.get(key, "show") not in ("show", "hide"):
            return f"{key} must be show or hide"
    return None


async def create(request: Request) -> Response:
    state = state_of(request)
    account, early = await _auth(request)
    if early is not None:
        return early
    params, _ = await read_params(request)
    fault = await apply_delay(state.pick_fault("zalo", account))
    if fault is not None and fault.kind != "reply_lost":
        return _fault_reply(fault)
    why = validate_article(params)
    if why:
        return _invalid(why)
    article_id = f"{state.next_id():x}a7c9"
    token = f"tok{state.next_id()}"
    _zstate(state).setdefault("tokens", {})[token] = {
        "id": article_id,
        "polls_left": state.settings.zalo_processing_polls,
    }
    state.record("zalo", account, article_id, params["title"], params, token=token)
    if fault is not None:
        return LostReply()
    return zalo_reply(0, "Success", {"token": token})


async def verify(request: Request) -> Response:
    state = state_of(request)
    _account, early = await _auth(request)
    if early is not None:
        return early
    params, _ = await read_params(request)
    job = _zstate(state).get("tokens", {}).get(params.get("token"))
    if job is None:
        return _invalid("unknown token")
    if job["polls_left"] > 0:
        job["polls_left"] -= 1
        return zalo_reply(-214, _MESSAGES[-214])
    entry = state.find_entry("zalo", job["id"])
    if entry is not None:
        entry.extra["verified"] = True
    return zalo_reply(0, "Success", {"id": job["id"]})


async def getslice(request: Request) -> Response:
    state = state_of(request)
    account, early = await _auth(request)
    if early is not None:
        return early
    offset = int(request.query_params.get("offset", 0))
    limit = min(int(request.query_params.get("limit", 10)), 10)
    entries = [
        e
        for e in reversed(state.entries("zalo", account))
        if e.withdrawn is None and _processed(state, e)
    ]
    medias = [
        {
            "id": e.id,
            "type": "normal",
            "title": e.payload.get("title", ""),
            "status": e.payload.get("status", "show"),
            "total_view": 0,
            "total_share": 0,
            "create_date": int(e.accepted_at.timestamp() * 1000),
            "thumb": (e.payload.get("cover") or {}).get("photo_url", ""),
            "link_view": f"https://zalo.me/s/{account}/{e.id}",
        }
        for e in entries[offset : offset + limit]
    ]
    return zalo_reply(0, "Success", {"medias": medias, "total": len(entries)})


async def remove(request: Request) -> Response:
    state = state_of(request)
    account, early = await _auth(request)
    if early is not None:
        return early
    params, _ = await read_params(request)
    entry = state.find_entry("zalo", str(params.get("id", "")))
    if entry is None or entry.account != account or entry.withdrawn is not None:
        return _invalid("article not found")
    state.withdraw(entry, "deleted")
    return zalo_reply(0, "Success")


def _broadcast_article(params: dict[str, Any]) -> str | None:
    """The article id a broadcast body names, or None when it is not the article template."""
    try:
        attachment = params["message"]["attachment"]
        payload = attachment["payload"]
        elements = payload["elements"]
        if (
            not isinstance(params["recipient"], dict)
            or attachment["type"] != "template"
            or payload["template_type"] != "media"
            or len(elements) != 1
            or elements[0]["media_type"] != "article"
        ):
            return None
        return str(elements[0]["attachment_id"])
    except (KeyError, TypeError, IndexError):
        return None


async def message(request: Request) -> Response:
    """`POST /v2.0/oa/message`: broadcast an article to the OA's followers."""
    state = state_of(request)
    account, early = await _auth(request)
    if early is not None:
        return early
    params, _ = await read_params(request)
    fault = await apply_delay(state.pick_fault("zalo", account))
    if fault is not None and fault.kind != "reply_lost":
        return _fault_reply(fault)
    article_id = _broadcast_article(params)
    if article_id is None:
        return _invalid("recipient.target and a media template of one article are required")
    entry = _article(state, account, article_id)
    if entry is None:
        return _invalid(f"attachment_id {article_id} is not an article of this OA")
    local = state.now().astimezone(VIETNAM_TZ)
    month = f"{local.year:04d}-{local.month:02d}"
    sent: list[dict[str, Any]] = _zstate(state).setdefault("broadcasts", [])
    used = sum(1 for b in sent if b["account"] == account and b["month"] == month)
    if used >= state.settings.zalo_broadcasts_per_month:
        return zalo_reply(-211, _MESSAGES[-211])
    message_id = f"bc{state.next_id():x}"
    sent.append({"account": account, "article": article_id, "month": month, "id": message_id})
    entry.extra["broadcasts"] = int(entry.extra.get("broadcasts", 0)) + 1
    if fault is not None:
        return LostReply()
    return zalo_reply(0, "Success", {"message_id": message_id})


async def getoa(request: Request) -> Response:
    """`GET /v2.0/oa/getoa`: the OA the token opens."""
    account, early = await _auth(request)
    if early is not None:
        return early
    return zalo_reply(
        0,
        "Success",
        {
            "oa_id": account,
            "name": f"OA {account}",
            "description": "",
            "avatar": "",
            "cover": "",
            "is_verified": True,
            "num_follower": 1200,
        },
    )


async def access_token(request: Request) -> Response:
    """`POST /v4/oa/access_token` (oauth.zaloapp.com): refresh with rotation."""
    state = state_of(request)
    params, _ = await read_params(request)
    refresh = str(params.get("refresh_token", ""))
    if not request.headers.get("secret_key") or not params.get("app_id"):
        return json_reply({"error": -14002, "error_name": "Invalid app_id or secret_key"})
    if params.get("grant_type") != "refresh_token":
        return json_reply({"error": -14003, "error_name": "Invalid grant_type"})
    # a pre-made refresh token (STATIC) stands for one from the consent flow: accepted
    if state.token_state("zalo", refresh) not in (TokenState.OK, TokenState.STATIC):
        return json_reply(
            {
                "error": -14014,
                "error_name": "Invalid refresh token",
                "error_reason": "refresh token is used or expired",
            }
        )
    _use_token(state, refresh)  # using the new refresh token retires the one it replaced
    account = state.account_of_token(refresh)
    rotations: dict[str, str] = _zstate(state).setdefault("retire_on_use", {})
    for key in [k for k, v in rotations.items() if v == refresh]:  # an unused earlier pair
        state.revoked_tokens.add(key)
        rotations.pop(key)
    ttl = state.settings.zalo_access_ttl_s
    new_access = state.issue_token("zalo", account, ttl_s=ttl, kind="a")
    new_refresh = state.issue_token("zalo", account, ttl_s=REFRESH_TTL_S, kind="r")
    if state.settings.zalo_strict_rotation:
        state.revoked_tokens.add(refresh)
    else:
        rotations[new_access] = refresh
        rotations[new_refresh] = refresh
    return json_reply(
        {"access_token": new_access, "refresh_token": new_refresh, "expires_in": str(int(ttl))}
    )


routes = [
    Route("/v2.0/article/create", create, methods=["POST"]),
    Route("/v2.0/article/verify", verify, methods=["POST"]),
    Route("/v2.0/article/getslice", getslice, methods=["GET"]),
    Route("/v2.0/article/remove", remove, methods=["POST"]),
    Route("/v2.0/oa/message", message, methods=["POST"]),
    Route("/v2.0/oa/getoa", getoa, methods=["GET"]),
]
oauth_routes = [Route("/v4/oa/access_token", access_token, methods=["POST"])]
