"""Every error code platform-apis.md lists, as the emulator replies it → the expected kind."""

from __future__ import annotations

from typing import Any

import pytest
from sandbox_helpers import UNIT, account, credentials, ledger, sample, set_faults

from channels.base import Channel, ErrorKind, SendError, Template

A, R, P, U = ErrorKind.AUTH, ErrorKind.RATE_LIMITED, ErrorKind.PERMANENT, ErrorKind.UNKNOWN_OUTCOME
B = ErrorKind.BEFORE_SEND

TABLE: list[tuple[str, dict[str, Any], ErrorKind]] = [
    # Facebook Graph error codes
    *[("facebook", {"code": c}, U) for c in (1, 2)],
    *[("facebook", {"code": c}, R) for c in (4, 17, 32, 613, 341, 80001)],
    ("facebook", {"code": 368}, B),  # blocked for a while: wait and retry, account keeps going
    *[("facebook", {"code": 190, "subcode": s}, A) for s in (458, 459, 460, 463, 467)],
    *[
        ("facebook", {"code": c, "status": 403 if c != 100 else 400}, P)
        for c in (3, 10, 200, 250, 299, 100, 506, 1609005)
    ],
    # Zalo OA codes (HTTP 200, error in the body)
    ("zalo", {"code": -32}, R),
    ("zalo", {"code": -211}, R),
    ("zalo", {"code": -216}, A),
    ("zalo", {"code": -124}, A),
    *[("zalo", {"code": c}, P) for c in (-201, -224, -230, -305)],
    # Viber statuses (HTTP 200, status in the body)
    ("viber", {"code": 2}, A),
    ("viber", {"code": 12}, R),
    *[("viber", {"code": c}, P) for c in (1, 3, 4, 5, 6, 7, 8, 9, 10, 13)],
    # Telegram Bot API
    ("telegram", {"status": 401, "code": "Unauthorized"}, A),
    ("telegram", {"status": 400, "code": "Bad Request: chat not found"}, P),
    ("telegram", {"status": 403, "code": "Forbidden: bot is not a member of the channel chat"}, P),
    ("telegram", {"status": 500, "code": "Internal Server Error"}, U),
    # YouTube Data API
    ("youtube", {"status": 401, "code": "authError"}, A),
    ("youtube", {"status": 403, "code": "quotaExceeded"}, R),
    ("youtube", {"status": 400, "code": "uploadLimitExceeded"}, R),
    *[
        ("youtube", {"status": 400, "code": c}, P)
        for c in (
            "invalidTitle",
            "invalidDescription",
            "invalidTags",
            "invalidCategoryId",
            "invalidPublishAt",
            "mediaBodyRequired",
        )
    ],
    ("youtube", {"status": 403, "code": "forbiddenPrivacySetting"}, P),
    # X API v2
    ("x", {"status": 401, "code": "Unauthorized"}, A),
    (
        "x",
        {"status": 403, "code": "You are not allowed to create a Tweet with duplicate content."},
        P,
    ),
    ("x", {"status": 400, "code": "Invalid Request"}, P),
    ("x", {"status": 503, "code": "Service Unavailable"}, U),
]


@pytest.mark.parametrize(
    ("name", "reply", "expected"),
    TABLE,
    ids=[f"{n}-{r.get('code')}-{r.get('subcode', '')}" for n, r, _ in TABLE],
)
async def test_platform_reply_is_classified(
    channels: dict[str, Channel], http: Any, name: str, reply: dict[str, Any], expected: ErrorKind
) -> None:
    article = sample(
        "video-hoi-nghi-truc-tuyen.json" if name == "youtube" else "directive-chuyen-doi-so.json"
    )
    adapted = channels[name].adapt(article, UNIT, Template())
    assert adapted.payload is not None
    await set_faults(http, {"platform": name, "kind": "error", "next": 1, **reply})
    with pytest.raises(SendError) as caught:
        await channels[name].send(account(name), credentials(name), adapted.payload)
    assert caught.value.kind is expected, caught.value
    assert [e for e in await ledger(http) if e["platform"] == name] == []


async def test_zalo_verify_polls_while_processing(
    channels: dict[str, Channel], http: Any, sandbox: Any
) -> None:
    adapted = channels["zalo"].adapt(sample("directive-chuyen-doi-so.json"), UNIT, Template())
    assert adapted.payload is not None
    sandbox.state.sandbox.settings.zalo_processing_polls = 2  # two -214 answers, then the id
    receipt = await channels["zalo"].send(account("zalo"), credentials("zalo"), adapted.payload)
    assert receipt.remote_id == (await ledger(http))[0]["id"]


async def test_zalo_still_processing_is_unknown_then_reconciled(
    channels: dict[str, Channel], http: Any, sandbox: Any
) -> None:
    adapted = channels["zalo"].adapt(sample("directive-chuyen-doi-so.json"), UNIT, Template())
    assert adapted.payload is not None
    assert adapted.body_hash is not None
    sandbox.state.sandbox.settings.zalo_processing_polls = 10  # more than the 3 attempts
    with pytest.raises(SendError) as caught:
        await channels["zalo"].send(account("zalo"), credentials("zalo"), adapted.payload)
    assert caught.value.kind is ErrorKind.UNKNOWN_OUTCOME
    assert caught.value.platform_code == "-214"
    from datetime import UTC, datetime

    found = await channels["zalo"].find_published(
        account("zalo"), credentials("zalo"), adapted.body_hash, datetime(2020, 1, 1, tzinfo=UTC)
    )
    assert found is not None
    assert found.remote_id == (await ledger(http))[0]["id"]
