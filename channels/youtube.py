"""YouTube through google-api-python-client: resumable `videos.insert` with MediaFileUpload.

Payload: `{"snippet": {title, description, tags, categoryId: "25", defaultLanguage},
"status": {privacyStatus, selfDeclaredMadeForKids}, "media_url"}` — snippet and status are the
request body; `media_url` is the video file to upload (not sent). An article without a video
cannot go to YouTube: `adapt` returns an `error` problem and no payload.

Limits as YouTube counts them: title ≤ 100 characters, description ≤ 5000 UTF-8 bytes, neither
with `<` or `>` (replaced by ‹ ›); tags ≤ 500 characters in total, commas counted, a tag with a
space +2.

Transport: the client library is synchronous (httplib2). `send` runs it in a worker thread
with an injected `http=` object (`HttpBridge`) that hands every request back to the event loop
on the injected `httpx.AsyncClient`; in sandbox mode it rewrites the Google host to the
sandbox prefix, so the library's real resumable protocol (`next_chunk`) runs against the
emulator in-process. Reconcile: the match hash is SHA-256 of canonical JSON `{title,
description}`, which `playlistItems.list` on the uploads playlist returns.

One-time consent (not run in tests): `python -m channels.youtube consent CLIENT_SECRETS.json`
runs google-auth-oauthlib's installed-app flow for the `youtube.upload` scope and prints the
refresh token to store for the account (see `consent_flow`).
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

import httplib2
import httpx
from googleapiclient.discovery import build_from_document
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaFileUpload
from pydantic import BaseModel

from channels.base import (
    Adapted,
    Channel,
    Credentials,
    ErrorKind,
    Problem,
    Receipt,
    SendError,
    Severity,
    Template,
)
from channels.compose import clean_line, compose, effective_template
from channels.httpio import classify_transport_error
from publisher.domain import Article, ChannelAccount, Platform, Unit, canonical_json, sha256_hex
from publisher.text import nfc, truncate_words, utf8_length

TITLE_LIMIT = 100
DESCRIPTION_BYTES = 5000
TAGS_LIMIT = 500
NEWS_AND_POLITICS = "25"
UPLOAD_SCOPE = "https://www.googleapis.com/auth/youtube.upload"
GOOGLE_HOSTS = ("https://youtube.googleapis.com", "https://www.googleapis.com")
PACIFIC = ZoneInfo("America/Los_Angeles")


class YouTubeSettings(BaseModel):
    privacy_status: str = "public"
    category_id: str = NEWS_AND_POLITICS
    chunk_size: int = 8 * 1024 * 1024
    num_retries: int = 3  # the library's own retries of 5xx/429 inside one chunk
    request_timeout_s: float = 300.0


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
    ) -> None:
        super().__init__(http, base_url)
        self.settings = settings or YouTubeSettings()
        self.fetch = fetch

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

    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        media_url = payload.get("media_url")
        if not media_url:
            raise SendError(ErrorKind.PERMANENT, "YouTube payload has no media_url")
        body = {k: v for k, v in payload.items() if k in ("snippet", "status")}
        handle, path = tempfile.mkstemp(suffix=".mp4", prefix="publisher-yt-")
        os.close(handle)
        try:
            await self._download(str(media_url), path)
            bridge = HttpBridge(
                self.http,
                asyncio.get_running_loop(),
                credentials.token,
                self.base_url,
                self.settings.request_timeout_s,
            )
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
            while response is None:
                _status, response = insert.next_chunk(num_retries=self.settings.num_retries)
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

    # --- reconcile ----------------------------------------------------------------------
    async def find_published(
        self, account: ChannelAccount, credentials: Credentials, body_hash: str, since: datetime
    ) -> Receipt | None:
        bridge = HttpBridge(
            self.http,
            asyncio.get_running_loop(),
            credentials.token,
            self.base_url,
            self.settings.request_timeout_s,
        )
        return await asyncio.to_thread(self._find_blocking, bridge, body_hash, since)

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
            status, reason, message = _http_error_parts(error)
            found = classify_youtube_error(status, reason, message, media_sent=False)
            if found.kind is ErrorKind.UNKNOWN_OUTCOME:
                found.kind = ErrorKind.BEFORE_SEND
            raise found from error
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


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def consent_flow(client_secrets_file: str, port: int = 0) -> dict[str, str]:
    """One-time OAuth consent for an uploading account (opens a browser; never run in tests).

    Returns the tokens to store for the account: `token` (access), `refresh_token`,
    `client_id`, `client_secret`. The refresh token is long-lived; the lead's token store keeps
    it encrypted and a fresh access token is obtained from it before each upload.
    """
    from google_auth_oauthlib.flow import InstalledAppFlow

    flow = InstalledAppFlow.from_client_secrets_file(client_secrets_file, scopes=[UPLOAD_SCOPE])
    creds = flow.run_local_server(port=port, open_browser=True)
    return {
        "token": str(creds.token),
        "refresh_token": str(creds.refresh_token or ""),
        "client_id": str(creds.client_id),
        "client_secret": str(creds.client_secret),
    }


if __name__ == "__main__":  # pragma: no cover - interactive
    if len(sys.argv) != 3 or sys.argv[1] != "consent":
        print("usage: python -m channels.youtube consent CLIENT_SECRETS.json", file=sys.stderr)
        raise SystemExit(2)
    print(json.dumps(consent_flow(sys.argv[2]), indent=2))
