"""Telegram against the strict Bot API emulator: photo URLs that Telegram's servers cannot
use (unreachable, slow, over 5 MB) fall back to an upload through the safe fetcher; media
groups; withdraw by delete, with the edit fallback; the account check."""

from __future__ import annotations

import dataclasses
import io
import json
import random
from typing import Any

import httpx
import pytest
from PIL import Image
from sandbox_helpers import SANDBOX, UNIT, Media, account, credentials, ledger, sample, set_faults

from channels.base import Credentials, ErrorKind, SendError, Template
from channels.sandbox import telegram as botapi
from channels.sandbox.app import sample_jpeg
from channels.sandbox.core import SandboxState
from channels.telegram import TelegramChannel

CHAT = account("telegram").external_id
TOKEN = credentials("telegram").token
BOT_ID = int(TOKEN.split(":")[0])
API = f"/telegram/bot{TOKEN}"
PHOTO = "https://quangngai.gov.vn/uploads/2026/11/14/anh-{n}.jpg"


def state_of(sandbox: Any) -> SandboxState:
    result: SandboxState = sandbox.state.sandbox
    return result


def telegram(http: httpx.AsyncClient, media: Media | None = None) -> TelegramChannel:
    return TelegramChannel(
        http, f"{SANDBOX}/telegram", fetch=media.fetch if media is not None else None
    )


def photos(media: Media, count: int, data: bytes | None = None) -> list[str]:
    urls = [PHOTO.format(n=n) for n in range(count)]
    for url in urls:
        media.files[url] = data or sample_jpeg()
    return urls


def adapted(http: httpx.AsyncClient, images: list[str]) -> dict[str, Any]:
    article = dataclasses.replace(sample("tin-dia-phuong-lu-quang-ngai.json"), images=tuple(images))
    result = telegram(http).adapt(article, UNIT, Template())
    assert result.payload is not None
    payload: dict[str, Any] = result.payload
    return payload


def noisy_jpeg(side: int) -> bytes:
    """A JPEG over 5 MB (noise does not compress) but under 10 MB."""
    rng = random.Random(7)
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=97)
    return out.getvalue()


