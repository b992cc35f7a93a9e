"""Directory store: loading the sample tree and reading subtrees, SQLite vs in-memory."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from publisher.domain import Unit
from publisher.store.engine import make_engine, upgrade
from publisher.store.memory import MemoryRepository
from publisher.store.sql import SqlRepository

DESCRIPTION = "directory store: upsert a 3,400-unit tree; subtree query (SQLite vs memory)"


def _tree(provinces: int, communes_each: int) -> list[Unit]:
    units = [Unit("CP", "Cổng TTĐT Chính phủ", "central")]
    for p in range(provinces):
        code = f"{p + 1:02d}"
        units.append(Unit(code, f"Tỉnh {code}", "province", "CP"))
        units.extend(
            Unit(f"{code}{c:03d}", f"Xã {code}{c:03d}", "commune", code)
            for c in range(communes_each)
        )
    return units


def run(quick: bool = False) -> list[dict[str, Any]]:
    units = _tree(34, 20 if quick else 98)  # 34 × 98 ≈ the 3,321 communes of 2025
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        sql = SqlRepository(engine)
        started = time.perf_counter()
        sql.upsert_units(units)
        upsert_s = time.perf_counter() - started
        memory = MemoryRepository()
        memory.upsert_units(units)
        sql_times, memory_times = [], []
        for _ in range(5 if quick else 21):
            t0 = time.perf_counter()
            sql.subtree_codes("01")
            sql_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            memory.subtree_codes("01")
            memory_times.append(time.perf_counter() - t0)
        engine.dispose()
    sql_ms = statistics.median(sql_times) * 1000
    memory_ms = statistics.median(memory_times) * 1000
    return [
        {
            "name": "store.upsert_units",
            "value": round(upsert_s, 3),
            "unit": "s",
            "units": len(units),
        },
        {
            "name": "store.subtree_sqlite",
            "value": round(sql_ms, 3),
            "unit": "ms",
            "baseline": "memory",
            "baseline_value": round(memory_ms, 3),
            "ratio": round(sql_ms / memory_ms, 2) if memory_ms else None,
        },
    ]
