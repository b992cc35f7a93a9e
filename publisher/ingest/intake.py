"""The push intake API: modern CMSes POST article JSON here instead of being polled.

An ASGI app (Starlette) that `publisher run` mounts, e.g. `Mount("/intake", app=...)`.

    POST /articles      body: one article JSON object (docs/cli.md) or an array of them
    GET  /health

Each request is signed by its source with HMAC-SHA256 over "<timestamp>.<body>":

    X-Publisher-Source:    the source id
    X-Publisher-Timestamp: Unix seconds
    X-Publisher-Signature: sha256=<hex of HMAC-SHA256(secret, timestamp + "." + body)>

Refused, each with a JSON error naming what is wrong: unknown source or bad signature (401),
a timestamp outside the window (401), a signature seen before (409, replay), a body past the
size limit (413), a source over its rate (429 with Retry-After), invalid JSON (400), a schema
violation (422, every field listed).

Seen signatures are remembered in memory (the fast path) and, when the store is SQL, in the
`intake_nonce` table, so a replay to another process or to a restarted server is refused too.
Entries older than twice the window (the longest a signature can stay acceptable) are pruned.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from publisher.ingest.article_json import ArticleIn, describe_validation_error, to_article
from publisher.ingest.normalize import SourceContext
from publisher.ingest.pipeline import RecordReport, record_articles
from publisher.ingest.store import IngestStore

HEADER_SOURCE = "x-publisher-source"
HEADER_TIMESTAMP = "x-publisher-timestamp"
HEADER_SIGNATURE = "x-publisher-signature"
MAX_ARTICLES_PER_REQUEST = 100


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature a source sends: `sha256=` + hex HMAC of `timestamp.body`."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


@dataclass(frozen=True, slots=True)
class IntakeSource:
    context: SourceContext  # id, display name, unit, article kind, time zone
    secret: bytes


@dataclass(frozen=True, slots=True)
class IntakeLimits:
    window_s: int = 300  # timestamps older or newer than this are refused
    max_body_bytes: int = 2 * 1024 * 1024
    rate_per_minute: float = 60.0
    burst: int = 20


@dataclass(frozen=True, slots=True)
class Bucket:
    tokens: float
    at: float  # seconds (clock timestamp)


def take_token(
    bucket: Bucket | None, now: float, *, rate_per_s: float, burst: int
) -> tuple[bool, Bucket, float]:
    """Token bucket: (allowed, new bucket, seconds until a token is available). Pure."""
    if bucket is None:
        bucket = Bucket(float(burst), now)
    tokens = min(float(burst), bucket.tokens + max(0.0, now - bucket.at) * rate_per_s)
    if tokens >= 1.0:
        return True, Bucket(tokens - 1.0, now), 0.0
    return False, Bucket(tokens, now), (1.0 - tokens) / rate_per_s


@dataclass
class _IntakeState:
    seen: dict[str, float] = field(default_factory=dict)  # signature → expiry (epoch s)
    buckets: dict[str, Bucket] = field(default_factory=dict)

    def remember(self, signature: str, expires: float, now: float) -> bool:
        """False when the signature was seen (a replay)."""
        if len(self.seen) > 10_000:
            self.seen = {s: e for s, e in self.seen.items() if e > now}
        if self.seen.get(signature, 0.0) > now:
            return False
        self.seen[signature] = expires
        return True


class ReplayMemory(Protocol):
    def remember(self, signature: str, source_id: str, now: datetime) -> bool:
        """Record a signature; False when it was already seen (a replay)."""
        ...


class SqlReplayMemory:
    """Seen signatures in the `intake_nonce` table, shared by every process on the database."""

    def __init__(self, engine: sa.Engine, keep_s: float) -> None:
        from publisher.store.tables import IntakeNonceRow, table_of

        self.engine = engine
        self.keep = timedelta(seconds=keep_s)
        self.table = table_of(IntakeNonceRow)

    def remember(self, signature: str, source_id: str, now: datetime) -> bool:
        with self.engine.connect() as conn:
            if self.engine.dialect.name == "sqlite":
                conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                conn.execute(sa.delete(self.table).where(self.table.c.seen_at < now - self.keep))
                seen = conn.execute(
                    sa.select(self.table.c.signature).where(self.table.c.signature == signature)
                ).first()
                if seen is not None:
                    return False
                conn.execute(
                    sa.insert(self.table).values(
                        signature=signature, source_id=source_id, seen_at=now.astimezone(UTC)
                    )
                )
        return True


def replay_memory_for(store: IngestStore, limits: IntakeLimits) -> ReplayMemory | None:
    """The shared replay memory for a SQL-backed store (it exposes its engine), else None."""
    engine = getattr(store, "engine", None)
    if isinstance(engine, sa.Engine):
        return SqlReplayMemory(engine, keep_s=2 * limits.window_s + 1)
    return None


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    headers = {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(max(1, int(extra["retry_after"] + 0.999)))
    return JSONResponse({"error": code, "message": message, **extra}, status, headers=headers)


SourceLookup = Callable[[str], IntakeSource | None]


def make_intake_app(
    sources: Mapping[str, IntakeSource] | SourceLookup,
    store: IngestStore,
    *,
    clock: Callable[[], datetime],
    limits: IntakeLimits | None = None,
    on_recorded: Callable[[str, RecordReport], None] | None = None,
    replay: ReplayMemory | None = None,
) -> Starlette:
    """Build the intake app. `on_recorded(source_id, report)` lets the caller route new
    articles (the lead wires routing there). `replay` defaults to the `intake_nonce` table when
    the store is SQL; with a memory store, seen signatures live in this process only."""
    limits = limits or IntakeLimits()
    shared = replay if replay is not None else replay_memory_for(store, limits)
    lookup: SourceLookup = sources.get if isinstance(sources, Mapping) else sources
    state = _IntakeState()

    async def read_capped(request: Request) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limits.max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def articles(request: Request) -> JSONResponse:
        source_id = request.headers.get(HEADER_SOURCE, "").strip()
        timestamp = request.headers.get(HEADER_TIMESTAMP, "").strip()
        signature = request.headers.get(HEADER_SIGNATURE, "").strip()
        for header, value in (
            ("X-Publisher-Source", source_id),
            ("X-Publisher-Timestamp", timestamp),
            ("X-Publisher-Signature", signature),
        ):
            if not value:
                return _error(401, "missing_header", f"header {header} is required", field=header)
        source = lookup(source_id)
        if source is None:
            return _error(
                401, "unknown_source", f"unknown source {source_id!r}", field="X-Publisher-Source"
            )
        declared = request.headers.get("content-length")
        if declared is not None and (
            not declared.isdigit() or int(declared) > limits.max_body_bytes
        ):
            return _error(413, "body_too_large", f"body over {limits.max_body_bytes} bytes")
        body = await read_capped(request)
        if body is None:
            return _error(413, "body_too_large", f"body over {limits.max_body_bytes} bytes")

        now = clock().timestamp()
        if not timestamp.isdigit():
            return _error(
                401,
                "bad_timestamp",
                "timestamp must be Unix seconds",
                field="X-Publisher-Timestamp",
            )
        if abs(now - int(timestamp)) > limits.window_s:
            return _error(
                401,
                "stale_timestamp",
                f"timestamp is more than {limits.window_s} s away from the server's clock",
                field="X-Publisher-Timestamp",
            )
        expected = sign(source.secret, timestamp, body)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            return _error(
                401, "bad_signature", "signature does not match", field="X-Publisher-Signature"
            )
        fresh = state.remember(expected, int(timestamp) + limits.window_s + 1, now)
        if fresh and shared is not None:
            fresh = shared.remember(expected, source_id, clock())
        if not fresh:
            return _error(
                409, "replay", "this request was already received", field="X-Publisher-Signature"
            )
        allowed, bucket, wait = take_token(
            state.buckets.get(source_id),
            now,
            rate_per_s=limits.rate_per_minute / 60.0,
            burst=limits.burst,
        )
        state.buckets[source_id] = bucket
        if not allowed:
            return _error(
                429, "rate_limited", f"source {source_id} is over its rate", retry_after=wait
            )

        try:
            document = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return _error(400, "invalid_json", f"body is not UTF-8 JSON: {error}", field="(body)")
        entries = document if isinstance(document, list) else [document]
        if not entries or len(entries) > MAX_ARTICLES_PER_REQUEST:
            return _error(
                422,
                "invalid_article",
                f"send 1 to {MAX_ARTICLES_PER_REQUEST} articles",
                field="(body)",
            )
        models: list[ArticleIn] = []
        problems: list[dict[str, str]] = []
        for position, entry in enumerate(entries):
            try:
                models.append(ArticleIn.model_validate(entry))
            except ValidationError as error:
                prefix = f"{position}." if isinstance(document, list) else ""
                problems += [
                    {"field": prefix + p["field"], "message": p["message"]}
                    for p in describe_validation_error(error)
                ]
        if problems:
            first = problems[0]
            return _error(
                422,
                "invalid_article",
                f"{first['field']}: {first['message']}",
                field=first["field"],
                problems=problems,
            )
        built = [to_article(model, source.context) for model in models]
        report = record_articles(
            store, built, source_id=source.context.id, backlog=False, seen_at=clock()
        )
        if on_recorded is not None:
            on_recorded(source.context.id, report)
        return JSONResponse(
            {
                "new": report.new_ids,
                "linked": report.linked_ids,
                "duplicates": report.duplicates,
            },
            201 if report.new_ids else 200,
        )

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/articles", articles, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
