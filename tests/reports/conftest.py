"""Fixtures of the report tests; the hand-computed world itself is in report_world.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from report_world import DemoDb, build_demo_db


@pytest.fixture
def demo_db(tmp_path: Path) -> Iterator[DemoDb]:
    db = build_demo_db(tmp_path / "publisher.db")
    yield db
    db.engine.dispose()
