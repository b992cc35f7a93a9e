"""The directory store: units, users, channel accounts, sources, and the status counts.

One small interface, two implementations: `SqlRepository` (SQLite and PostgreSQL) and
`MemoryRepository` (plain dicts, for fast tests). A contract test runs the same checks on both.
Other areas (ingestion, delivery) keep their own stores beside this one over the same tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from publisher.domain import (
    AccountStatus,
    ChannelAccount,
    DeliveryState,
    PostState,
    Source,
    Unit,
    User,
    WithdrawalState,
)


@dataclass(frozen=True)
class StatusCounts:
    """What `publisher status --json` prints: every state present, even when zero."""

    articles: int = 0
    posts: dict[str, int] = field(default_factory=dict)
    deliveries: dict[str, int] = field(default_factory=dict)
    units: int = 0
    accounts: int = 0
    sources: int = 0
    active_pauses: int = 0
    withdrawals: dict[str, int] = field(default_factory=dict)  # recalls: taking posts back
    # Deliveries moved to `delivery_archive` by `publisher archive` (final states only), apart
    # from `deliveries` (the hot table: the work in flight and what finished lately), so the
    # hot figures keep their meaning after an archive run and hot + archived is every
    # delivery ever made (docs/cli.md).
    deliveries_archived: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "articles": self.articles,
            "posts": {state.value: self.posts.get(state.value, 0) for state in PostState},
            "deliveries": {
                state.value: self.deliveries.get(state.value, 0) for state in DeliveryState
            },
            "units": self.units,
            "accounts": self.accounts,
            "sources": self.sources,
            "active_pauses": self.active_pauses,
            "withdrawals": {
                state.value: self.withdrawals.get(state.value, 0) for state in WithdrawalState
            },
            "deliveries_archived": {
                state.value: self.deliveries_archived.get(state.value, 0) for state in DeliveryState
            },
        }


class Repository(Protocol):
    def upsert_units(self, units: Iterable[Unit]) -> None: ...
    def get_unit(self, code: str) -> Unit | None: ...
    def list_units(self) -> list[Unit]: ...
    def subtree_codes(self, code: str) -> list[str]:
        """The unit and every unit below it, at any depth."""
        ...

    def ancestors(self, code: str) -> list[str]:
        """The codes above a unit, nearest first."""
        ...

    def rename_unit(self, code: str, name: str, short_name: str | None = None) -> None: ...
    def merge_units(self, absorbed: str, into: str) -> None:
        """Fold one unit into another: children and channel accounts move, the old one stays
        as an inactive record pointing at the new one (history and reports keep working)."""
        ...

    def upsert_users(self, users: Iterable[User]) -> None: ...
    def get_user(self, username: str) -> User | None: ...
    def user_for_os_account(self, os_user: str) -> User | None: ...
    def list_users(self) -> list[User]: ...

    def upsert_accounts(self, accounts: Iterable[ChannelAccount]) -> None: ...
    def get_account(self, account_id: str) -> ChannelAccount | None: ...
    def list_accounts(self, unit_codes: Sequence[str] | None = None) -> list[ChannelAccount]: ...
    def set_account_status(
        self, account_id: str, status: AccountStatus, reason: str | None = None
    ) -> None: ...

    def upsert_sources(self, sources: Iterable[Source]) -> None: ...
    def get_source(self, source_id: str) -> Source | None: ...
    def list_sources(self) -> list[Source]: ...

    def status_counts(self) -> StatusCounts: ...


class UnknownUnitError(KeyError):
    """A unit code that is not in the directory."""


def unit_path(unit: Unit, parents: dict[str, Unit]) -> str:
    """Materialised path of a unit, "/CP/01/01001/", walking up through `parents`."""
    codes = [unit.code]
    seen = {unit.code}
    current = unit
    while current.parent_code is not None:
        parent = parents.get(current.parent_code)
        if parent is None:
            raise UnknownUnitError(current.parent_code)
        if parent.code in seen:
            raise ValueError(f"cycle in the unit tree at {parent.code}")
        seen.add(parent.code)
        codes.append(parent.code)
        current = parent
    return "/" + "/".join(reversed(codes)) + "/"
