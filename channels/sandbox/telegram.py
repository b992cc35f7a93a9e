"""Telegram Bot API emulator under /bot<TOKEN>/<method>: getMe, getChatMember, sendMessage,
sendPhoto, sendMediaGroup, deleteMessage(s), editMessageText, editMessageCaption.

Validates the HTML parse mode subset (only the tags and entities the Bot API accepts) and
counts text after entity parsing in UTF-16 code units, like Telegram. The ledger hash is the
SHA-256 of the `text`/`caption` parameter exactly as received (a media group: the caption of
its first item); a media group is one ledger entry whose id is its message ids joined by
commas, as the channel's receipt names it.

Photos given by URL are fetched, as Telegram's servers do (`SandboxSettings.
telegram_media_transport`, a real GET when None), and refused with Telegram's own texts when
the fetch fails or is slow (`failed to get HTTP URL content`), is over 5 MB (`wrong file
identifier/HTTP URL specified`) or is not an image (`wrong type of the web page content`).
Uploaded photos (multipart) are accepted up to 10 MB. A message older than 48 hours (by the
sandbox clock) cannot be deleted (`message can't be deleted`); it can still be edited.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from datetime import timedelta
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels.sandbox.core import Fault, LedgerEntry, SandboxState, apply_delay
from channels.sandbox.web import LostReply, json_reply, read_params, state_of
from publisher.text import utf16_length

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
URL_PHOTO_LIMIT = 5 * 1024 * 1024  # what Telegram's servers download for a photo URL
UPLOAD_PHOTO_LIMIT = 10 * 1024 * 1024  # a photo uploaded as multipart
GROUP_MIN, GROUP_MAX = 2, 10
DELETE_WINDOW = timedelta(hours=48)
IMAGE_MAGIC = (b"\xff\xd8", b"\x89PNG", b"GIF8", b"RIFF")
URL_FAILED = "Bad Request: failed to get HTTP URL content"
URL_WRONG = "Bad Request: wrong file identifier/HTTP URL specified"
URL_NOT_IMAGE = "Bad Request: wrong type of the web page content"
SEND_METHODS = frozenset({"sendMessage", "sendPhoto", "sendMediaGroup"})
CHAT_METHODS = SEND_METHODS | {
    "deleteMessage",
    "deleteMessages",
    "editMessageText",
    "editMessageCaption",
    "getChatMember",
}
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


class Refused(Exception):
    """A Bot API refusal: (status, description)."""

    def __init__(self, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.description = description
        self.status = status


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


def _tg(state: SandboxState) -> dict[str, Any]:
    return state.platform_state["telegram"]


# --- set-up helpers for tests ----------------------------------------------------------------


def set_member(state: SandboxState, chat: str, bot_id: int, status: str, **rights: bool) -> None:
    """How `getChatMember` sees the bot in `chat` (default: an administrator with every right)."""
    _tg(state).setdefault("members", {})[(chat, bot_id)] = {"status": status, **rights}


def forget_chat(state: SandboxState, chat: str) -> None:
    """`chat` no longer exists for the bot (`chat not found`)."""
    _tg(state).setdefault("unknown_chats", set()).add(chat)


# --- photos --------------------------------------------------------------------------------


async def fetch_url(state: SandboxState, url: str) -> bytes:
    """Download a photo URL as Telegram's servers do, or `Refused` with Telegram's text."""
    settings = state.settings
    try:
        async with (
            asyncio.timeout(settings.telegram_url_timeout_s),
            httpx.AsyncClient(
                transport=settings.telegram_media_transport,
                follow_redirects=True,
                trust_env=False,
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise Refused(URL_FAILED)
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > URL_PHOTO_LIMIT:
                    raise Refused(URL_WRONG)
    except (httpx.HTTPError, TimeoutError, OSError):
        raise Refused(URL_FAILED) from None
    if not bytes(data[:4]).startswith(IMAGE_MAGIC):
        raise Refused(URL_NOT_IMAGE)
    return bytes(data)


async def _photo(
    state: SandboxState, value: Any, files: dict[str, bytes], field: str = "photo"
) -> str:
    """Check one photo: a URL (fetched), an upload (`attach://name` or a file part), or a
    file_id this sandbox handed out. Returns how it came ("url", "upload", "file_id"), which
    the ledger keeps."""
    if isinstance(value, str) and value.startswith("attach://"):
        data = files.get(value[len("attach://") :])
        if data is None:
            raise Refused("Bad Request: can't find attached file")
    elif isinstance(value, str) and value.startswith(("http://", "https://")):
        await fetch_url(state, value)
        return "url"
    elif isinstance(value, str) and value:
        if value not in _tg(state).setdefault("file_ids", set()):
            raise Refused(URL_WRONG)
        return "file_id"
    else:
        data = files.get(field)
        if data is None:
            raise Refused("Bad Request: there is no photo in the request")
    if len(data) > UPLOAD_PHOTO_LIMIT:
        raise Refused("Request Entity Too Large", 413)
    if not data.startswith(IMAGE_MAGIC):
        raise Refused("Bad Request: IMAGE_PROCESS_FAILED")
    return "upload"


def _visible(raw: str, parse_mode: Any, limit: int, too_long: str) -> str:
    visible = raw
    if parse_mode == "HTML":
        try:
            visible = parse_html(raw)
        except EntityError as error:
            raise Refused(f"Bad Request: can't parse entities: {error}") from None
    if utf16_length(visible) > limit:
        raise Refused(f"Bad Request: {too_long}")
    return visible


# --- messages ------------------------------------------------------------------------------


def _message(
    state: SandboxState, chat: str, message_id: int, field: str | None, visible: str | None
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": message_id,
        "date": int(state.now().timestamp()),
        "chat": {"id": _chat_id(chat), "type": "channel", "title": "Sandbox channel"},
    }
    if not chat.lstrip("-").isdigit():
        message["chat"]["username"] = chat.lstrip("@")
    if field == "photo":
        file_id = f"photo{message_id}"
        _tg(state).setdefault("file_ids", set()).add(file_id)
        message["photo"] = [
            {"file_id": file_id, "file_unique_id": f"u{message_id}", "width": 800, "height": 600}
        ]
        if visible:
            message["caption"] = visible
    elif field == "text":
        message["text"] = visible
    return message


def _find(state: SandboxState, chat: str, message_id: int) -> LedgerEntry | None:
    for entry in state.entries("telegram", chat):
        if message_id in entry.extra.get("message_ids", ()):
            return entry
    return None


def _alive(entry: LedgerEntry | None, message_id: int) -> bool:
    return entry is not None and message_id not in entry.extra.get("deleted_ids", set())


def _delete(state: SandboxState, chat: str, ids: list[int], *, skip_missing: bool) -> None:
    found = [(i, _find(state, chat, i)) for i in ids]
    alive = [(i, e) for i, e in found if e is not None and _alive(e, i)]
    if not skip_missing and len(alive) < len(ids):
        raise Refused("Bad Request: message to delete not found")
    if any(state.now() - e.accepted_at > DELETE_WINDOW for _, e in alive):
        raise Refused("Bad Request: message can't be deleted")
    for message_id, entry in alive:
        deleted: set[int] = entry.extra.setdefault("deleted_ids", set())
        deleted.add(message_id)
        if deleted >= set(entry.extra["message_ids"]):
            state.withdraw(entry, "deleted")


def _edit(state: SandboxState, chat: str, params: dict[str, Any], field: str) -> dict[str, Any]:
    try:
        message_id = int(params.get("message_id", ""))
    except ValueError:
        raise Refused("Bad Request: message identifier is not specified") from None
    entry = _find(state, chat, message_id)
    if entry is None or not _alive(entry, message_id):
        raise Refused("Bad Request: message to edit not found")
    kind = entry.extra["kinds"][message_id]
    if field == "text" and kind != "text":
        raise Refused("Bad Request: there is no text in the message to edit")
    if field == "caption" and kind != "photo":
        raise Refused("Bad Request: there is no caption in the message to edit")
    limit, too_long = (
        (TEXT_LIMIT, "message is too long")
        if field == "text"
        else (CAPTION_LIMIT, "message caption is too long")
    )
    raw = str(params.get(field, ""))
    visible = _visible(raw, params.get("parse_mode"), limit, too_long)
    if field == "text" and not visible.strip():
        raise Refused("Bad Request: message text is empty")
    texts: dict[int, str] = entry.extra.setdefault("texts", {})
    if texts.get(message_id) == visible:
        raise Refused(
            "Bad Request: message is not modified: specified new message content and reply "
            "markup are exactly the same as a current content and reply markup of the message"
        )
    texts[message_id] = visible
    state.withdraw(entry, "edited")
    return _message(state, chat, message_id, kind, visible)


def _record(
    state: SandboxState,
    chat: str,
    raw: str,
    payload: dict[str, Any],
    kinds: list[str],
    visible: str,
) -> list[int]:
    ids = [state.next_id() for _ in kinds]
    state.record(
        "telegram",
        chat,
        ",".join(str(i) for i in ids),
        raw,
        payload,
        message_ids=ids,
        kinds=dict(zip(ids, kinds, strict=True)),
        texts={ids[0]: visible},
    )
    return ids


async def _send(
    state: SandboxState, method: str, chat: str, params: dict[str, Any], files: dict[str, bytes]
) -> Any:
    if method == "sendMessage":
        raw = str(params.get("text", ""))
        visible = _visible(raw, params.get("parse_mode"), TEXT_LIMIT, "message is too long")
        if not visible.strip():
            raise Refused("Bad Request: message text is empty")
        payload = {"text": raw, "parse_mode": params.get("parse_mode")}
        [message_id] = _record(state, chat, raw, payload, ["text"], visible)
        return _message(state, chat, message_id, "text", visible)
    if method == "sendPhoto":
        raw = str(params.get("caption", ""))
        visible = _visible(
            raw, params.get("parse_mode"), CAPTION_LIMIT, "message caption is too long"
        )
        source = await _photo(state, params.get("photo"), files)
        payload = {"caption": raw, "parse_mode": params.get("parse_mode"), "photos": [source]}
        [message_id] = _record(state, chat, raw, payload, ["photo"], visible)
        return _message(state, chat, message_id, "photo", visible)
    # sendMediaGroup
    try:
        media = json.loads(str(params.get("media", "")))
    except ValueError:
        raise Refused("Bad Request: can't parse media JSON object") from None
    if not isinstance(media, list) or not media:
        raise Refused("Bad Request: media group must be a non-empty array")
    if len(media) < GROUP_MIN:
        raise Refused("Bad Request: media group must contain at least 2 items")
    if len(media) > GROUP_MAX:
        raise Refused("Bad Request: too many messages to send as an album")
    captions = []
    for item in media:
        if not isinstance(item, dict) or item.get("type") != "photo":
            raise Refused("Bad Request: wrong media type in the media group")
        raw = str(item.get("caption", ""))
        captions.append(
            (
                raw,
                _visible(raw, item.get("parse_mode"), CAPTION_LIMIT, "message caption is too long"),
            )
        )
    sources = [await _photo(state, item.get("media"), files) for item in media]
    raw, visible = captions[0]
    payload = {"caption": raw, "parse_mode": media[0].get("parse_mode"), "photos": sources}
    ids = _record(state, chat, raw, payload, ["photo"] * len(media), visible)
    return [
        {**_message(state, chat, i, "photo", text), "media_group_id": f"g{ids[0]}"}
        for i, (_, text) in zip(ids, captions, strict=True)
    ]


def _chat_member(
    state: SandboxState, chat: str, params: dict[str, Any], bot: dict[str, Any]
) -> Any:
    try:
        user_id = int(params.get("user_id", ""))
    except ValueError:
        raise Refused("Bad Request: invalid user_id specified") from None
    configured = _tg(state).get("members", {}).get((chat, user_id))
    user = bot if user_id == bot["id"] else {"id": user_id, "is_bot": False, "first_name": "User"}
    if configured is None:
        configured = {"status": "administrator"}
    status = configured["status"]
    if status != "administrator":
        return {"status": status, "user": user}
    rights = {
        "can_be_edited": False,
        "is_anonymous": False,
        "can_manage_chat": True,
        "can_delete_messages": True,
        "can_manage_video_chats": False,
        "can_restrict_members": False,
        "can_promote_members": False,
        "can_change_info": False,
        "can_invite_users": True,
        "can_post_stories": False,
        "can_edit_stories": False,
        "can_delete_stories": False,
        "can_post_messages": True,
        "can_edit_messages": True,
    }
    rights.update({k: v for k, v in configured.items() if k != "status"})
    return {"status": "administrator", "user": user, **rights}


async def bot_method(request: Request) -> Response:
    state = state_of(request)
    token, method = request.path_params["token"], request.path_params["method"]
    if not state.token_valid(token) or ":" not in token:
        return tg_error(401, "Unauthorized")
    params, files = await read_params(request)
    bot_id = int(token.split(":")[0]) if token.split(":")[0].isdigit() else 1
    bot = {
        "id": bot_id,
        "is_bot": True,
        "first_name": "Sandbox Bot",
        "username": "sandbox_bot",
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }
    if method == "getMe":
        return json_reply({"ok": True, "result": bot})
    if method not in CHAT_METHODS:
        return tg_error(404, "Not Found")
    chat = str(params.get("chat_id", ""))
    if not chat:
        return tg_error(400, "Bad Request: chat_id is empty")
    if chat in _tg(state).get("unknown_chats", set()):
        return tg_error(400, "Bad Request: chat not found")
    fault = await apply_delay(state.pick_fault("telegram", chat))
    if fault is not None and fault.kind != "reply_lost":
        return _fault_reply(fault)
    try:
        result: Any
        if method in SEND_METHODS:
            result = await _send(state, method, chat, params, files)
        elif method == "deleteMessage":
            try:
                message_id = int(params.get("message_id", ""))
            except ValueError:
                raise Refused("Bad Request: message identifier is not specified") from None
            _delete(state, chat, [message_id], skip_missing=False)
            result = True
        elif method == "deleteMessages":
            try:
                ids = [int(i) for i in json.loads(str(params.get("message_ids", "")))]
            except (ValueError, TypeError):
                raise Refused("Bad Request: message identifiers are not specified") from None
            if not 1 <= len(ids) <= 100:
                raise Refused("Bad Request: too many message identifiers specified")
            _delete(state, chat, ids, skip_missing=True)  # missing ones are skipped
            result = True
        elif method == "editMessageText":
            result = _edit(state, chat, params, "text")
        elif method == "editMessageCaption":
            result = _edit(state, chat, params, "caption")
        else:  # getChatMember
            result = _chat_member(state, chat, params, bot)
    except Refused as refused:
        return tg_error(refused.status, refused.description)
    if fault is not None:
        return LostReply()
    return json_reply({"ok": True, "result": result})


routes = [Route("/bot{token}/{method}", bot_method, methods=["GET", "POST"])]
