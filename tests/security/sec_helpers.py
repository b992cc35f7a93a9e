"""Helpers shared by the security tests."""

from __future__ import annotations

from pathlib import Path

SAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "config"


def raw_database_bytes(path: Path) -> bytes:
    """Every byte SQLite keeps for this database: main file, WAL and shared memory."""
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))
