"""Sandbox state shared by every platform emulator: ledger, faults, tokens.

Token rule (documented in docs/sandbox.md): any non-empty token is valid unless it has been
marked expired or revoked (a fault of kind `expired_token`, `POST /_sandbox/tokens/revoke`, or
Zalo refresh-token rotation). Where a request does not name the account (Zalo, Viber, X,
YouTube), the token names it: `<account>` or `<account>.<anything>`.

Faults are chosen deterministically: a fault with `next: N` fires on the next N matching
requests; a fault with `rate: r` fires when a `random.Random(seed)` draw is below r, so the
same seed and request order give the same faults.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from publisher.domain import sha256_hex

FAULT_KINDS = frozenset(
    {"server_error", "rate_limit", "expired_token", "delay", "reply_lost", "error"}
)
PLATFORMS = frozenset({"facebook", "youtube", "zalo", "viber", "telegram", "x"})


class ReplyLost(ConnectionResetError):
    """Raised by an emulator after it accepted a post: the client never sees the reply."""


class FaultSpecError(ValueError):
    pass


@dataclass
class Fault:
    platform: str
    kind: str
    account: str = "*"
    rate: float | None = None
    remaining: int | None = None  # "next N requests"
    wait: float = 30.0  # rate_limit: seconds the platform asks to wait
    delay: float = 0.0  # delay: seconds before answering
    status: int | None = None  # server_error / error: HTTP status
    code: int | str | None = None  # error: the platform's own error code (or reason)
    subcode: int | None = None

    def matches(self, platform: str, account: str) -> bool:
        return self.platform in (platform, "*") and self.account in (account, "*")

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def parse_faults(spec: Any) -> tuple[list[Fault], int | None]:
    """Validate a fault spec: `{"seed": 1, "faults": [{...}]}` or a bare list of faults."""
    seed: int | None = None
    if isinstance(spec, dict):
        seed = spec.get("seed")
        if seed is not None and not isinstance(seed, int):
            raise FaultSpecError("seed: must be an integer")
        items = spec.get("faults", [])
    else:
        items = spec
    if not isinstance(items, list):
        raise FaultSpecError("faults: must be a list")
    faults: list[Fault] = []
    for index, item in enumerate(items):
        where = f"faults[{index}]"
        if not isinstance(item, dict):
            raise FaultSpecError(f"{where}: must be an object")
        unknown = set(item) - {
            "platform",
            "kind",
            "account",
            "rate",
            "next",
            "wait",
            "delay",
            "status",
            "code",
            "subcode",
        }
        if unknown:
            raise FaultSpecError(f"{where}: unknown keys {sorted(unknown)}")
        platform = item.get("platform", "*")
        if platform != "*" and platform not in PLATFORMS:
            raise FaultSpecError(f"{where}.platform: unknown platform {platform!r}")
        kind = item.get("kind")
        if kind not in FAULT_KINDS:
            raise FaultSpecError(f"{where}.kind: must be one of {sorted(FAULT_KINDS)}")
        rate, nxt = item.get("rate"), item.get("next")
        if (rate is None) == (nxt is None):
            raise FaultSpecError(f"{where}: give exactly one of 'rate' or 'next'")
        if rate is not None and not (isinstance(rate, int | float) and 0 <= rate <= 1):
            raise FaultSpecError(f"{where}.rate: must be a number between 0 and 1")
        if nxt is not None and not (isinstance(nxt, int) and nxt >= 0):
            raise FaultSpecError(f"{where}.next: must be a non-negative integer")
        try:
            faults.append(
                Fault(
                    platform=platform,
                    kind=kind,
                    account=str(item.get("account", "*")),
                    rate=float(rate) if rate is not None else None,
                    remaining=nxt,
                    wait=float(item.get("wait", 30.0)),
                    delay=float(item.get("delay", 0.0)),
                    status=int(item["status"]) if "status" in item else None,
                    code=item.get("code"),
                    subcode=int(item["subcode"]) if "subcode" in item else None,
                )
            )
        except (TypeError, ValueError) as error:
            raise FaultSpecError(f"{where}: {error}") from error
    return faults, seed


@dataclass
class LedgerEntry:
    platform: str
    account: str
    id: str
    body_sha256: str
    accepted_at: datetime
    payload: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)  # platform state (not in the JSON)
    # Set when the post was taken back: "deleted", or "edited" (its text replaced).
    withdrawn: str | None = None
    withdrawn_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "account": self.account,
            "id": self.id,
            "body_sha256": self.body_sha256,
            "accepted_at": self.accepted_at.isoformat(),
            "payload": self.payload,
            "withdrawn": self.withdrawn,
            "withdrawn_at": self.withdrawn_at.isoformat() if self.withdrawn_at else None,
        }


@dataclass
class SandboxSettings:
    youtube_daily_uploads: int = 100  # videos.insert bucket per API project per Pacific day
    youtube_daily_units: int = 10_000  # every other call's units, per project per Pacific day
    zalo_processing_polls: int = 1  # verify answers -214 this many times first
    zalo_strict_rotation: bool = False  # old refresh token dies at once (worst case)
    # How Telegram's servers fetch a photo given by URL: None is a real GET (fine on loopback,
    # e.g. the demo's `/_sandbox/media/…`); in-process tests inject a transport that serves
    # their media. Telegram gives up after a few seconds.
    telegram_media_transport: httpx.AsyncBaseTransport | None = None
    telegram_url_timeout_s: float = 5.0
    zalo_access_ttl_s: float = 90_000.0  # minted Zalo access tokens live 25 h
    # an article is listed by getslice once processed: verify gave its id, or this long passed
    zalo_processing_s: float = 0.0
    zalo_broadcasts_per_month: int = 4  # the OA package's allowance (1, 4 or 6)


@dataclass(frozen=True)
class IssuedToken:
    """An access token the sandbox's own OAuth endpoints minted: it expires and has scopes."""

    platform: str
    account: str
    scopes: frozenset[str]
    expires_at: datetime | None


