"""X against the strict sandbox: two-hour OAuth 2.0 tokens renewed with a rotating refresh
token saved before use, scopes, PKCE consent, withdraw and check."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from sandbox_helpers import SANDBOX, UNIT, account, credentials, ledger, sample

from channels import x_oauth
from channels.base import ErrorKind, InMemoryTokenStore, SendError, Template, TokenSet
from channels.sandbox.core import SandboxState, TokenState
from channels.sandbox.oauth import grant_refresh_token
from channels.x import XChannel, _main
from publisher.secrets import credentials_from_text


class FailingStore(InMemoryTokenStore):
    def __init__(self, failures: int = 1_000) -> None:
        super().__init__()
        self.failures = failures

    async def save(self, account_id: str, tokens: TokenSet) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise OSError("disk full")
        await super().save(account_id, tokens)


def x(http: httpx.AsyncClient, store: Any) -> XChannel:
    return XChannel(http, f"{SANDBOX}/x", token_store=store)


def state_of(sandbox: Any) -> SandboxState:
    state: SandboxState = sandbox.state.sandbox
    return state


def payload(text: str = "") -> dict[str, Any]:
    adapted = XChannel.adapt(
        XChannel.__new__(XChannel), sample("directive-chuyen-doi-so.json"), UNIT, Template()
    )
    assert adapted.payload is not None
    return {"text": text} if text else adapted.payload


async def refresh_raw(http: httpx.AsyncClient, refresh: str) -> httpx.Response:
    return await http.post(
        "/x/2/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh, "client_id": "c"},
    )


async def test_send_after_the_access_token_expired_renews_rotates_saves_and_sends(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    state, store = state_of(sandbox), InMemoryTokenStore()
    consent = grant_refresh_token(
        state, "x", "xqn", {"tweet.read", "tweet.write", "users.read", "offline.access"}, "c"
    )
    channel = x(http, store)
    creds = credentials("x", refresh_token=consent, client_id="c")
    await channel.send(account("x"), creds, payload("Bài một"))
    first = store.tokens["51.x"]
    assert first.refresh_token not in (None, consent)  # rotated
    # the old refresh token is spent: X retires it when it hands out a new one
    assert (await refresh_raw(http, consent)).status_code == 400
    state.advance_clock(7200)  # X user access tokens live two hours
    assert state.token_state("x", first.access_token) == TokenState.EXPIRED
    receipt = await channel.send(account("x"), creds, payload("Bài hai"))
    second = store.tokens["51.x"]
    assert second.access_token != first.access_token
    assert second.refresh_token != first.refresh_token
    assert state.token_state("x", second.access_token) == TokenState.OK
    assert [e["id"] for e in await ledger(http)][-1] == receipt.remote_id


async def test_renewed_pair_is_saved_before_use_and_kept_for_the_next_try(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    consent = grant_refresh_token(
        state_of(sandbox),
        "x",
        "xqn",
        {"tweet.read", "tweet.write", "users.read", "offline.access"},
        "c",
    )
    creds = credentials("x", refresh_token=consent, client_id="c")
    store = FailingStore(failures=1)
    channel = x(http, store)
    with pytest.raises(SendError) as caught:
        await channel.send(account("x"), creds, payload())
    assert caught.value.kind is ErrorKind.BEFORE_SEND
    assert "could not store the renewed X token" in caught.value.message
    assert await ledger(http) == []
    # X already spent the old refresh token; the unsaved pair is saved first on the next try
    assert (await refresh_raw(http, consent)).status_code == 400
    receipt = await channel.send(account("x"), creds, payload())
    assert receipt.remote_id == (await ledger(http))[0]["id"]
    assert "51.x" in store.tokens


async def test_revoked_refresh_token_is_auth(http: httpx.AsyncClient) -> None:
    await http.post("/_sandbox/tokens/revoke", json={"tokens": ["xqn.sandbox-refresh"]})
    with pytest.raises(SendError) as caught:
        await x(http, InMemoryTokenStore()).send(account("x"), credentials("x"), payload())
    assert caught.value.kind is ErrorKind.AUTH
    assert "Value passed for the token was invalid." in caught.value.message
    assert "re-authorise" in caught.value.message
    assert await ledger(http) == []


async def test_two_sends_renew_once(http: httpx.AsyncClient) -> None:
    """Two tasks find the token refused at once; the second waits for the first renewal and
    uses it, instead of spending the (already rotated) refresh token again."""
    renewals: list[str] = []

    async def record(request: httpx.Request) -> None:
        if request.url.path.endswith("/oauth2/token"):
            renewals.append(request.url.path)

    class SlowStore(InMemoryTokenStore):
        async def load(self, account_id: str) -> TokenSet | None:
            await asyncio.sleep(0.01)  # both tasks read the store before either renews
            return await super().load(account_id)

    http.event_hooks["request"].append(record)
    channel = x(http, SlowStore())
    first, second = await asyncio.gather(
        channel.send(account("x"), credentials("x"), payload("Một")),
        channel.send(account("x"), credentials("x"), payload("Hai")),
    )
    assert first.remote_id != second.remote_id
    assert len(await ledger(http)) == 2
    assert len(renewals) == 1


async def test_missing_write_scope_is_a_clear_error_before_posting(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    read_only = grant_refresh_token(
        state_of(sandbox),
        "x",
        "xqn",
        {"tweet.read", "users.read", "offline.access"},
        "test-x-client",
    )
    with pytest.raises(SendError) as caught:
        await x(http, InMemoryTokenStore()).send(
            account("x"), credentials("x", refresh_token=read_only), payload()
        )
    assert caught.value.kind is ErrorKind.AUTH
    assert "lacks tweet.write" in caught.value.message
    assert await ledger(http) == []


async def test_sandbox_refuses_a_token_without_the_scope(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    read_only = grant_refresh_token(
        state_of(sandbox), "x", "xqn", {"tweet.read", "users.read"}, "c"
    )
    token = (await refresh_raw(http, read_only)).json()["access_token"]
    reply = await http.post(
        "/x/2/tweets", json={"text": "x"}, headers={"authorization": f"Bearer {token}"}
    )
    assert reply.status_code == 403


async def test_withdraw_deletes_and_is_idempotent(http: httpx.AsyncClient, sandbox: Any) -> None:
    channel = x(http, InMemoryTokenStore())
    receipt = await channel.send(account("x"), credentials("x"), payload())
    gone = await channel.withdraw(account("x"), credentials("x"), receipt.remote_id, notice="")
    assert gone.remote_id == receipt.remote_id
    entry = state_of(sandbox).find_entry("x", receipt.remote_id)
    assert entry is not None
    assert entry.withdrawn == "deleted"
    again = await channel.withdraw(account("x"), credentials("x"), receipt.remote_id, notice="")
    assert again.remote_id == receipt.remote_id


async def test_check_names_the_user_scopes_and_expiry(http: httpx.AsyncClient) -> None:
    found = await x(http, InMemoryTokenStore()).check(account("x"), credentials("x"))
    assert found.ok, found.detail
    assert "@xqn" in found.detail
    assert set(found.scopes) == {"tweet.read", "tweet.write", "users.read", "offline.access"}
    assert found.expires_at is not None
    assert await ledger(http) == []


async def test_pkce_consent_against_the_sandbox(http: httpx.AsyncClient) -> None:
    pkce = x_oauth.new_pkce()
    assert len(pkce.verifier) >= 43
    url = x_oauth.authorize_url(
        "app-client",
        "http://127.0.0.1:8400/callback",
        "st4te",
        pkce.challenge,
        base=f"{SANDBOX}/x/i/oauth2/authorize",
    )
    approved = await http.get(url + "&sandbox_account=xqn")
    assert approved.status_code == 302
    back = parse_qs(urlparse(approved.headers["location"]).query)
    assert back["state"] == ["st4te"]
    with pytest.raises(SendError) as wrong:  # the verifier is what proves the same client
        await x_oauth.exchange_code(
            http,
            "app-client",
            None,
            back["code"][0],
            "http://127.0.0.1:8400/callback",
            "not-the-verifier",
            api_base=f"{SANDBOX}/x",
        )
    assert wrong.value.kind is ErrorKind.AUTH
    approved = await http.get(url + "&sandbox_account=xqn")
    code = parse_qs(urlparse(approved.headers["location"]).query)["code"][0]
    stored = await x_oauth.exchange_code(
        http,
        "app-client",
        None,
        code,
        "http://127.0.0.1:8400/callback",
        pkce.verifier,
        api_base=f"{SANDBOX}/x",
    )
    assert set(stored["extra"]) == {"client_id", "refresh_token", "expires_at", "scopes"}
    creds = credentials_from_text(json.dumps(stored), "account 51.x (file:x.json)")
    receipt = await x(http, InMemoryTokenStore()).send(account("x"), creds, payload())
    assert receipt.remote_id == (await ledger(http))[0]["id"]


async def test_confidential_client_renews_with_basic_auth(http: httpx.AsyncClient) -> None:
    seen: list[str] = []

    async def record(request: httpx.Request) -> None:
        if request.url.path.endswith("/oauth2/token"):
            seen.append(request.headers.get("authorization", ""))

    http.event_hooks["request"].append(record)
    receipt = await x(http, InMemoryTokenStore()).send(
        account("x"), credentials("x", client_secret="s3cret"), payload()
    )
    assert receipt.remote_id
    assert seen
    assert seen[0].startswith("Basic ")


def test_authorize_command_prints_url_state_and_verifier(capsys: Any) -> None:
    assert _main(["authorize", "--client-id", "cid", "--redirect-uri", "http://127.0.0.1/cb"]) == 0
    printed = json.loads(capsys.readouterr().out)
    query = parse_qs(urlparse(printed["url"]).query)
    assert query["code_challenge"] == [x_oauth.s256(printed["verifier"])]
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] == [printed["state"]]
    assert query["scope"] == ["tweet.read tweet.write users.read offline.access"]
