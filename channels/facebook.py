"""Facebook Pages through the Graph API (httpx; version is a setting, default v25.0).

Payload: `{"message", "link"}` for a link post; with images `{"message", "photos": [url…]}`
(the link is then written into the message, since Graph ignores `link` beside attached
photos). `send` uploads each photo unpublished (`POST /{page}/photos`, bytes through
`channels.media` when a fetcher is given, else by `url`), then posts to the feed with
`attached_media`.

Reconcile: the match hash is SHA-256 of the `message` text; `GET /{page}/posts?since=`
returns `message` for each post, so an ambiguous send is found by hashing what comes back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar

import httpx
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
from channels.compose import compose, effective_template
from channels.httpio import json_body, request, retry_after_header
from channels.media import FACEBOOK_PHOTO, ImageCache
from publisher.domain import Article, ChannelAccount, Platform, Unit, sha256_hex

MESSAGE_LIMIT = 60_000  # Graph's real cap (63,206) is folklore: keep a margin
MAX_PHOTOS = 10

RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 341, 80001})
PERMANENT_CODES = frozenset({10, 100, 506, 1609005, *range(200, 300)})


class FacebookSettings(BaseModel):
    api_version: str = "v25.0"
    read_back_pages: int = 3  # pages of /posts to scan when reconciling


def classify_graph_error(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> SendError:
    """A Graph error reply → classified error (codes from platform-apis.md)."""
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    assert isinstance(error, dict)
    code = error.get("code")
    subcode = error.get("error_subcode")
    message = str(error.get("message") or f"HTTP {status}")
    label = f"{code}" + (f"/{subcode}" if subcode else "")
    if code == 190 or code == 102:
        return SendError(ErrorKind.AUTH, f"Facebook token invalid: {message}", platform_code=label)
    if code == 368:
        return SendError(
            ErrorKind.AUTH,
            f"Facebook blocked the Page for policy (a person must check): {message}",
            platform_code=label,
        )
    if code in RATE_LIMIT_CODES:
        return SendError(
            ErrorKind.RATE_LIMITED,
            f"Facebook rate limit: {message}",
            retry_after=_regain_access_seconds(headers or {}),
            platform_code=label,
        )
    if code in PERMANENT_CODES:
        return SendError(ErrorKind.PERMANENT, f"Facebook refused: {message}", platform_code=label)
    # 1 (unknown) and 2 (temporary) and anything undocumented: the POST may have been processed
    return SendError(
        ErrorKind.UNKNOWN_OUTCOME, f"Facebook error after sending: {message}", platform_code=label
    )


def _regain_access_seconds(headers: Mapping[str, str]) -> float | None:
    """`estimated_time_to_regain_access` (minutes) from X-Business-Use-Case-Usage."""
    raw = {k.lower(): v for k, v in headers.items()}.get("x-business-use-case-usage")
    if not raw:
        return None
    try:
        usage = json.loads(raw)
        minutes = max(
            float(item.get("estimated_time_to_regain_access", 0))
            for items in usage.values()
            for item in items
        )
    except (ValueError, AttributeError, TypeError):
        return None
    return minutes * 60 if minutes > 0 else None


class FacebookChannel(Channel):
    platform: ClassVar[Platform] = Platform.FACEBOOK
    display_name: ClassVar[str] = "Facebook"
    can_read_back: ClassVar[bool] = True
    text_limit: ClassVar[int | None] = MESSAGE_LIMIT
    default_base_url: ClassVar[str] = "https://graph.facebook.com"
    sandbox_prefix: ClassVar[str] = "facebook"

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str | None = None,
        *,
        settings: FacebookSettings | None = None,
        fetch: Callable[[str], Awaitable[bytes]] | None = None,
        image_cache: ImageCache | None = None,
    ) -> None:
        super().__init__(http, base_url)
        self.settings = settings or FacebookSettings()
        self.images = image_cache or (ImageCache(fetch) if fetch is not None else None)

    # --- adapt --------------------------------------------------------------------------
    def adapt(self, article: Article, unit: Unit, template: Template) -> Adapted:
        template, problems = effective_template(article, template)
        photos = [url for url in article.images if url.startswith(("http://", "https://"))]
        composed = compose(article, template, limit=MESSAGE_LIMIT, measure=len, full_body=True)
        problems += composed.problems
        payload: dict[str, Any] = {"message": composed.text}
        if photos:
            if len(photos) > MAX_PHOTOS:
                problems.append(
                    Problem(
                        Severity.WARNING,
                        "too_many_images",
                        f"Chỉ đăng {MAX_PHOTOS} ảnh đầu (only the first {MAX_PHOTOS} images)",
                    )
                )
            payload["photos"] = photos[:MAX_PHOTOS]
        elif template.include_link and article.url:
            payload["link"] = article.url
        if any(p.severity is Severity.ERROR for p in problems):
            return Adapted(None, tuple(problems))
        return Adapted(payload, tuple(problems), match_hash=self.match_hash(payload))

    def match_hash(self, payload: Mapping[str, Any]) -> str:
        return sha256_hex(str(payload.get("message", "")))

    # --- send ---------------------------------------------------------------------------
    def _url(self, page: str, edge: str) -> str:
        return f"{self.api_base}/{self.settings.api_version}/{page}/{edge}"

    async def _call(
        self, method: str, url: str, *, idempotent: bool = False, **kwargs: Any
    ) -> dict[str, Any]:
        response = await request(self.http, method, url, idempotent=idempotent, **kwargs)
        body = json_body(response)
        if response.status_code == 200 and "error" not in body:
            return body
        if response.status_code >= 500 and "error" not in body:
            if idempotent:
                raise SendError(
                    ErrorKind.BEFORE_SEND,
                    f"Facebook {response.status_code} on read",
                    retry_after=retry_after_header(response),
                )
            raise SendError(
                ErrorKind.UNKNOWN_OUTCOME,
                f"Facebook answered {response.status_code} after the request was sent",
                platform_code=str(response.status_code),
            )
        error = classify_graph_error(response.status_code, body, response.headers)
        if idempotent and error.kind is ErrorKind.UNKNOWN_OUTCOME:
            error.kind = ErrorKind.BEFORE_SEND  # a failed read published nothing
        raise error

    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        page = account.external_id
        token = {"access_token": credentials.token}
        problems: list[Problem] = []
        media_ids: list[str] = []
        for url in payload.get("photos", []):
            try:
                media_id = await self._upload_photo(page, token, url, problems)
            except SendError as error:
                if error.kind is ErrorKind.PERMANENT:  # this photo is refused: post without it
                    problems.append(
                        Problem(
                            Severity.WARNING,
                            "image_refused",
                            f"Facebook refused image {url}: {error.message}",
                        )
                    )
                    continue
                if error.kind is ErrorKind.UNKNOWN_OUTCOME:
                    # an unpublished photo is invisible: nothing was published yet
                    error = SendError(
                        ErrorKind.BEFORE_SEND, error.message, platform_code=error.platform_code
                    )
                raise error from None
            if media_id is not None:
                media_ids.append(media_id)
        data: dict[str, Any] = {**token, "message": payload.get("message", "")}
        if payload.get("link"):
            data["link"] = payload["link"]
        for index, media_id in enumerate(media_ids):
            data[f"attached_media[{index}]"] = json.dumps({"media_fbid": media_id})
        body = await self._call("POST", self._url(page, "feed"), data=data)
        post_id = str(body["id"])
        return Receipt(post_id, f"https://www.facebook.com/{post_id}", problems=tuple(problems))

    async def _upload_photo(
        self, page: str, token: dict[str, str], url: str, problems: list[Problem]
    ) -> str | None:
        data = {**token, "published": "false"}
        if self.images is None:
            body = await self._call("POST", self._url(page, "photos"), data={**data, "url": url})
            return str(body["id"])
        prepared, problem = await self.images.prepare(url, FACEBOOK_PHOTO)
        if prepared is None:  # a missing or broken image is a warning, not a failed post
            problems.append(problem or Problem(Severity.WARNING, "image_missing", url))
            return None
        files = {"source": (f"photo.{prepared.extension}", prepared.data, prepared.mime)}
        body = await self._call("POST", self._url(page, "photos"), data=data, files=files)
        return str(body["id"])

    # --- reconcile ----------------------------------------------------------------------
    async def find_published(
        self, account: ChannelAccount, credentials: Credentials, body_hash: str, since: datetime
    ) -> Receipt | None:
        url: str | None = self._url(account.external_id, "posts")
        params: dict[str, Any] | None = {
            "access_token": credentials.token,
            "since": math.floor(since.timestamp()),
            "fields": "id,message,created_time,permalink_url",
            "limit": 100,
        }
        for _ in range(self.settings.read_back_pages):
            if url is None:
                break
            body = await self._call("GET", url, idempotent=True, params=params)
            for post in body.get("data", []):
                if sha256_hex(str(post.get("message", ""))) == body_hash:
                    post_id = str(post["id"])
                    return Receipt(
                        post_id, post.get("permalink_url") or f"https://www.facebook.com/{post_id}"
                    )
            url, params = (body.get("paging") or {}).get("next"), None
        return None