class TokenState:
    """What `SandboxState.token_state` says about a token (strings, for JSON replies)."""

    OK = "ok"  # minted here, not expired, has the scope asked for
    STATIC = "static"  # not minted here (a pre-made token such as a bot or page token)
    REVOKED = "revoked"
    EXPIRED = "expired"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    MISSING = "missing"


class SandboxState:
    """Everything the emulators remember; one instance per app."""

    def __init__(self, settings: SandboxSettings | None = None, seed: int = 0) -> None:
        self.settings = settings or SandboxSettings()
        self.ledger: list[LedgerEntry] = []
        self.faults: list[Fault] = []
        self.random = random.Random(seed)
        self.revoked_tokens: set[str] = set()
        self.counter = 1_000
        self.platform_state: dict[str, dict[str, Any]] = {p: {} for p in PLATFORMS}
        self.lock = asyncio.Lock()
        # Moved by `POST /_sandbox/clock`, so tests can let tokens expire and quotas reset
        # without waiting.
        self.clock_offset = timedelta(0)
        self.issued: dict[str, IssuedToken] = {}

    # --- ids, clock ---------------------------------------------------------------------
    def next_id(self) -> int:
        self.counter += 1
        return self.counter

    def now(self) -> datetime:
        return datetime.now(UTC) + self.clock_offset

    def advance_clock(self, seconds: float) -> datetime:
        self.clock_offset += timedelta(seconds=seconds)
        return self.now()

    # --- faults -------------------------------------------------------------------------
    def set_faults(self, faults: list[Fault], seed: int | None) -> None:
        self.faults = faults
        if seed is not None:
            self.random = random.Random(seed)

    def add_faults(self, faults: list[Fault], seed: int | None) -> None:
        self.faults.extend(faults)
        if seed is not None:
            self.random = random.Random(seed)

    def pick_fault(self, platform: str, account: str) -> Fault | None:
        """The first matching fault that fires for this request, if any."""
        for fault in self.faults:
            if not fault.matches(platform, account):
                continue
            if fault.remaining is not None:
                if fault.remaining > 0:
                    fault.remaining -= 1
                    return fault
                continue
            if fault.rate is not None and self.random.random() < fault.rate:
                return fault
        return None

    # --- tokens -------------------------------------------------------------------------
    def token_valid(self, token: str | None) -> bool:
        return bool(token) and token not in self.revoked_tokens

    @staticmethod
    def account_of_token(token: str) -> str:
        return token.split(".", 1)[0]

    def issue_token(
        self,
        platform: str,
        account: str,
        *,
        ttl_s: float | None,
        scopes: frozenset[str] | set[str] = frozenset(),
        kind: str = "a",
    ) -> str:
        """Mint a token named `<account>.<kind><n>` (the account stays readable from it)."""
        token = f"{account}.{kind}{self.next_id()}"
        expires = None if ttl_s is None else self.now() + timedelta(seconds=ttl_s)
        self.issued[token] = IssuedToken(platform, account, frozenset(scopes), expires)
        return token

    def token_state(self, platform: str, token: str | None, scope: str | None = None) -> str:
        """One of the `TokenState` values. Strict emulators refuse anything but OK (and, on
        platforms whose real tokens are long-lived, STATIC)."""
        if not token:
            return TokenState.MISSING
        if token in self.revoked_tokens:
            return TokenState.REVOKED
        issued = self.issued.get(token)
        if issued is None or issued.platform != platform:
            return TokenState.STATIC
        if issued.expires_at is not None and self.now() >= issued.expires_at:
            return TokenState.EXPIRED
        if scope is not None and scope not in issued.scopes:
            return TokenState.INSUFFICIENT_SCOPE
        return TokenState.OK

    # --- ledger -------------------------------------------------------------------------
    def record(
        self,
        platform: str,
        account: str,
        remote_id: str,
        body: str,
        payload: dict[str, Any],
        **extra: Any,
    ) -> LedgerEntry:
        entry = LedgerEntry(
            platform=platform,
            account=account,
            id=remote_id,
            body_sha256=sha256_hex(body),
            accepted_at=self.now(),
            payload=payload,
            extra=dict(extra),
        )
        self.ledger.append(entry)
        return entry

    def entries(self, platform: str, account: str) -> list[LedgerEntry]:
        return [e for e in self.ledger if e.platform == platform and e.account == account]

    def find_entry(self, platform: str, remote_id: str) -> LedgerEntry | None:
        for entry in self.ledger:
            if entry.platform == platform and entry.id == remote_id:
                return entry
        return None

    def withdraw(self, entry: LedgerEntry, how: str) -> None:
        """Mark a ledger entry taken back (`deleted` or `edited`); the first time is kept."""
        if entry.withdrawn is None:
            entry.withdrawn = how
            entry.withdrawn_at = self.now()


async def apply_delay(fault: Fault | None) -> Fault | None:
    """Sleep for a `delay` fault and let the request go on normally; other faults pass."""
    if fault is not None and fault.kind == "delay":
        await asyncio.sleep(fault.delay)
        return None
    return fault
