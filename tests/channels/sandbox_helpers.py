"""Fixtures: the sandbox mounted in-process, every registered channel pointed at it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from channels.article_json import article_from_json
from channels.base import Credentials, InMemoryTokenStore
from channels.registry import channel_names, load_channels
from channels.sandbox import make_app
from channels.viber import ViberChannel
from channels.youtube import YouTubeChannel, YouTubeSettings
from channels.zalo import ZaloChannel, ZaloSettings
from publisher.domain import Article, ChannelAccount, Platform, Unit
from publisher.viber_webhook import make_viber_webhook_app

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"
SANDBOX = "http://sandbox"
PUBLISHER = "http://publisher"  # where the sandbox reaches the publisher's webhook endpoint
UNIT = Unit(code="51", name="Tỉnh Quảng Ngãi", kind="province", short_name="Quảng Ngãi")
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40

ACCOUNTS: dict[str, tuple[str, str]] = {  # platform → (external id, token)
    "facebook": ("100000000000001", "fbpage.token"),
    "youtube": ("ytchan", "ytchan.token"),
    "zalo": ("oa51", "oa51.a0"),
    "viber": ("vb51", "vb51.token"),
    "telegram": ("@qn_telegram", "123456:ABCdef"),
    "x": ("xqn", "xqn.token"),
}


def sample(name: str) -> Article:
    return article_from_json(json.loads((SAMPLES / name).read_text("utf-8")), name)


def samples() -> list[Article]:
    return [sample(p.name) for p in sorted(SAMPLES.glob("*.json"))]


def account(platform: str) -> ChannelAccount:
    external, _ = ACCOUNTS[platform]
    return ChannelAccount(
        id=f"51.{platform}", unit_code="51", platform=Platform(platform), external_id=external
    )


# Zalo access tokens are minted by OAuth (a pre-made one is refused with -216): the account
# carries what refreshes it, and the channel gets its first working pair from the sandbox.
ZALO_EXTRA = {"refresh_token": "oa51.r0", "app_id": "app51", "secret_key": "s"}


def credentials(platform: str, **extra: str) -> Credentials:
    if platform == "zalo":
        extra = {**ZALO_EXTRA, **extra}
    return Credentials(ACCOUNTS[platform][1], extra)


def publisher_app() -> Starlette:
    """The publisher's side of callbacks, as `publisher run` mounts it (Viber's webhook)."""
    known = {account(p).id: account(p) for p in ACCOUNTS}
    viber = make_viber_webhook_app(known.get, lambda a: credentials(a.platform.value))
    return Starlette(routes=[Mount("/viber", app=viber)])


def ledger_account(platform: str) -> str:
    """How the sandbox names the account in its ledger."""
    external, token = ACCOUNTS[platform]
    if platform in ("facebook", "telegram"):
        return external
    return token.split(".", 1)[0]


@pytest.fixture
def sandbox() -> Any:
    return make_app(callback_transport=httpx.ASGITransport(app=publisher_app()))


@pytest.fixture
async def http(sandbox: Any) -> Any:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox), base_url=SANDBOX
    ) as client:
        yield client


async def _fetch_video(url: str) -> bytes:
    return VIDEO


@pytest.fixture
def channels(http: httpx.AsyncClient) -> dict[str, Any]:
    found = {p.value: c for p, c in load_channels(http, SANDBOX).items()}
    # quick settings for tests: no waits, small chunks, no library-internal retries
    found["youtube"] = YouTubeChannel(
        http,
        f"{SANDBOX}/youtube",
        fetch=_fetch_video,
        settings=YouTubeSettings(chunk_size=4096, num_retries=0),
    )
    found["zalo"] = ZaloChannel(
        http,
        f"{SANDBOX}/zalo",
        settings=ZaloSettings(verify_delay_s=0, verify_attempts=3),
        token_store=InMemoryTokenStore(),
    )
    found["viber"] = ViberChannel(http, f"{SANDBOX}/viber", public_url=PUBLISHER)
    return found


CHANNEL_NAMES = channel_names()


async def ledger(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await http.get("/_sandbox/ledger")
    result: list[dict[str, Any]] = response.json()
    return result


async def set_faults(http: httpx.AsyncClient, *faults: dict[str, Any]) -> None:
    response = await http.post("/_sandbox/faults", json={"seed": 1, "faults": list(faults)})
    assert response.status_code == 200, response.text


def a_while_ago() -> datetime:
    return datetime(2020, 1, 1, tzinfo=UTC)
