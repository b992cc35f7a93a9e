"""The directory store in plain dicts: the same contract as `SqlRepository`, for fast tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from publisher.domain import AccountStatus, ChannelAccount, Source, Unit, User
from publisher.store.repository import StatusCounts, UnknownUnitError, unit_path


class MemoryRepository:
    def __init__(self) -> None:
        self.units: dict[str, Unit] = {}
        self.users: dict[str, User] = {}
        self.accounts: dict[str, ChannelAccount] = {}
        self.sources: dict[str, Source] = {}
        self.account_reasons: dict[str, str | None] = {}

    def _path(self, code: str) -> str:
        return unit_path(self.units[code], self.units)

    # --- units ------------------------------------------------------------------------

    def upsert_units(self, units: Iterable[Unit]) -> None:
        incoming = {u.code: u for u in units}
        merged = {**self.units, **incoming}
        for unit in incoming.values():
            unit_path(unit, merged)  # refuses unknown parents and cycles before any change
        self.units = merged

    def get_unit(self, code: str) -> Unit | None:
        return self.units.get(code)

    def list_units(self) -> list[Unit]:
        return sorted(self.units.values(), key=lambda u: self._path(u.code))

    def subtree_codes(self, code: str) -> list[str]:
        if code not in self.units:
            raise UnknownUnitError(code)
        prefix = self._path(code)
        return sorted((c for c in self.units if self._path(c).startswith(prefix)), key=self._path)

    def ancestors(self, code: str) -> list[str]:
        if code not in self.units:
            raise UnknownUnitError(code)
        return [c for c in reversed(self._path(code).strip("/").split("/")) if c != code]

    def rename_unit(self, code: str, name: str, short_name: str | None = None) -> None:
        unit = self.units.get(code)
        if unit is None:
            raise UnknownUnitError(code)
        self.units[code] = replace(
            unit, name=name, short_name=unit.short_name if short_name is None else short_name
        )

    def merge_units(self, absorbed: str, into: str) -> None:
        if absorbed not in self.units or into not in self.units:
            raise UnknownUnitError(absorbed if absorbed not in self.units else into)
        if self._path(into).startswith(self._path(absorbed)):
            raise ValueError(f"cannot merge {absorbed} into its own descendant {into}")
        for code, unit in list(self.units.items()):
            if unit.parent_code == absorbed:
                self.units[code] = replace(unit, parent_code=into)
        for account_id, account in list(self.accounts.items()):
            if account.unit_code == absorbed:
                self.accounts[account_id] = replace(account, unit_code=into)
        self.units[absorbed] = replace(self.units[absorbed], active=False, merged_into=into)

    # --- users ------------------------------------------------------------------------

    def upsert_users(self, users: Iterable[User]) -> None:
        for user in users:
            self.users[user.username] = user

    def get_user(self, username: str) -> User | None:
        return self.users.get(username)

    def user_for_os_account(self, os_user: str) -> User | None:
        return next((u for u in self.list_users() if os_user in u.os_users), None)

    def list_users(self) -> list[User]:
        return [self.users[name] for name in sorted(self.users)]

    # --- channel accounts ---------------------------------------------------------------

    def upsert_accounts(self, accounts: Iterable[ChannelAccount]) -> None:
        for account in accounts:
            old = self.accounts.get(account.id)
            # Status belongs to the running system, not to configuration: keep it.
            status = old.status if old else AccountStatus.ACTIVE
            self.accounts[account.id] = replace(account, status=status)

    def get_account(self, account_id: str) -> ChannelAccount | None:
        return self.accounts.get(account_id)

    def list_accounts(self, unit_codes: Sequence[str] | None = None) -> list[ChannelAccount]:
        wanted = None if unit_codes is None else set(unit_codes)
        return [
            self.accounts[i]
            for i in sorted(self.accounts)
            if wanted is None or self.accounts[i].unit_code in wanted
        ]

    def set_account_status(
        self, account_id: str, status: AccountStatus, reason: str | None = None
    ) -> None:
        self.accounts[account_id] = replace(self.accounts[account_id], status=status)
        self.account_reasons[account_id] = reason

    # --- sources ----------------------------------------------------------------------

    def upsert_sources(self, sources: Iterable[Source]) -> None:
        for source in sources:
            self.sources[source.id] = source

    def get_source(self, source_id: str) -> Source | None:
        return self.sources.get(source_id)

    def list_sources(self) -> list[Source]:
        return list(self.sources.values())

    def status_counts(self) -> StatusCounts:
        return StatusCounts(
            units=len(self.units), accounts=len(self.accounts), sources=len(self.sources)
        )
