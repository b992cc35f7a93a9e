"""YouTube against the strict sandbox: hour-long access tokens renewed through google-auth and
saved before use, scopes checked per call, quota per project reset at Pacific midnight, a lost
final-chunk reply resolved through the upload session, withdraw and check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import google.oauth2.credentials
import httpx
import pytest
from sandbox_helpers import SANDBOX, UNIT, VIDEO, account, credentials, ledger, sample, set_faults

from channels.base import (
    Credentials,
    ErrorKind,
    InMemoryTokenStore,
    SendError,
    Severity,
    Template,
    TokenSet,
)
from channels.sandbox.core import SandboxState, TokenState
from channels.sandbox.oauth import grant_refresh_token
from channels.sandbox.youtube import PACIFIC
from channels.youtube import (
    FORCE_SSL_SCOPE,
    READONLY_SCOPE,
    UPLOAD_SCOPE,
    YouTubeChannel,
    YouTubeSettings,
)
from publisher import redact
from publisher.secrets import credentials_from_text


class FailingStore(InMemoryTokenStore):
    async def save(self, account_id: str, tokens: TokenSet) -> None:
        raise OSError("disk full")


async def _video(url: str) -> bytes:
    return VIDEO


def youtube(http: httpx.AsyncClient, store: Any, **settings: Any) -> YouTubeChannel:
    return YouTubeChannel(
        http,
        f"{SANDBOX}/youtube",
        fetch=_video,
        token_store=store,
        settings=YouTubeSettings(chunk_size=4096, num_retries=0, **settings),
    )


def state_of(sandbox: Any) -> SandboxState:
    state: SandboxState = sandbox.state.sandbox
    return state


def payload(channel: YouTubeChannel, title: str = "") -> dict[str, Any]:
    adapted = channel.adapt(sample("video-hoi-nghi-truc-tuyen.json"), UNIT, Template())
    assert adapted.payload is not None
    result = dict(adapted.payload)
    if title:
        result["snippet"] = {**result["snippet"], "title": title}
    return result


def uploads_started(state: SandboxState) -> int:
    return len(state.platform_state["youtube"].get("sessions", {}))


async def test_send_after_the_access_token_expired_renews_saves_and_sends(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    state, store = state_of(sandbox), InMemoryTokenStore()
    channel = youtube(http, store)
    await channel.send(account("youtube"), credentials("youtube"), payload(channel, "Một"))
    first = store.tokens["51.youtube"].access_token
    assert state.token_state("youtube", first) == TokenState.OK
    state.advance_clock(3600)  # Google access tokens live 3599 s
    assert state.token_state("youtube", first) == TokenState.EXPIRED
    receipt = await channel.send(
        account("youtube"), credentials("youtube"), payload(channel, "Hai")
    )
    second = store.tokens["51.youtube"]
    assert second.access_token != first
    assert state.token_state("youtube", second.access_token) == TokenState.OK
    assert second.refresh_token == "ytchan.sandbox-refresh"  # Google keeps the refresh token
    assert [e["id"] for e in await ledger(http)][-1] == receipt.remote_id
    assert len(await ledger(http)) == 2


async def test_a_token_near_expiry_is_renewed_before_any_upload(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    state, store = state_of(sandbox), InMemoryTokenStore()
    stale = state.issue_token("youtube", "ytchan", ttl_s=3599, scopes={UPLOAD_SCOPE})
    store.tokens["51.youtube"] = TokenSet(
        stale, "ytchan.sandbox-refresh", datetime.now(UTC) + timedelta(seconds=60)
    )
    seen: list[str] = []

    async def record(request: httpx.Request) -> None:
        seen.append(f"{request.method} {request.url.path}")

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox),
        base_url=SANDBOX,
        event_hooks={"request": [record]},
    ) as watched:
        channel = youtube(watched, store)
        await channel.send(account("youtube"), credentials("youtube"), payload(channel))
    # renewed first (60 s left < the 300 s margin), then one session: no refused upload
    assert seen[0] == "POST /youtube-oauth/token"
    assert [s for s in seen if s.startswith("POST /youtube/upload")] == [
        "POST /youtube/upload/youtube/v3/videos"
    ]
    assert store.tokens["51.youtube"].access_token != stale


async def test_renewed_token_is_saved_before_use(http: httpx.AsyncClient, sandbox: Any) -> None:
    channel = youtube(http, FailingStore())
    with pytest.raises(SendError) as caught:
        await channel.send(account("youtube"), credentials("youtube"), payload(channel))
    assert caught.value.kind is ErrorKind.BEFORE_SEND
    assert "could not store the renewed YouTube token" in caught.value.message
    assert await ledger(http) == []
    assert uploads_started(state_of(sandbox)) == 0  # no session was even opened


async def test_revoked_refresh_token_is_auth(http: httpx.AsyncClient) -> None:
    revoked = await http.post(
        "/_sandbox/tokens/revoke", json={"tokens": ["ytchan.sandbox-refresh"]}
    )
    assert revoked.status_code == 204
    channel = youtube(http, InMemoryTokenStore())
    with pytest.raises(SendError) as caught:
        await channel.send(account("youtube"), credentials("youtube"), payload(channel))
    assert caught.value.kind is ErrorKind.AUTH
    assert "invalid_grant" in caught.value.message
    assert "re-authorise" in caught.value.message
    assert await ledger(http) == []


async def test_an_upload_scope_missing_is_a_clear_auth_error(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    readonly = grant_refresh_token(
        state_of(sandbox), "youtube", "ytchan", {READONLY_SCOPE}, "test-project"
    )
    channel = youtube(http, InMemoryTokenStore())
    with pytest.raises(SendError) as caught:
        await channel.send(
            account("youtube"), credentials("youtube", refresh_token=readonly), payload(channel)
        )
    assert caught.value.kind is ErrorKind.AUTH
    assert "insufficientPermissions" in caught.value.message
    assert "lacks the scope" in caught.value.message
    assert await ledger(http) == []


async def test_upload_only_consent_cannot_read_back(http: httpx.AsyncClient, sandbox: Any) -> None:
    """The old consent (youtube.upload alone) could never reconcile: channels.list needs
    youtube.readonly. The strict sandbox refuses it as YouTube does (403)."""
    upload_only = grant_refresh_token(
        state_of(sandbox), "youtube", "ytchan", {UPLOAD_SCOPE}, "test-project"
    )
    channel = youtube(http, InMemoryTokenStore())
    creds = credentials("youtube", refresh_token=upload_only)
    await channel.send(account("youtube"), creds, payload(channel))
    with pytest.raises(SendError) as caught:
        await channel.find_published(
            account("youtube"), creds, "0" * 64, datetime(2020, 1, 1, tzinfo=UTC)
        )
    assert caught.value.platform_code == "403:insufficientPermissions"
    assert caught.value.kind is ErrorKind.PERMANENT  # the account may still upload
    assert "youtube.readonly" in caught.value.message


async def test_quota_is_per_project_and_resets_at_pacific_midnight(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    state = state_of(sandbox)
    state.settings.youtube_daily_uploads = 1
    channel = youtube(http, InMemoryTokenStore())
    await channel.send(account("youtube"), credentials("youtube"), payload(channel, "Một"))
    with pytest.raises(SendError) as caught:
        await channel.send(account("youtube"), credentials("youtube"), payload(channel, "Hai"))
    assert caught.value.kind is ErrorKind.RATE_LIMITED
    assert caught.value.platform_code == "403:quotaExceeded"
    # another API project has its own bucket
    other = youtube(http, InMemoryTokenStore())
    await other.send(
        account("youtube"),
        credentials("youtube", client_id="other-project"),
        payload(other, "Ba"),
    )
    # one second before Pacific midnight: still spent; just after it: a new day
    local = state.now().astimezone(PACIFIC)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    state.advance_clock((midnight - local).total_seconds() - 1)
    with pytest.raises(SendError):
        await channel.send(account("youtube"), credentials("youtube"), payload(channel, "Bốn"))
    state.advance_clock(2)
    receipt = await channel.send(
        account("youtube"), credentials("youtube"), payload(channel, "Năm")
    )
    assert receipt.remote_id == (await ledger(http))[-1]["id"]
    assert len(await ledger(http)) == 3


async def test_lost_final_chunk_reply_is_resolved_without_a_second_upload(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    channel = youtube(http, InMemoryTokenStore())
    await set_faults(http, {"platform": "youtube", "kind": "reply_lost", "next": 1})
    receipt = await channel.send(account("youtube"), credentials("youtube"), payload(channel))
    posted = await ledger(http)
    assert [e["id"] for e in posted] == [receipt.remote_id]
    assert uploads_started(state_of(sandbox)) == 1
    assert receipt.url == f"https://www.youtube.com/watch?v={receipt.remote_id}"


async def test_lost_reply_and_session_not_asked_is_unknown(http: httpx.AsyncClient) -> None:
    channel = youtube(http, InMemoryTokenStore(), resume_attempts=0)
    await set_faults(http, {"platform": "youtube", "kind": "reply_lost", "next": 1})
    with pytest.raises(SendError) as caught:
        await channel.send(account("youtube"), credentials("youtube"), payload(channel))
    assert caught.value.kind is ErrorKind.UNKNOWN_OUTCOME


async def test_withdraw_deletes_and_is_idempotent(http: httpx.AsyncClient, sandbox: Any) -> None:
    channel = youtube(http, InMemoryTokenStore())
    sent = payload(channel)
    receipt = await channel.send(account("youtube"), credentials("youtube"), sent)
    gone = await channel.withdraw(
        account("youtube"), credentials("youtube"), receipt.remote_id, notice="Đính chính"
    )
    assert gone.remote_id == receipt.remote_id
    entry = state_of(sandbox).find_entry("youtube", receipt.remote_id)
    assert entry is not None
    assert entry.withdrawn == "deleted"
    assert entry.withdrawn_at is not None
    again = await channel.withdraw(
        account("youtube"), credentials("youtube"), receipt.remote_id, notice="Đính chính"
    )
    assert again.remote_id == receipt.remote_id
    # the uploads playlist no longer lists it
    assert (
        await channel.find_published(
            account("youtube"),
            credentials("youtube"),
            channel.match_hash(sent),
            datetime(2020, 1, 1, tzinfo=UTC),
        )
        is None
    )


async def test_withdraw_without_force_ssl_says_a_person_must_remove_it(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    no_delete = grant_refresh_token(
        state_of(sandbox), "youtube", "ytchan", {UPLOAD_SCOPE, READONLY_SCOPE}, "test-project"
    )
    channel = youtube(http, InMemoryTokenStore())
    creds = credentials("youtube", refresh_token=no_delete)
    receipt = await channel.send(account("youtube"), creds, payload(channel))
    with pytest.raises(SendError) as caught:
        await channel.withdraw(account("youtube"), creds, receipt.remote_id, notice="")
    assert caught.value.kind is ErrorKind.PERMANENT
    assert "a person must remove it" in caught.value.message
    entry = state_of(sandbox).find_entry("youtube", receipt.remote_id)
    assert entry is not None
    assert entry.withdrawn is None


async def test_withdraw_403_from_youtube_when_scopes_are_unknown(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    """A stored token whose scopes the channel does not know: YouTube's 403 says it."""
    state, store = state_of(sandbox), InMemoryTokenStore()
    token = state.issue_token("youtube", "ytchan", ttl_s=3599, scopes={UPLOAD_SCOPE})
    state.platform_state["youtube"]["oauth"] = {"refresh": {}, "access_client": {token: "p"}}
    store.tokens["51.youtube"] = TokenSet(token, None, datetime.now(UTC) + timedelta(hours=1))
    channel = youtube(http, store)
    with pytest.raises(SendError) as caught:
        await channel.withdraw(
            account("youtube"), Credentials("unused"), "vid12345", notice="Đính chính"
        )
    assert caught.value.kind is ErrorKind.PERMANENT
    assert "a person must remove it" in caught.value.message


