"""Facebook Pages through the Graph API (httpx; version is a setting, default v25.0).

Payload: `{"message", "link"}` for a link post; with images `{"message", "photos": [url…]}`
(the link is then written into the message, since Graph ignores `link` beside attached
photos). `send` uploads each photo unpublished (`POST /{page}/photos`, bytes through
`channels.media` when a fetcher is given, else by `url`), then posts to the feed with
`attached_media`.

Reconcile: the match hash is SHA-256 of the `message` text; `GET /{page}/posts?since=`
returns `message` for each post, so an ambiguous send is found by hashing what comes back.

Security: when the account's credentials carry an `app_secret` extra, every Graph call adds
`appsecret_proof` = HMAC-SHA256(key=app secret, message=access token), hex — required when
the app has "Require App Secret" switched on, harmless otherwise.

Token lifecycle (docs/channels.md, "Facebook tokens"): `check` asks `debug_token` (with the app
token `app_id|app_secret` when those extras are present) whether the token is valid, when it
expires (0 = never) and which scopes it has; without the app extras a Page token cannot be
inspected, so `check` only asks whether it acts for the Page. Given a *user* token plus app id
and secret it trades it for a long-lived user token (`GET /oauth/access_token?
grant_type=fb_exchange_token`) and returns the Page's own token from `GET /{page}?fields=
access_token` as the credentials to store (a Page token derived from a long-lived user token
does not expire); the long-lived user token is kept in the `user_token` extra. When a Page
token stops working (190 with subcode 460/463/467) and a `user_token` is stored, the Page token
is derived again once, saved through the `TokenStore`, and the call is made once more: a 190 is
a refusal, so nothing was published by the failed call. That recovers a Page token that alone
was invalidated; it cannot recover a password change, a logout or a removed app (they
invalidate the user token too), nor a user token past its ~60 days: a person reconnects the
account then.

Withdraw: `DELETE /{post-id}` (`withdraw_mode = DELETE`). "Object does not exist" (100/33)
counts as already withdrawn.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx
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
from channels.compose import compose, effective_template
from channels.httpio import json_body, request, retry_after_header
from channels.media import FACEBOOK_PHOTO, ImageCache
from publisher.domain import Article, ChannelAccount, Platform, Unit, sha256_hex

log = logging.getLogger("channels.facebook")

# Graph's real cap is unverified (63,206 is folklore; the sandbox enforces that number):
# stay well below it.
MESSAGE_LIMIT = 60_000
MAX_PHOTOS = 10

CAPABILITY_CODE = 3  # "Capability": the app lacks the capability (feature/permission) for this
POLICY_BLOCK_CODE = 368  # "temporarily blocked for policy violations": Meta says wait and retry
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 341, 80001})
PERMANENT_CODES = frozenset({CAPABILITY_CODE, 10, 100, 506, 1609005, *range(200, 300)})
# 190 subcodes after which a Page token may be derived again from a stored user token:
# 460 password changed / session invalidated, 463 expired, 467 invalid (logged out).
REDERIVE_SUBCODES = frozenset({460, 463, 467})
GONE_SUBCODE = 33  # 100/33: "Object with ID … does not exist" (or cannot be loaded)
POSTING_SCOPE = "pages_manage_posts"


class FacebookSettings(BaseModel):
    api_version: str = "v25.0"
    read_back_pages: int = 3  # pages of /posts to scan when reconciling
    # 368: how long to wait before trying the post again. The account keeps sending other
    # posts meanwhile; the worker's retry budget bounds how often this post is retried.
    policy_block_wait_s: float = 3600.0


def appsecret_proof(access_token: str, app_secret: str) -> str:
    """Graph's `appsecret_proof`: HMAC-SHA256 of the access token keyed with the app secret."""
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


