"""One contract, every registered channel: limits, NFC, markup, errors, reconcile."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import httpx
import pytest
from sandbox_helpers import (
    CHANNEL_NAMES,
    UNIT,
    a_while_ago,
    account,
    credentials,
    ledger,
    ledger_account,
    sample,
    samples,
    set_faults,
)

from channels.base import Adapted, Channel, ErrorKind, SendError, Severity, Template
from channels.registry import channel_class, load_channels
from channels.sandbox.telegram import parse_html
from channels.sandbox.youtube import tags_length
from channels.youtube import YouTubeChannel
from publisher.domain import Article, ArticleKind
from publisher.text import utf8_length, utf16_length, x_weighted_length

TAG_RE = re.compile(r"<[A-Za-z/!?][^<>]*>")
TEMPLATE = Template(
    hashtag_keywords=("Chuyển đổi số", "Quảng Ngãi", "Đồng bằng"),
    lead_in="Cổng TTĐT tỉnh Quảng Ngãi trân trọng giới thiệu:",
)


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings(v)]
    return []


def check_payload(name: str, payload: dict[str, Any]) -> None:
    """Every limit as the platform counts it, NFC, and no markup the platform would reject."""
    for text in strings(payload):
        assert unicodedata.is_normalized("NFC", text)
        assert "<script" not in text.lower()
    if name == "telegram":
        raw = payload.get("text", payload.get("caption"))
        assert isinstance(raw, str)
        limit = 4096 if "text" in payload else 1024
        assert utf16_length(parse_html(raw)) <= limit  # parses: only the Bot API's subset
        assert set(re.findall(r"</?([a-z-]+)", raw)) <= {"b"}
        return
    for text in strings(payload):
        assert not TAG_RE.search(text), text
    if name == "facebook":
        assert len(payload["message"]) <= 60_000
    elif name == "viber":
        if payload["type"] == "picture":  # caption ≤ 768, one picture URL
            assert 0 < len(payload["text"]) <= 768
            assert payload["media"].startswith(("http://", "https://"))
        else:
            assert payload["type"] == "text"
            assert 0 < len(payload["text"]) <= 7000
    elif name == "x":
        assert x_weighted_length(payload["text"]) <= 280
    elif name == "zalo":
        assert 0 < len(payload["title"]) <= 150
        assert len(payload["author"]) <= 50
        assert 0 < len(payload["description"]) <= 300
        for item in payload["body"]:
            assert (item["type"] == "text" and item["content"]) or (
                item["type"] == "image" and item["url"].startswith("http")
            )
    elif name == "youtube":
        snippet = payload["snippet"]
        assert 0 < len(snippet["title"]) <= 100
        assert not re.search("[<>]", snippet["title"])
        assert utf8_length(snippet["description"]) <= 5000
        assert not re.search("[<>]", snippet["description"])
        assert tags_length(snippet.get("tags", [])) <= 500
        assert snippet["categoryId"] == "25"
    else:  # a newly registered channel: at least the declared text limit holds somewhere
        assert payload


def article_for(name: str) -> Article:
    return (
        sample("video-hoi-nghi-truc-tuyen.json")
        if name == "youtube"
        else sample("directive-chuyen-doi-so.json")
    )


@pytest.mark.parametrize("name", CHANNEL_NAMES)
def test_registered_channel_declares_itself(name: str) -> None:
    cls = channel_class(name)
    assert issubclass(cls, Channel)
    assert cls.platform.value == name
    assert cls.display_name
    assert cls.default_base_url.startswith("https://")
    assert cls.sandbox_prefix == name


@pytest.mark.parametrize("name", CHANNEL_NAMES)
@pytest.mark.parametrize("article", samples(), ids=lambda a: a.guid.rsplit("/", 1)[-1][:20])
def test_adapt_respects_limits(channels: dict[str, Channel], name: str, article: Article) -> None:
    adapted = channels[name].adapt(article, UNIT, TEMPLATE)
    if adapted.payload is None:
        assert any(p.severity is Severity.ERROR for p in adapted.problems)
        assert name == "youtube"
        assert article.video is None
        return
    check_payload(name, adapted.payload)
    assert adapted.body_hash == channels[name].match_hash(adapted.payload)


@pytest.mark.parametrize("name", CHANNEL_NAMES)
def test_directive_text_is_locked_only_lead_in_differs(
    channels: dict[str, Channel], name: str
) -> None:
    article = article_for(name)
    a = channels[name].adapt(article, UNIT, Template(lead_in="Đơn vị A giới thiệu:"))
    b = channels[name].adapt(
        article,
        UNIT,
        Template(
            lead_in="Đơn vị B giới thiệu:", hashtag_keywords=("Tin nóng",), include_summary=False
        ),
    )
    assert a.payload is not None
    assert b.payload is not None
    text_a = "\n".join(strings(a.payload)).replace("Đơn vị A", "Đơn vị X")
    text_b = "\n".join(strings(b.payload)).replace("Đơn vị B", "Đơn vị X")
    if article.kind is ArticleKind.DIRECTIVE:
        assert text_a == text_b
        assert any(p.code == "directive_locked" for p in b.problems)


@pytest.mark.parametrize("name", CHANNEL_NAMES)
async def test_send_records_exactly_the_adapted_post(
    channels: dict[str, Channel], http: Any, name: str
) -> None:
    adapted = channels[name].adapt(article_for(name), UNIT, TEMPLATE)
    assert adapted.payload is not None
    receipt = await channels[name].send(account(name), credentials(name), adapted.payload)
    entries = [e for e in await ledger(http) if e["platform"] == name]
    assert len(entries) == 1
    assert entries[0]["id"] == receipt.remote_id
    assert entries[0]["account"] == ledger_account(name)
    assert entries[0]["body_sha256"] == adapted.body_hash


EXPECTED = {  # fault kind → expected ErrorKind (per channel where it differs)
    "expired_token": {"*": ErrorKind.AUTH},
    "rate_limit": {"*": ErrorKind.RATE_LIMITED},
    "server_error": {"*": ErrorKind.UNKNOWN_OUTCOME, "youtube": ErrorKind.BEFORE_SEND},
    # YouTube asks the resumable upload session after a lost reply: the video is found
    "reply_lost": {"*": ErrorKind.UNKNOWN_OUTCOME, "youtube": None},
}


@pytest.mark.parametrize("name", CHANNEL_NAMES)
@pytest.mark.parametrize("fault", sorted(EXPECTED))
async def test_faults_are_classified(
    channels: dict[str, Channel], http: Any, name: str, fault: str
) -> None:
    adapted = channels[name].adapt(article_for(name), UNIT, TEMPLATE)
    assert adapted.payload is not None
    await set_faults(http, {"platform": name, "kind": fault, "next": 1, "wait": 120})
    expected = EXPECTED[fault].get(name, EXPECTED[fault]["*"])
    if expected is None:  # resolved by the channel itself: sent once, with the right id
        receipt = await channels[name].send(account(name), credentials(name), adapted.payload)
        posted = [e for e in await ledger(http) if e["platform"] == name]
        assert [e["id"] for e in posted] == [receipt.remote_id]
        return
    with pytest.raises(SendError) as caught:
        await channels[name].send(account(name), credentials(name), adapted.payload)
    assert caught.value.kind is expected, caught.value
    posted = [e for e in await ledger(http) if e["platform"] == name]
    if fault == "rate_limit":
        assert caught.value.retry_after is not None
        assert caught.value.retry_after > 0
    if fault == "reply_lost":
        assert len(posted) == 1
        assert posted[0]["body_sha256"] == adapted.body_hash
    else:
        assert posted == []


@pytest.mark.parametrize("name", CHANNEL_NAMES)
async def test_reconcile_after_lost_reply(
    channels: dict[str, Channel], http: Any, name: str
) -> None:
    channel = channels[name]
    adapted = channel.adapt(article_for(name), UNIT, TEMPLATE)
    assert adapted.payload is not None
    assert adapted.body_hash is not None
    if isinstance(channel, YouTubeChannel):  # as if the upload session could not be asked
        channel.settings = channel.settings.model_copy(update={"resume_attempts": 0})
    await set_faults(http, {"platform": name, "kind": "reply_lost", "next": 1})
    with pytest.raises(SendError):
        await channel.send(account(name), credentials(name), adapted.payload)
    posted = [e for e in await ledger(http) if e["platform"] == name]
    if not channel.can_read_back:
        with pytest.raises(SendError) as caught:
            await channel.find_published(
                account(name), credentials(name), adapted.body_hash, a_while_ago()
            )
        assert caught.value.kind is ErrorKind.PERMANENT
        return
    found = await channel.find_published(
        account(name), credentials(name), adapted.body_hash, a_while_ago()
    )
    assert found is not None
    assert found.remote_id == posted[0]["id"]
    assert (
        await channel.find_published(account(name), credentials(name), "0" * 64, a_while_ago())
        is None
    )


@pytest.mark.parametrize("name", CHANNEL_NAMES)
async def test_connection_refused_is_before_send(name: str) -> None:
    # port 9 on loopback: nothing listens, the connection is refused before any byte is sent
    async with httpx.AsyncClient(timeout=2) as http:
        channel = load_channels(http, "http://127.0.0.1:9")[channel_class(name).platform]
        adapted: Adapted = channel.adapt(article_for(name), UNIT, TEMPLATE)
        assert adapted.payload is not None
        if name == "youtube":
            channel.fetch = _video  # type: ignore[attr-defined]
        with pytest.raises(SendError) as caught:
            await channel.send(account(name), credentials(name), adapted.payload)
    assert caught.value.kind is ErrorKind.BEFORE_SEND, caught.value


async def _video(url: str) -> bytes:
    return b"\x00" * 100


@pytest.mark.parametrize("name", CHANNEL_NAMES)
async def test_platform_validation_rejects_over_limit_text(
    channels: dict[str, Channel], http: Any, name: str
) -> None:
    """The emulators enforce the limits themselves: an over-long body is refused as
    PERMANENT, so the limit checks above are checked against the platform's rule too."""
    adapted = channels[name].adapt(article_for(name), UNIT, TEMPLATE)
    assert adapted.payload is not None
    payload = dict(adapted.payload)
    long = "Chỉ đạo " * 3000
    key = {
        "facebook": "message",
        "telegram": "text",
        "viber": "text",
        "x": "text",
        "zalo": "title",
        "youtube": None,
    }.get(name, "text")
    if name == "youtube":
        payload["snippet"] = {**payload["snippet"], "title": long}
    elif name == "facebook":
        # The emulator enforces the folklore cap (63,206); the channel stays at 60,000.
        payload[key] = long * 3
        assert len(payload[key]) > 63_206
    else:
        payload[key] = long
    with pytest.raises(SendError) as caught:
        await channels[name].send(account(name), credentials(name), payload)
    assert caught.value.kind is ErrorKind.PERMANENT, caught.value