async def test_check_reads_the_channel_scopes_and_expiry(http: httpx.AsyncClient) -> None:
    channel = youtube(http, InMemoryTokenStore())
    found = await channel.check(account("youtube"), credentials("youtube"))
    assert found.ok, found.detail
    assert "UCytchan" in found.detail
    assert set(found.scopes) == {UPLOAD_SCOPE, READONLY_SCOPE, FORCE_SSL_SCOPE}
    assert found.expires_at is not None
    assert found.expires_at > datetime.now(UTC) + timedelta(minutes=50)
    assert await ledger(http) == []  # read-only


async def test_check_with_a_revoked_refresh_token_is_not_ok(http: httpx.AsyncClient) -> None:
    await http.post("/_sandbox/tokens/revoke", json={"tokens": ["ytchan.sandbox-refresh"]})
    found = await youtube(http, InMemoryTokenStore()).check(
        account("youtube"), credentials("youtube")
    )
    assert not found.ok
    assert "re-authorise" in found.detail


def test_private_by_default_with_an_info_problem() -> None:
    adapted = YouTubeChannel.__new__(YouTubeChannel)
    adapted.settings = YouTubeSettings()
    result = adapted.adapt(sample("video-hoi-nghi-truc-tuyen.json"), UNIT, Template())
    assert result.payload is not None
    assert result.payload["status"]["privacyStatus"] == "private"
    (info,) = [p for p in result.problems if p.code == "uploaded_private"]
    assert info.severity is Severity.INFO
    assert info.message.startswith("Video được tải lên ở chế độ riêng tư")


