"""Zalo refresh-token rotation: stored before use; a crash between rotation and storage never
loses access (under the rotate-on-first-use model the sandbox implements)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sandbox_helpers import UNIT, account, ledger, sample

from channels.base import (
    Credentials,
    ErrorKind,
    InMemoryTokenStore,
    SendError,
    Template,
    TokenSet,
)
from channels.zalo import ZaloChannel, ZaloSettings

PAST = (datetime.now(UTC) - timedelta(hours=1)).isoformat()


def zalo_credentials(
    access: str = "oa51.a0", refresh: str = "oa51.r0", expires_at: str = PAST
) -> Credentials:
    return Credentials(
        access,
        {"refresh_token": refresh, "app_id": "app51", "secret_key": "s", "expires_at": expires_at},
    )


class FailingStore(InMemoryTokenStore):
    async def save(self, account_id: str, tokens: TokenSet) -> None:
        raise OSError("disk full")


def zalo(http: Any, store: Any) -> ZaloChannel:
    return ZaloChannel(
        http, "http://sandbox/zalo", token_store=store, settings=ZaloSettings(verify_delay_s=0)
    )


def payload() -> dict[str, Any]:
    adapted = ZaloChannel.adapt(
        ZaloChannel.__new__(ZaloChannel), sample("directive-chuyen-doi-so.json"), UNIT, Template()
    )
    assert adapted.payload is not None
    return adapted.payload


async def refresh_raw(http: Any, refresh: str) -> dict[str, Any]:
    response = await http.post(
        "/zalo-oauth/v4/oa/access_token",
        headers={"secret_key": "s"},
        data={"refresh_token": refresh, "app_id": "app51", "grant_type": "refresh_token"},
    )
    result: dict[str, Any] = response.json()
    return result


async def test_expired_token_is_refreshed_and_stored_before_use(http: Any) -> None:
    store = InMemoryTokenStore()
    receipt = await zalo(http, store).send(account("zalo"), zalo_credentials(), payload())
    saved = store.tokens["51.zalo"]
    assert saved.refresh_token != "oa51.r0"
    assert saved.expires_at is not None
    assert saved.expires_at > datetime.now(UTC)
    assert receipt.remote_id == (await ledger(http))[0]["id"]
    # the old refresh token was retired once the new pair was used
    assert (await refresh_raw(http, "oa51.r0"))["error"] == -14014


async def test_store_failure_drops_new_pair_and_old_refresh_token_still_works(http: Any) -> None:
    with pytest.raises(SendError) as caught:
        await zalo(http, FailingStore()).send(account("zalo"), zalo_credentials(), payload())
    assert caught.value.kind is ErrorKind.BEFORE_SEND
    assert await ledger(http) == []
    store = InMemoryTokenStore()
    receipt = await zalo(http, store).send(account("zalo"), zalo_credentials(), payload())
    assert receipt.remote_id
    assert store.tokens["51.zalo"].refresh_token != "oa51.r0"


async def test_crash_after_platform_rotated_keeps_access(http: Any) -> None:
    # the process refreshed at Zalo and died before storing: the new pair is lost
    lost = await refresh_raw(http, "oa51.r0")
    assert lost["refresh_token"]
    # on restart the store still holds the old pair; refreshing with it still works
    store = InMemoryTokenStore()
    await store.save(
        "51.zalo", TokenSet("oa51.a0", "oa51.r0", datetime.now(UTC) - timedelta(hours=1))
    )
    receipt = await zalo(http, store).send(account("zalo"), zalo_credentials(), payload())
    assert receipt.remote_id
    # and the pair that was never stored cannot be used any more (no two live chains)
    assert (await refresh_raw(http, lost["refresh_token"]))["error"] == -14014


async def test_strict_rotation_crash_goes_to_auth_not_to_a_double_post(
    http: Any, sandbox: Any
) -> None:
    sandbox.state.sandbox.settings.zalo_strict_rotation = True
    await refresh_raw(http, "oa51.r0")  # rotated, never stored
    store = InMemoryTokenStore()
    await store.save(
        "51.zalo", TokenSet("oa51.a0", "oa51.r0", datetime.now(UTC) - timedelta(hours=1))
    )
    with pytest.raises(SendError) as caught:
        await zalo(http, store).send(account("zalo"), zalo_credentials(), payload())
    assert caught.value.kind is ErrorKind.AUTH
    assert await ledger(http) == []


async def test_rejected_token_refreshes_once_and_retries(http: Any) -> None:
    await http.post("/_sandbox/tokens/revoke", json={"tokens": ["oa51.a0"]})
    store = InMemoryTokenStore()
    future = (datetime.now(UTC) + timedelta(hours=20)).isoformat()
    receipt = await zalo(http, store).send(
        account("zalo"), zalo_credentials(expires_at=future), payload()
    )
    assert receipt.remote_id
    assert len(await ledger(http)) == 1


async def test_another_worker_already_rotated(http: Any) -> None:
    store = InMemoryTokenStore()
    fresh = await refresh_raw(http, "oa51.r0")
    await store.save(
        "51.zalo",
        TokenSet(
            fresh["access_token"], fresh["refresh_token"], datetime.now(UTC) + timedelta(hours=25)
        ),
    )
    receipt = await zalo(http, store).send(account("zalo"), zalo_credentials(), payload())
    assert receipt.remote_id
    assert store.tokens["51.zalo"].access_token == fresh["access_token"]  # no second refresh


async def test_without_a_store_an_expired_token_is_auth(http: Any) -> None:
    await http.post("/_sandbox/tokens/revoke", json={"tokens": ["oa51.a0"]})
    with pytest.raises(SendError) as caught:
        await zalo(http, None).send(account("zalo"), zalo_credentials(), payload())
    assert caught.value.kind is ErrorKind.AUTH
