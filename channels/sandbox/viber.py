"""Viber channel post API emulator: /pa/get_account_info, /pa/set_webhook and /pa/post.

Every reply is HTTP 200 with `status` (0 ok) and `status_message`, like Viber. The channel
is named by its token (`X-Viber-Auth-Token: <account>[.<anything>]`); its superadmin member
id is `<account>-admin`. The ledger hash is the SHA-256 of `text` as received.

Strict, as the real platform (docs/sandbox.md):
- `/pa/post` answers status 10 (webhookNotSet) until `set_webhook` succeeded for the channel.
- `set_webhook {url}` calls the URL back (`{"event": "webhook", …}`, signed with
  `X-Viber-Content-Signature` = hex HMAC-SHA256 of the body keyed with the token) and sets
  it only if the answer is 200; otherwise status 1. The call goes through make_app's
  `callback_transport` (in-process) or over the network (loopback).
- A picture needs `media`, a JPEG URL (`.jpg`/`.jpeg`); its `text` (caption) is at most 768
  characters; when the picture can be fetched (the sandbox's own `/_sandbox/media/…`, or
  through the callback transport) it must be a JPEG of at most 1 MB, else status 3.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels.sandbox.core import Fault, SandboxState, apply_delay
from channels.sandbox.samples import media_bytes
from channels.sandbox.web import LostReply, callback_client, json_reply, read_params, state_of

TEXT_LIMIT = 7000
CAPTION_LIMIT = 768
PICTURE_MAX_BYTES = 1024 * 1024
STATUS_MESSAGES = {
    0: "ok",
    1: "invalidUrl",
    2: "invalidAuthToken",
    3: "badData",
    4: "missingData",
    5: "receiverNotRegistered",
    6: "receiverNotSubscribed",
    7: "blocked",
    8: "notFound",
    9: "suspended",
    10: "webhookNotSet",
    12: "tooManyRequests",
    13: "apiVersionNotSupported",
}


def viber_status(status: int, message: str | None = None) -> Response:
    return json_reply({"status": status, "status_message": message or STATUS_MESSAGES[status]})


def _fault_reply(fault: Fault) -> Response:
    if fault.kind == "expired_token":
        return viber_status(2)
    if fault.kind == "rate_limit":
        return viber_status(12)
    if fault.kind == "server_error":
        return Response("Internal Server Error", status_code=fault.status or 500)
    code = int(fault.code) if fault.code is not None else 3
    return viber_status(code, STATUS_MESSAGES.get(code, "error"))


def admin_id(account: str) -> str:
    return f"{account}-admin"


def webhooks(state: SandboxState) -> dict[str, str]:
    """Channel (account) → the webhook URL set for it."""
    found: dict[str, str] = state.platform_state["viber"].setdefault("webhooks", {})
    return found


async def _auth(request: Request) -> tuple[str | None, Response | None]:
    state = state_of(request)
    token = request.headers.get("x-viber-auth-token")
    if not token or not state.token_valid(token):
        return None, viber_status(2)
    return state.account_of_token(token), None


async def account_info(request: Request) -> Response:
    account, early = await _auth(request)
    if early is not None or account is None:
        return early or viber_status(2)
    return json_reply(
        {
            "status": 0,
            "status_message": "ok",
            "id": f"pa:{account}",
            "chat_hostname": "SN-CHAT-01_",
            "name": f"Kênh {account}",
            "uri": account,
            "subscribers_count": 1200,
            "webhook": webhooks(state_of(request)).get(account, ""),
            "members": [
                {"id": admin_id(account), "name": "Quản trị", "avatar": "", "role": "superadmin"},
                {"id": f"{account}-editor", "name": "Biên tập", "avatar": "", "role": "admin"},
            ],
        }
    )


async def set_webhook(request: Request) -> Response:
    state = state_of(request)
    account, early = await _auth(request)
    if early is not None or account is None:
        return early or viber_status(2)
    params, _ = await read_params(request)
    url = params.get("url")
    if not isinstance(url, str):
        return viber_status(4)
    if not url:  # an empty URL removes the webhook
        webhooks(state).pop(account, None)
        return json_reply({"status": 0, "status_message": "ok"})
    token = request.headers.get("x-viber-auth-token", "")
    body = json.dumps(
        {
            "event": "webhook",
            "timestamp": int(state.now().timestamp() * 1000),
            "chat_hostname": "SN-CHAT-01_",
            "message_token": state.next_id() * 1_000_003,
        }
    ).encode()
    signature = hmac.new(token.encode(), body, hashlib.sha256).hexdigest()
    try:
        async with callback_client(request) as client:
            answer = await client.post(
                url,
                content=body,
                headers={
                    "content-type": "application/json",
                    "X-Viber-Content-Signature": signature,
                },
            )
    except (httpx.HTTPError, OSError) as error:
        return viber_status(1, f"invalidUrl: webhook not reachable ({type(error).__name__})")
    if answer.status_code != 200:
        return viber_status(1, f"invalidUrl: webhook answered {answer.status_code}, not 200")
    webhooks(state)[account] = url
    return json_reply(
        {
            "status": 0,
            "status_message": "ok",
            "event_types": ["subscribed", "unsubscribed", "delivered", "seen", "failed"],
        }
    )


async def _picture_problem(request: Request, params: dict[str, Any]) -> str | None:
    """Why Viber would refuse this picture, or None."""
    media, caption = params.get("media"), params.get("text", "")
    if not isinstance(caption, str) or len(caption) > CAPTION_LIMIT:
        return f"badData: picture text longer than {CAPTION_LIMIT} characters"
    if not isinstance(media, str) or not media.startswith(("http://", "https://")):
        return "badData: picture media must be a URL"
    path = urlsplit(media).path
    if not path.lower().endswith((".jpg", ".jpeg")):
        return "badData: picture media must be a JPEG (.jpg/.jpeg)"
    data: bytes | None = None
    if path.startswith("/_sandbox/media/"):
        found = media_bytes(path.rsplit("/", 1)[-1])
        data = found[0] if found else None
    else:
        try:
            async with callback_client(request) as client:
                answer = await client.get(media)
            data = answer.content if answer.status_code == 200 else None
        except (httpx.HTTPError, OSError):
            data = None  # not fetchable here: Viber's own fetch decides
    if data is not None:
        if data[:3] != b"\xff\xd8\xff":
            return "badData: picture media is not a JPEG"
        if len(data) > PICTURE_MAX_BYTES:
            return f"badData: picture larger than 1 MB ({len(data)} bytes)"
    return None


async def post(request: Request) -> Response:
    state = state_of(request)
    account, early = await _auth(request)
    if early is not None or account is None:
        return early or viber_status(2)
    params, _ = await read_params(request)
    if params.get("__invalid_json__"):
        return viber_status(3)
    if account not in webhooks(state):
        return viber_status(10)
    fault = await apply_delay(state.pick_fault("viber", account))
    if fault is not None and fault.kind != "reply_lost":
        return _fault_reply(fault)
    sender = params.get("from")
    kind = params.get("type")
    if not sender or not kind:
        return viber_status(4)
    if sender != admin_id(account):
        return viber_status(3, "badData: 'from' is not a superadmin of this channel")
    if kind == "text":
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            return viber_status(4)
        if len(text) > TEXT_LIMIT:
            return viber_status(3, f"badData: text longer than {TEXT_LIMIT} characters")
    elif kind == "picture":
        if not params.get("media"):
            return viber_status(4)
        why = await _picture_problem(request, params)
        if why:
            return viber_status(3, why)
        text = str(params.get("text", ""))
    elif kind in ("video", "file", "url"):
        if not params.get("media"):
            return viber_status(4)
        text = str(params.get("text", ""))
    else:
        return viber_status(3)
    token = state.next_id() * 1_000_003
    payload: dict[str, Any] = {k: v for k, v in params.items() if k != "from"}
    state.record("viber", account, str(token), str(text), payload)
    if fault is not None:
        return LostReply()
    return json_reply(
        {
            "status": 0,
            "status_message": "ok",
            "message_token": token,
            "chat_hostname": "SN-CHAT-01_",
        }
    )


routes = [
    Route("/pa/get_account_info", account_info, methods=["POST"]),
    Route("/pa/set_webhook", set_webhook, methods=["POST"]),
    Route("/pa/post", post, methods=["POST"]),
]
