"""`SqlRepository.upsert_accounts` as one bulk upsert: the same rows as the row-at-a-time code it
replaced over successive `init`s, only changed rows written (and stamped), connected accounts
refused with nothing written — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pg import fresh_schema, postgres_url, schema_url
from sqlmodel import Session, SQLModel

from publisher.domain import ChannelAccount, Platform, Unit
from publisher.store.engine import make_engine, upgrade
from publisher.store.sql import SqlRepository
from publisher.store.tables import ChannelAccountRow, UnitRow, table_of, utcnow
from tests.store.write_counter import write_counter

UNIT = table_of(UnitRow)
ACCOUNT = table_of(ChannelAccountRow)

TREE = [
    Unit("CP", "Cổng TTĐT Chính phủ", "central"),
    Unit("01", "Thành phố Hà Nội", "province", "CP"),
    Unit("79", "Thành phố Hồ Chí Minh", "province", "CP"),
]
EXPIRES = datetime(2027, 6, 29, 17, 0, tzinfo=UTC)
ACCOUNTS = [
    ChannelAccount("CP.facebook", "CP", Platform.FACEBOOK, "1001", "Thông tin Chính phủ"),
    ChannelAccount(
        "CP.zalo", "CP", Platform.ZALO, "4001", "Chính phủ", "env:ZALO_CP", EXPIRES, language="vi"
    ),
    ChannelAccount("01.telegram", "01", Platform.TELEGRAM, "@hanoi", "Hà Nội", "file:/run/t"),
    ChannelAccount("79.viber", "79", Platform.VIBER, "pa-79", language="en"),
]


def old_upsert_accounts(engine: sa.Engine, accounts: Iterable[ChannelAccount]) -> None:
    """The row-at-a-time code `upsert_accounts` had before (the oracle for "identical rows")."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        for account in accounts:
            existing = session.get(ChannelAccountRow, account.id)
            if existing is not None and existing.origin != "config":
                raise ValueError(f"account {account.id} is a connected account, not config's")
            row = existing or ChannelAccountRow(
                id=account.id,
                unit_code=account.unit_code,
                platform=account.platform.value,
                external_id=account.external_id,
            )
            row.unit_code, row.platform = account.unit_code, account.platform.value
            row.external_id, row.display_name = account.external_id, account.display_name
            row.credentials_ref = account.credentials_ref
            row.token_expires_at = account.token_expires_at
            row.language = account.language
            row.updated_at = utcnow()
            session.add(row)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engines(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    """Two databases of one backend with the units in: the new code writes the first (migrated
    schema), the old code the second (unit and account tables only)."""
    if request.param == "sqlite":
        upgrade(f"sqlite:///{tmp_path / 'new.db'}")
        new = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
        old = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        SQLModel.metadata.create_all(old, tables=[UNIT, ACCOUNT])
        for engine in (new, old):
            SqlRepository(engine).upsert_units(TREE)
        yield new, old
        new.dispose()
        old.dispose()
        return
    url = postgres_url()
    with fresh_schema(url) as (new, schema), fresh_schema(url) as (old, _):
        upgrade(schema_url(url, schema))
        SQLModel.metadata.create_all(old, tables=[UNIT, ACCOUNT])
        for engine in (new, old):
            SqlRepository(engine).upsert_units(TREE)
        yield new, old


def stored(engine: sa.Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        return {
            r["id"]: dict(r)
            for r in conn.execute(sa.select(ACCOUNT).order_by(ACCOUNT.c.id)).mappings()
        }


def without_time(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {key: {c: v for c, v in row.items() if c != "updated_at"} for key, row in rows.items()}


def test_same_rows_as_the_row_at_a_time_code_through_successive_inits(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    new, old = engines
    steps = [
        ACCOUNTS,  # first init
        ACCOUNTS,  # nothing changed
        [
            replace(ACCOUNTS[0], display_name="Thông tin CP", language="vi"),
            replace(ACCOUNTS[1], token_expires_at=None, credentials_ref="store:"),
            *ACCOUNTS[2:],
        ],
        # an account moved to another unit, a new one, and an id given twice (the last wins)
        [
            replace(ACCOUNTS[2], unit_code="79", external_id="@hcm"),
            ChannelAccount("01.x", "01", Platform.X, "hanoi_x"),
            replace(ACCOUNTS[3], display_name="trước"),
            replace(ACCOUNTS[3], display_name="Viber TP.HCM"),
        ],
        [],  # an empty accounts.toml leaves every row as it is
    ]
    for step in steps:
        SqlRepository(new).upsert_accounts(step)
        old_upsert_accounts(old, step)
        assert without_time(stored(new)) == without_time(stored(old)), step
    rows = stored(new)
    assert len(rows) == 5
    assert rows["01.telegram"]["unit_code"] == "79"
    assert rows["79.viber"]["display_name"] == "Viber TP.HCM"
    assert rows["CP.zalo"]["token_expires_at"] is None
    assert all(r["status"] == "active" and r["origin"] == "config" for r in rows.values())


def test_only_changed_accounts_are_written_and_stamped(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    new, _ = engines
    repository = SqlRepository(new)
    repository.upsert_accounts(ACCOUNTS)
    first = stored(new)
    assert all(r["updated_at"] is not None for r in first.values())
    written = write_counter(new, "channel_account", "id")
    repository.upsert_accounts(ACCOUNTS)
    assert written() == set()
    assert stored(new) == first  # not even updated_at moved
    changed = [replace(a, display_name="Mới") if a.id == "CP.zalo" else a for a in ACCOUNTS]
    repository.upsert_accounts(changed)
    assert written() == {"CP.zalo"}
    after = stored(new)
    assert after["CP.zalo"]["updated_at"] > first["CP.zalo"]["updated_at"]
    assert {k for k in after if after[k] != first[k]} == {"CP.zalo"}


def test_state_the_configuration_does_not_own_is_kept(engines: tuple[sa.Engine, sa.Engine]) -> None:
    """Status, its reason, secrets and checks are set by the accounts commands and the
    delivery engine; a config sync must not reset them, even when it updates the row."""
    new, old = engines
    for engine in (new, old):
        SqlRepository(engine).upsert_accounts(ACCOUNTS)
        with engine.begin() as conn:
            conn.execute(
                sa.update(ACCOUNT)
                .where(ACCOUNT.c.id == "CP.facebook")
                .values(
                    status="auth_failed",
                    status_reason="token revoked",
                    secret_ciphertext="c1",
                    secret_key_id="k1",
                    check_detail="HTTP 190",
                )
            )
    changed = [replace(a, display_name="Đổi tên") for a in ACCOUNTS]
    SqlRepository(new).upsert_accounts(changed)
    old_upsert_accounts(old, changed)
    assert without_time(stored(new)) == without_time(stored(old))
    row = stored(new)["CP.facebook"]
    assert (row["status"], row["status_reason"], row["secret_ciphertext"]) == (
        "auth_failed",
        "token revoked",
        "c1",
    )
    assert row["display_name"] == "Đổi tên"


def test_a_connected_account_is_refused_and_nothing_is_written(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    new, _ = engines
    repository = SqlRepository(new)
    repository.upsert_accounts(ACCOUNTS[:2])
    with new.begin() as conn:
        conn.execute(sa.update(ACCOUNT).where(ACCOUNT.c.id == "CP.zalo").values(origin="connected"))
    before = stored(new)
    with pytest.raises(ValueError, match=r"account CP\.zalo is a connected account"):
        repository.upsert_accounts([replace(a, display_name="x") for a in ACCOUNTS])
    assert stored(new) == before


def test_the_national_scale_round_trips(engines: tuple[sa.Engine, sa.Engine]) -> None:
    """More accounts than one batch: every row the old code would have written."""
    new, old = engines
    units = [Unit(f"C{n:05d}", f"Xã {n}", "commune", "01") for n in range(700)]
    accounts = [
        ChannelAccount(f"{u.code}.{p.value}", u.code, p, f"{u.code}-{p.value}", u.name)
        for u in units
        for p in (Platform.FACEBOOK, Platform.ZALO)
    ]
    for engine in (new, old):
        SqlRepository(engine).upsert_units(units)
    SqlRepository(new).upsert_accounts(accounts)
    old_upsert_accounts(old, accounts)
    rows = without_time(stored(new))
    assert len(rows) == 1400
    assert rows == without_time(stored(old))