async def entries(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    return [e for e in await ledger(http) if e["platform"] == "telegram"]


# --- photos by URL, then by upload -------------------------------------------------------------


async def test_a_reachable_photo_goes_by_url(http: httpx.AsyncClient, media: Media) -> None:
    [url] = photos(media, 1)
    receipt = await telegram(http, media).send(
        account("telegram"), credentials("telegram"), adapted(http, [url])
    )
    [entry] = await entries(http)
    assert entry["id"] == receipt.remote_id
    assert entry["payload"]["photos"] == ["url"]
    assert media.requests == [url]  # Telegram's servers fetched it, once


@pytest.mark.parametrize("trouble", ["unreachable", "slow", "over 5 MB"])
async def test_a_photo_telegram_cannot_fetch_is_uploaded_instead(
    http: httpx.AsyncClient, media: Media, trouble: str
) -> None:
    [url] = photos(media, 1, noisy_jpeg(2000) if trouble == "over 5 MB" else None)
    if trouble == "over 5 MB":
        assert 5 * 1024 * 1024 < len(media.files[url]) <= 10 * 1024 * 1024
    elif trouble == "unreachable":
        media.unreachable.add(url)
    else:
        media.slow.add(url)  # the sandbox gives up after 1 s, as Telegram does after a few
    payload = adapted(http, [url])
    receipt = await telegram(http, media).send(
        account("telegram"), credentials("telegram"), payload
    )
    assert receipt.problems == ()
    [entry] = await entries(http)  # one post: the refused URL posted nothing
    assert entry["id"] == receipt.remote_id
    assert entry["payload"]["photos"] == ["upload"]
    assert entry["payload"]["caption"] == payload["caption"]


async def test_without_a_fetcher_the_text_goes_alone_with_a_warning(
    http: httpx.AsyncClient, media: Media
) -> None:
    [url] = photos(media, 1)
    media.unreachable.add(url)
    payload = adapted(http, [url])
    receipt = await telegram(http).send(account("telegram"), credentials("telegram"), payload)
    assert [p.code for p in receipt.problems] == ["image_missing"]
    [entry] = await entries(http)
    assert entry["payload"]["text"] == payload["caption"]
    assert entry["body_sha256"] == telegram(http).match_hash(payload)


async def test_the_emulator_refuses_photo_urls_with_telegrams_own_words(
    http: httpx.AsyncClient, media: Media
) -> None:
    [small, big, html] = photos(media, 3)
    media.files[big] = noisy_jpeg(2000)
    media.files[html] = b"<html>not an image</html>"
    missing = "https://quangngai.gov.vn/khong-co.jpg"
    expected = {
        missing: "Bad Request: failed to get HTTP URL content",
        big: "Bad Request: wrong file identifier/HTTP URL specified",
        html: "Bad Request: wrong type of the web page content",
        "photo999": "Bad Request: wrong file identifier/HTTP URL specified",
    }
    for photo, description in expected.items():
        reply = await http.post(f"{API}/sendPhoto", data={"chat_id": CHAT, "photo": photo})
        assert reply.status_code == 400
        assert reply.json()["description"] == description
    ok = await http.post(f"{API}/sendPhoto", data={"chat_id": CHAT, "photo": small})
    assert ok.json()["ok"] is True
    assert len(await entries(http)) == 1


async def test_uploads_are_accepted_up_to_10_mb(http: httpx.AsyncClient) -> None:
    big = noisy_jpeg(2000)
    accepted = await http.post(
        f"{API}/sendPhoto", data={"chat_id": CHAT}, files={"photo": ("a.jpg", big, "image/jpeg")}
    )
    assert accepted.json()["ok"] is True
    too_big = b"\xff\xd8" + b"0" * (10 * 1024 * 1024)
    refused = await http.post(
        f"{API}/sendPhoto",
        data={"chat_id": CHAT},
        files={"photo": ("b.jpg", too_big, "image/jpeg")},
    )
    assert refused.status_code == 413


# --- media groups ------------------------------------------------------------------------------


async def test_three_images_go_as_one_media_group(http: httpx.AsyncClient, media: Media) -> None:
    urls = photos(media, 3)
    payload = adapted(http, urls)
    assert payload["photos"] == urls
    receipt = await telegram(http, media).send(
        account("telegram"), credentials("telegram"), payload
    )
    ids = receipt.remote_id.split(",")
    assert len(ids) == 3
    assert [int(i) for i in ids] == sorted(int(i) for i in ids)
    [entry] = await entries(http)  # one post, three messages
    assert entry["id"] == receipt.remote_id
    assert entry["payload"]["photos"] == ["url"] * 3
    assert entry["body_sha256"] == telegram(http).match_hash(payload)
    assert receipt.url is not None
    assert receipt.url.endswith(f"/{ids[0]}")


async def test_a_media_group_with_an_unusable_url_is_uploaded_whole(
    http: httpx.AsyncClient, media: Media
) -> None:
    urls = photos(media, 3)
    media.unreachable.add(urls[1])
    receipt = await telegram(http, media).send(
        account("telegram"), credentials("telegram"), adapted(http, urls)
    )
    [entry] = await entries(http)
    assert entry["id"] == receipt.remote_id
    assert entry["payload"]["photos"] == ["upload"] * 3


async def test_more_than_ten_images_keep_the_first_ten(
    http: httpx.AsyncClient, media: Media
) -> None:
    urls = photos(media, 12)
    article = dataclasses.replace(sample("tin-dia-phuong-lu-quang-ngai.json"), images=tuple(urls))
    result = telegram(http).adapt(article, UNIT, Template())
    assert result.payload is not None
    assert result.payload["photos"] == urls[:10]
    assert "too_many_images" in [p.code for p in result.problems]


@pytest.mark.parametrize(
    ("count", "caption", "description"),
    [
        (1, "Tin", "Bad Request: media group must contain at least 2 items"),
        (11, "Tin", "Bad Request: too many messages to send as an album"),
        (2, "Á" * 1025, "Bad Request: message caption is too long"),
    ],
)
async def test_the_emulator_enforces_media_group_rules(
    http: httpx.AsyncClient, media: Media, count: int, caption: str, description: str
) -> None:
    urls = photos(media, count)
    items = [
        {"type": "photo", "media": u, "caption": caption if i == 0 else ""}
        for i, u in enumerate(urls)
    ]
    reply = await http.post(
        f"{API}/sendMediaGroup", data={"chat_id": CHAT, "media": json.dumps(items)}
    )
    assert reply.json()["description"] == description
    assert await entries(http) == []


# --- withdraw ----------------------------------------------------------------------------------


@pytest.mark.parametrize("images", [0, 1, 3])
async def test_withdraw_deletes_every_message_and_twice_is_fine(
    http: httpx.AsyncClient, media: Media, images: int
) -> None:
    channel = telegram(http, media)
    receipt = await channel.send(
        account("telegram"), credentials("telegram"), adapted(http, photos(media, images))
    )
    for _ in range(2):  # the second call finds nothing left and still succeeds
        withdrawn = await channel.withdraw(
            account("telegram"), credentials("telegram"), receipt.remote_id, notice="Thu hồi"
        )
        assert withdrawn.remote_id == receipt.remote_id
        assert withdrawn.problems == ()
    [entry] = await entries(http)
    assert entry["withdrawn"] == "deleted"
    for message_id in receipt.remote_id.split(","):  # really gone, each of them
        reply = await http.post(
            f"{API}/deleteMessage", data={"chat_id": CHAT, "message_id": message_id}
        )
        assert reply.json()["description"] == "Bad Request: message to delete not found"


@pytest.mark.parametrize("images", [0, 1, 3])
async def test_an_old_post_is_edited_to_the_notice_when_telegram_refuses_to_delete(
    http: httpx.AsyncClient, media: Media, sandbox: Any, images: int
) -> None:
    channel = telegram(http, media)
    receipt = await channel.send(
        account("telegram"), credentials("telegram"), adapted(http, photos(media, images))
    )
    state_of(sandbox).advance_clock(49 * 3600)  # past Telegram's 48 hours
    notice = "Bài đã được thu hồi theo yêu cầu của cơ quan chủ quản."
    for _ in range(2):  # the second call finds the notice already there and succeeds
        withdrawn = await channel.withdraw(
            account("telegram"), credentials("telegram"), receipt.remote_id, notice=notice
        )
        [problem] = withdrawn.problems
        assert problem.code == "withdrawn_by_edit"
        assert "can't be deleted" in problem.message
        assert ("photos of the album stay visible" in problem.message) == (images > 1)
    [entry] = await entries(http)
    assert entry["withdrawn"] == "edited"


async def test_withdraw_failures_are_classified(http: httpx.AsyncClient, media: Media) -> None:
    channel = telegram(http, media)
    receipt = await channel.send(account("telegram"), credentials("telegram"), adapted(http, []))
    with pytest.raises(SendError) as bad_id:
        await channel.withdraw(account("telegram"), credentials("telegram"), "abc", notice="")
    assert bad_id.value.kind is ErrorKind.PERMANENT
    await set_faults(http, {"platform": "telegram", "kind": "server_error", "next": 1})
    with pytest.raises(SendError) as caught:
        await channel.withdraw(
            account("telegram"), credentials("telegram"), receipt.remote_id, notice=""
        )
    assert caught.value.kind is ErrorKind.BEFORE_SEND  # deleting again is safe
    await set_faults(http)
    await http.post("/_sandbox/tokens/revoke", json={"tokens": [TOKEN]})
    with pytest.raises(SendError) as revoked:
        await channel.withdraw(
            account("telegram"), credentials("telegram"), receipt.remote_id, notice=""
        )
    assert revoked.value.kind is ErrorKind.AUTH


# --- account check -----------------------------------------------------------------------------


async def test_check_passes_for_an_admin_who_can_post(http: httpx.AsyncClient) -> None:
    result = await telegram(http).check(account("telegram"), credentials("telegram"))
    assert result.ok, result.detail
    assert result.expires_at is None  # bot tokens do not expire
    assert "can_post_messages" in result.scopes
    assert "can_delete_messages" in result.scopes
    assert "sandbox_bot" in result.detail


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        ("member", "not an administrator"),
        ("no_post", "without the right to post"),
        ("unknown_chat", "chat not found"),
        ("revoked", "rejected"),
    ],
)
async def test_check_fails_when_the_bot_cannot_post(
    http: httpx.AsyncClient, sandbox: Any, setup: str, words: str
) -> None:
    state = state_of(sandbox)
    if setup == "member":
        botapi.set_member(state, CHAT, BOT_ID, "member")
    elif setup == "no_post":
        botapi.set_member(state, CHAT, BOT_ID, "administrator", can_post_messages=False)
    elif setup == "unknown_chat":
        botapi.forget_chat(state, CHAT)
    else:
        state.revoked_tokens.add(TOKEN)
    result = await telegram(http).check(account("telegram"), credentials("telegram"))
    assert not result.ok
    assert words in result.detail.lower() or words in result.detail


