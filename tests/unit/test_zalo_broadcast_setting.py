"""accounts.toml: a Zalo OA's broadcast setting is read, and a misplaced one is one clear line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from publisher.settings import ConfigError, load_config

SAMPLE = Path(__file__).resolve().parents[2] / "config"


def folder_with(tmp_path: Path, replace: str, by: str) -> Path:
    folder = tmp_path / "config"
    shutil.copytree(SAMPLE, folder, ignore=shutil.ignore_patterns("samples"))
    accounts = folder / "accounts.toml"
    text = accounts.read_text(encoding="utf-8")
    assert replace in text
    accounts.write_text(text.replace(replace, by, 1), encoding="utf-8")
    return folder


def test_the_sample_hanoi_oa_broadcasts_four_a_month() -> None:
    config = load_config(SAMPLE)
    assert config.zalo_broadcasts == {"01.zalo": 4}


def test_broadcast_needs_the_package_allowance(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "zalo_package_broadcasts = 4\n", "")
    with pytest.raises(ConfigError) as caught:
        load_config(folder)
    assert any(
        p.startswith("accounts.toml: account[") and "zalo_package_broadcasts" in p
        for p in caught.value.problems
    )


def test_only_a_package_value_is_accepted(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "zalo_package_broadcasts = 4", "zalo_package_broadcasts = 5")
    with pytest.raises(ConfigError) as caught:
        load_config(folder)
    assert any("zalo_package_broadcasts" in p for p in caught.value.problems)


def test_a_broadcast_setting_on_another_platform_is_refused(tmp_path: Path) -> None:
    folder = folder_with(
        tmp_path,
        'platform = "viber"\n',
        'platform = "viber"\nzalo_broadcast = true\nzalo_package_broadcasts = 4\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(folder)
    assert any("Zalo accounts only" in p for p in caught.value.problems)
