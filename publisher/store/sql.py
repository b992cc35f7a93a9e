"""The directory store over SQL (SQLite or PostgreSQL), through sqlmodel sessions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from publisher.domain import (
    AccountStatus,
    Article,
    ArticleKind,
    ChannelAccount,
    Pause,
    PauseScope,
    Platform,
    Role,
    RoleGrant,
    Source,
    SourceKind,
    Unit,
    User,
)
from publisher.store.bulk import BulkInsert
from publisher.store.repository import StatusCounts, UnknownUnitError, unit_path
from publisher.store.tables import (
    ArticleRow,
    ChannelAccountRow,
    DeliveryArchiveRow,
    DeliveryRow,
    PauseRow,
    PostRow,
    RoleGrantRow,
    SourceRow,
    UnitRow,
    UserRow,
    WithdrawalRow,
    table_of,
    utcnow,
)

# Row → domain converters take a mapping, so one converter serves ORM objects
# (`row.model_dump()`), Core rows (`row._mapping`) and read models alike.


def unit_from_mapping(m: Mapping[Any, Any]) -> Unit:
    return Unit(
        code=m["code"],
        name=m["name"],
        kind=m["kind"],
        parent_code=m["parent_code"],
        code_list=m["code_list"],
        short_name=m["short_name"],
        active=m["active"],
        merged_into=m["merged_into"],
    )


def unit_from_row(row: UnitRow) -> Unit:
    return unit_from_mapping(row.model_dump())


def article_from_mapping(m: Mapping[Any, Any]) -> Article:
    """An `article` row (ORM object dumped, or a Core row's mapping) as the domain value."""
    return Article(
        id=m["id"],
        guid=m["guid"],
        url=m["url"],
        title=m["title"],
        published_at=m["published_at"],
        summary=m["summary"],
        body_html=m["body_html"],
        body_text=m["body_text"],
        images=tuple(m["images"] or ()),
        video=m["video"],
        language=m["language"],
        source=m["source_name"],
        kind=ArticleKind(m["kind"]),
        unit_code=m["unit_code"],
        category=m["category"],
        urgent=m["urgent"],
        content_hash=m["content_hash"],
    )


# Enum members by value: `Platform(value)` costs ~4 µs, which a whole-country fan-out
# (17,000 accounts, two enums each) paid as a fifth of its routing time. An unknown value
# still goes through the enum and fails there.
_PLATFORMS = {p.value: p for p in Platform}
_ACCOUNT_STATUSES = {s.value: s for s in AccountStatus}


def account_from_mapping(m: Mapping[Any, Any]) -> ChannelAccount:
    platform, status = m["platform"], m["status"]
    return ChannelAccount(
        id=m["id"],
        unit_code=m["unit_code"],
        platform=_PLATFORMS.get(platform) or Platform(platform),
        external_id=m["external_id"],
        display_name=m["display_name"],
        credentials_ref=m["credentials_ref"],
        token_expires_at=m["token_expires_at"],
        status=_ACCOUNT_STATUSES.get(status) or AccountStatus(status),
        language=m["language"],
    )


def account_from_row(row: ChannelAccountRow) -> ChannelAccount:
    return account_from_mapping(row.model_dump())


def source_from_row(row: SourceRow) -> Source:
    return Source(
        id=row.id,
        unit_code=row.unit_code,
        kind=SourceKind(row.kind),
        url=row.url,
        article_kind=ArticleKind(row.article_kind),
        poll_interval_s=row.poll_interval_s,
        timezone=row.timezone,
        allow_private_network=row.allow_private_network,
        selectors=dict(row.selectors),
        etag=row.etag,
        last_modified=row.last_modified,
        category=row.category,
    )


def pause_from_mapping(m: Mapping[Any, Any]) -> Pause:
    return Pause(
        scope=PauseScope(m["scope"]),
        target=m["target"],
        reason=m["reason"],
        created_by=m["created_by"],
        created_at=m["created_at"],
        until=m["until"],
        id=m["id"],
    )


UNIT = table_of(UnitRow)
_UNIT_COLUMNS = tuple(c.name for c in UNIT.columns)
_UNIT_UPDATED = tuple(c for c in _UNIT_COLUMNS if c != "code")
# PostgreSQL gets one statement a batch (a column an array); SQLite one executemany.
_UNIT_BATCH = 1000

ACCOUNT = table_of(ChannelAccountRow)
# What accounts.toml sets, in the order upsert_accounts builds its rows; the last two only
# for a new row.
_ACCOUNT_UPDATED = (
    "unit_code",
    "platform",
    "external_id",
    "display_name",
    "credentials_ref",
    "token_expires_at",
    "language",
)
_ACCOUNT_COLUMNS = ("id", *_ACCOUNT_UPDATED, "updated_at", "status", "origin")
_ACCOUNT_BATCH = 1000


class SqlRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    # --- units ------------------------------------------------------------------------

    def upsert_units(self, units: Iterable[Unit]) -> None:
        """Insert new units and update changed ones; units not given are left as they are.

        One INSERT … ON CONFLICT (code) DO UPDATE per batch, and the update happens only where
        a column differs: `init` syncs the whole national tree (~3,400 units) at every start,
        and row at a time that took ~2 s for a table that had not changed.
        """
        # The last of several entries for one code wins, as when they were written in turn.
        incoming = list({u.code: u for u in units}.values())
        if not incoming:
            return
        with self.engine.begin() as conn:
            known = {
                m["code"]: unit_from_mapping(m) for m in conn.execute(sa.select(UNIT)).mappings()
            }
            known.update({u.code: u for u in incoming})
            rows: list[tuple[Any, ...]] = []
            for unit in incoming:
                path = unit_path(unit, known)
                values = {
                    "code": unit.code,
                    "name": unit.name,
                    "kind": unit.kind,
                    "parent_code": unit.parent_code,
                    "path": path,
                    "depth": path.count("/") - 2,
                    "code_list": unit.code_list,
                    "short_name": unit.short_name,
                    "active": unit.active,
                    "merged_into": unit.merged_into,
                }
                rows.append(tuple(values[c] for c in _UNIT_COLUMNS))
            # Parents first, so the foreign key holds whichever batch a unit falls in.
            rows.sort(key=lambda row: row[_UNIT_COLUMNS.index("depth")])
            upsert = BulkInsert(UNIT, _UNIT_COLUMNS, ["code"], conn.dialect, update=_UNIT_UPDATED)
            for start in range(0, len(rows), _UNIT_BATCH):
                upsert.run(conn, rows[start : start + _UNIT_BATCH])

    def get_unit(self, code: str) -> Unit | None:
        with self.session() as session:
            row = session.get(UnitRow, code)
            return unit_from_row(row) if row else None

    def list_units(self) -> list[Unit]:
        with self.session() as session:
            rows = session.exec(select(UnitRow).order_by(col(UnitRow.path)))
            return [unit_from_row(r) for r in rows]

    def subtree_codes(self, code: str) -> list[str]:
        with self.session() as session:
            root = session.get(UnitRow, code)
            if root is None:
                raise UnknownUnitError(code)
            query = select(UnitRow.code).where(col(UnitRow.path).startswith(root.path))
            return list(session.exec(query.order_by(col(UnitRow.path))))

    def ancestors(self, code: str) -> list[str]:
        with self.session() as session:
            row = session.get(UnitRow, code)
            if row is None:
                raise UnknownUnitError(code)
            return [c for c in reversed(row.path.strip("/").split("/")) if c != code]

    def rename_unit(self, code: str, name: str, short_name: str | None = None) -> None:
        with self.session() as session:
            row = session.get(UnitRow, code)
            if row is None:
                raise UnknownUnitError(code)
            row.name = name
            if short_name is not None:
                row.short_name = short_name

    def merge_units(self, absorbed: str, into: str) -> None:
        with self.session() as session:
            old, new = session.get(UnitRow, absorbed), session.get(UnitRow, into)
            if old is None or new is None:
                raise UnknownUnitError(absorbed if old is None else into)
            if new.path.startswith(old.path):
                raise ValueError(f"cannot merge {absorbed} into its own descendant {into}")
            for child in session.exec(select(UnitRow).where(UnitRow.parent_code == absorbed)):
                child.parent_code = into
            session.execute(
                sa.update(ChannelAccountRow)
                .where(col(ChannelAccountRow.unit_code) == absorbed)
                .values(unit_code=into)
            )
            old.active, old.merged_into = False, into
            session.flush()
            self._repath(session)

    def _repath(self, session: Session) -> None:
        units = {r.code: r for r in session.exec(select(UnitRow))}
        domain = {code: unit_from_row(r) for code, r in units.items()}
        for code, row in units.items():
            row.path = unit_path(domain[code], domain)
            row.depth = row.path.count("/") - 2

    # --- users ------------------------------------------------------------------------

    def upsert_users(self, users: Iterable[User]) -> None:
        with self.session() as session:
            for user in users:
                row = session.get(UserRow, user.username) or UserRow(username=user.username)
                row.display_name = user.display_name
                row.os_users = list(user.os_users)
                row.may_act_for_others = user.may_act_for_others
                session.add(row)
                session.flush()
                session.execute(
                    sa.delete(RoleGrantRow).where(col(RoleGrantRow.username) == user.username)
                )
                for grant in user.grants:
                    session.add(
                        RoleGrantRow(
                            username=user.username,
                            unit_code=grant.unit_code,
                            role=grant.role.value,
                            subtree=grant.subtree,
                        )
                    )

    def _user(self, session: Session, row: UserRow) -> User:
        grants = session.exec(
            select(RoleGrantRow)
            .where(RoleGrantRow.username == row.username)
            .order_by(col(RoleGrantRow.id))
        )
        return User(
            username=row.username,
            display_name=row.display_name,
            grants=tuple(RoleGrant(g.unit_code, Role(g.role), g.subtree) for g in grants),
            os_users=tuple(row.os_users),
            may_act_for_others=row.may_act_for_others,
        )

    def get_user(self, username: str) -> User | None:
        with self.session() as session:
            row = session.get(UserRow, username)
            return self._user(session, row) if row else None

    def user_for_os_account(self, os_user: str) -> User | None:
        return next((u for u in self.list_users() if os_user in u.os_users), None)

    def list_users(self) -> list[User]:
        with self.session() as session:
            rows = session.exec(select(UserRow).order_by(col(UserRow.username)))
            return [self._user(session, r) for r in rows]

    # --- channel accounts ---------------------------------------------------------------

    def upsert_accounts(self, accounts: Iterable[ChannelAccount]) -> None:
        """Insert new config accounts and update changed ones; others are left as they are.

        One INSERT … ON CONFLICT (id) DO UPDATE per batch, updating (and stamping
        `updated_at`) only where a configured column differs: `init` syncs every configured
        account at each start, and row at a time with a lookup each that took seconds for a
        national set (~17,000). Status, secrets, checks and origin are never written here; a
        new row starts `active` with origin "config", as the ORM defaults made it.
        """
        # The last of several entries for one id wins, as when they were written in turn.
        incoming = list({a.id: a for a in accounts}.values())
        if not incoming:
            return
        now = utcnow()
        with self.engine.begin() as conn:
            # Connected by a unit admin: config never overwrites it (publisher.accounts).
            # Checked before anything is written, in the transaction that writes.
            ids = [a.id for a in incoming]
            for start in range(0, len(ids), _ACCOUNT_BATCH):
                connected = conn.execute(
                    sa.select(ACCOUNT.c.id)
                    .where(ACCOUNT.c.id.in_(ids[start : start + _ACCOUNT_BATCH]))
                    .where(ACCOUNT.c.origin != "config")
                    .order_by(ACCOUNT.c.id)
                    .limit(1)
                ).scalar()
                if connected is not None:
                    raise ValueError(f"account {connected} is a connected account, not config's")
            rows = [
                (
                    a.id,
                    a.unit_code,
                    a.platform.value,
                    a.external_id,
                    a.display_name,
                    a.credentials_ref,
                    a.token_expires_at,
                    a.language,
                    now,
                    AccountStatus.ACTIVE.value,
                    "config",
                )
                for a in incoming
            ]
            upsert = BulkInsert(
                ACCOUNT,
                _ACCOUNT_COLUMNS,
                ["id"],
                conn.dialect,
                update=_ACCOUNT_UPDATED,
                touch=("updated_at",),
            )
            for start in range(0, len(rows), _ACCOUNT_BATCH):
                upsert.run(conn, rows[start : start + _ACCOUNT_BATCH])

    def get_account(self, account_id: str) -> ChannelAccount | None:
        with self.session() as session:
            row = session.get(ChannelAccountRow, account_id)
            return account_from_row(row) if row else None

    def list_accounts(self, unit_codes: Sequence[str] | None = None) -> list[ChannelAccount]:
        with self.session() as session:
            query = select(ChannelAccountRow).order_by(col(ChannelAccountRow.id))
            if unit_codes is not None:
                query = query.where(col(ChannelAccountRow.unit_code).in_(list(unit_codes)))
            return [account_from_row(r) for r in session.exec(query)]

    def set_account_status(
        self, account_id: str, status: AccountStatus, reason: str | None = None
    ) -> None:
        with self.session() as session:
            row = session.get(ChannelAccountRow, account_id)
            if row is None:
                raise KeyError(account_id)
            row.status, row.status_reason, row.updated_at = status.value, reason, utcnow()

    # --- sources ----------------------------------------------------------------------

    def upsert_sources(self, sources: Iterable[Source]) -> None:
        with self.session() as session:
            for source in sources:
                row = session.get(SourceRow, source.id) or SourceRow(
                    id=source.id, unit_code=source.unit_code, kind=source.kind.value
                )
                # Configuration fields only: poll state (validators, backoff) is kept.
                row.unit_code, row.kind, row.url = source.unit_code, source.kind.value, source.url
                row.article_kind = source.article_kind.value
                row.poll_interval_s, row.timezone = source.poll_interval_s, source.timezone
                row.allow_private_network = source.allow_private_network
                row.selectors, row.category = dict(source.selectors), source.category
                session.add(row)

    def get_source(self, source_id: str) -> Source | None:
        with self.session() as session:
            row = session.get(SourceRow, source_id)
            return source_from_row(row) if row else None

    def list_sources(self) -> list[Source]:
        with self.session() as session:
            return [source_from_row(r) for r in session.exec(select(SourceRow))]

    # --- status -----------------------------------------------------------------------

    def status_counts(self) -> StatusCounts:
        now = utcnow()
        with self.session() as session:

            def count(table: type) -> int:
                return int(session.scalar(sa.select(sa.func.count()).select_from(table)) or 0)

            def by_state(
                table: type[PostRow]
                | type[DeliveryRow]
                | type[WithdrawalRow]
                | type[DeliveryArchiveRow],
            ) -> dict[str, int]:
                # each table has an index leading with `state`: the count reads it alone
                state = col(table.state)
                rows = session.execute(sa.select(state, sa.func.count()).group_by(state))
                return {state: int(n) for state, n in rows}

            pauses = session.scalar(
                sa.select(sa.func.count())
                .select_from(PauseRow)
                .where(col(PauseRow.lifted_at).is_(None))
                .where(sa.or_(col(PauseRow.until).is_(None), col(PauseRow.until) > now))
            )
            return StatusCounts(
                articles=count(ArticleRow),
                posts=by_state(PostRow),
                deliveries=by_state(DeliveryRow),
                units=count(UnitRow),
                accounts=count(ChannelAccountRow),
                sources=count(SourceRow),
                active_pauses=int(pauses or 0),
                withdrawals=by_state(WithdrawalRow),
                deliveries_archived=by_state(DeliveryArchiveRow),
            )
