"""Fan-out of one central directive to the whole country: the 2025 division (the root, 34
provinces, every commune, from the pinned `vietnam-provinces` package, as `publisher units
import` writes it) × 5 channel accounts each, as one transaction.

Compares the whole `DeliveryService.route_article` (load the tree and accounts, route, plan
times and approval, insert posts and deliveries with ON CONFLICT DO NOTHING, mark the article
routed, audit event) with a raw bulk insert of the very rows it wrote (same states, due and
expiry times; plain executemany, nothing else). The two sides alternate, each on its own
identically seeded database, one new article per round; the figures are medians. SQLite, and
PostgreSQL when DATABASE_URL_TEST is set.

`units_sync`: what every `publisher init` (and start-up) pays to bring the unit table in line
with the configuration — the sample units plus the national tree (~3,385 units, as after
`publisher units import`) through `SqlRepository.upsert_units`: into an empty table (first
`init`), again with nothing changed (every later `init`), and with 100 names changed.

`init_config`: what `publisher init` (and every command that reads the configuration) pays to
read and check the configuration folder with the national tree written by `publisher units
import` (sample files + units-national.toml, ~3,385 units): `load_config`, TOML parse and
pydantic validation and the cross-file checks, medians.

`init_accounts`: `SqlRepository.upsert_accounts` as `init` runs it: the sample accounts.toml
(207 accounts), and a national-scale set (the sample's plus one account per platform for each
unit of the national tree, ~17,000), each into an empty table, again unchanged, and with 100
accounts changed. Units are synced first (not measured).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from bench.scenarios.fanout import database
from publisher.domain import ChannelAccount, Platform, Unit
from publisher.national import NATIONAL_FILE, base_units, load_division, plan_import, render
from publisher.service import DeliveryService
from publisher.settings import load_config
from publisher.settings.directory import UnitsFile
from publisher.settings.workflow import ScheduleFile
from publisher.store.delivery_sql import ACCOUNT, ARTICLE, POST, UNIT, D
from publisher.store.repository import unit_path
from publisher.store.sql import SqlRepository
from publisher.workspace import SAMPLE_CONFIG

T = TypeVar("T")

DESCRIPTION = "directive to every unit of the country × 5 channels vs a raw bulk insert (medians)"
PLATFORMS = (Platform.FACEBOOK, Platform.ZALO, Platform.TELEGRAM, Platform.VIBER, Platform.X)
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def national_tree(quick: bool) -> list[Unit]:
    division = load_division()
    root = Unit("CP", "Cổng Thông tin điện tử Chính phủ", "central", None, "internal")
    provinces = [
        Unit(p.code, p.name, p.kind, "CP", p.code_list, p.short_name) for p in division.provinces
    ]
    communes = list(division.communes)
    if quick:
        communes = communes[::10]
    return [root, *provinces, *communes]


def seed(engine: sa.Engine, tree: list[Unit]) -> None:
    """The tree and its accounts with plain Core inserts (seeding is not what is measured)."""
    known = {u.code: u for u in tree}
    unit_rows = []
    for u in tree:
        path = unit_path(u, known)
        unit_rows.append(
            {
                "code": u.code,
                "name": u.name,
                "kind": u.kind,
                "parent_code": u.parent_code,
                "path": path,
                "depth": path.count("/") - 2,
                "code_list": u.code_list,
                "short_name": u.short_name,
                "active": True,
                "merged_into": None,
            }
        )
    account_rows = [
        {
            "id": f"{u.code}.{p.value}",
            "unit_code": u.code,
            "platform": p.value,
            "external_id": f"{u.code}-{p.value}",
            "display_name": "",
            "credentials_ref": "store:",
            "status": "active",
            "updated_at": NOW,
        }
        for u in tree
        for p in PLATFORMS
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(UNIT), sorted(unit_rows, key=lambda r: r["depth"]))
        conn.execute(sa.insert(ACCOUNT), account_rows)


def new_article(engine: sa.Engine, n: int) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                sa.insert(ARTICLE)
                .values(
                    guid=f"d{n}",
                    url=f"u{n}",
                    canonical_url=f"u{n}",
                    content_hash=f"h{n}",
                    title="Chỉ đạo",
                    published_at=NOW,
                    images=[],
                    kind="directive",
                    unit_code="CP",
                    created_at=NOW,
                )
                .returning(ARTICLE.c.id)
            ).scalar_one()
        )


def written_rows(engine: sa.Engine, article_id: int) -> tuple[list[Any], list[Any]]:
    """What the fan-out wrote for `article_id` (posts, deliveries), to insert again raw."""
    with engine.connect() as conn:
        posts = conn.execute(
            sa.select(
                POST.c.unit_code,
                POST.c.state,
                POST.c.priority,
                POST.c.expires_at,
                POST.c.platforms,
            )
            .where(POST.c.article_id == article_id)
            .order_by(POST.c.id)
        ).all()
        deliveries = conn.execute(
            sa.select(
                D.c.unit_code,
                D.c.account_id,
                D.c.platform,
                D.c.state,
                D.c.due_at,
                D.c.expires_at,
                D.c.priority,
            )
            .where(D.c.article_id == article_id)
            .order_by(D.c.id)
        ).all()
    return list(posts), list(deliveries)


def raw_insert(engine: sa.Engine, article_id: int, posts: list[Any], deliveries: list[Any]) -> int:
    """The floor: the very rows the fan-out wrote (same states, due and expiry times), with two
    plain SQLAlchemy executemany inserts and the select of the new post ids between them."""
    post_rows = [
        {
            "article_id": article_id,
            "unit_code": p.unit_code,
            "state": p.state,
            "priority": p.priority,
            "expires_at": p.expires_at,
            "approvals": [],
            "lead_in": "",
            "created_at": NOW,
            "updated_at": NOW,
            "platforms": p.platforms,
        }
        for p in posts
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(POST), post_rows)
        ids = dict(
            conn.execute(
                sa.select(POST.c.unit_code, POST.c.id).where(POST.c.article_id == article_id)
            ).all()
        )
        delivery_rows = [
            {
                "post_id": ids[d.unit_code],
                "article_id": article_id,
                "unit_code": d.unit_code,
                "account_id": d.account_id,
                "platform": d.platform,
                "state": d.state,
                "due_at": d.due_at,
                "expires_at": d.expires_at,
                "priority": d.priority,
                "attempt": 0,
                "payload": None,
                "created_at": NOW,
                "updated_at": NOW,
            }
            for d in deliveries
        ]
        conn.execute(sa.insert(D), delivery_rows)
    return len(post_rows) + len(delivery_rows)


def measure(kind: str, quick: bool) -> list[dict[str, Any]]:
    tree = national_tree(quick)
    rounds = 3 if quick else 7
    fan_times: list[float] = []
    raw_times: list[float] = []
    with database(kind) as fan_engine, database(kind) as raw_engine:
        seed(fan_engine, tree)
        seed(raw_engine, tree)
        service = DeliveryService(
            fan_engine,
            _NoDirectory(),
            schedule_rules=ScheduleFile(default={"quiet_hours": []}),
            clock=lambda: NOW,
        )
        rows = 0
        for n in range(rounds):
            article_id = new_article(fan_engine, n)
            started = time.perf_counter()
            posts, deliveries = service.route_article(article_id)
            fan_times.append(time.perf_counter() - started)
            again = service.route_article(article_id)  # routing twice adds nothing
            assert again == (0, 0), again
            rows = posts + deliveries
            written = written_rows(fan_engine, article_id)
            raw_article = new_article(raw_engine, n)
            started = time.perf_counter()
            raw_rows = raw_insert(raw_engine, raw_article, *written)
            raw_times.append(time.perf_counter() - started)
            assert raw_rows == rows, (raw_rows, rows)
    fan, raw = statistics.median(fan_times), statistics.median(raw_times)
    return [
        {"name": f"national_{kind}_units", "value": len(tree), "unit": "units"},
        {"name": f"national_{kind}_rows", "value": rows, "unit": "rows"},
        {
            "name": f"national_{kind}_fanout_seconds",
            "value": round(fan, 3),
            "unit": "s",
            "baseline": "raw bulk insert of the same rows",
            "baseline_value": round(raw, 3),
            "ratio": round(fan / raw, 2),
            "rounds": rounds,
            # Each round's fan-out over the raw insert just after it: steadier than the
            # ratio of medians when the machine's load drifts.
            "paired_ratio_median": round(
                statistics.median(f / r for f, r in zip(fan_times, raw_times, strict=True)), 2
            ),
            "fanout_all": [round(t, 3) for t in fan_times],
            "raw_all": [round(t, 3) for t in raw_times],
        },
        {"name": f"national_{kind}_rows_per_s", "value": round(rows / fan), "unit": "rows/s"},
    ]


def configured_units(quick: bool) -> list[Unit]:
    """The sample configuration's units with the national tree over them, as `init` syncs
    them after `publisher units import` (a province of both: the national one)."""
    units = {u.code: u for u in load_config(SAMPLE_CONFIG).units}
    units.update({u.code: u for u in national_tree(quick)})
    return list(units.values())


def _ms(times: list[float]) -> float:
    return round(statistics.median(times) * 1000, 1)


def _hundred_edited(rows: list[T], edit: Callable[[T], T]) -> list[T]:
    """`rows` with 100 of them, spread over the list, changed by `edit`."""
    at = set(range(0, len(rows), max(1, len(rows) // 100))[:100])
    return [edit(row) if i in at else row for i, row in enumerate(rows)]


def _timed_syncs(
    upsert: Callable[[list[T]], object], rows: list[T], edited: list[T]
) -> list[float]:
    """Seconds for a sync of `rows` into empty tables, of the same rows again (nothing to
    write), and of `edited` (100 rows changed)."""
    times = []
    for batch in (rows, rows, edited):
        started = time.perf_counter()
        upsert(batch)
        times.append(time.perf_counter() - started)
    return times


def measure_units_sync(kind: str, quick: bool) -> list[dict[str, Any]]:
    units = configured_units(quick)
    rounds = 3 if quick else 5
    first: list[float] = []
    unchanged: list[float] = []
    renamed: list[float] = []
    for n in range(rounds):
        with database(kind) as engine:
            repository = SqlRepository(engine)
            edited = _hundred_edited(units, lambda u, n=n: replace(u, name=f"{u.name} ({n})"))
            times = _timed_syncs(repository.upsert_units, units, edited)
            for kept, seconds in zip((first, unchanged, renamed), times, strict=True):
                kept.append(seconds)
            stored = {u.code: u.name for u in repository.list_units()}
            assert stored == {u.code: u.name for u in edited}, "units_sync stored other names"

    return [
        {"name": f"units_sync_{kind}_units", "value": len(units), "unit": "units"},
        {"name": f"units_sync_{kind}_first", "value": _ms(first), "unit": "ms", "rounds": rounds},
        {"name": f"units_sync_{kind}_unchanged", "value": _ms(unchanged), "unit": "ms"},
        {"name": f"units_sync_{kind}_100_renamed", "value": _ms(renamed), "unit": "ms"},
    ]


def national_config_folder(target: Path) -> Path:
    """The sample configuration with units-national.toml as `publisher units import` writes
    it (the whole country), in `target`."""
    for sample in SAMPLE_CONFIG.glob("*.toml"):
        shutil.copyfile(sample, target / sample.name)
    units_file = UnitsFile.model_validate(
        tomllib.loads((target / "units.toml").read_text(encoding="utf-8"))
    )
    plan = plan_import(load_division(), base_units(units_file))
    assert not plan.problems, plan.problems
    (target / NATIONAL_FILE).write_text(render(plan), encoding="utf-8")
    return target


def measure_config_load(quick: bool) -> list[dict[str, Any]]:
    rounds = 5 if quick else 15
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-config-") as scratch:
        folder = national_config_folder(Path(scratch))
        units = 0
        for _ in range(rounds):
            started = time.perf_counter()
            config = load_config(folder)
            times.append(time.perf_counter() - started)
            units = len(config.units)
    return [
        {"name": "init_config_units", "value": units, "unit": "units"},
        {
            "name": "init_config_load",
            "value": round(statistics.median(times) * 1000, 1),
            "unit": "ms",
            "rounds": rounds,
            "all": [round(t * 1000, 1) for t in times],
        },
    ]


def national_accounts(
    config_accounts: list[ChannelAccount], units: list[Unit]
) -> list[ChannelAccount]:
    """The configuration's accounts plus one per platform for every unit that has none of
    that platform yet: a country where every unit has its channels."""
    accounts = list(config_accounts)
    taken = {(a.unit_code, a.platform) for a in accounts}
    for u in units:
        for p in PLATFORMS:
            if (u.code, p) not in taken:
                accounts.append(
                    ChannelAccount(
                        id=f"{u.code}.{p.value}",
                        unit_code=u.code,
                        platform=p,
                        external_id=f"{u.code}-{p.value}",
                        display_name=u.name,
                    )
                )
    return accounts


def measure_accounts(kind: str, quick: bool) -> list[dict[str, Any]]:
    config = load_config(SAMPLE_CONFIG)
    units = configured_units(quick)
    figures: list[dict[str, Any]] = []
    for label, accounts in (
        ("sample", list(config.accounts)),
        ("national", national_accounts(config.accounts, units)),
    ):
        rounds = 3 if quick or label == "national" else 7
        first: list[float] = []
        unchanged: list[float] = []
        changed: list[float] = []
        for n in range(rounds):
            with database(kind) as engine:
                repository = SqlRepository(engine)
                repository.upsert_units(units)
                edited = _hundred_edited(
                    accounts, lambda a, n=n: replace(a, display_name=f"{a.display_name} ({n})")
                )
                times = _timed_syncs(repository.upsert_accounts, accounts, edited)
                for kept, seconds in zip((first, unchanged, changed), times, strict=True):
                    kept.append(seconds)
                stored = {a.id: a.display_name for a in repository.list_accounts()}
                assert stored == {a.id: a.display_name for a in edited}, "stored other accounts"

        prefix = f"init_accounts_{kind}_{label}"
        figures += [
            {"name": f"{prefix}_accounts", "value": len(accounts), "unit": "accounts"},
            {"name": f"{prefix}_first", "value": _ms(first), "unit": "ms", "rounds": rounds},
            {"name": f"{prefix}_unchanged", "value": _ms(unchanged), "unit": "ms"},
            {"name": f"{prefix}_100_changed", "value": _ms(changed), "unit": "ms"},
        ]
    return figures


class _NoDirectory:
    """route_article reads units and accounts itself (load_directory); nothing else here
    needs the directory."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the fan-out path used the directory's {name}")


def run(quick: bool = False) -> list[dict[str, Any]]:
    figures = measure_config_load(quick)
    figures += measure_units_sync("sqlite", quick)
    figures += measure_accounts("sqlite", quick)
    figures += measure("sqlite", quick)
    if os.environ.get("DATABASE_URL_TEST"):
        figures += measure_units_sync("postgresql", quick)
        figures += measure_accounts("postgresql", quick)
        figures += measure("postgresql", quick)
    else:
        figures.append(
            {
                "name": "national_postgresql",
                "value": 0,
                "unit": "skipped",
                "reason": "no PostgreSQL: set DATABASE_URL_TEST (scripts/pg-throwaway start DIR)",
            }
        )
    return figures