def classify_graph_error(
    status: int,
    body: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
    *,
    policy_block_wait_s: float = FacebookSettings().policy_block_wait_s,
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
    if code == POLICY_BLOCK_CODE:
        # Refused, so nothing was published; Meta's advice is to wait and try again. Not AUTH:
        # one blocked post must not stop every other post of the Page.
        hours = policy_block_wait_s / 3600
        return SendError(
            ErrorKind.BEFORE_SEND,
            f"Facebook tạm chặn bài vì chính sách, thử lại sau {hours:g} giờ "
            f"(Facebook temporarily blocked this post for policy, code 368; retrying in "
            f"{hours:g} h): {message}",
            retry_after=policy_block_wait_s,
            platform_code=label,
        )
    if code in RATE_LIMIT_CODES:
        return SendError(
            ErrorKind.RATE_LIMITED,
            f"Facebook rate limit: {message}",
            retry_after=_regain_access_seconds(headers or {}),
            platform_code=label,
        )
    if code == CAPABILITY_CODE:
        return SendError(
            ErrorKind.PERMANENT,
            "Ứng dụng thiếu quyền/tính năng cho lệnh này (Facebook code 3, capability: the app "
            f"lacks the capability or permission for this call): {message}",
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


def _rederivable(error: SendError) -> bool:
    """A 190 whose subcode says the Page token itself is dead (not the whole login)."""
    code, _, subcode = (error.platform_code or "").partition("/")
    return (
        error.kind is ErrorKind.AUTH
        and code == "190"
        and subcode.isdigit()
        and (int(subcode) in REDERIVE_SUBCODES)
    )


def _refusal(error: SendError) -> bool:
    """Graph answered with its own error (bad token, bad app secret, no permission), as
    opposed to a network failure, a 5xx or a rate limit, which a check should raise."""
    code = error.platform_code or ""
    return error.kind is not ErrorKind.RATE_LIMITED and bool(code) and not code.startswith("5")


def _expiry(value: Any) -> datetime | None:
    """debug_token's `expires_at`: unix seconds, 0 = never."""
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(seconds, UTC) if seconds > 0 else None


class FacebookChannel(Channel):
    platform: ClassVar[Platform] = Platform.FACEBOOK
    display_name: ClassVar[str] = "Facebook"
    can_read_back: ClassVar[bool] = True
    text_limit: ClassVar[int | None] = MESSAGE_LIMIT
    default_base_url: ClassVar[str] = "https://graph.facebook.com"
    sandbox_prefix: ClassVar[str] = "facebook"
    withdraw_mode: ClassVar[WithdrawMode] = WithdrawMode.DELETE

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str | None = None,
        *,
        settings: FacebookSettings | None = None,
        fetch: Callable[[str], Awaitable[bytes]] | None = None,
        image_cache: ImageCache | None = None,
        token_store: TokenStore | None = None,
    ) -> None:
        super().__init__(http, base_url)
        self.settings = settings or FacebookSettings()
        self.images = image_cache or (ImageCache(fetch) if fetch is not None else None)
        self.token_store = token_store  # where a re-derived Page token is saved

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

    # --- Graph calls --------------------------------------------------------------------
    def _node(self, *path: str) -> str:
        return "/".join((self.api_base, self.settings.api_version, *path))

    def _url(self, page: str, edge: str) -> str:
        return self._node(page, edge)

    @staticmethod
    def _auth(token: str, app_secret: str | None) -> dict[str, str]:
        """`access_token`, plus `appsecret_proof` when the app secret is known."""
        params = {"access_token": token}
        if app_secret:
            params["appsecret_proof"] = appsecret_proof(token, app_secret)
        return params

    def _auth_of(self, credentials: Credentials) -> dict[str, str]:
        return self._auth(credentials.token, credentials.extra.get("app_secret"))

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
        error = classify_graph_error(
            response.status_code,
            body,
            response.headers,
            policy_block_wait_s=self.settings.policy_block_wait_s,
        )
        if idempotent and error.kind is ErrorKind.UNKNOWN_OUTCOME:
            error.kind = ErrorKind.BEFORE_SEND  # a failed read published nothing
        raise error

    async def _with_page_token(
        self,
        account: ChannelAccount,
        credentials: Credentials,
        action: Callable[[Credentials], Awaitable[Receipt]],
    ) -> Receipt:
        """Run `action`; if the Page token is dead and a user token is stored, derive a new
        Page token once, save it, and run `action` once more (the 190 refused the first)."""
        try:
            return await action(credentials)
        except SendError as error:
            user_token = credentials.extra.get("user_token")
            if not (_rederivable(error) and user_token):
                raise
            first = error
        renewed = await self._rederive(account, credentials, user_token, first)
        return await action(renewed)

    async def _rederive(
        self, account: ChannelAccount, credentials: Credentials, user_token: str, cause: SendError
    ) -> Credentials:
        try:
            page_token = await self._page_token_of(
                account.external_id, user_token, credentials.extra.get("app_secret")
            )
        except SendError as error:
            raise SendError(
                ErrorKind.AUTH,
                f"{cause.message}; deriving a new Page token from the stored user token failed "
                f"too ({error.message}): reconnect the account",
                platform_code=cause.platform_code,
            ) from None
        if page_token is None:
            raise SendError(
                ErrorKind.AUTH,
                f"{cause.message}; the stored user token no longer manages Page "
                f"{account.external_id}: reconnect the account",
                platform_code=cause.platform_code,
            )
        if self.token_store is not None:
            try:
                # Saved before use (TokenStore's rule); a Page token from a long-lived user
                # token does not expire.
                await self.token_store.save(account.id, TokenSet(page_token))
            except Exception as error:
                raise SendError(
                    ErrorKind.BEFORE_SEND,
                    f"could not store the re-derived Facebook Page token: {error}",
                ) from error
        else:
            log.warning("account %s: re-derived Page token not stored (no token store)", account.id)
        log.info("account %s: Facebook Page token re-derived after %s", account.id, cause)
        return Credentials(page_token, credentials.extra)

    async def _page_token_of(
        self, page: str, user_token: str, app_secret: str | None
    ) -> str | None:
        """The Page's own token, read with a user token of one of its admins (None: the user
        has no task on the Page, so Graph leaves the field out)."""
        body = await self._call(
            "GET",
            self._node(page),
            idempotent=True,
            params={"fields": "access_token", **self._auth(user_token, app_secret)},
        )
        token = body.get("access_token")
        return str(token) if token else None

    # --- send ---------------------------------------------------------------------------
    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        async def publish(current: Credentials) -> Receipt:
            return await self._publish(account.external_id, current, payload)

        return await self._with_page_token(account, credentials, publish)

    async def _publish(
        self, page: str, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        auth = self._auth_of(credentials)
        problems: list[Problem] = []
        media_ids: list[str] = []
        for url in payload.get("photos", []):
            try:
                media_id = await self._upload_photo(page, auth, url, problems)
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
        data: dict[str, Any] = {**auth, "message": payload.get("message", "")}
        if payload.get("link"):
            data["link"] = payload["link"]
        for index, media_id in enumerate(media_ids):
            data[f"attached_media[{index}]"] = json.dumps({"media_fbid": media_id})
        body = await self._call("POST", self._url(page, "feed"), data=data)
        post_id = str(body["id"])
        return Receipt(post_id, f"https://www.facebook.com/{post_id}", problems=tuple(problems))

    async def _upload_photo(
        self, page: str, auth: dict[str, str], url: str, problems: list[Problem]
    ) -> str | None:
        data = {**auth, "published": "false"}
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

    # --- withdraw -----------------------------------------------------------------------
    async def withdraw(
        self,
        account: ChannelAccount,
        credentials: Credentials,
        remote_id: str,
        *,
        notice: str,
    ) -> Receipt:
        """`DELETE /{post-id}`; a post Graph no longer has counts as withdrawn."""

        async def delete(current: Credentials) -> Receipt:
            try:
                # DELETE is idempotent: a lost reply is safe to repeat.
                await self._call(
                    "DELETE", self._node(remote_id), idempotent=True, params=self._auth_of(current)
                )
            except SendError as error:
                if error.platform_code != f"100/{GONE_SUBCODE}":
                    raise
                return Receipt(
                    remote_id,
                    problems=(
                        Problem(
                            Severity.INFO,
                            "already_withdrawn",
                            f"Bài {remote_id} không còn trên Facebook (the post no longer "
                            f"exists): {error.message}",
                        ),
                    ),
                )
            return Receipt(remote_id)

        return await self._with_page_token(account, credentials, delete)

    # --- account check ------------------------------------------------------------------
    async def check(self, account: ChannelAccount, credentials: Credentials) -> AccountCheck:
        """`debug_token` on the stored token; a user token (with app id and secret) is traded
        for the Page's non-expiring token, returned as the credentials to store."""
        extra = credentials.extra
        app_id, app_secret = extra.get("app_id"), extra.get("app_secret")
        page = account.external_id
        try:
            try:
                info = await self._debug(credentials.token, app_id, app_secret)
            except SendError as error:
                if (app_id and app_secret) or not (error.platform_code or "").startswith("100"):
                    raise
                # Graph lets only an app token (or a developer's user token) inspect a Page
                # token: without the app extras, ask whether the token acts for the Page.
                return await self._probe(page, credentials)
            if not info.get("is_valid"):
                reason = (info.get("error") or {}).get("message", "is_valid is false")
                return AccountCheck(
                    False,
                    f"Mã truy cập không hợp lệ (Facebook token invalid): {reason}",
                    expires_at=_expiry(info.get("expires_at")),
                    scopes=tuple(info.get("scopes") or ()),
                )
            if info.get("type") != "USER":
                return self._page_check(page, info, None)
            if not (app_id and app_secret):
                return AccountCheck(
                    False,
                    "Đây là mã người dùng; cần app_id và app_secret để đổi sang mã Trang "
                    "(this is a user token: store the app_id and app_secret extras so it can "
                    "be exchanged for the Page's own token)",
                    expires_at=_expiry(info.get("expires_at")),
                    scopes=tuple(info.get("scopes") or ()),
                )
            user_token, user_expires = await self._exchange(credentials.token, app_id, app_secret)
            page_token = await self._page_token_of(page, user_token, app_secret)
            if page_token is None:
                return AccountCheck(
                    False,
                    f"Người dùng này không quản trị Trang {page} (the user has no role on "
                    f"Page {page}, so Graph gives no Page token)",
                    scopes=tuple(info.get("scopes") or ()),
                )
            page_info = await self._debug(page_token, app_id, app_secret)
        except SendError as error:
            if _refusal(error):
                return AccountCheck(False, f"Facebook từ chối (Facebook refused): {error.message}")
            raise
        stored_extra = {**extra, "user_token": user_token}
        if user_expires is not None:
            stored_extra["user_token_expires_at"] = user_expires.isoformat()
        return self._page_check(page, page_info, Credentials(page_token, stored_extra))

    async def _probe(self, page: str, credentials: Credentials) -> AccountCheck:
        """Without `debug_token`: a Page token asking for the Page's token gets itself back;
        any other token does not. Expiry and scopes stay unknown."""
        try:
            token = await self._page_token_of(
                page, credentials.token, credentials.extra.get("app_secret")
            )
        except SendError as error:
            if _refusal(error):
                return AccountCheck(False, f"Facebook từ chối (Facebook refused): {error.message}")
            raise
        if token != credentials.token:
            return AccountCheck(
                False,
                f"Mã này không phải mã của Trang {page} (this is not Page {page}'s own token)",
            )
        return AccountCheck(
            True,
            f"Mã Trang {page} dùng được; thêm app_id và app_secret để biết hạn và quyền (Page "
            "token works; store the app_id and app_secret extras to learn its expiry and scopes "
            "through debug_token)",
        )

    def _page_check(
        self, page: str, info: Mapping[str, Any], traded: Credentials | None
    ) -> AccountCheck:
        expires = _expiry(info.get("expires_at"))
        scopes = tuple(str(s) for s in info.get("scopes") or ())
        owner = info.get("profile_id")
        when = (
            f"hết hạn {expires.isoformat()} (expires {expires.isoformat()})"
            if expires
            else "không hết hạn (never expires)"
        )
        if owner is not None and str(owner) != page:
            return AccountCheck(
                False,
                f"Mã này thuộc Trang {owner}, không phải {page} (token belongs to Page {owner}, "
                f"not {page})",
                expires,
                scopes,
            )
        if scopes and POSTING_SCOPE not in scopes:
            return AccountCheck(
                False,
                f"Mã Trang thiếu quyền {POSTING_SCOPE} (Page token lacks {POSTING_SCOPE})",
                expires,
                scopes,
            )
        traded_note = " — đã đổi từ mã người dùng (traded from a user token)" if traded else ""
        return AccountCheck(
            True,
            f"Mã Trang {page} hợp lệ, {when}{traded_note} (Page token valid)",
            expires,
            scopes,
            traded,
        )

    async def _debug(
        self, token: str, app_id: str | None, app_secret: str | None
    ) -> Mapping[str, Any]:
        """`GET /debug_token`: with the app token when the app is known, else the token
        itself (Graph accepts that for a user token of the app, refuses it for a Page
        token with code 100)."""
        inspector = f"{app_id}|{app_secret}" if app_id and app_secret else token
        body = await self._call(
            "GET",
            self._node("debug_token"),
            idempotent=True,
            params={"input_token": token, **self._auth(inspector, app_secret)},
        )
        data = body.get("data")
        if not isinstance(data, dict):
            raise SendError(ErrorKind.BEFORE_SEND, "Facebook debug_token answered without data")
        return data

    async def _exchange(
        self, user_token: str, app_id: str, app_secret: str
    ) -> tuple[str, datetime | None]:
        """A long-lived user token for a short-lived one (`fb_exchange_token`)."""
        body = await self._call(
            "GET",
            self._node("oauth", "access_token"),
            idempotent=True,
            params={
                "grant_type": "fb_exchange_token",
                "client_id": app_id,
                "client_secret": app_secret,
                "fb_exchange_token": user_token,
            },
        )
        token = body.get("access_token")
        if not token:
            raise SendError(ErrorKind.PERMANENT, "Facebook token exchange returned no token")
        expires_in = body.get("expires_in")
        expires = (
            datetime.now(UTC) + timedelta(seconds=int(expires_in))
            if isinstance(expires_in, int | float) and expires_in > 0
            else None
        )
        return str(token), expires

    # --- reconcile ----------------------------------------------------------------------
    async def find_published(
        self, account: ChannelAccount, credentials: Credentials, body_hash: str, since: datetime
    ) -> Receipt | None:
        url: str | None = self._url(account.external_id, "posts")
        params: dict[str, Any] | None = {
            **self._auth_of(credentials),
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
