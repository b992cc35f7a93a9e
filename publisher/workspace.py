"""The working folder: where configuration and the embedded database live.

`PUBLISHER_HOME` (default `./.publisher`) holds `config/` (copied from the sample on `init`)
and `publisher.db` (SQLite) unless `DATABASE_URL` points elsewhere (e.g. PostgreSQL).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from publisher.settings import Config, ConfigError, load_config
from publisher.store import engine as store_engine
from publisher.store.sql import SqlRepository

SAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "config"


def default_home() -> Path:
    return Path(os.environ.get("PUBLISHER_HOME") or ".publisher")


@dataclass(frozen=True)
class Workspace:
    home: Path

    @classmethod
    def from_env(cls, home: Path | str | None = None) -> Workspace:
        return cls(Path(home) if home is not None else default_home())

    @property
    def config_dir(self) -> Path:
        return self.home / "config"

    @property
    def database_url(self) -> str:
        url = os.environ.get("DATABASE_URL")
        if url:
            return store_engine.normalise_url(url)
        return store_engine.sqlite_url((self.home / "publisher.db").resolve())

    def create(self) -> list[Path]:
        """Make the folder and copy sample configuration files that are not there yet.

        Safe to run twice: an existing file is never overwritten (it may hold local edits).
        """
        self.config_dir.mkdir(parents=True, exist_ok=True)
        copied = []
        for sample in sorted(SAMPLE_CONFIG.glob("*.toml")):
            target = self.config_dir / sample.name
            if not target.exists():
                shutil.copyfile(sample, target)
                copied.append(target)
        return copied

    def load_config(self) -> Config:
        return load_config(self.config_dir)

    def upgrade_database(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        store_engine.upgrade(self.database_url)

    def engine(self) -> sa.Engine:
        return store_engine.make_engine(self.database_url)

    def repository(self) -> SqlRepository:
        return SqlRepository(self.engine())


def sync_directory(config: Config, repository: SqlRepository) -> None:
    """Bring the database's directory (units, users, accounts, sources) in line with config.

    Accounts connected by unit admins (`publisher accounts connect`) are not config's: they are
    left as they are, and an accounts.toml entry that would overwrite or duplicate one is
    refused (`ConfigError`, nothing loaded) — see `publisher.accounts`.
    """
    from publisher.accounts import connected_conflicts

    problems = connected_conflicts(repository.engine, config.accounts)
    if problems:
        raise ConfigError(problems)
    repository.upsert_units(config.units)
    repository.upsert_users(config.users)
    repository.upsert_accounts(config.accounts)
    repository.upsert_sources(config.sources)
