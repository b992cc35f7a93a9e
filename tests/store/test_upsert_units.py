"""`SqlRepository.upsert_units` as one bulk upsert: the same rows as the row-at-a-time code it
replaced, updates only where something changed, units not given left alone, no audit — on
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pg import fresh_schema, postgres_url, schema_url
from sqlmodel import Session, SQLModel, select

from publisher.domain import Unit
from publisher.store.engine import make_engine, upgrade
from publisher.store.repository import UnknownUnitError, unit_path
from publisher.store.sql import SqlRepository, unit_from_row
from publisher.store.tables import AuditEventRow, UnitRow, table_of
from tests.store.write_counter import write_counter

UNIT = table_of(UnitRow)
AUDIT = table_of(AuditEventRow)

TREE = [
    Unit("CP", "Cổng TTĐT Chính phủ", "central"),
    Unit("01", "Thành phố Hà Nội", "province", "CP", "QD19/2025", "Hà Nội"),
    Unit("79", "Thành phố Hồ Chí Minh", "province", "CP", "QD19/2025"),
    Unit("00004", "Phường Ba Đình", "commune", "01", "QD19/2025"),
    Unit("00008", "Phường Ngọc Hà", "commune", "01", "QD19/2025"),
    Unit("26734", "Phường Sài Gòn", "commune", "79", "QD19/2025"),
    Unit("00004.1", "Trang thành phần", "site", "00004"),
]


def old_upsert_units(engine: sa.Engine, units: Iterable[Unit]) -> None:
    """The row-at-a-time code `upsert_units` had before (the oracle for "identical results")."""
    incoming = list(units)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        known = {unit_from_row(r).code: unit_from_row(r) for r in session.exec(select(UnitRow))}
        known.update({u.code: u for u in incoming})
        for unit in sorted(incoming, key=lambda u: unit_path(u, known).count("/")):
            path = unit_path(unit, known)
            row = session.get(UnitRow, unit.code) or UnitRow(
                code=unit.code, name=unit.name, kind=unit.kind, path=path
            )
            row.name, row.kind, row.parent_code = unit.name, unit.kind, unit.parent_code
            row.path, row.depth = path, path.count("/") - 2
            row.code_list, row.short_name = unit.code_list, unit.short_name
            row.active, row.merged_into = unit.active, unit.merged_into
            session.add(row)
            session.flush()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engines(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    """Two empty databases of one backend: the new code writes the first (migrated schema),
    the old code the second (only the unit table)."""
    if request.param == "sqlite":
        upgrade(f"sqlite:///{tmp_path / 'new.db'}")
        new = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
        old = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        SQLModel.metadata.create_all(old, tables=[UNIT])
        yield new, old
        new.dispose()
        old.dispose()
        return
    url = postgres_url()
    with fresh_schema(url) as (new, schema), fresh_schema(url) as (old, _):
        upgrade(schema_url(url, schema))
        SQLModel.metadata.create_all(old, tables=[UNIT])
        yield new, old


def stored(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(UNIT).order_by(UNIT.c.code)).mappings()]


def both(engines: tuple[sa.Engine, sa.Engine], units: list[Unit]) -> None:
    new, old = engines
    SqlRepository(new).upsert_units(units)
    old_upsert_units(old, units)


def test_same_rows_as_the_row_at_a_time_code_through_a_sequence_of_syncs(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    new, old = engines
    steps = [
        list(reversed(TREE)),  # children before parents
        TREE,  # nothing changed
        [replace(u, name=u.name + " (mới)") if u.code in ("01", "26734") else u for u in TREE],
        # 00008 moves from Hà Nội to Hồ Chí Minh; its site follows only when given too
        [replace(u, parent_code="79") if u.code == "00008" else u for u in TREE],
        [TREE[0], replace(TREE[3], active=False, merged_into="00008", short_name="Ba Đình")],
        [*TREE, Unit("00010", "Phường Mới", "commune", "01"), TREE[1], TREE[1]],  # duplicates
    ]
    for step in steps:
        both(engines, step)
        assert stored(new) == stored(old), step
    assert len(stored(new)) == len(TREE) + 1


def test_a_renamed_unit_is_updated_and_an_unchanged_one_is_not_written(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    new, _ = engines
    repository = SqlRepository(new)
    repository.upsert_units(TREE)
    written = write_counter(new, "unit", "code")
    repository.upsert_units(TREE)
    assert written() == set()
    renamed = [replace(u, name="Thủ đô Hà Nội") if u.code == "01" else u for u in TREE]
    repository.upsert_units(renamed)
    assert written() == {"01"}
    hanoi = repository.get_unit("01")
    assert hanoi is not None
    assert (hanoi.name, hanoi.short_name, hanoi.code_list) == (
        "Thủ đô Hà Nội",
        "Hà Nội",
        "QD19/2025",
    )


def test_units_not_given_are_left_as_they_are_and_nothing_is_audited(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    new, _ = engines
    repository = SqlRepository(new)
    repository.upsert_units(TREE)
    before = {r["code"]: r for r in stored(new)}
    with new.connect() as conn:
        audited = conn.execute(sa.select(sa.func.count()).select_from(AUDIT)).scalar_one()
    repository.upsert_units([TREE[0], replace(TREE[2], name="TP. Hồ Chí Minh")])
    after = {r["code"]: r for r in stored(new)}
    assert after.keys() == before.keys()  # nothing deleted, nothing deactivated
    assert {c for c in after if after[c] != before[c]} == {"79"}
    with new.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(AUDIT)).scalar_one() == audited


def test_an_unknown_parent_is_refused_and_nothing_is_written(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    new, _ = engines
    repository = SqlRepository(new)
    repository.upsert_units(TREE[:3])
    with pytest.raises(UnknownUnitError):
        repository.upsert_units([*TREE, Unit("99001", "Xã lạc", "commune", "99")])
    assert [r["code"] for r in stored(new)] == sorted(u.code for u in TREE[:3])


def test_the_national_tree_round_trips(engines: tuple[sa.Engine, sa.Engine]) -> None:
    """~3,400 units: several batches, parents always before children."""
    from publisher.national import load_division

    division = load_division()
    tree = [
        Unit("CP", "Cổng TTĐT Chính phủ", "central"),
        *(Unit(p.code, p.name, p.kind, "CP", p.code_list) for p in division.provinces),
        *division.communes,
    ]
    new, old = engines
    SqlRepository(new).upsert_units(reversed(tree))
    old_upsert_units(old, reversed(tree))
    rows = stored(new)
    assert len(rows) == len(tree) > 3000
    assert rows == stored(old)
