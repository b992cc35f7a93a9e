"""Facebook against the strict Graph emulator: what the real platform refuses, the policy
block (368), the capability error (3), appsecret_proof, the Page-token lifecycle
(debug_token, token exchange, re-deriving after 190) and withdrawing by DELETE."""

from __future__ import annotations

import dataclasses
import io
import json
import random
from typing import Any

import httpx
import pytest
from PIL import Image
from sandbox_helpers import SANDBOX, UNIT, account, credentials, ledger, sample, set_faults

from channels.base import Credentials, ErrorKind, InMemoryTokenStore, SendError, Template
from channels.facebook import FacebookChannel, FacebookSettings
from channels.sandbox import facebook as graph
from channels.sandbox.core import SandboxState

PAGE = account("facebook").external_id
APP_ID, APP_SECRET = "sandbox-app-51", "s3cret-of-the-app"
V = "/facebook/v25.0"


def state_of(sandbox: Any) -> SandboxState:
    result: SandboxState = sandbox.state.sandbox
    return result


def channel(http: httpx.AsyncClient, **kwargs: Any) -> FacebookChannel:
    return FacebookChannel(http, f"{SANDBOX}/facebook", **kwargs)


def payload() -> dict[str, Any]:
    adapted = channel(httpx.AsyncClient()).adapt(
        sample("directive-chuyen-doi-so.json"), UNIT, Template()
    )
    assert adapted.payload is not None
    return dict(adapted.payload)


def noisy_png(side: int) -> bytes:
    """An image that compresses badly: a PNG well over 4 MB."""
    rng = random.Random(5)
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


# --- what Graph refuses --------------------------------------------------------------------


async def test_a_message_over_graphs_cap_is_refused_and_the_channel_cap_is_below_it(
    http: httpx.AsyncClient,
) -> None:
    fb = channel(http)
    with pytest.raises(SendError) as caught:
        await fb.send(account("facebook"), credentials("facebook"), {"message": "Á" * 63_207})
    assert caught.value.kind is ErrorKind.PERMANENT
    assert caught.value.platform_code == "100"
    receipt = await fb.send(
        account("facebook"),
        credentials("facebook"),
        {"message": "Á" * fb.text_limit},  # type: ignore[operator]
    )
    assert receipt.remote_id.startswith(PAGE)


