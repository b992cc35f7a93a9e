"""Short-lived access tokens renewed from a refresh token, saved before they are used.

Google (YouTube) access tokens live about an hour, X's OAuth 2.0 user tokens two hours; both
come with a refresh token. `TokenRenewal` keeps one account's tokens current for a channel:

- The current set is what the `TokenStore` holds for the account (a renewed token lives
  there), else what the account's credentials carry: `token`, and the extras `refresh_token`,
  `expires_at` (ISO 8601, timezone-aware), `scopes` (space-separated).
- Renew when less than `margin_s` is left, or when the platform refused the token (the
  channel asks with `renew`) — at most once per call, so a broken account fails fast (AUTH).
- One renewal per account at a time (a lock), and after taking the lock the store is looked at
  again: another task may have renewed already, and on X a refresh token is spent when used.
- *Store before use*: the renewed set is saved through the store before it is returned. If the
  save fails, nothing is used and the call fails BEFORE_SEND (nothing was published). The
  unsaved set is kept in memory and saving it is tried first next time: X has already retired
  the old refresh token, so this set is the only way back short of a person re-authorising.
  A process that dies holding an unsaved X set loses it; the account then fails AUTH and a
  person re-authorises (docs/channels.md, "YouTube and X tokens").
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from channels.base import Credentials, ErrorKind, SendError, TokenSet, TokenStore


@dataclass(frozen=True, slots=True)
class Renewed:
    """What a refresh gave: the new set, and the scopes the platform said it granted."""

    tokens: TokenSet
    scopes: frozenset[str] | None = None  # None: the reply did not say


# refresh token → the renewed set; raises a classified SendError when the platform refuses
Refresher = Callable[[str], Awaitable[Renewed]]


def utc_now() -> datetime:
    return datetime.now(UTC)


def expires_at_of(credentials: Credentials) -> datetime | None:
    """The `expires_at` extra; a value that cannot be read counts as already expired."""
    raw = credentials.extra.get("expires_at")
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo is not None else datetime.min.replace(tzinfo=UTC)


class TokenRenewal:
    """Current, renewed-when-needed tokens of one channel's accounts."""

    def __init__(
        self,
        display_name: str,
        store: TokenStore | None,
        *,
        margin_s: float,
        how_to_reauthorise: str,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.display_name = display_name
        self.store = store
        self.margin_s = margin_s
        self.how_to_reauthorise = how_to_reauthorise
        self.clock = clock
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._unsaved: dict[str, TokenSet] = {}
        self._scopes: dict[str, frozenset[str]] = {}

    # --- what is current -------------------------------------------------------------------
    async def current(self, account_id: str, credentials: Credentials) -> TokenSet:
        stored = await self.store.load(account_id) if self.store is not None else None
        if stored is not None and stored.access_token:
            if stored.refresh_token or not credentials.extra.get("refresh_token"):
                return stored
            # a store row without the refresh token: keep the one the credentials carry
            return TokenSet(
                stored.access_token, credentials.extra["refresh_token"], stored.expires_at
            )
        return TokenSet(
            credentials.token,
            credentials.extra.get("refresh_token") or None,
            expires_at_of(credentials),
        )

    def scopes(self, account_id: str, credentials: Credentials) -> frozenset[str] | None:
        """The scopes last granted (from a renewal), else the consent's `scopes`, else None."""
        if account_id in self._scopes:
            return self._scopes[account_id]
        raw = credentials.extra.get("scopes", "").replace(",", " ").split()
        return frozenset(raw) if raw else None

    def usable(self, tokens: TokenSet) -> bool:
        return bool(tokens.access_token) and tokens.fresh(self.clock(), self.margin_s)

    async def fresh(
        self, account_id: str, credentials: Credentials, refresh: Refresher
    ) -> tuple[TokenSet, bool]:
        """(a usable set, whether it was renewed now)."""
        tokens = await self.current(account_id, credentials)
        if self.usable(tokens):
            return tokens, False
        return await self.renew(account_id, credentials, tokens, refresh), True

    # --- renewing --------------------------------------------------------------------------
    async def renew(
        self, account_id: str, credentials: Credentials, spent: TokenSet, refresh: Refresher
    ) -> TokenSet:
        """A new set in place of `spent` (refused or about to expire), saved before use."""
        name = self.display_name
        if self.store is None:
            raise SendError(
                ErrorKind.AUTH,
                f"{name} token expired or refused and no token store is configured to keep a "
                "renewed one",
            )
        async with self._locks[account_id]:
            pending = self._unsaved.get(account_id)
            if pending is not None:
                await self._save(account_id, pending)
                del self._unsaved[account_id]
                if self.usable(pending):
                    return pending
            current = await self.current(account_id, credentials)
            if current.access_token != spent.access_token and self.usable(current):
                return current  # another task renewed while we waited
            refresh_token = current.refresh_token or spent.refresh_token
            if not refresh_token:
                raise SendError(
                    ErrorKind.AUTH,
                    f"{name} access token expired or refused and there is no refresh token; "
                    f"{self.how_to_reauthorise}",
                )
            renewed = await refresh(refresh_token)
            tokens = renewed.tokens
            if tokens.refresh_token is None:  # the platform kept the refresh token (Google)
                tokens = TokenSet(tokens.access_token, refresh_token, tokens.expires_at)
            if renewed.scopes is not None:
                self._scopes[account_id] = renewed.scopes
            try:
                await self.store.save(account_id, tokens)
            except Exception as error:
                self._unsaved[account_id] = tokens
                raise SendError(
                    ErrorKind.BEFORE_SEND,
                    f"could not store the renewed {name} token ({type(error).__name__}: "
                    f"{error}); it was not used, nothing was sent",
                ) from error
            return tokens

    async def _save(self, account_id: str, tokens: TokenSet) -> None:
        assert self.store is not None
        try:
            await self.store.save(account_id, tokens)
        except Exception as error:
            raise SendError(
                ErrorKind.BEFORE_SEND,
                f"could not store the renewed {self.display_name} token kept from an earlier "
                f"attempt ({type(error).__name__}: {error}); nothing was sent",
            ) from error
