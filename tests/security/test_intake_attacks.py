"""The push intake API under attack: forged, replayed, oversized, flooding and malformed requests.

Tests the ingestion engineer's `publisher.ingest.intake` from the outside, through HTTP.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from publisher.ingest.intake import IntakeLimits, IntakeSource, make_intake_app, sign
from publisher.ingest.normalize import SourceContext
from publisher.ingest.store import MemoryIngestStore

HANOI_SECRET = b"hanoi-cms-secret-0123456789"
HCM_SECRET = b"hcm-cms-secret-9876543210"
T0 = datetime(2026, 11, 14, 2, 5, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Intake:
    def __init__(self, limits: IntakeLimits | None = None) -> None:
        self.store = MemoryIngestStore()
        self.clock = Clock()
        sources = {
            "hanoi-cms": IntakeSource(
                SourceContext(id="hanoi-cms", name="hanoi.gov.vn", unit_code="01"), HANOI_SECRET
            ),
            "hcm-cms": IntakeSource(
                SourceContext(id="hcm-cms", name="hochiminhcity.gov.vn", unit_code="79"),
                HCM_SECRET,
            ),
        }
        self.app = make_intake_app(sources, self.store, clock=self.clock, limits=limits)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://intake"
        )

    async def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return await self.client.post("/articles", content=body, headers=headers)


@pytest.fixture
async def intake() -> AsyncIterator[Intake]:
    made = Intake()
    yield made
    await made.client.aclose()


def article(n: int = 1, **changes: Any) -> bytes:
    body = {
        "guid": f"hn-{n}",
        "url": f"https://hanoi.gov.vn/tin/{n}.html",
        "title": f"Hà Nội triển khai chỉ đạo số {n}",
        "body_html": f"<p>Nội dung {n}</p>",
        "published_at": "2026-11-14T09:05:00+07:00",
        "kind": "article",
    }
    body.update(changes)
    return json.dumps(body, ensure_ascii=False).encode()


def headers(
    body: bytes, *, at: datetime = T0, secret: bytes = HANOI_SECRET, source: str = "hanoi-cms"
) -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    return {
        "X-Publisher-Source": source,
        "X-Publisher-Timestamp": timestamp,
        "X-Publisher-Signature": sign(secret, timestamp, body),
        "Content-Type": "application/json",
    }


async def test_a_signed_request_is_accepted(intake: Intake) -> None:
    body = article()
    response = await intake.post(body, headers(body))
    assert response.status_code == 201
    assert len(intake.store.articles) == 1


def forged_variants(body: bytes) -> list[tuple[str, bytes, dict[str, str]]]:
    good = headers(body)
    ts = good["X-Publisher-Timestamp"]
    sig = good["X-Publisher-Signature"]
    other_body = article(2)
    return [
        ("another source's secret", body, headers(body, secret=HCM_SECRET)),
        ("signed as hanoi, sent as hcm", body, {**good, "X-Publisher-Source": "hcm-cms"}),
        ("body changed after signing", other_body, good),
        ("one byte of the body flipped", body[:-2] + b"X" + body[-1:], good),
        (
            "timestamp changed after signing",
            body,
            {**good, "X-Publisher-Timestamp": str(int(ts) + 1)},
        ),
        ("no sha256= prefix", body, {**good, "X-Publisher-Signature": sig[7:]}),
        ("upper-case hex", body, {**good, "X-Publisher-Signature": "sha256=" + sig[7:].upper()}),
        ("truncated signature", body, {**good, "X-Publisher-Signature": sig[:40]}),
        ("empty signature", body, {**good, "X-Publisher-Signature": ""}),
        (
            "signature of the empty body",
            body,
            {**good, "X-Publisher-Signature": sign(HANOI_SECRET, ts, b"")},
        ),
        ("md5-length junk", body, {**good, "X-Publisher-Signature": "sha256=" + "a" * 32}),
        ("non-ASCII signature", body, {**good, "X-Publisher-Signature": "sha256=đ" + "0" * 63}),
        ("unknown source", body, {**good, "X-Publisher-Source": "evil-cms"}),
        ("no source", body, {k: v for k, v in good.items() if k != "X-Publisher-Source"}),
        ("no timestamp", body, {k: v for k, v in good.items() if k != "X-Publisher-Timestamp"}),
        (
            "no signature header",
            body,
            {k: v for k, v in good.items() if k != "X-Publisher-Signature"},
        ),
        ("stale by 6 minutes", body, headers(body, at=T0 - timedelta(minutes=6))),
        ("from 6 minutes in the future", body, headers(body, at=T0 + timedelta(minutes=6))),
        ("negative timestamp", body, {**good, "X-Publisher-Timestamp": "-" + ts}),
        ("float timestamp", body, {**good, "X-Publisher-Timestamp": ts + ".0"}),
        ("exponent timestamp", body, {**good, "X-Publisher-Timestamp": "1.7e9"}),
    ]


@pytest.mark.parametrize("case", range(len(forged_variants(article()))))
async def test_forged_and_malformed_signatures_are_refused(intake: Intake, case: int) -> None:
    name, body, sent = forged_variants(article())[case]
    try:
        response = await intake.post(body, sent)
    except UnicodeEncodeError:
        return  # httpx itself refuses a non-ASCII header: nothing was sent
    assert response.status_code == 401, (name, response.text)
    assert intake.store.articles == {}, name


async def test_replays_are_refused_inside_the_window_and_stale_after_it(intake: Intake) -> None:
    body = article()
    sent = headers(body)
    assert (await intake.post(body, sent)).status_code == 201
    for seconds in (0, 1, 299):
        intake.clock.now = T0 + timedelta(seconds=seconds)
        again = await intake.post(body, sent)
        assert again.status_code == 409, seconds
        assert again.json()["error"] == "replay"
    intake.clock.now = T0 + timedelta(seconds=302)
    late = await intake.post(body, sent)
    assert late.status_code == 401
    assert late.json()["error"] == "stale_timestamp"
    assert len(intake.store.articles) == 1


async def test_a_replay_to_a_restarted_server_creates_nothing_new() -> None:
    """With a memory store (no database), seen signatures live in each process only: a replay
    to another process passes the signature check, and deduplication keeps it harmless. SQL
    stores share the memory (see `test_a_replay_to_a_restarted_server_is_refused`)."""
    first, second = Intake(), Intake()
    second.store = first.store
    second.app = make_intake_app(
        {
            "hanoi-cms": IntakeSource(
                SourceContext(id="hanoi-cms", name="hanoi.gov.vn", unit_code="01"), HANOI_SECRET
            )
        },
        first.store,
        clock=second.clock,
    )
    second.client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=second.app), base_url="http://intake"
    )
    body = article()
    sent = headers(body)
    assert (await first.post(body, sent)).status_code == 201
    replay = await second.post(body, sent)
    assert replay.status_code in (200, 409)
    assert len(first.store.articles) == 1
    await first.client.aclose()
    await second.client.aclose()


async def test_body_size_limit_declared_and_streamed() -> None:
    intake = Intake(IntakeLimits(max_body_bytes=4096))
    big = article(body_html="<p>" + "x" * 10_000 + "</p>")
    response = await intake.post(big, headers(big))
    assert response.status_code == 413

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    sent = headers(b"ignored")
    response = await intake.client.post("/articles", content=stream(), headers=sent)
    assert response.status_code == 413
    assert intake.store.articles == {}
    await intake.client.aclose()


async def test_rate_limit_per_source() -> None:
    intake = Intake(IntakeLimits(rate_per_minute=6, burst=3))
    statuses = []
    for n in range(5):
        body = article(n)
        statuses.append((await intake.post(body, headers(body))).status_code)
    assert statuses[:3] == [201, 201, 201]
    assert statuses[3:] == [429, 429]
    limited = await intake.post(article(9), headers(article(9)))
    assert int(limited.headers["Retry-After"]) >= 1
    # Another source has its own budget.
    body = article(20)
    assert (
        await intake.post(body, headers(body, secret=HCM_SECRET, source="hcm-cms"))
    ).status_code == 201
    await intake.client.aclose()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (article(extra_field="x"), "extra_field"),
        (article(url="javascript:alert(1)"), "url"),
        (article(url="file:///etc/passwd"), "url"),
        (article(images=["data:image/svg+xml;base64,AAAA"]), "images"),
        (article(title=""), "title"),
        (article(title=["not", "a", "string"]), "title"),
        (article(kind="propaganda"), "kind"),
        (b"[" + b",".join([article(n) for n in range(101)]) + b"]", "(body)"),
        (b"[]", "(body)"),
        (b'{"guid": "x"', "(body)"),
        ("\ufeff{}".encode("utf-16"), "(body)"),
    ],
)
async def test_strict_schema(intake: Intake, body: bytes, field: str) -> None:
    response = await intake.post(body, headers(body))
    assert response.status_code in (400, 422), response.text
    assert field in response.text
    assert intake.store.articles == {}


async def test_markup_pushed_through_intake_is_sanitised(intake: Intake) -> None:
    body = article(
        title="<script>alert(1)</script>Tin",
        summary='<img src=x onerror="alert(1)">',
        body_html='<p onclick="x()">A</p><script>bad()</script><a href="javascript:alert(1)">b</a>'
        '<iframe src="https://evil.example"></iframe><svg onload=alert(1)></svg>',
    )
    assert (await intake.post(body, headers(body))).status_code == 201
    stored = next(iter(intake.store.articles.values())).article
    blob = json.dumps(stored.to_json(), ensure_ascii=False).lower()
    for marker in ("<script", "onclick", "onerror", "javascript:", "<iframe", "<svg", "alert("):
        assert marker not in blob, marker


def sql_intake(engine: Any, clock: Clock) -> tuple[Any, httpx.AsyncClient]:
    """One server process: its own app (own in-memory replay memory) over the shared database."""
    from publisher.store.ingest_sql import SqlIngestStore

    store = SqlIngestStore(engine)
    app = make_intake_app(
        {
            "hanoi-cms": IntakeSource(
                SourceContext(id="hanoi-cms", name="hanoi.gov.vn", unit_code="01"), HANOI_SECRET
            )
        },
        store,
        clock=clock,
    )
    return store, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://i")


async def test_a_replay_to_a_restarted_server_is_refused(sample_db: Any) -> None:
    """Seen signatures are kept in the database (`intake_nonce`): a second process, or the
    same server after a restart, refuses a replay inside the window."""
    import sqlalchemy as sa

    engine, _, _ = sample_db
    clock = Clock()
    _, first = sql_intake(engine, clock)
    body = article()
    sent = headers(body)
    assert (await first.post("/articles", content=body, headers=sent)).status_code == 201
    await first.aclose()
    clock.now = T0 + timedelta(seconds=200)
    _, restarted = sql_intake(engine, clock)
    replay = await restarted.post("/articles", content=body, headers=sent)
    assert replay.status_code == 409, replay.text
    assert replay.json()["error"] == "replay"
    # a fresh request from the same source is still welcome
    other = article(2)
    later = headers(other, at=clock.now)
    assert (await restarted.post("/articles", content=other, headers=later)).status_code == 201
    await restarted.aclose()
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT source_id FROM intake_nonce")).scalars().all()
    assert rows == ["hanoi-cms", "hanoi-cms"]


async def test_seen_signatures_are_pruned_after_the_window(sample_db: Any) -> None:
    import sqlalchemy as sa

    engine, _, _ = sample_db
    clock = Clock()
    _, client = sql_intake(engine, clock)
    body = article()
    assert (await client.post("/articles", content=body, headers=headers(body))).status_code == 201
    clock.now = T0 + timedelta(minutes=30)
    fresh = article(2)
    sent = headers(fresh, at=clock.now)
    assert (await client.post("/articles", content=fresh, headers=sent)).status_code == 201
    await client.aclose()
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM intake_nonce")).scalar_one()
    assert count == 1  # the first signature is past any window and was dropped
