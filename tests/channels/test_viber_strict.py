"""Viber against the strict emulator: no post before a webhook, the webhook set through the
publisher's own signed endpoint, pictures checked (JPEG, caption, 1 MB), the account check."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import httpx
import pytest
from sandbox_helpers import (
    PUBLISHER,
    SANDBOX,
    UNIT,
    account,
    credentials,
    ledger,
    publisher_app,
    sample,
)
from starlette.applications import Starlette
from starlette.routing import Mount

from channels.base import Credentials, ErrorKind, SendError, Severity, Template, WithdrawMode
from channels.sandbox import make_app
from channels.sandbox.samples import oversize_jpeg
from channels.viber import CAPTION_LIMIT, ViberChannel, webhook_url
from publisher.viber_webhook import make_viber_webhook_app, signature

MEDIA = f"{SANDBOX}/_sandbox/media"


def viber(http: httpx.AsyncClient, **kwargs: Any) -> ViberChannel:
    return ViberChannel(http, f"{SANDBOX}/viber", **kwargs)


def webhooks(sandbox: Any) -> dict[str, str]:
    found: dict[str, str] = sandbox.state.sandbox.platform_state["viber"].get("webhooks", {})
    return found


def text_payload() -> dict[str, Any]:
    adapted = ViberChannel.__new__(ViberChannel).adapt(
        dataclasses.replace(sample("directive-chuyen-doi-so.json"), images=()), UNIT, Template()
    )
    assert adapted.payload is not None
    assert adapted.payload["type"] == "text"
    return adapted.payload


def picture_payload(image: str) -> dict[str, Any]:
    article = dataclasses.replace(sample("directive-chuyen-doi-so.json"), images=(image,))
    adapted = ViberChannel.__new__(ViberChannel).adapt(article, UNIT, Template())
    assert adapted.payload is not None
    return adapted.payload


async def test_without_a_webhook_the_post_is_refused_and_the_admin_told_what_to_do(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    with pytest.raises(SendError) as caught:
        await viber(http).send(account("viber"), credentials("viber"), text_payload())
    assert caught.value.kind is ErrorKind.PERMANENT
    assert caught.value.platform_code == "10"
    assert "PUBLISHER_PUBLIC_URL" in caught.value.message
    assert await ledger(http) == []


async def test_the_webhook_is_set_through_the_publisher_endpoint_then_the_post_goes(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    channel = viber(http, public_url=PUBLISHER)
    receipt = await channel.send(account("viber"), credentials("viber"), text_payload())
    assert webhooks(sandbox) == {"vb51": webhook_url(PUBLISHER, "51.viber")}
    assert webhooks(sandbox)["vb51"] == "http://publisher/viber/webhook/51.viber"
    entries = await ledger(http)
    assert [e["id"] for e in entries] == [receipt.remote_id]  # one post, not two
    # the next post needs no second set-up
    await channel.send(account("viber"), credentials("viber"), {"type": "text", "text": "Tin 2"})
    assert len(await ledger(http)) == 2


async def test_a_webhook_that_does_not_check_out_is_not_set() -> None:
    # The publisher knows another token for the account: the signature does not match, the
    # endpoint answers 403, Viber does not set the webhook, nothing is posted.
    wrong = make_viber_webhook_app(
        {"51.viber": account("viber")}.get, lambda a: Credentials("vb51.another-token")
    )
    sandbox = make_app(
        callback_transport=httpx.ASGITransport(app=Starlette(routes=[Mount("/viber", wrong)]))
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox), base_url=SANDBOX
    ) as http:
        with pytest.raises(SendError) as caught:
            await viber(http, public_url=PUBLISHER).send(
                account("viber"), credentials("viber"), text_payload()
            )
        # nothing was posted (status 10 proved it): safe to try again once it is fixed
        assert caught.value.kind is ErrorKind.BEFORE_SEND
        assert "webhook" in caught.value.message
        assert webhooks(sandbox) == {}
        assert await ledger(http) == []


async def test_the_real_platform_needs_an_https_webhook(http: httpx.AsyncClient) -> None:
    channel = ViberChannel(http, None, public_url="http://publisher.example.vn")
    with pytest.raises(SendError, match="HTTPS"):
        await channel.set_webhook(account("viber"), credentials("viber"), "http://x.vn/hook")


async def test_webhook_endpoint_checks_signatures_and_logs_events(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=publisher_app()), base_url=PUBLISHER
    ) as client:
        path = "/viber/webhook/51.viber"
        token = credentials("viber").token
        body = b'{"event":"unsubscribed","user_id":"u1","timestamp":1}'
        bad = await client.post(path, content=body, headers={"X-Viber-Content-Signature": "00"})
        assert bad.status_code == 403
        unsigned = await client.post(path, content=body)
        assert unsigned.status_code == 403
        huge = await client.post(path, content=b"{" + b" " * (300 * 1024) + b"}")
        assert huge.status_code == 413
        unknown = await client.post(
            "/viber/webhook/nobody", content=body, headers={"X-Viber-Content-Signature": "00"}
        )
        assert unknown.status_code == 404
        with caplog.at_level(logging.INFO, logger="publisher.viber"):
            for raw in (
                body,
                b'{"event":"subscribed","user":{"id":"u2"}}',
                b'{"event":"failed","message_token":7,"desc":"blocked"}',
            ):
                ok = await client.post(
                    path, content=raw, headers={"X-Viber-Content-Signature": signature(token, raw)}
                )
                assert ok.status_code == 200
        logged = [r.getMessage() for r in caplog.records]
        assert "viber 51.viber: unsubscribed (user u1)" in logged
        assert "viber 51.viber: subscribed (user u2)" in logged
        assert any("message 7 failed: blocked" in m for m in logged)


async def test_a_picture_message_is_accepted(http: httpx.AsyncClient, sandbox: Any) -> None:
    payload = picture_payload(f"{MEDIA}/tin.jpg")
    assert payload["type"] == "picture"
    assert payload["media"] == f"{MEDIA}/tin.jpg"
    assert 0 < len(payload["text"]) <= CAPTION_LIMIT
    receipt = await viber(http, public_url=PUBLISHER).send(
        account("viber"), credentials("viber"), payload
    )
    (entry,) = await ledger(http)
    assert entry["id"] == receipt.remote_id
    assert entry["payload"]["type"] == "picture"
    assert entry["body_sha256"] == ViberChannel.__new__(ViberChannel).match_hash(payload)


@pytest.mark.parametrize(
    ("media_url", "why"),
    [
        (f"{MEDIA}/oversize-photo.jpg", "larger than 1 MB"),
        (f"{MEDIA}/photo.png", "must be a JPEG"),
    ],
)
async def test_a_picture_viber_would_refuse_is_refused(
    http: httpx.AsyncClient, media_url: str, why: str
) -> None:
    assert len(oversize_jpeg()) > 1024 * 1024
    with pytest.raises(SendError) as caught:
        await viber(http, public_url=PUBLISHER).send(
            account("viber"), credentials("viber"), picture_payload(media_url)
        )
    assert caught.value.kind is ErrorKind.PERMANENT
    assert why in caught.value.message
    assert await ledger(http) == []


async def test_a_long_caption_is_refused_by_the_platform(http: httpx.AsyncClient) -> None:
    payload = {"type": "picture", "text": "ả" * (CAPTION_LIMIT + 1), "media": f"{MEDIA}/a.jpg"}
    with pytest.raises(SendError, match="768"):
        await viber(http, public_url=PUBLISHER).send(
            account("viber"), credentials("viber"), payload
        )


async def test_a_fetching_channel_posts_an_unusable_picture_as_text_with_a_warning(
    http: httpx.AsyncClient,
) -> None:
    async def fetch(url: str) -> bytes:
        return oversize_jpeg()

    payload = picture_payload(f"{MEDIA}/oversize.jpg")
    channel = viber(http, public_url=PUBLISHER, fetch=fetch)
    receipt = await channel.send(account("viber"), credentials("viber"), payload)
    assert [p.code for p in receipt.problems] == ["image_unusable"]
    assert receipt.problems[0].severity is Severity.WARNING
    (entry,) = await ledger(http)
    assert entry["payload"]["type"] == "text"
    assert entry["body_sha256"] == channel.match_hash(payload)  # reconcile hash unchanged


async def test_check_reports_name_superadmin_and_webhook(http: httpx.AsyncClient) -> None:
    without = await viber(http).check(account("viber"), credentials("viber"))
    assert not without.ok
    assert "PUBLISHER_PUBLIC_URL" in without.detail
    channel = viber(http, public_url=PUBLISHER)
    pending = await channel.check(account("viber"), credentials("viber"))
    assert pending.ok
    assert "superadmin" in pending.detail
    await channel.set_webhook(
        account("viber"), credentials("viber"), webhook_url(PUBLISHER, "51.viber")
    )
    done = await channel.check(account("viber"), credentials("viber"))
    assert done.ok
    assert "webhook http://publisher/viber/webhook/51.viber" in done.detail
    await http.post("/_sandbox/tokens/revoke", json={"tokens": ["vb51.token"]})
    refused = await channel.check(account("viber"), credentials("viber"))
    assert not refused.ok


def test_viber_posts_cannot_be_withdrawn_through_the_api() -> None:
    assert ViberChannel.withdraw_mode is WithdrawMode.MANUAL
