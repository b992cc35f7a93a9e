"""Fixtures: the sandbox mounted in-process, every registered channel pointed at it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
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
from channels.sandbox.app import sample_jpeg
from channels.sandbox.core import SandboxSettings
from channels.telegram import TelegramChannel
from channels.viber import ViberChannel
from channels.x import XChannel
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


# YouTube and X access tokens are minted by the (strict) sandbox's token endpoints, so their
# test credentials carry what renews one: a refresh token the sandbox takes as a consent to
# the default scopes, and the OAuth client. The pre-made token above is refused (401) and
# the channel renews on the first call.
RENEWAL: dict[str, dict[str, str]] = {
    "youtube": {
        "refresh_token": "ytchan.sandbox-refresh",
        "client_id": "test-project",
        "client_secret": "test-secret",
    },
    "x": {"refresh_token": "xqn.sandbox-refresh", "client_id": "test-x-client"},
    # Zalo access tokens are minted by OAuth too (a pre-made one is refused with -216).
    "zalo": {"refresh_token": "oa51.r0", "app_id": "app51", "secret_key": "s"},
}


def credentials(platform: str, **extra: str) -> Credentials:
    return Credentials(ACCOUNTS[platform][1], {**RENEWAL.get(platform, {}), **extra})


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


@dataclass
class Media:
    """The web the tests' articles point at: what the sandbox's Telegram servers fetch and
    what the channels' fetcher (the safe fetcher in production) returns. Unknown URLs 404."""

    files: dict[str, bytes] = field(default_factory=dict)
    slow: set[str] = field(default_factory=set)  # answer after 10 s
    # Reachable by our fetcher but not from Telegram's servers (an intranet portal).
    unreachable: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requests.append(url)
        if url in self.unreachable:
            raise httpx.ConnectError("connection refused", request=request)
        if url in self.slow:
            await asyncio.sleep(10)
        if url not in self.files:
            return httpx.Response(404, text="not found")
        return httpx.Response(200, content=self.files[url], headers={"content-type": "image/jpeg"})

    async def fetch(self, url: str) -> bytes:
        if url not in self.files:
            raise LookupError(f"{url}: 404")
        return self.files[url]


def sample_image_urls() -> list[str]:
    return sorted({url for article in samples() for url in article.images})


@pytest.fixture
def media() -> Media:
    jpeg = sample_jpeg()
    return Media({url: jpeg for url in sample_image_urls()})


@pytest.fixture
def sandbox(media: Media) -> Any:
    transport = httpx.MockTransport(media.handle)
    return make_app(
        SandboxSettings(telegram_media_transport=transport, telegram_url_timeout_s=1),
        callback_transport=httpx.ASGITransport(app=publisher_app()),
    )


@pytest.fixture
async def http(sandbox: Any) -> Any:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox), base_url=SANDBOX
    ) as client:
        yield client


async def _fetch_video(url: str) -> bytes:
    return VIDEO


@pytest.fixture
def channels(http: httpx.AsyncClient, media: Media) -> dict[str, Any]:
    found = {p.value: c for p, c in load_channels(http, SANDBOX).items()}
    found["telegram"] = TelegramChannel(http, f"{SANDBOX}/telegram", fetch=media.fetch)
    # quick settings for tests: no waits, small chunks, no library-internal retries
    found["youtube"] = YouTubeChannel(
        http,
        f"{SANDBOX}/youtube",
        fetch=_fetch_video,
        settings=YouTubeSettings(chunk_size=4096, num_retries=0),
        token_store=InMemoryTokenStore(),
    )
    found["x"] = XChannel(http, f"{SANDBOX}/x", token_store=InMemoryTokenStore())
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
