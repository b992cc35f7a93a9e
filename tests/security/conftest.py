"""Shared fixtures for the security tests: a migrated SQLite database with the sample directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from publisher import redact
from publisher.settings import load_config
from publisher.store.engine import make_engine, upgrade
from publisher.store.sql import SqlRepository
from publisher.workspace import sync_directory

SAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture
def sample_db(tmp_path: Path) -> Iterator[tuple[sa.Engine, SqlRepository, Path]]:
    """(engine, repository, database file) with the sample units, users and accounts."""
    path = tmp_path / "security.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    repository = SqlRepository(engine)
    sync_directory(load_config(SAMPLE_CONFIG), repository)
    yield engine, repository, path
    engine.dispose()


@pytest.fixture(autouse=True)
def _fresh_redaction_registry() -> Iterator[None]:
    redact.forget_all_secrets()
    yield
    redact.forget_all_secrets()