async def test_check_without_delete_right_says_a_recall_will_edit(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    botapi.set_member(state_of(sandbox), CHAT, BOT_ID, "administrator", can_delete_messages=False)
    result = await telegram(http).check(account("telegram"), Credentials(TOKEN))
    assert result.ok
    assert "can_delete_messages" not in result.scopes
    assert "a recall edits" in result.detail


# --- served on loopback, as `publisher sandbox serve` and the demo run it ------------------------


async def test_on_loopback_the_emulator_fetches_photo_urls_with_a_real_get() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from channels.sandbox import make_app
    from publisher.demo.run import LoopbackServer

    served = make_app()  # no injected transport: a real GET, like Telegram's servers
    server = LoopbackServer(Starlette(routes=[Mount("/", served)]))
    url = server.start()
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            channel = TelegramChannel(http, f"{url}/telegram")
            good = f"{url}/_sandbox/media/bao-so-15.jpg"
            receipt = await channel.send(
                account("telegram"),
                credentials("telegram"),
                {"photo": good, "caption": "Ảnh", "parse_mode": "HTML"},
            )
            assert receipt.problems == ()
            missing = f"{url}/_sandbox/media/khong-co.webp"
            fallback = await channel.send(
                account("telegram"),
                credentials("telegram"),
                {"photo": missing, "caption": "Không ảnh", "parse_mode": "HTML"},
            )
            assert [p.code for p in fallback.problems] == ["image_missing"]  # no fetcher here
    finally:
        server.stop()
    photo, text = served.state.sandbox.ledger
    assert photo.payload["photos"] == ["url"]
    assert "text" in text.payload
