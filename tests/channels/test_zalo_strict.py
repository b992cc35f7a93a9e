"""Zalo against the strict emulator: minted tokens that expire, broadcasts counted by month and
sent at most once, -211 without hourly retries, idempotent withdraw, the OA check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sandbox_helpers import SANDBOX, UNIT, account, credentials, ledger, sample, set_faults

from channels.base import (
    ErrorKind,
    InMemoryTokenStore,
    Receipt,
    SendError,
    Severity,
    Template,
    TokenSet,
)
from channels.zalo import (
    Claim,
    InMemoryBroadcastBook,
    ZaloChannel,
    ZaloSettings,
    classify_zalo_error,
)

OA = "51.zalo"


def zalo(http: Any, sandbox: Any, **kwargs: Any) -> ZaloChannel:
    """A Zalo channel on the sandbox's clock (so it sees expiries). Channels of one test share
    one token store, as workers share the encrypted store: a rotated pair reaches them all."""
    kwargs.setdefault("clock", sandbox.state.sandbox.now)
    if "token_store" not in kwargs:
        if not hasattr(sandbox.state, "test_tokens"):
            sandbox.state.test_tokens = InMemoryTokenStore()
        kwargs["token_store"] = sandbox.state.test_tokens
    return ZaloChannel(
        http,
        f"{SANDBOX}/zalo",
        settings=ZaloSettings(verify_delay_s=0, verify_attempts=3),
        **kwargs,
    )


def payload(title: str | None = None) -> dict[str, Any]:
    article = sample("directive-chuyen-doi-so.json")
    adapted = ZaloChannel.__new__(ZaloChannel).adapt(article, UNIT, Template())
    assert adapted.payload is not None
    return {**adapted.payload, "title": title} if title else adapted.payload


def codes(receipt: Receipt) -> dict[str, Severity]:
    return {p.code: p.severity for p in receipt.problems}


def broadcasts(sandbox: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = sandbox.state.sandbox.platform_state["zalo"].get("broadcasts", [])
    return found


# --- tokens -------------------------------------------------------------------------------


async def test_a_pre_made_access_token_is_refused(http: httpx.AsyncClient) -> None:
    reply = await http.get("/zalo/v2.0/oa/getoa", headers={"access_token": "oa51.a0"})
    assert reply.json()["error"] == -216


class RecordingStore(InMemoryTokenStore):
    """Notes, at each save, how many articles the sandbox had: proves store-before-use."""

    def __init__(self, sandbox: Any) -> None:
        super().__init__()
        self.sandbox = sandbox
        self.saves: list[tuple[str, int]] = []

    async def save(self, account_id: str, tokens: TokenSet) -> None:
        self.saves.append((tokens.access_token, len(self.sandbox.state.sandbox.ledger)))
        await super().save(account_id, tokens)


@pytest.mark.parametrize("clock_follows_sandbox", [True, False])
async def test_send_works_after_the_access_token_expired(
    http: httpx.AsyncClient, sandbox: Any, clock_follows_sandbox: bool
) -> None:
    store = RecordingStore(sandbox)
    # The channel's own clock either sees the expiry (refresh before the call) or lags the
    # platform (Zalo answers -124, the channel refreshes and repeats the refused create).
    extra: dict[str, Any] = {} if clock_follows_sandbox else {"clock": lambda: datetime.now(UTC)}
    channel = zalo(http, sandbox, token_store=store, **extra)
    first = await channel.send(account("zalo"), credentials("zalo"), payload())
    assert len(store.saves) == 1
    pair_one = store.tokens[OA]
    assert pair_one.access_token.startswith("oa51.a")  # minted by the sandbox's OAuth

    sandbox.state.sandbox.advance_clock(90_001)  # the 25-hour access token has expired
    stale = await http.get("/zalo/v2.0/oa/getoa", headers={"access_token": pair_one.access_token})
    assert stale.json()["error"] == -124
    second = await channel.send(account("zalo"), credentials("zalo"), payload(title="Bài thứ hai"))
    assert second.remote_id != first.remote_id
    assert len(store.saves) == 2
    new_access, articles_when_saved = store.saves[1]
    assert new_access != pair_one.access_token
    assert articles_when_saved == 1  # stored before the second article was created with it
    assert store.tokens[OA].access_token == new_access
    assert [e["id"] for e in await ledger(http)] == [first.remote_id, second.remote_id]


# --- broadcast ----------------------------------------------------------------------------


async def test_an_article_is_broadcast_once_and_the_receipt_names_both_ids(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    book = InMemoryBroadcastBook()
    channel = zalo(http, sandbox, broadcasts={OA: 4}, broadcast_book=book)
    receipt = await channel.send(account("zalo"), credentials("zalo"), payload())
    sent = broadcasts(sandbox)
    assert [b["article"] for b in sent] == [receipt.remote_id]
    assert codes(receipt) == {"broadcast_sent": Severity.INFO}
    message = receipt.problems[0].message
    assert receipt.remote_id in message
    assert sent[0]["id"] in message
    assert sandbox.state.sandbox.ledger[0].extra["broadcasts"] == 1


async def test_an_account_without_the_setting_does_not_broadcast(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    receipt = await zalo(http, sandbox).send(account("zalo"), credentials("zalo"), payload())
    assert receipt.problems == ()
    assert broadcasts(sandbox) == []


async def test_a_lost_broadcast_reply_is_never_repeated(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    book = InMemoryBroadcastBook()
    article = await zalo(http, sandbox).send(account("zalo"), credentials("zalo"), payload())
    channel = zalo(http, sandbox, broadcasts={OA: 4}, broadcast_book=book)
    await set_faults(http, {"platform": "zalo", "kind": "reply_lost", "next": 1})
    lost = await channel.broadcast(account("zalo"), credentials("zalo"), article)
    assert codes(lost) == {"broadcast_unknown": Severity.WARNING}
    assert len(broadcasts(sandbox)) == 1  # it went out; the reply did not come back
    again = await channel.broadcast(account("zalo"), credentials("zalo"), article)
    assert codes(again) == {"broadcast_already_sent": Severity.INFO}
    found = await channel.find_published(
        account("zalo"), credentials("zalo"), channel.match_hash(payload()), a_while_ago()
    )
    assert found is not None
    assert found.remote_id == article.remote_id
    assert len(broadcasts(sandbox)) == 1
    assert await book.used(OA, month_now(sandbox)) == 1


async def test_an_article_found_by_reconcile_is_broadcast_exactly_once(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    # The create's reply is lost: the send ends before the id is known, so no broadcast yet.
    book = InMemoryBroadcastBook()
    channel = zalo(http, sandbox, broadcasts={OA: 4}, broadcast_book=book)
    await set_faults(http, {"platform": "zalo", "kind": "reply_lost", "next": 1})
    with pytest.raises(SendError) as caught:
        await channel.send(account("zalo"), credentials("zalo"), payload())
    assert caught.value.kind is ErrorKind.UNKNOWN_OUTCOME
    assert broadcasts(sandbox) == []
    body_hash = channel.match_hash(payload())
    first = await channel.find_published(
        account("zalo"), credentials("zalo"), body_hash, a_while_ago()
    )
    second = await channel.find_published(
        account("zalo"), credentials("zalo"), body_hash, a_while_ago()
    )
    assert first is not None
    assert second is not None
    assert codes(first) == {"broadcast_sent": Severity.INFO}
    assert codes(second) == {"broadcast_already_sent": Severity.INFO}
    assert len(await ledger(http)) == 1  # one article
    assert len(broadcasts(sandbox)) == 1  # one broadcast


class CountingTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)


async def test_out_of_quota_keeps_the_article_and_waits_for_next_month(sandbox: Any) -> None:
    sandbox.state.sandbox.settings.zalo_broadcasts_per_month = 1  # the OA's real package
    counting = CountingTransport(httpx.ASGITransport(app=sandbox))
    async with httpx.AsyncClient(transport=counting, base_url=SANDBOX) as http:
        book = InMemoryBroadcastBook()
        # configured with a larger allowance than Zalo grants: Zalo's -211 is what tells
        channel = zalo(http, sandbox, broadcasts={OA: 4}, broadcast_book=book)
        first = await channel.send(
            account("zalo"), credentials("zalo"), payload(title="Tin thứ nhất")
        )
        assert codes(first) == {"broadcast_sent": Severity.INFO}
        second = await channel.send(
            account("zalo"), credentials("zalo"), payload(title="Tin thứ hai")
        )
        # published, not a rate-limit error to retry hourly: a warning naming the quota
        assert second.remote_id
        assert codes(second) == {"broadcast_quota_used": Severity.WARNING}
        assert "4" in second.problems[0].message
        assert "broadcast" in second.problems[0].message
        tried = counting.paths.count("/zalo/v2.0/oa/message")
        assert tried == 2
        third = await channel.send(account("zalo"), credentials("zalo"), payload(title="Tin ba"))
        assert codes(third) == {"broadcast_quota_used": Severity.WARNING}
        assert counting.paths.count("/zalo/v2.0/oa/message") == tried  # not even asked
        assert len(await ledger(http)) == 3  # every article published
        assert len(broadcasts(sandbox)) == 1

        sandbox.state.sandbox.advance_clock(32 * 86_400)  # next month (Vietnam time)
        fourth = await channel.send(account("zalo"), credentials("zalo"), payload(title="Tin bốn"))
        assert codes(fourth) == {"broadcast_sent": Severity.INFO}
        assert len(broadcasts(sandbox)) == 2


async def test_the_configured_allowance_is_counted_before_asking(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    channel = zalo(http, sandbox, broadcasts={OA: 1}, broadcast_book=InMemoryBroadcastBook())
    await channel.send(account("zalo"), credentials("zalo"), payload(title="Một"))
    second = await channel.send(account("zalo"), credentials("zalo"), payload(title="Hai"))
    assert codes(second) == {"broadcast_quota_used": Severity.WARNING}
    assert len(broadcasts(sandbox)) == 1


async def test_a_refused_broadcast_is_given_back(http: httpx.AsyncClient, sandbox: Any) -> None:
    book = InMemoryBroadcastBook()
    article = await zalo(http, sandbox).send(account("zalo"), credentials("zalo"), payload())
    channel = zalo(http, sandbox, broadcasts={OA: 4}, broadcast_book=book)
    await set_faults(http, {"platform": "zalo", "kind": "rate_limit", "next": 1})
    refused = await channel.broadcast(account("zalo"), credentials("zalo"), article)
    assert codes(refused) == {"broadcast_failed": Severity.WARNING}
    assert await book.used(OA, month_now(sandbox)) == 0
    assert await book.claim(OA, article.remote_id, month_now(sandbox), 4) is Claim.GRANTED


def test_out_of_quota_elsewhere_waits_for_next_month_not_an_hour() -> None:
    # 14 Nov 2026 09:00 in Vietnam: the month resets on 1 Dec 00:00 (+07:00)
    now = datetime(2026, 11, 14, 2, 0, tzinfo=UTC)
    error = classify_zalo_error(-211, "Out of quota", now=now)
    assert error.kind is ErrorKind.RATE_LIMITED
    assert error.retry_after == (datetime(2026, 11, 30, 17, 0, tzinfo=UTC) - now).total_seconds()
    fixed = classify_zalo_error(-211, "x", ZaloSettings(quota_wait_s=86_400), now=now)
    assert fixed.retry_after == 86_400


def test_allowance_must_be_a_package_value() -> None:
    with pytest.raises(ValueError, match="1, 4, 6"):
        ZaloChannel(httpx.AsyncClient(), broadcasts={OA: 5})


# --- getslice only after processing ----------------------------------------------------------


async def test_an_article_still_processing_is_not_listed(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    settings = sandbox.state.sandbox.settings
    settings.zalo_processing_polls, settings.zalo_processing_s = 10, 60.0
    channel = zalo(http, sandbox)
    with pytest.raises(SendError) as caught:
        await channel.send(account("zalo"), credentials("zalo"), payload())
    assert caught.value.platform_code == "-214"
    body_hash = channel.match_hash(payload())
    assert (
        await channel.find_published(account("zalo"), credentials("zalo"), body_hash, a_while_ago())
        is None
    )
    sandbox.state.sandbox.advance_clock(61)
    found = await channel.find_published(
        account("zalo"), credentials("zalo"), body_hash, a_while_ago()
    )
    assert found is not None


# --- withdraw and check --------------------------------------------------------------------


async def test_withdraw_removes_the_article_and_is_idempotent(
    http: httpx.AsyncClient, sandbox: Any
) -> None:
    channel = zalo(http, sandbox, broadcasts={OA: 4}, broadcast_book=InMemoryBroadcastBook())
    receipt = await channel.send(account("zalo"), credentials("zalo"), payload())
    gone = await channel.withdraw(
        account("zalo"), credentials("zalo"), receipt.remote_id, notice=""
    )
    assert gone.remote_id == receipt.remote_id
    assert codes(gone) == {"broadcast_not_recalled": Severity.WARNING}
    entry = sandbox.state.sandbox.find_entry("zalo", receipt.remote_id)
    assert entry.withdrawn == "deleted"
    again = await channel.withdraw(
        account("zalo"), credentials("zalo"), receipt.remote_id, notice=""
    )
    assert "already_withdrawn" in codes(again)
    body_hash = channel.match_hash(payload())
    assert (
        await channel.find_published(account("zalo"), credentials("zalo"), body_hash, a_while_ago())
        is None
    )


async def test_withdraw_with_a_refused_token_is_auth(http: httpx.AsyncClient, sandbox: Any) -> None:
    receipt = await zalo(http, sandbox).send(account("zalo"), credentials("zalo"), payload())
    without_refresh = zalo(http, sandbox, token_store=None)
    with pytest.raises(SendError) as caught:
        await without_refresh.withdraw(
            account("zalo"), credentials("zalo"), receipt.remote_id, notice=""
        )
    assert caught.value.kind is ErrorKind.AUTH
    assert sandbox.state.sandbox.find_entry("zalo", receipt.remote_id).withdrawn is None


async def test_check_names_the_oa(http: httpx.AsyncClient, sandbox: Any) -> None:
    channel = zalo(http, sandbox, broadcasts={OA: 4}, broadcast_book=InMemoryBroadcastBook())
    result = await channel.check(account("zalo"), credentials("zalo"))
    assert result.ok
    assert "oa51" in result.detail
    assert "0/4" in result.detail
    assert result.expires_at is not None
    assert result.expires_at > sandbox.state.sandbox.now()
    other = account("zalo").__class__(
        id=OA, unit_code="51", platform=account("zalo").platform, external_id="oa99"
    )
    mismatch = await channel.check(other, credentials("zalo"))  # same store: a live pair
    assert not mismatch.ok
    assert "oa99" in mismatch.detail


async def test_check_reports_a_refused_token(http: httpx.AsyncClient, sandbox: Any) -> None:
    result = await zalo(http, sandbox, token_store=None).check(account("zalo"), credentials("zalo"))
    assert not result.ok
    assert "refused" in result.detail


def a_while_ago() -> datetime:
    return datetime(2020, 1, 1, tzinfo=UTC)


def month_now(sandbox: Any) -> Any:
    from channels.zalo import broadcast_month

    return broadcast_month(sandbox.state.sandbox.now() + timedelta(0))
