"""Telegram channels through python-telegram-bot 22 (`Bot` with `base_url` for the sandbox).

Payload: `{"text", "parse_mode": "HTML"}` for `sendMessage` (4096); with one image
`{"photo", "caption", "parse_mode"}` for `sendPhoto`; with 2–10 images `{"photos": [url…],
"caption", "parse_mode"}` for `sendMediaGroup`, the caption on the first item (1024 each).
Limits are counted in UTF-16 code units on the visible text (after entity parsing), like
Telegram. The HTML is built here from text escaped here (only `<b>` is added); article HTML
is never passed through.

Photos go by URL first: Telegram's servers fetch them (up to 5 MB, giving up after a few
seconds). When Telegram answers "failed to get HTTP URL content", "wrong file identifier/HTTP
URL specified" (what it says for a photo over 5 MB) or "wrong type of the web page content",
that refusal proves nothing was posted, so the bytes are fetched through the injected safe
fetcher (`fetch=`, the project's SSRF-checked fetcher, ≤ 10 MB), fitted by `channels.media`
and uploaded. An image that cannot be had either way is left out with a warning; with none
left the text goes alone.

Receipt: `remote_id` is the message id, or for a media group every message id joined by
commas, first first ("101,102,103"); `withdraw` splits it back. The URL points at the first.

Withdraw (`withdraw_mode = DELETE`): `deleteMessages` for every message of the post (Telegram
skips ids it no longer has, so a second withdraw succeeds). When Telegram refuses ("message
can't be deleted": older than 48 hours, or the bot lacks the right) the text or caption of
the first message is replaced by the notice instead, and the receipt says so with a warning.

Tokens: bot tokens do not expire; a revoked one is refused (401) → AUTH, as for a send.
`check` = `getMe` plus `getChatMember` (the bot must be an administrator allowed to post).

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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

import httpx
from telegram import Bot, ChatMemberAdministrator, ChatMemberOwner, InputMediaPhoto, Message
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

from channels.base import (
    AccountCheck,
    Adapted,
    Channel,
    Credentials,
    ErrorKind,
    Problem,
    Receipt,
    SendError,
    Severity,
    Template,
    WithdrawMode,
)
from channels.compose import Composed, compose, effective_template
from channels.httpio import classify_transport_error
from channels.media import TELEGRAM_PHOTO, ImageCache
from publisher.domain import Article, ChannelAccount, Platform, Unit, sha256_hex
from publisher.text import truncate_words, utf16_length

# Opt in to PTB's future behaviour (time periods as timedelta). Without it PTB 22 emits a
# deprecation warning from inside `RetryAfter.__init__`, which under warnings-as-errors turns
# a rate limit into an unrelated exception.
os.environ.setdefault("PTB_TIMEDELTA", "true")

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
MAX_PHOTOS = 10  # sendMediaGroup takes 2–10 items
READ_TIMEOUT_S = 30.0
# Telegram's refusals of a photo URL it could not use (PTB drops "Bad Request: " and
# capitalises): nothing was posted, so uploading the bytes instead is safe.
URL_REFUSALS = (
    "failed to get http url content",
    "wrong file identifier/http url specified",
    "wrong type of the web page content",
)
GONE = ("message to delete not found", "message to edit not found")
NOT_MODIFIED = "message is not modified"


def _refused_url(error: BaseException) -> bool:
    return isinstance(error, BadRequest) and any(
        text in error.message.lower() for text in URL_REFUSALS
    )


def _says(error: BadRequest, texts: Sequence[str]) -> bool:
    return any(text in error.message.lower() for text in texts)


def message_ids(remote_id: str) -> list[int]:
    """The message ids a receipt's `remote_id` names ("101" or "101,102,103")."""
    try:
        ids = [int(part) for part in remote_id.split(",")]
    except ValueError:
        raise SendError(
            ErrorKind.PERMANENT,
            f"remote_id {remote_id!r} is not a Telegram message id list (e.g. 101 or 101,102)",
        ) from None
    return ids


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


def message_url(message: Message) -> str | None:
    """The t.me address of a sent message, from the chat Telegram returned with it (not the
    configured `external_id`, which may be a numeric id of a public channel or name a channel
    since renamed): a chat with a public username has `https://t.me/<username>/<id>`; any
    other channel or supergroup (id -100<internal id>) `https://t.me/c/<internal id>/<id>`,
    which opens for its members only; basic groups and private chats have no message links."""
    chat, message_id = message.chat, message.message_id
    if chat.username:
        return f"https://t.me/{chat.username}/{message_id}"
    internal = str(chat.id)
    if internal.startswith("-100"):
        return f"https://t.me/c/{internal[4:]}/{message_id}"
    return None


