"""Viber channel post API emulator: /pa/get_account_info and /pa/post.

Every reply is HTTP 200 with `status` (0 ok) and `status_message`, like Viber. The channel
is named by its token (`X-Viber-Auth-Token: <account>[.<anything>]`); its superadmin member
id is `<account>-admin`. The ledger hash is the SHA-256 of `text` as received.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels.sandbox.core import Fault, apply_delay
from channels.sandbox.web import LostReply, json_reply, read_params, state_of

TEXT_LIMIT = 7000
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
            "members": [
                {"id": admin_id(account), "name": "Quản trị", "avatar": "", "role": "superadmin"},
                {"id": f"{account}-editor", "name": "Biên tập", "avatar": "", "role": "admin"},
            ],
        }
    )


async def post(request: Request) -> Response:
    state = state_of(request)
    account, early = await _auth(request)
    if early is not None or account is None:
        return early or viber_status(2)
    params, _ = await read_params(request)
    if params.get("__invalid_json__"):
        return viber_status(3)
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
    elif kind in ("picture", "video", "file", "url"):
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
    Route("/pa/post", post, methods=["POST"]),
]
