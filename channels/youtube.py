"""YouTube through google-api-python-client: resumable `videos.insert` with MediaFileUpload.

Payload: `{"snippet": {title, description, tags, categoryId: "25", defaultLanguage},
"status": {privacyStatus, selfDeclaredMadeForKids}, "media_url"}` — snippet and status are the
request body; `media_url` is the video file to upload (not sent). An article without a video
cannot go to YouTube: `adapt` returns an `error` problem and no payload.

Limits as YouTube counts them: title ≤ 100 characters, description ≤ 5000 UTF-8 bytes, neither
with `<` or `>` (replaced by ‹ ›); tags ≤ 500 characters in total, commas counted, a tag with a
space +2.

Privacy: `privacy_status` defaults to `private`, because YouTube locks every video uploaded
from an API project that has not passed its compliance audit to private viewing; `adapt` says
so with an info problem. Set `public` once the project is audited.

Tokens (docs/channels.md, "YouTube and X tokens"): the account's secret is google-auth's
authorized-user JSON (`token`, `refresh_token`, `client_id`, `client_secret`, `scopes`,
`expiry`), which `publisher.secrets` turns into `Credentials`. Access tokens live about an
hour: `channels.token_renewal.TokenRenewal` renews them through google-auth's own refresh code
(`google.oauth2.credentials.Credentials.refresh` with `GoogleAuthRequest`, a transport over the
injected httpx client), before expiry or once after a 401, and saves the new token through the
`TokenStore` before using it. In sandbox mode the token URI is `<sandbox>/youtube-oauth/token`.

Lost replies: a resumable session is itself a record of the upload. When the reply to a chunk
is lost, the session is asked for its status (the library's own `next_chunk` after an error
sends `PUT` with `Content-Range: bytes */TOTAL`): a completed session answers the video, so
the send ends `sent` without a second upload; an incomplete one resumes where it stopped. Only
when the session cannot be asked is the outcome unknown.

Recall: `withdraw` is `videos.delete` (404 = already gone); it needs `youtube.force-ssl` or
`youtube`, which is why the consent asks for it (`YouTubeSettings.scopes`). `check` asks
`channels.list?mine=true` (needs `youtube.readonly`, also asked for reconcile).

Transport: the client library is synchronous (httplib2). `send` runs it in a worker thread
with an injected `http=` object (`HttpBridge`) that hands every request back to the event loop
on the injected `httpx.AsyncClient`; in sandbox mode it rewrites the Google host to the
sandbox prefix, so the library's real resumable protocol (`next_chunk`) runs against the
emulator in-process. Reconcile: the match hash is SHA-256 of canonical JSON `{title,
description}`, which `playlistItems.list` on the uploads playlist returns.

One-time consent (not run in tests): `python -m channels.youtube consent CLIENT_SECRETS.json`
runs google-auth-oauthlib's installed-app flow for `YouTubeSettings.scopes` and prints the
authorized-user JSON to store for the account (see `consent_flow`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import google.auth.exceptions
import google.auth.transport
import google.oauth2.credentials
import httplib2
import httpx
from googleapiclient.discovery import build_from_document
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaFileUpload
from pydantic import BaseModel

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
    TokenSet,
    TokenStore,
    WithdrawMode,
)
from channels.compose import clean_line, compose, effective_template
from channels.httpio import classify_transport_error
from channels.token_renewal import Renewed, TokenRenewal
from publisher.domain import Article, ChannelAccount, Platform, Unit, canonical_json, sha256_hex
from publisher.text import nfc, truncate_words, utf8_length

TITLE_LIMIT = 100
DESCRIPTION_BYTES = 5000
TAGS_LIMIT = 500
NEWS_AND_POLITICS = "25"
UPLOAD_SCOPE = "https://www.googleapis.com/auth/youtube.upload"
READONLY_SCOPE = "https://www.googleapis.com/auth/youtube.readonly"
FORCE_SSL_SCOPE = "https://www.googleapis.com/auth/youtube.force-ssl"
MANAGE_SCOPE = "https://www.googleapis.com/auth/youtube"
UPLOAD_SCOPES = frozenset({UPLOAD_SCOPE, MANAGE_SCOPE, FORCE_SSL_SCOPE})
READ_SCOPES = frozenset({READONLY_SCOPE, MANAGE_SCOPE, FORCE_SSL_SCOPE})
DELETE_SCOPES = frozenset({FORCE_SSL_SCOPE, MANAGE_SCOPE})
GOOGLE_HOSTS = ("https://youtube.googleapis.com", "https://www.googleapis.com")
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
PACIFIC = ZoneInfo("America/Los_Angeles")
REAUTHORISE = (
    "a person must re-authorise the channel (python -m channels.youtube consent "
    "CLIENT_SECRETS.json) and store the JSON it prints"
)


class YouTubeSettings(BaseModel):
    # Private until the API project passes YouTube's audit: unaudited projects' uploads are
    # locked private whatever is asked (YouTube Data API, videos.insert).
    privacy_status: str = "private"
    category_id: str = NEWS_AND_POLITICS
    chunk_size: int = 8 * 1024 * 1024
    num_retries: int = 3  # the library's own retries of 5xx/429 inside one chunk
    request_timeout_s: float = 300.0
    # What the consent asks for: upload to publish; readonly to read uploads back (reconcile)
    # and check the account; force-ssl to delete a recalled video. Drop force-ssl to keep
    # recall manual; youtube.upload alone cannot even list the channel's own uploads.
    scopes: tuple[str, ...] = (UPLOAD_SCOPE, READONLY_SCOPE, FORCE_SSL_SCOPE)
    refresh_margin_s: float = 300.0  # renew when the access token has less left than this
    resume_attempts: int = 2  # status queries of a session after a lost chunk reply
    token_uri: str | None = None  # None: Google's, or `<sandbox>/youtube-oauth/token`


def _no_angles(text: str) -> str:
    return text.replace("<", "‹").replace(">", "›")


def tags_length(tags: list[str]) -> int:
    return sum(len(t) + (2 if " " in t else 0) for t in tags) + max(0, len(tags) - 1)


def seconds_until_pacific_midnight(now: datetime) -> float:
    local = now.astimezone(PACIFIC)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(60.0, (midnight - local).total_seconds())


def classify_youtube_error(
    status: int, reason: str, message: str, *, media_sent: bool, now: datetime | None = None
) -> SendError:
    """A YouTube error reply → classified error. `media_sent`: chunks had started."""
    code = f"{status}:{reason}" if reason else str(status)
    text = f"YouTube {status} {reason}: {message}".strip()
    if status == 401:
        return SendError(ErrorKind.AUTH, text, platform_code=code)
    if reason == "insufficientPermissions":  # the consent lacks a scope: every call will fail
        return SendError(
            ErrorKind.AUTH,
            f"{text} — the token lacks the scope this needs; {REAUTHORISE}",
            platform_code=code,
        )
    if reason == "quotaExceeded":
        wait = seconds_until_pacific_midnight(now or datetime.now(UTC))
        return SendError(ErrorKind.RATE_LIMITED, text, retry_after=wait, platform_code=code)
    if reason == "uploadLimitExceeded":
        return SendError(ErrorKind.RATE_LIMITED, text, retry_after=86400.0, platform_code=code)
    if status == 429 or reason in ("rateLimitExceeded", "userRateLimitExceeded"):
        return SendError(ErrorKind.RATE_LIMITED, text, retry_after=60.0, platform_code=code)
    if 400 <= status < 500:
        return SendError(ErrorKind.PERMANENT, text, platform_code=code)
    if media_sent:
        return SendError(ErrorKind.UNKNOWN_OUTCOME, text, platform_code=code)
    # a resumable session alone creates no video: a 5xx on the session request published nothing
    return SendError(ErrorKind.BEFORE_SEND, text, platform_code=code)


def _http_error_parts(error: HttpError) -> tuple[int, str, str]:
    try:
        body = json.loads(error.content)
        details = body["error"]
        reason = str((details.get("errors") or [{}])[0].get("reason", ""))
        return int(error.resp.status), reason, str(details.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        return int(error.resp.status), "", str(error)


class HttpBridge:
    """An httplib2-compatible `http` for google-api-python-client, run in a worker thread,
    that performs each request on the event loop with the injected `httpx.AsyncClient`."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        loop: asyncio.AbstractEventLoop,
        token: str,
        base_url: str | None,
        timeout: float,
    ) -> None:
        self.http, self.loop, self.token = http, loop, token
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout = timeout
        self.media_sent = False  # a PUT of upload bytes has started
        self.timeout_value = timeout  # httplib2 attribute some helpers read

    def _target(self, uri: str) -> str:
        if self.base_url:
            for host in GOOGLE_HOSTS:
                if uri.startswith(host):
                    return self.base_url + uri[len(host) :]
        return uri

    def request(
        self,
        uri: str,
        method: str = "GET",
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        redirections: int = 5,
        connection_type: Any = None,
    ) -> tuple[httplib2.Response, bytes]:
        del redirections, connection_type
        send_headers = dict(headers or {})
        send_headers["authorization"] = f"Bearer {self.token}"
        if method == "PUT":
            self.media_sent = True
        if hasattr(body, "read"):  # the library hands chunks over as a file-like slice
            body = body.read()
        content = body.encode("utf-8") if isinstance(body, str) else body
        future = asyncio.run_coroutine_threadsafe(
            self.http.request(method, self._target(uri), content=content, headers=send_headers),
            self.loop,
        )
        response = future.result(self.timeout)
        info = {k.lower(): v for k, v in response.headers.items()}
        info["status"] = str(response.status_code)
        return httplib2.Response(info), response.content