async def test_consent_json_is_accepted_redacted_and_renews(http: httpx.AsyncClient) -> None:
    """What `python -m channels.youtube consent` prints (google-auth's authorized-user JSON)
    is a valid secret: the refresh token and client secret are redacted, and the expired
    access token in it is renewed against the sandbox's token endpoint."""
    consent = google.oauth2.credentials.Credentials(  # type: ignore[no-untyped-call]
        token="ytchan.consent-access",
        refresh_token="ytchan.sandbox-refresh",
        token_uri="https://oauth2.googleapis.com/token",
        client_id="consent-project.apps.googleusercontent.com",
        client_secret="consent-client-secret-xyz",
        scopes=[UPLOAD_SCOPE, READONLY_SCOPE, FORCE_SSL_SCOPE],
        expiry=datetime(2026, 1, 1, 12, 0),  # naive UTC, as google-auth writes it
    )
    creds = credentials_from_text(consent.to_json(), "account 51.youtube (file:yt.json)")
    assert creds.token == "ytchan.consent-access"
    assert creds.extra["refresh_token"] == "ytchan.sandbox-refresh"
    assert creds.extra["expires_at"] == "2026-01-01T12:00:00+00:00"
    assert creds.extra["scopes"].split() == [UPLOAD_SCOPE, READONLY_SCOPE, FORCE_SSL_SCOPE]
    shown = redact.redact("leak: consent-client-secret-xyz ytchan.sandbox-refresh")
    assert "consent-client-secret-xyz" not in shown
    assert "ytchan.sandbox-refresh" not in shown
    assert FORCE_SSL_SCOPE in redact.redact(f"needs {FORCE_SSL_SCOPE}")
    channel = youtube(http, InMemoryTokenStore())
    receipt = await channel.send(account("youtube"), creds, payload(channel))
    assert receipt.remote_id == (await ledger(http))[0]["id"]