async def test_attached_media_must_name_a_photo_this_page_uploaded(
    http: httpx.AsyncClient,
) -> None:
    token = credentials("facebook").token
    unknown = await http.post(
        f"{V}/{PAGE}/feed",
        data={
            "access_token": token,
            "message": "Tin",
            "attached_media[0]": json.dumps({"media_fbid": "424242"}),
        },
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == 100
    other = await http.post(
        f"{V}/200000000000002/photos",
        data={"access_token": token, "published": "false"},
        files={"source": ("p.jpg", b"\xff\xd8" + b"0" * 100, "image/jpeg")},
    )
    foreign = other.json()["id"]
    refused = await http.post(
        f"{V}/{PAGE}/feed",
        data={
            "access_token": token,
            "message": "Tin",
            "attached_media[0]": json.dumps({"media_fbid": foreign}),
        },
    )
    assert refused.json()["error"]["code"] == 100
    assert await ledger(http) == []


async def test_photos_of_4_mb_or_more_are_refused_and_the_channel_fits_them(
    http: httpx.AsyncClient,
) -> None:
    big = noisy_png(1400)
    assert len(big) > 4 * 1024 * 1024
    direct = await http.post(
        f"{V}/{PAGE}/photos",
        data={"access_token": credentials("facebook").token, "published": "false"},
        files={"source": ("p.png", big, "image/png")},
    )
    assert direct.json()["error"]["code"] == 100

    async def fetch(url: str) -> bytes:
        return big

    receipt = await channel(http, fetch=fetch).send(
        account("facebook"),
        credentials("facebook"),
        {"message": "Ảnh lớn", "photos": ["https://quangngai.gov.vn/anh-lon.png"]},
    )
    assert receipt.problems == ()  # re-encoded under 4 MB, not dropped
    [entry] = await ledger(http)
    assert len(entry["payload"]["attached_media"]) == 1


# --- errors the engine must treat right ------------------------------------------------------


async def test_policy_block_368_waits_long_and_does_not_stop_the_account(
    http: httpx.AsyncClient,
) -> None:
    fb = channel(http, settings=FacebookSettings(policy_block_wait_s=7200))
    await set_faults(http, {"platform": "facebook", "kind": "error", "next": 1, "code": 368})
    with pytest.raises(SendError) as caught:
        await fb.send(account("facebook"), credentials("facebook"), payload())
    error = caught.value
    assert error.kind is ErrorKind.BEFORE_SEND  # refused: safe to retry; not AUTH
    assert error.retry_after == 7200
    assert error.platform_code == "368/1390008"
    assert "368" in error.message
    assert "2 giờ" in error.message  # Vietnamese first
    # The block was on that one call: the Page's next post goes out.
    await fb.send(account("facebook"), credentials("facebook"), payload())
    assert len(await ledger(http)) == 1


async def test_capability_error_3_is_permanent_and_named(http: httpx.AsyncClient) -> None:
    await set_faults(http, {"platform": "facebook", "kind": "error", "next": 1, "code": 3})
    with pytest.raises(SendError) as caught:
        await channel(http).send(account("facebook"), credentials("facebook"), payload())
    assert caught.value.kind is ErrorKind.PERMANENT
    assert "capability" in caught.value.message


# --- appsecret_proof -----------------------------------------------------------------------


async def test_appsecret_proof_is_required_when_the_page_asks_and_verified(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    state = state_of(sandbox)
    graph.register_app(state, APP_ID, APP_SECRET)
    graph.require_proof(state, PAGE, APP_ID)
    fb = channel(http)
    token = credentials("facebook").token
    with pytest.raises(SendError) as missing:
        await fb.send(account("facebook"), Credentials(token), payload())
    assert "appsecret_proof" in missing.value.message
    with pytest.raises(SendError) as wrong:
        await fb.send(account("facebook"), Credentials(token, {"app_secret": "nope"}), payload())
    assert "Invalid appsecret_proof" in wrong.value.message
    assert await ledger(http) == []
    proven = Credentials(token, {"app_secret": APP_SECRET})
    receipt = await fb.send(account("facebook"), proven, payload())
    # Read-back and delete carry the proof too.
    found = await fb.find_published(
        account("facebook"), proven, (await ledger(http))[0]["body_sha256"], _long_ago()
    )
    assert found is not None
    assert found.remote_id == receipt.remote_id
    await fb.withdraw(account("facebook"), proven, receipt.remote_id, notice="")
    assert (await ledger(http))[0]["withdrawn"] == "deleted"


def _long_ago() -> Any:
    from datetime import UTC, datetime

    return datetime(2020, 1, 1, tzinfo=UTC)


# --- tokens: check, trade, re-derive ---------------------------------------------------------


async def test_check_reports_a_page_token_that_never_expires(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    graph.register_app(state_of(sandbox), APP_ID, APP_SECRET)
    token = credentials("facebook").token
    with_app = Credentials(token, {"app_id": APP_ID, "app_secret": APP_SECRET})
    result = await channel(http).check(account("facebook"), with_app)
    assert result.ok, result.detail
    assert result.expires_at is None
    assert "pages_manage_posts" in result.scopes
    assert result.credentials is None


async def test_without_the_app_a_page_token_is_only_probed(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    # Graph will not let a Page token inspect itself with debug_token (100): the check asks
    # instead whether the token is the Page's own, and says what it cannot know.
    fb = channel(http)
    result = await fb.check(account("facebook"), credentials("facebook"))
    assert result.ok, result.detail
    assert "app_secret" in result.detail
    assert result.scopes == ()
    state = state_of(sandbox)
    graph.register_app(state, APP_ID, APP_SECRET)
    user = graph.mint_user_token(state, "admin51", [PAGE, "200000000000002"], app_id=APP_ID)
    other_page = await http.get(
        f"{V}/200000000000002", params={"fields": "access_token", "access_token": user}
    )
    foreign = other_page.json()["access_token"]
    mismatch = await fb.check(account("facebook"), Credentials(foreign))
    assert not mismatch.ok
    assert PAGE in mismatch.detail
    state.revoked_tokens.add(credentials("facebook").token)
    assert not (await fb.check(account("facebook"), credentials("facebook"))).ok


async def test_check_trades_a_user_token_for_the_pages_non_expiring_token(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    state = state_of(sandbox)
    graph.register_app(state, APP_ID, APP_SECRET)
    short = graph.mint_user_token(state, "admin51", [PAGE], app_id=APP_ID, ttl_s=3600)
    extras = {"app_id": APP_ID, "app_secret": APP_SECRET}
    fb = channel(http)
    result = await fb.check(account("facebook"), Credentials(short, extras))
    assert result.ok, result.detail
    traded = result.credentials
    assert traded is not None
    assert traded.token != short
    assert traded.extra["user_token"] not in (short, traded.token)  # the long-lived one
    assert traded.extra["app_secret"] == APP_SECRET
    assert result.expires_at is None  # a Page token from a long-lived user token
    debug = (
        await http.get(
            f"{V}/debug_token",
            params={"input_token": traded.token, "access_token": f"{APP_ID}|{APP_SECRET}"},
        )
    ).json()["data"]
    assert (debug["type"], debug["profile_id"], debug["expires_at"]) == ("PAGE", PAGE, 0)
    # The short-lived user token dies after its hour; the traded Page token keeps posting.
    state.advance_clock(2 * 3600)
    assert not (await fb.check(account("facebook"), Credentials(short, extras))).ok
    await fb.send(account("facebook"), traded, payload())
    assert len(await ledger(http)) == 1


async def test_check_refuses_what_cannot_post(http: httpx.AsyncClient, sandbox: Any) -> None:
    state = state_of(sandbox)
    graph.register_app(state, APP_ID, APP_SECRET)
    fb = channel(http)
    user = graph.mint_user_token(state, "admin51", [PAGE], app_id=APP_ID)
    no_app = await fb.check(account("facebook"), Credentials(user))
    assert not no_app.ok
    assert "app_secret" in no_app.detail
    stranger = graph.mint_user_token(state, "stranger", [], app_id=APP_ID)
    not_admin = await fb.check(
        account("facebook"), Credentials(stranger, {"app_id": APP_ID, "app_secret": APP_SECRET})
    )
    assert not not_admin.ok
    assert PAGE in not_admin.detail
    bad_secret = await fb.check(
        account("facebook"), Credentials(user, {"app_id": APP_ID, "app_secret": "wrong"})
    )
    assert not bad_secret.ok
    state.revoked_tokens.add(credentials("facebook").token)
    revoked = await fb.check(account("facebook"), credentials("facebook"))
    assert not revoked.ok
    # A Page token of another Page is not this account's token.
    traded = await fb.check(
        account("facebook"), Credentials(user, {"app_id": APP_ID, "app_secret": APP_SECRET})
    )
    assert traded.credentials is not None
    other = dataclasses.replace(account("facebook"), external_id="200000000000002")
    mismatch = await fb.check(other, traded.credentials)
    assert not mismatch.ok
    assert "200000000000002" in mismatch.detail


async def test_a_user_token_cannot_post_to_the_page(http: httpx.AsyncClient, sandbox: Any) -> None:
    state = state_of(sandbox)
    user = graph.mint_user_token(state, "admin51", [PAGE], app_id=APP_ID)
    with pytest.raises(SendError) as caught:
        await channel(http).send(account("facebook"), Credentials(user), payload())
    assert caught.value.kind is ErrorKind.PERMANENT
    assert caught.value.platform_code == "200"


async def _traded(http: httpx.AsyncClient, sandbox: Any) -> Credentials:
    state = state_of(sandbox)
    graph.register_app(state, APP_ID, APP_SECRET)
    short = graph.mint_user_token(state, "admin51", [PAGE], app_id=APP_ID)
    result = await channel(http).check(
        account("facebook"), Credentials(short, {"app_id": APP_ID, "app_secret": APP_SECRET})
    )
    assert result.credentials is not None
    return result.credentials


@pytest.mark.parametrize("how", ["revoked", "expired"])
async def test_a_dead_page_token_is_derived_again_saved_and_the_post_goes_once(
    http: httpx.AsyncClient, sandbox: Any, how: str
) -> None:
    stored = await _traded(http, sandbox)
    state = state_of(sandbox)
    if how == "revoked":
        state.revoked_tokens.add(stored.token)  # Graph: 190/460
    else:
        await set_faults(  # Graph: 190/463 on the first call only
            http, {"platform": "facebook", "kind": "expired_token", "next": 1}
        )
    tokens = InMemoryTokenStore()
    fb = channel(http, token_store=tokens)
    receipt = await fb.send(account("facebook"), stored, payload())
    [entry] = await ledger(http)
    assert entry["id"] == receipt.remote_id
    saved = await tokens.load(account("facebook").id)
    assert saved is not None
    assert saved.access_token != stored.token
    assert saved.expires_at is None
    # The saved token is what the store gives the next send.
    await fb.send(
        account("facebook"),
        Credentials(saved.access_token, stored.extra),
        {"message": "Bài thứ hai"},
    )
    assert len(await ledger(http)) == 2


async def test_without_a_working_user_token_a_dead_page_token_stops_the_account(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    stored = await _traded(http, sandbox)
    state = state_of(sandbox)
    state.revoked_tokens.update({stored.token, stored.extra["user_token"]})  # password changed
    tokens = InMemoryTokenStore()
    with pytest.raises(SendError) as caught:
        await channel(http, token_store=tokens).send(account("facebook"), stored, payload())
    assert caught.value.kind is ErrorKind.AUTH
    assert "reconnect" in caught.value.message
    assert await tokens.load(account("facebook").id) is None
    assert await ledger(http) == []
    # A plain Page token (no user token stored) is AUTH at once, as before.
    state.revoked_tokens.add(credentials("facebook").token)
    with pytest.raises(SendError) as plain:
        await channel(http).send(account("facebook"), credentials("facebook"), payload())
    assert plain.value.kind is ErrorKind.AUTH


# --- withdraw ------------------------------------------------------------------------------


async def test_withdraw_deletes_the_post_and_a_second_withdraw_is_fine(
    http: httpx.AsyncClient,
) -> None:
    fb = channel(http)
    receipt = await fb.send(account("facebook"), credentials("facebook"), payload())
    first = await fb.withdraw(
        account("facebook"), credentials("facebook"), receipt.remote_id, notice="Thu hồi"
    )
    assert first.remote_id == receipt.remote_id
    assert first.problems == ()
    [entry] = await ledger(http)
    assert entry["withdrawn"] == "deleted"
    again = await fb.withdraw(
        account("facebook"), credentials("facebook"), receipt.remote_id, notice="Thu hồi"
    )
    assert [p.code for p in again.problems] == ["already_withdrawn"]
    # A deleted post is gone from the read-back too.
    assert (
        await fb.find_published(
            account("facebook"), credentials("facebook"), entry["body_sha256"], _long_ago()
        )
        is None
    )


async def test_withdraw_failures_are_classified(http: httpx.AsyncClient) -> None:
    fb = channel(http)
    receipt = await fb.send(account("facebook"), credentials("facebook"), payload())
    await set_faults(http, {"platform": "facebook", "kind": "server_error", "next": 1})
    with pytest.raises(SendError) as caught:
        await fb.withdraw(
            account("facebook"), credentials("facebook"), receipt.remote_id, notice=""
        )
    assert caught.value.kind is ErrorKind.BEFORE_SEND  # DELETE is idempotent: retry is safe
    assert (await ledger(http))[0]["withdrawn"] is None