class _GoogleAuthResponse(google.auth.transport.Response):
    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return dict(self._response.headers)

    @property
    def data(self) -> bytes:
        return self._response.content


class GoogleAuthRequest(google.auth.transport.Request):
    """google-auth's transport interface over the injected `httpx.AsyncClient`, for use in a
    worker thread (as `HttpBridge`): google-auth's own refresh code runs unchanged, against
    Google or the sandbox's token endpoint."""

    def __init__(
        self, http: httpx.AsyncClient, loop: asyncio.AbstractEventLoop, timeout: float
    ) -> None:
        self.http, self.loop, self.timeout = http, loop, timeout
        # The token endpoint's `scope` (what the token may do). google-auth keeps it only when
        # scopes were asked for, and asking for more than the consent granted fails the
        # refresh, so the channel asks for none and reads the answer here.
        self.granted_scope: str | None = None

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> google.auth.transport.Response:
        future = asyncio.run_coroutine_threadsafe(
            self.http.request(method, url, content=body, headers=dict(headers or {})), self.loop
        )
        try:
            response = future.result(timeout or self.timeout)
        except (httpx.TransportError, OSError, TimeoutError) as error:
            # google-auth is not annotated; TransportError is what its refresh code expects
            failure = f"{type(error).__name__}: {error}"
            raise google.auth.exceptions.TransportError(failure) from error  # type: ignore[no-untyped-call]
        if response.status_code == 200:
            with contextlib.suppress(ValueError, AttributeError):
                scope = response.json().get("scope")
                if isinstance(scope, str):
                    self.granted_scope = scope
        return _GoogleAuthResponse(response)