def test_consent_json_missing_the_client_secret_is_one_clear_message() -> None:
    from publisher.secrets import CredentialError

    with pytest.raises(CredentialError) as caught:
        credentials_from_text(
            '{"token": "a", "refresh_token": "r", "client_id": "c"}', "account 51.youtube (env:YT)"
        )
    assert str(caught.value) == (
        "account 51.youtube (env:YT): authorized-user JSON is missing client_secret "
        "(run the consent again and store everything it prints)"
    )


async def test_check_of_an_upload_only_consent_says_what_is_missing(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    upload_only = grant_refresh_token(
        state_of(sandbox), "youtube", "ytchan", {UPLOAD_SCOPE}, "test-project"
    )
    found = await youtube(http, InMemoryTokenStore()).check(
        account("youtube"), credentials("youtube", refresh_token=upload_only)
    )
    assert not found.ok
    assert "youtube.readonly" in found.detail


async def test_session_status_query_reports_progress_then_the_video(
    http: httpx.AsyncClient,
) -> None:
    """The resumable protocol's status query (`PUT`, `Content-Range: bytes */TOTAL`)."""
    minted = await http.post(
        "/youtube-oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "ytchan.sandbox-refresh",
            "client_id": "p",
            "client_secret": "s",
        },
    )
    assert minted.json()["expires_in"] == 3599
    bearer = {"authorization": f"Bearer {minted.json()['access_token']}"}
    start = await http.post(
        "/youtube/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status",
        json={"snippet": {"title": "Tiêu đề", "description": ""}, "status": {}},
        headers=bearer,
    )
    session = start.headers["location"]
    first = await http.put(session, content=b"a" * 10, headers={"content-range": "bytes 0-9/20"})
    assert first.status_code == 308
    asked = await http.put(session, headers={"content-range": "bytes */20"})
    assert asked.status_code == 308
    assert asked.headers["range"] == "bytes=0-9"
    last = await http.put(session, content=b"b" * 10, headers={"content-range": "bytes 10-19/20"})
    assert last.status_code == 200
    again = await http.put(session, headers={"content-range": "bytes */20"})
    assert again.status_code == 200
    assert again.json()["id"] == last.json()["id"]
    # a pre-made token is refused as Google refuses it
    refused = await http.post(
        "/youtube/upload/youtube/v3/videos?uploadType=resumable",
        json={"snippet": {"title": "x"}},
        headers={"authorization": "Bearer ytchan.token"},
    )
    assert refused.status_code == 401
    assert refused.json()["error"]["errors"][0]["reason"] == "authError"


class LoseFirstChunkReply(httpx.AsyncBaseTransport):
    """Forwards everything; the reply to the first upload chunk is lost after it arrived."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.lost = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if (
            not self.lost
            and request.method == "PUT"
            and request.headers.get("content-range", "").startswith("bytes 0-")
        ):
            self.lost = True
            raise httpx.ReadError("connection reset after the chunk was sent")
        return response


async def test_lost_reply_to_a_middle_chunk_resumes_the_same_upload(sandbox: Any) -> None:
    transport = LoseFirstChunkReply(httpx.ASGITransport(app=sandbox))
    async with httpx.AsyncClient(transport=transport, base_url=SANDBOX) as http:
        channel = youtube(http, InMemoryTokenStore())
        receipt = await channel.send(account("youtube"), credentials("youtube"), payload(channel))
        posted = await ledger(http)
    assert transport.lost
    assert [e["id"] for e in posted] == [receipt.remote_id]
    assert uploads_started(state_of(sandbox)) == 1
    entry = state_of(sandbox).find_entry("youtube", receipt.remote_id)
    assert entry is not None
    assert entry.extra["bytes"] == len(VIDEO)  # every byte once, in order
