"""Telegram Bot API emulator: getMe, sendMessage, sendPhoto under /bot<TOKEN>/<method>.

Validates the HTML parse mode subset (only the tags and entities the Bot API accepts) and
counts text after entity parsing in UTF-16 code units, like Telegram. The ledger hash is the
SHA-256 of the `text`/`caption` parameter exactly as received.
"""

from __future__ import annotations

import html
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels.sandbox.core import Fault, apply_delay
from channels.sandbox.web import LostReply, json_reply, read_params, state_of
from publisher.text import utf16_length

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
ALLOWED_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "tg-spoiler",
        "span",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)
_TOKEN_RE = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[^<>]*)?)\s*>|<|&(#\d+|#x[0-9a-fA-F]+|[A-Za-z]+);|&"
)
_ENTITIES = frozenset({"lt", "gt", "amp", "quot"})


class EntityError(ValueError):
    pass


def parse_html(text: str) -> str:
    """The visible text of a Telegram-HTML message, or `EntityError` like the Bot API."""
    out: list[str] = []
    stack: list[str] = []
    position = 0
    for match in _TOKEN_RE.finditer(text):
        out.append(text[position : match.start()])
        position = match.end()
        token = match.group(0)
        offset = len(text[: match.start()].encode("utf-8"))
        if match.group(2):
            closing, name, attrs = match.group(1), match.group(2).lower(), match.group(3) or ""
            if name not in ALLOWED_TAGS:
                raise EntityError(f'Unsupported start tag "{name}" at byte offset {offset}')
            if closing:
                if not stack or stack[-1] != name:
                    raise EntityError(f"Unexpected end tag at byte offset {offset}")
                stack.pop()
            else:
                if name == "a" and not re.match(r"""\s+href\s*=\s*(["'])[^"'<>]*\1""", attrs):
                    raise EntityError(
                        f"Can't find end of the href attribute at byte offset {offset}"
                    )
                if name == "span" and "tg-spoiler" not in attrs:
                    raise EntityError(f'Unsupported start tag "span" at byte offset {offset}')
                stack.append(name)
        elif token == "<":
            raise EntityError(f"Unexpected end of name token at byte offset {offset}")
        elif token == "&":
            raise EntityError(f"Unsupported HTML entity at byte offset {offset}")
        else:
            entity = match.group(4)
            if not entity.startswith("#") and entity not in _ENTITIES:
                raise EntityError(f'Unsupported HTML entity "&{entity};" at byte offset {offset}')
            out.append(html.unescape(token))
    out.append(text[position:])
    if stack:
        raise EntityError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def tg_error(code: int, description: str, parameters: dict[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return json_reply(body, status=code)


def _fault_reply(fault: Fault) -> Response:
    if fault.kind == "expired_token":
        return tg_error(401, "Unauthorized")
    if fault.kind == "rate_limit":
        wait = max(1, round(fault.wait))
        return tg_error(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})
    if fault.kind == "server_error":
        status = fault.status or 502
        return tg_error(status, "Bad Gateway" if status == 502 else "Internal Server Error")
    status = fault.status or 400
    return tg_error(status, str(fault.code or "Bad Request: chat not found"))


def _chat_id(value: str) -> int:
    if value.lstrip("-").isdigit():
        return int(value)
    return -1_000_000_000_000 - (sum(value.encode()) % 1_000_000)


async def bot_method(request: Request) -> Response:
    state = state_of(request)
    token, method = request.path_params["token"], request.path_params["method"]
    if not state.token_valid(token) or ":" not in token:
        return tg_error(401, "Unauthorized")
    params, files = await read_params(request)
    bot_id = int(token.split(":")[0]) if token.split(":")[0].isdigit() else 1
    if method == "getMe":
        return json_reply(
            {
                "ok": True,
                "result": {
                    "id": bot_id,
                    "is_bot": True,
                    "first_name": "Sandbox Bot",
                    "username": "sandbox_bot",
                    "can_join_groups": True,
                    "can_read_all_group_messages": False,
                    "supports_inline_queries": False,
                },
            }
        )
    if method not in ("sendMessage", "sendPhoto"):
        return tg_error(404, "Not Found")
    chat = str(params.get("chat_id", ""))
    if not chat:
        return tg_error(400, "Bad Request: chat_id is empty")
    fault = await apply_delay(state.pick_fault("telegram", chat))
    if fault is not None and fault.kind != "reply_lost":
        return _fault_reply(fault)
    field, limit = ("text", TEXT_LIMIT) if method == "sendMessage" else ("caption", CAPTION_LIMIT)
    raw = str(params.get(field, ""))
    visible = raw
    if params.get("parse_mode") == "HTML":
        try:
            visible = parse_html(raw)
        except EntityError as error:
            return tg_error(400, f"Bad Request: can't parse entities: {error}")
    if method == "sendMessage":
        if not visible.strip():
            return tg_error(400, "Bad Request: message text is empty")
        if utf16_length(visible) > limit:
            return tg_error(400, "Bad Request: message is too long")
    else:
        if "photo" not in params and "photo" not in files:
            return tg_error(400, "Bad Request: there is no photo in the request")
        if utf16_length(visible) > limit:
            return tg_error(400, "Bad Request: message caption is too long")
    message_id = state.next_id()
    payload = {field: raw, "parse_mode": params.get("parse_mode")}
    state.record("telegram", chat, str(message_id), raw, payload)
    if fault is not None:
        return LostReply()
    message: dict[str, Any] = {
        "message_id": message_id,
        "date": int(state.now().timestamp()),
        "chat": {"id": _chat_id(chat), "type": "channel", "title": "Sandbox channel"},
    }
    if not chat.lstrip("-").isdigit():
        message["chat"]["username"] = chat.lstrip("@")
    message[field] = visible
    if method == "sendPhoto":
        message["photo"] = [
            {
                "file_id": f"photo{message_id}",
                "file_unique_id": f"u{message_id}",
                "width": 800,
                "height": 600,
            }
        ]
    return json_reply({"ok": True, "result": message})


routes = [Route("/bot{token}/{method}", bot_method, methods=["GET", "POST"])]