_DISCOVERY: dict[str, Any] = {}


def _discovery_document() -> str:
    """The youtube v3 discovery document bundled with the library (no network)."""
    if "doc" not in _DISCOVERY:
        from googleapiclient import discovery_cache

        path = os.path.join(
            os.path.dirname(discovery_cache.__file__), "documents", "youtube.v3.json"
        )
        with open(path, encoding="utf-8") as handle:
            _DISCOVERY["doc"] = handle.read()
    doc: str = _DISCOVERY["doc"]
    return doc


class YouTubeChannel(Channel):
    platform: ClassVar[Platform] = Platform.YOUTUBE
    display_name: ClassVar[str] = "YouTube"
    can_read_back: ClassVar[bool] = True
    text_limit: ClassVar[int | None] = DESCRIPTION_BYTES
    default_base_url: ClassVar[str] = "https://youtube.googleapis.com"
    sandbox_prefix: ClassVar[str] = "youtube"

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str | None = None,
        *,
        settings: YouTubeSettings | None = None,
        fetch: Callable[[str], Awaitable[bytes]] | None = None,
        token_store: TokenStore | None = None,
    ) -> None:
        super().__init__(http, base_url)
        self.settings = settings or YouTubeSettings()
        self.fetch = fetch
        self.tokens = TokenRenewal(
            self.display_name,
            token_store,
            margin_s=self.settings.refresh_margin_s,
            how_to_reauthorise=REAUTHORISE,
        )

    withdraw_mode: ClassVar[WithdrawMode] = WithdrawMode.DELETE

    @property
    def token_uri(self) -> str:
        """Google's token endpoint, or the sandbox's beside the YouTube emulator."""
        if self.settings.token_uri:
            return self.settings.token_uri
        return f"{self.api_base}-oauth/token" if self.base_url else GOOGLE_TOKEN_URI

    # --- adapt --------------------------------------------------------------------------
    def adapt(self, article: Article, unit: Unit, template: Template) -> Adapted:
        template, problems = effective_template(article, template)
        if not article.video:
            problems.append(
                Problem(
                    Severity.ERROR,
                    "no_video",
                    "YouTube cần video; bài này không có video (YouTube needs a video; none given)",
                )
            )
            return Adapted(None, tuple(problems))
        safe = dataclasses.replace(
            article,
            title=_no_angles(article.title),
            summary=_no_angles(article.summary),
            body_text=_no_angles(article.body_text),
        )
        safe_template = dataclasses.replace(
            template,
            lead_in=_no_angles(template.lead_in),
            source_line=_no_angles(template.source_line),
        )
        title = clean_line(safe.title)
        if len(title) > TITLE_LIMIT:
            title = truncate_words(title, TITLE_LIMIT)
            problems.append(
                Problem(
                    Severity.WARNING,
                    "title_truncated",
                    "Tiêu đề rút gọn còn 100 ký tự (title shortened)",
                )
            )
        composed = compose(
            safe, safe_template, limit=DESCRIPTION_BYTES, measure=utf8_length, full_body=True
        )
        problems += composed.problems
        tags: list[str] = []
        for keyword in template.hashtag_keywords:
            tag = _no_angles(" ".join(nfc(keyword).split())).replace(",", " ").strip()
            if tag and tag not in tags:
                if tags_length([*tags, tag]) > TAGS_LIMIT:
                    problems.append(
                        Problem(
                            Severity.WARNING,
                            "tags_dropped",
                            "Bớt thẻ cho vừa 500 ký tự (tags dropped)",
                        )
                    )
                    break
                tags.append(tag)
        if any(p.severity is Severity.ERROR for p in problems) or not title:
            return Adapted(None, tuple(problems))
        snippet: dict[str, Any] = {
            "title": title,
            "description": composed.text,
            "categoryId": self.settings.category_id,
            "defaultLanguage": article.language or "vi",
        }
        if tags:
            snippet["tags"] = tags
        payload = {
            "snippet": snippet,
            "status": {
                "privacyStatus": self.settings.privacy_status,
                "selfDeclaredMadeForKids": False,
            },
            "media_url": article.video,
        }
        if self.settings.privacy_status == "private":
            problems.append(
                Problem(
                    Severity.INFO,
                    "uploaded_private",
                    "Video được tải lên ở chế độ riêng tư: YouTube khoá riêng tư mọi video tải "
                    "lên từ dự án API chưa qua kiểm định; đặt privacy_status = public khi dự án "
                    "đã được duyệt (uploaded as private: YouTube locks uploads from unaudited "
                    "API projects to private; set privacy_status to public once audited)",
                )
            )
        return Adapted(payload, tuple(problems), match_hash=self.match_hash(payload))

    def match_hash(self, payload: Mapping[str, Any]) -> str:
        snippet = payload.get("snippet") or {}
        return sha256_hex(
            canonical_json(
                {"title": snippet.get("title", ""), "description": snippet.get("description", "")}
            )
        )

    # --- send ---------------------------------------------------------------------------
    def _service(self, bridge: HttpBridge) -> Any:
        return build_from_document(_discovery_document(), http=bridge)

    async def _download(self, url: str, path: str) -> None:
        try:
            if self.fetch is not None:
                data = await self.fetch(url)
                await asyncio.to_thread(_write, path, data)
                return
            async with self.http.stream("GET", url) as response:
                if response.status_code >= 400:
                    kind = (
                        ErrorKind.PERMANENT
                        if response.status_code < 500
                        else (ErrorKind.BEFORE_SEND)
                    )
                    raise SendError(kind, f"video {url} answered {response.status_code}")
                with open(path, "wb") as handle:  # noqa: ASYNC230 - small local temp file
                    async for chunk in response.aiter_bytes():
                        handle.write(chunk)
        except SendError:
            raise
        except Exception as error:  # nothing was uploaded yet
            raise SendError(
                ErrorKind.BEFORE_SEND, f"could not fetch video {url}: {error}"
            ) from error

    # --- tokens -------------------------------------------------------------------------
    def _bridge(self, token: str) -> HttpBridge:
        return HttpBridge(
            self.http,
            asyncio.get_running_loop(),
            token,
            self.base_url,
            self.settings.request_timeout_s,
        )

    def _refresher(self, credentials: Credentials) -> Callable[[str], Awaitable[Renewed]]:
        async def refresh(refresh_token: str) -> Renewed:
            request = GoogleAuthRequest(
                self.http, asyncio.get_running_loop(), self.settings.request_timeout_s
            )
            return await asyncio.to_thread(
                self._refresh_blocking, request, refresh_token, credentials
            )

        return refresh

    def _refresh_blocking(
        self, request: GoogleAuthRequest, refresh_token: str, credentials: Credentials
    ) -> Renewed:
        """google-auth's refresh grant (a worker thread: google-auth is synchronous)."""
        client_id = credentials.extra.get("client_id", "")
        client_secret = credentials.extra.get("client_secret", "")
        if not client_id or not client_secret:
            raise SendError(
                ErrorKind.AUTH,
                f"YouTube token cannot be renewed: client_id and client_secret are missing "
                f"from the account's credentials; {REAUTHORISE}",
            )
        google_credentials = google.oauth2.credentials.Credentials(  # type: ignore[no-untyped-call]
            token=None,
            refresh_token=refresh_token,
            token_uri=self.token_uri,
            client_id=client_id,
            client_secret=client_secret,
        )
        try:
            google_credentials.refresh(request)  # type: ignore[no-untyped-call]
        except google.auth.exceptions.RefreshError as error:
            if getattr(error, "retryable", False):
                raise SendError(
                    ErrorKind.BEFORE_SEND, f"Google token endpoint unavailable: {error}"
                ) from error
            raise SendError(
                ErrorKind.AUTH,
                f"Google refused to renew the YouTube token ({error}); {REAUTHORISE}",
                platform_code="invalid_grant" if "invalid_grant" in str(error) else None,
            ) from error
        except google.auth.exceptions.TransportError as error:
            raise SendError(
                ErrorKind.BEFORE_SEND, f"could not reach Google's token endpoint: {error}"
            ) from error
        expiry = google_credentials.expiry  # naive UTC, google-auth's convention
        granted = google_credentials.granted_scopes or (request.granted_scope or "").split()
        return Renewed(
            TokenSet(
                str(google_credentials.token),
                google_credentials.refresh_token,
                expiry.replace(tzinfo=UTC) if expiry is not None else None,
            ),
            frozenset(granted) if granted else None,
        )

    async def _token(
        self, account: ChannelAccount, credentials: Credentials
    ) -> tuple[TokenSet, bool]:
        return await self.tokens.fresh(account.id, credentials, self._refresher(credentials))

    async def _renew(
        self, account: ChannelAccount, credentials: Credentials, spent: TokenSet
    ) -> TokenSet:
        return await self.tokens.renew(account.id, credentials, spent, self._refresher(credentials))

    def _can_renew(self, credentials: Credentials, tokens: TokenSet) -> bool:
        return bool(tokens.refresh_token or credentials.extra.get("refresh_token"))

    # --- send ---------------------------------------------------------------------------
    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        media_url = payload.get("media_url")
        if not media_url:
            raise SendError(ErrorKind.PERMANENT, "YouTube payload has no media_url")
        body = {k: v for k, v in payload.items() if k in ("snippet", "status")}
        tokens, renewed = await self._token(account, credentials)
        handle, path = tempfile.mkstemp(suffix=".mp4", prefix="publisher-yt-")
        os.close(handle)
        try:
            await self._download(str(media_url), path)
            bridge = self._bridge(tokens.access_token)
            try:
                video = await asyncio.to_thread(self._upload_blocking, bridge, body, path)
            except SendError as error:
                # Refused for the token before any byte of video went out: no session, no
                # video. Renew once and start again.
                if (
                    error.kind is not ErrorKind.AUTH
                    or bridge.media_sent
                    or renewed
                    or not self._can_renew(credentials, tokens)
                    or not (error.platform_code or "").startswith("401")
                ):
                    raise
                tokens = await self._renew(account, credentials, tokens)
                bridge = self._bridge(tokens.access_token)
                video = await asyncio.to_thread(self._upload_blocking, bridge, body, path)
        finally:
            await asyncio.to_thread(_remove, path)
        video_id = str(video["id"])
        return Receipt(video_id, f"https://www.youtube.com/watch?v={video_id}")

    def _upload_blocking(self, bridge: HttpBridge, body: dict[str, Any], path: str) -> Any:
        media = MediaFileUpload(
            path, mimetype="video/mp4", chunksize=self.settings.chunk_size, resumable=True
        )
        try:
            insert = (
                self._service(bridge)
                .videos()
                .insert(part="snippet,status", body=body, media_body=media)
            )
            response = None
            resumes = 0
            while response is None:
                try:
                    _status, response = insert.next_chunk(num_retries=self.settings.num_retries)
                except HttpError:
                    raise
                except Exception as error:
                    session = getattr(insert, "resumable_uri", None)
                    if (
                        not bridge.media_sent
                        or session is None
                        or resumes >= self.settings.resume_attempts
                    ):
                        raise
                    # The reply to a chunk was lost. The next `next_chunk` asks the session
                    # for its status first: a finished upload answers the video.
                    resumes += 1
                    response = self._ask_session(insert, error)
            return response
        except HttpError as error:
            status, reason, message = _http_error_parts(error)
            raise classify_youtube_error(
                status, reason, message, media_sent=bridge.media_sent
            ) from error
        except SendError:
            raise
        except Exception as error:  # transport failures, lost replies
            cause = error
            if bridge.media_sent or not isinstance(error, httpx.TransportError | OSError):
                raise classify_transport_error(cause, idempotent=False) from error
            raise classify_transport_error(cause, idempotent=True) from error
        finally:
            fd = getattr(media, "_fd", None)
            if fd is not None:
                fd.close()

    def _ask_session(self, insert: Any, lost: BaseException) -> Any:
        """Status query of the upload session after a lost reply (None: resume uploading)."""
        try:
            _status, response = insert.next_chunk(num_retries=0)
        except Exception as error:
            raise SendError(
                ErrorKind.UNKNOWN_OUTCOME,
                f"YouTube upload reply lost ({type(lost).__name__}) and the upload session "
                f"could not be asked for its status ({type(error).__name__}: {error}); "
                "reconcile before sending again",
            ) from error
        return response

    # --- reconcile ----------------------------------------------------------------------
    async def _read(
        self,
        account: ChannelAccount,
        credentials: Credentials,
        blocking: Callable[[HttpBridge], Any],
    ) -> Any:
        """A read-only call with a fresh token, renewed once if YouTube refuses it."""
        tokens, renewed = await self._token(account, credentials)
        try:
            return await asyncio.to_thread(blocking, self._bridge(tokens.access_token))
        except SendError as error:
            if (
                error.kind is not ErrorKind.AUTH
                or renewed
                or not self._can_renew(credentials, tokens)
                or not (error.platform_code or "").startswith("401")
            ):
                raise
            tokens = await self._renew(account, credentials, tokens)
            return await asyncio.to_thread(blocking, self._bridge(tokens.access_token))

    async def find_published(
        self, account: ChannelAccount, credentials: Credentials, body_hash: str, since: datetime
    ) -> Receipt | None:
        found: Receipt | None = await self._read(
            account, credentials, lambda bridge: self._find_blocking(bridge, body_hash, since)
        )
        return found

    @staticmethod
    def _read_error(error: HttpError) -> SendError:
        status, reason, message = _http_error_parts(error)
        found = classify_youtube_error(status, reason, message, media_sent=False)
        if found.kind is ErrorKind.UNKNOWN_OUTCOME:
            found.kind = ErrorKind.BEFORE_SEND
        if reason == "insufficientPermissions":
            # The token may still upload (an upload-only consent): this read cannot be done,
            # which is no reason to stop the account's sends.
            found.kind = ErrorKind.PERMANENT
            found.message = (
                f"YouTube {status} {reason}: reading back needs youtube.readonly, which this "
                f"token lacks; {REAUTHORISE}"
            )
        return found

    def _find_blocking(self, bridge: HttpBridge, body_hash: str, since: datetime) -> Receipt | None:
        try:
            service = self._service(bridge)
            channels = service.channels().list(part="contentDetails", mine=True).execute()
            items = channels.get("items") or []
            if not items:
                return None
            uploads = items[0]["contentDetails"]["relatedPlaylists"]["uploads"]
            listing = (
                service.playlistItems()
                .list(part="snippet", playlistId=uploads, maxResults=50)
                .execute()
            )
        except HttpError as error:
            raise self._read_error(error) from error
        except Exception as error:
            raise classify_transport_error(error, idempotent=True) from error
        for item in listing.get("items", []):
            snippet = item.get("snippet") or {}
            published = (
                datetime.fromisoformat(str(snippet.get("publishedAt", "")).replace("Z", "+00:00"))
                if snippet.get("publishedAt")
                else None
            )
            if published is not None and published < since:
                continue
            candidate = sha256_hex(
                canonical_json(
                    {
                        "title": snippet.get("title", ""),
                        "description": snippet.get("description", ""),
                    }
                )
            )
            if candidate == body_hash:
                video_id = str((snippet.get("resourceId") or {}).get("videoId"))
                return Receipt(video_id, f"https://www.youtube.com/watch?v={video_id}")
        return None

    # --- recall and account checks --------------------------------------------------------
    def _cannot_delete(self, remote_id: str, detail: str) -> SendError:
        return SendError(
            ErrorKind.PERMANENT,
            f"Không xoá được video {remote_id}: token YouTube thiếu quyền youtube.force-ssl; "
            f"một người phải gỡ video trên YouTube Studio (cannot delete video {remote_id}: "
            f"{detail}; a person must remove it in YouTube Studio, or re-consent with "
            "youtube.force-ssl for recall to work)",
            platform_code="insufficientPermissions",
        )

    async def withdraw(
        self,
        account: ChannelAccount,
        credentials: Credentials,
        remote_id: str,
        *,
        notice: str,
    ) -> Receipt:
        """`videos.delete`; a video YouTube no longer has counts as withdrawn."""
        del notice  # YouTube videos are deleted, not edited
        await self._token(account, credentials)  # a renewal now tells the granted scopes
        granted = self.tokens.scopes(account.id, credentials)
        if granted is not None and not granted & DELETE_SCOPES:
            raise self._cannot_delete(remote_id, "the token was granted only " + " ".join(granted))

        def delete(bridge: HttpBridge) -> Receipt:
            try:
                self._service(bridge).videos().delete(id=remote_id).execute()
            except HttpError as error:
                status, reason, _message = _http_error_parts(error)
                if status == 404:
                    return Receipt(remote_id, None)  # already gone
                if reason == "insufficientPermissions":
                    raise self._cannot_delete(remote_id, "YouTube answered 403") from error
                raise self._read_error(error) from error
            except SendError:
                raise
            except Exception as error:  # deleting twice is harmless: safe to retry
                raise classify_transport_error(error, idempotent=True) from error
            return Receipt(remote_id, None)

        withdrawn: Receipt = await self._read(account, credentials, delete)
        return withdrawn

    async def check(self, account: ChannelAccount, credentials: Credentials) -> AccountCheck:
        """`channels.list?mine=true`: whose channel the token is for, its scopes and expiry."""

        def mine(bridge: HttpBridge) -> dict[str, Any]:
            try:
                reply: dict[str, Any] = (
                    self._service(bridge).channels().list(part="id,snippet", mine=True).execute()
                )
            except HttpError as error:
                raise self._read_error(error) from error
            except Exception as error:
                raise classify_transport_error(error, idempotent=True) from error
            return reply

        try:
            reply = await self._read(account, credentials, mine)
        except SendError as error:
            if error.kind in (ErrorKind.AUTH, ErrorKind.PERMANENT):
                return AccountCheck(False, error.message)
            raise
        tokens = await self.tokens.current(account.id, credentials)
        scopes = self.tokens.scopes(account.id, credentials) or frozenset()
        items = reply.get("items") or []
        if not items:
            return AccountCheck(
                False,
                "Tài khoản Google này chưa có kênh YouTube (this Google account has no "
                "YouTube channel)",
                tokens.expires_at,
                tuple(sorted(scopes)),
            )
        channel_id = str(items[0].get("id", ""))
        title = str((items[0].get("snippet") or {}).get("title", ""))
        ok = not scopes or bool(scopes & UPLOAD_SCOPES)
        detail = f"Kênh YouTube {title} ({channel_id}) · YouTube channel {title} ({channel_id})"
        configured = account.external_id
        if channel_id and configured.startswith("UC") and channel_id != configured:
            ok = False
            detail += (
                f"; token của kênh khác, tài khoản cấu hình là {configured} "
                f"(the token is for another channel; configured: {configured})"
            )
        if scopes and not scopes & UPLOAD_SCOPES:
            detail += "; thiếu quyền youtube.upload (cannot upload)"
        if scopes and not scopes & DELETE_SCOPES:
            detail += "; thiếu quyền youtube.force-ssl: thu hồi phải làm tay (recall is manual)"
        return AccountCheck(ok, detail, tokens.expires_at, tuple(sorted(scopes)))


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def consent_flow(
    client_secrets_file: str, port: int = 0, scopes: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """One-time OAuth consent for an uploading account (opens a browser; never run in tests).

    Returns google-auth's authorized-user JSON (`token`, `refresh_token`, `token_uri`,
    `client_id`, `client_secret`, `scopes`, `expiry`): store it as the account's secret
    (`publisher accounts set-token`), which `publisher.secrets` accepts as is. The refresh
    token is long-lived; the channel renews the hour-long access token from it.
    """
    from google_auth_oauthlib.flow import InstalledAppFlow

    asked = list(scopes or YouTubeSettings().scopes)
    flow = InstalledAppFlow.from_client_secrets_file(client_secrets_file, scopes=asked)
    # access_type=offline + prompt=consent: Google returns a refresh token every time
    creds = flow.run_local_server(
        port=port, open_browser=True, access_type="offline", prompt="consent"
    )
    info: dict[str, Any] = json.loads(creds.to_json())
    return info


if __name__ == "__main__":  # pragma: no cover - interactive
    if len(sys.argv) != 3 or sys.argv[1] != "consent":
        print("usage: python -m channels.youtube consent CLIENT_SECRETS.json", file=sys.stderr)
        raise SystemExit(2)
    print(json.dumps(consent_flow(sys.argv[2]), indent=2))
