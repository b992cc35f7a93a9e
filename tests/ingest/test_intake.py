"""The push intake API: signatures, replays, limits, strict schema, dedup."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from publisher.domain import ArticleKind
from publisher.ingest.intake import IntakeLimits, IntakeSource, make_intake_app, sign, take_token
from publisher.ingest.normalize import SourceContext
from publisher.ingest.store import MemoryIngestStore

SECRET = b"k3y-for-hanoi-cms"
T0 = datetime(2025, 11, 14, 2, 5, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def article(n: int = 1, **changes: Any) -> dict[str, Any]:
    body = {
        "guid": f"hn-{n}",
        "url": f"https://hanoi.gov.vn/tin/{n}.html",
        "title": f"Hà Nội triển khai chỉ đạo số {n}",
        "summary": "(HNP) - Thành phố triển khai.",
        "body_html": '<p onclick="x()">Nội dung số ' + str(n) + "</p><script>bad()</script>",
        "published_at": "2025-11-14T09:05:00+07:00",
        "images": ["https://hanoi.gov.vn/a.jpg"],
        "kind": "article",
    }
    body.update(changes)
    return body


def setup(
    limits: IntakeLimits | None = None,
) -> tuple[httpx.AsyncClient, MemoryIngestStore, Clock, list[Any]]:
    store = MemoryIngestStore()
    clock = Clock()
    recorded: list[Any] = []
    sources = {
        "hanoi-cms": IntakeSource(
            SourceContext(
                id="hanoi-cms", name="hanoi.gov.vn", unit_code="01", kind=ArticleKind.ARTICLE
            ),
            SECRET,
        )
    }
    app = make_intake_app(
        sources, store, clock=clock, limits=limits, on_recorded=lambda s, r: recorded.append((s, r))
    )
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake")
    return client, store, clock, recorded


def signed(
    body: bytes, *, at: datetime = T0, secret: bytes = SECRET, source: str = "hanoi-cms"
) -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    return {
        "X-Publisher-Source": source,
        "X-Publisher-Timestamp": timestamp,
        "X-Publisher-Signature": sign(secret, timestamp, body),
        "Content-Type": "application/json",
    }


async def test_accepts_a_signed_article_sanitised_and_stored() -> None:
    client, store, _, recorded = setup()
    body = json.dumps(article()).encode()
    response = await client.post("/articles", content=body, headers=signed(body))
    assert response.status_code == 201
    assert response.json() == {"new": [1], "linked": [], "duplicates": 0}
    stored = store.articles[1]
    assert stored.article.body_html == "<p>Nội dung số 1</p>"
    assert stored.article.summary == "Thành phố triển khai."
    assert stored.article.guid == "hanoi-cms#hn-1"
    assert stored.article.unit_code == "01"
    assert stored.backlog is False
    assert recorded[0][0] == "hanoi-cms"


async def test_replay_is_refused() -> None:
    client, _, _, _ = setup()
    body = json.dumps(article()).encode()
    headers = signed(body)
    assert (await client.post("/articles", content=body, headers=headers)).status_code == 201
    again = await client.post("/articles", content=body, headers=headers)
    assert again.status_code == 409
    assert again.json()["error"] == "replay"


async def test_same_article_resent_later_is_a_duplicate_not_an_error() -> None:
    client, store, clock, _ = setup()
    body = json.dumps(article()).encode()
    await client.post("/articles", content=body, headers=signed(body))
    clock.now = T0 + timedelta(seconds=5)
    response = await client.post("/articles", content=body, headers=signed(body, at=clock.now))
    assert response.status_code == 200
    assert response.json()["duplicates"] == 1
    assert len(store.articles) == 1


SIG, SRC, TS = "X-Publisher-Signature", "X-Publisher-Source", "X-Publisher-Timestamp"
LATE, EARLY = T0 - timedelta(minutes=6), T0 + timedelta(minutes=6)


@pytest.mark.parametrize(
    ("mutate", "status", "error", "field"),
    [
        (lambda h, b: {**h, SIG: "sha256=" + "0" * 64}, 401, "bad_signature", SIG),
        (lambda h, b: {**h, SRC: "other"}, 401, "unknown_source", SRC),
        (lambda h, b: {k: v for k, v in h.items() if k != TS}, 401, "missing_header", TS),
        (lambda h, b: signed(b, at=LATE), 401, "stale_timestamp", TS),
        (lambda h, b: signed(b, at=EARLY), 401, "stale_timestamp", TS),
        (lambda h, b: signed(b, secret=b"wrong"), 401, "bad_signature", SIG),
    ],
)
async def test_authentication_failures(mutate: Any, status: int, error: str, field: str) -> None:
    client, store, _, _ = setup()
    body = json.dumps(article()).encode()
    response = await client.post("/articles", content=body, headers=mutate(signed(body), body))
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.json()["field"] == field
    assert store.articles == {}


async def test_body_tampered_after_signing_is_refused() -> None:
    client, _, _, _ = setup()
    body = json.dumps(article()).encode()
    headers = signed(body)
    tampered = body.replace(b"hn-1", b"hn-2")
    response = await client.post("/articles", content=tampered, headers=headers)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("document", "field", "message"),
    [
        (article(extra_field=1), "extra_field", "unknown field"),
        (article(url="javascript:alert(1)"), "url", "absolute http(s) URL"),
        (article(title=""), "title", "at least 1 character"),
        (article(published_at="hôm qua"), "published_at", "datetime"),
        (article(images=["https://a.vn/1.jpg", "file:///etc/passwd"]), "images.1", "http(s)"),
        (article(kind="news"), "kind", "'directive' or 'article'"),
        ({k: v for k, v in article().items() if k != "guid"}, "guid", "Field required"),
    ],
)
async def test_schema_errors_name_the_field(
    document: dict[str, Any], field: str, message: str
) -> None:
    client, store, _, _ = setup()
    body = json.dumps(document).encode()
    response = await client.post("/articles", content=body, headers=signed(body))
    assert response.status_code == 422
    payload = response.json()
    assert payload["field"] == field
    assert message in payload["message"]
    assert store.articles == {}


async def test_invalid_json() -> None:
    client, _, _, _ = setup()
    body = b'{"guid": '
    response = await client.post("/articles", content=body, headers=signed(body))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"


async def test_body_size_limit() -> None:
    client, _, _, _ = setup(IntakeLimits(max_body_bytes=1000))
    body = json.dumps(article(body_html="<p>" + "x" * 2000 + "</p>")).encode()
    response = await client.post("/articles", content=body, headers=signed(body))
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


async def test_rate_limit_per_source() -> None:
    client, _, clock, _ = setup(IntakeLimits(rate_per_minute=60, burst=2))
    statuses = []
    for n in range(3):
        body = json.dumps(article(n)).encode()
        response = await client.post("/articles", content=body, headers=signed(body))
        statuses.append(response.status_code)
    assert statuses == [201, 201, 429]
    assert response.headers["Retry-After"] == "1"
    clock.now = T0 + timedelta(seconds=1)
    body = json.dumps(article(9)).encode()
    response = await client.post("/articles", content=body, headers=signed(body, at=clock.now))
    assert response.status_code == 201


def test_token_bucket_is_pure() -> None:
    allowed, bucket, wait = take_token(None, 100.0, rate_per_s=1.0, burst=1)
    assert allowed
    allowed, _, wait = take_token(bucket, 100.25, rate_per_s=1.0, burst=1)
    assert not allowed
    assert wait == pytest.approx(0.75)


async def test_batch_with_one_bad_article_stores_nothing() -> None:
    client, store, _, _ = setup()
    body = json.dumps([article(1), article(2, url="ftp://x")]).encode()
    response = await client.post("/articles", content=body, headers=signed(body))
    assert response.status_code == 422
    assert response.json()["field"] == "1.url"
    assert store.articles == {}