class TelegramChannel(Channel):
    platform: ClassVar[Platform] = Platform.TELEGRAM
    display_name: ClassVar[str] = "Telegram"
    can_read_back: ClassVar[bool] = False
    text_limit: ClassVar[int | None] = TEXT_LIMIT
    default_base_url: ClassVar[str] = "https://api.telegram.org"
    sandbox_prefix: ClassVar[str] = "telegram"
    withdraw_mode: ClassVar[WithdrawMode] = WithdrawMode.DELETE

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str | None = None,
        *,
        fetch: Callable[[str], Awaitable[bytes]] | None = None,
        image_cache: ImageCache | None = None,
    ) -> None:
        super().__init__(http, base_url)
        # Bytes for the upload fallback; without a fetcher an unusable URL means no image.
        self.images = image_cache or (ImageCache(fetch) if fetch is not None else None)

    def adapt(self, article: Article, unit: Unit, template: Template) -> Adapted:
        template, problems = effective_template(article, template)
        photos = [u for u in article.images if u.startswith(("http://", "https://"))]
        limit = CAPTION_LIMIT if photos else TEXT_LIMIT
        composed = compose(article, template, limit=limit, measure=utf16_length)
        problems += composed.problems
        text = render_html(composed)
        if len(photos) > MAX_PHOTOS:
            problems.append(
                Problem(
                    Severity.WARNING,
                    "too_many_images",
                    f"Chỉ đăng {MAX_PHOTOS} ảnh đầu (only the first {MAX_PHOTOS} images)",
                )
            )
        payload: dict[str, Any]
        if len(photos) >= 2:
            payload = {"photos": photos[:MAX_PHOTOS], "caption": text, "parse_mode": "HTML"}
        elif photos:
            payload = {"photo": photos[0], "caption": text, "parse_mode": "HTML"}
        else:
            payload = {"text": text, "parse_mode": "HTML"}
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
            # Telegram answers a photo URL only after its servers tried to fetch it: PTB's 5 s
            # read timeout would turn a slow URL into an unknown outcome.
            request=HTTPXRequest(read_timeout=READ_TIMEOUT_S, **kwargs),
            get_updates_request=HTTPXRequest(**kwargs),
        )

    # --- send ---------------------------------------------------------------------------
    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        chat = account.external_id
        bot = self._bot(credentials.token)
        sent = False
        problems: list[Problem] = []
        try:
            await bot.initialize()  # getMe: nothing is posted yet
            sent = True
            messages: Sequence[Message]
            if "photos" in payload:
                messages = await self._send_group(bot, chat, payload, problems)
            elif "photo" in payload:
                messages = await self._send_photos(bot, chat, [payload["photo"]], payload, problems)
            else:
                messages = [
                    await bot.send_message(
                        chat, payload["text"], parse_mode=payload.get("parse_mode")
                    )
                ]
        except SendError:
            raise
        except Exception as error:
            raise classify_telegram_error(error, sent=sent) from error
        finally:
            with contextlib.suppress(Exception):  # closing a pool must not fail a sent post
                await bot.shutdown()
        first = messages[0]
        return Receipt(
            ",".join(str(m.message_id) for m in messages),
            message_url(first),
            accepted_at=first.date,
            problems=tuple(problems),
        )

    async def _send_group(
        self, bot: Bot, chat: str, payload: Mapping[str, Any], problems: list[Problem]
    ) -> Sequence[Message]:
        urls = list(payload["photos"])
        try:
            return await bot.send_media_group(chat, self._media(urls, payload))
        except BadRequest as error:
            if not _refused_url(error):
                raise
            return await self._upload_instead(bot, chat, urls, payload, problems, error)

    async def _send_photos(
        self,
        bot: Bot,
        chat: str,
        urls: list[str],
        payload: Mapping[str, Any],
        problems: list[Problem],
    ) -> Sequence[Message]:
        try:
            return [
                await bot.send_photo(
                    chat,
                    urls[0],
                    caption=payload.get("caption"),
                    parse_mode=payload.get("parse_mode"),
                )
            ]
        except BadRequest as error:
            if not _refused_url(error):
                raise
            return await self._upload_instead(bot, chat, urls, payload, problems, error)

    @staticmethod
    def _media(items: Sequence[str | bytes], payload: Mapping[str, Any]) -> list[InputMediaPhoto]:
        return [
            InputMediaPhoto(
                item,
                caption=payload.get("caption") if index == 0 else None,
                parse_mode=payload.get("parse_mode") if index == 0 else None,
            )
            for index, item in enumerate(items)
        ]

    async def _upload_instead(
        self,
        bot: Bot,
        chat: str,
        urls: list[str],
        payload: Mapping[str, Any],
        problems: list[Problem],
        refusal: BadRequest,
    ) -> Sequence[Message]:
        """Telegram could not use the URLs (nothing was posted): upload the bytes."""
        uploads: list[bytes] = []
        for url in urls:
            if self.images is None:
                problems.append(
                    Problem(
                        Severity.WARNING,
                        "image_missing",
                        f"Telegram không tải được ảnh {url} ({refusal.message}); không có bộ "
                        "tải ảnh để gửi trực tiếp (no fetcher to upload it instead)",
                    )
                )
                continue
            prepared, problem = await self.images.prepare(url, TELEGRAM_PHOTO)
            if prepared is None:
                problems.append(problem or Problem(Severity.WARNING, "image_missing", url))
                continue
            uploads.append(prepared.data)
        caption, parse_mode = payload.get("caption"), payload.get("parse_mode")
        if len(uploads) >= 2:
            return await bot.send_media_group(chat, self._media(uploads, payload))
        if uploads:
            return [await bot.send_photo(chat, uploads[0], caption=caption, parse_mode=parse_mode)]
        return [await bot.send_message(chat, caption or "", parse_mode=parse_mode)]

    # --- withdraw -----------------------------------------------------------------------
    async def withdraw(
        self,
        account: ChannelAccount,
        credentials: Credentials,
        remote_id: str,
        *,
        notice: str,
    ) -> Receipt:
        """Delete every message of the post; if Telegram refuses, replace the first
        message's text or caption with `notice`."""
        chat = account.external_id
        ids = message_ids(remote_id)
        bot = self._bot(credentials.token)
        try:
            await bot.initialize()
            try:
                await bot.delete_messages(chat, ids)  # ids Telegram no longer has are skipped
                return Receipt(remote_id)
            except BadRequest as error:
                if _says(error, GONE):
                    return Receipt(remote_id)
                refusal = error
            return await self._edit_instead(bot, chat, remote_id, ids, notice, refusal)
        except SendError:
            raise
        except Exception as error:
            # Deleting and editing are idempotent: any failure is safe to try again.
            raise classify_telegram_error(error, sent=False) from error
        finally:
            with contextlib.suppress(Exception):
                await bot.shutdown()

    async def _edit_instead(
        self,
        bot: Bot,
        chat: str,
        remote_id: str,
        ids: list[int],
        notice: str,
        refusal: BadRequest,
    ) -> Receipt:
        first = ids[0]
        try:
            try:
                await bot.edit_message_text(
                    truncate_words(notice, TEXT_LIMIT, utf16_length), chat_id=chat, message_id=first
                )
            except BadRequest as error:
                if "no text in the message" not in error.message.lower():
                    raise
                await bot.edit_message_caption(
                    chat_id=chat,
                    message_id=first,
                    caption=truncate_words(notice, CAPTION_LIMIT, utf16_length),
                )
        except BadRequest as error:
            if _says(error, GONE):  # someone deleted it meanwhile: withdrawn all the same
                return Receipt(remote_id)
            if not _says(error, (NOT_MODIFIED,)):  # already shows the notice: done before
                raise
        rest = (
            f"; {len(ids) - 1} ảnh còn lại vẫn hiển thị (the other {len(ids) - 1} photos of the "
            "album stay visible)"
            if len(ids) > 1
            else ""
        )
        return Receipt(
            remote_id,
            problems=(
                Problem(
                    Severity.WARNING,
                    "withdrawn_by_edit",
                    "Telegram không cho xoá, đã thay nội dung bằng thông báo (Telegram refused "
                    f"to delete: {refusal.message}; the text was replaced by the notice){rest}",
                ),
            ),
        )

    # --- account check ------------------------------------------------------------------
    async def check(self, account: ChannelAccount, credentials: Credentials) -> AccountCheck:
        """`getMe`, then `getChatMember` for the bot in the channel: it must be an
        administrator allowed to post. Bot tokens do not expire (`expires_at` None)."""
        chat = account.external_id
        bot = self._bot(credentials.token)
        try:
            me = await bot.get_me()
            member = await bot.get_chat_member(chat, me.id)
        except (InvalidToken, BadRequest, Forbidden) as error:
            refused = classify_telegram_error(error, sent=False)
            return AccountCheck(False, f"Telegram từ chối (Telegram refused): {refused.message}")
        except Exception as error:
            raise classify_telegram_error(error, sent=False) from error
        finally:
            with contextlib.suppress(Exception):
                await bot.shutdown()
        name = f"@{me.username}" if me.username else str(me.id)
        if isinstance(member, ChatMemberOwner):
            rights: tuple[str, ...] = (
                "can_post_messages",
                "can_edit_messages",
                "can_delete_messages",
            )
            can_post = True
        elif isinstance(member, ChatMemberAdministrator):
            rights = tuple(
                right
                for right in ("can_post_messages", "can_edit_messages", "can_delete_messages")
                if getattr(member, right)
            )
            can_post = member.can_post_messages is not False  # None: a group, where admins post
        else:
            return AccountCheck(
                False,
                f"Bot {name} không phải quản trị viên của {chat} (the bot is {member.status} "
                f"in {chat}, not an administrator who can post)",
            )
        if not can_post:
            return AccountCheck(
                False,
                f"Bot {name} là quản trị viên của {chat} nhưng không được đăng bài (the bot is "
                "an administrator without the right to post messages)",
                scopes=rights,
            )
        delete_note = (
            ""
            if "can_delete_messages" in rights
            else "; không có quyền xoá, thu hồi sẽ sửa nội dung (cannot delete: a recall edits)"
        )
        return AccountCheck(
            True,
            f"Bot {name} đăng được vào {chat}; mã bot không hết hạn{delete_note} (bot can post "
            f"to {chat}; bot tokens do not expire)",
            scopes=rights,
        )
