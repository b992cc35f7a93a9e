"""Telegram channels through python-telegram-bot 22 (`Bot` with `base_url` for the sandbox).

Payload: `{"text", "parse_mode": "HTML"}` for `sendMessage` (4096) or, when the article has
an image, `{"photo", "caption", "parse_mode": "HTML"}` for `sendPhoto` (1024). Limits are
counted in UTF-16 code units on the visible text (after entity parsing), like Telegram. The
HTML is built here from text escaped here (only `<b>` is added); article HTML is never passed
through.

The Bot API cannot read a channel's history: `can_read_back` is False and an ambiguous send
goes to a person. The match hash (SHA-256 of the text/caption as sent) is still recorded, so
the sandbox ledger can be checked.

In-process sandbox: when the injected client runs on `httpx.ASGITransport`, that transport
is handed to PTB's `HTTPXRequest(httpx_kwargs={"transport": …})`; otherwise PTB opens its own
connection pool (closing it must not close the shared client's pool).
"""

from __future__ import annotations

import contextlib
import html
import os
import warnings
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

import httpx
from telegram import Bot, Message
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from channels.base import Adapted, Channel, Credentials, ErrorKind, Receipt, SendError, Template
from channels.compose import Composed, compose, effective_template
from channels.httpio import classify_transport_error
from publisher.domain import Article, ChannelAccount, Platform, Unit, sha256_hex
from publisher.text import utf16_length

# Opt in to PTB's future behaviour (time periods as timedelta). Without it PTB 22 emits a
# deprecation warning from inside `RetryAfter.__init__`, which under warnings-as-errors turns
# a rate limit into an unrelated exception.
os.environ.setdefault("PTB_TIMEDELTA", "true")

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024


def render_html(composed: Composed) -> str:
    """Telegram HTML from composed blocks: every block escaped, the title in bold."""
    parts = []
    for kind, text in composed.blocks:
        escaped = html.escape(text, quote=False)
        parts.append(f"<b>{escaped}</b>" if kind == "title" else escaped)
    return composed.separator.join(parts)


def classify_telegram_error(error: BaseException, *, sent: bool) -> SendError:
    """A PTB exception → classified error. `sent`: the publish request had started."""
    if isinstance(error, RetryAfter):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PTB warns about int vs timedelta
            wait = error.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        return SendError(
            ErrorKind.RATE_LIMITED, str(error), retry_after=seconds, platform_code="429"
        )
    if isinstance(error, InvalidToken):
        return SendError(
            ErrorKind.AUTH, f"Telegram bot token rejected: {error}", platform_code="401"
        )
    if isinstance(error, ChatMigrated):
        return SendError(
            ErrorKind.PERMANENT,
            f"chat migrated to {error.new_chat_id}: update the account",
            platform_code="400",
        )
    if isinstance(error, Forbidden):
        return SendError(ErrorKind.PERMANENT, f"Telegram forbids: {error}", platform_code="403")
    if isinstance(error, BadRequest):
        return SendError(ErrorKind.PERMANENT, f"Telegram refused: {error}", platform_code="400")
    if isinstance(error, TimedOut | NetworkError):
        cause = error.__cause__
        if cause is not None and isinstance(cause, httpx.TransportError | OSError):
            return classify_transport_error(cause, idempotent=not sent)
        kind = ErrorKind.UNKNOWN_OUTCOME if sent else ErrorKind.BEFORE_SEND
        return SendError(kind, f"Telegram network error: {error}")
    if isinstance(error, TelegramError):
        kind = ErrorKind.UNKNOWN_OUTCOME if sent else ErrorKind.BEFORE_SEND
        return SendError(kind, f"Telegram error: {error}")
    return classify_transport_error(error, idempotent=not sent)


def message_url(chat: str, message_id: int) -> str | None:
    if chat.startswith("@"):
        return f"https://t.me/{chat[1:]}/{message_id}"
    if chat.startswith("-100"):
        return f"https://t.me/c/{chat[4:]}/{message_id}"
    return None


class TelegramChannel(Channel):
    platform: ClassVar[Platform] = Platform.TELEGRAM
    display_name: ClassVar[str] = "Telegram"
    can_read_back: ClassVar[bool] = False
    text_limit: ClassVar[int | None] = TEXT_LIMIT
    default_base_url: ClassVar[str] = "https://api.telegram.org"
    sandbox_prefix: ClassVar[str] = "telegram"

    def adapt(self, article: Article, unit: Unit, template: Template) -> Adapted:
        template, problems = effective_template(article, template)
        photo = next((u for u in article.images if u.startswith(("http://", "https://"))), None)
        limit = CAPTION_LIMIT if photo else TEXT_LIMIT
        composed = compose(article, template, limit=limit, measure=utf16_length)
        problems += composed.problems
        text = render_html(composed)
        payload: dict[str, Any] = (
            {"photo": photo, "caption": text, "parse_mode": "HTML"}
            if photo
            else {"text": text, "parse_mode": "HTML"}
        )
        if any(p.severity.value == "error" for p in problems):
            return Adapted(None, tuple(problems))
        return Adapted(payload, tuple(problems), match_hash=self.match_hash(payload))

    def match_hash(self, payload: Mapping[str, Any]) -> str:
        return sha256_hex(str(payload.get("text", payload.get("caption", ""))))

    def _bot(self, token: str) -> Bot:
        transport = getattr(self.http, "_transport", None)
        kwargs: dict[str, Any] = {}
        if isinstance(transport, httpx.ASGITransport):
            kwargs["httpx_kwargs"] = {"transport": transport}
        return Bot(
            token,
            base_url=f"{self.api_base}/bot",
            base_file_url=f"{self.api_base}/file/bot",
            request=HTTPXRequest(**kwargs),
            get_updates_request=HTTPXRequest(**kwargs),
        )

    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        chat = account.external_id
        bot = self._bot(credentials.token)
        sent = False
        try:
            await bot.initialize()  # getMe: nothing is posted yet
            sent = True
            message: Message
            if "photo" in payload:
                message = await bot.send_photo(
                    chat,
                    payload["photo"],
                    caption=payload.get("caption"),
                    parse_mode=payload.get("parse_mode"),
                )
            else:
                message = await bot.send_message(
                    chat, payload["text"], parse_mode=payload.get("parse_mode")
                )
        except Exception as error:
            raise classify_telegram_error(error, sent=sent) from error
        finally:
            with contextlib.suppress(Exception):  # closing a pool must not fail a sent post
                await bot.shutdown()
        return Receipt(
            str(message.message_id), message_url(chat, message.message_id), accepted_at=message.date
        )
