"""The assembled channels fetch article media only through the safe fetcher."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from channels.base import InMemoryTokenStore
from publisher.fetch import FetchError
from publisher.runtime import build_channels
from publisher.secrets import EncryptedTokenStore, SecretStore


@pytest.mark.parametrize(
    ("platform", "url"),
    [
        ("youtube", "http://127.0.0.1:9/clip.mp4"),
        ("youtube", "http://169.254.169.254/latest/meta-data"),
        ("facebook", "http://10.0.0.7/photo.jpg"),
        ("telegram", "http://10.0.0.7/photo.jpg"),
    ],
)
async def test_media_urls_from_articles_cannot_reach_private_addresses(
    platform: str, url: str
) -> None:
    engine = sa.create_engine("sqlite://")
    async with httpx.AsyncClient() as http:
        channels = build_channels(http, None, SecretStore(engine, None))
        channel = channels[platform]
        # Facebook and Telegram keep their fetcher in an image cache; YouTube holds it directly.
        holder = channel if platform == "youtube" else channel.images  # type: ignore[attr-defined]
        fetch = holder.fetch
        assert fetch is not None
        with pytest.raises(FetchError):
            await fetch(url)
    engine.dispose()


@pytest.mark.parametrize("platform", ["youtube", "x"])
async def test_youtube_and_x_keep_renewed_tokens_encrypted_outside_the_sandbox(
    platform: str,
) -> None:
    engine = sa.create_engine("sqlite://")
    async with httpx.AsyncClient() as http:
        real = build_channels(http, None, SecretStore(engine, None))[platform]
        sandboxed = build_channels(http, "http://127.0.0.1:9", SecretStore(engine, None))[platform]
    assert isinstance(real.tokens.store, EncryptedTokenStore)  # type: ignore[attr-defined]
    # sandbox tokens are fakes: kept in memory, never written over a person's secret
    assert isinstance(sandboxed.tokens.store, InMemoryTokenStore)  # type: ignore[attr-defined]
    engine.dispose()


def test_zalo_and_viber_are_wired_with_their_stores_and_public_url() -> None:
    from channels.base import InMemoryTokenStore
    from channels.viber import ViberChannel
    from channels.zalo import ZaloChannel
    from publisher.secrets import EncryptedTokenStore
    from publisher.store.broadcast_book import SqlBroadcastBook

    engine = sa.create_engine("sqlite://")
    http = httpx.AsyncClient()
    real = build_channels(
        http,
        None,
        SecretStore(engine, None),
        zalo_broadcasts={"01.zalo": 4},
        public_url="https://publisher.example.gov.vn/",
    )
    zalo, viber = real["zalo"], real["viber"]
    assert isinstance(zalo, ZaloChannel)
    assert isinstance(viber, ViberChannel)
    # without a master key the encrypted store refuses to save: never a silent memory store
    assert isinstance(zalo.token_store, EncryptedTokenStore)  # type: ignore[attr-defined]
    assert isinstance(zalo.broadcast_book, SqlBroadcastBook)
    assert zalo.broadcasts == {"01.zalo": 4}
    assert viber.public_url == "https://publisher.example.gov.vn"
    assert viber.fetch is not None  # pictures are checked through the safe fetcher
    sandbox = build_channels(http, "http://127.0.0.1:9", SecretStore(engine, None))
    assert isinstance(sandbox["zalo"].token_store, InMemoryTokenStore)  # type: ignore[attr-defined]
    engine.dispose()
